//! Migrations, health and outage mapping.

use crate::testing::ForTest;
use crate::{ShareTypeFilter, StoreError};

pub(crate) async fn migrate_is_idempotent<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    // `for_test` already migrated once.
    store.migrate().await.expect("second migrate");
    store.migrate().await.expect("third migrate");
    assert!(
        store
            .list_share_types(ShareTypeFilter::default())
            .await
            .unwrap()
            .is_empty()
    );
    db.finish().await;
}

pub(crate) async fn ping_and_backend_name<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    store.ping().await.expect("ping");
    assert!(matches!(store.backend_name(), "sqlite" | "postgres"));
    db.finish().await;
}

pub(crate) async fn closed_store_is_unavailable<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    store.close().await;
    let err = store.ping().await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    let err = store
        .list_share_types(ShareTypeFilter::default())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    db.finish().await;
}
