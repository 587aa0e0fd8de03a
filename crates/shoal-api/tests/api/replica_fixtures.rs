//! Fixtures shared by the `replica_*` test files (checklist groups F–V). The reference
//! environment of the spec ("Acceptance environment", replication.md §8): two dummy back
//! ends, `dummy1` in `az1` and `dummy2` in `az2`, one replication domain, `readable`
//! replication, DHSS false. Shares are always created in `az1`, so the first secondary has
//! exactly one place to go (`dummy2`) and every outcome is deterministic.
//!
//! Driver knobs (delays, failures) are set through the back end's `[backends.dummy]` table at
//! start-up: the test node does not hand out its drivers, and a knob set from the start
//! affects only the method it names.

use std::collections::BTreeMap;

use serde_json::{Value, json};
use shoal_core::config::AuthStrategy;
use shoal_store::ShareInstanceUpdate;
use shoal_testkit::{PERSONAS, TestApp, TestResponse};
use uuid::Uuid;

/// The version replica tests use unless a line is about versions.
pub const V: &str = "2.56";
/// Version with replica metadata.
pub const V95: &str = "2.95";
/// An id nothing has.
pub const MISSING: &str = "00000000-0000-4000-8000-000000000000";
/// Policy denial text.
pub const DENIED: &str = "Access was denied to this resource.";
/// Generic 404 text of routing and admin actions.
pub const NOT_FOUND: &str = "The resource could not be found.";
/// Host of the only pool of `dummy<n>`.
pub fn pool_of(backend: &str) -> String {
    format!("{}@{backend}#pool1", shoal_testkit::TEST_HOST)
}

/// Project of a persona.
pub fn project_of(user: &str) -> &'static str {
    PERSONAS
        .iter()
        .find(|p| p.0 == user)
        .map(|p| p.1)
        .expect("known persona")
}

/// Dummy back ends `(name, az, replication_type)` plus per-back-end dummy knobs
/// (`{"dummy2": {"delays": {"create_replica": "3s"}, "fail": {"promote_replica": 1.0}}}`).
pub async fn custom_app(
    auth: AuthStrategy,
    backends: &[(&str, &str, &str)],
    knobs: Value,
) -> TestApp {
    let mut builder = TestApp::builder().auth(auth);
    for (name, az, replication) in backends {
        builder = builder.with_dummy_backend(name, az, Some(replication));
    }
    let knobs: BTreeMap<String, Value> =
        serde_json::from_value(knobs).expect("knobs are an object");
    let builder = builder.configure(move |config| {
        for backend in &mut config.backends {
            if let Some(options) = knobs.get(&backend.name) {
                backend.dummy =
                    Some(serde_json::from_value(options.clone()).expect("valid dummy options"));
            }
        }
    });
    let app = builder.build().await;
    let replication = backends.first().map_or("readable", |b| b.2);
    create_type(&app, "readable", json!({"replication_type": replication})).await;
    create_type(&app, "plain", json!({})).await;
    app
}

/// The reference environment under noauth (everyone is admin).
pub async fn app() -> TestApp {
    custom_app(AuthStrategy::Noauth, REFERENCE, json!({})).await
}

/// The reference environment under keystone (personas admin/alice/rita/bob/nobody).
pub async fn keystone_app() -> TestApp {
    custom_app(AuthStrategy::Keystone, REFERENCE, json!({})).await
}

/// The reference environment with dummy knobs.
pub async fn app_with_knobs(auth: AuthStrategy, knobs: Value) -> TestApp {
    custom_app(auth, REFERENCE, knobs).await
}

/// Reference layout plus `dummy3` in `az2`: two places for a first secondary.
pub async fn three_backend_app(auth: AuthStrategy) -> TestApp {
    custom_app(
        auth,
        &[
            ("dummy1", "az1", "readable"),
            ("dummy2", "az2", "readable"),
            ("dummy3", "az2", "readable"),
        ],
        json!({}),
    )
    .await
}

/// A dr-capable pair of dummy back ends; the type `readable` of that app is a `dr` type.
pub async fn dr_app() -> TestApp {
    custom_app(
        AuthStrategy::Noauth,
        &[("dummy1", "az1", "dr"), ("dummy2", "az2", "dr")],
        json!({}),
    )
    .await
}

/// A writable-capable pair of dummy back ends; the type `readable` of that app is a
/// `writable` type.
pub async fn writable_app() -> TestApp {
    custom_app(
        AuthStrategy::Noauth,
        &[("dummy1", "az1", "writable"), ("dummy2", "az2", "writable")],
        json!({}),
    )
    .await
}

/// The spec's acceptance layout.
pub const REFERENCE: &[(&str, &str, &str)] =
    &[("dummy1", "az1", "readable"), ("dummy2", "az2", "readable")];

/// Creates a public DHSS=false share type with extra `specs`; returns its id.
pub async fn create_type(app: &TestApp, name: &str, specs: Value) -> String {
    let mut extra_specs = json!({"driver_handles_share_servers": false});
    if let Value::Object(more) = specs {
        for (k, v) in more {
            extra_specs[k] = v;
        }
    }
    let resp = app
        .post("/v2/types")
        .version(V)
        .json(&json!({"share_type": {"name": name, "extra_specs": extra_specs}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "type create: {}", resp.text());
    resp.json()["share_type"]["id"]
        .as_str()
        .expect("type id")
        .to_owned()
}

/// `POST /v2/shares` as `user` with `share_proto NFS`, size 1, AZ `az1` and `extra` fields.
pub async fn post_share(app: &TestApp, user: &str, extra: Value) -> TestResponse {
    let mut share = json!({"share_proto": "NFS", "size": 1, "availability_zone": "az1",
        "share_type": "readable"});
    if let Value::Object(more) = extra {
        for (k, v) in more {
            share[k] = v;
        }
    }
    app.post("/v2/shares")
        .version(V)
        .token(&app.token_for(user))
        .json(&json!({ "share": share }))
        .send()
        .await
}

/// Creates a share of `share_type` as `user` (unsettled); returns its id.
pub async fn new_share(app: &TestApp, user: &str, extra: Value) -> String {
    let resp = post_share(app, user, extra).await;
    assert_eq!(resp.status, 200, "share create: {}", resp.text());
    resp.json()["share"]["id"]
        .as_str()
        .expect("share id")
        .to_owned()
}

/// A readable share of `user` in az1 of `size` GiB, settled to `available`.
pub async fn available_share_sized(app: &TestApp, user: &str, size: i64) -> String {
    let id = new_share(app, user, json!({"size": size})).await;
    app.settle().await;
    let view = share_view(app, &id).await;
    assert_eq!(view["status"], "available", "share: {view}");
    id
}

/// A 1 GiB readable share of `user` in az1, settled to `available`.
pub async fn available_share(app: &TestApp, user: &str) -> String {
    available_share_sized(app, user, 1).await
}

/// A 1 GiB share without replication of `user`, settled to `available`.
pub async fn plain_share(app: &TestApp, user: &str) -> String {
    let id = new_share(app, user, json!({"share_type": "plain"})).await;
    app.settle().await;
    assert_eq!(share_view(app, &id).await["status"], "available");
    id
}

/// Admin view of a share at 2.56.
pub async fn share_view(app: &TestApp, id: &str) -> Value {
    let resp = app.get(&format!("/v2/shares/{id}")).version(V).send().await;
    assert_eq!(resp.status, 200, "share show: {}", resp.text());
    resp.json()["share"].clone()
}

/// `POST /v2/share-replicas` as `user` at `version` with a raw JSON body.
pub async fn post_replica(app: &TestApp, user: &str, version: &str, body: Value) -> TestResponse {
    let mut req = app
        .post("/v2/share-replicas")
        .version(version)
        .token(&app.token_for(user))
        .json(&body);
    if experimental(version) {
        req = req.experimental("true");
    }
    req.send().await
}

/// Whether `version` needs the experimental header for replica endpoints (2.11–2.55).
pub fn experimental(version: &str) -> bool {
    let minor: u32 = version
        .strip_prefix("2.")
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    (11..56).contains(&minor)
}

/// Asks for a replica of `share` as `user` with extra request fields; asserts 202 and returns
/// the new replica id (unsettled).
pub async fn request_replica_with(app: &TestApp, user: &str, share: &str, extra: Value) -> String {
    let mut body = json!({"share_id": share});
    if let Value::Object(more) = extra {
        for (k, v) in more {
            body[k] = v;
        }
    }
    let resp = post_replica(app, user, V, json!({ "share_replica": body })).await;
    assert_eq!(resp.status, 202, "replica create: {}", resp.text());
    resp.json()["share_replica"]["id"]
        .as_str()
        .expect("replica id")
        .to_owned()
}

/// Asks for a replica of `share` as `user`; returns its id (unsettled).
pub async fn request_replica(app: &TestApp, user: &str, share: &str) -> String {
    request_replica_with(app, user, share, json!({})).await
}

/// A secondary of `share`, settled and asserted `available`/`in_sync`.
pub async fn in_sync_replica(app: &TestApp, user: &str, share: &str) -> String {
    let id = request_replica(app, user, share).await;
    app.settle().await;
    let view = replica(app, &id).await;
    assert_eq!(view["status"], "available", "replica: {view}");
    assert_eq!(view["replica_state"], "in_sync", "replica: {view}");
    id
}

/// An available readable share of `user` with its active replica and one in_sync secondary:
/// `(share, active, secondary)`.
pub async fn replicated(app: &TestApp, user: &str) -> (String, String, String) {
    let share = available_share(app, user).await;
    let active = active_of(app, &share).await;
    let secondary = in_sync_replica(app, user, &share).await;
    (share, active, secondary)
}

/// A secondary that failed scheduling (never got a host): the second secondary of a share
/// whose two pools are both used in the reference layout. Returns its id.
pub async fn unplaced_replica(app: &TestApp, user: &str, share: &str) -> String {
    let id = request_replica(app, user, share).await;
    app.settle().await;
    let view = replica(app, &id).await;
    assert_eq!(view["status"], "error", "{view}");
    assert_eq!(view["replica_state"], "error", "{view}");
    assert_eq!(view["host"], "", "{view}");
    id
}

/// `GET /v2/share-replicas/{id}` as `user` at `version`.
pub async fn show_replica(app: &TestApp, user: &str, version: &str, id: &str) -> TestResponse {
    let mut req = app
        .get(&format!("/v2/share-replicas/{id}"))
        .version(version)
        .token(&app.token_for(user));
    if experimental(version) {
        req = req.experimental("true");
    }
    req.send().await
}

/// Admin detail view of a replica at 2.99 (every field).
pub async fn replica(app: &TestApp, id: &str) -> Value {
    let resp = show_replica(app, "admin", "2.99", id).await;
    assert_eq!(resp.status, 200, "replica show: {}", resp.text());
    resp.json()["share_replica"].clone()
}

/// `GET path` as `user` at `version` (experimental header added for 2.11–2.55).
pub async fn get_as(app: &TestApp, user: &str, version: &str, path: &str) -> TestResponse {
    let mut req = app.get(path).version(version).token(&app.token_for(user));
    if experimental(version) {
        req = req.experimental("true");
    }
    req.send().await
}

/// Admin detail list (2.99) of the replicas of `share`, in list order.
pub async fn replicas_of(app: &TestApp, share: &str) -> Vec<Value> {
    let resp = get_as(
        app,
        "admin",
        "2.99",
        &format!("/v2/share-replicas/detail?share_id={share}"),
    )
    .await;
    assert_eq!(resp.status, 200, "replica list: {}", resp.text());
    resp.json()["share_replicas"]
        .as_array()
        .expect("share_replicas")
        .clone()
}

/// Id of the (first) active replica of `share`.
pub async fn active_of(app: &TestApp, share: &str) -> String {
    let replicas = replicas_of(app, share).await;
    replicas
        .iter()
        .find(|r| r["replica_state"] == "active")
        .unwrap_or_else(|| panic!("no active replica in {replicas:?}"))["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// `POST /v2/share-replicas/{id}/action` as `user` at `version`.
pub async fn action(
    app: &TestApp,
    user: &str,
    version: &str,
    id: &str,
    body: Value,
) -> TestResponse {
    let mut req = app
        .post(&format!("/v2/share-replicas/{id}/action"))
        .version(version)
        .token(&app.token_for(user))
        .json(&body);
    if experimental(version) {
        req = req.experimental("true");
    }
    req.send().await
}

/// Admin `reset_status` of a replica, asserted 202.
pub async fn reset_status(app: &TestApp, id: &str, status: &str) {
    let resp = action(
        app,
        "admin",
        V,
        id,
        json!({"reset_status": {"status": status}}),
    )
    .await;
    assert_eq!(resp.status, 202, "reset_status: {}", resp.text());
}

/// Admin `reset_replica_state` of a replica, asserted 202.
pub async fn reset_state(app: &TestApp, id: &str, state: &str) {
    let resp = action(
        app,
        "admin",
        V,
        id,
        json!({"reset_replica_state": {"replica_state": state}}),
    )
    .await;
    assert_eq!(resp.status, 202, "reset_replica_state: {}", resp.text());
}

/// `DELETE /v2/share-replicas/{id}` as `user`.
pub async fn delete_replica(app: &TestApp, user: &str, id: &str) -> TestResponse {
    app.delete(&format!("/v2/share-replicas/{id}"))
        .version(V)
        .token(&app.token_for(user))
        .send()
        .await
}

/// `(in_use, reserved)` of a quota resource of `project`.
pub async fn usage(app: &TestApp, project: &str, resource: &str) -> (i64, i64) {
    let usages = app
        .core()
        .store
        .get_quota_usages(project)
        .await
        .expect("quota usages");
    usages
        .get(resource)
        .map_or((0, 0), |u| (u.in_use, u.reserved))
}

/// Sets a project's quota limit directly in the store.
pub async fn set_quota(app: &TestApp, project: &str, resource: &str, limit: i64) {
    let map = BTreeMap::from([(resource.to_owned(), limit)]);
    app.core()
        .store
        .set_quota_overrides(project, &map, app.core().now())
        .await
        .expect("set quota");
}

/// Edits a share instance directly in the database (states the API cannot reach).
pub async fn edit_instance(app: &TestApp, id: &str, update: ShareInstanceUpdate) {
    app.core()
        .store
        .update_share_instance_if(
            Uuid::parse_str(id).expect("uuid"),
            &[],
            update,
            Vec::new(),
            app.core().now(),
        )
        .await
        .expect("instance update");
}

/// Replica export locations as `user` at `version` (`GET .../export-locations`).
pub async fn replica_els(app: &TestApp, user: &str, version: &str, id: &str) -> TestResponse {
    get_as(
        app,
        user,
        version,
        &format!("/v2/share-replicas/{id}/export-locations"),
    )
    .await
}

/// The `export_locations` array of a 200 answer.
pub fn els(resp: &TestResponse) -> Vec<Value> {
    assert_eq!(resp.status, 200, "export locations: {}", resp.text());
    resp.json()["export_locations"]
        .as_array()
        .expect("export_locations")
        .clone()
}

/// The `share_replicas` array of a 200 list answer.
pub fn items(resp: &TestResponse) -> Vec<Value> {
    assert_eq!(resp.status, 200, "list: {}", resp.text());
    resp.json()["share_replicas"]
        .as_array()
        .expect("share_replicas")
        .clone()
}

/// Ids of a list of replica views.
pub fn ids(list: &[Value]) -> Vec<String> {
    list.iter()
        .map(|r| r["id"].as_str().expect("id").to_owned())
        .collect()
}

/// The sorted key set of a JSON object.
pub fn keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value
        .as_object()
        .unwrap_or_else(|| panic!("object expected, got {value}"))
        .keys()
        .cloned()
        .collect();
    keys.sort();
    keys
}

/// Sorted owned strings, to compare with [`keys`].
pub fn sorted(names: &[&str]) -> Vec<String> {
    let mut names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    names.sort();
    names
}

/// Asserts a fault whose message starts with `prefix`.
pub fn assert_fault_prefix(resp: &TestResponse, status: u16, fault: &str, prefix: &str) {
    resp.assert_fault(status, fault, None);
    let body = resp.json();
    let message = body[fault]["message"].as_str().unwrap_or_default();
    assert!(
        message.starts_with(prefix),
        "message {message:?} should start with {prefix:?}"
    );
}
