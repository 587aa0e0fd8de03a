//! The scheduler role's housekeeping (`shoal_core::housekeeping`), ticked through the node's
//! own instance: expired quota reservations are rolled back and old finished operations
//! deleted, while unfinished operations and live reservations stay.

use std::time::Duration;

use serde_json::json;
use shoal_core::config::AuthStrategy;
use shoal_store::{OperationState, QuotaRequest};
use shoal_testkit::TestApp;

use crate::replica_fixtures::{available_share, create_type, project_of, usage};

#[tokio::test]
async fn housekeeping_expires_reservations_and_deletes_old_finished_operations() {
    let app = TestApp::builder()
        .auth(AuthStrategy::Noauth)
        .with_dummy_backend("dummy1", "az1", Some("readable"))
        .configure(|config| config.periodic.finished_operation_retention = Duration::ZERO)
        .build()
        .await;
    create_type(&app, "readable", json!({"replication_type": "readable"})).await;
    let project = project_of("admin");
    available_share(&app, "admin").await;
    let store = &app.core().store;
    let finished = store
        .list_operations(Some(OperationState::Done))
        .await
        .unwrap()
        .len();
    assert!(finished > 0, "creating a share ran operations");

    // One reservation already expired, one that is not.
    let now = app.core().now();
    let reserve = |resource: &str| QuotaRequest {
        project_id: project.to_owned(),
        deltas: [(resource.to_owned(), 2)].into(),
        limits: Default::default(),
    };
    store
        .reserve_quota(
            reserve("gigabytes"),
            now - chrono::Duration::seconds(1),
            now,
        )
        .await
        .unwrap();
    store
        .reserve_quota(reserve("snapshots"), now + chrono::Duration::hours(1), now)
        .await
        .unwrap();
    // And an operation that has not run yet.
    let hold = app.hold_workers().await;
    let share = app
        .post("/v2/shares")
        .version("2.56")
        .json(&json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "readable"}}))
        .send()
        .await;
    assert_eq!(share.status, 200, "{}", share.text());
    let unfinished = store.count_unfinished_operations().await.unwrap();
    assert!(unfinished > 0);

    let pass = app.housekeeping_once().await;
    assert_eq!(pass.reservations_expired, 1);
    assert_eq!(pass.operations_deleted as usize, finished);
    // Two 1 GiB shares in use; the expired 2 GiB reservation is gone.
    assert_eq!(usage(&app, project, "gigabytes").await, (2, 0));
    assert_eq!(usage(&app, project, "snapshots").await, (0, 2));
    assert!(
        store
            .list_operations(Some(OperationState::Done))
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.count_unfinished_operations().await.unwrap(),
        unfinished
    );
    // A second pass has nothing left to do; the held share still gets created.
    assert_eq!(app.housekeeping_once().await, Default::default());
    drop(hold);
    app.settle().await;
    app.finish().await;
}
