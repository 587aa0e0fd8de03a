//! Manage and unmanage (`POST /v2/shares/manage`, the `unmanage` action and their pre-2.7
//! forms) and the recycle bin (`soft_delete`, `restore`, `is_soft_deleted` lists, the purge)
//! on the dummy back ends of the replica reference environment.

use serde_json::{Value, json};
use shoal_core::config::AuthStrategy;
use shoal_core::recycle_bin::RecycleBin;
use shoal_testkit::{TestApp, TestResponse};

use crate::replica_fixtures::*;
use crate::snapshot_fixtures::{available_snapshot, share_of_type, snapshot_app};

const V69: &str = "2.69";

async fn manage(app: &TestApp, version: &str, share: Value) -> TestResponse {
    app.post("/v2/shares/manage")
        .version(version)
        .json(&json!({ "share": share }))
        .send()
        .await
}

fn manage_body(path: &str, options: Value) -> Value {
    json!({
        "service_host": pool_of("dummy1"),
        "protocol": "nfs",
        "export_path": path,
        "share_type": "plain",
        "name": "adopted",
        "driver_options": options,
    })
}

/// Creates a share of `share_type` in `az`, unmanages it and returns its preferred export
/// path: the dummy manages only what it unmanaged, as Manila's dummy.
async fn unmanaged_path(app: &TestApp, share_type: &str, az: &str) -> String {
    let id = new_share(
        app,
        "admin",
        json!({"share_type": share_type, "availability_zone": az}),
    )
    .await;
    app.settle().await;
    assert_eq!(share_view(app, &id).await["status"], "available");
    let locations = app
        .get(&format!("/v2/shares/{id}/export_locations"))
        .version("2.49")
        .send()
        .await;
    assert_eq!(locations.status, 200, "{}", locations.text());
    let path = locations.json()["export_locations"][0]["path"]
        .as_str()
        .expect("path")
        .to_owned();
    let resp = action(app, "2.49", &id, json!({"unmanage": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(show(app, V, &id).await.status, 404);
    path
}

async fn action(app: &TestApp, version: &str, id: &str, body: Value) -> TestResponse {
    app.post(&format!("/v2/shares/{id}/action"))
        .version(version)
        .json(&body)
        .send()
        .await
}

async fn usage(app: &TestApp, project: &str, resource: &str) -> i64 {
    app.core()
        .store
        .get_quota_usages(project)
        .await
        .unwrap()
        .get(resource)
        .map_or(0, |u| u.in_use)
}

async fn show(app: &TestApp, version: &str, id: &str) -> TestResponse {
    app.get(&format!("/v2/shares/{id}"))
        .version(version)
        .send()
        .await
}

async fn list_ids(app: &TestApp, query: &str) -> Vec<String> {
    let resp = app
        .get(&format!("/v2/shares{query}"))
        .version(V69)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["shares"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn manage_then_unmanage_round_trip_charges_and_releases_quota() {
    let app = app().await;
    let legacy = unmanaged_path(&app, "plain", "az1").await;
    let resp = manage(&app, "2.49", manage_body(&legacy, json!({"size": "3"}))).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let view = resp.json()["share"].clone();
    assert_eq!(view["status"], "manage_starting", "{view}");
    assert!(view["size"].is_null(), "{view}");
    assert_eq!(view["name"], "adopted");
    assert_eq!(view["share_proto"], "NFS");
    let id = view["id"].as_str().unwrap().to_owned();
    let project = view["project_id"].as_str().unwrap().to_owned();
    assert_eq!(
        usage(&app, &project, "shares").await,
        0,
        "nothing charged yet"
    );

    app.settle().await;
    let view = share_view(&app, &id).await;
    assert_eq!(view["status"], "available", "{view}");
    assert_eq!(view["size"], 3);
    assert_eq!(view["availability_zone"], "az1");
    assert_eq!(usage(&app, &project, "shares").await, 1);
    assert_eq!(usage(&app, &project, "gigabytes").await, 3);
    // The managing user's and the type's usage count it too, as Manila's reserve.
    let user = format!("gigabytes/user/{}", view["user_id"].as_str().unwrap());
    let share_type = format!(
        "gigabytes/share_type/{}",
        view["share_type"].as_str().unwrap()
    );
    assert_eq!(usage(&app, &project, &user).await, 3);
    assert_eq!(usage(&app, &project, &share_type).await, 3);
    let locations = app
        .get(&format!("/v2/shares/{id}/export_locations"))
        .version("2.49")
        .send()
        .await;
    assert_eq!(locations.status, 200, "{}", locations.text());
    // As Manila's dummy, the adopted share gets export locations of its own.
    let path = locations.json()["export_locations"][0]["path"]
        .as_str()
        .expect("path")
        .to_owned();
    assert!(
        path.contains(&format!("share_{}_", id.replace('-', "_"))),
        "{path}"
    );

    // The same path on the same back end is managed already.
    let again = manage(&app, "2.49", manage_body(&path, json!({}))).await;
    again.assert_fault(
        409,
        "conflictingRequest",
        Some("Invalid share: A share already exists with the export path specified."),
    );

    // Keep the background workers from finishing the unmanage before the show.
    let held = app.hold_workers().await;
    let resp = action(&app, "2.49", &id, json!({"unmanage": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(share_view(&app, &id).await["status"], "unmanage_starting");
    drop(held);
    app.settle().await;
    assert_eq!(show(&app, V, &id).await.status, 404);
    assert_eq!(usage(&app, &project, "shares").await, 0);
    assert_eq!(usage(&app, &project, "gigabytes").await, 0);
    assert_eq!(usage(&app, &project, &user).await, 0);
    assert_eq!(usage(&app, &project, &share_type).await, 0);

    // Unmanaged, the path can be managed again.
    let resp = manage(&app, "2.49", manage_body(&path, json!({}))).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let again = resp.json()["share"]["id"].as_str().unwrap().to_owned();
    app.settle().await;
    let view = share_view(&app, &again).await;
    assert_eq!(view["status"], "available", "{view}");
    assert_eq!(view["size"], 1, "Manila's dummy answers 1 GiB");
    app.finish().await;
}

#[tokio::test]
async fn legacy_manage_and_unmanage_paths_below_2_7() {
    let app = app().await;
    let old = unmanaged_path(&app, "plain", "az1").await;
    let resp = app
        .post("/v2/os-share-manage")
        .version("2.6")
        .json(&json!({"share": manage_body(&old, json!({}))}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let id = resp.json()["share"]["id"].as_str().unwrap().to_owned();
    app.settle().await;
    let view = share_view(&app, &id).await;
    assert_eq!(view["status"], "available", "{view}");
    assert_eq!(view["size"], 1);
    // The versioned methods exist only on their side of 2.7.
    manage(&app, "2.6", manage_body("10.9.9.9:/x", json!({})))
        .await
        .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    let late = app
        .post(&format!("/v2/os-share-unmanage/{id}/unmanage"))
        .version("2.7")
        .send()
        .await;
    late.assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    let resp = app
        .post(&format!("/v2/os-share-unmanage/{id}/unmanage"))
        .version("2.6")
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(show(&app, V, &id).await.status, 404);
    app.finish().await;
}

#[tokio::test]
async fn manage_validation_in_manilas_order() {
    let app = app().await;
    let resp = app
        .post("/v2/shares/manage")
        .version("2.8")
        .json(&json!({"nope": {}}))
        .send()
        .await;
    resp.assert_fault(
        422,
        "computeFault",
        Some("Share entity not found in request body"),
    );
    let mut body = manage_body("p", json!({}));
    body.as_object_mut().unwrap().remove("export_path");
    manage(&app, "2.8", body).await.assert_fault(
        422,
        "computeFault",
        Some("Required parameter export_path not found"),
    );
    let mut body = manage_body("p", json!({}));
    body["protocol"] = json!("");
    manage(&app, "2.8", body).await.assert_fault(
        422,
        "computeFault",
        Some("Required parameter protocol is empty"),
    );
    let mut body = manage_body("p", json!({}));
    body["export_path"] = json!({"not_path": "x"});
    manage(&app, "2.8", body).await.assert_fault(
        422,
        "computeFault",
        Some("Export path must be a string, or a dictionary with a 'path' item"),
    );
    let mut body = manage_body("p", json!({}));
    body["service_host"] = json!(format!("{}@dummy1", shoal_testkit::TEST_HOST));
    manage(&app, "2.8", body).await.assert_fault(
        400,
        "badRequest",
        Some("service_host parameter should contain pool."),
    );
    let mut body = manage_body("p", json!({}));
    body["service_host"] = json!("elsewhere@dummy1#pool1");
    manage(&app, "2.8", body).await.assert_fault(
        404,
        "itemNotFound",
        Some("Service elsewhere@dummy1 could not be found."),
    );
    let mut body = manage_body("p", json!({}));
    body["share_type"] = json!("nope");
    manage(&app, "2.8", body).await.assert_fault(
        404,
        "itemNotFound",
        Some("Share type with name nope could not be found."),
    );
    let mut body = manage_body("p", json!({}));
    body["share_server_id"] = json!("4a5f2bb0-0000-4000-8000-000000000001");
    manage(&app, "2.49", body).await.assert_fault(
        400,
        "badRequest",
        Some("Share Server ID parameter is not expected when managing a share using a share type with driver_handles_share_servers extra-spec set to False."),
    );
    // A dict export path names its `path`.
    let mut body = manage_body("ignored", json!({}));
    body["export_path"] = json!({"path": "10.1.1.1:/dict"});
    let resp = manage(&app, "2.8", body).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn failed_manage_is_manage_error_and_holds_no_quota() {
    let app = app_with_knobs(
        AuthStrategy::Noauth,
        json!({"dummy1": {"fail": {"manage_existing": 1.0}}}),
    )
    .await;
    let mut ids = Vec::new();
    for path in ["10.0.0.1:/a", "10.0.0.1:/b"] {
        let resp = manage(&app, "2.8", manage_body(path, json!({"size": "4"}))).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        ids.push(resp.json()["share"]["id"].as_str().unwrap().to_owned());
    }
    app.settle().await;
    let view = share_view(&app, &ids[0]).await;
    assert_eq!(view["status"], "manage_error", "{view}");
    assert_eq!(view["size"], 0);
    let project = view["project_id"].as_str().unwrap().to_owned();
    // Another share holds quota, which neither unmanage nor delete may take away.
    plain_share(&app, "admin").await;
    assert_eq!(usage(&app, &project, "shares").await, 1);

    let resp = action(&app, "2.8", &ids[0], json!({"unmanage": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    // As in Manila, only a forced delete takes a share in `manage_error`.
    let resp = action(&app, "2.8", &ids[1], json!({"force_delete": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    for id in &ids {
        assert_eq!(show(&app, V, id).await.status, 404);
    }
    assert_eq!(usage(&app, &project, "shares").await, 1);
    assert_eq!(usage(&app, &project, "gigabytes").await, 1);
    app.finish().await;
}

#[tokio::test]
async fn manage_of_what_the_back_end_does_not_know_is_manage_error() {
    // Manila's tempest test_manage_invalid_param_manage_error: an unknown export path, or a
    // protocol the back end does not serve, ends in `manage_error`; the share unmanaged
    // before can still be managed properly afterwards.
    let app = app().await;
    let known = unmanaged_path(&app, "plain", "az1").await;
    let mut ids = Vec::new();
    for (path, protocol) in [
        ("invalid-share-export-123".to_owned(), "nfs"),
        (known.clone(), "invalid_protocol"),
    ] {
        let mut body = manage_body(&path, json!({}));
        body["protocol"] = json!(protocol);
        let resp = manage(&app, "2.8", body).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        ids.push(resp.json()["share"]["id"].as_str().unwrap().to_owned());
    }
    app.settle().await;
    for id in &ids {
        let view = share_view(&app, id).await;
        assert_eq!(view["status"], "manage_error", "{view}");
        assert_eq!(view["size"], 0, "{view}");
    }
    let project = share_view(&app, &ids[0]).await["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(usage(&app, &project, "shares").await, 0);
    // test_delete_share_in_manage_error: a plain delete is refused, a forced one goes.
    let resp = app
        .delete(&format!("/v2/shares/{}", ids[0]))
        .version("2.8")
        .send()
        .await;
    assert_eq!(resp.status, 403, "{}", resp.text());
    let resp = action(&app, "2.8", &ids[0], json!({"force_delete": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let resp = action(&app, "2.8", &ids[1], json!({"unmanage": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    for id in &ids {
        assert_eq!(show(&app, V, id).await.status, 404);
    }
    // The refusals consumed nothing: the known path manages properly.
    let resp = manage(&app, "2.8", manage_body(&known, json!({}))).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let id = resp.json()["share"]["id"].as_str().unwrap().to_owned();
    app.settle().await;
    let view = share_view(&app, &id).await;
    assert_eq!(view["status"], "available", "{view}");
    assert_eq!(view["size"], 1);
    assert_eq!(usage(&app, &project, "shares").await, 1);
    app.finish().await;
}

#[tokio::test]
async fn manage_on_a_pool_the_type_does_not_fit_is_manage_error() {
    let app = app().await;
    create_type(&app, "on_dummy2", json!({"share_backend_name": "dummy2"})).await;
    create_type(&app, "in_az2", json!({"availability_zones": "az2"})).await;
    let mut ids = Vec::new();
    for (path, share_type) in [("10.0.0.1:/a", "on_dummy2"), ("10.0.0.1:/b", "in_az2")] {
        let mut body = manage_body(path, json!({"size": "2"}));
        body["share_type"] = json!(share_type);
        let resp = manage(&app, "2.8", body).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.json()["share"]["status"], "manage_starting");
        ids.push(resp.json()["share"]["id"].as_str().unwrap().to_owned());
    }
    // The same type fits the other pool: the scheduler lets it through.
    let known = unmanaged_path(&app, "on_dummy2", "az2").await;
    let mut body = manage_body(&known, json!({"size": "2"}));
    body["share_type"] = json!("on_dummy2");
    body["service_host"] = json!(pool_of("dummy2"));
    let resp = manage(&app, "2.8", body).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let fits = resp.json()["share"]["id"].as_str().unwrap().to_owned();
    app.settle().await;
    for id in &ids {
        let view = share_view(&app, id).await;
        assert_eq!(view["status"], "manage_error", "{view}");
        assert_eq!(view["size"], 0, "{view}");
    }
    let view = share_view(&app, &fits).await;
    assert_eq!(view["status"], "available", "{view}");
    let project = view["project_id"].as_str().unwrap().to_owned();
    // Only the share that was managed holds quota; as Manila, no user message is sent.
    assert_eq!(usage(&app, &project, "shares").await, 1);
    assert_eq!(usage(&app, &project, "gigabytes").await, 2);
    let messages = app.get("/v2/messages").version("2.37").send().await;
    assert_eq!(messages.status, 200, "{}", messages.text());
    assert_eq!(messages.json()["messages"], json!([]));
    // A share whose manage was refused unmanages without releasing anything.
    let resp = action(&app, "2.8", &ids[0], json!({"unmanage": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(show(&app, V, &ids[0]).await.status, 404);
    assert_eq!(usage(&app, &project, "shares").await, 1);
    app.finish().await;
}

#[tokio::test]
async fn unmanage_refusals() {
    let app = app().await;
    // Replicas.
    let share = available_share(&app, "admin").await;
    let resp = post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    action(&app, "2.49", &share, json!({"unmanage": null}))
        .await
        .assert_fault(
            409,
            "conflictingRequest",
            Some(&format!(
                "Share {share} has replicas. It cannot be unmanaged until all replicas are removed."
            )),
        );
    // Transitional status.
    let plain = plain_share(&app, "admin").await;
    let resp = action(
        &app,
        V,
        &plain,
        json!({"reset_status": {"status": "creating"}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    action(&app, "2.49", &plain, json!({"unmanage": null}))
        .await
        .assert_fault(
            403,
            "forbidden",
            Some(&format!(
                "Share with transitional state can not be unmanaged. Share '{plain}' is in 'creating' state."
            )),
        );
    // In the recycle bin.
    let other = plain_share(&app, "admin").await;
    assert_eq!(
        action(&app, V69, &other, json!({"soft_delete": null}))
            .await
            .status,
        202
    );
    action(&app, V69, &other, json!({"unmanage": null}))
        .await
        .assert_fault(
            403,
            "forbidden",
            Some(&format!(
                "Share '{other} cannot be unmanaged, since it has been soft deleted."
            )),
        );
    // The action does not exist before 2.7.
    action(&app, "2.6", &other, json!({"os-unmanage": null}))
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("There is no such action: os-unmanage"),
        );
    app.finish().await;
}

#[tokio::test]
async fn snapshots_block_unmanage_and_soft_delete() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    let share = share_of_type(&app, "admin", "snap").await;
    available_snapshot(&app, "admin", &share).await;
    available_snapshot(&app, "admin", &share).await;
    // The controller's own 403, after the status checks and before the task state.
    action(&app, "2.49", &share, json!({"unmanage": null}))
        .await
        .assert_fault(
            403,
            "forbidden",
            Some(&format!(
                "Share '{share}' can not be unmanaged because it has '2' dependent snapshot(s)."
            )),
        );
    // `InvalidShare`, answered with 403.
    action(&app, V69, &share, json!({"soft_delete": null}))
        .await
        .assert_fault(
            403,
            "forbidden",
            Some("Invalid share: Share still has 2 dependent snapshots."),
        );
    let view = show(&app, V69, &share).await.json()["share"].clone();
    assert_eq!(view["status"], "available", "{view}");
    assert_eq!(view["is_soft_deleted"], false, "{view}");
    // A snapshot in any status counts, and the transitional-status check comes first.
    let resp = action(
        &app,
        V,
        &share,
        json!({"reset_status": {"status": "creating"}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    action(&app, "2.49", &share, json!({"unmanage": null}))
        .await
        .assert_fault(
            403,
            "forbidden",
            Some(&format!(
                "Share with transitional state can not be unmanaged. Share '{share}' is in 'creating' state."
            )),
        );
    app.finish().await;
}

#[tokio::test]
async fn soft_delete_hides_the_share_until_restored() {
    let app = app().await;
    let id = plain_share(&app, "admin").await;
    let other = plain_share(&app, "admin").await;
    let before = app.core().now();
    let resp = action(&app, V69, &id, json!({"soft_delete": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());

    let view = show(&app, V69, &id).await.json()["share"].clone();
    assert_eq!(view["is_soft_deleted"], true, "{view}");
    let scheduled = view["scheduled_to_be_deleted_at"].as_str().unwrap();
    let scheduled = chrono::NaiveDateTime::parse_from_str(scheduled, "%Y-%m-%dT%H:%M:%S%.f")
        .unwrap()
        .and_utc();
    let week = chrono::Duration::seconds(604_800);
    assert!(
        scheduled >= before + week - chrono::Duration::seconds(5),
        "{scheduled}"
    );
    assert!(scheduled <= app.core().now() + week, "{scheduled}");
    assert_eq!(list_ids(&app, "").await, vec![other.clone()]);
    assert_eq!(
        list_ids(&app, "?is_soft_deleted=true").await,
        vec![id.clone()]
    );
    assert_eq!(
        list_ids(&app, "/detail?is_soft_deleted=false").await,
        vec![other.clone()]
    );

    action(&app, V69, &id, json!({"soft_delete": null}))
        .await
        .assert_fault(
            403,
            "forbidden",
            Some("Invalid share: The share has been soft deleted already."),
        );
    action(&app, V69, &id, json!({"extend": {"new_size": 2}}))
        .await
        .assert_fault(
            403,
            "forbidden",
            Some(&format!(
                "Cannot extend share '{id}' since it has been soft deleted."
            )),
        );
    action(&app, V69, &id, json!({"reset_status": {"status": "error"}}))
        .await
        .assert_fault(
            403,
            "forbidden",
            Some(&format!(
                "status cannot be reset for share '{id}' since it has been soft deleted."
            )),
        );

    let resp = action(&app, V69, &id, json!({"restore": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let view = show(&app, V69, &id).await.json()["share"].clone();
    assert_eq!(view["is_soft_deleted"], false, "{view}");
    assert!(view["scheduled_to_be_deleted_at"].is_null(), "{view}");
    // Restoring a share that is not in the recycle bin is a no-op.
    assert_eq!(
        action(&app, V69, &id, json!({"restore": null}))
            .await
            .status,
        200
    );
    let mut all = list_ids(&app, "").await;
    all.sort();
    let mut want = vec![id, other];
    want.sort();
    assert_eq!(all, want);
    app.finish().await;
}

#[tokio::test]
async fn soft_delete_refusals_and_versions() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    // Before 2.69 the actions do not exist.
    action(&app, "2.68", &share, json!({"soft_delete": null}))
        .await
        .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    action(&app, "2.68", &share, json!({"restore": null}))
        .await
        .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    action(&app, V69, MISSING, json!({"restore": null}))
        .await
        .assert_fault(
            404,
            "itemNotFound",
            Some(&format!("No share exists with ID {MISSING}.")),
        );
    let resp = post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    action(&app, V69, &share, json!({"soft_delete": null}))
        .await
        .assert_fault(
            409,
            "conflictingRequest",
            Some(&format!(
                "Share {share} has replicas. Remove the replicas before soft deleting the share."
            )),
        );
    let plain = plain_share(&app, "admin").await;
    let resp = action(
        &app,
        V69,
        &plain,
        json!({"reset_status": {"status": "creating"}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    action(&app, V69, &plain, json!({"soft_delete": null}))
        .await
        .assert_fault(
            403,
            "forbidden",
            Some("Invalid share: Share status must be one of ('available', 'error', 'inactive')."),
        );
    app.finish().await;
}

#[tokio::test]
async fn purge_deletes_expired_soft_deleted_shares_through_the_delete_pipeline() {
    let app = app().await;
    let id = plain_share(&app, "admin").await;
    let kept = plain_share(&app, "admin").await;
    let project = share_view(&app, &id).await["project_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(usage(&app, &project, "shares").await, 2);
    assert_eq!(
        action(&app, V69, &id, json!({"soft_delete": null}))
            .await
            .status,
        202
    );

    let purge = RecycleBin::new(app.core().clone());
    // Not expired yet.
    assert_eq!(purge.run_once().await.unwrap(), 0);
    let later = app.core().now() + chrono::Duration::days(8);
    // Keep the background workers from finishing the delete before the show.
    let held = app.hold_workers().await;
    assert_eq!(purge.purge_expired(later).await.unwrap(), 1);
    assert_eq!(share_view(&app, &id).await["status"], "deleting");
    // A second pass leaves the delete under way alone.
    assert_eq!(purge.purge_expired(later).await.unwrap(), 0);
    drop(held);
    app.settle().await;
    assert_eq!(show(&app, V69, &id).await.status, 404);
    assert_eq!(share_view(&app, &kept).await["status"], "available");
    assert_eq!(usage(&app, &project, "shares").await, 1);
    app.finish().await;
}
