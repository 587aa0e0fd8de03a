//! Replica quotas (checklist group U, 296–304; replication.md §11) and the policy summary
//! (group V, 305–308; §13).

use serde_json::{Value, json};
use shoal_testkit::{PROJECT_A, TestApp, TestResponse};

use crate::replica_fixtures::*;

const V53: &str = "2.53";

async fn quota_detail(app: &TestApp, project: &str) -> Value {
    let resp = app
        .get(&format!("/v2/quota-sets/{project}/detail"))
        .version(V53)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["quota_set"].clone()
}

// ---- U. quotas ----

#[tokio::test]
async fn u296_replicated_share_counts_one_replica_and_its_size() {
    let app = app().await;
    let project = project_of("admin");
    available_share_sized(&app, "admin", 3).await;
    assert_eq!(usage(&app, project, "share_replicas").await, (1, 0));
    assert_eq!(usage(&app, project, "replica_gigabytes").await, (3, 0));
    let detail = quota_detail(&app, project).await;
    assert_eq!(detail["share_replicas"]["in_use"], 1, "{detail}");
    assert_eq!(detail["replica_gigabytes"]["in_use"], 3, "{detail}");
    app.finish().await;
}

#[tokio::test]
async fn u297_secondary_counts_one_replica_and_its_size() {
    let app = app().await;
    let project = project_of("admin");
    let share = available_share_sized(&app, "admin", 3).await;
    in_sync_replica(&app, "admin", &share).await;
    assert_eq!(usage(&app, project, "share_replicas").await, (2, 0));
    assert_eq!(usage(&app, project, "replica_gigabytes").await, (6, 0));
    app.finish().await;
}

#[tokio::test]
async fn u298_plain_share_leaves_replica_usage_alone() {
    let app = app().await;
    let project = project_of("admin");
    plain_share(&app, "admin").await;
    assert_eq!(usage(&app, project, "shares").await, (1, 0));
    assert_eq!(usage(&app, project, "share_replicas").await, (0, 0));
    assert_eq!(usage(&app, project, "replica_gigabytes").await, (0, 0));
    app.finish().await;
}

#[tokio::test]
async fn u299_quota_set_shows_replica_keys_from_2_53() {
    let app = app().await;
    let project = project_of("admin");
    let old = app
        .get(&format!("/v2/quota-sets/{project}"))
        .version("2.52")
        .send()
        .await;
    assert_eq!(old.status, 200, "{}", old.text());
    let old = old.json()["quota_set"].clone();
    assert!(old.get("share_replicas").is_none(), "{old}");
    assert!(old.get("replica_gigabytes").is_none(), "{old}");
    let new = app
        .get(&format!("/v2/quota-sets/{project}"))
        .version(V53)
        .send()
        .await;
    assert_eq!(new.status, 200, "{}", new.text());
    let new = new.json()["quota_set"].clone();
    assert_eq!(new["share_replicas"], 100, "{new}");
    assert_eq!(new["replica_gigabytes"], 1000, "{new}");
    app.finish().await;
}

#[tokio::test]
async fn u300_setting_share_replicas_needs_2_53() {
    let app = app().await;
    let project = project_of("admin");
    let body = json!({"quota_set": {"share_replicas": 1}});
    let old = app
        .put(&format!("/v2/quota-sets/{project}"))
        .version("2.52")
        .json(&body)
        .send()
        .await;
    old.assert_fault(400, "badRequest", None);
    let new = app
        .put(&format!("/v2/quota-sets/{project}"))
        .version(V53)
        .json(&body)
        .send()
        .await;
    assert_eq!(new.status, 200, "{}", new.text());
    assert_eq!(new.json()["quota_set"]["share_replicas"], 1);
    app.finish().await;
}

#[tokio::test]
async fn u301_share_replicas_quota_of_one_refuses_a_secondary() {
    let app = app().await;
    let project = project_of("admin");
    let share = available_share(&app, "admin").await;
    let resp = app
        .put(&format!("/v2/quota-sets/{project}"))
        .version(V53)
        .json(&json!({"quota_set": {"share_replicas": 1}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await
    .assert_fault(
        413,
        "overLimit",
        Some("ShareReplicasLimitExceeded: Maximum number of allowed share-replicas is exceeded."),
    );
    app.finish().await;
}

#[tokio::test]
async fn u302_share_replicas_quota_of_zero_refuses_a_replicated_share() {
    let app = app().await;
    let project = project_of("admin");
    set_quota(&app, project, "share_replicas", 0).await;
    post_share(&app, "admin", json!({})).await.assert_fault(
        413,
        "overLimit",
        Some("ShareReplicasLimitExceeded: Failed while creating a share with replication support. Maximum number of allowed share-replicas is exceeded."),
    );
    // A plain share is not a replica.
    let resp = post_share(&app, "admin", json!({"share_type": "plain"})).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;
    assert_eq!(usage(&app, project, "shares").await, (1, 0));
    app.finish().await;
}

#[tokio::test]
async fn u303_limits_show_replica_keys_at_2_53() {
    let app = app().await;
    available_share_sized(&app, "admin", 2).await;
    let resp = app.get("/v2/limits").version(V53).send().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    let absolute = &body["limits"]["absolute"];
    assert_eq!(absolute["maxTotalShareReplicas"], 100, "{body}");
    assert_eq!(absolute["maxTotalReplicaGigabytes"], 1000, "{body}");
    assert_eq!(absolute["totalShareReplicasUsed"], 1, "{body}");
    assert_eq!(absolute["totalReplicaGigabytesUsed"], 2, "{body}");
    app.finish().await;
}

#[tokio::test]
async fn u304_deleting_a_replicated_share_gives_replica_usage_back() {
    let app = app().await;
    let project = project_of("admin");
    let share = available_share_sized(&app, "admin", 2).await;
    assert_eq!(usage(&app, project, "share_replicas").await, (1, 0));
    let resp = app
        .delete(&format!("/v2/shares/{share}"))
        .version(V)
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(usage(&app, project, "share_replicas").await, (0, 0));
    assert_eq!(usage(&app, project, "replica_gigabytes").await, (0, 0));
    app.finish().await;
}

// ---- V. policies ----

async fn as_user(
    app: &TestApp,
    user: &str,
    method: reqwest::Method,
    path: &str,
    version: &str,
    body: Option<Value>,
) -> TestResponse {
    let mut req = app
        .request(method, path)
        .version(version)
        .token(&app.token_for(user));
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await
}

#[tokio::test]
async fn v305_reader_reads_but_cannot_write() {
    let app = keystone_app().await;
    let (share, _, secondary) = replicated(&app, "alice").await;
    use reqwest::Method as M;
    for path in [
        "/v2/share-replicas".to_owned(),
        "/v2/share-replicas/detail".to_owned(),
        format!("/v2/share-replicas/{secondary}"),
        format!("/v2/share-replicas/{secondary}/export-locations"),
    ] {
        let resp = as_user(&app, "rita", M::GET, &path, V, None).await;
        assert_eq!(resp.status, 200, "{path}: {}", resp.text());
    }
    let denied: Vec<(M, String, &str, Option<Value>)> = vec![
        (
            M::POST,
            "/v2/share-replicas".to_owned(),
            V,
            Some(json!({"share_replica": {"share_id": share}})),
        ),
        (
            M::DELETE,
            format!("/v2/share-replicas/{secondary}"),
            V,
            None,
        ),
        (
            M::POST,
            format!("/v2/share-replicas/{secondary}/action"),
            V,
            Some(json!({"promote": null})),
        ),
        (
            M::GET,
            format!("/v2/share-replicas/{secondary}/metadata"),
            V95,
            None,
        ),
        (
            M::POST,
            format!("/v2/share-replicas/{secondary}/metadata"),
            V95,
            Some(json!({"metadata": {"a": "1"}})),
        ),
    ];
    for (method, path, version, body) in denied {
        let resp = as_user(&app, "rita", method.clone(), &path, version, body).await;
        assert_eq!(resp.status, 403, "{method} {path}: {}", resp.text());
    }
    assert_eq!(replicas_of(&app, &share).await.len(), 2);
    app.finish().await;
}

#[tokio::test]
async fn v306_member_writes_but_admin_actions_are_refused() {
    let app = keystone_app().await;
    let (share, _, secondary) = replicated(&app, "alice").await;
    for body in [
        json!({"resync": null}),
        json!({"reset_status": {"status": "error"}}),
        json!({"reset_replica_state": {"replica_state": "error"}}),
        json!({"force_delete": null}),
    ] {
        action(&app, "alice", V, &secondary, body.clone())
            .await
            .assert_fault(403, "forbidden", Some(DENIED));
    }
    let meta = as_user(
        &app,
        "alice",
        reqwest::Method::POST,
        &format!("/v2/share-replicas/{secondary}/metadata"),
        V95,
        Some(json!({"metadata": {"a": "1"}})),
    )
    .await;
    assert_eq!(meta.status, 200, "{}", meta.text());
    let resp = action(&app, "alice", V, &secondary, json!({"promote": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(replica(&app, &secondary).await["replica_state"], "active");
    let active = active_of(&app, &share).await;
    assert_eq!(active, secondary);
    // The former active is now the secondary; the member deletes it.
    let former = ids(&replicas_of(&app, &share).await)
        .into_iter()
        .find(|id| *id != secondary)
        .unwrap();
    let resp = delete_replica(&app, "alice", &former).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    // And creates a new one.
    let resp = post_replica(
        &app,
        "alice",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn v307_admin_of_another_project_reaches_every_replica_endpoint() {
    let app = keystone_app().await;
    let (share, _, secondary) = replicated(&app, "alice").await;
    assert_ne!(project_of("admin"), PROJECT_A);
    use reqwest::Method as M;
    for (method, path, version, body, want) in [
        (
            M::GET,
            format!("/v2/share-replicas/{secondary}"),
            V,
            None,
            200,
        ),
        (
            M::GET,
            format!("/v2/share-replicas/{secondary}/export-locations"),
            V,
            None,
            200,
        ),
        (
            M::POST,
            format!("/v2/share-replicas/{secondary}/metadata"),
            V95,
            Some(json!({"metadata": {"x": "y"}})),
            200,
        ),
        (
            M::GET,
            format!("/v2/share-replicas/{secondary}/metadata/x"),
            V95,
            None,
            200,
        ),
        (
            M::POST,
            format!("/v2/share-replicas/{secondary}/action"),
            V,
            Some(json!({"resync": null})),
            202,
        ),
        (
            M::POST,
            format!("/v2/share-replicas/{secondary}/action"),
            V,
            Some(json!({"reset_replica_state": {"replica_state": "out_of_sync"}})),
            202,
        ),
        (
            M::POST,
            format!("/v2/share-replicas/{secondary}/action"),
            V,
            Some(json!({"promote": null})),
            202,
        ),
    ] {
        let resp = as_user(&app, "admin", method.clone(), &path, version, body).await;
        assert_eq!(resp.status, want, "{method} {path}: {}", resp.text());
        app.settle().await;
    }
    assert_eq!(active_of(&app, &share).await, secondary);
    let resp = post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    // Both pools hold a replica: accepted, then error in scheduling.
    assert_eq!(resp.status, 202, "{}", resp.text());
    let id = resp.json()["share_replica"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    let resp = delete_replica(&app, "admin", &id).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn v308_policy_denial_comes_before_lookup() {
    let app = keystone_app().await;
    use reqwest::Method as M;
    let cases: Vec<(&str, M, String, &str, Option<Value>)> = vec![
        (
            "rita",
            M::DELETE,
            format!("/v2/share-replicas/{MISSING}"),
            V,
            None,
        ),
        (
            "rita",
            M::POST,
            format!("/v2/share-replicas/{MISSING}/action"),
            V,
            Some(json!({"promote": null})),
        ),
        (
            "alice",
            M::POST,
            format!("/v2/share-replicas/{MISSING}/action"),
            V,
            Some(json!({"resync": null})),
        ),
        (
            "alice",
            M::POST,
            format!("/v2/share-replicas/{MISSING}/action"),
            V,
            Some(json!({"reset_status": {"status": "error"}})),
        ),
        (
            "alice",
            M::POST,
            format!("/v2/share-replicas/{MISSING}/action"),
            V,
            Some(json!({"force_delete": null})),
        ),
        (
            "nobody",
            M::GET,
            format!("/v2/share-replicas/{MISSING}"),
            V,
            None,
        ),
        (
            "nobody",
            M::GET,
            format!("/v2/share-replicas/{MISSING}/export-locations"),
            V,
            None,
        ),
        (
            "rita",
            M::GET,
            format!("/v2/share-replicas/{MISSING}/metadata"),
            V95,
            None,
        ),
    ];
    for (user, method, path, version, body) in cases {
        let resp = as_user(&app, user, method.clone(), &path, version, body).await;
        resp.assert_fault(403, "forbidden", Some(DENIED));
    }
    app.finish().await;
}

/// A secondary deleted while its share is extending or shrinking, its delete run before or
/// after the resize: `replica_gigabytes` ends at what the remaining replica holds (the
/// resize's reservation was made for two replicas; its commit corrects for one).
#[tokio::test]
async fn replica_delete_racing_a_resize_leaves_exact_replica_usage() {
    let app = app().await;
    let project = project_of("admin");
    for (resize, new_size) in [("extend", 5), ("shrink", 1)] {
        for delete_first in [true, false] {
            let share = available_share_sized(&app, "admin", 3).await;
            let secondary = in_sync_replica(&app, "admin", &share).await;
            let (shares_before, _) = usage(&app, project, "gigabytes").await;
            let (replica_gb_before, _) = usage(&app, project, "replica_gigabytes").await;
            let workers = app.hold_workers().await;
            let resize_call = || async {
                let resp = app
                    .post(&format!("/v2/shares/{share}/action"))
                    .version("2.64")
                    .token(&app.token_for("admin"))
                    .json(&json!({resize: {"new_size": new_size}}))
                    .send()
                    .await;
                assert_eq!(resp.status, 202, "{resize}: {}", resp.text());
            };
            let delete_call = || async {
                let resp = delete_replica(&app, "admin", &secondary).await;
                assert_eq!(resp.status, 202, "{}", resp.text());
            };
            // The operations run in the order they were queued.
            if delete_first {
                delete_call().await;
                resize_call().await;
            } else {
                resize_call().await;
                delete_call().await;
            }
            drop(workers);
            app.settle().await;
            assert_eq!(share_view(&app, &share).await["size"], new_size);
            assert!(replicas_of(&app, &share).await.len() == 1);
            let (gb, gb_reserved) = usage(&app, project, "gigabytes").await;
            assert_eq!((gb, gb_reserved), (shares_before - 3 + new_size, 0));
            let (replica_gb, reserved) = usage(&app, project, "replica_gigabytes").await;
            assert_eq!(
                (replica_gb, reserved),
                (replica_gb_before - 2 * 3 + new_size, 0),
                "{resize}, delete first: {delete_first}"
            );
        }
    }
    app.finish().await;
}
