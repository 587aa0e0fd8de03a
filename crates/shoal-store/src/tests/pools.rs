//! Pools: upsert, list, delete.

use serde_json::json;

use super::at;
use crate::testing::ForTest;
use crate::{PoolRow, StoreError};

fn pool(name: &str, free_gb: u64, secs: i64) -> PoolRow {
    let (host, pool) = name.split_once('#').expect("host@backend#pool");
    let backend = host.split_once('@').expect("host@backend").1;
    PoolRow {
        name: name.to_owned(),
        host: host.to_owned(),
        backend: backend.to_owned(),
        pool: pool.to_owned(),
        availability_zone: "az1".to_owned(),
        capabilities: json!({
            "total_capacity_gb": 100,
            "free_capacity_gb": free_gb,
            "allocated_capacity_gb": 100 - free_gb,
            "reserved_percentage": 5,
            "replication_type": "readable",
            "replication_domain": "dom1",
            "driver_handles_share_servers": false,
            "thin_provisioning": [true, false],
            "extra": {"nested": null, "ratio": 1.5},
        }),
        updated_at: at(secs),
    }
}

pub(crate) async fn upsert_list_delete_pools<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let b = pool("host2@local#p1", 50, 0);
    let a = pool("host1@local#p1", 80, 0);
    store.upsert_pool(&b).await.expect("insert b");
    store.upsert_pool(&a).await.expect("insert a");
    assert_eq!(
        store.list_pools().await.unwrap(),
        vec![a.clone(), b.clone()]
    );

    let mut a2 = pool("host1@local#p1", 20, 60);
    a2.availability_zone = "az2".to_owned();
    store.upsert_pool(&a2).await.expect("update a");
    assert_eq!(store.list_pools().await.unwrap(), vec![a2, b.clone()]);

    store.delete_pool("host1@local#p1").await.expect("delete");
    assert_eq!(store.list_pools().await.unwrap(), vec![b]);
    let err = store.delete_pool("host1@local#p1").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}
