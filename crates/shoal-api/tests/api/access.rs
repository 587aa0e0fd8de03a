//! Access rules: allow/deny/list actions and `/v2/share-access-rules` (checklist R.276–283,
//! api-basics §9, replication.md §12). R.268–275 need secondary replicas and live with the
//! replica tests; rule metadata (2.45+) is in `access/metadata.rs`.

use serde_json::{Value, json};
use shoal_core::config::AuthStrategy;
use shoal_testkit::{PROJECT_A, TestApp, TestResponse};

mod metadata;

const V: &str = "2.56";
const INVALID_INSTANCE: &str = "New access rules cannot be applied while the share or any of its replicas or migration copies lacks a valid host or is in an invalid state.";
const USER_NAME_400: &str = "Invalid user or group name. Must be 4-255 characters and consist of alphanumeric characters and exclude special characters \"/\\[]:;|=,+*?<>";

/// A keystone node with one dummy back end (NFS serves only `ip` rules) and two public
/// types: `default` and `readable` (`replication_type=readable`).
async fn app() -> TestApp {
    let app = TestApp::builder()
        .auth(AuthStrategy::Keystone)
        .with_dummy_backend("dummy1", "az1", Some("readable"))
        .build()
        .await;
    create_type(&app, "default", json!({})).await;
    create_type(&app, "readable", json!({"replication_type": "readable"})).await;
    app
}

async fn create_type(app: &TestApp, name: &str, specs: Value) -> String {
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
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["share_type"]["id"].as_str().unwrap().to_owned()
}

/// Creates a 1 GiB NFS share of `share_type` as `user` without waiting for it.
async fn create_share_unsettled(app: &TestApp, user: &str, share_type: &str) -> String {
    let resp = app
        .post("/v2/shares")
        .version(V)
        .token(&app.token_for(user))
        .json(&json!({"share": {"share_proto": "NFS", "size": 1, "share_type": share_type}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["share"]["id"].as_str().unwrap().to_owned()
}

/// Creates an available share of type `default` owned by alice (project A).
async fn alice_share(app: &TestApp) -> String {
    let id = create_share_unsettled(app, "alice", "default").await;
    app.settle().await;
    id
}

async fn action(app: &TestApp, user: &str, version: &str, id: &str, body: Value) -> TestResponse {
    app.post(&format!("/v2/shares/{id}/action"))
        .version(version)
        .token(&app.token_for(user))
        .json(&body)
        .send()
        .await
}

async fn allow(app: &TestApp, user: &str, version: &str, id: &str, rule: Value) -> TestResponse {
    action(app, user, version, id, json!({"allow_access": rule})).await
}

/// Allows `rule` as alice at 2.56 and returns the rule id.
async fn allow_ok(app: &TestApp, id: &str, rule: Value) -> String {
    let resp = allow(app, "alice", V, id, rule).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["access"]["id"].as_str().unwrap().to_owned()
}

async fn list_rules(app: &TestApp, user: &str, version: &str, query: &str) -> TestResponse {
    app.get(&format!("/v2/share-access-rules?{query}"))
        .version(version)
        .token(&app.token_for(user))
        .send()
        .await
}

async fn show_rule(app: &TestApp, user: &str, version: &str, rule: &str) -> TestResponse {
    app.get(&format!("/v2/share-access-rules/{rule}"))
        .version(version)
        .token(&app.token_for(user))
        .send()
        .await
}

/// The rule's view (alice, 2.56).
async fn rule_view(app: &TestApp, rule: &str) -> Value {
    let resp = show_rule(app, "alice", V, rule).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["access"].clone()
}

async fn share_view(app: &TestApp, id: &str) -> Value {
    let resp = app.get(&format!("/v2/shares/{id}")).version(V).send().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["share"].clone()
}

// ---- checklist R ----

#[tokio::test]
async fn r276_rw_rule_on_readable_share_stays_rw() {
    let app = app().await;
    let id = create_share_unsettled(&app, "alice", "readable").await;
    app.settle().await;
    assert_eq!(share_view(&app, &id).await["replication_type"], "readable");
    allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.0.0.0/24", "access_level": "rw"}),
    )
    .await;
    app.settle().await;
    let resp = list_rules(&app, "alice", V, &format!("share_id={id}")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let list = resp.json()["access_list"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["access_level"], "rw");
    assert_eq!(list[0]["state"], "active");
    app.finish().await;
}

#[tokio::test]
async fn r277_access_level_defaults_to_rw() {
    let app = app().await;
    let id = alice_share(&app).await;
    let resp = allow(
        &app,
        "alice",
        V,
        &id,
        json!({"access_type": "ip", "access_to": "10.0.0.1"}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let access = &resp.json()["access"];
    assert_eq!(access["access_level"], "rw");
    assert_eq!(access["state"], "queued_to_apply");
    assert_eq!(access["share_id"], id.as_str());
    let keys: Vec<&str> = access
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "access_key",
            "access_level",
            "access_to",
            "access_type",
            "created_at",
            "id",
            "metadata",
            "share_id",
            "state",
            "updated_at"
        ]
    );
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn r278_duplicate_ip_rule_is_400() {
    let app = app().await;
    let id = alice_share(&app).await;
    allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.0.0.7"}),
    )
    .await;
    let again = allow(
        &app,
        "alice",
        V,
        &id,
        json!({"access_type": "ip", "access_to": "10.0.0.7"}),
    )
    .await;
    again.assert_fault(400, "badRequest", Some("Share access ip:10.0.0.7 exists."));
    // Networks compare as networks: 10.0.0.7/32 is the same rule.
    let same = allow(
        &app,
        "alice",
        V,
        &id,
        json!({"access_type": "ip", "access_to": "10.0.0.7/32", "access_level": "ro"}),
    )
    .await;
    same.assert_fault(
        400,
        "badRequest",
        Some("Share access ip:10.0.0.7/32 exists."),
    );
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn r279_ip_rule_becomes_active_and_user_rule_errors_on_nfs() {
    let app = app().await;
    let id = alice_share(&app).await;
    let ip = allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.0.0.0/24"}),
    )
    .await;
    app.settle().await;
    assert_eq!(rule_view(&app, &ip).await["state"], "active");
    assert_eq!(share_view(&app, &id).await["access_rules_status"], "active");

    let user = allow_ok(
        &app,
        &id,
        json!({"access_type": "user", "access_to": "alice"}),
    )
    .await;
    app.settle().await;
    assert_eq!(rule_view(&app, &user).await["state"], "error");
    assert_eq!(rule_view(&app, &ip).await["state"], "active");
    assert_eq!(share_view(&app, &id).await["access_rules_status"], "error");
    app.finish().await;
}

#[tokio::test]
async fn r280_list_without_share_id_is_400() {
    let app = app().await;
    let resp = list_rules(&app, "alice", V, "").await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("The field 'share_id' has to be specified."),
    );
    app.finish().await;
}

#[tokio::test]
async fn r281_list_of_unknown_share_is_400() {
    let app = app().await;
    let unknown = "9b7c5f4e-1111-4222-8333-444455556666";
    let resp = list_rules(&app, "alice", V, &format!("share_id={unknown}")).await;
    resp.assert_fault(
        400,
        "badRequest",
        Some(&format!("Share {unknown} not found.")),
    );
    app.finish().await;
}

#[tokio::test]
async fn r282_access_list_action_is_gone_at_2_45() {
    let app = app().await;
    let id = alice_share(&app).await;
    allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.0.0.1"}),
    )
    .await;
    app.settle().await;
    let old = action(&app, "alice", "2.44", &id, json!({"access_list": null})).await;
    assert_eq!(old.status, 200, "{}", old.text());
    let list = old.json()["access_list"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["access_to"], "10.0.0.1");
    assert_eq!(list[0]["state"], "active");
    assert!(list[0].get("share_id").is_none());
    let legacy = action(&app, "alice", "2.6", &id, json!({"os-access_list": null})).await;
    assert_eq!(legacy.status, 200, "{}", legacy.text());
    // Below 2.28 a rule shows the share's access_rules_status.
    assert_eq!(legacy.json()["access_list"][0]["state"], "active");
    let gone = action(&app, "alice", "2.45", &id, json!({"access_list": null})).await;
    gone.assert_fault(
        404,
        "itemNotFound",
        Some("The resource could not be found."),
    );
    app.finish().await;
}

#[tokio::test]
async fn r283_deny_of_unknown_rule_is_404() {
    let app = app().await;
    let id = alice_share(&app).await;
    let resp = action(
        &app,
        "alice",
        V,
        &id,
        json!({"deny_access": {"access_id": "9b7c5f4e-1111-4222-8333-444455556666"}}),
    )
    .await;
    resp.assert_fault(404, "itemNotFound", Some("Resource could not be found."));
    // A rule of another share is not found through this share either.
    let other = alice_share(&app).await;
    let rule = allow_ok(
        &app,
        &other,
        json!({"access_type": "ip", "access_to": "10.9.0.0/16"}),
    )
    .await;
    let resp = action(
        &app,
        "alice",
        V,
        &id,
        json!({"deny_access": {"access_id": rule}}),
    )
    .await;
    resp.assert_fault(404, "itemNotFound", Some("Resource could not be found."));
    app.settle().await;
    app.finish().await;
}

// ---- lifecycle ----

#[tokio::test]
async fn deny_removes_the_rule() {
    let app = app().await;
    let id = alice_share(&app).await;
    let rule = allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.1.0.0/16"}),
    )
    .await;
    app.settle().await;
    // The deny answer is empty, so its state can only be seen with a show: keep the
    // background workers from moving it on to `denying` first.
    let held = app.hold_workers().await;
    let resp = action(
        &app,
        "alice",
        V,
        &id,
        json!({"deny_access": {"access_id": rule}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert!(resp.body.is_empty());
    assert_eq!(rule_view(&app, &rule).await["state"], "queued_to_deny");
    drop(held);
    app.settle().await;
    show_rule(&app, "alice", V, &rule).await.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Share access rule {rule} not found.")),
    );
    let list = list_rules(&app, "alice", V, &format!("share_id={id}")).await;
    assert_eq!(list.json()["access_list"], json!([]));
    assert_eq!(share_view(&app, &id).await["access_rules_status"], "active");
    // The same target may be allowed again once the rule is gone.
    allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.1.0.0/16"}),
    )
    .await;
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn legacy_action_keys_below_2_7() {
    let app = app().await;
    let id = alice_share(&app).await;
    let resp = action(
        &app,
        "alice",
        "2.6",
        &id,
        json!({"os-allow_access": {"access_type": "ip", "access_to": "10.2.0.0/16"}}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let access = resp.json()["access"].clone();
    // 2.6: no access_key, no timestamps, no metadata; state from the share ("new" while
    // its rules are syncing).
    assert!(access.get("access_key").is_none());
    assert!(access.get("created_at").is_none());
    assert_eq!(access["state"], "new");
    app.settle().await;
    let rule = access["id"].as_str().unwrap();
    let resp = action(
        &app,
        "alice",
        "2.6",
        &id,
        json!({"os-deny_access": {"access_id": rule}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn allow_waits_for_a_placed_available_instance() {
    let app = app().await;
    let id = create_share_unsettled(&app, "alice", "default").await;
    // Still `creating` without a host.
    let resp = allow(
        &app,
        "alice",
        V,
        &id,
        json!({"access_type": "ip", "access_to": "10.0.0.1"}),
    )
    .await;
    resp.assert_fault(400, "badRequest", Some(INVALID_INSTANCE));
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn metadata_and_view_fields_by_version() {
    let app = app().await;
    let id = alice_share(&app).await;
    // Below 2.45 metadata is ignored, not refused.
    let resp = allow(
        &app,
        "alice",
        "2.44",
        &id,
        json!({"access_type": "ip", "access_to": "10.3.0.0/16", "metadata": {"k": "v"}}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.json()["access"].get("metadata").is_none());
    let resp = allow(
        &app,
        "alice",
        "2.45",
        &id,
        json!({"access_type": "ip", "access_to": "10.4.0.0/16", "metadata": {"k": "v"}}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["access"]["metadata"], json!({"k": "v"}));
    let blank = allow(
        &app,
        "alice",
        "2.45",
        &id,
        json!({"access_type": "ip", "access_to": "10.5.0.0/16", "metadata": {"k": ""}}),
    )
    .await;
    blank.assert_fault(400, "badRequest", Some("Metadata property value is blank."));
    app.settle().await;
    let filtered = list_rules(
        &app,
        "alice",
        V,
        &format!("share_id={id}&metadata={{'k':'v'}}"),
    )
    .await;
    assert_eq!(filtered.status, 200, "{}", filtered.text());
    let list = filtered.json()["access_list"].as_array().unwrap().clone();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["access_to"], "10.4.0.0/16");
    // 2.20: no access_key; 2.21: access_key; 2.32: no timestamps.
    let at = |v| action(&app, "alice", v, &id, json!({"access_list": null}));
    let v220 = at("2.20").await.json()["access_list"][0].clone();
    assert!(v220.get("access_key").is_none());
    let v221 = at("2.21").await.json()["access_list"][0].clone();
    assert!(v221.get("access_key").is_some());
    assert!(v221.get("created_at").is_none());
    let v233 = at("2.33").await.json()["access_list"][0].clone();
    assert!(v233.get("created_at").is_some());
    app.finish().await;
}

// ---- validation ----

async fn assert_allow_400(app: &TestApp, id: &str, version: &str, rule: Value, message: &str) {
    let resp = allow(app, "alice", version, id, rule).await;
    resp.assert_fault(400, "badRequest", Some(message));
}

#[tokio::test]
async fn ip_rules_are_validated_like_python_ipaddress() {
    let app = app().await;
    let id = alice_share(&app).await;
    let ip = |to: &str| json!({"access_type": "ip", "access_to": to});
    assert_allow_400(
        &app,
        &id,
        "2.37",
        ip("10.0.0.256"),
        "Octet 256 (> 255) not permitted in '10.0.0.256'",
    )
    .await;
    assert_allow_400(
        &app,
        &id,
        "2.37",
        ip("10.0.0.0/33"),
        "'33' is not a valid netmask",
    )
    .await;
    // From 2.38 (`ip_network`) only host bits keep their own text.
    assert_allow_400(
        &app,
        &id,
        V,
        ip("10.0.0.256"),
        "'10.0.0.256' does not appear to be an IPv4 or IPv6 network",
    )
    .await;
    assert_allow_400(
        &app,
        &id,
        V,
        ip("10.0.0.1/24"),
        "10.0.0.1/24 has host bits set",
    )
    .await;
    assert_allow_400(
        &app,
        &id,
        V,
        ip("not-an-ip"),
        "'not-an-ip' does not appear to be an IPv4 or IPv6 network",
    )
    .await;
    // IPv6 from 2.38 only.
    assert_allow_400(
        &app,
        &id,
        "2.37",
        ip("2001:db8::/64"),
        "Expected 4 octets in '2001:db8::'",
    )
    .await;
    assert_allow_400(
        &app,
        &id,
        "2.38",
        ip("2001:db8::1/64"),
        "2001:db8::1/64 has host bits set",
    )
    .await;
    let resp = allow(&app, "alice", "2.38", &id, ip("2001:db8::/64")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn user_cert_cephx_type_and_level_validation() {
    let app = app().await;
    let id = alice_share(&app).await;
    let rule = |t: &str, to: &str| json!({"access_type": t, "access_to": to});
    assert_allow_400(&app, &id, V, rule("user", "abc"), USER_NAME_400).await;
    assert_allow_400(&app, &id, V, rule("user", "ali:ce"), USER_NAME_400).await;
    assert_allow_400(
        &app,
        &id,
        V,
        rule("user", "...."),
        "Invalid user or group name,cannot consist solely of periods or spaces.",
    )
    .await;
    assert_allow_400(
        &app,
        &id,
        V,
        rule("cert", &"c".repeat(65)),
        "Invalid CN (common name). Must be 1-64 chars long.",
    )
    .await;
    assert_allow_400(
        &app,
        &id,
        V,
        rule("cephx", "client.alice"),
        "Ceph IDs may not contain periods.",
    )
    .await;
    assert_allow_400(
        &app,
        &id,
        "2.12",
        rule("cephx", "alice"),
        "Only 'ip', 'user' or 'cert' access types are supported.",
    )
    .await;
    assert_allow_400(
        &app,
        &id,
        V,
        rule("nfs", "alice"),
        "Only 'ip', 'user', 'cert' or 'cephx' access types are supported.",
    )
    .await;
    assert_allow_400(
        &app,
        &id,
        V,
        json!({"access_type": "ip", "access_to": "10.0.0.1", "access_level": "rx"}),
        "Invalid access rule: Invalid share access level: rx.",
    )
    .await;
    // Malformed bodies are 400, never 500.
    let resp = allow(&app, "alice", V, &id, json!({"access_type": "ip"})).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    let resp = allow(&app, "alice", V, &id, json!("x")).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    let resp = allow(
        &app,
        "alice",
        V,
        &id,
        json!({"access_type": "cert", "access_to": 5}),
    )
    .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    // Nothing was created by any of these.
    let list = list_rules(&app, "alice", V, &format!("share_id={id}")).await;
    assert_eq!(list.json()["access_list"], json!([]));
    app.finish().await;
}

#[tokio::test]
async fn list_filters_are_validated_from_2_82() {
    let app = app().await;
    let id = alice_share(&app).await;
    allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.6.0.0/16"}),
    )
    .await;
    app.settle().await;
    let bad = list_rules(
        &app,
        "alice",
        "2.82",
        &format!("share_id={id}&access_type=nfs"),
    )
    .await;
    bad.assert_fault(
        400,
        "badRequest",
        Some("Invalid or unsupported share access type: nfs."),
    );
    let bad = list_rules(
        &app,
        "alice",
        "2.82",
        &format!("share_id={id}&access_level=rx"),
    )
    .await;
    bad.assert_fault(
        400,
        "badRequest",
        Some("Invalid or unsupported share access level: rx."),
    );
    let ok = list_rules(
        &app,
        "alice",
        "2.82",
        &format!("share_id={id}&access_type=user"),
    )
    .await;
    assert_eq!(ok.json()["access_list"], json!([]));
    let ok = list_rules(
        &app,
        "alice",
        "2.82",
        &format!("share_id={id}&access_type=ip"),
    )
    .await;
    assert_eq!(ok.json()["access_list"].as_array().unwrap().len(), 1);
    app.finish().await;
}

// ---- visibility and policy ----

#[tokio::test]
async fn other_projects_private_share_is_not_found() {
    let app = app().await;
    let id = alice_share(&app).await;
    let rule = allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.7.0.0/16"}),
    )
    .await;
    app.settle().await;
    let resp = allow(
        &app,
        "bob",
        V,
        &id,
        json!({"access_type": "ip", "access_to": "10.8.0.0/16"}),
    )
    .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some("NotFound: Resource could not be found."),
    );
    let resp = action(
        &app,
        "bob",
        V,
        &id,
        json!({"deny_access": {"access_id": rule}}),
    )
    .await;
    assert_eq!(resp.status, 404, "{}", resp.text());
    let resp = action(&app, "bob", "2.44", &id, json!({"access_list": null})).await;
    assert_eq!(resp.status, 404, "{}", resp.text());
    let resp = list_rules(&app, "bob", V, &format!("share_id={id}")).await;
    resp.assert_fault(400, "badRequest", Some(&format!("Share {id} not found.")));
    let resp = show_rule(&app, "bob", V, &rule).await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Share access rule {rule} not found.")),
    );
    // An admin of another project sees everything.
    let resp = app
        .get(&format!("/v2/share-access-rules/{rule}"))
        .version(V)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.finish().await;
}

#[tokio::test]
async fn public_share_of_another_project_is_readable_but_not_modifiable() {
    let app = app().await;
    let id = alice_share(&app).await;
    let resp = app
        .put(&format!("/v2/shares/{id}"))
        .version(V)
        .json(&json!({"share": {"is_public": true}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.10.0.0/16"}),
    )
    .await;
    app.settle().await;
    let resp = allow(
        &app,
        "bob",
        V,
        &id,
        json!({"access_type": "ip", "access_to": "10.11.0.0/16"}),
    )
    .await;
    resp.assert_fault(
        403,
        "forbidden",
        Some("Policy doesn't allow share:get to be performed."),
    );
    let resp = list_rules(&app, "bob", V, &format!("share_id={id}")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["access_list"].as_array().unwrap().len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn readers_list_but_cannot_allow_or_deny() {
    let app = app().await;
    let id = alice_share(&app).await;
    let rule = allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.12.0.0/16"}),
    )
    .await;
    app.settle().await;
    let resp = allow(
        &app,
        "rita",
        V,
        &id,
        json!({"access_type": "ip", "access_to": "10.13.0.0/16"}),
    )
    .await;
    resp.assert_fault(403, "forbidden", None);
    let resp = action(
        &app,
        "rita",
        V,
        &id,
        json!({"deny_access": {"access_id": rule}}),
    )
    .await;
    resp.assert_fault(403, "forbidden", None);
    let resp = list_rules(&app, "rita", V, &format!("share_id={id}")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = show_rule(&app, "rita", V, &rule).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["access"]["share_id"], id.as_str());
    // No roles at all: even reads are refused before any lookup.
    let resp = list_rules(&app, "nobody", V, "share_id=whatever").await;
    resp.assert_fault(403, "forbidden", None);
    let resp = show_rule(&app, "nobody", V, "whatever").await;
    resp.assert_fault(403, "forbidden", None);
    app.finish().await;
}

#[tokio::test]
async fn share_access_rules_exist_from_2_45_and_update_changes_the_level() {
    let app = app().await;
    let id = alice_share(&app).await;
    let rule = allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.14.0.0/16"}),
    )
    .await;
    app.settle().await;
    let resp = list_rules(&app, "alice", "2.44", &format!("share_id={id}")).await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some("The resource could not be found."),
    );
    let resp = show_rule(&app, "alice", "2.44", &rule).await;
    assert_eq!(resp.status, 404);
    let put = |version: &'static str| {
        app.put(&format!("/v2/share-access-rules/{rule}"))
            .version(version)
            .token(&app.token_for("alice"))
            .json(&json!({"update_access": {"access_level": "ro"}}))
            .send()
    };
    put("2.87").await.assert_fault(404, "itemNotFound", None);
    assert_eq!(rule_view(&app, &rule).await["access_level"], "rw");
    // Keep the background workers from applying the update before the share is shown.
    let held = app.hold_workers().await;
    let resp = put("2.88").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let view = resp.json()["access"].clone();
    assert_eq!(view["access_level"], "ro");
    assert_eq!(view["state"], "queued_to_update");
    assert_eq!(
        share_view(&app, &id).await["access_rules_status"],
        "syncing"
    );
    drop(held);
    app.settle().await;
    let view = rule_view(&app, &rule).await;
    assert_eq!(view["access_level"], "ro");
    assert_eq!(view["state"], "active");
    assert_eq!(share_view(&app, &id).await["access_rules_status"], "active");
    // The level the rule has: answered at once, nothing queued.
    let resp = put("2.88").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["access"]["state"], "active");
    // The project segment form works too.
    let resp = app
        .get(&format!("/v2/{PROJECT_A}/share-access-rules/{rule}"))
        .version(V)
        .token(&app.token_for("alice"))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.finish().await;
}

#[tokio::test]
async fn access_level_update_checks_follow_manila() {
    let app = app().await;
    let id = alice_share(&app).await;
    let rule = allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.15.0.0/16"}),
    )
    .await;
    app.settle().await;
    let put = |target: String, body: Value| {
        let app = &app;
        async move {
            app.put(&format!("/v2/share-access-rules/{target}"))
                .version("2.88")
                .token(&app.token_for("alice"))
                .json(&body)
                .send()
                .await
        }
    };
    put(rule.clone(), json!({"access_level": "ro"}))
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("The server could not comply with the request since it is either malformed or otherwise incorrect."),
        );
    put(rule.clone(), json!({"update_access": {}}))
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("Invalid input. Missing 'access_level' in update request."),
        );
    put(
        rule.clone(),
        json!({"update_access": {"access_level": "rx"}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Invalid or unsupported share access level: rx."),
    );
    let missing = "9b7c5f4e-1111-4222-8333-444455556666";
    put(
        missing.to_owned(),
        json!({"update_access": {"access_level": "ro"}}),
    )
    .await
    .assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Share access rule {missing} not found.")),
    );
    // Another project's rule is not found either.
    let resp = app
        .put(&format!("/v2/share-access-rules/{rule}"))
        .version("2.88")
        .token(&app.token_for("bob"))
        .json(&json!({"update_access": {"access_level": "ro"}}))
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Share access rule {rule} not found.")),
    );
    assert_eq!(rule_view(&app, &rule).await["access_level"], "rw");
    app.finish().await;
}
