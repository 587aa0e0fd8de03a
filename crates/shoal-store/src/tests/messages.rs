//! User messages.

use uuid::Uuid;

use super::at;
use crate::testing::ForTest;
use crate::{MessageRow, StoreError};

fn message(project: &str, secs: i64, ttl: i64) -> MessageRow {
    MessageRow {
        id: Uuid::new_v4(),
        project_id: project.to_owned(),
        request_id: Some(format!("req-{secs}")),
        resource_type: "SHARE".to_owned(),
        resource_id: Some(Uuid::new_v4().to_string()),
        action_id: "001".to_owned(),
        detail_id: "008".to_owned(),
        message_level: "ERROR".to_owned(),
        created_at: at(secs),
        expires_at: at(secs + ttl),
    }
}

pub(crate) async fn insert_get_list_delete_messages<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let late = message("p1", 20, 100);
    let early = message("p1", 10, 100);
    let mut other = message("p2", 15, 100);
    other.request_id = None;
    other.resource_id = None;
    for m in [&late, &early, &other] {
        store.insert_message(m.clone()).await.expect("insert");
    }
    let err = store.insert_message(early.clone()).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    assert_eq!(store.get_message(early.id).await.unwrap(), early);
    assert_eq!(store.get_message(other.id).await.unwrap(), other);
    assert_eq!(
        store.list_messages(Some("p1")).await.unwrap(),
        [early.clone(), late.clone()]
    );
    assert_eq!(
        store.list_messages(None).await.unwrap(),
        [early.clone(), other.clone(), late.clone()]
    );
    assert!(store.list_messages(Some("p3")).await.unwrap().is_empty());

    store.delete_message(early.id).await.expect("delete");
    let err = store.delete_message(early.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.get_message(early.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(store.list_messages(Some("p1")).await.unwrap(), [late]);
    db.finish().await;
}

pub(crate) async fn delete_expired_messages<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let short = message("p1", 0, 10);
    let long = message("p1", 0, 100);
    let other = message("p2", 5, 10);
    for m in [&short, &long, &other] {
        store.insert_message(m.clone()).await.unwrap();
    }
    assert_eq!(store.delete_expired_messages(at(10)).await.unwrap(), 0);
    assert_eq!(store.delete_expired_messages(at(11)).await.unwrap(), 1);
    assert_eq!(
        store.list_messages(None).await.unwrap(),
        [long.clone(), other]
    );
    assert_eq!(store.delete_expired_messages(at(16)).await.unwrap(), 1);
    assert_eq!(store.list_messages(None).await.unwrap(), [long]);
    db.finish().await;
}
