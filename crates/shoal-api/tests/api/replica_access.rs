//! Access rules on replicated shares: checklist group R (268–283), replication.md §12. Every
//! test runs on a readable share that has a secondary, so the fan-out to replicas is part of
//! what is checked (access.rs covers R.276–283 on plain shares).

use serde_json::{Value, json};
use shoal_core::config::AuthStrategy;
use shoal_testkit::{TestApp, TestResponse};

use crate::replica_fixtures::*;

const INVALID_INSTANCE: &str = "New access rules cannot be applied while the share or any of its replicas or migration copies lacks a valid host or is in an invalid state.";

async fn share_action(app: &TestApp, version: &str, share: &str, body: Value) -> TestResponse {
    app.post(&format!("/v2/shares/{share}/action"))
        .version(version)
        .json(&body)
        .send()
        .await
}

async fn allow(app: &TestApp, version: &str, share: &str, rule: Value) -> TestResponse {
    share_action(app, version, share, json!({"allow_access": rule})).await
}

fn ip(to: &str) -> Value {
    json!({"access_type": "ip", "access_to": to, "access_level": "rw"})
}

/// Allows `rule` at 2.56 and returns the rule view.
async fn allow_ok(app: &TestApp, share: &str, rule: Value) -> Value {
    let resp = allow(app, V, share, rule).await;
    assert_eq!(resp.status, 200, "allow: {}", resp.text());
    resp.json()["access"].clone()
}

/// The rule `id` as listed by `GET /v2/share-access-rules?share_id=`.
async fn rule(app: &TestApp, share: &str, id: &str) -> Value {
    let resp = app
        .get(&format!("/v2/share-access-rules?share_id={share}"))
        .version(V)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["access_list"]
        .as_array()
        .expect("access_list")
        .iter()
        .find(|r| r["id"] == id)
        .unwrap_or_else(|| panic!("rule {id} not listed"))
        .clone()
}

#[tokio::test]
async fn r268_allow_on_share_with_in_sync_secondary_goes_active() {
    let app = app().await;
    let (share, _, _) = replicated(&app, "admin").await;
    let view = allow_ok(&app, &share, ip("10.1.1.1")).await;
    assert_eq!(view["state"], "queued_to_apply", "{view}");
    let id = view["id"].as_str().unwrap().to_owned();
    app.settle().await;
    assert_eq!(rule(&app, &share, &id).await["state"], "active");
    app.finish().await;
}

#[tokio::test]
async fn r269_allow_while_a_secondary_is_creating_is_400() {
    let app = app().await;
    let (share, _, secondary) = replicated(&app, "admin").await;
    reset_status(&app, &secondary, "creating").await;
    allow(&app, V, &share, ip("10.1.1.1")).await.assert_fault(
        400,
        "badRequest",
        Some(INVALID_INSTANCE),
    );
    app.finish().await;
}

#[tokio::test]
async fn r270_allow_with_secondary_in_error_at_2_73_is_400() {
    let app = app().await;
    let (share, _, secondary) = replicated(&app, "admin").await;
    reset_status(&app, &secondary, "error").await;
    allow(&app, "2.73", &share, ip("10.1.1.1"))
        .await
        .assert_fault(400, "badRequest", Some(INVALID_INSTANCE));
    app.finish().await;
}

#[tokio::test]
async fn r271_allow_with_secondary_in_error_at_2_74_is_200() {
    let app = app().await;
    let (share, _, secondary) = replicated(&app, "admin").await;
    reset_status(&app, &secondary, "error").await;
    let resp = allow(&app, "2.74", &share, ip("10.1.1.1")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn r272_deny_with_secondary_in_error_is_400_at_2_73_and_202_at_2_74() {
    let app = app().await;
    let (share, _, secondary) = replicated(&app, "admin").await;
    let id = allow_ok(&app, &share, ip("10.1.1.1")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    reset_status(&app, &secondary, "error").await;
    let deny = json!({"deny_access": {"access_id": id}});
    share_action(&app, "2.73", &share, deny.clone())
        .await
        .assert_fault(400, "badRequest", Some("Access rules cannot be denied while the share, any of its replicas or migration copies lacks a valid host or is in an invalid state."));
    let resp = share_action(&app, "2.74", &share, deny).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn r273_allow_while_a_secondary_is_being_promoted() {
    let app = app_with_knobs(
        AuthStrategy::Noauth,
        json!({"dummy2": {"delays": {"promote_replica": "3s"}}}),
    )
    .await;
    let (share, _, secondary) = replicated(&app, "admin").await;
    let resp = action(&app, "admin", V, &secondary, json!({"promote": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(
        replica(&app, &secondary).await["status"],
        "replication_change"
    );
    let resp = allow(&app, V, &share, ip("10.1.1.1")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn r274_rule_made_before_a_replica_is_active_after_it() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let id = allow_ok(&app, &share, ip("10.1.1.1")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    let secondary = in_sync_replica(&app, "admin", &share).await;
    assert_eq!(replica(&app, &secondary).await["status"], "available");
    assert_eq!(rule(&app, &share, &id).await["state"], "active");
    app.finish().await;
}

#[tokio::test]
async fn r275_rule_state_while_a_replica_is_created() {
    let app = app_with_knobs(
        AuthStrategy::Noauth,
        json!({"dummy2": {"delays": {"create_replica": "3s"}}}),
    )
    .await;
    let share = available_share(&app, "admin").await;
    let id = allow_ok(&app, &share, ip("10.1.1.1")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    request_replica(&app, "admin", &share).await;
    // Whether the back end has started (rule mapped, `queued_to_apply`) depends on timing;
    // nothing else is allowed.
    let during = rule(&app, &share, &id).await["state"].clone();
    assert!(
        during == "queued_to_apply" || during == "active",
        "{during}"
    );
    app.settle().await;
    assert_eq!(rule(&app, &share, &id).await["state"], "active");
    app.finish().await;
}

#[tokio::test]
async fn r276_rw_rule_stays_rw_on_a_readable_share() {
    let app = app().await;
    let (share, _, _) = replicated(&app, "admin").await;
    let id = allow_ok(&app, &share, ip("10.1.1.1")).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    let listed = rule(&app, &share, &id).await;
    assert_eq!(listed["access_level"], "rw", "{listed}");
    assert_eq!(listed["state"], "active", "{listed}");
    app.finish().await;
}

#[tokio::test]
async fn r277_access_level_defaults_to_rw() {
    let app = app().await;
    let (share, _, _) = replicated(&app, "admin").await;
    let view = allow_ok(
        &app,
        &share,
        json!({"access_type": "ip", "access_to": "10.1.1.2"}),
    )
    .await;
    assert_eq!(view["access_level"], "rw", "{view}");
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn r278_same_ip_twice_is_400() {
    let app = app().await;
    let (share, _, _) = replicated(&app, "admin").await;
    allow_ok(&app, &share, ip("10.1.1.3")).await;
    allow(&app, V, &share, ip("10.1.1.3")).await.assert_fault(
        400,
        "badRequest",
        Some("Share access ip:10.1.1.3 exists."),
    );
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn r279_user_rule_on_nfs_ends_in_error() {
    let app = app().await;
    let (share, _, _) = replicated(&app, "admin").await;
    let id = allow_ok(
        &app,
        &share,
        json!({"access_type": "user", "access_to": "alice", "access_level": "rw"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    assert_eq!(rule(&app, &share, &id).await["state"], "error");
    app.finish().await;
}

#[tokio::test]
async fn r280_access_rules_list_needs_share_id() {
    let app = app().await;
    app.get("/v2/share-access-rules")
        .version(V)
        .send()
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("The field 'share_id' has to be specified."),
        );
    app.finish().await;
}

#[tokio::test]
async fn r281_access_rules_list_of_unknown_share_is_400() {
    let app = app().await;
    app.get(&format!("/v2/share-access-rules?share_id={MISSING}"))
        .version(V)
        .send()
        .await
        .assert_fault(
            400,
            "badRequest",
            Some(&format!("Share {MISSING} not found.")),
        );
    app.finish().await;
}

#[tokio::test]
async fn r282_access_list_action_at_2_45_is_404() {
    let app = app().await;
    let (share, _, _) = replicated(&app, "admin").await;
    share_action(&app, "2.45", &share, json!({"access_list": null}))
        .await
        .assert_fault(404, "itemNotFound", None);
    app.finish().await;
}

#[tokio::test]
async fn r283_deny_of_unknown_rule_is_404() {
    let app = app().await;
    let (share, _, _) = replicated(&app, "admin").await;
    share_action(
        &app,
        V,
        &share,
        json!({"deny_access": {"access_id": MISSING}}),
    )
    .await
    .assert_fault(404, "itemNotFound", None);
    app.finish().await;
}
