//! Share instances (admin API): list with Manila's filters, show, the instances of a share,
//! instance export locations and the `reset_status` / `force_delete` actions, with their
//! microversion gates, policies and 404 texts (Manila's `v2/share_instances.py`,
//! `v2/share_instance_export_locations.py`).

use serde_json::{Value, json};
use shoal_testkit::{TestApp, TestResponse};

use crate::replica_fixtures::*;

/// `GET path` as `user` at `version`.
async fn get(app: &TestApp, user: &str, version: &str, path: &str) -> TestResponse {
    app.get(path)
        .version(version)
        .token(&app.token_for(user))
        .send()
        .await
}

/// `POST /v2/share_instances/{id}/action` as `user` at `version`.
async fn instance_action(
    app: &TestApp,
    user: &str,
    version: &str,
    id: &str,
    body: Value,
) -> TestResponse {
    app.post(&format!("/v2/share_instances/{id}/action"))
        .version(version)
        .token(&app.token_for(user))
        .json(&body)
        .send()
        .await
}

/// The `share_instances` array of a 200 answer.
fn instances(resp: &TestResponse) -> Vec<Value> {
    assert_eq!(resp.status, 200, "instances: {}", resp.text());
    resp.json()["share_instances"]
        .as_array()
        .expect("share_instances")
        .clone()
}

/// Ids of a list of views.
fn ids_of(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_owned())
        .collect()
}

/// Sorted keys of a view.
fn keys(view: &Value) -> Vec<String> {
    let mut keys: Vec<String> = view.as_object().expect("object").keys().cloned().collect();
    keys.sort();
    keys
}

/// The single instance of a plain share.
async fn instance_of(app: &TestApp, share: &str) -> Value {
    let resp = get(
        app,
        "admin",
        "2.71",
        &format!("/v2/shares/{share}/instances"),
    )
    .await;
    let items = instances(&resp);
    assert_eq!(items.len(), 1, "{items:?}");
    items[0].clone()
}

#[tokio::test]
async fn instance_views_follow_the_microversion() {
    let app = app().await;
    let share = plain_share(&app, "admin").await;
    let instance = instance_of(&app, &share).await;
    let id = instance["id"].as_str().expect("id").to_owned();

    let old = get(&app, "admin", "2.3", &format!("/v2/share_instances/{id}")).await;
    assert_eq!(old.status, 200, "{}", old.text());
    let old = old.json()["share_instance"].clone();
    assert_eq!(
        keys(&old),
        [
            "availability_zone",
            "created_at",
            "export_location",
            "export_locations",
            "host",
            "id",
            "share_id",
            "share_network_id",
            "share_server_id",
            "status",
        ]
    );
    let paths = old["export_locations"].as_array().expect("paths").clone();
    assert!(!paths.is_empty(), "{old}");
    assert_eq!(old["export_location"], paths[0]);

    let new = get(&app, "admin", "2.71", &format!("/v2/share_instances/{id}")).await;
    let new = new.json()["share_instance"].clone();
    assert_eq!(
        keys(&new),
        [
            "access_rules_status",
            "availability_zone",
            "cast_rules_to_readonly",
            "created_at",
            "host",
            "id",
            "progress",
            "replica_state",
            "share_id",
            "share_network_id",
            "share_server_id",
            "share_type_id",
            "status",
            "updated_at",
        ]
    );
    assert_eq!(new["share_id"], share);
    assert_eq!(new["status"], "available");
    assert_eq!(new["host"], pool_of("dummy1"));
    assert_eq!(new["availability_zone"], "az1");
    assert_eq!(new["access_rules_status"], "active");
    assert_eq!(new["replica_state"], Value::Null);
    assert_eq!(new["progress"], "100%");
    assert_eq!(new, instance);

    // 2.70 has everything but `updated_at`; 2.53 also lacks `progress`.
    let v70 = get(&app, "admin", "2.70", &format!("/v2/share_instances/{id}")).await;
    assert!(v70.json()["share_instance"].get("updated_at").is_none());
    let v53 = get(&app, "admin", "2.53", &format!("/v2/share_instances/{id}")).await;
    assert!(v53.json()["share_instance"].get("progress").is_none());
    app.finish().await;
}

#[tokio::test]
async fn list_and_share_instances_show_every_instance() {
    let app = app().await;
    let (share, active, secondary) = replicated(&app, "admin").await;
    let plain = plain_share(&app, "admin").await;
    let plain_instance = instance_of(&app, &plain).await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    let all = instances(&get(&app, "admin", "2.3", "/v2/share_instances").await);
    assert_eq!(
        ids_of(&all),
        [active.clone(), secondary.clone(), plain_instance],
        "creation order"
    );
    let of_share = instances(
        &get(
            &app,
            "admin",
            "2.11",
            &format!("/v2/shares/{share}/instances"),
        )
        .await,
    );
    assert_eq!(ids_of(&of_share), [active, secondary]);
    assert_eq!(of_share[0]["replica_state"], "active");
    assert_eq!(of_share[1]["replica_state"], "in_sync");

    get(
        &app,
        "admin",
        "2.3",
        &format!("/v2/shares/{MISSING}/instances"),
    )
    .await
    .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    app.finish().await;
}

#[tokio::test]
async fn list_filters_follow_the_microversion() {
    let app = app().await;
    let first = plain_share(&app, "admin").await;
    let second = plain_share(&app, "admin").await;
    let first_instance = instance_of(&app, &first).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let second_instance = instance_of(&app, &second).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let els = get(
        &app,
        "admin",
        "2.9",
        &format!("/v2/share_instances/{first_instance}/export_locations"),
    )
    .await;
    let el = els.json()["export_locations"][0].clone();
    let el_id = el["id"].as_str().expect("el id").to_owned();
    let el_path = el["path"].as_str().expect("el path").to_owned();
    let encoded_path: String = el_path
        .bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect();

    let list = |version: &'static str, query: String| {
        let app = &app;
        async move {
            ids_of(&instances(
                &get(
                    app,
                    "admin",
                    version,
                    &format!("/v2/share_instances?{query}"),
                )
                .await,
            ))
        }
    };
    let both = vec![first_instance.clone(), second_instance.clone()];
    // Before 2.35 the query is ignored.
    assert_eq!(
        list("2.34", format!("export_location_id={el_id}")).await,
        both
    );
    assert_eq!(
        list("2.35", format!("export_location_id={el_id}")).await,
        std::slice::from_ref(&first_instance)
    );
    assert_eq!(
        list("2.35", format!("export_location_path={encoded_path}")).await,
        std::slice::from_ref(&first_instance)
    );
    assert_eq!(
        list("2.35", "export_location_id=not-a-uuid".to_owned()).await,
        Vec::<String>::new()
    );
    let host = shoal_testkit::TEST_HOST;
    assert_eq!(list("2.35", format!("host={host}%40dummy1")).await, both);
    assert_eq!(
        list("2.35", format!("host={host}")).await,
        Vec::<String>::new()
    );
    assert_eq!(
        list("2.35", "status=error".to_owned()).await,
        Vec::<String>::new()
    );
    assert_eq!(list("2.35", "status=available".to_owned()).await, both);

    // Nothing in the recycle bin yet: every instance is a live share's.
    assert_eq!(list("2.69", "is_soft_deleted=false".to_owned()).await, both);
    assert_eq!(
        list("2.69", "is_soft_deleted=true".to_owned()).await,
        Vec::<String>::new()
    );
    // A soft-deleted share's instances are listed only with is_soft_deleted=true.
    let resp = app
        .post(&format!("/v2/shares/{second}/action"))
        .version("2.69")
        .token(&app.token_for("admin"))
        .json(&json!({"soft_delete": null}))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(
        list("2.69", "is_soft_deleted=true".to_owned()).await,
        std::slice::from_ref(&second_instance)
    );
    assert_eq!(
        list("2.69", "is_soft_deleted=false".to_owned()).await,
        std::slice::from_ref(&first_instance)
    );
    assert_eq!(
        list("2.35", String::new()).await,
        std::slice::from_ref(&first_instance)
    );
    get(
        &app,
        "admin",
        "2.69",
        "/v2/share_instances?is_soft_deleted=maybe",
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Invalid value maybe for is_soft_deleted. Expecting a boolean."),
    );
    // Before 2.69 Manila passes the raw string on, and any non-empty one is true.
    assert_eq!(
        list("2.68", "is_soft_deleted=false".to_owned()).await,
        std::slice::from_ref(&second_instance)
    );
    app.finish().await;
}

#[tokio::test]
async fn versions_policies_and_unknown_ids() {
    let app = keystone_app().await;
    let share = plain_share(&app, "alice").await;
    let id = instance_of(&app, &share).await["id"]
        .as_str()
        .expect("id")
        .to_owned();

    // Below 2.3 (2.9 for export locations) the methods do not exist.
    for (version, path) in [
        ("2.2", "/v2/share_instances".to_owned()),
        ("2.2", format!("/v2/share_instances/{id}")),
        ("2.2", format!("/v2/shares/{share}/instances")),
        ("2.8", format!("/v2/share_instances/{id}/export_locations")),
    ] {
        get(&app, "admin", version, &path)
            .await
            .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    }

    // A member (even the share's owner) is refused before any lookup.
    for path in [
        "/v2/share_instances".to_owned(),
        format!("/v2/share_instances/{id}"),
        format!("/v2/share_instances/{MISSING}"),
        format!("/v2/shares/{share}/instances"),
        format!("/v2/share_instances/{id}/export_locations"),
        format!("/v2/share_instances/{MISSING}/export_locations/{MISSING}"),
    ] {
        get(&app, "alice", "2.71", &path)
            .await
            .assert_fault(403, "forbidden", Some(DENIED));
    }
    for body in [
        json!({"reset_status": {"status": "error"}}),
        json!({"force_delete": null}),
    ] {
        instance_action(&app, "alice", "2.7", &id, body)
            .await
            .assert_fault(403, "forbidden", Some(DENIED));
    }

    // Unknown ids, each with Manila's text.
    get(
        &app,
        "admin",
        "2.71",
        &format!("/v2/share_instances/{MISSING}"),
    )
    .await
    .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    get(
        &app,
        "admin",
        "2.71",
        &format!("/v2/share_instances/{MISSING}/export_locations"),
    )
    .await
    .assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Share instance '{MISSING}' not found.")),
    );
    get(
        &app,
        "admin",
        "2.71",
        &format!("/v2/share_instances/{id}/export_locations/{MISSING}"),
    )
    .await
    .assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Export location {MISSING} could not be found.")),
    );
    for body in [
        json!({"reset_status": {"status": "error"}}),
        json!({"force_delete": null}),
    ] {
        instance_action(&app, "admin", "2.7", MISSING, body)
            .await
            .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    }
    app.finish().await;
}

#[tokio::test]
async fn export_locations_of_an_instance() {
    let app = app().await;
    let share = plain_share(&app, "admin").await;
    let id = instance_of(&app, &share).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let path = format!("/v2/share_instances/{id}/export_locations");

    let old = get(&app, "admin", "2.9", &path).await;
    assert_eq!(old.status, 200, "{}", old.text());
    let old = old.json()["export_locations"].clone();
    assert_eq!(
        keys(&old[0]),
        ["id", "is_admin_only", "path", "share_instance_id"]
    );
    assert_eq!(old[0]["share_instance_id"], id);

    let new = get(&app, "admin", "2.87", &path).await;
    let locations = new.json()["export_locations"]
        .as_array()
        .expect("locations")
        .clone();
    assert_eq!(
        keys(&locations[0]),
        [
            "id",
            "is_admin_only",
            "metadata",
            "path",
            "preferred",
            "share_instance_id"
        ]
    );
    // The share's own export locations (admin) are the instance's.
    let share_els = get(
        &app,
        "admin",
        "2.87",
        &format!("/v2/shares/{share}/export_locations"),
    )
    .await;
    let mut share_paths: Vec<Value> = share_els.json()["export_locations"]
        .as_array()
        .expect("share els")
        .iter()
        .map(|el| el["path"].clone())
        .collect();
    let mut instance_paths: Vec<Value> = locations.iter().map(|el| el["path"].clone()).collect();
    share_paths.sort_by_key(|p| p.to_string());
    instance_paths.sort_by_key(|p| p.to_string());
    assert_eq!(share_paths, instance_paths);

    let el_id = locations[0]["id"].as_str().expect("el id");
    let one = get(&app, "admin", "2.87", &format!("{path}/{el_id}")).await;
    assert_eq!(one.status, 200, "{}", one.text());
    let one = one.json()["export_location"].clone();
    assert_eq!(one["path"], locations[0]["path"]);
    assert!(one["created_at"].is_string(), "{one}");
    assert!(one.get("updated_at").is_some(), "{one}");

    // A location of another instance is not this instance's.
    let other = plain_share(&app, "admin").await;
    let other_id = instance_of(&app, &other).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    get(
        &app,
        "admin",
        "2.87",
        &format!("/v2/share_instances/{other_id}/export_locations/{el_id}"),
    )
    .await
    .assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Export location {el_id} could not be found.")),
    );
    app.finish().await;
}

#[tokio::test]
async fn action_names_follow_the_microversion() {
    let app = app().await;
    let share = plain_share(&app, "admin").await;
    let id = instance_of(&app, &share).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    // Prefixed names exist in 2.3–2.6, plain ones from 2.7; otherwise a 404.
    for (version, action) in [
        ("2.7", "os-reset_status"),
        ("2.6", "reset_status"),
        ("2.2", "os-reset_status"),
        ("2.7", "os-force_delete"),
        ("2.6", "force_delete"),
    ] {
        instance_action(
            &app,
            "admin",
            version,
            &id,
            json!({ action: {"status": "error"} }),
        )
        .await
        .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    }
    instance_action(&app, "admin", "2.7", &id, json!({"promote": null}))
        .await
        .assert_fault(400, "badRequest", Some("There is no such action: promote"));

    let resp = instance_action(
        &app,
        "admin",
        "2.6",
        &id,
        json!({"os-reset_status": {"status": "error"}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(instance_of(&app, &share).await["status"], "error");
    let resp = instance_action(
        &app,
        "admin",
        "2.7",
        &id,
        json!({"reset_status": {"status": "available"}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert!(resp.body.is_empty(), "{}", resp.text());
    assert_eq!(instance_of(&app, &share).await["status"], "available");

    instance_action(&app, "admin", "2.7", &id, json!({"reset_status": {}}))
        .await
        .assert_fault(400, "badRequest", Some("Must specify 'status'"));
    let bad = instance_action(
        &app,
        "admin",
        "2.7",
        &id,
        json!({"reset_status": {"status": "in_use"}}),
    )
    .await;
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(
        bad.json()["badRequest"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Invalid state. Valid states: ")),
        "{}",
        bad.text()
    );
    app.finish().await;
}

#[tokio::test]
async fn force_delete_of_the_last_instance_removes_the_share_and_its_quota() {
    let app = app().await;
    let project = project_of("admin");
    let share = plain_share(&app, "admin").await;
    let id = instance_of(&app, &share).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(usage(&app, project, "shares").await, (1, 0));
    // The workers wait until the `deleting` state was seen.
    let held = app.hold_workers().await;
    // From any status, even one a plain delete refuses.
    let resp = instance_action(
        &app,
        "admin",
        "2.7",
        &id,
        json!({"reset_status": {"status": "creating"}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let resp = instance_action(&app, "admin", "2.7", &id, json!({"force_delete": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert!(resp.body.is_empty(), "{}", resp.text());
    let shown = get(&app, "admin", "2.71", &format!("/v2/share_instances/{id}")).await;
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert_eq!(shown.json()["share_instance"]["status"], "deleting");
    drop(held);
    app.settle().await;
    get(&app, "admin", "2.71", &format!("/v2/share_instances/{id}"))
        .await
        .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    assert_eq!(
        get(&app, "admin", "2.71", &format!("/v2/shares/{share}"))
            .await
            .status,
        404
    );
    assert_eq!(usage(&app, project, "shares").await, (0, 0));
    assert_eq!(usage(&app, project, "gigabytes").await, (0, 0));
    app.finish().await;
}

#[tokio::test]
async fn test_reproduce_force_delete_of_the_last_instance_under_snapshots_is_refused() {
    // Found by the HTTP fuzzer: the delete operation removed the instance and then failed
    // on the share row (its snapshot still refers to it) on every retry, forever.
    let app =
        crate::snapshot_fixtures::snapshot_app(shoal_core::config::AuthStrategy::Noauth, json!({}))
            .await;
    let share = crate::snapshot_fixtures::share_of_type(&app, "admin", "snap").await;
    crate::snapshot_fixtures::available_snapshot(&app, "admin", &share).await;
    let id = instance_of(&app, &share).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let resp = instance_action(&app, "admin", "2.7", &id, json!({"force_delete": null})).await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("Invalid share instance: Share still has 1 dependent snapshots."),
    );
    let shown = get(&app, "admin", "2.71", &format!("/v2/share_instances/{id}")).await;
    assert_eq!(shown.json()["share_instance"]["status"], "available");
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn force_delete_of_a_secondary_keeps_the_share() {
    let app = app().await;
    let project = project_of("admin");
    let (share, active, secondary) = replicated(&app, "admin").await;
    assert_eq!(usage(&app, project, "share_replicas").await.0, 2);
    let resp = instance_action(
        &app,
        "admin",
        "2.6",
        &secondary,
        json!({"os-force_delete": {}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    let left = instances(
        &get(
            &app,
            "admin",
            "2.71",
            &format!("/v2/shares/{share}/instances"),
        )
        .await,
    );
    assert_eq!(ids_of(&left), [active]);
    assert_eq!(usage(&app, project, "share_replicas").await.0, 1);
    assert_eq!(usage(&app, project, "shares").await.0, 1);
    app.finish().await;
}

#[tokio::test]
async fn force_delete_of_an_unplaced_instance_is_immediate() {
    let app = app().await;
    let project = project_of("admin");
    let (share, active, secondary) = replicated(&app, "admin").await;
    let unplaced = unplaced_replica(&app, "admin", &share).await;
    let replicas_before = usage(&app, project, "share_replicas").await.0;
    let resp = instance_action(
        &app,
        "admin",
        "2.7",
        &unplaced,
        json!({"force_delete": null}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    // No back end holds it: the rows went with the request.
    get(
        &app,
        "admin",
        "2.71",
        &format!("/v2/share_instances/{unplaced}"),
    )
    .await
    .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    assert_eq!(
        usage(&app, project, "share_replicas").await.0,
        replicas_before - 1
    );
    let left = instances(
        &get(
            &app,
            "admin",
            "2.71",
            &format!("/v2/shares/{share}/instances"),
        )
        .await,
    );
    assert_eq!(ids_of(&left), [active, secondary]);
    app.finish().await;
}
