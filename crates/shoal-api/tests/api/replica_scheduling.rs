//! Replica scheduling and availability zones (checklist group S, 284–290; replication.md §8)
//! and the periodic replica-state update (group T, 291–295; §7). The periodic task is ticked
//! with `TestApp::update_replicas_once`, never waited for.

use serde_json::json;
use shoal_core::config::AuthStrategy;
use shoal_store::ShareInstanceUpdate;

use crate::replica_fixtures::*;

// ---- S. scheduling and AZ ----

#[tokio::test]
async fn s284_availability_zones_lists_az1_and_az2() {
    let app = app().await;
    let resp = app.get("/v2/availability-zones").version(V).send().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    let zones = body["availability_zones"].as_array().unwrap();
    for name in ["az1", "az2"] {
        let zone = zones
            .iter()
            .find(|z| z["name"] == name)
            .unwrap_or_else(|| panic!("{name} missing in {body}"));
        assert_eq!(
            keys(zone),
            sorted(&["id", "name", "created_at", "updated_at"]),
            "{zone}"
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn s285_os_availability_zone_until_2_6() {
    let app = app().await;
    let resp = app
        .get("/v2/os-availability-zone")
        .version("2.6")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.get("/v2/os-availability-zone")
        .version("2.7")
        .send()
        .await
        .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    app.finish().await;
}

#[tokio::test]
async fn s286_replica_without_az_lands_on_a_free_pool_of_the_domain() {
    let app = three_backend_app(AuthStrategy::Noauth).await;
    let share = available_share(&app, "admin").await;
    let first = in_sync_replica(&app, "admin", &share).await;
    let second = in_sync_replica(&app, "admin", &share).await;
    let mut hosts = vec![
        replica(&app, &first).await["host"].clone(),
        replica(&app, &second).await["host"].clone(),
    ];
    hosts.sort_by_key(|h| h.to_string());
    assert_eq!(
        hosts,
        vec![json!(pool_of("dummy2")), json!(pool_of("dummy3"))]
    );
    assert_eq!(replica(&app, &first).await["availability_zone"], "az2");
    app.finish().await;
}

#[tokio::test]
async fn s287_no_free_pool_left_ends_error_error() {
    let app = app().await;
    let (share, _, _) = replicated(&app, "admin").await;
    let id = request_replica(&app, "admin", &share).await;
    app.settle().await;
    let view = replica(&app, &id).await;
    assert_eq!(view["status"], "error", "{view}");
    assert_eq!(view["replica_state"], "error", "{view}");
    app.finish().await;
}

#[tokio::test]
async fn s288_pool_of_an_errored_replica_stays_excluded() {
    // dummy2 fails every replica creation: the first secondary is placed there and errors.
    let app = app_with_knobs(
        AuthStrategy::Noauth,
        json!({"dummy2": {"fail": {"create_replica": 1.0}}}),
    )
    .await;
    let share = available_share(&app, "admin").await;
    let first = request_replica(&app, "admin", &share).await;
    app.settle().await;
    let view = replica(&app, &first).await;
    assert_eq!(view["status"], "error", "{view}");
    assert_eq!(view["replica_state"], "error", "{view}");
    assert_eq!(view["host"], pool_of("dummy2"), "{view}");
    // The next one finds no pool: it is never placed.
    let second = request_replica(&app, "admin", &share).await;
    app.settle().await;
    let view = replica(&app, &second).await;
    assert_eq!(view["status"], "error", "{view}");
    assert_eq!(view["host"], "", "{view}");
    app.finish().await;
}

#[tokio::test]
async fn s289_backend_pinned_type_still_replicates_elsewhere() {
    let app = app().await;
    create_type(
        &app,
        "pinned",
        json!({"replication_type": "readable", "share_backend_name": "dummy1"}),
    )
    .await;
    let share = new_share(&app, "admin", json!({"share_type": "pinned"})).await;
    app.settle().await;
    assert_eq!(share_view(&app, &share).await["host"], pool_of("dummy1"));
    let id = in_sync_replica(&app, "admin", &share).await;
    assert_eq!(replica(&app, &id).await["host"], pool_of("dummy2"));
    app.finish().await;
}

#[tokio::test]
async fn s290_replica_asked_in_az2_shows_az2_throughout() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let resp = post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share, "availability_zone": "az2"}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(resp.json()["share_replica"]["availability_zone"], "az2");
    let id = resp.json()["share_replica"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    let view = replica(&app, &id).await;
    assert_eq!(view["availability_zone"], "az2", "{view}");
    assert_eq!(view["status"], "available", "{view}");
    app.finish().await;
}

// ---- T. periodic update ----

#[tokio::test]
async fn t291_periodic_refreshes_non_transitional_secondaries_only() {
    let app = three_backend_app(AuthStrategy::Noauth).await;
    let share = available_share(&app, "admin").await;
    let steady = in_sync_replica(&app, "admin", &share).await;
    let busy = in_sync_replica(&app, "admin", &share).await;
    for id in [&steady, &busy] {
        reset_state(&app, id, "out_of_sync").await;
    }
    for status in ["creating", "deleting", "error_deleting"] {
        reset_status(&app, &busy, status).await;
        app.update_replicas_once().await;
        let view = replica(&app, &busy).await;
        assert_eq!(view["replica_state"], "out_of_sync", "{status}: {view}");
        assert_eq!(view["status"], status, "{view}");
    }
    assert_eq!(replica(&app, &steady).await["replica_state"], "in_sync");
    reset_status(&app, &busy, "available").await;
    app.update_replicas_once().await;
    assert_eq!(replica(&app, &busy).await["replica_state"], "in_sync");
    app.finish().await;
}

#[tokio::test]
async fn t292_periodic_refreshes_state_of_a_replica_in_error_status() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    reset_status(&app, &secondary, "error").await;
    reset_state(&app, &secondary, "out_of_sync").await;
    app.update_replicas_once().await;
    let view = replica(&app, &secondary).await;
    assert_eq!(view["replica_state"], "in_sync", "{view}");
    assert_eq!(view["status"], "error", "{view}");
    app.finish().await;
}

#[tokio::test]
async fn t293_no_active_replica_turns_secondaries_to_error() {
    let app = app().await;
    let (_, active, secondary) = replicated(&app, "admin").await;
    // Only a direct database edit reaches this state.
    edit_instance(
        &app,
        &active,
        ShareInstanceUpdate {
            replica_state: Some(Some("in_sync".to_owned())),
            ..ShareInstanceUpdate::default()
        },
    )
    .await;
    app.update_replicas_once().await;
    for id in [&active, &secondary] {
        let view = replica(&app, id).await;
        assert_eq!(view["replica_state"], "error", "{view}");
        assert_eq!(view["status"], "available", "{view}");
    }
    app.finish().await;
}

#[tokio::test]
async fn t294_periodic_never_touches_the_active() {
    let app = app().await;
    let (_, active, secondary) = replicated(&app, "admin").await;
    reset_state(&app, &secondary, "out_of_sync").await;
    let before = replica(&app, &active).await;
    app.update_replicas_once().await;
    app.update_replicas_once().await;
    let after = replica(&app, &active).await;
    assert_eq!(after["replica_state"], "active", "{after}");
    assert_eq!(after["status"], "available", "{after}");
    assert_eq!(after["updated_at"], before["updated_at"], "{after}");
    app.finish().await;
}

#[tokio::test]
async fn t295_backend_update_failure_is_error_error() {
    let app = app_with_knobs(
        AuthStrategy::Noauth,
        json!({"dummy2": {"fail": {"update_replica_state": 1.0}}}),
    )
    .await;
    let (_, active, secondary) = replicated(&app, "admin").await;
    app.update_replicas_once().await;
    let view = replica(&app, &secondary).await;
    assert_eq!(view["status"], "error", "{view}");
    assert_eq!(view["replica_state"], "error", "{view}");
    assert_eq!(replica(&app, &active).await["replica_state"], "active");
    app.finish().await;
}
