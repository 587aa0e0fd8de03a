//! `GET /metrics`: Prometheus text without a token, HTTP series by route template (never a
//! raw path or a project id), durable operations, pools, and per replica its lag and last
//! sync, read from the database at each scrape.

use serde_json::json;
use shoal_testkit::{PROJECT_A, TestApp};

use crate::replica_fixtures::*;

/// The value of the first series named `name` whose line holds every one of `labels`.
fn sample(body: &str, name: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter(|line| {
            line.split(['{', ' ']).next() == Some(name)
                && labels.iter().all(|label| line.contains(label))
        })
        .find_map(|line| line.rsplit(' ').next()?.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    scrape_as(app, None).await
}

async fn scrape_as(app: &TestApp, token: Option<&str>) -> String {
    let request = app.get("/metrics");
    let request = match token {
        Some(token) => request.token(token),
        None => request.anonymous(),
    };
    let resp = request.send().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    resp.text()
}

#[tokio::test]
async fn metrics_count_requests_by_route_template_without_a_token() {
    let app = keystone_app().await;
    let share = available_share(&app, "alice").await;
    let before = sample(
        &scrape(&app).await,
        "shoal_http_requests_total",
        &[
            "method=\"GET\"",
            "route=\"/v2/shares/{id}\"",
            "status=\"200\"",
        ],
    )
    .unwrap_or(0.0);
    for _ in 0..3 {
        let resp = app
            .get(&format!("/v2/{PROJECT_A}/shares/{share}"))
            .token(&app.token_for("alice"))
            .send()
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    let resp = app
        .get("/no-such-route/secret-path-segment")
        .token(&app.token_for("alice"))
        .send()
        .await;
    assert_eq!(resp.status, 404);
    let resp = app.get("/v2/shares").token("not-a-token").send().await;
    assert_eq!(resp.status, 401);

    let body = scrape(&app).await;
    let after = sample(
        &body,
        "shoal_http_requests_total",
        &[
            "method=\"GET\"",
            "route=\"/v2/shares/{id}\"",
            "status=\"200\"",
        ],
    )
    .unwrap_or_else(|| panic!("GETs of a share are counted under their route template: {body}"));
    // Other tests of this binary share the process-wide recorder: at least our three.
    assert!(after >= before + 3.0, "{before} -> {after}");
    assert!(
        sample(
            &body,
            "shoal_http_request_duration_seconds_bucket",
            &["route=\"/v2/shares/{id}\"", "le=\"+Inf\""]
        )
        .is_some(),
        "latency is a histogram with buckets"
    );
    assert!(
        sample(
            &body,
            "shoal_http_requests_total",
            &["route=\"unmatched\"", "status=\"404\""]
        )
        .is_some()
    );
    assert!(
        sample(
            &body,
            "shoal_auth_refusals_total",
            &["reason=\"invalid_token\""]
        )
        .is_some()
    );
    // Tenant data never reaches a label; nor do raw paths.
    for secret in [PROJECT_A, share.as_str(), "secret-path-segment"] {
        assert!(!body.contains(secret), "{secret} leaked into /metrics");
    }
    // The database's view: operations and pools.
    assert_eq!(sample(&body, "shoal_metrics_database_up", &[]), Some(1.0));
    assert!(
        sample(
            &body,
            "shoal_operations",
            &["kind=\"create_share_instance\"", "state=\"done\""]
        )
        .is_some_and(|n| n >= 1.0),
        "{body}"
    );
    assert!(sample(&body, "shoal_pool_capacity_total_bytes", &[]).is_some_and(|b| b > 0.0));
    assert!(sample(&body, "shoal_operation_claim_delay_seconds_count", &[]).is_some());
    app.finish().await;
}

#[tokio::test]
async fn metrics_give_each_replica_its_lag_and_last_sync() {
    let app = TestApp::builder()
        .with_local_backend("local1", "az1")
        .with_local_backend("local2", "az2")
        .configure(|config| {
            for backend in &mut config.backends {
                backend.replication_type = Some("readable".to_owned());
            }
        })
        .build()
        .await;
    create_type(&app, "readable", json!({"replication_type": "readable"})).await;
    let share = available_share(&app, "admin").await;
    let secondary = request_replica(&app, "admin", &share).await;
    app.settle().await;
    assert_eq!(replica(&app, &secondary).await["replica_state"], "in_sync");
    let active = active_of(&app, &share).await;

    // Replica ids name a project's objects: anonymous scrapes get the aggregates only.
    let id = format!("replica_id=\"{secondary}\"");
    let body = scrape(&app).await;
    assert!(!body.contains(&secondary), "{body}");
    assert_eq!(
        sample(&body, "shoal_replicas", &["replica_state=\"in_sync\""]),
        Some(1.0)
    );
    let max_lag = sample(&body, "shoal_replica_lag_max_seconds", &[]).expect("largest lag");
    assert!((0.0..600.0).contains(&max_lag), "{max_lag}");

    let body = scrape_as(&app, Some(&app.token_for("admin"))).await;
    let lag = sample(&body, "shoal_replica_lag_seconds", &[&id]).expect("lag of the replica");
    assert!((0.0..600.0).contains(&lag), "{lag}");
    assert_eq!(
        sample(&body, "shoal_replica_last_sync_clean", &[&id]),
        Some(1.0)
    );
    assert!(sample(&body, "shoal_replica_last_sync_duration_seconds", &[&id]).is_some());
    assert!(sample(&body, "shoal_replica_last_sync_files", &[&id]).is_some());
    assert!(
        sample(
            &body,
            "shoal_replica_info",
            &[&id, "replica_state=\"in_sync\""]
        )
        .is_some()
    );
    assert!(
        !body.contains(&format!("replica_id=\"{active}\"")),
        "the active has no lag"
    );
    assert!(
        sample(
            &body,
            "shoal_replication_syncs_total",
            &["outcome=\"clean\""]
        )
        .is_some_and(|n| n >= 1.0)
    );

    // A deleted replica's series go with it at the next scrape.
    let resp = app
        .delete(&format!("/v2/share-replicas/{secondary}"))
        .version(V)
        .experimental("True")
        .token(&app.token_for("admin"))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    let body = scrape_as(&app, Some(&app.token_for("admin"))).await;
    assert!(!body.contains(&id), "{body}");
    assert_eq!(sample(&body, "shoal_replicas", &[]), None);
    app.finish().await;
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
    let app = TestApp::builder()
        .configure(|config| config.api.metrics = false)
        .build()
        .await;
    let resp = app.get("/metrics").anonymous().send().await;
    assert_eq!(resp.status, 404);
    app.finish().await;
}
