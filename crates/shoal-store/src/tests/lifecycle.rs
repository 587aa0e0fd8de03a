//! Share lifecycle: the recycle bin (soft delete, restore, expired shares), the export-path
//! lookup of manage, and the completion of a manage.

use super::{at, new_share, quota};
use crate::testing::ForTest;
use crate::{NewExportLocation, ShareInstanceUpdate, StoreError};

const DELETABLE: [&str; 3] = ["available", "error", "inactive"];
const RESTORE_BLOCKERS: [&str; 2] = ["deleting", "error_deleting"];

fn location(path: &str) -> NewExportLocation {
    NewExportLocation {
        path: path.to_owned(),
        is_admin_only: false,
        preferred: true,
        metadata: Default::default(),
    }
}

pub(crate) async fn soft_delete_and_restore_share<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let mut new = new_share("p1", 3, 0);
    new.instance.status = "available".to_owned();
    let (share, _) = store.create_share(new).await.unwrap();
    assert!(!share.is_soft_deleted);
    assert_eq!(share.scheduled_to_be_deleted_at, None);

    let deleted = store
        .soft_delete_share(share.id, &DELETABLE, at(100), at(10))
        .await
        .unwrap();
    assert!(deleted.is_soft_deleted);
    assert_eq!(deleted.scheduled_to_be_deleted_at, Some(at(100)));
    assert_eq!(deleted.updated_at, Some(at(10)));
    assert_eq!(store.get_share(share.id).await.unwrap(), deleted);
    // Listed like any other share: hiding it is the caller's filter.
    assert_eq!(
        store.list_shares(Default::default()).await.unwrap().len(),
        1
    );

    // A second soft delete is a lost compare-and-set.
    let again = store
        .soft_delete_share(share.id, &DELETABLE, at(200), at(20))
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    assert_eq!(
        store
            .get_share(share.id)
            .await
            .unwrap()
            .scheduled_to_be_deleted_at,
        Some(at(100))
    );

    let restored = store
        .restore_share(share.id, &RESTORE_BLOCKERS, at(30))
        .await
        .unwrap();
    assert!(!restored.is_soft_deleted);
    assert_eq!(restored.scheduled_to_be_deleted_at, None);
    assert_eq!(restored.updated_at, Some(at(30)));
    let twice = store
        .restore_share(share.id, &RESTORE_BLOCKERS, at(40))
        .await
        .unwrap_err();
    assert!(matches!(twice, StoreError::Conflict(_)), "{twice:?}");

    let missing = uuid::Uuid::new_v4();
    assert!(matches!(
        store
            .soft_delete_share(missing, &DELETABLE, at(1), at(1))
            .await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.restore_share(missing, &RESTORE_BLOCKERS, at(1)).await,
        Err(StoreError::NotFound(_))
    ));
}

pub(crate) async fn soft_delete_and_restore_check_instance_statuses<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    // A `creating` instance is not deletable: refused, nothing written.
    let (share, instance) = store.create_share(new_share("p1", 1, 0)).await.unwrap();
    let refused = store
        .soft_delete_share(share.id, &DELETABLE, at(100), at(1))
        .await
        .unwrap_err();
    assert!(matches!(refused, StoreError::Conflict(_)), "{refused:?}");
    assert!(!store.get_share(share.id).await.unwrap().is_soft_deleted);

    let update = |status: &str| ShareInstanceUpdate {
        status: Some(status.to_owned()),
        ..Default::default()
    };
    store
        .update_share_instance_if(instance.id, &[], update("error"), Vec::new(), at(2))
        .await
        .unwrap();
    store
        .soft_delete_share(share.id, &DELETABLE, at(100), at(3))
        .await
        .unwrap();
    // Being deleted (the purge started): restore is refused.
    store
        .update_share_instance_if(instance.id, &[], update("deleting"), Vec::new(), at(4))
        .await
        .unwrap();
    let blocked = store
        .restore_share(share.id, &RESTORE_BLOCKERS, at(5))
        .await
        .unwrap_err();
    assert!(matches!(blocked, StoreError::Conflict(_)), "{blocked:?}");
    assert!(store.get_share(share.id).await.unwrap().is_soft_deleted);
}

pub(crate) async fn list_expired_soft_deleted_shares<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let mut ids = Vec::new();
    for (secs, expires) in [(0, Some(50)), (1, Some(20)), (2, None), (3, Some(500))] {
        let mut new = new_share("p1", 1, secs);
        new.instance.status = "available".to_owned();
        let (share, _) = store.create_share(new).await.unwrap();
        if let Some(expires) = expires {
            store
                .soft_delete_share(share.id, &DELETABLE, at(expires), at(secs))
                .await
                .unwrap();
        }
        ids.push(share.id);
    }
    let expired: Vec<_> = store
        .list_expired_soft_deleted_shares(at(50))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    // Earliest expiry first; the boundary is inclusive; live and later shares are not listed.
    assert_eq!(expired, vec![ids[1], ids[0]]);
    assert!(
        store
            .list_expired_soft_deleted_shares(at(19))
            .await
            .unwrap()
            .is_empty()
    );
    store
        .restore_share(ids[1], &RESTORE_BLOCKERS, at(60))
        .await
        .unwrap();
    let after: Vec<_> = store
        .list_expired_soft_deleted_shares(at(1000))
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(after, vec![ids[0], ids[3]]);
}

pub(crate) async fn list_share_instances_by_export_path<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let mut placed = Vec::new();
    for (secs, host) in [(0, "n1@dummy#p1"), (1, "n1@dummy#p2"), (2, "n1@dummy2#p1")] {
        let mut new = new_share("p1", 1, secs);
        new.instance.host = host.to_owned();
        let (_, instance) = store.create_share(new).await.unwrap();
        store
            .replace_export_locations(instance.id, vec![location("10.0.0.1:/data")], at(1))
            .await
            .unwrap();
        placed.push(instance.id);
    }
    let ids =
        |found: Vec<crate::ShareInstanceRow>| found.into_iter().map(|i| i.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store
            .list_share_instances_by_export_path("n1@dummy#p1", "10.0.0.1:/data")
            .await
            .unwrap()),
        vec![placed[0]]
    );
    assert_eq!(
        ids(store
            .list_share_instances_by_export_path("n1@dummy", "10.0.0.1:/data")
            .await
            .unwrap()),
        vec![placed[0], placed[1]]
    );
    assert!(
        store
            .list_share_instances_by_export_path("n1@dummy#p1", "10.0.0.1:/other")
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        store
            .list_share_instances_by_export_path("n1@dummy#p3", "10.0.0.1:/data")
            .await
            .unwrap()
            .is_empty()
    );
}

pub(crate) async fn finish_share_manage_is_compare_and_set<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let mut new = new_share("p1", 1, 0);
    new.instance.status = "manage_starting".to_owned();
    new.instance.host = "n1@dummy#p1".to_owned();
    // Managing charges nothing up front.
    new.quota = quota("p1", &[], &[]);
    let (share, instance) = store.create_share(new).await.unwrap();
    assert!(store.get_quota_usages("p1").await.unwrap().is_empty());

    let update = ShareInstanceUpdate {
        status: Some("available".to_owned()),
        launched_at: Some(at(5)),
        ..Default::default()
    };
    // Over the limit on purpose: the limits given are the ones checked, and Manila allows
    // going over quota here, so the caller passes none.
    let charge = quota("p1", &[("shares", 1), ("gigabytes", 7)], &[]);
    let done = store
        .finish_share_manage(instance.id, 7, charge.clone(), update.clone(), at(5))
        .await
        .unwrap();
    assert_eq!(done.status, "available");
    assert_eq!(done.launched_at, Some(at(5)));
    assert_eq!(store.get_share(share.id).await.unwrap().size_gb, 7);
    let usages = store.get_quota_usages("p1").await.unwrap();
    assert_eq!(usages["shares"].in_use, 1);
    assert_eq!(usages["gigabytes"].in_use, 7);

    // A re-run (crash after the commit) loses the compare-and-set and charges nothing twice.
    let again = store
        .finish_share_manage(instance.id, 9, charge, update.clone(), at(6))
        .await
        .unwrap_err();
    assert!(matches!(again, StoreError::Conflict(_)), "{again:?}");
    assert_eq!(store.get_share(share.id).await.unwrap().size_gb, 7);
    assert_eq!(
        store.get_quota_usages("p1").await.unwrap()["gigabytes"].in_use,
        7
    );

    // A charge over a given limit writes nothing.
    let mut new = new_share("p1", 1, 1);
    new.instance.status = "manage_starting".to_owned();
    new.quota = quota("p1", &[], &[]);
    let (other, other_instance) = store.create_share(new).await.unwrap();
    let over = store
        .finish_share_manage(
            other_instance.id,
            5,
            quota("p1", &[("gigabytes", 5)], &[("gigabytes", 10)]),
            update.clone(),
            at(7),
        )
        .await
        .unwrap_err();
    assert!(matches!(over, StoreError::QuotaExceeded { .. }), "{over:?}");
    assert_eq!(
        store
            .get_share_instance(other_instance.id)
            .await
            .unwrap()
            .status,
        "manage_starting"
    );
    assert_eq!(store.get_share(other.id).await.unwrap().size_gb, 1);

    assert!(matches!(
        store
            .finish_share_manage(
                uuid::Uuid::new_v4(),
                1,
                quota("p1", &[], &[]),
                update,
                at(8)
            )
            .await,
        Err(StoreError::NotFound(_))
    ));
}
