//! Snapshots: creation with quota and operations, instances and their compare-and-set,
//! removal with quota release, metadata, export locations and access rules.

use std::sync::Arc;

use uuid::Uuid;

use super::{at, new_instance, new_share, op_for, quota, specs_of};
use crate::testing::ForTest;
use crate::{
    NewSnapshot, NewSnapshotAccessRule, NewSnapshotExportLocation, NewSnapshotInstance,
    OperationState, ShareInstanceRow, SnapshotInstanceCas, SnapshotInstanceFilter,
    SnapshotInstanceUpdate, SnapshotListFilter, SnapshotRow, SnapshotUpdate, Store, StoreError,
};

/// An `available` share of `project` with one instance.
async fn share_with_instance<S: Store + ?Sized>(
    store: &S,
    project: &str,
    secs: i64,
) -> (Uuid, ShareInstanceRow) {
    let mut new = new_share(project, 2, secs);
    new.instance.status = "available".to_owned();
    let (share, instance) = store.create_share(new).await.expect("share");
    (share.id, instance)
}

/// A snapshot of `share_id` with one `creating` instance per share instance given.
fn new_snapshot(project: &str, share_id: Uuid, share_instances: &[Uuid], secs: i64) -> NewSnapshot {
    let id = Uuid::new_v4();
    NewSnapshot {
        snapshot: SnapshotRow {
            id,
            share_id,
            project_id: project.to_owned(),
            user_id: format!("{project}-user"),
            name: Some(format!("snap-{secs}")),
            description: None,
            size_gb: 2,
            share_size: 2,
            share_proto: "NFS".to_owned(),
            metadata: specs_of(&[("a", "1")]),
            created_at: at(secs),
            updated_at: None,
            instances: Vec::new(),
        },
        instances: share_instances
            .iter()
            .map(|si| NewSnapshotInstance {
                id: Uuid::new_v4(),
                snapshot_id: id,
                share_instance_id: *si,
                status: "creating".to_owned(),
                progress: Some("0%".to_owned()),
                provider_location: None,
            })
            .collect(),
        quota: quota(
            project,
            &[("snapshots", 1), ("snapshot_gigabytes", 2)],
            &[("snapshots", 2), ("snapshot_gigabytes", 10)],
        ),
        operations: Vec::new(),
    }
}

fn release(project: &str) -> crate::QuotaRequest {
    quota(
        project,
        &[("snapshots", -1), ("snapshot_gigabytes", -2)],
        &[],
    )
}

pub(crate) async fn create_get_list_snapshots<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share_id, instance) = share_with_instance(&**store, "p1", 0).await;
    let (other_share, other_instance) = share_with_instance(&**store, "p2", 1).await;
    let mut new = new_snapshot("p1", share_id, &[instance.id], 5);
    new.operations = vec![op_for(
        "create_snapshot",
        new.instances[0].id,
        Some("h@b"),
        5,
    )];
    let snap = store.create_snapshot(new.clone()).await.expect("create");
    assert_eq!(snap.id, new.snapshot.id);
    assert_eq!(snap.metadata, specs_of(&[("a", "1")]));
    assert_eq!(snap.created_at, at(5));
    assert_eq!(snap.instances.len(), 1);
    assert_eq!(snap.instances[0].status, "creating");
    assert_eq!(snap.instances[0].share_instance_id, instance.id);
    assert_eq!(store.get_snapshot(snap.id).await.unwrap(), snap);
    let usages = store.get_quota_usages("p1").await.unwrap();
    assert_eq!(usages["snapshots"].in_use, 1);
    assert_eq!(usages["snapshot_gigabytes"].in_use, 2);
    let ops = store
        .list_operations(Some(OperationState::Pending))
        .await
        .unwrap();
    assert!(ops.iter().any(|o| o.kind == "create_snapshot"));

    let second = store
        .create_snapshot(new_snapshot("p1", share_id, &[instance.id], 6))
        .await
        .unwrap();
    let other = store
        .create_snapshot(new_snapshot("p2", other_share, &[other_instance.id], 4))
        .await
        .unwrap();
    let all = store
        .list_snapshots(SnapshotListFilter::default())
        .await
        .unwrap();
    let ids: Vec<Uuid> = all.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![other.id, snap.id, second.id]);
    assert!(all.iter().all(|s| s.instances.len() == 1));
    let p1 = store
        .list_snapshots(SnapshotListFilter {
            project_id: Some("p1".to_owned()),
            share_id: None,
        })
        .await
        .unwrap();
    assert_eq!(p1.len(), 2);
    let of_share = store
        .list_snapshots(SnapshotListFilter {
            project_id: None,
            share_id: Some(other_share),
        })
        .await
        .unwrap();
    assert_eq!(of_share.len(), 1);
    assert_eq!(of_share[0].id, other.id);
    assert!(matches!(
        store.get_snapshot(Uuid::new_v4()).await,
        Err(StoreError::NotFound(_))
    ));
    let by_instance = store
        .list_snapshot_instances(SnapshotInstanceFilter {
            snapshot_id: None,
            share_instance_id: Some(instance.id),
        })
        .await
        .unwrap();
    assert_eq!(by_instance.len(), 2);
    db.finish().await;
}

pub(crate) async fn create_snapshot_refusals_leave_nothing<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share_id, instance) = share_with_instance(&**store, "p1", 0).await;
    // Over the `snapshots` limit of 2 on the third.
    store
        .create_snapshot(new_snapshot("p1", share_id, &[instance.id], 1))
        .await
        .unwrap();
    store
        .create_snapshot(new_snapshot("p1", share_id, &[instance.id], 2))
        .await
        .unwrap();
    let mut over = new_snapshot("p1", share_id, &[instance.id], 3);
    over.operations = vec![op_for("create_snapshot", over.instances[0].id, None, 3)];
    assert!(matches!(
        store.create_snapshot(over.clone()).await,
        Err(StoreError::QuotaExceeded { .. })
    ));
    assert!(matches!(
        store.get_snapshot(over.snapshot.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(store.count_unfinished_operations().await.unwrap(), 0);
    assert_eq!(
        store.get_quota_usages("p1").await.unwrap()["snapshots"].in_use,
        2
    );
    // Missing share, missing share instance.
    let missing = new_snapshot("p1", Uuid::new_v4(), &[instance.id], 4);
    assert!(matches!(
        store.create_snapshot(missing).await,
        Err(StoreError::NotFound(_))
    ));
    let mut bad_instance = new_snapshot("p1", share_id, &[Uuid::new_v4()], 4);
    bad_instance.quota = quota("p1", &[], &[]);
    assert!(matches!(
        store.create_snapshot(bad_instance).await,
        Err(StoreError::NotFound(_))
    ));
    db.finish().await;
}

pub(crate) async fn snapshot_instances_cas_and_removal<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share_id, first) = share_with_instance(&**store, "p1", 0).await;
    let mut replica = new_instance();
    replica.status = "available".to_owned();
    let second = store
        .create_share_instance(share_id, replica, quota("p1", &[], &[]), vec![], at(1))
        .await
        .unwrap();
    let snap = store
        .create_snapshot(new_snapshot("p1", share_id, &[first.id, second.id], 2))
        .await
        .unwrap();
    let (a, b) = (snap.instances[0].id, snap.instances[1].id);
    let to = |id: Uuid, from: &[&str], status: &str| SnapshotInstanceCas {
        id,
        expected_statuses: from.iter().map(|s| (*s).to_owned()).collect(),
        update: SnapshotInstanceUpdate {
            status: Some(status.to_owned()),
            progress: Some(Some("100%".to_owned())),
            provider_location: Some(Some(format!("loc-{id}"))),
        },
    };
    // All or nothing: b is not `available`, so a stays `creating` and nothing is enqueued.
    let lost = store
        .update_snapshot_instances_if(
            vec![
                to(a, &["creating"], "available"),
                to(b, &["available"], "deleting"),
            ],
            vec![op_for("delete_snapshot", a, Some("h@b"), 3)],
            at(3),
        )
        .await;
    assert!(matches!(lost, Err(StoreError::Conflict(_))), "{lost:?}");
    assert_eq!(
        store.get_snapshot_instance(a).await.unwrap().status,
        "creating"
    );
    assert_eq!(store.count_unfinished_operations().await.unwrap(), 0);
    let rows = store
        .update_snapshot_instances_if(
            vec![to(b, &["creating"], "available"), to(a, &[], "available")],
            vec![],
            at(4),
        )
        .await
        .unwrap();
    assert_eq!(rows[0].id, b);
    assert_eq!(rows[1].provider_location, Some(format!("loc-{a}")));
    assert_eq!(rows[1].progress.as_deref(), Some("100%"));
    assert_eq!(rows[1].updated_at, Some(at(4)));
    assert!(matches!(
        store
            .update_snapshot_instances_if(vec![to(Uuid::new_v4(), &[], "x")], vec![], at(4))
            .await,
        Err(StoreError::NotFound(_))
    ));

    // The share keeps its last instance while a snapshot exists.
    assert!(
        !store
            .delete_snapshot_instance(a, release("p1"), at(5))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_quota_usages("p1").await.unwrap()["snapshots"].in_use,
        1
    );
    assert!(
        store
            .delete_snapshot_instance(b, release("p1"), at(6))
            .await
            .unwrap()
    );
    assert!(
        !store
            .delete_snapshot_instance(b, release("p1"), at(6))
            .await
            .unwrap()
    );
    assert!(matches!(
        store.get_snapshot(snap.id).await,
        Err(StoreError::NotFound(_))
    ));
    let usages = store.get_quota_usages("p1").await.unwrap();
    assert_eq!(usages["snapshots"].in_use, 0);
    assert_eq!(usages["snapshot_gigabytes"].in_use, 0);
    db.finish().await;
}

pub(crate) async fn share_with_snapshots_keeps_its_row<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share_id, instance) = share_with_instance(&**store, "p1", 0).await;
    let snap = store
        .create_snapshot(new_snapshot("p1", share_id, &[instance.id], 1))
        .await
        .unwrap();
    let deleted = store
        .delete_share_instance_and_maybe_share(instance.id, quota("p1", &[], &[]).into(), at(2))
        .await;
    assert!(deleted.is_err(), "{deleted:?}");
    // Nothing was removed.
    assert_eq!(
        store.get_share_instance(instance.id).await.unwrap().id,
        instance.id
    );
    assert_eq!(
        store.get_snapshot(snap.id).await.unwrap().instances.len(),
        1
    );
    db.finish().await;
}

pub(crate) async fn add_snapshot_instances_is_idempotent<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share_id, first) = share_with_instance(&**store, "p1", 0).await;
    let snap = store
        .create_snapshot(new_snapshot("p1", share_id, &[first.id], 1))
        .await
        .unwrap();
    let second = store
        .create_share_instance(
            share_id,
            new_instance(),
            quota("p1", &[], &[]),
            vec![],
            at(2),
        )
        .await
        .unwrap();
    let new = |id: Uuid| NewSnapshotInstance {
        id,
        snapshot_id: snap.id,
        share_instance_id: second.id,
        status: "creating".to_owned(),
        progress: Some("0%".to_owned()),
        provider_location: None,
    };
    let first_id = Uuid::new_v4();
    let op = op_for("create_replica_snapshot", first_id, Some("h@b"), 3);
    assert_eq!(
        store
            .add_snapshot_instances(vec![new(first_id)], vec![op], at(3))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        store
            .add_snapshot_instances(vec![new(Uuid::new_v4())], vec![], at(4))
            .await
            .unwrap(),
        0
    );
    let instances = store.get_snapshot(snap.id).await.unwrap().instances;
    assert_eq!(instances.len(), 2);
    assert_eq!(instances[1].id, first_id);
    assert_eq!(store.count_unfinished_operations().await.unwrap(), 1);
    let mut missing = new(Uuid::new_v4());
    missing.share_instance_id = Uuid::new_v4();
    assert!(matches!(
        store
            .add_snapshot_instances(vec![missing], vec![], at(5))
            .await,
        Err(StoreError::NotFound(_))
    ));
    db.finish().await;
}

pub(crate) async fn snapshot_update_and_metadata<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share_id, instance) = share_with_instance(&**store, "p1", 0).await;
    let snap = store
        .create_snapshot(new_snapshot("p1", share_id, &[instance.id], 1))
        .await
        .unwrap();
    let updated = store
        .update_snapshot(
            snap.id,
            SnapshotUpdate {
                name: Some(None),
                description: Some(Some("d".to_owned())),
                size_gb: None,
            },
            at(2),
        )
        .await
        .unwrap();
    assert_eq!(updated.name, None);
    assert_eq!(updated.description.as_deref(), Some("d"));
    assert_eq!(updated.size_gb, 2);
    assert_eq!(updated.updated_at, Some(at(2)));
    let merged = store
        .set_snapshot_metadata(snap.id, &specs_of(&[("b", "2")]), false, at(3))
        .await
        .unwrap();
    assert_eq!(merged, specs_of(&[("a", "1"), ("b", "2")]));
    let replaced = store
        .set_snapshot_metadata(snap.id, &specs_of(&[("c", "3")]), true, at(4))
        .await
        .unwrap();
    assert_eq!(replaced, specs_of(&[("c", "3")]));
    store
        .delete_snapshot_metadata_key(snap.id, "c")
        .await
        .unwrap();
    assert!(matches!(
        store.delete_snapshot_metadata_key(snap.id, "c").await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store
            .set_snapshot_metadata(Uuid::new_v4(), &specs_of(&[("c", "3")]), false, at(4))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(
        store
            .get_snapshot(snap.id)
            .await
            .unwrap()
            .metadata
            .is_empty()
    );
    db.finish().await;
}

pub(crate) async fn snapshot_export_locations_and_access<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share_id, instance) = share_with_instance(&**store, "p1", 0).await;
    let snap = store
        .create_snapshot(new_snapshot("p1", share_id, &[instance.id], 1))
        .await
        .unwrap();
    let si = snap.instances[0].id;
    let loc = |path: &str, admin: bool| NewSnapshotExportLocation {
        path: path.to_owned(),
        is_admin_only: admin,
    };
    let first = store
        .replace_snapshot_export_locations(si, vec![loc("/a", false), loc("/b", true)], at(2))
        .await
        .unwrap();
    assert_eq!(first.len(), 2);
    let second = store
        .replace_snapshot_export_locations(si, vec![loc("/c", false), loc("/a", false)], at(3))
        .await
        .unwrap();
    assert_eq!(second[0].path, "/c");
    assert_eq!(second[1].id, first[0].id, "a kept path keeps its id");
    assert_eq!(
        store.list_snapshot_export_locations(si).await.unwrap(),
        second
    );

    let rule = store
        .insert_snapshot_access_rule(NewSnapshotAccessRule {
            id: Uuid::new_v4(),
            snapshot_id: snap.id,
            access_type: "ip".to_owned(),
            access_to: "10.0.0.1".to_owned(),
            instance_ids: vec![si],
            operations: vec![op_for("snapshot_update_access", si, Some("h@b"), 4)],
            now: at(4),
        })
        .await
        .unwrap();
    assert_eq!(rule.instance_states[&si], "queued_to_apply");
    let duplicate = NewSnapshotAccessRule {
        id: Uuid::new_v4(),
        snapshot_id: snap.id,
        access_type: "ip".to_owned(),
        access_to: "10.0.0.1".to_owned(),
        instance_ids: vec![si],
        operations: vec![],
        now: at(5),
    };
    assert!(matches!(
        store.insert_snapshot_access_rule(duplicate).await,
        Err(StoreError::Conflict(_))
    ));
    store
        .set_snapshot_instance_access_state(rule.id, si, &["queued_to_apply"], "active", at(5))
        .await
        .unwrap();
    assert!(matches!(
        store
            .set_snapshot_instance_access_state(rule.id, si, &["queued_to_apply"], "x", at(5))
            .await,
        Err(StoreError::Conflict(_))
    ));
    let denied = store
        .mark_snapshot_access_rule_for_deny(rule.id, vec![], at(6))
        .await
        .unwrap();
    assert_eq!(denied.instance_states[&si], "queued_to_deny");
    assert_eq!(
        store
            .list_snapshot_access_rules(snap.id)
            .await
            .unwrap()
            .len(),
        1
    );
    assert!(
        store
            .remove_snapshot_instance_access(rule.id, si)
            .await
            .unwrap()
    );
    assert!(
        store
            .list_snapshot_access_rules(snap.id)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(matches!(
        store.get_snapshot_access_rule(rule.id).await,
        Err(StoreError::NotFound(_))
    ));
    db.finish().await;
}

pub(crate) async fn concurrent_removals_of_last_snapshot_instances_release_once<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = Arc::clone(db.store());
    let (share_id, first) = share_with_instance(&*store, "p1", 0).await;
    let mut share_instances = vec![first.id];
    for _ in 0..3 {
        let inst = store
            .create_share_instance(
                share_id,
                new_instance(),
                quota("p1", &[], &[]),
                vec![],
                at(1),
            )
            .await
            .unwrap();
        share_instances.push(inst.id);
    }
    // One more snapshot's worth of usage, so a double release would show (usage is clamped
    // at zero).
    store
        .charge_quota(quota("p1", &[("snapshots", 1)], &[]), at(2))
        .await
        .unwrap();
    for round in 0..4 {
        let mut new = new_snapshot("p1", share_id, &share_instances, 10 + round);
        new.quota.limits.clear();
        let snap = store.create_snapshot(new).await.unwrap();
        let tasks: Vec<_> = snap
            .instances
            .iter()
            .map(|i| {
                let (store, id) = (Arc::clone(&store), i.id);
                tokio::spawn(async move {
                    store
                        .delete_snapshot_instance(id, release("p1"), at(50))
                        .await
                })
            })
            .collect();
        let mut removed = 0;
        for task in tasks {
            if task.await.expect("join").expect("delete") {
                removed += 1;
            }
        }
        assert_eq!(removed, 1, "exactly the last remover removes the snapshot");
        assert!(matches!(
            store.get_snapshot(snap.id).await,
            Err(StoreError::NotFound(_))
        ));
        let usages = store.get_quota_usages("p1").await.unwrap();
        assert_eq!(usages["snapshots"].in_use, 1, "released once");
    }
    db.finish().await;
}

pub(crate) async fn share_and_snapshot_instances_change_together<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share_id, instance) = share_with_instance(&**store, "p1", 0).await;
    let snap = store
        .create_snapshot(new_snapshot("p1", share_id, &[instance.id], 1))
        .await
        .unwrap();
    let si = snap.instances[0].id;
    let share_cas = |from: &str, to: &str| crate::ShareInstanceCas {
        id: instance.id,
        expected_statuses: vec![from.to_owned()],
        expected_replica_state: None,
        update: crate::ShareInstanceUpdate {
            status: Some(to.to_owned()),
            ..Default::default()
        },
    };
    let snap_cas = |from: &str, to: &str| SnapshotInstanceCas {
        id: si,
        expected_statuses: vec![from.to_owned()],
        update: SnapshotInstanceUpdate {
            status: Some(to.to_owned()),
            ..Default::default()
        },
    };
    // The snapshot instance is `creating`, not `available`: nothing changes.
    let lost = store
        .update_share_and_snapshot_instances_if(
            vec![share_cas("available", "reverting")],
            vec![snap_cas("available", "restoring")],
            vec![op_for("revert_to_snapshot", instance.id, Some("h@b"), 2)],
            at(2),
        )
        .await;
    assert!(matches!(lost, Err(StoreError::Conflict(_))), "{lost:?}");
    assert_eq!(
        store.get_share_instance(instance.id).await.unwrap().status,
        "available"
    );
    assert_eq!(store.count_unfinished_operations().await.unwrap(), 0);
    store
        .update_share_and_snapshot_instances_if(
            vec![share_cas("available", "reverting")],
            vec![snap_cas("creating", "restoring")],
            vec![op_for("revert_to_snapshot", instance.id, Some("h@b"), 3)],
            at(3),
        )
        .await
        .unwrap();
    assert_eq!(
        store.get_share_instance(instance.id).await.unwrap().status,
        "reverting"
    );
    assert_eq!(
        store.get_snapshot_instance(si).await.unwrap().status,
        "restoring"
    );
    assert_eq!(store.count_unfinished_operations().await.unwrap(), 1);
    // A missing share instance: NotFound, nothing written.
    let mut missing = share_cas("reverting", "available");
    missing.id = Uuid::new_v4();
    assert!(matches!(
        store
            .update_share_and_snapshot_instances_if(
                vec![missing],
                vec![snap_cas("restoring", "available")],
                vec![],
                at(4),
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        store.get_snapshot_instance(si).await.unwrap().status,
        "restoring"
    );
    db.finish().await;
}
