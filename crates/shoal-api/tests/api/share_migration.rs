//! Share migration actions (`migration_start`, `migration_complete`, `migration_cancel`,
//! `migration_get_progress`): Manila's checks and answers, and the refusal of a migration
//! shoal cannot carry out, on the dummy back ends of the replica reference environment.

use serde_json::{Value, json};
use shoal_testkit::{TestApp, TestResponse};

use crate::replica_fixtures::*;

/// The first version with today's `migration_start` body.
const MV: &str = "2.29";

async fn migration(
    app: &TestApp,
    user: &str,
    version: &str,
    id: &str,
    body: Value,
) -> TestResponse {
    app.post(&format!("/v2/shares/{id}/action"))
        .version(version)
        .experimental("true")
        .token(&app.token_for(user))
        .json(&body)
        .send()
        .await
}

fn start_body(host: &str) -> Value {
    json!({"migration_start": {
        "host": host,
        "preserve_metadata": false,
        "writable": false,
        "nondisruptive": false,
        "preserve_snapshots": false,
        "force_host_assisted_migration": false,
    }})
}

/// The pool a share is on.
async fn host_of(app: &TestApp, share: &str) -> String {
    share_view(app, share).await["host"]
        .as_str()
        .expect("host")
        .to_owned()
}

/// The pool of the other reference back end than the one `host` is on.
fn other_pool(host: &str) -> String {
    if host == pool_of("dummy1") {
        pool_of("dummy2")
    } else {
        pool_of("dummy1")
    }
}

#[tokio::test]
async fn a_replicated_share_is_409_as_manila() {
    let app = app().await;
    let (share, _active, _secondary) = replicated(&app, "admin").await;
    let host = host_of(&app, &share).await;
    let resp = migration(&app, "admin", MV, &share, start_body(&other_pool(&host))).await;
    resp.assert_fault(
        409,
        "conflictingRequest",
        Some(&format!(
            "Share {share} has replicas. Remove the replicas before attempting to migrate the share."
        )),
    );
    assert_eq!(share_view(&app, &share).await["task_state"], Value::Null);
    app.finish().await;
}

#[tokio::test]
async fn a_migration_no_back_end_can_do_is_refused_and_changes_nothing() {
    let app = app().await;
    let share = plain_share(&app, "alice").await;
    let before = share_view(&app, &share).await;
    let host = before["host"].as_str().expect("host").to_owned();
    let resp = migration(&app, "admin", MV, &share, start_body(&other_pool(&host))).await;
    assert_fault_prefix(
        &resp,
        400,
        "badRequest",
        &format!("Share {share} cannot be migrated to {}", other_pool(&host)),
    );
    let after = share_view(&app, &share).await;
    assert_eq!(after["host"], before["host"]);
    assert_eq!(after["status"], "available");
    assert_eq!(after["task_state"], Value::Null);
    app.finish().await;
}

#[tokio::test]
async fn the_own_pool_is_nothing_to_do_and_records_migration_success() {
    let app = app().await;
    let share = plain_share(&app, "alice").await;
    let host = host_of(&app, &share).await;
    let resp = migration(&app, "admin", MV, &share, start_body(&host)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        share_view(&app, &share).await["task_state"],
        "migration_success"
    );

    let progress = migration(
        &app,
        "admin",
        "2.59",
        &share,
        json!({"migration_get_progress": null}),
    )
    .await;
    assert_eq!(progress.status, 200, "{}", progress.text());
    assert_eq!(
        progress.json(),
        json!({"total_progress": 100, "task_state": "migration_success", "details": {}})
    );
    let old = migration(
        &app,
        "admin",
        "2.58",
        &share,
        json!({"migration_get_progress": null}),
    )
    .await;
    assert_eq!(
        old.json(),
        json!({"total_progress": 100, "task_state": "migration_success"})
    );

    for action in ["migration_complete", "migration_cancel"] {
        let resp = migration(&app, "admin", MV, &share, json!({ action: null })).await;
        resp.assert_fault(
            400,
            "badRequest",
            Some(&format!(
                "Invalid share: Migration of share {share} has already completed."
            )),
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn without_a_migration_complete_cancel_and_progress_say_so() {
    let app = app().await;
    let share = plain_share(&app, "alice").await;
    let text = format!(
        "Invalid share: There is no migration being performed for share {share} at this moment."
    );
    for action in [
        "migration_complete",
        "migration_cancel",
        "migration_get_progress",
    ] {
        let resp = migration(&app, "admin", "2.22", &share, json!({ action: null })).await;
        resp.assert_fault(400, "badRequest", Some(&text));
    }
    app.finish().await;
}

#[tokio::test]
async fn bodies_are_checked_as_manila_checks_them() {
    let app = app().await;
    let share = plain_share(&app, "alice").await;
    let host = host_of(&app, &share).await;

    let empty = migration(&app, "admin", MV, &share, json!({"migration_start": {}})).await;
    empty.assert_fault(400, "badRequest", Some("Request is missing body."));

    let missing = migration(
        &app,
        "admin",
        MV,
        &share,
        json!({"migration_start": {"host": host}}),
    )
    .await;
    assert_fault_prefix(
        &missing,
        400,
        "badRequest",
        "Must specify all mandatory parameters",
    );

    let mut not_bool = start_body(&host);
    not_bool["migration_start"]["writable"] = json!("maybe");
    migration(&app, "admin", MV, &share, not_bool)
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("Value 'maybe' for 'writable' is not a boolean."),
        );

    let mut combination = start_body(&host);
    combination["migration_start"]["force_host_assisted_migration"] = json!(true);
    combination["migration_start"]["writable"] = json!(true);
    assert_fault_prefix(
        &migration(&app, "admin", MV, &share, combination).await,
        400,
        "badRequest",
        "Invalid input received: Invalid parameter combination.",
    );

    let mut network = start_body(&host);
    network["migration_start"]["new_share_network_id"] = json!(MISSING);
    migration(&app, "admin", MV, &share, network)
        .await
        .assert_fault(
            400,
            "badRequest",
            Some(&format!("Share network {MISSING} not found.")),
        );

    let mut share_type = start_body(&host);
    share_type["migration_start"]["new_share_type_id"] = json!(MISSING);
    migration(&app, "admin", MV, &share, share_type)
        .await
        .assert_fault(
            400,
            "badRequest",
            Some(&format!("Share type {MISSING} not found.")),
        );

    let unknown = migration(
        &app,
        "admin",
        MV,
        &share,
        start_body("nowhere@nothing#pool1"),
    )
    .await;
    unknown.assert_fault(
        404,
        "itemNotFound",
        Some("Service nowhere@nothing could not be found."),
    );
    assert_eq!(share_view(&app, &share).await["task_state"], Value::Null);
    app.finish().await;
}

#[tokio::test]
async fn versions_policy_and_visibility() {
    let app = keystone_app().await;
    let share = plain_share(&app, "alice").await;
    let host = host_of(&app, &share).await;

    // Experimental only, and today's body from 2.29.
    let plain = app
        .post(&format!("/v2/shares/{share}/action"))
        .version(MV)
        .json(&start_body(&host))
        .send()
        .await;
    plain.assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    migration(&app, "admin", "2.28", &share, start_body(&host))
        .await
        .assert_fault(404, "itemNotFound", Some(NOT_FOUND));

    // Admin-only by policy, checked before the share is looked up.
    migration(&app, "alice", MV, &share, start_body(&host))
        .await
        .assert_fault(403, "forbidden", Some(DENIED));
    migration(
        &app,
        "alice",
        MV,
        &share,
        json!({"migration_get_progress": null}),
    )
    .await
    .assert_fault(403, "forbidden", Some(DENIED));

    migration(&app, "admin", MV, MISSING, start_body(&host))
        .await
        .assert_fault(
            404,
            "itemNotFound",
            Some(&format!("Share {MISSING} not found.")),
        );
    app.finish().await;
}
