//! Replica delete and force delete: checklist groups I (159–170) and N (220–225),
//! replication.md §5.4, §5.7 (force_delete) and §6.6.

use serde_json::json;
use shoal_core::config::AuthStrategy;

use crate::replica_fixtures::*;

#[tokio::test]
async fn i159_delete_in_sync_secondary_is_202_with_empty_body() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let resp = delete_replica(&app, "admin", &secondary).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert!(resp.body.is_empty(), "{}", resp.text());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn i160_deleted_replica_shows_deleting_then_404() {
    let app = app_with_knobs(
        AuthStrategy::Noauth,
        json!({"dummy2": {"delays": {"delete_replica": "3s"}}}),
    )
    .await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let resp = delete_replica(&app, "admin", &secondary).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(replica(&app, &secondary).await["status"], "deleting");
    app.settle().await;
    assert_eq!(show_replica(&app, "admin", V, &secondary).await.status, 404);
    app.finish().await;
}

#[tokio::test]
async fn i161_unknown_replica_is_404() {
    let app = app().await;
    delete_replica(&app, "admin", MISSING).await.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("No replica exists with ID {MISSING}.")),
    );
    app.finish().await;
}

#[tokio::test]
async fn i162_deleting_the_only_active_replica_is_400() {
    let app = app().await;
    let (_, active, _) = replicated(&app, "admin").await;
    delete_replica(&app, "admin", &active).await.assert_fault(
        400,
        "badRequest",
        Some("Unable to perform a replication action: Cannot delete last active replica."),
    );
    assert_eq!(replica(&app, &active).await["status"], "available");
    app.finish().await;
}

#[tokio::test]
async fn i163_deleting_an_active_replica_with_another_active_is_202() {
    let app = app().await;
    let (share, active, secondary) = replicated(&app, "admin").await;
    reset_state(&app, &secondary, "active").await;
    let resp = delete_replica(&app, "admin", &active).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(ids(&replicas_of(&app, &share).await), vec![secondary]);
    app.finish().await;
}

#[tokio::test]
async fn i164_deleting_a_replica_in_error_is_202_and_it_disappears() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    reset_status(&app, &secondary, "error").await;
    let resp = delete_replica(&app, "admin", &secondary).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(show_replica(&app, "admin", V, &secondary).await.status, 404);
    app.finish().await;
}

#[tokio::test]
async fn i165_deleting_a_creating_replica_is_202() {
    let app = app_with_knobs(
        AuthStrategy::Noauth,
        json!({"dummy2": {"delays": {"create_replica": "2s"}}}),
    )
    .await;
    let share = available_share(&app, "admin").await;
    let id = request_replica(&app, "admin", &share).await;
    assert_eq!(replica(&app, &id).await["status"], "creating");
    let resp = delete_replica(&app, "admin", &id).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(show_replica(&app, "admin", V, &id).await.status, 404);
    assert_eq!(replicas_of(&app, &share).await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn i166_replica_without_host_is_removed_at_once() {
    let app = app().await;
    let (share, _, _) = replicated(&app, "admin").await;
    let id = unplaced_replica(&app, "admin", &share).await;
    let resp = delete_replica(&app, "admin", &id).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    // No worker ran: nothing to ask a back end.
    assert_eq!(show_replica(&app, "admin", V, &id).await.status, 404);
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn i167_reader_delete_is_403() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    delete_replica(&app, "rita", &secondary)
        .await
        .assert_fault(403, "forbidden", Some(DENIED));
    assert_eq!(replica(&app, &secondary).await["status"], "available");
    app.finish().await;
}

#[tokio::test]
async fn i168_member_deleting_other_projects_replica_is_404() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    delete_replica(&app, "bob", &secondary).await.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("No replica exists with ID {secondary}.")),
    );
    assert_eq!(replica(&app, &secondary).await["status"], "available");
    app.finish().await;
}

#[tokio::test]
async fn i169_delete_releases_replica_quota() {
    let app = app().await;
    let project = project_of("admin");
    let share = available_share_sized(&app, "admin", 3).await;
    let secondary = in_sync_replica(&app, "admin", &share).await;
    assert_eq!(usage(&app, project, "share_replicas").await, (2, 0));
    assert_eq!(usage(&app, project, "replica_gigabytes").await, (6, 0));
    let resp = delete_replica(&app, "admin", &secondary).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(usage(&app, project, "share_replicas").await, (1, 0));
    assert_eq!(usage(&app, project, "replica_gigabytes").await, (3, 0));
    app.finish().await;
}

#[tokio::test]
async fn i170_deleted_replicas_export_locations_vanish() {
    let app = app().await;
    let (share, active, secondary) = replicated(&app, "admin").await;
    let before = els(&replica_els(&app, "admin", V, &secondary).await);
    assert!(!before.is_empty());
    let resp = delete_replica(&app, "admin", &secondary).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    // 2.46 lists every instance's locations: only the active's are left.
    let resp = get_as(
        &app,
        "admin",
        "2.46",
        &format!("/v2/shares/{share}/export_locations"),
    )
    .await;
    let left = els(&resp);
    assert!(!left.is_empty());
    assert!(
        left.iter()
            .all(|el| el["share_instance_id"] == active.as_str()),
        "{left:?}"
    );
    for el in &before {
        let el_id = el["id"].as_str().unwrap();
        assert!(left.iter().all(|l| l["id"] != el_id));
    }
    assert_eq!(replica_els(&app, "admin", V, &secondary).await.status, 404);
    app.finish().await;
}

#[tokio::test]
async fn n220_force_delete_of_a_secondary_is_202_and_it_disappears() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let resp = action(&app, "admin", V, &secondary, json!({"force_delete": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert!(resp.body.is_empty(), "{}", resp.text());
    app.settle().await;
    assert_eq!(show_replica(&app, "admin", V, &secondary).await.status, 404);
    app.finish().await;
}

#[tokio::test]
async fn n221_force_delete_of_error_deleting_secondary() {
    // The back end refuses to delete: a plain delete ends in error_deleting, a forced one
    // removes the record anyway.
    let app = app_with_knobs(
        AuthStrategy::Noauth,
        json!({"dummy2": {"fail": {"delete_replica": 1.0}}}),
    )
    .await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let resp = delete_replica(&app, "admin", &secondary).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    let view = replica(&app, &secondary).await;
    assert_eq!(view["status"], "error_deleting", "{view}");
    assert_eq!(view["replica_state"], "error", "{view}");
    let resp = action(&app, "admin", V, &secondary, json!({"force_delete": {}})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(show_replica(&app, "admin", V, &secondary).await.status, 404);
    app.finish().await;
}

#[tokio::test]
async fn n222_force_delete_of_the_only_active_is_400() {
    let app = app().await;
    let (_, active, _) = replicated(&app, "admin").await;
    action(&app, "admin", V, &active, json!({"force_delete": null}))
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("Unable to perform a replication action: Cannot delete last active replica."),
        );
    app.finish().await;
}

#[tokio::test]
async fn n223_force_delete_of_unknown_replica_is_404() {
    let app = app().await;
    action(&app, "admin", V, MISSING, json!({"force_delete": null}))
        .await
        .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    app.finish().await;
}

#[tokio::test]
async fn n224_member_force_delete_is_403() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    action(&app, "alice", V, &secondary, json!({"force_delete": null}))
        .await
        .assert_fault(403, "forbidden", Some(DENIED));
    assert_eq!(replica(&app, &secondary).await["status"], "available");
    app.finish().await;
}

#[tokio::test]
async fn n225_force_delete_releases_replica_quota() {
    let app = app().await;
    let project = project_of("admin");
    let share = available_share_sized(&app, "admin", 2).await;
    let secondary = in_sync_replica(&app, "admin", &share).await;
    assert_eq!(usage(&app, project, "share_replicas").await, (2, 0));
    let resp = action(&app, "admin", V, &secondary, json!({"force_delete": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(usage(&app, project, "share_replicas").await, (1, 0));
    assert_eq!(usage(&app, project, "replica_gigabytes").await, (2, 0));
    app.finish().await;
}
