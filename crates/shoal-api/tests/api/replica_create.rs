//! Replica create, `POST /v2/share-replicas`: checklist group F (79–130), replication.md §5.1.
//!
//! Not testable in shoal, nothing observable: F.94 (shares carry no `encryption_key_ref`),
//! F.96 (no share groups). F.124 (snapshot instances for a new replica) is tested in
//! `snapshots_replicated.rs`. F.106, F.107, F.109 and F.110 need share networks; their honest
//! answer (the unknown network) is tested.

use serde_json::json;
use shoal_core::config::AuthStrategy;
use shoal_store::ShareUpdate;
use shoal_testkit::PROJECT_A;
use uuid::Uuid;

use crate::replica_fixtures::*;

#[tokio::test]
async fn f079_create_replica_of_readable_share_is_202_creating() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let resp = post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let view = &resp.json()["share_replica"];
    assert_eq!(view["status"], "creating", "{view}");
    assert_eq!(view["share_id"], share.as_str());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn f080_create_response_has_null_state_empty_host_null_updated_at() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let resp = post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let view = &resp.json()["share_replica"];
    assert!(view["replica_state"].is_null(), "{view}");
    assert_eq!(view["host"], "", "{view}");
    assert!(view["updated_at"].is_null(), "{view}");
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn f081_get_right_after_create_is_out_of_sync() {
    // The back end takes its time creating, so the replica is still in flight when read.
    let app = app_with_knobs(
        AuthStrategy::Noauth,
        json!({"dummy2": {"delays": {"create_replica": "3s"}}}),
    )
    .await;
    let share = available_share(&app, "admin").await;
    let id = request_replica(&app, "admin", &share).await;
    let view = replica(&app, &id).await;
    assert_eq!(view["replica_state"], "out_of_sync", "{view}");
    assert_eq!(view["status"], "creating", "{view}");
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn f082_backend_finishes_available_in_sync() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let id = request_replica(&app, "admin", &share).await;
    app.settle().await;
    let view = replica(&app, &id).await;
    assert_eq!(view["status"], "available", "{view}");
    assert_eq!(view["replica_state"], "in_sync", "{view}");
    app.finish().await;
}

#[tokio::test]
async fn f083_admin_readable_replica_casts_rules_to_readonly_at_2_30() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let resp = post_replica(
        &app,
        "admin",
        "2.30",
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(resp.json()["share_replica"]["cast_rules_to_readonly"], true);
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn f084_admin_dr_replica_does_not_cast_rules_to_readonly() {
    let app = dr_app().await;
    let share = available_share(&app, "admin").await;
    assert_eq!(share_view_type(&app, &share).await, "dr");
    let resp = post_replica(
        &app,
        "admin",
        "2.30",
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(
        resp.json()["share_replica"]["cast_rules_to_readonly"],
        false
    );
    app.settle().await;
    app.finish().await;
}

async fn share_view_type(app: &shoal_testkit::TestApp, id: &str) -> String {
    share_view(app, id).await["replication_type"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn f085_member_create_response_lacks_admin_fields() {
    let app = keystone_app().await;
    let share = available_share(&app, "alice").await;
    let resp = post_replica(
        &app,
        "alice",
        "2.99",
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let view = &resp.json()["share_replica"];
    for key in ["host", "share_server_id", "cast_rules_to_readonly"] {
        assert!(view.get(key).is_none(), "{key} in {view}");
    }
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn f086_empty_body_is_422() {
    let app = app().await;
    post_replica(&app, "admin", V, json!({}))
        .await
        .assert_fault(
            422,
            "computeFault",
            Some("Body does not contain 'share_replica' information."),
        );
    app.finish().await;
}

#[tokio::test]
async fn f087_share_replica_not_an_object_is_422() {
    let app = app().await;
    post_replica(&app, "admin", V, json!({"share_replica": "x"}))
        .await
        .assert_fault(
            422,
            "computeFault",
            Some("Body does not contain 'share_replica' information."),
        );
    app.finish().await;
}

#[tokio::test]
async fn f088_no_body_is_400() {
    let app = app().await;
    let resp = app
        .post("/v2/share-replicas")
        .version(V)
        .body(None, Vec::new())
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some("The server could not comply with the request since it is either malformed or otherwise incorrect."));
    app.finish().await;
}

#[tokio::test]
async fn f089_missing_or_empty_share_id_is_400() {
    let app = app().await;
    for body in [
        json!({"share_replica": {}}),
        json!({"share_replica": {"share_id": ""}}),
    ] {
        post_replica(&app, "admin", V, body).await.assert_fault(
            400,
            "badRequest",
            Some("Must provide Share ID to add replica."),
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn f090_unknown_share_is_404() {
    let app = app().await;
    post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": MISSING}}),
    )
    .await
    .assert_fault(
        404,
        "itemNotFound",
        Some(&format!("No share exists with ID {MISSING}.")),
    );
    app.finish().await;
}

#[tokio::test]
async fn f091_other_projects_private_share_is_404() {
    let app = keystone_app().await;
    let share = available_share(&app, "alice").await;
    post_replica(
        &app,
        "bob",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await
    .assert_fault(
        404,
        "itemNotFound",
        Some(&format!("No share exists with ID {share}.")),
    );
    assert_eq!(replicas_of(&app, &share).await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn f092_other_projects_public_share_is_403() {
    let app = keystone_app().await;
    let share = available_share(&app, "alice").await;
    let resp = app
        .put(&format!("/v2/shares/{share}"))
        .version(V)
        .json(&json!({"share": {"is_public": true}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "make public: {}", resp.text());
    post_replica(
        &app,
        "bob",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await
    .assert_fault(
        403,
        "forbidden",
        Some("Policy doesn't allow share:get to be performed."),
    );
    assert_eq!(replicas_of(&app, &share).await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn f095_share_without_replication_type_is_400() {
    let app = app().await;
    let share = plain_share(&app, "admin").await;
    post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some(&format!("Replication not supported for share {share}.")),
    );
    app.finish().await;
}

#[tokio::test]
async fn f097_share_reset_to_error_has_no_available_active_replica() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let resp = app
        .post(&format!("/v2/shares/{share}/action"))
        .version(V)
        .json(&json!({"reset_status": {"status": "error"}}))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    post_replica(&app, "admin", V, json!({"share_replica": {"share_id": share}}))
        .await
        .assert_fault(
            400,
            "badRequest",
            Some(&format!(
                "Unable to perform a replication action: Share {share} does not have any active replica in available state."
            )),
        );
    app.finish().await;
}

#[tokio::test]
async fn f098_creating_share_is_400() {
    let app = app_with_knobs(
        AuthStrategy::Noauth,
        json!({"dummy1": {"delays": {"create_share": "3s"}}}),
    )
    .await;
    let share = new_share(&app, "admin", json!({})).await;
    post_replica(&app, "admin", V, json!({"share_replica": {"share_id": share}}))
        .await
        .assert_fault(
            400,
            "badRequest",
            Some(&format!(
                "Unable to perform a replication action: Share {share} does not have any active replica in available state."
            )),
        );
    app.settle().await;
    assert_eq!(replicas_of(&app, &share).await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn f099_share_busy_with_a_task_is_400() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    // Shoal runs no migrations; the task state is set in the database as one would.
    app.core()
        .store
        .update_share(
            Uuid::parse_str(&share).unwrap(),
            ShareUpdate {
                task_state: Some(Some("migration_in_progress".to_owned())),
                ..ShareUpdate::default()
            },
            app.core().now(),
        )
        .await
        .unwrap();
    let resp = post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    assert_fault_prefix(
        &resp,
        400,
        "badRequest",
        "Share is busy with an active task: ",
    );
    assert_eq!(replicas_of(&app, &share).await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn f100_unknown_availability_zone_is_400() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share, "availability_zone": "nowhere"}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Availability zone nowhere could not be found."),
    );
    app.finish().await;
}

#[tokio::test]
async fn f101_availability_zone_by_uuid_shows_the_name() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let zones = app
        .get("/v2/availability-zones")
        .version(V)
        .send()
        .await
        .json();
    let az2 = zones["availability_zones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|z| z["name"] == "az2")
        .expect("az2 listed")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share, "availability_zone": az2}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(resp.json()["share_replica"]["availability_zone"], "az2");
    let id = resp.json()["share_replica"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    assert_eq!(replica(&app, &id).await["availability_zone"], "az2");
    app.finish().await;
}

#[tokio::test]
async fn f102_type_availability_zones_exclude_requested_az() {
    let app = app().await;
    let type_id = create_type(
        &app,
        "az1only",
        json!({"replication_type": "readable", "availability_zones": "az1"}),
    )
    .await;
    let share = new_share(&app, "admin", json!({"share_type": "az1only"})).await;
    app.settle().await;
    post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share, "availability_zone": "az2"}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some(&format!(
            "Share replica cannot be created since the share type az1only(ID: {type_id}) is not supported within the availability zone chosen az2."
        )),
    );
    app.finish().await;
}

#[tokio::test]
async fn f103_share_network_id_below_2_72_is_400() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    post_replica(
        &app,
        "admin",
        "2.71",
        json!({"share_replica": {"share_id": share, "share_network_id": MISSING}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("'share_network_id' option is not supported by this microversion. Use 2.72 or greater microversion to be able to use 'share_network_id'."),
    );
    app.finish().await;
}

#[tokio::test]
async fn f104_null_share_network_id_below_2_72_is_ignored() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let resp = post_replica(
        &app,
        "admin",
        "2.71",
        json!({"share_replica": {"share_id": share, "share_network_id": null}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn f105_any_share_network_at_2_72_does_not_exist() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let network = Uuid::new_v4().to_string();
    post_replica(
        &app,
        "admin",
        "2.72",
        json!({"share_replica": {"share_id": share, "share_network_id": network}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some(&format!("No share network exists with ID {network}.")),
    );
    app.finish().await;
}

/// Shoal has no share networks, so the network checks that follow the lookup (F.106 inactive
/// network, F.107 other authentication domain, F.109 no subnet in the AZ, F.110 unknown AZ
/// with a network) are never reached: the lookup answers first, as Manila's check #8 does.
#[tokio::test]
async fn f106_f107_f109_f110_network_checks_stop_at_the_unknown_network() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let network = Uuid::new_v4().to_string();
    for az in [json!("az2"), json!("nowhere"), json!(null)] {
        post_replica(
            &app,
            "admin",
            "2.99",
            json!({"share_replica": {"share_id": share, "share_network_id": network,
                "availability_zone": az}}),
        )
        .await
        .assert_fault(
            400,
            "badRequest",
            Some(&format!("No share network exists with ID {network}.")),
        );
    }
    assert_eq!(replicas_of(&app, &share).await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn f108_replica_share_network_equals_the_parents() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let parent = share_network_of(&app, &share).await;
    let resp = post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let view = resp.json()["share_replica"].clone();
    assert!(view.get("share_network_id").is_some(), "{view}");
    assert_eq!(view["share_network_id"], parent);
    app.settle().await;
    app.finish().await;
}

async fn share_network_of(app: &shoal_testkit::TestApp, share: &str) -> serde_json::Value {
    share_view(app, share).await["share_network_id"].clone()
}

#[tokio::test]
async fn f111_scheduler_hints_below_2_67_are_ignored() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let resp = post_replica(
        &app,
        "admin",
        "2.66",
        json!({"share_replica": {"share_id": share, "scheduler_hints": {"only_host": "h@b#p"}}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let id = resp.json()["share_replica"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    // Honoured, the hint would have left no pool at all.
    let view = replica(&app, &id).await;
    assert_eq!(view["status"], "available", "{view}");
    assert_eq!(view["host"], pool_of("dummy2"));
    app.finish().await;
}

#[tokio::test]
async fn f112_scheduler_hints_with_other_keys_are_400() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    post_replica(
        &app,
        "admin",
        "2.67",
        json!({"share_replica": {"share_id": share, "scheduler_hints": {"foo": "x"}}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Invalid input received: Arg 'scheduler_hints' supports only 'only_host' key."),
    );
    app.finish().await;
}

#[tokio::test]
async fn f113_scheduler_hints_with_only_host_and_more_are_400() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    post_replica(
        &app,
        "admin",
        "2.67",
        json!({"share_replica": {"share_id": share,
            "scheduler_hints": {"only_host": "h", "foo": "x"}}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Invalid input received: Arg 'scheduler_hints' supports only 'only_host' key."),
    );
    assert_eq!(replicas_of(&app, &share).await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn f114_admin_only_host_places_the_replica_there() {
    // Two free pools (dummy2, dummy3): only the hint decides.
    let app = three_backend_app(AuthStrategy::Noauth).await;
    let share = available_share(&app, "admin").await;
    for target in ["dummy3", "dummy2"] {
        let resp = post_replica(
            &app,
            "admin",
            "2.67",
            json!({"share_replica": {"share_id": share,
                "scheduler_hints": {"only_host": pool_of(target)}}}),
        )
        .await;
        assert_eq!(resp.status, 202, "{}", resp.text());
        let id = resp.json()["share_replica"]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        app.settle().await;
        let view = replica(&app, &id).await;
        assert_eq!(view["host"], pool_of(target), "{view}");
        assert_eq!(view["status"], "available", "{view}");
    }
    app.finish().await;
}

#[tokio::test]
async fn f115_member_only_host_is_ignored() {
    let app = keystone_app().await;
    let share = available_share(&app, "alice").await;
    // The active's own pool: honoured, the hint would leave no candidate.
    let resp = post_replica(
        &app,
        "alice",
        "2.67",
        json!({"share_replica": {"share_id": share,
            "scheduler_hints": {"only_host": pool_of("dummy1")}}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let id = resp.json()["share_replica"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    let view = replica(&app, &id).await;
    assert_eq!(view["status"], "available", "{view}");
    assert_eq!(view["host"], pool_of("dummy2"), "{view}");
    app.finish().await;
}

#[tokio::test]
async fn f116_metadata_below_2_95_is_ignored() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let resp = post_replica(
        &app,
        "admin",
        "2.94",
        json!({"share_replica": {"share_id": share, "metadata": {"a": "b"}}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let view = resp.json()["share_replica"].clone();
    assert!(view.get("metadata").is_none(), "{view}");
    let id = view["id"].as_str().unwrap().to_owned();
    app.settle().await;
    assert_eq!(replica(&app, &id).await["metadata"], json!({}));
    app.finish().await;
}

#[tokio::test]
async fn f117_metadata_at_2_95_is_stored_and_returned() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let resp = post_replica(
        &app,
        "admin",
        V95,
        json!({"share_replica": {"share_id": share, "metadata": {"a": "b"}}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(resp.json()["share_replica"]["metadata"], json!({"a": "b"}));
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn f118_blank_metadata_value_is_400() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    post_replica(
        &app,
        "admin",
        V95,
        json!({"share_replica": {"share_id": share, "metadata": {"a": ""}}}),
    )
    .await
    .assert_fault(400, "badRequest", Some("Metadata property value is blank."));
    app.finish().await;
}

#[tokio::test]
async fn f119_metadata_key_of_256_chars_is_400() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let key = "k".repeat(256);
    post_replica(
        &app,
        "admin",
        V95,
        json!({"share_replica": {"share_id": share, "metadata": {key: "v"}}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Metadata property key is greater than 255 characters."),
    );
    app.finish().await;
}

#[tokio::test]
async fn f120_metadata_value_of_1024_chars_is_400() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let value = "v".repeat(1024);
    post_replica(
        &app,
        "admin",
        V95,
        json!({"share_replica": {"share_id": share, "metadata": {"k": value}}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Metadata property value is greater than 1023 characters."),
    );
    // 1023 characters are fine.
    let resp = post_replica(
        &app,
        "admin",
        V95,
        json!({"share_replica": {"share_id": share, "metadata": {"k": "v".repeat(1023)}}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn f121_share_replicas_quota_exhausted_is_413() {
    let app = keystone_app().await;
    let share = available_share(&app, "alice").await;
    set_quota(&app, PROJECT_A, "share_replicas", 1).await;
    let resp = post_replica(
        &app,
        "alice",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    resp.assert_fault(
        413,
        "overLimit",
        Some("ShareReplicasLimitExceeded: Maximum number of allowed share-replicas is exceeded."),
    );
    assert_eq!(resp.json()["overLimit"]["retryAfter"], "0");
    assert_eq!(replicas_of(&app, &share).await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn f122_replica_gigabytes_quota_exceeded_is_413() {
    let app = keystone_app().await;
    let share = available_share_sized(&app, "alice", 2).await;
    set_quota(&app, PROJECT_A, "replica_gigabytes", 3).await;
    post_replica(&app, "alice", V, json!({"share_replica": {"share_id": share}}))
        .await
        .assert_fault(
            413,
            "overLimit",
            Some("ShareReplicaSizeExceedsAvailableQuota: Requested share replica exceeds allowed project/user or share type gigabytes quota."),
        );
    assert_eq!(replicas_of(&app, &share).await.len(), 1);
    app.finish().await;
}

#[tokio::test]
async fn f123_failed_checks_leave_no_replica_and_no_quota_change() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let project = project_of("admin");
    let before = (
        usage(&app, project, "share_replicas").await,
        usage(&app, project, "replica_gigabytes").await,
    );
    let failing = [
        (
            V,
            json!({"share_replica": {"share_id": share, "availability_zone": "nowhere"}}),
        ),
        (
            "2.67",
            json!({"share_replica": {"share_id": share, "scheduler_hints": {"x": "y"}}}),
        ),
        (
            "2.71",
            json!({"share_replica": {"share_id": share, "share_network_id": MISSING}}),
        ),
        (
            "2.72",
            json!({"share_replica": {"share_id": share, "share_network_id": MISSING}}),
        ),
        (
            V95,
            json!({"share_replica": {"share_id": share, "metadata": {"a": ""}}}),
        ),
    ];
    for (version, body) in failing {
        let resp = post_replica(&app, "admin", version, body.clone()).await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.text());
    }
    app.settle().await;
    assert_eq!(replicas_of(&app, &share).await.len(), 1);
    let after = (
        usage(&app, project, "share_replicas").await,
        usage(&app, project, "replica_gigabytes").await,
    );
    assert_eq!(before, after);
    assert_eq!(after.0, (1, 0));
    app.finish().await;
}

#[tokio::test]
async fn f125_reader_create_is_403() {
    let app = keystone_app().await;
    let share = available_share(&app, "alice").await;
    post_replica(
        &app,
        "rita",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await
    .assert_fault(403, "forbidden", Some(DENIED));
    app.finish().await;
}

#[tokio::test]
async fn f126_policy_is_checked_before_the_body() {
    let app = keystone_app().await;
    post_replica(&app, "rita", V, json!({}))
        .await
        .assert_fault(403, "forbidden", Some(DENIED));
    post_replica(&app, "nobody", V, json!({"share_replica": "x"}))
        .await
        .assert_fault(403, "forbidden", Some(DENIED));
    app.finish().await;
}

#[tokio::test]
async fn f127_second_replica_in_two_pool_setup_ends_error_error() {
    let app = app().await;
    let (share, _, _) = replicated(&app, "admin").await;
    let resp = post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let id = resp.json()["share_replica"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    let view = replica(&app, &id).await;
    assert_eq!(view["status"], "error", "{view}");
    assert_eq!(view["replica_state"], "error", "{view}");
    app.finish().await;
}

#[tokio::test]
async fn f128_replica_in_az_of_the_only_used_pool_ends_error_error() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let resp = post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share, "availability_zone": "az1"}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let id = resp.json()["share_replica"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    let view = replica(&app, &id).await;
    assert_eq!(view["status"], "error", "{view}");
    assert_eq!(view["replica_state"], "error", "{view}");
    app.finish().await;
}

#[tokio::test]
async fn f129_replica_without_az_goes_to_the_other_backend_in_az2() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let resp = post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert!(resp.json()["share_replica"]["availability_zone"].is_null());
    let id = resp.json()["share_replica"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    let view = replica(&app, &id).await;
    assert_eq!(view["availability_zone"], "az2", "{view}");
    assert_eq!(view["host"], pool_of("dummy2"), "{view}");
    app.finish().await;
}

#[tokio::test]
async fn f130_scheduling_failure_leaves_a_share_replica_message() {
    let app = app().await;
    let (share, _, _) = replicated(&app, "admin").await;
    let id = unplaced_replica(&app, "admin", &share).await;
    let resp = app.get("/v2/messages").version("2.37").send().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    let message = body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["resource_type"] == "SHARE_REPLICA" && m["resource_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no SHARE_REPLICA message for {id}: {body}"));
    // Allocate host, eliminated by the replication filter (the only free pool is taken).
    assert_eq!(message["action_id"], "001", "{message}");
    assert_eq!(message["detail_id"], "014", "{message}");
    app.finish().await;
}

#[tokio::test]
async fn f093_replica_of_a_soft_deleted_share_is_403() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let resp = app
        .post(&format!("/v2/shares/{share}/action"))
        .version("2.69")
        .json(&json!({"soft_delete": null}))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    post_replica(
        &app,
        "admin",
        V,
        json!({"share_replica": {"share_id": share}}),
    )
    .await
    .assert_fault(
        403,
        "forbidden",
        Some(&format!(
            "Replica cannot be created for share '{share}' since it has been soft deleted."
        )),
    );
    app.finish().await;
}
