//! `scheduler_hints` of share creation (2.65+): `same_host` / `different_host` placed by
//! the affinity filters, Manila's checks and 404, and the `__affinity_*` metadata Manila
//! keeps on both shares.

use serde_json::{Value, json};
use shoal_testkit::{TestApp, TestResponse};

use crate::replica_fixtures::*;

/// `POST /v2/shares` (plain type, no zone) at `version` with `hints`.
async fn create_with_hints(app: &TestApp, version: &str, hints: Value) -> TestResponse {
    app.post("/v2/shares")
        .version(version)
        .json(
            &json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "plain",
            "scheduler_hints": hints}}),
        )
        .send()
        .await
}

/// Id of a created share, settled.
async fn created(app: &TestApp, resp: TestResponse) -> String {
    assert_eq!(resp.status, 200, "{}", resp.text());
    let id = resp.json()["share"]["id"].as_str().expect("id").to_owned();
    app.settle().await;
    id
}

async fn metadata(app: &TestApp, id: &str) -> Value {
    let resp = app
        .get(&format!("/v2/shares/{id}/metadata"))
        .version("2.65")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["metadata"].clone()
}

async fn share_count(app: &TestApp) -> usize {
    let resp = app.get("/v2/shares").version("2.65").send().await;
    resp.json()["shares"].as_array().expect("shares").len()
}

#[tokio::test]
async fn same_and_different_host_place_the_share_and_are_recorded() {
    let app = app().await;
    // In az1, so on dummy1.
    let a = plain_share(&app, "admin").await;
    assert_eq!(share_view(&app, &a).await["host"], pool_of("dummy1"));

    for _ in 0..3 {
        let b = created(
            &app,
            create_with_hints(&app, "2.65", json!({"same_host": a})).await,
        )
        .await;
        let view = share_view(&app, &b).await;
        assert_eq!(view["status"], "available", "{view}");
        assert_eq!(view["host"], pool_of("dummy1"));
        assert_eq!(metadata(&app, &b).await["__affinity_same_host"], a.as_str());
    }
    let c = created(
        &app,
        create_with_hints(&app, "2.65", json!({"different_host": a})).await,
    )
    .await;
    let view = share_view(&app, &c).await;
    assert_eq!(view["host"], pool_of("dummy2"), "{view}");
    assert_eq!(
        metadata(&app, &c).await["__affinity_different_host"],
        a.as_str()
    );
    let on_a = metadata(&app, &a).await;
    assert_eq!(
        on_a["__affinity_same_host"]
            .as_str()
            .expect("recorded on a")
            .split(',')
            .count(),
        3,
        "{on_a}"
    );
    assert_eq!(on_a["__affinity_different_host"], c.as_str());

    // Deleting c takes it out of a's metadata.
    let resp = app
        .delete(&format!("/v2/shares/{c}"))
        .version("2.65")
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert!(
        metadata(&app, &a)
            .await
            .get("__affinity_different_host")
            .is_none()
    );
    app.finish().await;
}

#[tokio::test]
async fn contradictory_hints_leave_the_share_in_error() {
    let app = app().await;
    let a = plain_share(&app, "admin").await;
    let b = created(
        &app,
        create_with_hints(&app, "2.65", json!({"same_host": a, "different_host": a})).await,
    )
    .await;
    let view = share_view(&app, &b).await;
    assert_eq!(view["status"], "error", "{view}");
    app.finish().await;
}

#[tokio::test]
async fn unknown_or_invalid_ids_are_refused_before_anything_is_written() {
    let app = app().await;
    let a = plain_share(&app, "admin").await;
    let before = share_count(&app).await;
    create_with_hints(&app, "2.65", json!({"same_host": MISSING}))
        .await
        .assert_fault(
            404,
            "itemNotFound",
            Some(&format!("Share {MISSING} could not be found.")),
        );
    create_with_hints(&app, "2.65", json!({"different_host": format!("{a},nope")}))
        .await
        .assert_fault(400, "badRequest", Some("nope is not a valid uuid."));
    assert_eq!(share_count(&app).await, before);
    assert!(
        metadata(&app, &a)
            .await
            .as_object()
            .expect("map")
            .is_empty()
    );

    // Below 2.65 the hints are not read at all.
    let old = created(
        &app,
        create_with_hints(&app, "2.64", json!({"same_host": MISSING})).await,
    )
    .await;
    assert!(
        metadata(&app, &old)
            .await
            .as_object()
            .expect("map")
            .is_empty()
    );
    app.finish().await;
}

#[tokio::test]
async fn another_projects_share_is_not_found() {
    let app = keystone_app().await;
    let theirs = plain_share(&app, "bob").await;
    let resp = app
        .post("/v2/shares")
        .version("2.65")
        .token(&app.token_for("alice"))
        .json(
            &json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "plain",
            "scheduler_hints": {"same_host": theirs}}}),
        )
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Share {theirs} could not be found.")),
    );
    app.finish().await;
}
