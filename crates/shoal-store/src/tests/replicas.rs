//! Replicas: multi-instance compare-and-set, replica metadata, the per-share replica lock and
//! the sync history.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use uuid::Uuid;

use super::{at, new_instance, new_share, op_for, quota, specs_of};
use crate::testing::ForTest;
use crate::{
    ReplicationRecord, ShareInstanceCas, ShareInstanceRow, ShareInstanceUpdate, Store, StoreError,
};

/// Creates a share whose first instance is the `active` replica and a second, `in_sync`
/// replica created a second later; both `available`. Returns (share id, active, secondary).
async fn replicated_share<S: Store + ?Sized>(
    store: &S,
    secs: i64,
) -> (Uuid, ShareInstanceRow, ShareInstanceRow) {
    let mut new = new_share("p1", 1, secs);
    new.share.replication_type = Some("readable".to_owned());
    new.instance.status = "available".to_owned();
    new.instance.replica_state = Some("active".to_owned());
    let (share, active) = store.create_share(new).await.expect("share");
    let mut replica = new_instance();
    replica.status = "available".to_owned();
    replica.replica_state = Some("in_sync".to_owned());
    replica.cast_rules_to_readonly = true;
    let secondary = store
        .create_share_instance(
            share.id,
            replica,
            quota("p1", &[], &[]),
            vec![],
            at(secs + 1),
        )
        .await
        .expect("replica");
    (share.id, active, secondary)
}

/// The updates of a promotion of `new_active` over `old_active`.
fn promotion(new_active: Uuid, old_active: Uuid) -> Vec<ShareInstanceCas> {
    vec![
        ShareInstanceCas {
            id: new_active,
            expected_statuses: vec!["available".to_owned()],
            expected_replica_state: Some(Some("in_sync".to_owned())),
            update: ShareInstanceUpdate {
                replica_state: Some(Some("active".to_owned())),
                cast_rules_to_readonly: Some(false),
                ..ShareInstanceUpdate::default()
            },
        },
        ShareInstanceCas {
            id: old_active,
            expected_statuses: vec!["available".to_owned()],
            expected_replica_state: Some(Some("active".to_owned())),
            update: ShareInstanceUpdate {
                replica_state: Some(Some("in_sync".to_owned())),
                cast_rules_to_readonly: Some(true),
                ..ShareInstanceUpdate::default()
            },
        },
    ]
}

fn record(instance: Uuid, secs: i64, outcome: &str) -> ReplicationRecord {
    ReplicationRecord {
        id: Uuid::new_v4(),
        share_instance_id: instance,
        source_instance_id: Some(Uuid::new_v4()),
        trigger: "periodic".to_owned(),
        started_at: at(secs),
        finished_at: at(secs + 1),
        source_point: Some(at(secs)),
        version: secs,
        files_total: 10,
        bytes_total: 4096,
        files_transferred: 3,
        bytes_transferred: 1024,
        files_deleted: 1,
        outcome: outcome.to_owned(),
        detail: None,
        wire_bytes: secs * 3,
    }
}

pub(crate) async fn update_share_instances_if_swaps_roles<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share_id, active, secondary) = replicated_share(&**store, 0).await;

    let rows = store
        .update_share_instances_if(
            promotion(secondary.id, active.id),
            vec![op_for("promote_replica", secondary.id, Some("h@b"), 1)],
            at(1),
        )
        .await
        .expect("promotion");
    // Rows come back in the order given, whatever order they were applied in.
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0].id, secondary.id);
    assert_eq!(rows[0].replica_state.as_deref(), Some("active"));
    assert!(!rows[0].cast_rules_to_readonly);
    assert_eq!(rows[0].updated_at, Some(at(1)));
    assert_eq!(rows[1].id, active.id);
    assert_eq!(rows[1].replica_state.as_deref(), Some("in_sync"));
    assert!(rows[1].cast_rules_to_readonly);
    assert_eq!(rows[1].updated_at, Some(at(1)));
    let listed = store.list_share_instances(share_id).await.unwrap();
    assert_eq!(listed, [rows[1].clone(), rows[0].clone()]);
    let ops = store.list_operations(None).await.unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].kind, "promote_replica");

    // An empty list of updates still enqueues (nothing to check).
    let none = store
        .update_share_instances_if(vec![], vec![op_for("noop", share_id, None, 2)], at(2))
        .await
        .expect("empty");
    assert!(none.is_empty());
    assert_eq!(store.list_operations(None).await.unwrap().len(), 2);
    db.finish().await;
}

pub(crate) async fn update_share_instances_if_is_all_or_nothing<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (_, active, secondary) = replicated_share(&**store, 0).await;

    // The second condition fails (the old active is not `in_sync`): the first update, which
    // would have applied, is rolled back and nothing is enqueued.
    let mut updates = promotion(secondary.id, active.id);
    updates[1].expected_replica_state = Some(Some("in_sync".to_owned()));
    let err = store
        .update_share_instances_if(
            updates,
            vec![op_for("promote_replica", secondary.id, None, 1)],
            at(1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.get_share_instance(active.id).await.unwrap(), active);
    assert_eq!(
        store.get_share_instance(secondary.id).await.unwrap(),
        secondary
    );
    assert!(store.list_operations(None).await.unwrap().is_empty());

    // A failing status condition, given first this time.
    let mut updates = promotion(secondary.id, active.id);
    updates[0].expected_statuses = vec!["error".to_owned(), "creating".to_owned()];
    let err = store
        .update_share_instances_if(updates, vec![], at(2))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.get_share_instance(active.id).await.unwrap(), active);
    assert_eq!(
        store.get_share_instance(secondary.id).await.unwrap(),
        secondary
    );

    // A missing instance: NotFound, nothing written.
    let mut updates = promotion(secondary.id, active.id);
    updates.push(ShareInstanceCas {
        id: Uuid::new_v4(),
        ..ShareInstanceCas::default()
    });
    let err = store
        .update_share_instances_if(updates, vec![op_for("x", active.id, None, 3)], at(3))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.get_share_instance(active.id).await.unwrap(), active);
    assert_eq!(
        store.get_share_instance(secondary.id).await.unwrap(),
        secondary
    );
    assert!(store.list_operations(None).await.unwrap().is_empty());
    db.finish().await;
}

pub(crate) async fn update_share_instances_if_checks_null_replica_state<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    // A non-replicated instance: replica_state is NULL.
    let (share, plain) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    assert_eq!(plain.replica_state, None);
    let become_active = |expected: Option<Option<String>>| ShareInstanceCas {
        id: plain.id,
        expected_statuses: vec![],
        expected_replica_state: expected,
        update: ShareInstanceUpdate {
            replica_state: Some(Some("active".to_owned())),
            ..ShareInstanceUpdate::default()
        },
    };

    // `Some(Some(_))` never matches NULL.
    let err = store
        .update_share_instances_if(
            vec![become_active(Some(Some("active".to_owned())))],
            vec![],
            at(1),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.get_share_instance(plain.id).await.unwrap(), plain);

    // `Some(None)`: must be NULL, which it is.
    let rows = store
        .update_share_instances_if(vec![become_active(Some(None))], vec![], at(2))
        .await
        .expect("null matches");
    assert_eq!(rows[0].replica_state.as_deref(), Some("active"));

    // Now it is `active`, so `Some(None)` fails and `None` (unchecked) passes.
    let err = store
        .update_share_instances_if(vec![become_active(Some(None))], vec![], at(3))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let rows = store
        .update_share_instances_if(vec![become_active(None)], vec![], at(4))
        .await
        .expect("unchecked");
    assert_eq!(rows[0].updated_at, Some(at(4)));
    assert_eq!(store.list_share_instances(share.id).await.unwrap(), rows);
    db.finish().await;
}

pub(crate) async fn concurrent_promotions_have_one_winner<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = Arc::clone(db.store());
    for round in 0..4 {
        let (_, active, secondary) = replicated_share(&*store, round).await;
        // Half the callers list the updates in the opposite order: the store must not
        // deadlock, and exactly one promotion applies.
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let store = Arc::clone(&store);
                let mut updates = promotion(secondary.id, active.id);
                if i % 2 == 1 {
                    updates.reverse();
                }
                tokio::spawn(async move {
                    store
                        .update_share_instances_if(
                            updates,
                            vec![op_for("promote_replica", secondary.id, None, i)],
                            at(round + 10),
                        )
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            match task.await.expect("join") {
                Ok(_) => won += 1,
                Err(StoreError::Conflict(_)) => {}
                Err(other) => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(won, 1, "round {round}");
        let promoted = store.get_share_instance(secondary.id).await.unwrap();
        assert_eq!(promoted.replica_state.as_deref(), Some("active"));
        let demoted = store.get_share_instance(active.id).await.unwrap();
        assert_eq!(demoted.replica_state.as_deref(), Some("in_sync"));
    }
    assert_eq!(store.list_operations(None).await.unwrap().len(), 4);
    db.finish().await;
}

pub(crate) async fn replica_metadata_crud<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    // Metadata given at creation, for the first instance and for a replica.
    let mut new = new_share("p1", 1, 0);
    new.instance.metadata = specs_of(&[("role", "primary")]);
    let (share, first) = store.create_share(new).await.unwrap();
    let mut replica = new_instance();
    replica.metadata = specs_of(&[("a", "1"), ("b", "2")]);
    let replica = store
        .create_share_instance(share.id, replica, quota("p1", &[], &[]), vec![], at(1))
        .await
        .unwrap();
    let bare = store
        .create_share_instance(
            share.id,
            new_instance(),
            quota("p1", &[], &[]),
            vec![],
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_share_instance_metadata(first.id).await.unwrap(),
        specs_of(&[("role", "primary")])
    );
    assert_eq!(
        store.get_share_instance_metadata(replica.id).await.unwrap(),
        specs_of(&[("a", "1"), ("b", "2")])
    );
    assert!(
        store
            .get_share_instance_metadata(bare.id)
            .await
            .unwrap()
            .is_empty()
    );

    // Merge: upserts the given keys, keeps the others.
    let merged = store
        .set_share_instance_metadata(
            replica.id,
            &specs_of(&[("b", "20"), ("c", "3")]),
            false,
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(merged, specs_of(&[("a", "1"), ("b", "20"), ("c", "3")]));
    assert_eq!(
        store.get_share_instance_metadata(replica.id).await.unwrap(),
        merged
    );

    // Replace: exactly the given keys remain.
    let replaced = store
        .set_share_instance_metadata(replica.id, &specs_of(&[("c", "30")]), true, at(3))
        .await
        .unwrap();
    assert_eq!(replaced, specs_of(&[("c", "30")]));
    // Replace with nothing clears everything.
    let cleared = store
        .set_share_instance_metadata(first.id, &BTreeMap::new(), true, at(3))
        .await
        .unwrap();
    assert!(cleared.is_empty());

    // Delete one key; a missing key or instance is NotFound.
    store
        .delete_share_instance_metadata_key(replica.id, "c")
        .await
        .unwrap();
    assert!(
        store
            .get_share_instance_metadata(replica.id)
            .await
            .unwrap()
            .is_empty()
    );
    let err = store
        .delete_share_instance_metadata_key(replica.id, "c")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let missing = Uuid::new_v4();
    let err = store
        .delete_share_instance_metadata_key(missing, "c")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .set_share_instance_metadata(missing, &specs_of(&[("k", "v")]), false, at(4))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(
        store
            .get_share_instance_metadata(missing)
            .await
            .unwrap()
            .is_empty()
    );

    // Metadata of one instance never leaks into another's.
    store
        .set_share_instance_metadata(bare.id, &specs_of(&[("k", "v")]), false, at(5))
        .await
        .unwrap();
    assert!(
        store
            .get_share_instance_metadata(first.id)
            .await
            .unwrap()
            .is_empty()
    );
    db.finish().await;
}

pub(crate) async fn list_replica_metadata_of_many_instances<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share, first) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let mut with_meta = Vec::new();
    for i in 0..3 {
        let mut inst = new_instance();
        inst.metadata = specs_of(&[("n", &i.to_string()), ("x", "y")]);
        let row = store
            .create_share_instance(share.id, inst, quota("p1", &[], &[]), vec![], at(1))
            .await
            .unwrap();
        with_meta.push(row.id);
    }
    assert!(
        store
            .list_share_instance_metadata(&[])
            .await
            .unwrap()
            .is_empty()
    );

    // Enough ids to need several IN lists; unknown ids and metadata-less instances are
    // absent from the answer.
    let mut ids: Vec<Uuid> = (0..1200).map(|_| Uuid::new_v4()).collect();
    ids.insert(700, with_meta[0]);
    ids.push(with_meta[1]);
    ids.push(with_meta[2]);
    ids.push(first.id);
    let all = store.list_share_instance_metadata(&ids).await.unwrap();
    let expected: BTreeMap<Uuid, BTreeMap<String, String>> = with_meta
        .iter()
        .enumerate()
        .map(|(i, id)| (*id, specs_of(&[("n", &i.to_string()), ("x", "y")])))
        .collect();
    assert_eq!(all, expected);

    let one = store
        .list_share_instance_metadata(&[with_meta[1], first.id])
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[&with_meta[1]], expected[&with_meta[1]]);
    db.finish().await;
}

pub(crate) async fn replica_metadata_and_history_go_with_the_instance<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share_id, active, secondary) = replicated_share(&**store, 0).await;
    for id in [active.id, secondary.id] {
        store
            .set_share_instance_metadata(id, &specs_of(&[("k", "v")]), false, at(1))
            .await
            .unwrap();
        store
            .insert_replication_record(record(id, 1, "clean"))
            .await
            .unwrap();
    }

    // Deleting the replica removes its metadata and history, not the other instance's.
    let share_removed = store
        .delete_share_instance_and_maybe_share(secondary.id, quota("p1", &[], &[]).into(), at(2))
        .await
        .unwrap();
    assert!(!share_removed);
    assert!(
        store
            .get_share_instance_metadata(secondary.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_replication_history(secondary.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        store.get_share_instance_metadata(active.id).await.unwrap(),
        specs_of(&[("k", "v")])
    );
    assert_eq!(
        store
            .list_replication_history(active.id, 10)
            .await
            .unwrap()
            .len(),
        1
    );

    // The last instance takes the share and its own rows with it.
    let share_removed = store
        .delete_share_instance_and_maybe_share(active.id, quota("p1", &[], &[]).into(), at(3))
        .await
        .unwrap();
    assert!(share_removed);
    let err = store.get_share(share_id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let left = store
        .list_share_instance_metadata(&[active.id, secondary.id])
        .await
        .unwrap();
    assert!(left.is_empty());
    assert!(
        store
            .list_replication_history(active.id, 10)
            .await
            .unwrap()
            .is_empty()
    );
    db.finish().await;
}

pub(crate) async fn share_lock_acquire_renew_expire_unlock<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let share = Uuid::new_v4();
    let lease = Duration::from_secs(30);

    // Free: taken. Held by us: renewed. Held by another: refused.
    assert!(
        store
            .try_lock_share(share, "node-a", at(0), lease)
            .await
            .unwrap()
    );
    assert!(
        store
            .try_lock_share(share, "node-a", at(10), lease)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lock_share(share, "node-b", at(20), lease)
            .await
            .unwrap()
    );
    // The renewal at 10 runs to 40: still held at 39 and exactly at 40.
    assert!(
        !store
            .try_lock_share(share, "node-b", at(39), lease)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lock_share(share, "node-b", at(40), lease)
            .await
            .unwrap()
    );
    // Expired: anyone takes it over.
    assert!(
        store
            .try_lock_share(share, "node-b", at(41), lease)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lock_share(share, "node-a", at(42), lease)
            .await
            .unwrap()
    );

    // Unlocking by a non-holder does nothing; by the holder frees it.
    store.unlock_share(share, "node-a").await.unwrap();
    assert!(
        !store
            .try_lock_share(share, "node-c", at(43), lease)
            .await
            .unwrap()
    );
    store.unlock_share(share, "node-b").await.unwrap();
    assert!(
        store
            .try_lock_share(share, "node-c", at(44), lease)
            .await
            .unwrap()
    );
    // Unlocking a share never locked is fine too.
    store.unlock_share(Uuid::new_v4(), "node-a").await.unwrap();

    // Locks of different shares are independent.
    let other = Uuid::new_v4();
    assert!(
        store
            .try_lock_share(other, "node-a", at(45), lease)
            .await
            .unwrap()
    );
    assert!(
        !store
            .try_lock_share(share, "node-a", at(45), lease)
            .await
            .unwrap()
    );
    db.finish().await;
}

pub(crate) async fn concurrent_share_locks_have_one_winner<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = Arc::clone(db.store());
    for round in 0..8 {
        let share = Uuid::new_v4();
        let tasks: Vec<_> = (0..2)
            .map(|i| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .try_lock_share(
                            share,
                            &format!("node-{i}"),
                            at(round),
                            Duration::from_secs(60),
                        )
                        .await
                })
            })
            .collect();
        let mut won = 0;
        for task in tasks {
            if task.await.expect("join").expect("try_lock_share") {
                won += 1;
            }
        }
        assert_eq!(won, 1, "round {round}");
    }
    db.finish().await;
}

pub(crate) async fn replication_history_insert_and_list<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (_, active, secondary) = replicated_share(&**store, 0).await;
    let status = store.list_replica_sync_status().await.unwrap();
    assert_eq!(status.len(), 1, "the active is not listed: {status:?}");
    assert_eq!(status[0].instance_id, secondary.id);
    assert_eq!(status[0].latest, None);
    assert_eq!(status[0].last_clean_source_point, None);
    let mut records = Vec::new();
    // Inserted out of order; listing orders by start time.
    for secs in [30, 10, 50, 20, 40] {
        let mut rec = record(secondary.id, secs, "clean");
        rec.source_instance_id = Some(active.id);
        store.insert_replication_record(rec.clone()).await.unwrap();
        records.push(rec);
    }
    let mut failed = record(secondary.id, 60, "failed");
    failed.source_instance_id = None;
    failed.source_point = None;
    failed.trigger = "resync".to_owned();
    failed.detail = Some("backend unreachable".to_owned());
    store
        .insert_replication_record(failed.clone())
        .await
        .unwrap();
    records.push(failed.clone());
    records.sort_by_key(|r| std::cmp::Reverse(r.started_at));

    // The newest sync failed; the newest clean one started at 50.
    let status = store.list_replica_sync_status().await.unwrap();
    assert_eq!(status.len(), 1);
    assert_eq!(
        Some(status[0].replica_state.as_str()),
        secondary.replica_state.as_deref()
    );
    assert_eq!(status[0].latest.as_ref(), Some(&failed));
    assert_eq!(status[0].last_clean_source_point, Some(at(50)));

    assert_eq!(
        store
            .list_replication_history(secondary.id, 100)
            .await
            .unwrap(),
        records
    );
    let newest = store
        .list_replication_history(secondary.id, 3)
        .await
        .unwrap();
    assert_eq!(newest, records[..3]);
    assert_eq!(newest[0], failed);
    assert!(
        store
            .list_replication_history(secondary.id, 0)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_replication_history(secondary.id, -1)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_replication_history(active.id, 10)
            .await
            .unwrap()
            .is_empty()
    );

    let err = store
        .insert_replication_record(records[0].clone())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .insert_replication_record(record(Uuid::new_v4(), 1, "clean"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}
