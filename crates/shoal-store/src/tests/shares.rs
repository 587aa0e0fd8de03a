//! Shares, share metadata, share instances, export locations and pool allocation.

use std::collections::BTreeSet;
use std::sync::Arc;

use uuid::Uuid;

use super::{at, new_instance, new_share, new_type, op_for, quota, specs_of};
use crate::testing::ForTest;
use crate::{
    InstanceRelease, NewExportLocation, NewShareInstance, OperationState, ResizeCommit,
    ShareInstanceUpdate, ShareListFilter, ShareUpdate, StoreError,
};

pub(crate) async fn create_and_get_share<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let share_type = store
        .insert_share_type(new_type("default", true, &[]))
        .await
        .unwrap();
    let mut new = new_share("p1", 5, 0);
    new.share.share_type_id = Some(share_type.id);
    new.share.description = Some("first".to_owned());
    new.share.replication_type = Some("readable".to_owned());
    new.share.metadata = specs_of(&[("k1", "v1"), ("k2", "v2")]);
    new.instance.share_type_id = Some(share_type.id);
    new.instance.share_network_id = Some(Uuid::new_v4());
    new.operations = vec![op_for("schedule_share_instance", new.instance.id, None, 0)];

    let (share, instance) = store.create_share(new.clone()).await.expect("create");
    assert_eq!(share, new.share);
    assert_eq!(instance.id, new.instance.id);
    assert_eq!(instance.share_id, share.id);
    assert_eq!(instance.status, "creating");
    assert_eq!(instance.replica_state, None);
    assert_eq!(instance.host, "");
    assert_eq!(instance.availability_zone.as_deref(), Some("az1"));
    assert_eq!(instance.share_type_id, Some(share_type.id));
    assert_eq!(instance.share_network_id, new.instance.share_network_id);
    assert_eq!(instance.share_server_id, None);
    assert!(!instance.cast_rules_to_readonly);
    assert_eq!(instance.access_rules_status, "active");
    assert_eq!(instance.progress, None);
    assert_eq!(instance.created_at, at(0));
    assert_eq!(instance.updated_at, None);
    assert_eq!(instance.scheduled_at, None);
    assert_eq!(instance.launched_at, None);
    assert_eq!(instance.terminated_at, None);

    assert_eq!(store.get_share(share.id).await.unwrap(), share);
    assert_eq!(
        store.get_share_instance(instance.id).await.unwrap(),
        instance
    );
    assert_eq!(
        store.list_share_instances(share.id).await.unwrap(),
        std::slice::from_ref(&instance)
    );
    let ops = store.list_operations(None).await.unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].kind, "schedule_share_instance");
    assert_eq!(ops[0].target_id, instance.id.to_string());
    assert_eq!(ops[0].state, OperationState::Pending);
    let usage = store.get_quota_usages("p1").await.unwrap();
    assert_eq!(usage["shares"].in_use, 1);
    assert_eq!(usage["gigabytes"].in_use, 5);
    assert_eq!(usage["gigabytes"].reserved, 0);

    let err = store.get_share(Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.get_share_instance(Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(
        store
            .list_share_instances(Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );
    db.finish().await;
}

pub(crate) async fn create_share_conflicts_and_missing_type<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let new = new_share("p1", 1, 0);
    store.create_share(new.clone()).await.expect("create");

    // Same share id.
    let mut dup = new_share("p1", 1, 1);
    dup.share.id = new.share.id;
    let err = store.create_share(dup).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // Same instance id.
    let mut dup = new_share("p1", 1, 1);
    dup.instance.id = new.instance.id;
    let err = store.create_share(dup.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store.get_share(dup.share.id).await.unwrap_err();
    assert!(
        matches!(err, StoreError::NotFound(_)),
        "rolled back: {err:?}"
    );
    // Unknown share type, on the share or on the instance.
    let mut bad = new_share("p1", 1, 2);
    bad.share.share_type_id = Some(Uuid::new_v4());
    let err = store.create_share(bad).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let mut bad = new_share("p1", 1, 2);
    bad.instance.share_type_id = Some(Uuid::new_v4());
    let err = store.create_share(bad).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let all = store.list_shares(ShareListFilter::default()).await.unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(
        store.get_quota_usages("p1").await.unwrap()["shares"].in_use,
        1
    );
    db.finish().await;
}

pub(crate) async fn create_share_over_quota_leaves_nothing<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let limits = [("shares", 10), ("gigabytes", 10)];
    let mut first = new_share("p1", 6, 0);
    first.quota = quota("p1", &[("gigabytes", 6), ("shares", 1)], &limits);
    first.operations = vec![op_for("schedule", first.instance.id, None, 0)];
    store.create_share(first).await.expect("fits");

    let mut second = new_share("p1", 5, 1);
    second.share.metadata = specs_of(&[("k", "v")]);
    second.quota = quota("p1", &[("gigabytes", 5), ("shares", 1)], &limits);
    second.operations = vec![op_for("schedule", second.instance.id, None, 1)];
    let err = store.create_share(second.clone()).await.unwrap_err();
    match err {
        StoreError::QuotaExceeded {
            resource,
            requested,
            in_use,
            reserved,
            limit,
        } => {
            assert_eq!(resource, "gigabytes");
            assert_eq!((requested, in_use, reserved, limit), (5, 6, 0, 10));
        }
        other => panic!("expected QuotaExceeded, got {other:?}"),
    }
    let err = store.get_share(second.share.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .get_share_instance(second.instance.id)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.list_operations(None).await.unwrap().len(), 1);
    let usage = store.get_quota_usages("p1").await.unwrap();
    assert_eq!(usage["gigabytes"].in_use, 6);
    // `gigabytes` sorts first, so `shares` was never touched; it must be unchanged anyway.
    assert_eq!(usage["shares"].in_use, 1);
    assert_eq!(
        store
            .list_shares(ShareListFilter::default())
            .await
            .unwrap()
            .len(),
        1
    );

    // A later resource failing rolls back the earlier ones too.
    let mut third = new_share("p1", 1, 2);
    third.quota = quota("p1", &[("gigabytes", 1), ("shares", 1)], &[("shares", 1)]);
    let err = store.create_share(third).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::QuotaExceeded { resource, .. } if resource == "shares"),
        "{err:?}"
    );
    let usage = store.get_quota_usages("p1").await.unwrap();
    assert_eq!(usage["gigabytes"].in_use, 6);
    assert_eq!(usage["shares"].in_use, 1);
    db.finish().await;
}

pub(crate) async fn concurrent_create_share_respects_quota<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = Arc::clone(db.store());
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let mut new = new_share("p1", 1, i);
                new.quota = quota(
                    "p1",
                    &[("shares", 1), ("gigabytes", 1)],
                    &[("shares", 10), ("gigabytes", -1)],
                );
                new.operations = vec![op_for("schedule", new.instance.id, None, i)];
                store.create_share(new).await
            })
        })
        .collect();
    let mut created = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(_) => created += 1,
            Err(StoreError::QuotaExceeded { resource, .. }) => assert_eq!(resource, "shares"),
            Err(other) => panic!("unexpected error {other:?}"),
        }
    }
    assert_eq!(created, 10);
    let usage = store.get_quota_usages("p1").await.unwrap();
    assert_eq!(usage["shares"].in_use, 10);
    assert_eq!(usage["shares"].reserved, 0);
    assert_eq!(usage["gigabytes"].in_use, 10);
    assert_eq!(
        store
            .list_shares(ShareListFilter::default())
            .await
            .unwrap()
            .len(),
        10
    );
    assert_eq!(store.list_operations(None).await.unwrap().len(), 10);
    db.finish().await;
}

pub(crate) async fn list_shares_filters_and_orders<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    // Created out of order: lists come back by created_at.
    let mut a2 = new_share("a", 1, 20);
    a2.share.metadata = specs_of(&[("z", "1"), ("a", "2")]);
    let (a2, _) = store.create_share(a2).await.unwrap();
    let (a1, _) = store.create_share(new_share("a", 1, 10)).await.unwrap();
    let mut b_public = new_share("b", 1, 15);
    b_public.share.is_public = true;
    let (b_public, _) = store.create_share(b_public).await.unwrap();
    let (b_private, _) = store.create_share(new_share("b", 1, 5)).await.unwrap();

    let ids = |shares: Vec<crate::ShareRow>| shares.into_iter().map(|s| s.id).collect::<Vec<_>>();
    let all = store.list_shares(ShareListFilter::default()).await.unwrap();
    assert_eq!(all[3], a2, "metadata is loaded in lists too");
    assert_eq!(ids(all), [b_private.id, a1.id, b_public.id, a2.id]);
    let own = store
        .list_shares(ShareListFilter {
            project_id: Some("a".to_owned()),
            include_public: false,
        })
        .await
        .unwrap();
    assert_eq!(ids(own), [a1.id, a2.id]);
    let with_public = store
        .list_shares(ShareListFilter {
            project_id: Some("a".to_owned()),
            include_public: true,
        })
        .await
        .unwrap();
    assert_eq!(ids(with_public), [a1.id, b_public.id, a2.id]);
    let b = store
        .list_shares(ShareListFilter {
            project_id: Some("b".to_owned()),
            include_public: true,
        })
        .await
        .unwrap();
    assert_eq!(ids(b), [b_private.id, b_public.id]);
    let none = store
        .list_shares(ShareListFilter {
            project_id: Some("c".to_owned()),
            include_public: false,
        })
        .await
        .unwrap();
    assert!(none.is_empty());
    db.finish().await;
}

pub(crate) async fn update_share_fields<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let mut new = new_share("p1", 1, 0);
    new.share.description = Some("d".to_owned());
    let (share, _) = store.create_share(new).await.unwrap();

    let updated = store
        .update_share(
            share.id,
            ShareUpdate {
                name: Some(Some("renamed".to_owned())),
                is_public: Some(true),
                size_gb: Some(3),
                task_state: Some(Some("migration_starting".to_owned())),
                ..ShareUpdate::default()
            },
            at(5),
        )
        .await
        .expect("update");
    assert_eq!(updated.name.as_deref(), Some("renamed"));
    assert_eq!(updated.description.as_deref(), Some("d"), "untouched");
    assert!(updated.is_public);
    assert_eq!(updated.size_gb, 3);
    assert_eq!(updated.task_state.as_deref(), Some("migration_starting"));
    assert_eq!(updated.updated_at, Some(at(5)));
    assert_eq!(updated.created_at, share.created_at);

    let cleared = store
        .update_share(
            share.id,
            ShareUpdate {
                name: Some(None),
                description: Some(None),
                task_state: Some(None),
                ..ShareUpdate::default()
            },
            at(6),
        )
        .await
        .expect("clear");
    assert_eq!(cleared.name, None);
    assert_eq!(cleared.description, None);
    assert_eq!(cleared.task_state, None);
    assert!(cleared.is_public, "untouched");
    assert_eq!(cleared.size_gb, 3, "untouched");
    assert_eq!(store.get_share(share.id).await.unwrap(), cleared);

    let err = store
        .update_share(Uuid::new_v4(), ShareUpdate::default(), at(7))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}

pub(crate) async fn share_metadata_merge_replace_delete<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let mut new = new_share("p1", 1, 0);
    new.share.metadata = specs_of(&[("a", "1"), ("b", "2")]);
    let (share, _) = store.create_share(new).await.unwrap();

    // Merge: overwrite one, add one, keep the rest.
    let merged = store
        .set_share_metadata(
            share.id,
            &specs_of(&[("b", "20"), ("c", "3")]),
            false,
            at(1),
        )
        .await
        .expect("merge");
    assert_eq!(merged, specs_of(&[("a", "1"), ("b", "20"), ("c", "3")]));
    assert_eq!(store.get_share(share.id).await.unwrap().metadata, merged);

    // Replace: exactly the given keys remain.
    let replaced = store
        .set_share_metadata(share.id, &specs_of(&[("c", "30"), ("d", "4")]), true, at(2))
        .await
        .expect("replace");
    assert_eq!(replaced, specs_of(&[("c", "30"), ("d", "4")]));
    assert_eq!(store.get_share(share.id).await.unwrap().metadata, replaced);
    let emptied = store
        .set_share_metadata(share.id, &specs_of(&[]), true, at(3))
        .await
        .expect("replace with nothing");
    assert!(emptied.is_empty());

    store
        .set_share_metadata(share.id, &specs_of(&[("x", "1")]), false, at(4))
        .await
        .unwrap();
    store
        .delete_share_metadata_key(share.id, "x")
        .await
        .expect("delete");
    let err = store
        .delete_share_metadata_key(share.id, "x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .delete_share_metadata_key(Uuid::new_v4(), "x")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .set_share_metadata(Uuid::new_v4(), &specs_of(&[("a", "1")]), false, at(5))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(store.get_share(share.id).await.unwrap().metadata.is_empty());
    db.finish().await;
}

pub(crate) async fn share_type_in_use_is_counted_and_not_deletable<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let gold = store
        .insert_share_type(new_type("gold", true, &[]))
        .await
        .unwrap();
    let silver = store
        .insert_share_type(new_type("silver", true, &[]))
        .await
        .unwrap();
    let unused = store
        .insert_share_type(new_type("unused", true, &[]))
        .await
        .unwrap();
    // One share typed on the share, one only on its instance.
    let mut on_share = new_share("p1", 1, 0);
    on_share.share.share_type_id = Some(gold.id);
    on_share.instance.share_type_id = Some(gold.id);
    store.create_share(on_share.clone()).await.unwrap();
    let mut on_instance = new_share("p1", 1, 1);
    on_instance.instance.share_type_id = Some(silver.id);
    store.create_share(on_instance).await.unwrap();
    let mut second_gold = new_share("p1", 1, 2);
    second_gold.share.share_type_id = Some(gold.id);
    store.create_share(second_gold).await.unwrap();

    assert_eq!(
        store.count_shares_with_share_type(gold.id).await.unwrap(),
        2
    );
    assert_eq!(
        store.count_shares_with_share_type(silver.id).await.unwrap(),
        1
    );
    assert_eq!(
        store.count_shares_with_share_type(unused.id).await.unwrap(),
        0
    );

    let err = store.delete_share_type(gold.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store.delete_share_type(silver.id).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    store
        .delete_share_type(unused.id)
        .await
        .expect("unused type");
    assert_eq!(store.get_share_type(gold.id).await.unwrap().name, "gold");

    // Once its shares are gone the type can go.
    let release = quota("p1", &[], &[]);
    store
        .delete_share_instance_and_maybe_share(on_share.instance.id, release.into(), at(3))
        .await
        .unwrap();
    assert_eq!(
        store.count_shares_with_share_type(gold.id).await.unwrap(),
        1
    );
    db.finish().await;
}

pub(crate) async fn list_share_replicas_filters_by_project_and_share<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let mut replicated = new_share("p1", 1, 0);
    replicated.instance.replica_state = Some("active".to_owned());
    let (s1, active) = store.create_share(replicated).await.unwrap();
    let mut secondary = new_instance();
    secondary.replica_state = Some("out_of_sync".to_owned());
    store
        .create_share_instance(
            s1.id,
            secondary.clone(),
            quota("p1", &[], &[]),
            vec![],
            at(3),
        )
        .await
        .unwrap();
    // A plain share's instance is not a replica.
    let (plain, _) = store.create_share(new_share("p1", 1, 1)).await.unwrap();
    let mut other = new_share("p2", 1, 2);
    other.instance.replica_state = Some("active".to_owned());
    let (s2, other_active) = store.create_share(other).await.unwrap();

    let ids =
        |rows: Vec<crate::ShareInstanceRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.list_share_replicas(None, None).await.unwrap()),
        [active.id, other_active.id, secondary.id]
    );
    assert_eq!(
        ids(store.list_share_replicas(Some("p1"), None).await.unwrap()),
        [active.id, secondary.id]
    );
    assert_eq!(
        ids(store.list_share_replicas(None, Some(s2.id)).await.unwrap()),
        [other_active.id]
    );
    assert!(
        store
            .list_share_replicas(Some("p1"), Some(s2.id))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_share_replicas(None, Some(plain.id))
            .await
            .unwrap()
            .is_empty()
    );
    db.finish().await;
}

pub(crate) async fn create_share_instance_adds_a_replica<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share, first) = store.create_share(new_share("p1", 2, 0)).await.unwrap();
    let mut replica = new_instance();
    replica.replica_state = Some("out_of_sync".to_owned());
    replica.cast_rules_to_readonly = true;
    let limits = [("share_replicas", 1), ("replica_gigabytes", 10)];
    let charge = quota(
        "p1",
        &[("share_replicas", 1), ("replica_gigabytes", 2)],
        &limits,
    );
    let ops = vec![op_for("schedule", replica.id, None, 5)];
    let row = store
        .create_share_instance(share.id, replica.clone(), charge.clone(), ops, at(5))
        .await
        .expect("replica");
    assert_eq!(row.share_id, share.id);
    assert_eq!(row.replica_state.as_deref(), Some("out_of_sync"));
    assert!(row.cast_rules_to_readonly);
    assert_eq!(row.created_at, at(5));
    let listed: Vec<Uuid> = store
        .list_share_instances(share.id)
        .await
        .unwrap()
        .into_iter()
        .map(|i| i.id)
        .collect();
    assert_eq!(listed, [first.id, replica.id], "creation order");
    assert_eq!(store.list_operations(None).await.unwrap().len(), 1);
    assert_eq!(
        store.get_quota_usages("p1").await.unwrap()["share_replicas"].in_use,
        1
    );

    // Over quota: nothing written.
    let another = new_instance();
    let err = store
        .create_share_instance(
            share.id,
            another.clone(),
            charge,
            vec![op_for("schedule", another.id, None, 6)],
            at(6),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::QuotaExceeded { .. }), "{err:?}");
    let err = store.get_share_instance(another.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.list_operations(None).await.unwrap().len(), 1);

    // Duplicate id, missing share.
    let err = store
        .create_share_instance(share.id, replica, quota("p1", &[], &[]), vec![], at(7))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .create_share_instance(
            Uuid::new_v4(),
            new_instance(),
            quota("p1", &[], &[]),
            vec![],
            at(7),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}

pub(crate) async fn update_share_instance_if_is_compare_and_set<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let mut new = new_share("p1", 1, 0);
    new.instance.share_server_id = Some(Uuid::new_v4());
    let (_, inst) = store.create_share(new).await.unwrap();

    let server = Uuid::new_v4();
    let updated = store
        .update_share_instance_if(
            inst.id,
            &["creating"],
            ShareInstanceUpdate {
                status: Some("available".to_owned()),
                replica_state: Some(Some("active".to_owned())),
                host: Some("h@b#p".to_owned()),
                availability_zone: Some(Some("az2".to_owned())),
                share_server_id: Some(Some(server)),
                cast_rules_to_readonly: Some(true),
                access_rules_status: Some("syncing".to_owned()),
                progress: Some(Some("100%".to_owned())),
                launched_at: Some(at(4)),
                terminated_at: Some(at(5)),
                scheduled_at: Some(at(3)),
                replica_epoch: Some(7),
            },
            vec![],
            at(6),
        )
        .await
        .expect("cas wins");
    assert_eq!(updated.status, "available");
    assert_eq!(updated.replica_state.as_deref(), Some("active"));
    assert_eq!(updated.host, "h@b#p");
    assert_eq!(updated.availability_zone.as_deref(), Some("az2"));
    assert_eq!(updated.share_server_id, Some(server));
    assert!(updated.cast_rules_to_readonly);
    assert_eq!(updated.access_rules_status, "syncing");
    assert_eq!(updated.progress.as_deref(), Some("100%"));
    assert_eq!(updated.launched_at, Some(at(4)));
    assert_eq!(updated.terminated_at, Some(at(5)));
    assert_eq!(updated.scheduled_at, Some(at(3)));
    assert_eq!(updated.replica_epoch, 7);
    assert_eq!(updated.updated_at, Some(at(6)));
    assert_eq!(store.get_share_instance(inst.id).await.unwrap(), updated);

    // The status is no longer `creating`.
    let err = store
        .update_share_instance_if(
            inst.id,
            &["creating"],
            ShareInstanceUpdate {
                status: Some("error".to_owned()),
                ..ShareInstanceUpdate::default()
            },
            vec![],
            at(7),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.get_share_instance(inst.id).await.unwrap(), updated);

    // Several expected statuses; `Some(None)` clears; `None` keeps.
    let cleared = store
        .update_share_instance_if(
            inst.id,
            &["error", "available"],
            ShareInstanceUpdate {
                replica_state: Some(None),
                availability_zone: Some(None),
                share_server_id: Some(None),
                progress: Some(None),
                ..ShareInstanceUpdate::default()
            },
            vec![],
            at(8),
        )
        .await
        .expect("clear");
    assert_eq!(cleared.status, "available");
    assert_eq!(cleared.replica_state, None);
    assert_eq!(cleared.availability_zone, None);
    assert_eq!(cleared.share_server_id, None);
    assert_eq!(cleared.progress, None);
    assert_eq!(cleared.host, "h@b#p");
    assert_eq!(cleared.launched_at, Some(at(4)));
    assert_eq!(cleared.updated_at, Some(at(8)));

    // No expected statuses: any status.
    let any = store
        .update_share_instance_if(
            inst.id,
            &[],
            ShareInstanceUpdate {
                status: Some("error".to_owned()),
                ..ShareInstanceUpdate::default()
            },
            vec![],
            at(9),
        )
        .await
        .expect("any");
    assert_eq!(any.status, "error");

    let err = store
        .update_share_instance_if(
            Uuid::new_v4(),
            &[],
            ShareInstanceUpdate::default(),
            vec![],
            at(9),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}

pub(crate) async fn update_share_instance_if_enqueues_only_when_it_wins<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = Arc::clone(db.store());
    let (_, inst) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    store
        .update_share_instance_if(
            inst.id,
            &[],
            ShareInstanceUpdate {
                status: Some("available".to_owned()),
                ..ShareInstanceUpdate::default()
            },
            vec![],
            at(1),
        )
        .await
        .unwrap();

    // Eight concurrent deletions: exactly one wins and enqueues its operation.
    let tasks: Vec<_> = (0..8)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                store
                    .update_share_instance_if(
                        inst.id,
                        &["available", "error"],
                        ShareInstanceUpdate {
                            status: Some("deleting".to_owned()),
                            ..ShareInstanceUpdate::default()
                        },
                        vec![op_for("delete_share_instance", inst.id, Some("h@b"), i)],
                        at(2),
                    )
                    .await
            })
        })
        .collect();
    let mut won = 0;
    for task in tasks {
        match task.await.expect("join") {
            Ok(row) => {
                assert_eq!(row.status, "deleting");
                won += 1;
            }
            Err(StoreError::Conflict(_)) => {}
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(won, 1);
    let ops = store.list_operations(None).await.unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0].kind, "delete_share_instance");
    assert_eq!(ops[0].host.as_deref(), Some("h@b"));
    db.finish().await;
}

pub(crate) async fn set_share_instance_host_if_unplaced<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (_, inst) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let placed = store
        .set_share_instance_host_if_unplaced(
            inst.id,
            "h@b#p",
            "az9",
            vec![op_for("create_share_instance", inst.id, Some("h@b"), 1)],
            at(1),
        )
        .await
        .expect("place");
    assert_eq!(placed.host, "h@b#p");
    assert_eq!(placed.availability_zone.as_deref(), Some("az9"));
    assert_eq!(placed.scheduled_at, Some(at(1)));
    assert_eq!(placed.updated_at, Some(at(1)));
    assert_eq!(placed.status, "creating");
    assert_eq!(store.list_operations(None).await.unwrap().len(), 1);

    // Already placed: a second scheduler run loses and enqueues nothing.
    let err = store
        .set_share_instance_host_if_unplaced(
            inst.id,
            "other@b#p",
            "az1",
            vec![op_for("create_share_instance", inst.id, Some("other@b"), 2)],
            at(2),
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.list_operations(None).await.unwrap().len(), 1);
    assert_eq!(store.get_share_instance(inst.id).await.unwrap(), placed);

    // Unplaced but no longer creating (e.g. errored by the scheduler).
    let (_, errored) = store.create_share(new_share("p1", 1, 3)).await.unwrap();
    store
        .update_share_instance_if(
            errored.id,
            &["creating"],
            ShareInstanceUpdate {
                status: Some("error".to_owned()),
                ..ShareInstanceUpdate::default()
            },
            vec![],
            at(3),
        )
        .await
        .unwrap();
    let err = store
        .set_share_instance_host_if_unplaced(errored.id, "h@b#p", "az1", vec![], at(4))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .set_share_instance_host_if_unplaced(Uuid::new_v4(), "h@b#p", "az1", vec![], at(4))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}

pub(crate) async fn list_share_instances_on_host_matches_pools_only<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let mut by_host = Vec::new();
    for (i, host) in [
        "h@b#p1", "h@b#p2", "h@bb#p", "h@b", "h_b#x", "x@b#p", "", "h@b$", "h@b#",
    ]
    .iter()
    .enumerate()
    {
        let (_, inst) = store
            .create_share(new_share("p1", 1, i as i64))
            .await
            .unwrap();
        if !host.is_empty() {
            store
                .set_share_instance_host_if_unplaced(inst.id, host, "az1", vec![], at(100))
                .await
                .unwrap();
        }
        by_host.push(inst.id);
    }
    let hosts =
        |rows: Vec<crate::ShareInstanceRow>| rows.into_iter().map(|r| r.host).collect::<Vec<_>>();
    assert_eq!(
        hosts(store.list_share_instances_on_host("h@b").await.unwrap()),
        ["h@b#p1", "h@b#p2", "h@b", "h@b#"]
    );
    // `_` is a LIKE wildcard; it must match only itself.
    assert_eq!(
        hosts(store.list_share_instances_on_host("h_b").await.unwrap()),
        ["h_b#x"]
    );
    assert_eq!(
        hosts(store.list_share_instances_on_host("h@bb").await.unwrap()),
        ["h@bb#p"]
    );
    assert!(
        store
            .list_share_instances_on_host("h")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_share_instances_on_host("")
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(by_host.len(), 9);
    db.finish().await;
}

pub(crate) async fn list_all_share_instances_filters<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let mut ids = Vec::new();
    for (i, host) in ["h@b#p1", "h@b", "h@bb#p", ""].iter().enumerate() {
        let mut new = new_share(if i == 0 { "p1" } else { "p2" }, 1, i as i64);
        if i == 2 {
            new.instance.share_server_id = Some(Uuid::from_u128(7));
        }
        let (_, inst) = store.create_share(new).await.unwrap();
        if !host.is_empty() {
            store
                .set_share_instance_host_if_unplaced(inst.id, host, "az1", vec![], at(100))
                .await
                .unwrap();
        }
        ids.push(inst.id);
    }
    store
        .update_share_instance_if(
            ids[1],
            &[],
            ShareInstanceUpdate {
                status: Some("available".to_owned()),
                ..Default::default()
            },
            vec![],
            at(101),
        )
        .await
        .unwrap();
    let located = store
        .replace_export_locations(
            ids[2],
            vec![
                location("10.0.0.1:/a", true, &[]),
                location("10.0.0.1:/b", false, &[]),
            ],
            at(102),
        )
        .await
        .unwrap();
    let list = |filter: crate::ShareInstanceFilter| {
        let store = store.clone();
        async move {
            store
                .list_all_share_instances(filter)
                .await
                .unwrap()
                .into_iter()
                .map(|r| r.id)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(Default::default()).await,
        ids,
        "every project, creation order"
    );
    let host = |h: &str| crate::ShareInstanceFilter {
        host: Some(h.to_owned()),
        ..Default::default()
    };
    assert_eq!(list(host("h@b")).await, [ids[0], ids[1]]);
    assert_eq!(list(host("h@b#p1")).await, [ids[0]]);
    assert_eq!(list(host("h")).await, Vec::<Uuid>::new());
    assert_eq!(list(host("")).await, ids, "an empty host is no filter");
    assert_eq!(
        list(crate::ShareInstanceFilter {
            status: Some("available".to_owned()),
            ..Default::default()
        })
        .await,
        [ids[1]]
    );
    assert_eq!(
        list(crate::ShareInstanceFilter {
            share_server_id: Some(Uuid::from_u128(7)),
            ..Default::default()
        })
        .await,
        [ids[2]]
    );
    assert_eq!(
        list(crate::ShareInstanceFilter {
            export_location_id: Some(located[1].id),
            ..Default::default()
        })
        .await,
        [ids[2]]
    );
    assert_eq!(
        list(crate::ShareInstanceFilter {
            export_location_path: Some("10.0.0.1:/a".to_owned()),
            ..Default::default()
        })
        .await,
        [ids[2]]
    );
    assert_eq!(
        list(crate::ShareInstanceFilter {
            export_location_path: Some("10.0.0.1:/a".to_owned()),
            export_location_id: Some(located[1].id),
            ..Default::default()
        })
        .await,
        Vec::<Uuid>::new(),
        "both conditions hold on one location, as Manila's join"
    );
    assert_eq!(
        list(crate::ShareInstanceFilter {
            export_location_path: Some("10.0.0.1:/a".to_owned()),
            status: Some("available".to_owned()),
            ..Default::default()
        })
        .await,
        Vec::<Uuid>::new()
    );
    db.finish().await;
}

pub(crate) async fn delete_share_instance_and_maybe_share<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let mut new = new_share("p1", 4, 0);
    new.share.metadata = specs_of(&[("k", "v")]);
    new.quota = quota("p1", &[("shares", 1), ("gigabytes", 4)], &[]);
    let (share, first) = store.create_share(new).await.unwrap();
    let replica = store
        .create_share_instance(
            share.id,
            new_instance(),
            quota(
                "p1",
                &[("share_replicas", 1), ("replica_gigabytes", 4)],
                &[],
            ),
            vec![],
            at(1),
        )
        .await
        .unwrap();
    store
        .replace_export_locations(
            replica.id,
            vec![NewExportLocation {
                path: "10.0.0.1:/r".to_owned(),
                is_admin_only: false,
                preferred: true,
                metadata: specs_of(&[]),
            }],
            at(2),
        )
        .await
        .unwrap();
    let el = store.list_export_locations(replica.id).await.unwrap();
    let rule = store
        .insert_access_rule(super::access::rule_for(
            &share.id,
            &[first.id, replica.id],
            "10.0.0.0/24",
        ))
        .await
        .unwrap();

    // Not the last instance: the share stays, the replica's rows go.
    let removed = store
        .delete_share_instance_and_maybe_share(
            replica.id,
            quota(
                "p1",
                &[("share_replicas", -1), ("replica_gigabytes", -4)],
                &[],
            )
            .into(),
            at(3),
        )
        .await
        .expect("delete replica");
    assert!(!removed);
    let err = store.get_share_instance(replica.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(
        store
            .list_export_locations(replica.id)
            .await
            .unwrap()
            .is_empty()
    );
    let err = store.get_export_location(el[0].id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let rule_now = store.get_access_rule(rule.id).await.unwrap();
    assert_eq!(
        rule_now.instance_states.keys().copied().collect::<Vec<_>>(),
        [first.id]
    );
    assert_eq!(store.get_share(share.id).await.unwrap(), share);
    let usage = store.get_quota_usages("p1").await.unwrap();
    assert_eq!(usage["share_replicas"].in_use, 0);
    assert_eq!(usage["replica_gigabytes"].in_use, 0);
    assert_eq!(usage["shares"].in_use, 1);

    // The last instance takes the share, its metadata and its rules with it.
    let removed = store
        .delete_share_instance_and_maybe_share(
            first.id,
            quota("p1", &[("shares", -1), ("gigabytes", -4)], &[]).into(),
            at(4),
        )
        .await
        .expect("delete last");
    assert!(removed);
    let err = store.get_share(share.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.get_access_rule(rule.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert!(store.list_access_rules(share.id).await.unwrap().is_empty());
    let usage = store.get_quota_usages("p1").await.unwrap();
    assert_eq!(usage["shares"].in_use, 0);
    assert_eq!(usage["gigabytes"].in_use, 0);
    db.finish().await;
}

pub(crate) async fn delete_share_instance_is_idempotent<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (_, keep) = store.create_share(new_share("p1", 2, 0)).await.unwrap();
    let (_, inst) = store.create_share(new_share("p1", 3, 1)).await.unwrap();
    let release = quota("p1", &[("shares", -1), ("gigabytes", -3)], &[]);
    assert!(
        store
            .delete_share_instance_and_maybe_share(inst.id, release.clone().into(), at(2))
            .await
            .unwrap()
    );
    let after_first = store.get_quota_usages("p1").await.unwrap();
    assert_eq!(after_first["shares"].in_use, 1);
    assert_eq!(after_first["gigabytes"].in_use, 2);
    // A retried delete releases nothing more.
    assert!(
        !store
            .delete_share_instance_and_maybe_share(inst.id, release.into(), at(3))
            .await
            .unwrap()
    );
    assert_eq!(store.get_quota_usages("p1").await.unwrap(), after_first);
    assert!(store.get_share_instance(keep.id).await.is_ok());
    db.finish().await;
}

/// A replica delete racing an extend, in either order, leaves `replica_gigabytes` equal to
/// what the remaining replicas hold: the delete releases the size it finds under the share's
/// lock, and the resize's commit corrects its reservation for the replicas it finds.
pub(crate) async fn resize_commit_and_replica_delete_in_either_order<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let replica_state = |state: &str| NewShareInstance {
        replica_state: Some(state.to_owned()),
        ..new_instance()
    };
    let release = || InstanceRelease {
        fixed: quota("p1", &[("share_replicas", -1)], &[]),
        per_gib: [("replica_gigabytes".to_owned(), -1)].into(),
    };
    for delete_first in [true, false] {
        // A 2 GiB share with an active replica and one secondary, charged 2 × 2 GiB.
        let mut new = new_share("p1", 2, 0);
        new.instance = replica_state("active");
        new.quota = quota(
            "p1",
            &[
                ("shares", 1),
                ("gigabytes", 2),
                ("share_replicas", 1),
                ("replica_gigabytes", 2),
            ],
            &[],
        );
        let (share, _) = store.create_share(new).await.unwrap();
        let secondary = store
            .create_share_instance(
                share.id,
                replica_state("in_sync"),
                quota(
                    "p1",
                    &[("share_replicas", 1), ("replica_gigabytes", 2)],
                    &[],
                ),
                vec![],
                at(1),
            )
            .await
            .unwrap();
        let before = store.get_quota_usages("p1").await.unwrap()["replica_gigabytes"].in_use;
        // Extend to 5 GiB, reserved for the two replicas the API saw.
        let reservations = store
            .reserve_quota(
                quota("p1", &[("gigabytes", 3), ("replica_gigabytes", 6)], &[]),
                at(100),
                at(2),
            )
            .await
            .unwrap();
        let commit = ResizeCommit {
            share_id: share.id,
            new_size: 5,
            reservations,
            reserved_replicas: Some(2),
            per_replica_gib: quota("p1", &[("replica_gigabytes", 1)], &[]),
        };
        if delete_first {
            store
                .delete_share_instance_and_maybe_share(secondary.id, release(), at(3))
                .await
                .unwrap();
            store
                .commit_share_resize(commit.clone(), at(4))
                .await
                .unwrap();
        } else {
            store
                .commit_share_resize(commit.clone(), at(3))
                .await
                .unwrap();
            store
                .delete_share_instance_and_maybe_share(secondary.id, release(), at(4))
                .await
                .unwrap();
        }
        // A re-run of the commit changes nothing.
        store.commit_share_resize(commit, at(5)).await.unwrap();
        assert_eq!(store.get_share(share.id).await.unwrap().size_gb, 5);
        let usage = store.get_quota_usages("p1").await.unwrap();
        assert_eq!(
            usage["replica_gigabytes"].in_use - before,
            5 - 4,
            "delete first: {delete_first}: one 5 GiB replica is left of two 2 GiB ones"
        );
        assert_eq!(usage["replica_gigabytes"].reserved, 0);
    }
    db.finish().await;
}

pub(crate) async fn concurrent_deletes_of_last_instances_remove_the_share<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = Arc::clone(db.store());
    for round in 0..4 {
        let (share, first) = store.create_share(new_share("p1", 1, round)).await.unwrap();
        let mut ids = vec![first.id];
        for _ in 0..3 {
            let inst = store
                .create_share_instance(
                    share.id,
                    new_instance(),
                    quota("p1", &[], &[]),
                    vec![],
                    at(round),
                )
                .await
                .unwrap();
            ids.push(inst.id);
        }
        let tasks: Vec<_> = ids
            .into_iter()
            .map(|id| {
                let store = Arc::clone(&store);
                tokio::spawn(async move {
                    store
                        .delete_share_instance_and_maybe_share(
                            id,
                            quota("p1", &[], &[]).into(),
                            at(50),
                        )
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
        assert_eq!(removed, 1, "exactly the last deleter removes the share");
        let err = store.get_share(share.id).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }
    db.finish().await;
}

fn location(path: &str, preferred: bool, meta: &[(&str, &str)]) -> NewExportLocation {
    NewExportLocation {
        path: path.to_owned(),
        is_admin_only: path.starts_with("admin"),
        preferred,
        metadata: specs_of(meta),
    }
}

pub(crate) async fn export_locations_replace_keeps_ids<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (_, inst) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let first = store
        .replace_export_locations(
            inst.id,
            vec![
                location("10.0.0.2:/s", true, &[("speed", "fast")]),
                location("admin:/s", false, &[]),
                location("10.0.0.1:/s", false, &[]),
                location("10.0.0.2:/s", false, &[]),
            ],
            at(1),
        )
        .await
        .expect("replace");
    let paths =
        |rows: &[crate::ExportLocationRow]| rows.iter().map(|r| r.path.clone()).collect::<Vec<_>>();
    assert_eq!(
        paths(&first),
        ["10.0.0.2:/s", "admin:/s", "10.0.0.1:/s"],
        "driver order, duplicates once"
    );
    assert!(first[0].preferred, "first duplicate wins");
    assert_eq!(first[0].metadata, specs_of(&[("speed", "fast")]));
    assert!(first[1].is_admin_only);
    assert_eq!(first[0].share_instance_id, inst.id);
    assert_eq!(first[0].created_at, at(1));
    assert_eq!(first[0].updated_at, Some(at(1)));
    assert_eq!(store.list_export_locations(inst.id).await.unwrap(), first);
    assert_eq!(
        store.get_export_location(first[1].id).await.unwrap(),
        first[1]
    );

    // Keep two paths (new order, new attributes), drop one, add one.
    let second = store
        .replace_export_locations(
            inst.id,
            vec![
                location("10.0.0.1:/s", true, &[("k", "v")]),
                location("10.0.0.3:/s", false, &[]),
                location("10.0.0.2:/s", false, &[]),
            ],
            at(2),
        )
        .await
        .expect("replace again");
    assert_eq!(
        paths(&second),
        ["10.0.0.1:/s", "10.0.0.3:/s", "10.0.0.2:/s"]
    );
    assert_eq!(second[0].id, first[2].id, "unchanged path keeps its id");
    assert_eq!(second[2].id, first[0].id, "unchanged path keeps its id");
    let old_ids: BTreeSet<Uuid> = first.iter().map(|l| l.id).collect();
    assert!(!old_ids.contains(&second[1].id), "new path, new id");
    assert_eq!(second[0].created_at, at(1));
    assert_eq!(second[0].updated_at, Some(at(2)));
    assert!(second[0].preferred);
    assert_eq!(second[0].metadata, specs_of(&[("k", "v")]));
    assert!(!second[2].preferred);
    assert_eq!(second[1].created_at, at(2));
    let err = store.get_export_location(first[1].id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let empty = store
        .replace_export_locations(inst.id, vec![], at(3))
        .await
        .unwrap();
    assert!(empty.is_empty());
    let err = store
        .replace_export_locations(Uuid::new_v4(), vec![], at(3))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.get_export_location(Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}

pub(crate) async fn allocated_gb_by_pool_sums_placed_instances<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    assert!(store.allocated_gb_by_pool().await.unwrap().is_empty());
    let mut place = Vec::new();
    for (size, host, status) in [
        (5, "h@b#p1", "available"),
        (7, "h@b#p1", "creating"),
        (11, "h@b#p2", "error"),
        (13, "h@b#p2", "deleted"),
        (17, "", "creating"),
    ] {
        let (_, inst) = store
            .create_share(new_share("p1", size, size))
            .await
            .unwrap();
        if !host.is_empty() {
            store
                .set_share_instance_host_if_unplaced(inst.id, host, "az1", vec![], at(50))
                .await
                .unwrap();
        }
        store
            .update_share_instance_if(
                inst.id,
                &[],
                ShareInstanceUpdate {
                    status: Some(status.to_owned()),
                    ..ShareInstanceUpdate::default()
                },
                vec![],
                at(51),
            )
            .await
            .unwrap();
        place.push(inst.id);
    }
    let got = store.allocated_gb_by_pool().await.unwrap();
    let want: std::collections::BTreeMap<String, u64> =
        [("h@b#p1".to_owned(), 12), ("h@b#p2".to_owned(), 11)].into();
    assert_eq!(got, want);
    assert_eq!(place.len(), 5);
    db.finish().await;
}
