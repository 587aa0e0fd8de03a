//! Replica read endpoints and their microversion gating: checklist A.11–18, A.20, B.29–30,
//! C.39 and E.61. The active replica of a replicated share is a real replica row, created
//! by the share pipeline; secondaries arrive with the replication work.

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
