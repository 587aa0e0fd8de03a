//! Availability zones: get-or-create and the "in service" view.

use std::sync::Arc;

use uuid::Uuid;

use super::at;
use crate::testing::ForTest;
use crate::{ServiceHeartbeat, StoreError};

pub(crate) async fn ensure_availability_zone_is_idempotent<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let first = store
        .ensure_availability_zone("az1", at(0))
        .await
        .expect("create");
    assert_eq!(first.name, "az1");
    assert_eq!(first.created_at, at(0));
    assert_eq!(first.updated_at, None);
    let second = store
        .ensure_availability_zone("az1", at(10))
        .await
        .expect("get");
    assert_eq!(second, first, "the existing row is returned unchanged");

    assert_eq!(store.get_availability_zone("az1").await.unwrap(), first);
    assert_eq!(
        store
            .get_availability_zone(&first.id.to_string())
            .await
            .unwrap(),
        first
    );
    let err = store.get_availability_zone("az9").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .get_availability_zone(&Uuid::new_v4().to_string())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    store.ensure_availability_zone("az0", at(0)).await.unwrap();
    let names: Vec<String> = store
        .list_availability_zones()
        .await
        .unwrap()
        .into_iter()
        .map(|z| z.name)
        .collect();
    assert_eq!(names, ["az0", "az1"]);
    db.finish().await;
}

pub(crate) async fn ensure_availability_zone_concurrently_creates_one_row<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store: Arc<S> = Arc::clone(db.store());
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.ensure_availability_zone("zone", at(i)).await })
        })
        .collect();
    let mut ids = Vec::new();
    for task in tasks {
        ids.push(task.await.expect("join").expect("ensure").id);
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(store.list_availability_zones().await.unwrap().len(), 1);
    db.finish().await;
}

fn beat(host: &str, zone: &str, secs: i64) -> ServiceHeartbeat {
    ServiceHeartbeat {
        host: host.to_owned(),
        binary: "manila-share".to_owned(),
        topic: "manila-share".to_owned(),
        availability_zone: zone.to_owned(),
        now: at(secs),
        replication_address: None,
    }
}

pub(crate) async fn zones_in_service_exclude_disabled_only_zones<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    store
        .record_service_heartbeat(beat("h1@b", "az1", 0))
        .await
        .unwrap();
    store
        .record_service_heartbeat(beat("h2@b", "az2", 0))
        .await
        .unwrap();
    store
        .record_service_heartbeat(beat("h3@b", "az2", 0))
        .await
        .unwrap();
    store.ensure_availability_zone("az3", at(0)).await.unwrap(); // no services at all

    let in_service = |store: &Arc<S>| {
        let store = Arc::clone(store);
        async move {
            store
                .list_availability_zones_in_service()
                .await
                .expect("list")
                .into_iter()
                .map(|z| z.name)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(in_service(store).await, ["az1", "az2"]);
    store
        .set_service_disabled("h2@b", "manila-share", true, None)
        .await
        .unwrap();
    assert_eq!(
        in_service(store).await,
        ["az1", "az2"],
        "h3 still serves az2"
    );
    store
        .set_service_disabled("h3@b", "manila-share", true, Some("maint"))
        .await
        .unwrap();
    assert_eq!(in_service(store).await, ["az1"]);
    store
        .set_service_disabled("h2@b", "manila-share", false, None)
        .await
        .unwrap();
    assert_eq!(in_service(store).await, ["az1", "az2"]);
    db.finish().await;
}
