//! Replica actions, `POST /v2/share-replicas/{id}/action`: checklist groups J (promote,
//! 171–191), K (resync, 192–199), L (reset_status, 200–209) and M (reset_replica_state,
//! 210–219); replication.md §5.5–§5.7, §6.5, §7.
//!
//! Not testable in shoal: J.189 (no share networks, so a replica's network can never be
//! inactive).

use serde_json::{Value, json};
use shoal_core::config::AuthStrategy;

use crate::replica_fixtures::*;

async fn promote(
    app: &shoal_testkit::TestApp,
    user: &str,
    id: &str,
) -> shoal_testkit::TestResponse {
    action(app, user, V, id, json!({"promote": null})).await
}

// ---- J. promote ----

#[tokio::test]
async fn j171_promote_in_sync_secondary_is_202_replication_change() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let resp = promote(&app, "admin", &secondary).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let view = &resp.json()["share_replica"];
    assert_eq!(view["id"], secondary.as_str());
    assert_eq!(view["status"], "replication_change", "{view}");
    assert_eq!(view["replica_state"], "in_sync", "{view}");
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn j172_promotion_completes_with_roles_swapped() {
    let app = app().await;
    let (_, active, secondary) = replicated(&app, "admin").await;
    let resp = promote(&app, "admin", &secondary).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    let promoted = replica(&app, &secondary).await;
    assert_eq!(promoted["status"], "available", "{promoted}");
    assert_eq!(promoted["replica_state"], "active", "{promoted}");
    let former = replica(&app, &active).await;
    assert_eq!(former["status"], "available", "{former}");
    assert_eq!(former["replica_state"], "in_sync", "{former}");
    app.finish().await;
}

#[tokio::test]
async fn j173_readable_promotion_moves_the_readonly_cast() {
    let app = app().await;
    let (_, active, secondary) = replicated(&app, "admin").await;
    assert_eq!(
        replica(&app, &secondary).await["cast_rules_to_readonly"],
        true
    );
    assert_eq!(promote(&app, "admin", &secondary).await.status, 202);
    app.settle().await;
    let promoted = show_replica(&app, "admin", "2.30", &secondary).await.json();
    assert_eq!(promoted["share_replica"]["cast_rules_to_readonly"], false);
    let former = show_replica(&app, "admin", "2.30", &active).await.json();
    assert_eq!(former["share_replica"]["cast_rules_to_readonly"], true);
    app.finish().await;
}

#[tokio::test]
async fn j174_dr_promotion_leaves_old_active_uncast() {
    let app = dr_app().await;
    let share = available_share(&app, "admin").await;
    let active = active_of(&app, &share).await;
    let secondary = request_replica(&app, "admin", &share).await;
    app.settle().await;
    assert_eq!(replica(&app, &secondary).await["status"], "available");
    let resp = promote(&app, "admin", &secondary).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    let promoted = replica(&app, &secondary).await;
    assert_eq!(promoted["replica_state"], "active", "{promoted}");
    assert_eq!(promoted["cast_rules_to_readonly"], false);
    assert_eq!(
        replica(&app, &active).await["cast_rules_to_readonly"],
        false
    );
    app.finish().await;
}

#[tokio::test]
async fn j175_promoting_the_active_is_200_and_a_no_op() {
    let app = app().await;
    let (share, active, secondary) = replicated(&app, "admin").await;
    let resp = promote(&app, "admin", &active).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.body.is_empty(), "{}", resp.text());
    app.settle().await;
    assert_eq!(active_of(&app, &share).await, active);
    let view = replica(&app, &active).await;
    assert_eq!(view["status"], "available");
    assert_eq!(replica(&app, &secondary).await["replica_state"], "in_sync");
    app.finish().await;
}

/// A `writable` share on the dummy behaves as on Manila's dummy: its new replica is an
/// `in_sync` secondary (so tempest's `test_reset_share_replica_state` can reset it), the API
/// applies no writable-specific rule (promoting the active is the usual 200 no-op, promoting
/// the secondary the usual 202), and after the promotion the roles are swapped with no
/// replica cast to read-only.
#[tokio::test]
async fn writable_replicas_on_the_dummy_are_secondaries_as_on_manilas_dummy() {
    let app = writable_app().await;
    let (share, active, secondary) = replicated(&app, "admin").await;
    assert_eq!(
        share_view(&app, &share).await["replication_type"],
        "writable"
    );
    let view = show_replica(&app, "admin", "2.30", &secondary).await.json();
    assert_eq!(view["share_replica"]["cast_rules_to_readonly"], false);

    reset_state(&app, &secondary, "error").await;
    assert_eq!(replica(&app, &secondary).await["replica_state"], "error");
    reset_state(&app, &secondary, "in_sync").await;

    let resp = promote(&app, "admin", &active).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.body.is_empty(), "{}", resp.text());
    app.settle().await;
    assert_eq!(active_of(&app, &share).await, active);

    let resp = promote(&app, "admin", &secondary).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(resp.json()["share_replica"]["status"], "replication_change");
    app.settle().await;
    let promoted = show_replica(&app, "admin", "2.30", &secondary).await.json();
    assert_eq!(promoted["share_replica"]["replica_state"], "active");
    assert_eq!(promoted["share_replica"]["status"], "available");
    assert_eq!(promoted["share_replica"]["cast_rules_to_readonly"], false);
    let former = show_replica(&app, "admin", "2.30", &active).await.json();
    assert_eq!(former["share_replica"]["replica_state"], "in_sync");
    assert_eq!(former["share_replica"]["cast_rules_to_readonly"], false);
    app.finish().await;
}

#[tokio::test]
async fn j176_promoting_unknown_replica_is_404() {
    let app = app().await;
    promote(&app, "admin", MISSING).await.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("No replica exists with ID {MISSING}.")),
    );
    app.finish().await;
}

#[tokio::test]
async fn j177_promoting_a_replica_in_error_is_400() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    reset_status(&app, &secondary, "error").await;
    promote(&app, "admin", &secondary).await.assert_fault(
        400,
        "badRequest",
        Some(&format!(
            "Unable to perform a replication action: Replica {secondary} must be in available state to be promoted."
        )),
    );
    app.finish().await;
}

#[tokio::test]
async fn j178_promoting_a_replica_in_replication_change_is_400() {
    let app = app_with_knobs(
        AuthStrategy::Noauth,
        json!({"dummy2": {"delays": {"promote_replica": "3s"}}}),
    )
    .await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    assert_eq!(promote(&app, "admin", &secondary).await.status, 202);
    promote(&app, "admin", &secondary).await.assert_fault(
        400,
        "badRequest",
        Some(&format!(
            "Unable to perform a replication action: Replica {secondary} must be in available state to be promoted."
        )),
    );
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn j179_member_promoting_out_of_sync_is_403() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    reset_state(&app, &secondary, "out_of_sync").await;
    promote(&app, "alice", &secondary).await.assert_fault(
        403,
        "forbidden",
        Some("User does not have admin privileges."),
    );
    assert_eq!(replica(&app, &secondary).await["status"], "available");
    app.finish().await;
}

#[tokio::test]
async fn j180_member_promoting_replica_state_error_is_403() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    reset_state(&app, &secondary, "error").await;
    promote(&app, "alice", &secondary).await.assert_fault(
        403,
        "forbidden",
        Some("User does not have admin privileges."),
    );
    app.finish().await;
}

#[tokio::test]
async fn j181_admin_promotes_out_of_sync() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    reset_state(&app, &secondary, "out_of_sync").await;
    let resp = promote(&app, "admin", &secondary).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(replica(&app, &secondary).await["replica_state"], "active");
    app.finish().await;
}

async fn promote_with(app: &shoal_testkit::TestApp, version: &str, id: &str, body: Value) -> u16 {
    let resp = action(app, "admin", version, id, body).await;
    if resp.status == 202 {
        app.settle().await;
    }
    resp.status
}

#[tokio::test]
async fn j182_quiesce_wait_time_integer_at_2_75() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let status = promote_with(
        &app,
        "2.75",
        &secondary,
        json!({"promote": {"quiesce_wait_time": 30}}),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(replica(&app, &secondary).await["replica_state"], "active");
    app.finish().await;
}

#[tokio::test]
async fn j183_quiesce_wait_time_numeric_string_at_2_75() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let status = promote_with(
        &app,
        "2.75",
        &secondary,
        json!({"promote": {"quiesce_wait_time": "30"}}),
    )
    .await;
    assert_eq!(status, 202);
    app.finish().await;
}

#[tokio::test]
async fn j184_invalid_quiesce_wait_times_are_400() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    for bad in [json!(-1), json!("0"), json!(1.5), json!("abc"), json!(true)] {
        let resp = action(
            &app,
            "admin",
            "2.75",
            &secondary,
            json!({"promote": {"quiesce_wait_time": bad}}),
        )
        .await;
        resp.assert_fault(
            400,
            "badRequest",
            Some("quiesce_wait_time must be an integer and greater than 0."),
        );
    }
    assert_eq!(replica(&app, &secondary).await["status"], "available");
    app.finish().await;
}

#[tokio::test]
async fn j185_zero_or_null_quiesce_wait_time_is_absent() {
    let app = app().await;
    let (_, active, secondary) = replicated(&app, "admin").await;
    let status = promote_with(
        &app,
        "2.75",
        &secondary,
        json!({"promote": {"quiesce_wait_time": 0}}),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(replica(&app, &secondary).await["replica_state"], "active");
    // Promote back, with null this time.
    let status = promote_with(
        &app,
        "2.75",
        &active,
        json!({"promote": {"quiesce_wait_time": null}}),
    )
    .await;
    assert_eq!(status, 202);
    assert_eq!(replica(&app, &active).await["replica_state"], "active");
    app.finish().await;
}

#[tokio::test]
async fn j186_quiesce_wait_time_is_ignored_below_2_75() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let status = promote_with(
        &app,
        "2.74",
        &secondary,
        json!({"promote": {"quiesce_wait_time": "abc"}}),
    )
    .await;
    assert_eq!(status, 202);
    app.finish().await;
}

#[tokio::test]
async fn j187_promote_null_body_is_202() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    assert_eq!(
        promote_with(&app, V, &secondary, json!({"promote": null})).await,
        202
    );
    app.finish().await;
}

#[tokio::test]
async fn j188_reader_promote_is_403() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    promote(&app, "rita", &secondary)
        .await
        .assert_fault(403, "forbidden", Some(DENIED));
    assert_eq!(replica(&app, &secondary).await["status"], "available");
    app.finish().await;
}

#[tokio::test]
async fn j190_backend_promotion_failure_errors_every_replica() {
    let app = app_with_knobs(
        AuthStrategy::Noauth,
        json!({"dummy2": {"fail": {"promote_replica": 1.0}}}),
    )
    .await;
    let (_, active, secondary) = replicated(&app, "admin").await;
    assert_eq!(promote(&app, "admin", &secondary).await.status, 202);
    app.settle().await;
    let former = replica(&app, &active).await;
    assert_eq!(former["status"], "error", "{former}");
    assert_eq!(former["replica_state"], "active", "{former}");
    let failed = replica(&app, &secondary).await;
    assert_eq!(failed["status"], "error", "{failed}");
    assert_eq!(failed["replica_state"], "in_sync", "{failed}");
    app.finish().await;
}

#[tokio::test]
async fn j191_share_export_locations_follow_the_new_active() {
    let app = app().await;
    let (share, active, secondary) = replicated(&app, "admin").await;
    assert_eq!(promote(&app, "admin", &secondary).await.status, 202);
    app.settle().await;
    let share_els = els(&get_as(
        &app,
        "admin",
        "2.47",
        &format!("/v2/shares/{share}/export_locations"),
    )
    .await);
    assert!(!share_els.is_empty());
    let mut share_paths: Vec<String> = share_els
        .iter()
        .map(|el| el["path"].as_str().unwrap().to_owned())
        .collect();
    share_paths.sort();
    let mut promoted_paths: Vec<String> = els(&replica_els(&app, "admin", V, &secondary).await)
        .iter()
        .map(|el| el["path"].as_str().unwrap().to_owned())
        .collect();
    promoted_paths.sort();
    assert_eq!(share_paths, promoted_paths);
    assert!(
        share_els
            .iter()
            .all(|el| el["share_instance_id"] == secondary.as_str()),
        "{share_els:?}"
    );
    assert!(
        share_els
            .iter()
            .all(|el| el["share_instance_id"] != active.as_str())
    );
    app.finish().await;
}

// ---- K. resync ----

#[tokio::test]
async fn k192_admin_resync_of_in_sync_secondary_is_202_empty() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let resp = action(&app, "admin", V, &secondary, json!({"resync": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert!(resp.body.is_empty(), "{}", resp.text());
    app.settle().await;
    assert_eq!(replica(&app, &secondary).await["replica_state"], "in_sync");
    app.finish().await;
}

#[tokio::test]
async fn k193_resync_of_the_active_is_200_empty() {
    let app = app().await;
    let (_, active, _) = replicated(&app, "admin").await;
    let resp = action(&app, "admin", V, &active, json!({"resync": null})).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.body.is_empty(), "{}", resp.text());
    app.settle().await;
    assert_eq!(replica(&app, &active).await["replica_state"], "active");
    app.finish().await;
}

#[tokio::test]
async fn k194_resync_of_unknown_replica_is_404() {
    let app = app().await;
    action(&app, "admin", V, MISSING, json!({"resync": null}))
        .await
        .assert_fault(
            404,
            "itemNotFound",
            Some(&format!("No replica exists with ID {MISSING}.")),
        );
    app.finish().await;
}

#[tokio::test]
async fn k195_resync_of_replica_without_host_is_400() {
    let app = app().await;
    let (share, _, _) = replicated(&app, "admin").await;
    let id = unplaced_replica(&app, "admin", &share).await;
    action(&app, "admin", V, &id, json!({"resync": null}))
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("Invalid host: Share replica does not have a valid host."),
        );
    app.finish().await;
}

#[tokio::test]
async fn k196_member_resync_is_403() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    action(&app, "alice", V, &secondary, json!({"resync": null}))
        .await
        .assert_fault(403, "forbidden", Some(DENIED));
    app.finish().await;
}

#[tokio::test]
async fn k197_resync_brings_out_of_sync_back_to_in_sync() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    reset_state(&app, &secondary, "out_of_sync").await;
    assert_eq!(
        replica(&app, &secondary).await["replica_state"],
        "out_of_sync"
    );
    let resp = action(&app, "admin", V, &secondary, json!({"resync": {}})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(replica(&app, &secondary).await["replica_state"], "in_sync");
    app.finish().await;
}

#[tokio::test]
async fn k198_resync_of_a_creating_replica_leaves_its_state() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    reset_state(&app, &secondary, "out_of_sync").await;
    reset_status(&app, &secondary, "creating").await;
    let resp = action(&app, "admin", V, &secondary, json!({"resync": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    let view = replica(&app, &secondary).await;
    assert_eq!(view["replica_state"], "out_of_sync", "{view}");
    assert_eq!(view["status"], "creating", "{view}");
    app.finish().await;
}

#[tokio::test]
async fn k199_resync_accepts_empty_object_and_null() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    for body in [json!({"resync": {}}), json!({"resync": null})] {
        let resp = action(&app, "admin", V, &secondary, body).await;
        assert_eq!(resp.status, 202, "{}", resp.text());
        app.settle().await;
    }
    app.finish().await;
}

// ---- L. reset_status ----

#[tokio::test]
async fn l200_reset_status_to_error_is_202_empty() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let resp = action(
        &app,
        "admin",
        V,
        &secondary,
        json!({"reset_status": {"status": "error"}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert!(resp.body.is_empty(), "{}", resp.text());
    assert_eq!(replica(&app, &secondary).await["status"], "error");
    app.finish().await;
}

#[tokio::test]
async fn l201_reset_status_accepts_the_eight_statuses() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    for status in [
        "creating",
        "available",
        "deleting",
        "error_deleting",
        "migrating",
        "migrating_to",
        "server_migrating",
        "error",
    ] {
        let resp = action(
            &app,
            "admin",
            V,
            &secondary,
            json!({"reset_status": {"status": status}}),
        )
        .await;
        assert_eq!(resp.status, 202, "{status}: {}", resp.text());
        assert_eq!(replica(&app, &secondary).await["status"], status);
    }
    app.finish().await;
}

#[tokio::test]
async fn l202_reset_status_to_replication_change_is_400() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let resp = action(
        &app,
        "admin",
        V,
        &secondary,
        json!({"reset_status": {"status": "replication_change"}}),
    )
    .await;
    assert_fault_prefix(&resp, 400, "badRequest", "Invalid state. Valid states:");
    assert_eq!(replica(&app, &secondary).await["status"], "available");
    app.finish().await;
}

#[tokio::test]
async fn l203_reset_status_to_in_sync_is_400() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let resp = action(
        &app,
        "admin",
        V,
        &secondary,
        json!({"reset_status": {"status": "in_sync"}}),
    )
    .await;
    assert_fault_prefix(&resp, 400, "badRequest", "Invalid state. Valid states:");
    app.finish().await;
}

#[tokio::test]
async fn l204_reset_status_without_status_is_400() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    action(&app, "admin", V, &secondary, json!({"reset_status": {}}))
        .await
        .assert_fault(400, "badRequest", Some("Must specify 'status'"));
    app.finish().await;
}

#[tokio::test]
async fn l205_reset_status_null_is_400() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    action(&app, "admin", V, &secondary, json!({"reset_status": null}))
        .await
        .assert_fault(400, "badRequest", Some("Must specify 'status'"));
    app.finish().await;
}

#[tokio::test]
async fn l206_reset_status_of_unknown_replica_is_404() {
    let app = app().await;
    action(
        &app,
        "admin",
        V,
        MISSING,
        json!({"reset_status": {"status": "error"}}),
    )
    .await
    .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    app.finish().await;
}

#[tokio::test]
async fn l207_member_reset_status_is_403() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    action(
        &app,
        "alice",
        V,
        &secondary,
        json!({"reset_status": {"status": "error"}}),
    )
    .await
    .assert_fault(403, "forbidden", Some(DENIED));
    assert_eq!(replica(&app, &secondary).await["status"], "available");
    app.finish().await;
}

#[tokio::test]
async fn l208_reset_status_keeps_replica_state() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    reset_status(&app, &secondary, "error").await;
    let view = replica(&app, &secondary).await;
    assert_eq!(view["status"], "error");
    assert_eq!(view["replica_state"], "in_sync", "{view}");
    app.finish().await;
}

#[tokio::test]
async fn l209_active_reset_to_error_shows_on_the_share() {
    let app = app().await;
    let (share, active, _) = replicated(&app, "admin").await;
    reset_status(&app, &active, "error").await;
    let view = share_view(&app, &share).await;
    assert_eq!(view["status"], "error", "{view}");
    app.finish().await;
}

// ---- M. reset_replica_state ----

#[tokio::test]
async fn m210_reset_replica_state_to_out_of_sync() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let resp = action(
        &app,
        "admin",
        V,
        &secondary,
        json!({"reset_replica_state": {"replica_state": "out_of_sync"}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert!(resp.body.is_empty(), "{}", resp.text());
    assert_eq!(
        replica(&app, &secondary).await["replica_state"],
        "out_of_sync"
    );
    app.finish().await;
}

#[tokio::test]
async fn m211_reset_replica_state_to_error() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    reset_state(&app, &secondary, "error").await;
    assert_eq!(replica(&app, &secondary).await["replica_state"], "error");
    app.finish().await;
}

#[tokio::test]
async fn m212_reset_secondary_to_active_gives_two_actives() {
    let app = app().await;
    let (share, _, secondary) = replicated(&app, "admin").await;
    reset_state(&app, &secondary, "active").await;
    let states: Vec<Value> = replicas_of(&app, &share)
        .await
        .iter()
        .map(|r| r["replica_state"].clone())
        .collect();
    assert_eq!(states, vec![json!("active"), json!("active")]);
    app.finish().await;
}

#[tokio::test]
async fn m213_reset_replica_state_of_an_active_is_400() {
    let app = app().await;
    let (_, active, _) = replicated(&app, "admin").await;
    action(
        &app,
        "admin",
        V,
        &active,
        json!({"reset_replica_state": {"replica_state": "out_of_sync"}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Cannot reset replica_state of an active replica"),
    );
    assert_eq!(replica(&app, &active).await["replica_state"], "active");
    app.finish().await;
}

#[tokio::test]
async fn m214_reset_replica_state_to_available_is_400() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let resp = action(
        &app,
        "admin",
        V,
        &secondary,
        json!({"reset_replica_state": {"replica_state": "available"}}),
    )
    .await;
    assert_fault_prefix(&resp, 400, "badRequest", "Invalid state. Valid states:");
    app.finish().await;
}

#[tokio::test]
async fn m215_reset_replica_state_without_value_is_400() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    for body in [
        json!({"reset_replica_state": {}}),
        json!({"reset_replica_state": null}),
        json!({"reset_replica_state": {"status": "error"}}),
    ] {
        action(&app, "admin", V, &secondary, body)
            .await
            .assert_fault(400, "badRequest", Some("Must specify 'replica_state'"));
    }
    app.finish().await;
}

#[tokio::test]
async fn m216_reset_replica_state_of_unknown_replica_is_404() {
    let app = app().await;
    action(
        &app,
        "admin",
        V,
        MISSING,
        json!({"reset_replica_state": {"replica_state": "error"}}),
    )
    .await
    .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    app.finish().await;
}

#[tokio::test]
async fn m217_member_reset_replica_state_is_403() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    action(
        &app,
        "alice",
        V,
        &secondary,
        json!({"reset_replica_state": {"replica_state": "error"}}),
    )
    .await
    .assert_fault(403, "forbidden", Some(DENIED));
    assert_eq!(replica(&app, &secondary).await["replica_state"], "in_sync");
    app.finish().await;
}

#[tokio::test]
async fn m218_periodic_task_restores_in_sync() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    reset_state(&app, &secondary, "out_of_sync").await;
    app.update_replicas_once().await;
    assert_eq!(replica(&app, &secondary).await["replica_state"], "in_sync");
    app.finish().await;
}

#[tokio::test]
async fn m219_reset_replica_state_keeps_status() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    reset_state(&app, &secondary, "error").await;
    assert_eq!(replica(&app, &secondary).await["status"], "available");
    reset_status(&app, &secondary, "error").await;
    reset_state(&app, &secondary, "out_of_sync").await;
    assert_eq!(replica(&app, &secondary).await["status"], "error");
    app.finish().await;
}
