//! Durable operations: enqueue, claim with leases, renew, complete, fail and retry.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::at;
use crate::testing::ForTest;
use crate::{ClaimRequest, NewOperation, OperationState, StoreError};

const LEASE: Duration = Duration::from_secs(30);

fn op(kind: &str, target: &str, host: Option<&str>, secs: i64) -> NewOperation {
    NewOperation {
        kind: kind.to_owned(),
        target_id: target.to_owned(),
        host: host.map(str::to_owned),
        payload: json!({"target": target, "size": 1}),
        now: at(secs),
    }
}

fn claim<'a>(worker: &'a str, host: Option<&'a str>, secs: i64) -> ClaimRequest<'a> {
    ClaimRequest {
        worker,
        host,
        kinds: None,
        now: at(secs),
        lease: LEASE,
    }
}

pub(crate) async fn insert_and_get_operation<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let new = op("create_share_instance", "inst-1", Some("h1@local"), 0);
    let row = store.insert_operation(new.clone()).await.expect("insert");
    assert_eq!(row.kind, new.kind);
    assert_eq!(row.target_id, "inst-1");
    assert_eq!(row.host.as_deref(), Some("h1@local"));
    assert_eq!(row.payload, new.payload);
    assert_eq!(row.state, OperationState::Pending);
    assert_eq!(row.attempts, 0);
    assert_eq!(row.claimed_by, None);
    assert_eq!(row.lease_until, None);
    assert_eq!(row.not_before, None);
    assert_eq!(row.last_error, None);
    assert_eq!(row.created_at, at(0));
    assert_eq!(row.updated_at, at(0));
    assert_eq!(store.get_operation(row.id).await.expect("get"), row);

    let next = store
        .insert_operation(op("schedule", "s", None, 0))
        .await
        .unwrap();
    assert!(next.id > row.id, "ids increase");
    let err = store.get_operation(next.id + 100).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}

pub(crate) async fn claim_returns_oldest_for_the_right_host<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let a1 = store
        .insert_operation(op("create", "1", Some("A"), 0))
        .await
        .unwrap();
    let sched = store
        .insert_operation(op("schedule", "2", None, 0))
        .await
        .unwrap();
    let a2 = store
        .insert_operation(op("delete", "3", Some("A"), 0))
        .await
        .unwrap();
    let b1 = store
        .insert_operation(op("create", "4", Some("B"), 0))
        .await
        .unwrap();

    let got = store
        .claim_next_operation(claim("wa", Some("A"), 5))
        .await
        .unwrap()
        .expect("a1");
    assert_eq!(got.id, a1.id);
    assert_eq!(got.state, OperationState::Running);
    assert_eq!(got.claimed_by.as_deref(), Some("wa"));
    assert_eq!(got.attempts, 1);
    assert_eq!(got.lease_until, Some(at(35)));
    assert_eq!(got.updated_at, at(5));
    assert_eq!(store.get_operation(a1.id).await.unwrap(), got);

    let got = store
        .claim_next_operation(claim("wa", Some("A"), 5))
        .await
        .unwrap()
        .expect("a2");
    assert_eq!(got.id, a2.id);
    assert!(
        store
            .claim_next_operation(claim("wa", Some("A"), 5))
            .await
            .unwrap()
            .is_none()
    );

    // Scheduler work is the host-less queue.
    let got = store
        .claim_next_operation(claim("ws", None, 5))
        .await
        .unwrap()
        .expect("sched");
    assert_eq!(got.id, sched.id);
    assert!(
        store
            .claim_next_operation(claim("ws", None, 5))
            .await
            .unwrap()
            .is_none()
    );

    // Kind filter.
    let only_delete: &[&str] = &["delete"];
    let none: &[&str] = &[];
    let both: &[&str] = &["delete", "create"];
    let mut req = claim("wb", Some("B"), 5);
    req.kinds = Some(only_delete);
    assert!(store.claim_next_operation(req).await.unwrap().is_none());
    req.kinds = Some(none);
    assert!(store.claim_next_operation(req).await.unwrap().is_none());
    req.kinds = Some(both);
    let got = store.claim_next_operation(req).await.unwrap().expect("b1");
    assert_eq!(got.id, b1.id);
    db.finish().await;
}

pub(crate) async fn concurrent_claims_never_share_an_operation<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = Arc::clone(db.store());
    let mut expected = BTreeSet::new();
    for i in 0..5 {
        let row = store
            .insert_operation(op("create", &i.to_string(), Some("A"), 0))
            .await
            .unwrap();
        expected.insert(row.id);
    }
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let worker = format!("w{i}");
                let mut mine = Vec::new();
                while let Some(row) = store
                    .claim_next_operation(claim(&worker, Some("A"), 1))
                    .await
                    .expect("claim")
                {
                    assert_eq!(row.claimed_by.as_deref(), Some(worker.as_str()));
                    mine.push(row.id);
                }
                mine
            })
        })
        .collect();
    let mut claimed = Vec::new();
    for task in tasks {
        claimed.extend(task.await.expect("join"));
    }
    claimed.sort_unstable();
    let unique: BTreeSet<i64> = claimed.iter().copied().collect();
    assert_eq!(
        unique.len(),
        claimed.len(),
        "an operation was claimed twice: {claimed:?}"
    );
    // A claimer may give up after losing many races, so re-drain sequentially.
    let mut all = unique;
    while let Some(row) = store
        .claim_next_operation(claim("late", Some("A"), 1))
        .await
        .unwrap()
    {
        assert!(all.insert(row.id), "claimed twice: {}", row.id);
    }
    assert_eq!(all, expected);
    for row in store.list_operations(None).await.unwrap() {
        assert_eq!(row.state, OperationState::Running);
        assert_eq!(row.attempts, 1, "op {} claimed more than once", row.id);
    }
    db.finish().await;
}

pub(crate) async fn expired_lease_is_reclaimed_and_old_worker_conflicts<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let new = store
        .insert_operation(op("create", "1", Some("A"), 0))
        .await
        .unwrap();
    let first = store
        .claim_next_operation(claim("w1", Some("A"), 0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.lease_until, Some(at(30)));

    // Still leased: nobody else gets it.
    assert!(
        store
            .claim_next_operation(claim("w2", Some("A"), 29))
            .await
            .unwrap()
            .is_none()
    );
    // Expired: w2 takes over.
    let second = store
        .claim_next_operation(claim("w2", Some("A"), 31))
        .await
        .unwrap()
        .expect("reclaim");
    assert_eq!(second.id, new.id);
    assert_eq!(second.claimed_by.as_deref(), Some("w2"));
    assert_eq!(second.attempts, 2);
    assert_eq!(second.lease_until, Some(at(61)));

    // The old worker lost every compare-and-set.
    let err = store
        .complete_operation(new.id, "w1", at(32))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .renew_operation_lease(new.id, "w1", at(32), LEASE)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .fail_operation(new.id, "w1", "boom", None, at(32))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    let done = store
        .complete_operation(new.id, "w2", at(40))
        .await
        .expect("complete");
    assert_eq!(done.state, OperationState::Done);
    assert_eq!(done.lease_until, None);
    assert_eq!(done.updated_at, at(40));
    // Completing twice is a lost CAS too; an unknown id is NotFound.
    let err = store
        .complete_operation(new.id, "w2", at(41))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let err = store
        .complete_operation(new.id + 100, "w2", at(41))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .renew_operation_lease(new.id + 100, "w2", at(41), LEASE)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    // Done work is never claimed again, even long after.
    assert!(
        store
            .claim_next_operation(claim("w3", Some("A"), 10_000))
            .await
            .unwrap()
            .is_none()
    );
    db.finish().await;
}

pub(crate) async fn renew_extends_the_lease<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let new = store
        .insert_operation(op("create", "1", None, 0))
        .await
        .unwrap();
    store
        .claim_next_operation(claim("w1", None, 0))
        .await
        .unwrap()
        .expect("claim");
    let renewed = store
        .renew_operation_lease(new.id, "w1", at(20), LEASE)
        .await
        .expect("renew");
    assert_eq!(renewed.lease_until, Some(at(50)));
    assert_eq!(renewed.updated_at, at(20));
    assert_eq!(renewed.attempts, 1, "renewing is not a new attempt");
    // Past the original lease but inside the renewed one.
    assert!(
        store
            .claim_next_operation(claim("w2", None, 40))
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        store
            .claim_next_operation(claim("w2", None, 51))
            .await
            .unwrap()
            .is_some()
    );
    db.finish().await;
}

pub(crate) async fn fail_with_retry_respects_not_before<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let new = store
        .insert_operation(op("create", "1", Some("A"), 0))
        .await
        .unwrap();
    store
        .claim_next_operation(claim("w1", Some("A"), 0))
        .await
        .unwrap()
        .expect("claim");

    let retried = store
        .fail_operation(new.id, "w1", "backend busy", Some(at(60)), at(1))
        .await
        .expect("fail with retry");
    assert_eq!(retried.state, OperationState::Pending);
    assert_eq!(retried.not_before, Some(at(60)));
    assert_eq!(retried.claimed_by, None);
    assert_eq!(retried.lease_until, None);
    assert_eq!(retried.last_error.as_deref(), Some("backend busy"));
    assert_eq!(store.count_unfinished_operations().await.unwrap(), 1);

    assert!(
        store
            .claim_next_operation(claim("w2", Some("A"), 59))
            .await
            .unwrap()
            .is_none()
    );
    let again = store
        .claim_next_operation(claim("w2", Some("A"), 60))
        .await
        .unwrap()
        .expect("claimable at not_before");
    assert_eq!(again.attempts, 2);
    assert_eq!(again.claimed_by.as_deref(), Some("w2"));

    let failed = store
        .fail_operation(new.id, "w2", "gave up", None, at(61))
        .await
        .expect("fail for good");
    assert_eq!(failed.state, OperationState::Failed);
    assert_eq!(failed.claimed_by.as_deref(), Some("w2"));
    assert_eq!(failed.last_error.as_deref(), Some("gave up"));
    assert_eq!(failed.lease_until, None);
    assert!(
        store
            .claim_next_operation(claim("w3", Some("A"), 10_000))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(store.count_unfinished_operations().await.unwrap(), 0);
    db.finish().await;
}

pub(crate) async fn list_and_count_operations<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    assert_eq!(store.count_unfinished_operations().await.unwrap(), 0);
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(
            store
                .insert_operation(op("k", &i.to_string(), None, i))
                .await
                .unwrap()
                .id,
        );
    }
    // 0 → done, 1 → running, 2 → failed, 3 stays pending.
    for worker in ["w0", "w1", "w2"] {
        store
            .claim_next_operation(claim(worker, None, 10))
            .await
            .unwrap()
            .expect("claim");
    }
    store
        .complete_operation(ids[0], "w0", at(11))
        .await
        .unwrap();
    store
        .fail_operation(ids[2], "w2", "bad", None, at(11))
        .await
        .unwrap();

    let by_state = |state| async move {
        store
            .list_operations(Some(state))
            .await
            .expect("list")
            .into_iter()
            .map(|o| o.id)
            .collect::<Vec<_>>()
    };
    assert_eq!(by_state(OperationState::Done).await, [ids[0]]);
    assert_eq!(by_state(OperationState::Running).await, [ids[1]]);
    assert_eq!(by_state(OperationState::Failed).await, [ids[2]]);
    assert_eq!(by_state(OperationState::Pending).await, [ids[3]]);
    let all: Vec<i64> = store
        .list_operations(None)
        .await
        .unwrap()
        .into_iter()
        .map(|o| o.id)
        .collect();
    assert_eq!(all, ids);
    assert_eq!(store.count_unfinished_operations().await.unwrap(), 2);

    store
        .insert_operation(op("another", "9", None, 12))
        .await
        .unwrap();
    let counts: Vec<(String, OperationState, i64)> = store
        .count_operations_by_kind()
        .await
        .unwrap()
        .into_iter()
        .map(|c| (c.kind, c.state, c.count))
        .collect();
    assert_eq!(
        counts,
        [
            ("another".to_owned(), OperationState::Pending, 1),
            ("k".to_owned(), OperationState::Done, 1),
            ("k".to_owned(), OperationState::Failed, 1),
            ("k".to_owned(), OperationState::Pending, 1),
            ("k".to_owned(), OperationState::Running, 1),
        ]
    );
    db.finish().await;
}

/// The housekeeping purge: finished operations older than the cut are deleted, in batches
/// when there are many; newer finished ones and unfinished ones of any age stay.
pub(crate) async fn delete_finished_operations_keeps_unfinished_and_recent<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    // 2,500 finished at t=11 (more than two batches), one running, one pending.
    let mut old = Vec::new();
    for i in 0..2_502 {
        old.push(
            store
                .insert_operation(op("old", &i.to_string(), None, 1))
                .await
                .unwrap()
                .id,
        );
    }
    for i in 0..2_501 {
        let worker = format!("w{i}");
        let claimed = store
            .claim_next_operation(claim(&worker, None, 10))
            .await
            .unwrap()
            .expect("claim");
        if i < 2_500 {
            store
                .complete_operation(claimed.id, &worker, at(11))
                .await
                .unwrap();
        }
    }
    // One more finished later, at t=30.
    let recent = store
        .insert_operation(op("recent", "r", None, 20))
        .await
        .unwrap()
        .id;
    let claimed = store
        .claim_next_operation(ClaimRequest {
            kinds: Some(&["recent"]),
            ..claim("wr", None, 25)
        })
        .await
        .unwrap()
        .expect("claim");
    assert_eq!(claimed.id, recent);
    store
        .fail_operation(recent, "wr", "bad", None, at(30))
        .await
        .unwrap();

    assert_eq!(
        store.delete_finished_operations(at(20)).await.unwrap(),
        2_500
    );
    let left: Vec<(i64, OperationState)> = store
        .list_operations(None)
        .await
        .unwrap()
        .into_iter()
        .map(|o| (o.id, o.state))
        .collect();
    assert_eq!(
        left,
        [
            (old[2_500], OperationState::Running),
            (old[2_501], OperationState::Pending),
            (recent, OperationState::Failed),
        ]
    );
    // Again: nothing more to delete before t=20; the failed one goes with a later cut.
    assert_eq!(store.delete_finished_operations(at(20)).await.unwrap(), 0);
    assert_eq!(store.delete_finished_operations(at(31)).await.unwrap(), 1);
    assert_eq!(store.count_unfinished_operations().await.unwrap(), 2);
    db.finish().await;
}
