//! Fixtures of the `snapshots*` test files: the replica reference environment (two dummy
//! back ends, `dummy1` in `az1`, `dummy2` in `az2`) plus share types with the snapshot
//! capabilities: `snap` (plain) and `rsnap` (readable replication), both asking
//! `snapshot_support`, `create_share_from_snapshot_support`, `revert_to_snapshot_support`
//! and `mount_snapshot_support`.

use serde_json::{Value, json};
use shoal_core::config::AuthStrategy;
use shoal_testkit::{TestApp, TestResponse};

use crate::replica_fixtures::{REFERENCE, create_type, custom_app, new_share, share_view};

/// The version snapshot tests use unless a line is about versions (metadata and every
/// view field).
pub const SV: &str = "2.79";

/// Every snapshot capability, as a type asks for it.
pub fn snapshot_specs() -> Value {
    json!({
        "snapshot_support": true,
        "create_share_from_snapshot_support": true,
        "revert_to_snapshot_support": true,
        "mount_snapshot_support": true,
    })
}

/// The reference environment with the `snap` and `rsnap` types, dummy knobs per back end.
pub async fn snapshot_app(auth: AuthStrategy, knobs: Value) -> TestApp {
    let app = custom_app(auth, REFERENCE, knobs).await;
    create_type(&app, "snap", snapshot_specs()).await;
    let mut replicated = snapshot_specs();
    replicated["replication_type"] = json!("readable");
    create_type(&app, "rsnap", replicated).await;
    app
}

/// An available 1 GiB share of `type_name` owned by `user`, in az1.
pub async fn share_of_type(app: &TestApp, user: &str, type_name: &str) -> String {
    let id = new_share(app, user, json!({"share_type": type_name})).await;
    app.settle().await;
    assert_eq!(share_view(app, &id).await["status"], "available");
    id
}

/// `POST /v2/snapshots` as `user` at `version`.
pub async fn post_snapshot(app: &TestApp, user: &str, version: &str, body: Value) -> TestResponse {
    app.post("/v2/snapshots")
        .version(version)
        .token(&app.token_for(user))
        .json(&body)
        .send()
        .await
}

/// Asks for a snapshot of `share` as `user`; asserts 202 and returns its id (unsettled).
pub async fn request_snapshot(app: &TestApp, user: &str, share: &str) -> String {
    let resp = post_snapshot(
        app,
        user,
        SV,
        json!({"snapshot": {"share_id": share, "name": "snap1"}}),
    )
    .await;
    assert_eq!(resp.status, 202, "snapshot create: {}", resp.text());
    let body = resp.json();
    assert_eq!(body["snapshot"]["status"], "creating", "{body}");
    body["snapshot"]["id"].as_str().expect("id").to_owned()
}

/// A settled, available snapshot of `share`.
pub async fn available_snapshot(app: &TestApp, user: &str, share: &str) -> String {
    let id = request_snapshot(app, user, share).await;
    app.settle().await;
    let view = snapshot_view(app, &id).await;
    assert_eq!(view["status"], "available", "snapshot: {view}");
    id
}

/// `GET path` as `user` at `version`.
pub async fn get_as(app: &TestApp, user: &str, version: &str, path: &str) -> TestResponse {
    app.get(path)
        .version(version)
        .token(&app.token_for(user))
        .send()
        .await
}

/// Admin view of a snapshot at [`SV`].
pub async fn snapshot_view(app: &TestApp, id: &str) -> Value {
    let resp = get_as(app, "admin", SV, &format!("/v2/snapshots/{id}")).await;
    assert_eq!(resp.status, 200, "snapshot show: {}", resp.text());
    resp.json()["snapshot"].clone()
}

/// `POST /v2/snapshots/{id}/action` as `user` at `version`.
pub async fn snapshot_action(
    app: &TestApp,
    user: &str,
    version: &str,
    id: &str,
    body: Value,
) -> TestResponse {
    app.post(&format!("/v2/snapshots/{id}/action"))
        .version(version)
        .token(&app.token_for(user))
        .json(&body)
        .send()
        .await
}

/// `POST /v2/shares/{id}/action` as `user` at `version`.
pub async fn share_action(
    app: &TestApp,
    user: &str,
    version: &str,
    id: &str,
    body: Value,
) -> TestResponse {
    app.post(&format!("/v2/shares/{id}/action"))
        .version(version)
        .token(&app.token_for(user))
        .json(&body)
        .send()
        .await
}

/// Admin detail list of the snapshot instances of `snapshot`.
pub async fn instances_of(app: &TestApp, snapshot: &str) -> Vec<Value> {
    let resp = get_as(
        app,
        "admin",
        SV,
        &format!("/v2/snapshot-instances/detail?snapshot_id={snapshot}"),
    )
    .await;
    assert_eq!(resp.status, 200, "instances: {}", resp.text());
    resp.json()["snapshot_instances"]
        .as_array()
        .expect("snapshot_instances")
        .clone()
}
