//! Share snapshots of plain shares on the dummy back end: lifecycle, views, lists, checks
//! and their Manila texts, quotas, policies, other projects, revert, shares from
//! snapshots, manage/unmanage, mountable snapshots (access, export locations), metadata and
//! snapshot instances.

use serde_json::json;
use shoal_core::config::AuthStrategy;

use crate::replica_fixtures::{
    MISSING, create_type, new_share, plain_share, post_share, project_of, set_quota, share_view,
    usage,
};
use crate::snapshot_fixtures::{
    SV, available_snapshot, get_as, instances_of, post_snapshot, request_snapshot, share_action,
    share_of_type, snapshot_action, snapshot_app, snapshot_view,
};

#[tokio::test]
async fn snapshot_lifecycle_with_quota() {
    let app = snapshot_app(AuthStrategy::Keystone, json!({})).await;
    let share = share_of_type(&app, "alice", "snap").await;
    let project = project_of("alice");
    let id = request_snapshot(&app, "alice", &share).await;
    assert_eq!(usage(&app, project, "snapshots").await, (1, 0));
    assert_eq!(usage(&app, project, "snapshot_gigabytes").await, (1, 0));
    app.settle().await;

    let resp = get_as(&app, "alice", SV, &format!("/v2/snapshots/{id}")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let view = resp.json()["snapshot"].clone();
    assert_eq!(view["status"], "available");
    assert_eq!(view["share_id"], share.as_str());
    assert_eq!(view["name"], "snap1");
    assert_eq!(view["size"], 1);
    assert_eq!(view["share_size"], 1);
    assert_eq!(view["share_proto"], "NFS");
    assert_eq!(view["project_id"], project);
    assert_eq!(view["metadata"], json!({}));
    assert!(
        view.get("provider_location").is_none(),
        "admin only: {view}"
    );
    assert!(
        snapshot_view(&app, &id).await["provider_location"]
            .as_str()
            .is_some_and(|p| p.starts_with("/path/to/fake/snapshot/"))
    );
    // Before 2.17 no ids; before 2.73 no metadata.
    let old = get_as(&app, "alice", "2.16", &format!("/v2/snapshots/{id}")).await;
    assert!(old.json()["snapshot"].get("project_id").is_none());
    assert!(old.json()["snapshot"].get("metadata").is_none());

    // Lists: summary and detail.
    let list = get_as(&app, "alice", SV, "/v2/snapshots").await.json();
    assert_eq!(list["snapshots"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        list["snapshots"][0].as_object().map(|o| o.len()),
        Some(3),
        "id, name, links: {list}"
    );
    let detail = get_as(&app, "alice", SV, "/v2/snapshots/detail")
        .await
        .json();
    assert_eq!(detail["snapshots"][0]["status"], "available");

    // Rename.
    let resp = app
        .put(&format!("/v2/snapshots/{id}"))
        .version(SV)
        .token(&app.token_for("alice"))
        .json(&json!({"snapshot": {"display_name": "renamed", "display_description": "d"}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["snapshot"]["name"], "renamed");
    assert_eq!(resp.json()["snapshot"]["description"], "d");
    // Only the display_* keys count, as in Manila.
    let resp = app
        .put(&format!("/v2/snapshots/{id}"))
        .version(SV)
        .token(&app.token_for("alice"))
        .json(&json!({"snapshot": {"name": "ignored"}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["snapshot"]["name"], "renamed");
    let resp = app
        .put(&format!("/v2/snapshots/{id}"))
        .version(SV)
        .token(&app.token_for("alice"))
        .json(&json!({"snapshot": {"display_name": "x".repeat(256)}}))
        .send()
        .await;
    resp.assert_fault(400, "badRequest", None);

    // The share cannot go while the snapshot exists (Manila's InvalidShare, a 403).
    let resp = app
        .delete(&format!("/v2/shares/{share}"))
        .version(SV)
        .token(&app.token_for("alice"))
        .send()
        .await;
    resp.assert_fault(
        403,
        "forbidden",
        Some("Invalid share: Share still has 1 dependent snapshots."),
    );

    // Keep the background workers from finishing the delete before the show.
    let held = app.hold_workers().await;
    let resp = app
        .delete(&format!("/v2/snapshots/{id}"))
        .version(SV)
        .token(&app.token_for("alice"))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(snapshot_view(&app, &id).await["status"], "deleting");
    drop(held);
    app.settle().await;
    get_as(&app, "alice", SV, &format!("/v2/snapshots/{id}"))
        .await
        .assert_fault(
            404,
            "itemNotFound",
            Some(&format!("Snapshot {id} could not be found.")),
        );
    assert_eq!(usage(&app, project, "snapshots").await, (0, 0));
    assert_eq!(usage(&app, project, "snapshot_gigabytes").await, (0, 0));
    let resp = app
        .delete(&format!("/v2/shares/{share}"))
        .version(SV)
        .token(&app.token_for("alice"))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn create_checks_capability_status_and_quota() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    let plain = plain_share(&app, "admin").await;
    let resp = post_snapshot(&app, "admin", SV, json!({"snapshot": {"share_id": plain}})).await;
    resp.assert_fault(
        422,
        "computeFault",
        Some(&format!(
            "Snapshots cannot be created for share '{plain}' since it does not have that capability."
        )),
    );
    post_snapshot(
        &app,
        "admin",
        SV,
        json!({"snapshot": {"share_id": MISSING}}),
    )
    .await
    .assert_fault(404, "itemNotFound", None);
    post_snapshot(&app, "admin", SV, json!({"nothing": {}}))
        .await
        .assert_fault(422, "computeFault", None);

    // A share that is not available.
    let creating = new_share(&app, "admin", json!({"share_type": "snap"})).await;
    post_snapshot(
        &app,
        "admin",
        SV,
        json!({"snapshot": {"share_id": creating}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Invalid share: Source share status must be available."),
    );
    app.settle().await;

    // Quotas: snapshot_gigabytes is checked before snapshots.
    let project = project_of("admin");
    set_quota(&app, project, "snapshot_gigabytes", 0).await;
    set_quota(&app, project, "snapshots", 0).await;
    post_snapshot(&app, "admin", SV, json!({"snapshot": {"share_id": creating}}))
        .await
        .assert_fault(
            413,
            "overLimit",
            Some("SnapshotSizeExceedsAvailableQuota: Requested snapshot exceeds allowed project/user or share type gigabytes quota."),
        );
    set_quota(&app, project, "snapshot_gigabytes", 10).await;
    post_snapshot(
        &app,
        "admin",
        SV,
        json!({"snapshot": {"share_id": creating}}),
    )
    .await
    .assert_fault(
        413,
        "overLimit",
        Some("SnapshotLimitExceeded: Maximum number of snapshots allowed (0) exceeded"),
    );
    assert_eq!(usage(&app, project, "snapshots").await, (0, 0));
    app.finish().await;
}

#[tokio::test]
async fn other_projects_and_admin_only_actions() {
    let app = snapshot_app(AuthStrategy::Keystone, json!({})).await;
    let share = share_of_type(&app, "alice", "snap").await;
    let id = available_snapshot(&app, "alice", &share).await;
    // Another project sees nothing: 404 for the snapshot, empty lists.
    get_as(&app, "bob", SV, &format!("/v2/snapshots/{id}"))
        .await
        .assert_fault(404, "itemNotFound", None);
    let list = get_as(&app, "bob", SV, "/v2/snapshots").await.json();
    assert_eq!(list["snapshots"], json!([]));
    let resp = app
        .delete(&format!("/v2/snapshots/{id}"))
        .version(SV)
        .token(&app.token_for("bob"))
        .send()
        .await;
    resp.assert_fault(404, "itemNotFound", None);
    // Bob cannot snapshot alice's share.
    post_snapshot(&app, "bob", SV, json!({"snapshot": {"share_id": share}}))
        .await
        .assert_fault(404, "itemNotFound", None);
    // A reader may look but not create.
    assert_eq!(
        get_as(&app, "rita", SV, &format!("/v2/snapshots/{id}"))
            .await
            .status,
        200
    );
    post_snapshot(&app, "rita", SV, json!({"snapshot": {"share_id": share}}))
        .await
        .assert_fault(403, "forbidden", None);
    // Admin-only actions.
    for body in [
        json!({"reset_status": {"status": "error"}}),
        json!({"force_delete": null}),
        json!({"unmanage": null}),
    ] {
        snapshot_action(&app, "alice", SV, &id, body)
            .await
            .assert_fault(403, "forbidden", None);
    }
    get_as(&app, "alice", SV, "/v2/snapshot-instances")
        .await
        .assert_fault(403, "forbidden", None);
    // all_tenants is an admin thing: alice still sees her own only, admin sees all.
    let all = get_as(&app, "admin", SV, "/v2/snapshots?all_tenants=1")
        .await
        .json();
    assert_eq!(all["snapshots"].as_array().map(Vec::len), Some(1));
    let own = get_as(&app, "admin", SV, "/v2/snapshots").await.json();
    assert_eq!(own["snapshots"], json!([]));
    app.finish().await;
}

/// Manila's snapshot `create` has no `@authorize`: it looks the share up first (another
/// project's share is 404 for anyone there, readers included) and only then checks
/// `share:create_snapshot` on it (403 for a reader of the owner project). Found by the
/// tenant matrix: shoal checked the rule first and answered a reader of another project 403.
#[tokio::test]
async fn snapshot_create_looks_the_share_up_before_the_rule() {
    let app = snapshot_app(AuthStrategy::Keystone, json!({})).await;
    let share = share_of_type(&app, "alice", "snap").await;
    for user in ["rex", "bob"] {
        post_snapshot(&app, user, SV, json!({"snapshot": {"share_id": share}}))
            .await
            .assert_fault(404, "itemNotFound", None);
    }
    post_snapshot(&app, "rex", SV, json!({"snapshot": {"share_id": MISSING}}))
        .await
        .assert_fault(404, "itemNotFound", None);
    post_snapshot(&app, "rita", SV, json!({"snapshot": {"share_id": share}}))
        .await
        .assert_fault(403, "forbidden", None);
    let list = get_as(&app, "admin", SV, "/v2/snapshots?all_tenants=1")
        .await
        .json();
    assert_eq!(list["snapshots"], json!([]), "nothing was created");
    app.finish().await;
}

#[tokio::test]
async fn admin_actions_reset_status_and_force_delete() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    let share = share_of_type(&app, "admin", "snap").await;
    let id = available_snapshot(&app, "admin", &share).await;
    // os- prefix below 2.7, plain from 2.7.
    snapshot_action(
        &app,
        "admin",
        "2.6",
        &id,
        json!({"reset_status": {"status": "error"}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("There is no such action: reset_status"),
    );
    let resp = snapshot_action(
        &app,
        "admin",
        "2.6",
        &id,
        json!({"os-reset_status": {"status": "error"}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(snapshot_view(&app, &id).await["status"], "error");
    snapshot_action(
        &app,
        "admin",
        SV,
        &id,
        json!({"reset_status": {"status": "bogus"}}),
    )
    .await
    .assert_fault(400, "badRequest", None);
    let resp = snapshot_action(
        &app,
        "admin",
        SV,
        &id,
        json!({"reset_status": {"status": "creating"}}),
    )
    .await;
    assert_eq!(resp.status, 202);
    // A creating snapshot cannot be deleted, only force-deleted.
    let resp = app
        .delete(&format!("/v2/snapshots/{id}"))
        .version(SV)
        .send()
        .await;
    resp.assert_fault(
        400,
        "badRequest",
        Some(
            "Invalid share snapshot: Share Snapshot status must be one of ('available', 'error').",
        ),
    );
    let resp = snapshot_action(&app, "admin", SV, &id, json!({"force_delete": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    get_as(&app, "admin", SV, &format!("/v2/snapshots/{id}"))
        .await
        .assert_fault(404, "itemNotFound", None);
    app.finish().await;
}

#[tokio::test]
async fn driver_failures_leave_error_states() {
    let app = snapshot_app(
        AuthStrategy::Noauth,
        json!({"dummy1": {"fail": {"create_snapshot": 1.0, "delete_snapshot": 1.0}}}),
    )
    .await;
    let share = share_of_type(&app, "admin", "snap").await;
    let id = request_snapshot(&app, "admin", &share).await;
    app.settle().await;
    assert_eq!(snapshot_view(&app, &id).await["status"], "error");
    let messages = get_as(&app, "admin", SV, "/v2/messages").await.json();
    assert!(
        messages["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["resource_type"] == "SHARE_SNAPSHOT" && m["resource_id"] == id.as_str()),
        "{messages}"
    );
    // Delete fails on the back end: error_deleting, the snapshot and its quota stay.
    let resp = app
        .delete(&format!("/v2/snapshots/{id}"))
        .version(SV)
        .send()
        .await;
    assert_eq!(resp.status, 202);
    app.settle().await;
    assert_eq!(snapshot_view(&app, &id).await["status"], "error_deleting");
    assert_eq!(usage(&app, project_of("admin"), "snapshots").await, (1, 0));
    // force_delete ignores the back end.
    let resp = snapshot_action(&app, "admin", SV, &id, json!({"force_delete": {}})).await;
    assert_eq!(resp.status, 202);
    app.settle().await;
    assert_eq!(usage(&app, project_of("admin"), "snapshots").await, (0, 0));
    app.finish().await;
}

#[tokio::test]
async fn list_filters_sort_and_pagination() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    let share = share_of_type(&app, "admin", "snap").await;
    let mut ids = Vec::new();
    for name in ["b", "a", "c"] {
        let resp = post_snapshot(
            &app,
            "admin",
            SV,
            json!({"snapshot": {"share_id": share, "name": name, "metadata": {"k": name}}}),
        )
        .await;
        assert_eq!(resp.status, 202, "{}", resp.text());
        ids.push(
            resp.json()["snapshot"]["id"]
                .as_str()
                .expect("id")
                .to_owned(),
        );
    }
    app.settle().await;
    let names = |body: serde_json::Value| -> Vec<String> {
        body["snapshots"]
            .as_array()
            .expect("snapshots")
            .iter()
            .map(|s| s["name"].as_str().unwrap_or_default().to_owned())
            .collect()
    };
    let get = |q: &str| {
        let path = format!("/v2/snapshots/detail{q}");
        let app = &app;
        async move { get_as(app, "admin", SV, &path).await }
    };
    // Newest first by default.
    assert_eq!(names(get("").await.json()), ["c", "a", "b"]);
    assert_eq!(
        names(get("?sort_key=name&sort_dir=asc").await.json()),
        ["a", "b", "c"]
    );
    assert_eq!(names(get("?name=a").await.json()), ["a"]);
    assert_eq!(names(get("?name~=b").await.json()), ["b"]);
    assert_eq!(names(get("?metadata={'k':'c'}").await.json()), ["c"]);
    assert_eq!(
        names(get("?status=available&limit=1&offset=1").await.json()),
        ["a"]
    );
    assert_eq!(get("?with_count=true").await.json()["count"], 3);
    get("?sort_key=bogus")
        .await
        .assert_fault(400, "badRequest", None);
    // `size` and `share_id` filters.
    assert_eq!(
        names(get(&format!("?share_id={share}&size=1")).await.json()).len(),
        3
    );
    assert_eq!(names(get("?size=2").await.json()).len(), 0);
    app.finish().await;
}

#[tokio::test]
async fn revert_to_the_latest_snapshot_only() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    let share = share_of_type(&app, "admin", "snap").await;
    let first = available_snapshot(&app, "admin", &share).await;
    let latest = available_snapshot(&app, "admin", &share).await;
    // Before 2.27 there is no revert.
    share_action(
        &app,
        "admin",
        "2.26",
        &share,
        json!({"revert": {"snapshot_id": latest}}),
    )
    .await
    .assert_fault(404, "itemNotFound", None);
    // An unknown snapshot is a 400 (Manila's `_revert` maps ShareSnapshotNotFound so).
    let missing = uuid::Uuid::new_v4();
    share_action(
        &app,
        "admin",
        SV,
        &share,
        json!({"revert": {"snapshot_id": missing}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some(&format!("Snapshot {missing} could not be found.")),
    );
    share_action(&app, "admin", SV, &share, json!({"revert": {"snapshot_id": first}}))
        .await
        .assert_fault(
            409,
            "conflictingRequest",
            Some(&format!(
                "Snapshot {first} may not be restored because it is not the most recent snapshot of share {share}. Currently the latest snapshot is {latest}."
            )),
        );
    // Keep the background workers from finishing the revert before the checks below.
    let held = app.hold_workers().await;
    let resp = share_action(
        &app,
        "admin",
        SV,
        &share,
        json!({"revert": {"snapshot_id": latest}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(share_view(&app, &share).await["status"], "reverting");
    assert_eq!(snapshot_view(&app, &latest).await["status"], "restoring");
    // A second revert while reverting: 409 with Manila's text.
    share_action(&app, "admin", SV, &share, json!({"revert": {"snapshot_id": latest}}))
        .await
        .assert_fault(
            409,
            "conflictingRequest",
            Some(&format!(
                "Share {share} is in 'reverting' state, but it must be in 'available' state to be reverted to a snapshot."
            )),
        );
    drop(held);
    app.settle().await;
    assert_eq!(share_view(&app, &share).await["status"], "available");
    assert_eq!(snapshot_view(&app, &latest).await["status"], "available");

    // A snapshot that does not exist: 400, as Manila's `ShareSnapshotNotFound` in `_revert`.
    share_action(
        &app,
        "admin",
        SV,
        &share,
        json!({"revert": {"snapshot_id": share}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some(&format!("Snapshot {share} could not be found.")),
    );
    // Another share's snapshot.
    let other = share_of_type(&app, "admin", "snap").await;
    share_action(
        &app,
        "admin",
        SV,
        &other,
        json!({"revert": {"snapshot_id": latest}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some(&format!(
            "Snapshot {latest} is not associated with share {other}."
        )),
    );
    app.finish().await;
}

#[tokio::test]
async fn revert_failure_leaves_reverting_error() {
    let app = snapshot_app(
        AuthStrategy::Noauth,
        json!({"dummy1": {"fail": {"revert_to_snapshot": 1.0}}}),
    )
    .await;
    let share = share_of_type(&app, "admin", "snap").await;
    let snap = available_snapshot(&app, "admin", &share).await;
    let resp = share_action(
        &app,
        "admin",
        SV,
        &share,
        json!({"revert": {"snapshot_id": snap}}),
    )
    .await;
    assert_eq!(resp.status, 202);
    app.settle().await;
    assert_eq!(share_view(&app, &share).await["status"], "reverting_error");
    assert_eq!(snapshot_view(&app, &snap).await["status"], "available");
    app.finish().await;
}

#[tokio::test]
async fn share_from_snapshot_lands_on_the_snapshot_pool() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    let share = share_of_type(&app, "admin", "snap").await;
    let snap = available_snapshot(&app, "admin", &share).await;
    // Size defaults to the snapshot's, the type to the parent's.
    let resp = post_share(
        &app,
        "admin",
        json!({"snapshot_id": snap, "share_type": null, "availability_zone": null}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let child = resp.json()["share"]["id"].as_str().expect("id").to_owned();
    app.settle().await;
    let view = share_view(&app, &child).await;
    assert_eq!(view["status"], "available", "{view}");
    assert_eq!(view["snapshot_id"], snap.as_str());
    assert_eq!(view["share_type_name"], "snap");
    assert_eq!(view["host"], share_view(&app, &share).await["host"]);
    assert_eq!(view["size"], 1);

    // Smaller than the snapshot, another type, another zone, a missing snapshot.
    post_share(
        &app,
        "admin",
        json!({"snapshot_id": snap, "share_type": "snap", "size": 0}),
    )
    .await
    .assert_fault(400, "badRequest", None);
    create_type(&app, "snap2", crate::snapshot_fixtures::snapshot_specs()).await;
    post_share(&app, "admin", json!({"snapshot_id": snap, "share_type": "snap2"}))
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("Invalid input received: Invalid share type specified: the requested share type must match the type of the source share. If a share type is not specified when requesting a new share from a snapshot, the share type of the source share will be applied to the new share."),
        );
    post_share(
        &app,
        "admin",
        json!({"snapshot_id": snap, "share_type": "snap", "availability_zone": "az2"}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Invalid input received: The specified availability zone must be the same as the parent share when creating from snapshot."),
    );
    post_share(&app, "admin", json!({"snapshot_id": MISSING}))
        .await
        .assert_fault(404, "itemNotFound", None);
    app.finish().await;
}

#[tokio::test]
async fn share_from_snapshot_needs_the_capability() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    create_type(&app, "nocopy", json!({"snapshot_support": true})).await;
    let share = share_of_type(&app, "admin", "nocopy").await;
    let snap = available_snapshot(&app, "admin", &share).await;
    post_share(&app, "admin", json!({"snapshot_id": snap, "share_type": "nocopy"}))
        .await
        .assert_fault(
            400,
            "badRequest",
            Some(&format!(
                "A new share may not be created from snapshot '{snap}', because the snapshot's parent share does not have that capability."
            )),
        );
    app.finish().await;
}

#[tokio::test]
async fn manage_and_unmanage() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    let share = share_of_type(&app, "admin", "snap").await;
    let manage = |body: serde_json::Value, version: &'static str| {
        app.post("/v2/snapshots/manage")
            .version(version)
            .json(&body)
            .send()
    };
    manage(
        json!({"snapshot": {"share_id": share, "provider_location": "/x"}}),
        "2.11",
    )
    .await
    .assert_fault(404, "itemNotFound", None);
    manage(json!({"snapshot": {"share_id": share}}), SV)
        .await
        .assert_fault(
            422,
            "computeFault",
            Some("Required parameter provider_location not found."),
        );
    // The dummy adopts only a snapshot it unmanaged, as Manila's dummy.
    let old = available_snapshot(&app, "admin", &share).await;
    let existing = snapshot_view(&app, &old).await["provider_location"]
        .as_str()
        .expect("provider_location")
        .to_owned();
    let resp = snapshot_action(&app, "admin", SV, &old, json!({"unmanage": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    get_as(&app, "admin", SV, &format!("/v2/snapshots/{old}"))
        .await
        .assert_fault(404, "itemNotFound", None);
    assert_eq!(usage(&app, project_of("admin"), "snapshots").await, (0, 0));
    // test_manage_invalid_provider_location: an unknown one ends in `manage_error`.
    let resp = manage(
        json!({"snapshot": {"share_id": share, "provider_location": "/unknown"}}),
        SV,
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let refused = resp.json()["snapshot"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    app.settle().await;
    let view = snapshot_view(&app, &refused).await;
    assert_eq!(view["status"], "manage_error", "{view}");
    let resp = snapshot_action(&app, "admin", SV, &refused, json!({"unmanage": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    get_as(&app, "admin", SV, &format!("/v2/snapshots/{refused}"))
        .await
        .assert_fault(404, "itemNotFound", None);
    assert_eq!(usage(&app, project_of("admin"), "snapshots").await, (0, 0));
    let resp = manage(
        json!({"snapshot": {"share_id": share, "provider_location": existing, "name": "m"}}),
        SV,
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let id = resp.json()["snapshot"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(resp.json()["snapshot"]["status"], "manage_starting");
    app.settle().await;
    let view = snapshot_view(&app, &id).await;
    assert_eq!(view["status"], "available", "{view}");
    assert_eq!(view["provider_location"], existing.as_str());
    assert_eq!(view["size"], 1, "Manila's dummy answers 1 GiB");
    // The same provider location again: 409 naming the snapshot managed there.
    manage(
        json!({"snapshot": {"share_id": share, "provider_location": existing}}),
        SV,
    )
    .await
    .assert_fault(
        409,
        "conflictingRequest",
        Some(&format!(
            "Manage existing share snapshot failed due to invalid share snapshot: A share snapshot {id} is already managed for provider location {existing}."
        )),
    );
    let resp = snapshot_action(&app, "admin", SV, &id, json!({"unmanage": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    get_as(&app, "admin", SV, &format!("/v2/snapshots/{id}"))
        .await
        .assert_fault(404, "itemNotFound", None);
    assert_eq!(usage(&app, project_of("admin"), "snapshots").await, (0, 0));
    app.finish().await;
}

#[tokio::test]
async fn mountable_snapshot_access_and_export_locations() {
    let app = snapshot_app(AuthStrategy::Keystone, json!({})).await;
    let share = share_of_type(&app, "alice", "snap").await;
    let id = available_snapshot(&app, "alice", &share).await;
    // Export locations: admin-only ones hidden from alice.
    let resp = get_as(
        &app,
        "alice",
        SV,
        &format!("/v2/snapshots/{id}/export-locations"),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let locations = resp.json()["share_snapshot_export_locations"].clone();
    assert_eq!(locations.as_array().map(Vec::len), Some(2), "{locations}");
    let el = locations[0]["id"].as_str().expect("id").to_owned();
    assert!(
        locations[0].get("is_admin_only").is_none(),
        "admins only: {locations}"
    );
    assert!(
        locations[0].get("created_at").is_none(),
        "list items have no times"
    );
    let resp = get_as(
        &app,
        "alice",
        SV,
        &format!("/v2/snapshots/{id}/export-locations/{el}"),
    )
    .await;
    assert_eq!(resp.status, 200);
    let item = resp.json()["share_snapshot_export_location"].clone();
    assert!(item["created_at"].is_string(), "{item}");
    assert_eq!(item["links"][0]["rel"], "self");
    let admin = get_as(
        &app,
        "admin",
        SV,
        &format!("/v2/snapshots/{id}/export-locations"),
    )
    .await;
    assert_eq!(
        admin.json()["share_snapshot_export_locations"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    get_as(
        &app,
        "alice",
        "2.31",
        &format!("/v2/snapshots/{id}/export-locations"),
    )
    .await
    .assert_fault(404, "itemNotFound", None);

    // Access rules.
    let resp = snapshot_action(
        &app,
        "alice",
        SV,
        &id,
        json!({"allow_access": {"access_type": "ip", "access_to": "10.0.0.0/24"}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let rule = resp.json()["snapshot_access"].clone();
    assert_eq!(rule["state"], "applying");
    let rule_id = rule["id"].as_str().expect("id").to_owned();
    snapshot_action(
        &app,
        "alice",
        SV,
        &id,
        json!({"allow_access": {"access_type": "ip", "access_to": "10.0.0.0/24"}}),
    )
    .await
    .assert_fault(400, "badRequest", None);
    // The same network in another notation is the same rule (Manila compares ip targets
    // as networks).
    let single = snapshot_action(
        &app,
        "alice",
        SV,
        &id,
        json!({"allow_access": {"access_type": "ip", "access_to": "10.0.1.1"}}),
    )
    .await;
    assert_eq!(single.status, 202, "{}", single.text());
    snapshot_action(
        &app,
        "alice",
        SV,
        &id,
        json!({"allow_access": {"access_type": "ip", "access_to": "10.0.1.1/32"}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Share snapshot access exists: Share snapshot access ip:10.0.1.1/32 exists."),
    );
    app.settle().await;
    let single_id = single.json()["snapshot_access"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let resp = snapshot_action(
        &app,
        "alice",
        SV,
        &id,
        json!({"deny_access": {"access_id": single_id}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    snapshot_action(
        &app,
        "alice",
        SV,
        &id,
        json!({"allow_access": {"access_type": "ip"}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Required parameter access_to not found."),
    );
    app.settle().await;
    let list = get_as(
        &app,
        "alice",
        SV,
        &format!("/v2/snapshots/{id}/access-list"),
    )
    .await;
    assert_eq!(list.status, 200, "{}", list.text());
    assert_eq!(list.json()["snapshot_access_list"][0]["state"], "active");
    let resp = snapshot_action(
        &app,
        "alice",
        SV,
        &id,
        json!({"deny_access": {"access_id": rule_id}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    let list = get_as(
        &app,
        "alice",
        SV,
        &format!("/v2/snapshots/{id}/access-list"),
    )
    .await;
    assert_eq!(list.json()["snapshot_access_list"], json!([]));
    app.finish().await;
}

/// Tempest's `test_create_duplicate_of_ip_rule` on a snapshot: the same address in the
/// other notation is a duplicate, a rule being denied still blocks its target, and a rule
/// gone from the access list blocks nothing.
#[tokio::test]
async fn duplicate_snapshot_ip_rules_compare_as_networks() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    let share = share_of_type(&app, "admin", "snap").await;
    let id = available_snapshot(&app, "admin", &share).await;
    let allow = |to: &str| json!({"allow_access": {"access_type": "ip", "access_to": to}});
    let list = || async {
        let resp = get_as(
            &app,
            "admin",
            SV,
            &format!("/v2/snapshots/{id}/access-list"),
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        resp.json()["snapshot_access_list"].clone()
    };
    for (target, alternate) in [
        ("1.2.3.4", "1.2.3.4/32"),
        ("fd8c:b029:bba6:ac54::1", "fd8c:b029:bba6:ac54::1/128"),
        ("fd8c:b029:bba6:ac54::1/128", "fd8c:b029:bba6:ac54::1"),
        ("1.2.3.4/32", "1.2.3.4"),
    ] {
        for _ in 0..2 {
            let resp = snapshot_action(&app, "admin", SV, &id, allow(target)).await;
            assert_eq!(resp.status, 202, "{target}: {}", resp.text());
            let rule_id = resp.json()["snapshot_access"]["id"]
                .as_str()
                .expect("id")
                .to_owned();
            app.settle().await;
            assert_eq!(list().await[0]["state"], "active");
            for duplicate in [target, alternate] {
                snapshot_action(&app, "admin", SV, &id, allow(duplicate))
                    .await
                    .assert_fault(
                        400,
                        "badRequest",
                        Some(&format!(
                            "Share snapshot access exists: Share snapshot access ip:{duplicate} exists."
                        )),
                    );
            }
            let deny = json!({"deny_access": {"access_id": rule_id}});
            let held = app.hold_workers().await;
            let resp = snapshot_action(&app, "admin", SV, &id, deny.clone()).await;
            assert_eq!(resp.status, 202, "{}", resp.text());
            // Still listed while denied, so still a duplicate.
            assert_eq!(list().await[0]["state"], "denying");
            snapshot_action(&app, "admin", SV, &id, allow(alternate))
                .await
                .assert_fault(400, "badRequest", None);
            drop(held);
            app.settle().await;
            assert_eq!(list().await, json!([]), "{target}");
            snapshot_action(&app, "admin", SV, &id, deny)
                .await
                .assert_fault(404, "itemNotFound", None);
        }
    }
    // Another address of the same network is not a duplicate.
    let resp = snapshot_action(&app, "admin", SV, &id, allow("1.2.3.0/24")).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let resp = snapshot_action(&app, "admin", SV, &id, allow("1.2.3.4")).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(list().await.as_array().map(Vec::len), Some(2));
    app.finish().await;
}

#[tokio::test]
async fn access_needs_mount_snapshot_support() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    create_type(&app, "nomount", json!({"snapshot_support": true})).await;
    let share = share_of_type(&app, "admin", "nomount").await;
    let id = available_snapshot(&app, "admin", &share).await;
    snapshot_action(
        &app,
        "admin",
        SV,
        &id,
        json!({"allow_access": {"access_type": "ip", "access_to": "10.0.0.1"}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some(&format!(
            "Cannot control access to the snapshot {id} since the parent share {share} does not support mounting its snapshots."
        )),
    );
    app.finish().await;
}

#[tokio::test]
async fn snapshot_metadata() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    let share = share_of_type(&app, "admin", "snap").await;
    let resp = post_snapshot(
        &app,
        "admin",
        SV,
        json!({"snapshot": {"share_id": share, "metadata": {"a": "1"}}}),
    )
    .await;
    assert_eq!(resp.status, 202);
    let id = resp.json()["snapshot"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(resp.json()["snapshot"]["metadata"], json!({"a": "1"}));
    app.settle().await;
    let path = format!("/v2/snapshots/{id}/metadata");
    get_as(&app, "admin", "2.72", &path)
        .await
        .assert_fault(404, "itemNotFound", None);
    let resp = app
        .post(&path)
        .version(SV)
        .json(&json!({"metadata": {"b": "2"}}))
        .send()
        .await;
    assert_eq!(resp.json()["metadata"], json!({"a": "1", "b": "2"}));
    let resp = app
        .put(&path)
        .version(SV)
        .json(&json!({"metadata": {"c": "3"}}))
        .send()
        .await;
    assert_eq!(resp.json()["metadata"], json!({"c": "3"}));
    let item = get_as(&app, "admin", SV, &format!("{path}/c")).await;
    assert_eq!(item.json(), json!({"meta": {"c": "3"}}));
    let resp = app.delete(&format!("{path}/c")).version(SV).send().await;
    assert_eq!(resp.status, 200);
    get_as(&app, "admin", SV, &format!("{path}/c"))
        .await
        .assert_fault(404, "itemNotFound", None);
    app.finish().await;
}

#[tokio::test]
async fn snapshot_instances_admin_api() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    let share = share_of_type(&app, "admin", "snap").await;
    let id = available_snapshot(&app, "admin", &share).await;
    get_as(&app, "admin", "2.18", "/v2/snapshot-instances")
        .await
        .assert_fault(404, "itemNotFound", None);
    let instances = instances_of(&app, &id).await;
    assert_eq!(instances.len(), 1);
    assert_eq!(instances[0]["status"], "available");
    assert_eq!(instances[0]["share_id"], share.as_str());
    assert_eq!(instances[0]["progress"], "100%");
    let iid = instances[0]["id"].as_str().expect("id").to_owned();
    let resp = app
        .post(&format!("/v2/snapshot-instances/{iid}/action"))
        .version(SV)
        .json(&json!({"reset_status": {"status": "error"}}))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(snapshot_view(&app, &id).await["status"], "error");
    let resp = get_as(&app, "admin", SV, &format!("/v2/snapshot-instances/{iid}")).await;
    assert_eq!(resp.json()["snapshot_instance"]["status"], "error");
    get_as(
        &app,
        "admin",
        SV,
        &format!("/v2/snapshot-instances/{MISSING}"),
    )
    .await
    .assert_fault(404, "itemNotFound", None);
    let locations = get_as(
        &app,
        "admin",
        SV,
        &format!("/v2/snapshot-instances/{iid}/export-locations"),
    )
    .await;
    assert_eq!(
        locations.json()["share_snapshot_export_locations"]
            .as_array()
            .map(Vec::len),
        Some(3)
    );
    app.finish().await;
}

#[tokio::test]
async fn scheduler_places_snapshot_types_on_pools_that_report_it() {
    // dummy1 (az1) reports no snapshot support; dummy2 (az2) does.
    let app = snapshot_app(
        AuthStrategy::Noauth,
        json!({"dummy1": {"snapshot_support": false}}),
    )
    .await;
    let pools = get_as(&app, "admin", SV, "/v2/scheduler-stats/pools/detail")
        .await
        .json();
    let reported: Vec<(String, serde_json::Value)> = pools["pools"]
        .as_array()
        .expect("pools")
        .iter()
        .map(|p| {
            (
                p["backend"].as_str().unwrap_or_default().to_owned(),
                p["capabilities"]["snapshot_support"].clone(),
            )
        })
        .collect();
    assert!(
        reported.contains(&("dummy1".to_owned(), json!(false))),
        "{reported:?}"
    );
    assert!(
        reported.contains(&("dummy2".to_owned(), json!(true))),
        "{reported:?}"
    );
    // Asked in az1: no pool can take it; the capabilities filter is named.
    let id = new_share(&app, "admin", json!({"share_type": "snap"})).await;
    app.settle().await;
    assert_eq!(share_view(&app, &id).await["status"], "error");
    let messages = get_as(&app, "admin", SV, "/v2/messages").await.json();
    assert!(
        messages["messages"]
            .as_array()
            .expect("messages")
            .iter()
            .any(|m| m["resource_id"] == id.as_str() && m["detail_id"] == "008"),
        "{messages}"
    );
    // Anywhere: it lands on dummy2.
    let id = new_share(
        &app,
        "admin",
        json!({"share_type": "snap", "availability_zone": null}),
    )
    .await;
    app.settle().await;
    let view = share_view(&app, &id).await;
    assert_eq!(view["status"], "available");
    assert!(
        view["host"]
            .as_str()
            .is_some_and(|h| h.contains("@dummy2#")),
        "{view}"
    );
    app.finish().await;
}

#[tokio::test]
async fn snapshot_operations_are_idempotent() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    let share = share_of_type(&app, "admin", "snap").await;
    let id = available_snapshot(&app, "admin", &share).await;
    let instance = instances_of(&app, &id).await[0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let host = share_view(&app, &share).await["host"]
        .as_str()
        .expect("host")
        .to_owned();
    let service = host.split('#').next().expect("service").to_owned();
    let core = app.core();
    // A create that runs again after its snapshot became available changes nothing; a
    // delete of an instance that is gone does nothing.
    for kind in [
        "create_snapshot",
        "delete_snapshot",
        "create_replica_snapshot",
    ] {
        core.store
            .insert_operation(shoal_store::NewOperation {
                kind: kind.to_owned(),
                target_id: instance.clone(),
                host: Some(service.clone()),
                payload: json!({}),
                now: core.now(),
            })
            .await
            .expect("enqueue");
    }
    app.settle().await;
    let view = snapshot_view(&app, &id).await;
    assert_eq!(view["status"], "available", "{view}");
    let failed = core
        .store
        .list_operations(Some(shoal_store::OperationState::Failed))
        .await
        .expect("ops");
    assert!(failed.is_empty(), "{failed:?}");
    app.finish().await;
}

#[tokio::test]
async fn share_from_snapshot_through_the_scheduler() {
    let app = shoal_testkit::TestApp::builder()
        .auth(AuthStrategy::Noauth)
        .with_dummy_backend("dummy1", "az1", Some("readable"))
        .with_dummy_backend("dummy2", "az2", Some("readable"))
        .configure(|config| config.api.use_scheduler_creating_share_from_snapshot = true)
        .build()
        .await;
    create_type(&app, "snap", crate::snapshot_fixtures::snapshot_specs()).await;
    let share = share_of_type(&app, "admin", "snap").await;
    let parent_host = share_view(&app, &share).await["host"].clone();
    let snap = available_snapshot(&app, "admin", &share).await;
    // Same zone: the snapshot's own pool wins (host affinity).
    let near = new_share(
        &app,
        "admin",
        json!({"share_type": "snap", "snapshot_id": snap}),
    )
    .await;
    // Another zone is allowed with the scheduler: the other back end of the domain.
    let far = new_share(
        &app,
        "admin",
        json!({"share_type": "snap", "snapshot_id": snap, "availability_zone": "az2"}),
    )
    .await;
    app.settle().await;
    let near = share_view(&app, &near).await;
    assert_eq!(near["status"], "available", "{near}");
    assert_eq!(near["host"], parent_host);
    let far = share_view(&app, &far).await;
    assert_eq!(far["status"], "available", "{far}");
    assert!(
        far["host"].as_str().is_some_and(|h| h.contains("@dummy2#")),
        "{far}"
    );
    assert_eq!(far["snapshot_id"], snap.as_str());
    app.finish().await;
}

#[tokio::test]
async fn inherited_snapshot_access_cannot_be_changed() {
    let app = snapshot_app(AuthStrategy::Noauth, json!({})).await;
    let type_id = create_type(&app, "inherit", crate::snapshot_fixtures::snapshot_specs()).await;
    let share = share_of_type(&app, "admin", "inherit").await;
    let id = available_snapshot(&app, "admin", &share).await;
    // No pool reports the capability, so the type gets it after the share is placed.
    let resp = app
        .post(&format!("/v2/types/{type_id}/extra_specs"))
        .version(SV)
        .json(&json!({"extra_specs": {"snapshot_inherit_share_access_support": "True"}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    snapshot_action(
        &app,
        "admin",
        SV,
        &id,
        json!({"allow_access": {"access_type": "ip", "access_to": "10.0.0.1"}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some(&format!(
            "Cannot modify access rules for the snapshot {id} since the parent share {share} has snapshot_inherit_share_access_support enabled. Snapshot access rules are inherited from the base share."
        )),
    );
    app.finish().await;
}

#[tokio::test]
async fn snapshot_quotas_count_the_users_and_share_types_usage() {
    let app = snapshot_app(AuthStrategy::Keystone, json!({})).await;
    create_type(&app, "snap2", crate::snapshot_fixtures::snapshot_specs()).await;
    let share = share_of_type(&app, "alice", "snap").await;
    let other = share_of_type(&app, "alice", "snap2").await;
    let project = project_of("alice");
    let user = share_view(&app, &share).await["user_id"]
        .as_str()
        .expect("user_id")
        .to_owned();
    let snapshot = available_snapshot(&app, "alice", &share).await;
    let detail = |query: String| {
        let app = &app;
        async move {
            let resp = get_as(
                app,
                "admin",
                "2.40",
                &format!("/v2/quota-sets/{project}/detail?{query}"),
            )
            .await;
            assert_eq!(resp.status, 200, "{}", resp.text());
            resp.json()["quota_set"].clone()
        }
    };
    // Charged to the creating user and to the share's type, as Manila's reserve.
    for query in [format!("user_id={user}"), "share_type=snap".to_owned()] {
        let set = detail(query.clone()).await;
        assert_eq!(set["snapshots"]["in_use"], 1, "{query}: {set}");
        assert_eq!(set["snapshot_gigabytes"]["in_use"], 1, "{query}: {set}");
    }
    let set = detail("share_type=snap2".to_owned()).await;
    assert_eq!(set["snapshots"]["in_use"], 0, "{set}");

    // The type's limit refuses a second snapshot of its share, not one of another type.
    let put = |query: String, body: serde_json::Value| {
        let app = &app;
        async move {
            let resp = app
                .put(&format!("/v2/quota-sets/{project}?{query}"))
                .version(SV)
                .token(&app.token_for("admin"))
                .json(&body)
                .send()
                .await;
            assert_eq!(resp.status, 200, "{}", resp.text());
        }
    };
    put(
        "share_type=snap".to_owned(),
        json!({"quota_set": {"snapshots": 1}}),
    )
    .await;
    post_snapshot(&app, "alice", SV, json!({"snapshot": {"share_id": share}}))
        .await
        .assert_fault(
            413,
            "overLimit",
            Some("SnapshotLimitExceeded: Maximum number of snapshots allowed (1) exceeded"),
        );
    // The user's limit applies across types.
    put(
        format!("user_id={user}"),
        json!({"quota_set": {"snapshot_gigabytes": 1}}),
    )
    .await;
    post_snapshot(
        &app,
        "alice",
        SV,
        json!({"snapshot": {"share_id": other}}),
    )
    .await
    .assert_fault(
        413,
        "overLimit",
        Some("SnapshotSizeExceedsAvailableQuota: Requested snapshot exceeds allowed project/user or share type gigabytes quota."),
    );
    assert_eq!(usage(&app, project, "snapshots").await, (1, 0));

    // A delete gives the user's and the type's usage back.
    let resp = app
        .delete(&format!("/v2/snapshots/{snapshot}"))
        .version(SV)
        .token(&app.token_for("alice"))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    for query in [format!("user_id={user}"), "share_type=snap".to_owned()] {
        let set = detail(query.clone()).await;
        assert_eq!(set["snapshots"]["in_use"], 0, "{query}: {set}");
        assert_eq!(set["snapshot_gigabytes"]["in_use"], 0, "{query}: {set}");
    }
    assert_eq!(usage(&app, project, "snapshots").await, (0, 0));
    available_snapshot(&app, "alice", &other).await;
    app.finish().await;
}
