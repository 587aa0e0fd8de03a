//! Services: heartbeats and enable/disable.

use super::at;
use crate::testing::ForTest;
use crate::{ServiceFilter, ServiceHeartbeat, StoreError};

fn beat(host: &str, binary: &str, zone: &str, secs: i64) -> ServiceHeartbeat {
    ServiceHeartbeat {
        host: host.to_owned(),
        binary: binary.to_owned(),
        topic: binary.to_owned(),
        availability_zone: zone.to_owned(),
        now: at(secs),
        replication_address: None,
    }
}

pub(crate) async fn heartbeat_creates_then_increments<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let first = store
        .record_service_heartbeat(beat("h1@b", "manila-share", "az1", 0))
        .await
        .expect("first beat");
    assert_eq!(first.report_count, 1);
    assert_eq!(first.created_at, at(0));
    assert_eq!(first.updated_at, at(0));
    assert_eq!(first.availability_zone, "az1");
    assert!(!first.disabled);
    let zone = store
        .get_availability_zone("az1")
        .await
        .expect("zone created");
    assert_eq!(first.availability_zone_id, zone.id);

    let second = store
        .record_service_heartbeat(beat("h1@b", "manila-share", "az1", 30))
        .await
        .expect("second beat");
    assert_eq!(second.id, first.id);
    assert_eq!(second.report_count, 2);
    assert_eq!(second.created_at, at(0));
    assert_eq!(second.updated_at, at(30));

    // A service that moved zones follows its latest report.
    let moved = store
        .record_service_heartbeat(beat("h1@b", "manila-share", "az2", 60))
        .await
        .expect("third beat");
    assert_eq!(moved.report_count, 3);
    assert_eq!(moved.availability_zone, "az2");
    assert_eq!(moved.replication_address, None);
    // The replication address follows the latest report too (a node that moved, or that
    // stopped serving its endpoint).
    let mut addressed = beat("h1@b", "manila-share", "az2", 70);
    addressed.replication_address = Some("10.0.0.2:8787".to_owned());
    let addressed = store.record_service_heartbeat(addressed).await.unwrap();
    assert_eq!(
        addressed.replication_address.as_deref(),
        Some("10.0.0.2:8787")
    );
    let moved = store
        .record_service_heartbeat(beat("h1@b", "manila-share", "az2", 80))
        .await
        .unwrap();
    assert_eq!(moved.replication_address, None);
    let listed = store.list_services(ServiceFilter::default()).await.unwrap();
    assert_eq!(listed, vec![moved]);
    db.finish().await;
}

pub(crate) async fn list_services_filters<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    store
        .record_service_heartbeat(beat("h1@b", "manila-share", "az1", 0))
        .await
        .unwrap();
    store
        .record_service_heartbeat(beat("h2@b", "manila-share", "az2", 0))
        .await
        .unwrap();
    store
        .record_service_heartbeat(beat("h1", "manila-scheduler", "nova", 0))
        .await
        .unwrap();

    let list = |host: Option<&str>, binary: Option<&str>| {
        let filter = ServiceFilter {
            host: host.map(str::to_owned),
            binary: binary.map(str::to_owned),
        };
        async move {
            store
                .list_services(filter)
                .await
                .expect("list")
                .into_iter()
                .map(|s| format!("{}/{}", s.host, s.binary))
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(None, None).await,
        [
            "h1@b/manila-share",
            "h2@b/manila-share",
            "h1/manila-scheduler"
        ]
    );
    assert_eq!(list(Some("h2@b"), None).await, ["h2@b/manila-share"]);
    assert_eq!(
        list(None, Some("manila-scheduler")).await,
        ["h1/manila-scheduler"]
    );
    assert_eq!(
        list(Some("h1@b"), Some("manila-share")).await,
        ["h1@b/manila-share"]
    );
    assert!(
        list(Some("h1@b"), Some("manila-scheduler"))
            .await
            .is_empty()
    );
    db.finish().await;
}

pub(crate) async fn set_service_disabled<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let created = store
        .record_service_heartbeat(beat("h1@b", "manila-share", "az1", 0))
        .await
        .unwrap();

    let disabled = store
        .set_service_disabled("h1@b", "manila-share", true, Some("maintenance"))
        .await
        .expect("disable");
    assert!(disabled.disabled);
    assert_eq!(disabled.disabled_reason.as_deref(), Some("maintenance"));
    assert_eq!(disabled.updated_at, created.updated_at, "not a heartbeat");
    assert_eq!(disabled.availability_zone, "az1");

    // Heartbeats do not re-enable a service.
    let beat2 = store
        .record_service_heartbeat(beat("h1@b", "manila-share", "az1", 10))
        .await
        .unwrap();
    assert!(beat2.disabled);

    let enabled = store
        .set_service_disabled("h1@b", "manila-share", false, None)
        .await
        .expect("enable");
    assert!(!enabled.disabled);
    assert_eq!(enabled.disabled_reason, None);

    let err = store
        .set_service_disabled("h9@b", "manila-share", true, None)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}
