//! Replica read endpoints and their microversion gating: checklist A.11–18, A.20, B.29–30,
//! C.39 and E.61. The active replica of a replicated share is a real replica row, created
//! by the share pipeline. At the end, smoke tests of the write side's HTTP plumbing (body
//! and action errors, policy order, export locations, metadata, replication history); the
//! checklist itself lives in the `replica_*` files.

use serde_json::{Value, json};
use shoal_testkit::{PROJECT_A, TestApp};

/// A replicated (`readable`) share created by `token`'s project, settled to `available`.
async fn replicated_share(app: &TestApp, token: &str) -> String {
    let body = json!({"share_type": {"name": "repl", "extra_specs":
        {"driver_handles_share_servers": false, "replication_type": "readable"}}});
    let created = app
        .post("/v2/types")
        .version("2.56")
        .json(&body)
        .send()
        .await
        .status;
    assert!(
        created == 200 || created == 409,
        "type create gave {created}"
    );
    let body = json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "repl"}});
    let resp = app
        .post("/v2/shares")
        .version("2.56")
        .token(token)
        .json(&body)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let id = resp.json()["share"]["id"].as_str().unwrap().to_owned();
    app.settle().await;
    id
}

fn list(body: &Value) -> &Vec<Value> {
    body["share_replicas"]
        .as_array()
        .expect("share_replicas list")
}

#[tokio::test]
async fn a11_a12_a13_a15_replicas_are_hidden_without_version_or_flag() {
    let app = TestApp::noauth().await;
    let cases: [(Option<&str>, Option<&str>); 4] = [
        (None, None),
        (Some("2.10"), Some("true")),
        (Some("2.11"), None),
        (Some("2.55"), Some("false")),
    ];
    for (version, flag) in cases {
        let mut req = app.get("/v2/share-replicas");
        if let Some(v) = version {
            req = req.version(v);
        }
        if let Some(f) = flag {
            req = req.experimental(f);
        }
        let resp = req.send().await;
        resp.assert_fault(
            404,
            "itemNotFound",
            Some("The resource could not be found."),
        );
        assert_eq!(
            resp.header("x-openstack-manila-api-version"),
            Some(version.unwrap_or("2.0"))
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn a14_a16_a17_a18_replicas_are_served_experimentally_then_generally() {
    let app = TestApp::noauth().await;
    let resp = app
        .get("/v2/share-replicas")
        .version("2.11")
        .experimental("true")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.header("x-openstack-manila-api-experimental"),
        Some("True")
    );
    let resp = app.get("/v2/share-replicas").version("2.56").send().await;
    assert_eq!(resp.status, 200);
    assert!(resp.header("x-openstack-manila-api-experimental").is_none());
    let resp = app
        .get("/v2/share-replicas")
        .version("2.56")
        .experimental("yes")
        .send()
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.header("x-openstack-manila-api-experimental"),
        Some("True")
    );
    assert_eq!(
        app.get("/v2/share-replicas/detail")
            .version("2.99")
            .send()
            .await
            .status,
        200
    );
    app.finish().await;
}

#[tokio::test]
async fn a20_replica_faults_carry_version_headers_and_c39_put_is_item_not_found() {
    let app = TestApp::noauth().await;
    let missing = "00000000-0000-4000-8000-000000000000";
    let resp = app
        .get(&format!("/v2/share-replicas/{missing}"))
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Replica {missing} not found.")),
    );
    assert_eq!(resp.header("x-openstack-manila-api-version"), Some("2.56"));
    assert_eq!(resp.header("vary"), Some("X-OpenStack-Manila-API-Version"));
    let resp = app
        .put(&format!("/v2/share-replicas/{missing}"))
        .version("2.56")
        .json(&json!({}))
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some("The resource could not be found."),
    );
    let resp = app
        .get("/v2/share-replicas?limit=x")
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some("limit param must be an integer"));
    assert_eq!(resp.header("x-openstack-manila-api-version"), Some("2.56"));
    app.finish().await;
}

#[tokio::test]
async fn e61_replicated_share_lists_its_active_replica() {
    let app = TestApp::noauth().await;
    let share = replicated_share(&app, &app.token_for("admin")).await;
    let resp = app
        .get(&format!("/v2/share-replicas?share_id={share}"))
        .version("2.56")
        .send()
        .await;
    let body = resp.json();
    let replicas = list(&body);
    assert_eq!(replicas.len(), 1, "{body}");
    assert_eq!(replicas[0]["replica_state"], "active");
    assert_eq!(replicas[0]["status"], "available");
    assert_eq!(replicas[0]["share_id"], share.as_str());
    assert_eq!(
        replicas[0].as_object().unwrap().len(),
        4,
        "summary view: {body}"
    );
    // The share itself says it has no secondaries.
    let view = app
        .get(&format!("/v2/shares/{share}"))
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(view["share"]["replication_type"], "readable");
    assert_eq!(view["share"]["has_replicas"], false);
    // Unknown share ids filter to an empty list (Manila quirk).
    let none = app
        .get("/v2/share-replicas?share_id=nope")
        .version("2.56")
        .send()
        .await
        .json();
    assert!(list(&none).is_empty());
    app.finish().await;
}

#[tokio::test]
async fn b29_noauth_detail_views_carry_admin_fields() {
    let app = TestApp::noauth().await;
    let share = replicated_share(&app, &app.token_for("admin")).await;
    let body = app
        .get(&format!("/v2/share-replicas/detail?share_id={share}"))
        .version("2.56")
        .send()
        .await
        .json();
    let replica = &list(&body)[0];
    assert!(replica["host"].as_str().unwrap().contains('#'), "{replica}");
    assert!(replica.get("share_server_id").is_some());
    assert_eq!(replica["cast_rules_to_readonly"], false);
    assert!(replica["availability_zone"].is_string());
    let id = replica["id"].as_str().unwrap();
    let shown = app
        .get(&format!("/v2/share-replicas/{id}"))
        .version("2.29")
        .experimental("true")
        .send()
        .await
        .json();
    assert!(
        shown["share_replica"]
            .get("cast_rules_to_readonly")
            .is_none(),
        "only from 2.30"
    );
    assert!(shown["share_replica"].get("host").is_some());
    let at_95 = app
        .get(&format!("/v2/share-replicas/{id}"))
        .version("2.95")
        .send()
        .await
        .json();
    assert_eq!(at_95["share_replica"]["metadata"], json!({}));
    app.finish().await;
}

#[tokio::test]
async fn b30_noauth_lists_replicas_of_every_project() {
    let app = TestApp::noauth().await;
    replicated_share(&app, "u1:aaaa").await;
    replicated_share(&app, "u2:bbbb").await;
    let body = app
        .get("/v2/share-replicas")
        .token("u3:cccc")
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(list(&body).len(), 2, "{body}");
    app.finish().await;
}

#[tokio::test]
async fn keystone_members_see_only_their_projects_replicas() {
    let app = TestApp::keystone().await;
    let alice = app.token_for("alice");
    let bob = app.token_for("bob");
    let admin = app.token_for("admin");
    let share = replicated_share(&app, &alice).await;
    let mine = app
        .get("/v2/share-replicas/detail")
        .token(&alice)
        .version("2.56")
        .send()
        .await
        .json();
    let replicas = list(&mine);
    assert_eq!(replicas.len(), 1);
    assert!(
        replicas[0].get("host").is_none(),
        "members get no admin fields"
    );
    assert!(replicas[0].get("cast_rules_to_readonly").is_none());
    let id = replicas[0]["id"].as_str().unwrap().to_owned();
    let theirs = app
        .get("/v2/share-replicas")
        .token(&bob)
        .version("2.56")
        .send()
        .await
        .json();
    assert!(list(&theirs).is_empty());
    let resp = app
        .get(&format!("/v2/share-replicas/{id}"))
        .token(&bob)
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Replica {id} not found.")),
    );
    // Readers may list; admins see every project without all_tenants.
    let rita = app
        .get("/v2/share-replicas")
        .token(&app.token_for("rita"))
        .version("2.56")
        .send()
        .await;
    assert_eq!(rita.status, 200);
    let all = app
        .get("/v2/share-replicas")
        .token(&admin)
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(list(&all).len(), 1);
    // A member's request through the project URL works too.
    let via_project = app
        .get(&format!("/v2/{PROJECT_A}/share-replicas/{id}"))
        .token(&alice)
        .version("2.56")
        .send()
        .await;
    assert_eq!(via_project.status, 200);
    let _ = share;
    app.finish().await;
}

#[tokio::test]
async fn replica_lists_paginate_with_next_links() {
    let app = TestApp::noauth().await;
    for _ in 0..3 {
        replicated_share(&app, &app.token_for("admin")).await;
    }
    let body = app
        .get("/v2/share-replicas?limit=2")
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(list(&body).len(), 2);
    let next = body["share_replica_links"][0]["href"].as_str().unwrap();
    assert!(
        next.contains("/v2/share-replicas?limit=2&marker="),
        "{next}"
    );
    let rest = app
        .get("/v2/share-replicas?limit=2&offset=2")
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(list(&rest).len(), 1);
    assert!(rest.get("share_replica_links").is_none());
    app.finish().await;
}

#[tokio::test]
async fn a19_show_at_2_11_to_2_55_needs_the_experimental_header() {
    let app = TestApp::noauth().await;
    let share = replicated_share(&app, &app.token_for("admin")).await;
    let body = app
        .get(&format!("/v2/share-replicas?share_id={share}"))
        .version("2.56")
        .send()
        .await
        .json();
    let id = list(&body)[0]["id"].as_str().unwrap().to_owned();
    for version in ["2.11", "2.30", "2.55"] {
        let hidden = app
            .get(&format!("/v2/share-replicas/{id}"))
            .version(version)
            .send()
            .await;
        hidden.assert_fault(
            404,
            "itemNotFound",
            Some("The resource could not be found."),
        );
        let shown = app
            .get(&format!("/v2/share-replicas/{id}"))
            .version(version)
            .experimental("true")
            .send()
            .await;
        assert_eq!(shown.status, 200, "{version}: {}", shown.text());
    }
    app.finish().await;
}

// ---------------------------------------------------------------------------------------
// Write side smoke tests
// ---------------------------------------------------------------------------------------

const MISSING: &str = "00000000-0000-4000-8000-000000000000";

/// Two dummy back ends, `dummy1` in az1 and `dummy2` in az2, with a `readable` type.
async fn dummy_app(auth: shoal_core::config::AuthStrategy) -> TestApp {
    let app = TestApp::builder()
        .auth(auth)
        .with_dummy_backend("dummy1", "az1", Some("readable"))
        .with_dummy_backend("dummy2", "az2", Some("readable"))
        .build()
        .await;
    let body = json!({"share_type": {"name": "repl", "extra_specs":
        {"driver_handles_share_servers": false, "replication_type": "readable"}}});
    let resp = app
        .post("/v2/types")
        .version("2.56")
        .token(&app.token_for("admin"))
        .json(&body)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app
}

/// An available replicated share of `token`'s project in az1.
async fn share_in_az1(app: &TestApp, token: &str) -> String {
    let body = json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "repl",
        "availability_zone": "az1"}});
    let resp = app
        .post("/v2/shares")
        .version("2.56")
        .token(token)
        .json(&body)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;
    resp.json()["share"]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn write_side_body_and_action_errors() {
    let app = TestApp::noauth().await;
    // Create: version first, then the body.
    let resp = app
        .post("/v2/share-replicas")
        .version("2.11")
        .json(&json!({"share_replica": {"share_id": MISSING}}))
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some("The resource could not be found."),
    );
    let resp = app.post("/v2/share-replicas").version("2.56").send().await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("The server could not comply with the request since it is either malformed or otherwise incorrect."),
    );
    for body in [json!({}), json!({"share_replica": "x"}), json!([1])] {
        let resp = app
            .post("/v2/share-replicas")
            .version("2.56")
            .json(&body)
            .send()
            .await;
        resp.assert_fault(
            422,
            "computeFault",
            Some("Body does not contain 'share_replica' information."),
        );
    }
    for share_id in [json!(null), json!(""), json!(0)] {
        let resp = app
            .post("/v2/share-replicas")
            .version("2.56")
            .json(&json!({"share_replica": {"share_id": share_id}}))
            .send()
            .await;
        resp.assert_fault(
            400,
            "badRequest",
            Some("Must provide Share ID to add replica."),
        );
    }
    // Actions: plumbing errors come before the version match, as in Manila.
    let action = format!("/v2/share-replicas/{MISSING}/action");
    let resp = app.post(&action).version("2.56").send().await;
    resp.assert_fault(400, "badRequest", Some("There is no such action: None"));
    let resp = app
        .post(&action)
        .version("2.56")
        .json(&json!({"os-reset_status": {"status": "error"}}))
        .send()
        .await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("There is no such action: os-reset_status"),
    );
    let resp = app
        .post(&action)
        .version("2.56")
        .json(&json!({"promote": null, "resync": null}))
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some("Malformed request body"));
    let resp = app
        .post(&action)
        .version("2.55")
        .json(&json!({"promote": null}))
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some("The resource could not be found."),
    );
    let cases = [
        (json!({"reset_status": null}), "Must specify 'status'"),
        (json!({"reset_status": {}}), "Must specify 'status'"),
        (
            json!({"reset_replica_state": {"state": "error"}}),
            "Must specify 'replica_state'",
        ),
        (
            json!({"reset_replica_state": {"replica_state": "available"}}),
            "Invalid state. Valid states: active, in_sync, out_of_sync, error.",
        ),
    ];
    for (body, message) in cases {
        let resp = app.post(&action).version("2.56").json(&body).send().await;
        resp.assert_fault(400, "badRequest", Some(message));
    }
    let resp = app
        .post(&action)
        .version("2.56")
        .json(&json!({"reset_status": {"status": "in_sync"}}))
        .send()
        .await;
    assert_eq!(resp.status, 400);
    assert!(
        resp.json()["badRequest"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid state. Valid states: "),
        "{}",
        resp.text()
    );
    // Export locations from 2.47 (experimental until 2.55), metadata from 2.95.
    let els = format!("/v2/share-replicas/{MISSING}/export-locations");
    let resp = app
        .get(&els)
        .version("2.46")
        .experimental("true")
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some("The resource could not be found."),
    );
    let resp = app
        .get(&els)
        .version("2.47")
        .experimental("true")
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Share replica '{MISSING}' not found.")),
    );
    let metadata = format!("/v2/share-replicas/{MISSING}/metadata");
    let resp = app.get(&metadata).version("2.94").send().await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some("The resource could not be found."),
    );
    let resp = app
        .post(&metadata)
        .version("2.95")
        .json(&json!({"meta": {"a": "1"}}))
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some("Malformed request body"));
    let resp = app.get(&metadata).version("2.95").send().await;
    resp.assert_fault(404, "itemNotFound", Some("Share_replica not found."));
    app.finish().await;
}

#[tokio::test]
async fn write_side_policies_come_before_lookups() {
    let app = TestApp::keystone().await;
    let alice = app.token_for("alice");
    let rita = app.token_for("rita");
    let action = format!("/v2/share-replicas/{MISSING}/action");
    let denied = Some("Access was denied to this resource.");
    for body in [
        json!({"resync": null}),
        json!({"reset_status": {"status": "error"}}),
        json!({"reset_replica_state": {"replica_state": "error"}}),
        json!({"force_delete": null}),
    ] {
        let resp = app
            .post(&action)
            .token(&alice)
            .version("2.56")
            .json(&body)
            .send()
            .await;
        resp.assert_fault(403, "forbidden", denied);
    }
    // The policy of the action is checked before its value is validated.
    let resp = app
        .post(&action)
        .token(&alice)
        .version("2.56")
        .json(&json!({"reset_status": {}}))
        .send()
        .await;
    resp.assert_fault(403, "forbidden", denied);
    let resp = app
        .post(&action)
        .token(&rita)
        .version("2.56")
        .json(&json!({"promote": null}))
        .send()
        .await;
    resp.assert_fault(403, "forbidden", denied);
    let resp = app
        .post("/v2/share-replicas")
        .token(&rita)
        .version("2.56")
        .json(&json!({"share_replica": {}}))
        .send()
        .await;
    resp.assert_fault(403, "forbidden", denied);
    let resp = app
        .get(&format!("/v2/share-replicas/{MISSING}/metadata"))
        .token(&rita)
        .version("2.95")
        .send()
        .await;
    resp.assert_fault(403, "forbidden", denied);
    let resp = app
        .get(&format!("/v2/share-replicas/{MISSING}/replication-history"))
        .token(&alice)
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(403, "forbidden", denied);
    let resp = app
        .get(&format!("/v2/share-replicas/{MISSING}/replication-history"))
        .token(&app.token_for("admin"))
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Replica {MISSING} not found.")),
    );
    app.finish().await;
}

#[tokio::test]
async fn replica_lifecycle_through_the_api() {
    let app = dummy_app(shoal_core::config::AuthStrategy::Noauth).await;
    let share = share_in_az1(&app, &app.token_for("admin")).await;
    let resp = app
        .post("/v2/share-replicas")
        .version("2.95")
        .json(&json!({"share_replica": {"share_id": share, "metadata": {"a": "1"}}}))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let created = resp.json()["share_replica"].clone();
    assert_eq!(created["replica_state"], Value::Null, "{created}");
    assert_eq!(created["status"], "creating");
    assert_eq!(created["metadata"], json!({"a": "1"}));
    let secondary = created["id"].as_str().unwrap().to_owned();
    app.settle().await;

    // Detail views at 2.95 carry each replica's own metadata.
    let body = app
        .get(&format!("/v2/share-replicas/detail?share_id={share}"))
        .version("2.95")
        .send()
        .await
        .json();
    let replicas = list(&body);
    assert_eq!(replicas.len(), 2, "{body}");
    for replica in replicas {
        let expected = if replica["id"] == secondary.as_str() {
            json!({"a": "1"})
        } else {
            json!({})
        };
        assert_eq!(replica["metadata"], expected, "{replica}");
    }
    let active = replicas
        .iter()
        .find(|r| r["replica_state"] == "active")
        .and_then(|r| r["id"].as_str())
        .unwrap()
        .to_owned();

    // Export locations: the replica's own, with its state and zone.
    let resp = app
        .get(&format!("/v2/share-replicas/{secondary}/export-locations"))
        .version("2.87")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let els = resp.json()["export_locations"].as_array().unwrap().clone();
    assert!(!els.is_empty());
    for el in &els {
        assert_eq!(el["replica_state"], "in_sync", "{el}");
        assert_eq!(el["availability_zone"], "az2", "{el}");
        assert_eq!(el["share_instance_id"], secondary.as_str());
        assert_eq!(el["metadata"], json!({}));
        assert!(el.get("created_at").is_none());
    }
    let el_id = els[0]["id"].as_str().unwrap();
    let shown = app
        .get(&format!(
            "/v2/share-replicas/{secondary}/export-locations/{el_id}"
        ))
        .version("2.56")
        .send()
        .await;
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert!(shown.json()["export_location"]["created_at"].is_string());
    // Stricter than Manila: a location must belong to the replica in the URL.
    let resp = app
        .get(&format!(
            "/v2/share-replicas/{active}/export-locations/{el_id}"
        ))
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Export location {el_id} could not be found.")),
    );

    // Metadata: merge, item update, replace, delete.
    let metadata = format!("/v2/share-replicas/{secondary}/metadata");
    let resp = app
        .post(&metadata)
        .version("2.95")
        .json(&json!({"metadata": {"b": "2"}}))
        .send()
        .await;
    assert_eq!(resp.json(), json!({"metadata": {"b": "2"}}));
    let all = app.get(&metadata).version("2.95").send().await.json();
    assert_eq!(all, json!({"metadata": {"a": "1", "b": "2"}}));
    let resp = app
        .post(&format!("{metadata}/a"))
        .version("2.95")
        .json(&json!({"metadata": {"b": "9"}}))
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some("Request body and URI mismatch"));
    let resp = app
        .post(&format!("{metadata}/a"))
        .version("2.95")
        .json(&json!({"metadata": {"a": "9"}}))
        .send()
        .await;
    assert_eq!(resp.json(), json!({"metadata": {"a": "9"}}));
    let item = app
        .get(&format!("{metadata}/a"))
        .version("2.95")
        .send()
        .await
        .json();
    assert_eq!(item, json!({"meta": {"a": "9"}}));
    let resp = app
        .delete(&format!("{metadata}/a"))
        .version("2.95")
        .send()
        .await;
    assert_eq!(resp.status, 200);
    let resp = app
        .delete(&format!("{metadata}/a"))
        .version("2.95")
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some("MetadataItemNotFound: Metadata item is not found."),
    );
    let resp = app
        .put(&metadata)
        .version("2.95")
        .json(&json!({"metadata": null}))
        .send()
        .await;
    assert_eq!(resp.json(), json!({"metadata": {}}));
    let shown = app
        .get(&format!("/v2/share-replicas/{secondary}"))
        .version("2.95")
        .send()
        .await
        .json();
    assert_eq!(shown["share_replica"]["metadata"], json!({}));

    // Replication history answers a list (admin only).
    let resp = app
        .get(&format!(
            "/v2/share-replicas/{secondary}/replication-history?limit=5"
        ))
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.json()["replication_history"].is_array());

    // Promote: the active one is a no-op (200, empty), the secondary is accepted (202).
    let resp = app
        .post(&format!("/v2/share-replicas/{active}/action"))
        .version("2.56")
        .json(&json!({"promote": null}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.text().is_empty());
    let resp = app
        .post(&format!("/v2/share-replicas/{secondary}/action"))
        .version("2.75")
        .json(&json!({"promote": {"quiesce_wait_time": 5}}))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(resp.json()["share_replica"]["status"], "replication_change");
    app.settle().await;

    // The old active can now be deleted.
    let resp = app
        .delete(&format!("/v2/share-replicas/{active}"))
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert!(resp.text().is_empty());
    app.settle().await;
    app.finish().await;
}

// ---------------------------------------------------------------------------------------
// Issue 2 lines that needed the write side
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a19_write_endpoints_at_2_11_to_2_55_need_the_experimental_header() {
    use crate::replica_fixtures as fx;
    let app = fx::app().await;
    let (share, _active, secondary) = fx::replicated(&app, "admin").await;
    let action = format!("/v2/share-replicas/{secondary}/action");
    let calls: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/v2/share-replicas".to_owned(),
            Some(json!({"share_replica": {"share_id": share}})),
        ),
        ("DELETE", format!("/v2/share-replicas/{secondary}"), None),
        ("POST", action.clone(), Some(json!({"promote": null}))),
        ("POST", action.clone(), Some(json!({"resync": null}))),
        (
            "POST",
            action.clone(),
            Some(json!({"reset_status": {"status": "error"}})),
        ),
        (
            "POST",
            action.clone(),
            Some(json!({"reset_replica_state": {"replica_state": "out_of_sync"}})),
        ),
        ("POST", action.clone(), Some(json!({"force_delete": null}))),
    ];
    for version in ["2.11", "2.30", "2.55"] {
        for (method, path, body) in &calls {
            let mut req = match *method {
                "POST" => app.post(path),
                _ => app.delete(path),
            }
            .version(version);
            if let Some(body) = body {
                req = req.json(body);
            }
            let resp = req.send().await;
            resp.assert_fault(404, "itemNotFound", Some(fx::NOT_FOUND));
        }
    }
    // None of them did anything: still one secondary, available and in_sync.
    app.settle().await;
    assert_eq!(fx::replicas_of(&app, &share).await.len(), 2);
    let view = fx::replica(&app, &secondary).await;
    assert_eq!(view["status"], "available", "{view}");
    assert_eq!(view["replica_state"], "in_sync", "{view}");
    // With the header the same version serves them (one of each shape is enough here; the
    // replica_* files test every endpoint at 2.56).
    let resp = app
        .post(&action)
        .version("2.11")
        .experimental("true")
        .json(&json!({"reset_replica_state": {"replica_state": "out_of_sync"}}))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.finish().await;
}

#[tokio::test]
async fn d58_removing_replication_type_from_the_type_keeps_the_shares_copy() {
    use crate::replica_fixtures as fx;
    let app = fx::app().await;
    let share = fx::available_share(&app, "admin").await;
    let types = app.get("/v2/types").version(fx::V).send().await.json();
    let type_id = types["share_types"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "readable")
        .expect("the fixture's readable type")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = app
        .delete(&format!("/v2/types/{type_id}/extra_specs/replication_type"))
        .version(fx::V)
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let specs = app
        .get(&format!("/v2/types/{type_id}/extra_specs"))
        .version(fx::V)
        .send()
        .await
        .json();
    assert!(
        specs["extra_specs"].get("replication_type").is_none(),
        "{specs}"
    );
    assert_eq!(
        fx::share_view(&app, &share).await["replication_type"],
        "readable"
    );
    let resp = fx::post_replica(
        &app,
        "admin",
        fx::V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    app.finish().await;
}
