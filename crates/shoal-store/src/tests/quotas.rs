//! Quota overrides, direct charges and reservations.

use std::collections::BTreeMap;
use std::sync::Arc;

use uuid::Uuid;

use super::{at, quota};
use crate::testing::ForTest;
use crate::{QuotaUsage, StoreError};

fn limits(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
    pairs.iter().map(|(r, l)| ((*r).to_owned(), *l)).collect()
}

/// (in_use, reserved) of `resource`, (0, 0) when the project never used it.
async fn usage<S: ForTest>(store: &S, project: &str, resource: &str) -> (i64, i64) {
    store
        .get_quota_usages(project)
        .await
        .expect("usages")
        .get(resource)
        .map_or((0, 0), |u| (u.in_use, u.reserved))
}

fn assert_exceeded(err: StoreError, want: (&str, i64, i64, i64, i64)) {
    match err {
        StoreError::QuotaExceeded {
            resource,
            requested,
            in_use,
            reserved,
            limit,
        } => assert_eq!(
            (resource.as_str(), requested, in_use, reserved, limit),
            want
        ),
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
}

pub(crate) async fn quota_overrides_set_get_delete<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    assert!(store.get_quota_overrides("p1").await.unwrap().is_empty());
    store
        .set_quota_overrides("p1", &limits(&[("shares", 5), ("gigabytes", -1)]), at(0))
        .await
        .expect("set");
    store
        .set_quota_overrides("p2", &limits(&[("shares", 1)]), at(0))
        .await
        .unwrap();
    // Merge: one changed, one added, one kept.
    store
        .set_quota_overrides(
            "p1",
            &limits(&[("shares", 7), ("share_replicas", 0)]),
            at(1),
        )
        .await
        .expect("merge");
    assert_eq!(
        store.get_quota_overrides("p1").await.unwrap(),
        limits(&[("gigabytes", -1), ("share_replicas", 0), ("shares", 7)])
    );
    let err = store
        .set_quota_overrides("p1", &limits(&[("shares", -2)]), at(2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Other(_)), "{err:?}");

    // Only the named keys go.
    store
        .delete_quota_override_keys("p1", &["share_replicas".to_owned(), "missing".to_owned()])
        .await
        .expect("delete keys");
    assert_eq!(
        store.get_quota_overrides("p1").await.unwrap(),
        limits(&[("gigabytes", -1), ("shares", 7)])
    );
    store.delete_quota_overrides("p1").await.expect("delete");
    assert!(store.get_quota_overrides("p1").await.unwrap().is_empty());
    store
        .delete_quota_overrides("p1")
        .await
        .expect("delete again");
    assert_eq!(
        store.get_quota_overrides("p2").await.unwrap(),
        limits(&[("shares", 1)])
    );
    db.finish().await;
}

pub(crate) async fn charge_quota_checks_limits_and_clamps<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let lim = [("shares", 3), ("gigabytes", 10)];
    store
        .charge_quota(
            quota("p1", &[("shares", 2), ("gigabytes", 10)], &lim),
            at(0),
        )
        .await
        .expect("exactly at the limit");
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (10, 0));
    let err = store
        .charge_quota(quota("p1", &[("shares", 1), ("gigabytes", 1)], &lim), at(1))
        .await
        .unwrap_err();
    assert_exceeded(err, ("gigabytes", 1, 10, 0, 10));
    assert_eq!(usage(store.as_ref(), "p1", "shares").await, (2, 0));

    // -1 and a missing limit are unlimited; zero deltas are ignored.
    store
        .charge_quota(
            quota(
                "p1",
                &[("gigabytes", 1000), ("snapshots", 50), ("shares", 0)],
                &[("gigabytes", -1)],
            ),
            at(2),
        )
        .await
        .expect("unlimited");
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (1010, 0));
    assert_eq!(usage(store.as_ref(), "p1", "snapshots").await, (50, 0));

    // A limit lowered below usage refuses growth but allows shrinking.
    let err = store
        .charge_quota(
            quota("p1", &[("snapshots", 1)], &[("snapshots", 10)]),
            at(3),
        )
        .await
        .unwrap_err();
    assert_exceeded(err, ("snapshots", 1, 50, 0, 10));
    store
        .charge_quota(
            quota("p1", &[("snapshots", -5)], &[("snapshots", 10)]),
            at(3),
        )
        .await
        .expect("release under a lowered limit");
    assert_eq!(usage(store.as_ref(), "p1", "snapshots").await, (45, 0));

    // Releases clamp at zero, and never create rows.
    store
        .charge_quota(quota("p1", &[("shares", -5)], &[]), at(4))
        .await
        .expect("over-release");
    assert_eq!(usage(store.as_ref(), "p1", "shares").await, (0, 0));
    store
        .charge_quota(quota("p9", &[("shares", -1)], &[]), at(4))
        .await
        .expect("release of nothing");
    assert!(store.get_quota_usages("p9").await.unwrap().is_empty());
    // Projects are independent.
    store
        .charge_quota(quota("p2", &[("shares", 3)], &lim), at(5))
        .await
        .expect("other project");
    assert_eq!(
        store.get_quota_usages("p2").await.unwrap(),
        [(
            "shares".to_owned(),
            QuotaUsage {
                resource: "shares".to_owned(),
                in_use: 3,
                reserved: 0
            }
        )]
        .into()
    );
    db.finish().await;
}

pub(crate) async fn reserve_quota_counts_reserved_and_is_atomic<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let lim = [("shares", 2), ("gigabytes", 10)];
    store
        .charge_quota(quota("p1", &[("gigabytes", 4)], &lim), at(0))
        .await
        .unwrap();
    let ids = store
        .reserve_quota(
            quota(
                "p1",
                &[("shares", 1), ("gigabytes", 5), ("snapshots", 0)],
                &lim,
            ),
            at(100),
            at(1),
        )
        .await
        .expect("reserve");
    assert_eq!(ids.len(), 2, "one id per non-zero delta");
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (4, 5));
    assert_eq!(usage(store.as_ref(), "p1", "shares").await, (0, 1));
    assert!(
        !store
            .get_quota_usages("p1")
            .await
            .unwrap()
            .contains_key("snapshots")
    );

    // Reserved counts against the limit, for reservations and direct charges alike.
    let err = store
        .reserve_quota(quota("p1", &[("gigabytes", 2)], &lim), at(100), at(2))
        .await
        .unwrap_err();
    assert_exceeded(err, ("gigabytes", 2, 4, 5, 10));
    let err = store
        .charge_quota(quota("p1", &[("gigabytes", 2)], &lim), at(2))
        .await
        .unwrap_err();
    assert_exceeded(err, ("gigabytes", 2, 4, 5, 10));

    // A later resource failing undoes the earlier ones (`gigabytes` sorts before `shares`).
    let err = store
        .reserve_quota(
            quota("p1", &[("gigabytes", 1), ("shares", 2)], &lim),
            at(100),
            at(3),
        )
        .await
        .unwrap_err();
    assert_exceeded(err, ("shares", 2, 0, 1, 2));
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (4, 5));
    assert_eq!(usage(store.as_ref(), "p1", "shares").await, (0, 1));

    // A negative delta holds nothing until it is committed.
    let shrink = store
        .reserve_quota(quota("p1", &[("gigabytes", -3)], &lim), at(100), at(4))
        .await
        .expect("negative");
    assert_eq!(shrink.len(), 1);
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (4, 5));
    store.commit_reservations(&shrink, at(5)).await.unwrap();
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (1, 5));
    db.finish().await;
}

pub(crate) async fn commit_reservations_is_idempotent<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let lim = [("shares", 5), ("gigabytes", 50)];
    let first = store
        .reserve_quota(
            quota("p1", &[("shares", 1), ("gigabytes", 10)], &lim),
            at(100),
            at(0),
        )
        .await
        .unwrap();
    let second = store
        .reserve_quota(
            quota("p1", &[("shares", 1), ("gigabytes", 20)], &lim),
            at(100),
            at(0),
        )
        .await
        .unwrap();
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (0, 30));

    store
        .commit_reservations(&first, at(1))
        .await
        .expect("commit");
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (10, 20));
    assert_eq!(usage(store.as_ref(), "p1", "shares").await, (1, 1));
    // Again, with an unknown id and a duplicate: nothing changes.
    let mut again = first.clone();
    again.push(Uuid::new_v4());
    again.push(first[0]);
    store
        .commit_reservations(&again, at(2))
        .await
        .expect("recommit");
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (10, 20));
    assert_eq!(usage(store.as_ref(), "p1", "shares").await, (1, 1));
    // A committed reservation cannot be rolled back or expire any more.
    store.rollback_reservations(&first, at(3)).await.unwrap();
    assert_eq!(store.expire_reservations(at(1000)).await.unwrap(), 2);
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (10, 0));
    assert_eq!(usage(store.as_ref(), "p1", "shares").await, (1, 0));
    // `second` expired: committing it now changes nothing.
    store.commit_reservations(&second, at(1001)).await.unwrap();
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (10, 0));
    store
        .commit_reservations(&[], at(1002))
        .await
        .expect("empty");
    db.finish().await;
}

pub(crate) async fn rollback_reservations_is_idempotent<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    store
        .charge_quota(quota("p1", &[("gigabytes", 3)], &[]), at(0))
        .await
        .unwrap();
    let ids = store
        .reserve_quota(
            quota("p1", &[("gigabytes", 7), ("shares", 1)], &[]),
            at(100),
            at(0),
        )
        .await
        .unwrap();
    store
        .rollback_reservations(&ids, at(1))
        .await
        .expect("rollback");
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (3, 0));
    assert_eq!(usage(store.as_ref(), "p1", "shares").await, (0, 0));
    store
        .rollback_reservations(&ids, at(2))
        .await
        .expect("again");
    store
        .commit_reservations(&ids, at(3))
        .await
        .expect("too late");
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (3, 0));
    assert_eq!(usage(store.as_ref(), "p1", "shares").await, (0, 0));
    db.finish().await;
}

pub(crate) async fn expire_reservations_rolls_back_expired_only<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let soon = store
        .reserve_quota(quota("p1", &[("gigabytes", 4)], &[]), at(10), at(0))
        .await
        .unwrap();
    let other_project = store
        .reserve_quota(
            quota("p2", &[("gigabytes", 6), ("shares", -1)], &[]),
            at(10),
            at(0),
        )
        .await
        .unwrap();
    let late = store
        .reserve_quota(quota("p1", &[("gigabytes", 5)], &[]), at(60), at(0))
        .await
        .unwrap();
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (0, 9));

    assert_eq!(
        store.expire_reservations(at(10)).await.unwrap(),
        0,
        "not before"
    );
    assert_eq!(store.expire_reservations(at(11)).await.unwrap(), 3);
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (0, 5));
    assert_eq!(usage(store.as_ref(), "p2", "gigabytes").await, (0, 0));
    assert_eq!(store.expire_reservations(at(11)).await.unwrap(), 0);
    store.commit_reservations(&soon, at(12)).await.unwrap();
    store
        .commit_reservations(&other_project, at(12))
        .await
        .unwrap();
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (0, 5));
    store.commit_reservations(&late, at(12)).await.unwrap();
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (5, 0));
    db.finish().await;
}

pub(crate) async fn concurrent_reservations_respect_the_limit<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = Arc::clone(db.store());
    store
        .charge_quota(quota("p1", &[("gigabytes", 2)], &[]), at(0))
        .await
        .unwrap();
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .reserve_quota(
                        quota(
                            "p1",
                            &[("gigabytes", 1), ("shares", 1)],
                            &[("gigabytes", 12)],
                        ),
                        at(100),
                        at(1),
                    )
                    .await
            })
        })
        .collect();
    let mut granted = Vec::new();
    for task in tasks {
        match task.await.expect("join") {
            Ok(ids) => granted.push(ids),
            Err(StoreError::QuotaExceeded { resource, .. }) => assert_eq!(resource, "gigabytes"),
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(granted.len(), 10);
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (2, 10));
    assert_eq!(usage(store.as_ref(), "p1", "shares").await, (0, 10));
    // Committing them all concurrently moves exactly what was reserved.
    let tasks: Vec<_> = granted
        .into_iter()
        .map(|ids| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.commit_reservations(&ids, at(2)).await })
        })
        .collect();
    for task in tasks {
        task.await.expect("join").expect("commit");
    }
    assert_eq!(usage(store.as_ref(), "p1", "gigabytes").await, (12, 0));
    assert_eq!(usage(store.as_ref(), "p1", "shares").await, (10, 0));
    db.finish().await;
}
