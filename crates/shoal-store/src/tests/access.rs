//! Access rules and their per-instance mappings: allow, state changes, deny, metadata.

use std::collections::BTreeMap;

use uuid::Uuid;

use super::{at, new_instance, new_share, op_for, quota, specs_of};
use crate::testing::ForTest;
use crate::{NewAccessRule, ShareInstanceUpdate, StoreError};

/// An `ip` rule for `to` on `share`, mapped to `instances`, without operations.
pub(crate) fn rule_for(share: &Uuid, instances: &[Uuid], to: &str) -> NewAccessRule {
    NewAccessRule {
        id: Uuid::new_v4(),
        share_id: *share,
        access_type: "ip".to_owned(),
        access_to: to.to_owned(),
        access_level: "rw".to_owned(),
        access_key: None,
        metadata: BTreeMap::new(),
        instance_ids: instances.to_vec(),
        operations: Vec::new(),
        now: at(10),
    }
}

fn states(pairs: &[(Uuid, &str)]) -> BTreeMap<Uuid, String> {
    pairs.iter().map(|(i, s)| (*i, (*s).to_owned())).collect()
}

pub(crate) async fn insert_and_get_access_rule<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share, first) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let second = store
        .create_share_instance(
            share.id,
            new_instance(),
            quota("p1", &[], &[]),
            vec![],
            at(1),
        )
        .await
        .unwrap();
    // The second instance already has a pending rule change: it stays `error`.
    store
        .update_share_instance_if(
            second.id,
            &[],
            ShareInstanceUpdate {
                access_rules_status: Some("error".to_owned()),
                ..ShareInstanceUpdate::default()
            },
            vec![],
            at(2),
        )
        .await
        .unwrap();

    let mut new = rule_for(&share.id, &[first.id, second.id, first.id], "10.0.0.0/24");
    new.access_level = "ro".to_owned();
    new.metadata = specs_of(&[("owner", "ops")]);
    new.operations = vec![
        op_for("update_access", first.id, Some("h@b"), 10),
        op_for("update_access", second.id, Some("h@b"), 10),
    ];
    let rule = store.insert_access_rule(new.clone()).await.expect("insert");
    assert_eq!(rule.id, new.id);
    assert_eq!(rule.share_id, share.id);
    assert_eq!(rule.access_type, "ip");
    assert_eq!(rule.access_to, "10.0.0.0/24");
    assert_eq!(rule.access_level, "ro");
    assert_eq!(rule.access_key, None);
    assert_eq!(rule.metadata, specs_of(&[("owner", "ops")]));
    assert_eq!(rule.created_at, at(10));
    assert_eq!(rule.updated_at, None);
    assert_eq!(
        rule.instance_states,
        states(&[
            (first.id, "queued_to_apply"),
            (second.id, "queued_to_apply")
        ])
    );
    assert_eq!(store.get_access_rule(rule.id).await.unwrap(), rule);
    assert_eq!(store.list_operations(None).await.unwrap().len(), 2);

    // Instances with rules in force start syncing; an errored one stays errored.
    let first_now = store.get_share_instance(first.id).await.unwrap();
    assert_eq!(first_now.access_rules_status, "syncing");
    assert_eq!(first_now.updated_at, Some(at(10)));
    assert_eq!(
        store
            .get_share_instance(second.id)
            .await
            .unwrap()
            .access_rules_status,
        "error"
    );

    let mut later = rule_for(&share.id, &[first.id], "10.0.1.0/24");
    later.now = at(20);
    let later = store.insert_access_rule(later).await.unwrap();
    let mut earlier = rule_for(&share.id, &[], "10.0.2.0/24");
    earlier.now = at(5);
    let earlier = store.insert_access_rule(earlier).await.unwrap();
    assert!(earlier.instance_states.is_empty());
    let listed: Vec<Uuid> = store
        .list_access_rules(share.id)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(listed, [earlier.id, rule.id, later.id]);
    assert!(
        store
            .list_access_rules(Uuid::new_v4())
            .await
            .unwrap()
            .is_empty()
    );
    let err = store.get_access_rule(Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}

pub(crate) async fn access_rule_uniqueness_and_missing_targets<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share, inst) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let (other, other_inst) = store.create_share(new_share("p1", 1, 1)).await.unwrap();
    let rule = store
        .insert_access_rule(rule_for(&share.id, &[inst.id], "10.0.0.1"))
        .await
        .unwrap();

    // Same type and target on the same share.
    let mut dup = rule_for(&share.id, &[inst.id], "10.0.0.1");
    dup.access_level = "ro".to_owned();
    dup.operations = vec![op_for("update_access", inst.id, Some("h@b"), 10)];
    let err = store.insert_access_rule(dup).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // Same id.
    let mut dup = rule_for(&share.id, &[inst.id], "10.0.0.2");
    dup.id = rule.id;
    let err = store.insert_access_rule(dup).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // Another type, or another share, is fine.
    let mut user = rule_for(&share.id, &[inst.id], "10.0.0.1");
    user.access_type = "user".to_owned();
    store.insert_access_rule(user).await.expect("other type");
    store
        .insert_access_rule(rule_for(&other.id, &[other_inst.id], "10.0.0.1"))
        .await
        .expect("other share");

    // Missing share; an instance of another share: nothing is left behind.
    let err = store
        .insert_access_rule(rule_for(&Uuid::new_v4(), &[], "10.0.0.3"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let mut foreign = rule_for(&share.id, &[inst.id, other_inst.id], "10.0.0.4");
    foreign.operations = vec![op_for("update_access", inst.id, Some("h@b"), 10)];
    let err = store.insert_access_rule(foreign.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.get_access_rule(foreign.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let missing = rule_for(&share.id, &[Uuid::new_v4()], "10.0.0.5");
    let err = store.insert_access_rule(missing).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    assert_eq!(store.list_access_rules(share.id).await.unwrap().len(), 2);
    assert!(store.list_operations(None).await.unwrap().is_empty());
    db.finish().await;
}

pub(crate) async fn instance_access_state_is_compare_and_set<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share, inst) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let rule = store
        .insert_access_rule(rule_for(&share.id, &[inst.id], "10.0.0.1"))
        .await
        .unwrap();
    store
        .set_instance_access_state(rule.id, inst.id, &["queued_to_apply"], "applying", at(11))
        .await
        .expect("claim");
    // A second worker loses.
    let err = store
        .set_instance_access_state(rule.id, inst.id, &["queued_to_apply"], "applying", at(12))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    store
        .set_instance_access_state(rule.id, inst.id, &["applying", "error"], "active", at(13))
        .await
        .expect("done");
    assert_eq!(
        store
            .get_access_rule(rule.id)
            .await
            .unwrap()
            .instance_states,
        states(&[(inst.id, "active")])
    );
    // Empty expected list: any state.
    store
        .set_instance_access_state(rule.id, inst.id, &[], "error", at(14))
        .await
        .expect("any");
    assert_eq!(
        store
            .get_access_rule(rule.id)
            .await
            .unwrap()
            .instance_states,
        states(&[(inst.id, "error")])
    );
    let err = store
        .set_instance_access_state(rule.id, Uuid::new_v4(), &[], "active", at(15))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .set_instance_access_state(Uuid::new_v4(), inst.id, &[], "active", at(15))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}

pub(crate) async fn deny_flow_removes_the_rule_with_its_last_mapping<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share, first) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let second = store
        .create_share_instance(
            share.id,
            new_instance(),
            quota("p1", &[], &[]),
            vec![],
            at(1),
        )
        .await
        .unwrap();
    let rule = store
        .insert_access_rule(rule_for(&share.id, &[first.id, second.id], "10.0.0.1"))
        .await
        .unwrap();
    for inst in [first.id, second.id] {
        store
            .set_instance_access_state(rule.id, inst, &[], "active", at(11))
            .await
            .unwrap();
        store
            .update_share_instance_if(
                inst,
                &[],
                ShareInstanceUpdate {
                    access_rules_status: Some("active".to_owned()),
                    ..ShareInstanceUpdate::default()
                },
                vec![],
                at(11),
            )
            .await
            .unwrap();
    }

    let denying = store
        .mark_access_rule_for_deny(
            rule.id,
            vec![
                op_for("update_access", first.id, Some("h@b"), 12),
                op_for("update_access", second.id, Some("h@b"), 12),
            ],
            at(12),
        )
        .await
        .expect("deny");
    assert_eq!(
        denying.instance_states,
        states(&[(first.id, "queued_to_deny"), (second.id, "queued_to_deny")])
    );
    assert_eq!(store.list_operations(None).await.unwrap().len(), 2);
    for inst in [first.id, second.id] {
        assert_eq!(
            store
                .get_share_instance(inst)
                .await
                .unwrap()
                .access_rules_status,
            "syncing"
        );
    }

    store
        .set_instance_access_state(rule.id, first.id, &["queued_to_deny"], "denying", at(13))
        .await
        .unwrap();
    assert!(
        !store
            .remove_instance_access(rule.id, first.id)
            .await
            .expect("first mapping")
    );
    // Removing a mapping twice is harmless.
    assert!(
        !store
            .remove_instance_access(rule.id, first.id)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .get_access_rule(rule.id)
            .await
            .unwrap()
            .instance_states,
        states(&[(second.id, "queued_to_deny")])
    );
    assert!(
        store
            .remove_instance_access(rule.id, second.id)
            .await
            .expect("last mapping")
    );
    let err = store.get_access_rule(rule.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .remove_instance_access(rule.id, second.id)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .mark_access_rule_for_deny(rule.id, vec![op_for("x", share.id, None, 14)], at(14))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.list_operations(None).await.unwrap().len(), 2);

    // The target can be allowed again once the old rule is gone.
    store
        .insert_access_rule(rule_for(&share.id, &[first.id], "10.0.0.1"))
        .await
        .expect("allow again");
    db.finish().await;
}

pub(crate) async fn add_instance_access_rows_for_a_new_instance<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share, first) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let (_, foreign_inst) = store.create_share(new_share("p1", 1, 1)).await.unwrap();
    let a = store
        .insert_access_rule(rule_for(&share.id, &[first.id], "10.0.0.1"))
        .await
        .unwrap();
    let b = store
        .insert_access_rule(rule_for(&share.id, &[first.id], "10.0.0.2"))
        .await
        .unwrap();
    let replica = store
        .create_share_instance(
            share.id,
            new_instance(),
            quota("p1", &[], &[]),
            vec![],
            at(20),
        )
        .await
        .unwrap();

    store
        .add_instance_access_rows(replica.id, &[a.id, b.id], "queued_to_apply", at(21))
        .await
        .expect("map");
    // Retried: existing mappings are kept as they are.
    store
        .set_instance_access_state(a.id, replica.id, &[], "active", at(22))
        .await
        .unwrap();
    store
        .add_instance_access_rows(replica.id, &[a.id, b.id], "queued_to_apply", at(23))
        .await
        .expect("retry");
    assert_eq!(
        store.get_access_rule(a.id).await.unwrap().instance_states,
        states(&[(first.id, "queued_to_apply"), (replica.id, "active")])
    );
    assert_eq!(
        store.get_access_rule(b.id).await.unwrap().instance_states,
        states(&[
            (first.id, "queued_to_apply"),
            (replica.id, "queued_to_apply")
        ])
    );

    let err = store
        .add_instance_access_rows(Uuid::new_v4(), &[a.id], "queued_to_apply", at(24))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .add_instance_access_rows(replica.id, &[Uuid::new_v4()], "queued_to_apply", at(24))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    // A rule of another share cannot be mapped; nothing of the call is kept.
    let err = store
        .add_instance_access_rows(foreign_inst.id, &[a.id], "queued_to_apply", at(24))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    store
        .add_instance_access_rows(replica.id, &[], "queued_to_apply", at(25))
        .await
        .expect("nothing to map");
    db.finish().await;
}

pub(crate) async fn access_rules_go_with_the_share<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share, inst) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let rule = store
        .insert_access_rule(rule_for(&share.id, &[inst.id], "10.0.0.1"))
        .await
        .unwrap();
    assert!(
        store
            .delete_share_instance_and_maybe_share(inst.id, quota("p1", &[], &[]).into(), at(30))
            .await
            .unwrap()
    );
    let err = store.get_access_rule(rule.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    // A new share may use the same target.
    let (again, inst) = store.create_share(new_share("p1", 1, 1)).await.unwrap();
    store
        .insert_access_rule(rule_for(&again.id, &[inst.id], "10.0.0.1"))
        .await
        .expect("fresh share");
    db.finish().await;
}

pub(crate) async fn concurrent_mapping_removals_remove_the_rule_once<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = std::sync::Arc::clone(db.store());
    let (share, first) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let mut instances = vec![first.id];
    for i in 0..3 {
        let inst = store
            .create_share_instance(
                share.id,
                new_instance(),
                quota("p1", &[], &[]),
                vec![],
                at(i),
            )
            .await
            .unwrap();
        instances.push(inst.id);
    }
    for round in 0..4 {
        let rule = store
            .insert_access_rule(rule_for(&share.id, &instances, &format!("10.0.0.{round}")))
            .await
            .unwrap();
        store
            .mark_access_rule_for_deny(rule.id, vec![], at(11))
            .await
            .unwrap();
        let tasks: Vec<_> = instances
            .iter()
            .map(|inst| {
                let store = std::sync::Arc::clone(&store);
                let (rule, inst) = (rule.id, *inst);
                tokio::spawn(async move { store.remove_instance_access(rule, inst).await })
            })
            .collect();
        let mut removed = 0;
        for task in tasks {
            if task.await.expect("join").expect("remove") {
                removed += 1;
            }
        }
        assert_eq!(removed, 1, "exactly the last removal drops the rule");
        let err = store.get_access_rule(rule.id).await.unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    }
    db.finish().await;
}

pub(crate) async fn access_rule_metadata_merge_and_delete<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share, inst) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let mut new = rule_for(&share.id, &[inst.id], "10.0.0.1");
    new.metadata = specs_of(&[("a", "1"), ("keep", "x")]);
    let rule = store.insert_access_rule(new).await.unwrap();
    let other = store
        .insert_access_rule(rule_for(&share.id, &[inst.id], "10.0.0.2"))
        .await
        .unwrap();

    // New keys are added, existing ones overwritten, the others kept.
    let all = store
        .set_access_rule_metadata(rule.id, &specs_of(&[("a", "2"), ("b", "3")]))
        .await
        .expect("set");
    let expected = specs_of(&[("a", "2"), ("b", "3"), ("keep", "x")]);
    assert_eq!(all, expected);
    let read = store.get_access_rule(rule.id).await.unwrap();
    assert_eq!(read.metadata, expected);
    // Metadata is not a change of the rule itself.
    assert_eq!(read.updated_at, None);
    assert_eq!(read.instance_states, rule.instance_states);
    let listed = store.list_access_rules(share.id).await.unwrap();
    let listed_of = |id: Uuid| listed.iter().find(|r| r.id == id).expect("listed").clone();
    assert_eq!(listed_of(rule.id).metadata, expected);
    assert!(
        listed_of(other.id).metadata.is_empty(),
        "another rule is untouched"
    );
    // Nothing to set: nothing changes.
    assert_eq!(
        store
            .set_access_rule_metadata(rule.id, &BTreeMap::new())
            .await
            .unwrap(),
        expected
    );

    store
        .delete_access_rule_metadata_key(rule.id, "a")
        .await
        .expect("delete");
    assert_eq!(
        store.get_access_rule(rule.id).await.unwrap().metadata,
        specs_of(&[("b", "3"), ("keep", "x")])
    );
    // An unknown key, a key of another rule, a key deleted twice.
    for (id, key) in [(rule.id, "a"), (rule.id, "nope"), (other.id, "b")] {
        let err = store
            .delete_access_rule_metadata_key(id, key)
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::NotFound(_)), "{key}: {err:?}");
    }
    // Missing rule.
    let err = store
        .set_access_rule_metadata(Uuid::new_v4(), &specs_of(&[("a", "1")]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .delete_access_rule_metadata_key(Uuid::new_v4(), "b")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // Keys and values are kept as given (case, spaces, non-ASCII, long values).
    let long = "v".repeat(1023);
    let odd = specs_of(&[("B", "Upper"), ("with space", "ü ✓"), ("long", &long)]);
    let all = store
        .set_access_rule_metadata(other.id, &odd)
        .await
        .unwrap();
    assert_eq!(all, odd);
    assert_eq!(store.get_access_rule(other.id).await.unwrap().metadata, odd);
    db.finish().await;
}

pub(crate) async fn access_rule_metadata_goes_with_the_rule<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share, inst) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let rule = store
        .insert_access_rule(rule_for(&share.id, &[inst.id], "10.0.0.1"))
        .await
        .unwrap();
    store
        .set_access_rule_metadata(rule.id, &specs_of(&[("k", "v")]))
        .await
        .unwrap();

    // Denied: the rule goes with its last mapping, and its metadata with it.
    store
        .mark_access_rule_for_deny(rule.id, vec![], at(11))
        .await
        .unwrap();
    assert!(
        store
            .remove_instance_access(rule.id, inst.id)
            .await
            .unwrap()
    );
    let err = store
        .set_access_rule_metadata(rule.id, &specs_of(&[("k", "w")]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .delete_access_rule_metadata_key(rule.id, "k")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    // The same target allowed again starts without metadata.
    let again = store
        .insert_access_rule(rule_for(&share.id, &[inst.id], "10.0.0.1"))
        .await
        .unwrap();
    assert!(
        store
            .get_access_rule(again.id)
            .await
            .unwrap()
            .metadata
            .is_empty()
    );

    // The share's deletion takes rules and metadata along.
    store
        .set_access_rule_metadata(again.id, &specs_of(&[("k", "v")]))
        .await
        .unwrap();
    assert!(
        store
            .delete_share_instance_and_maybe_share(inst.id, quota("p1", &[], &[]).into(), at(30))
            .await
            .unwrap()
    );
    let err = store.get_access_rule(again.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .set_access_rule_metadata(again.id, &specs_of(&[("k", "w")]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}

pub(crate) async fn concurrent_access_rule_metadata_updates_keep_every_key<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = std::sync::Arc::clone(db.store());
    let (share, inst) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let mut new = rule_for(&share.id, &[inst.id], "10.0.0.1");
    new.metadata = (0..8)
        .map(|i| (format!("old{i}"), "x".to_owned()))
        .collect();
    let rule = store.insert_access_rule(new).await.unwrap();
    // Eight writers add a key each while eight others remove a key each: a writer that
    // read the metadata before another committed would put a removed key back or drop
    // an added one.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let s = std::sync::Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            s.set_access_rule_metadata(rule.id, &specs_of(&[(&format!("new{i}"), "y")]))
                .await
                .map(|_| ())
        }));
        let s = std::sync::Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            s.delete_access_rule_metadata_key(rule.id, &format!("old{i}"))
                .await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("update");
    }
    let expected: BTreeMap<String, String> = (0..8)
        .map(|i| (format!("new{i}"), "y".to_owned()))
        .collect();
    assert_eq!(
        store.get_access_rule(rule.id).await.unwrap().metadata,
        expected
    );
    db.finish().await;
}

pub(crate) async fn access_rule_level_update_requeues_the_rule<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let (share, first) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let second = store
        .create_share_instance(
            share.id,
            new_instance(),
            quota("p1", &[], &[]),
            vec![],
            at(1),
        )
        .await
        .unwrap();
    let rule = store
        .insert_access_rule(rule_for(&share.id, &[first.id, second.id], "10.0.0.1"))
        .await
        .unwrap();
    assert_eq!(rule.access_level, "rw");
    store
        .set_instance_access_state(rule.id, first.id, &[], "active", at(11))
        .await
        .unwrap();
    store
        .set_instance_access_state(rule.id, second.id, &[], "queued_to_deny", at(11))
        .await
        .unwrap();
    store
        .update_share_instance_if(
            first.id,
            &[],
            ShareInstanceUpdate {
                access_rules_status: Some("active".to_owned()),
                ..ShareInstanceUpdate::default()
            },
            vec![],
            at(11),
        )
        .await
        .unwrap();
    let ops_before = store.list_operations(None).await.unwrap().len();

    let updated = store
        .update_access_rule_level(
            rule.id,
            "ro",
            vec![op_for("update_access", first.id, Some("h@b"), 12)],
            at(12),
        )
        .await
        .expect("update");
    assert_eq!(updated.access_level, "ro");
    assert_eq!(updated.updated_at, Some(at(12)));
    assert_eq!(
        updated.instance_states,
        states(&[
            (first.id, "queued_to_update"),
            (second.id, "queued_to_deny")
        ]),
        "a mapping being denied stays so"
    );
    assert_eq!(store.get_access_rule(rule.id).await.unwrap(), updated);
    assert_eq!(
        store.list_operations(None).await.unwrap().len(),
        ops_before + 1
    );
    assert_eq!(
        store
            .get_share_instance(first.id)
            .await
            .unwrap()
            .access_rules_status,
        "syncing"
    );
    assert!(matches!(
        store
            .update_access_rule_level(Uuid::new_v4(), "ro", vec![], at(13))
            .await,
        Err(StoreError::NotFound(_))
    ));
    db.finish().await;
}
