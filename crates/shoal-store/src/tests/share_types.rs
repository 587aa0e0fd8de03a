//! Share types, extra specs and project access.

use uuid::Uuid;

use super::{at, new_type, specs_of};
use crate::testing::ForTest;
use crate::{ShareTypeFilter, ShareTypeUpdate, StoreError};

fn names(types: &[crate::ShareTypeRow]) -> Vec<&str> {
    types.iter().map(|t| t.name.as_str()).collect()
}

pub(crate) async fn insert_and_get_share_type<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let new = new_type(
        "gold",
        true,
        &[("driver_handles_share_servers", "False"), ("a", "1")],
    );
    let inserted = store.insert_share_type(new.clone()).await.expect("insert");
    assert_eq!(inserted.id, new.id);
    assert_eq!(inserted.updated_at, None);

    let by_id = store.get_share_type(new.id).await.expect("get");
    assert_eq!(by_id, inserted);
    assert_eq!(by_id.created_at, at(0));
    assert_eq!(by_id.description.as_deref(), Some("gold type"));
    assert_eq!(by_id.extra_specs, new.extra_specs);
    let by_name = store
        .get_share_type_by_name("gold")
        .await
        .expect("get by name");
    assert_eq!(by_name, inserted);

    // A type without specs and without description.
    let mut bare = new_type("bare", false, &[]);
    bare.description = None;
    store
        .insert_share_type(bare.clone())
        .await
        .expect("insert bare");
    let got = store.get_share_type(bare.id).await.expect("get bare");
    assert!(got.extra_specs.is_empty());
    assert_eq!(got.description, None);
    assert!(!got.is_public);
    db.finish().await;
}

pub(crate) async fn duplicate_share_type_conflicts<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    store
        .insert_share_type(new_type("gold", true, &[("a", "1")]))
        .await
        .expect("insert");
    let err = store
        .insert_share_type(new_type("gold", false, &[("b", "2")]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    // The failed insert left nothing behind.
    let all = store
        .list_share_types(ShareTypeFilter::default())
        .await
        .unwrap();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].extra_specs, specs_of(&[("a", "1")]));
    db.finish().await;
}

pub(crate) async fn missing_share_type_is_not_found<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let err = store.get_share_type(Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.get_share_type_by_name("nope").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.delete_share_type(Uuid::new_v4()).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}

pub(crate) async fn list_share_types_is_ordered_with_specs<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    for (name, specs) in [
        ("bronze", vec![("z", "26"), ("a", "1")]),
        ("Gold", vec![]),
        ("alpha", vec![("k", "v")]),
    ] {
        store
            .insert_share_type(new_type(name, true, &specs))
            .await
            .expect("insert");
    }
    let all = store
        .list_share_types(ShareTypeFilter::default())
        .await
        .unwrap();
    // Byte order on both engines ("G" < "a"), whatever the PostgreSQL locale.
    assert_eq!(names(&all), ["Gold", "alpha", "bronze"]);
    assert!(all[0].extra_specs.is_empty());
    assert_eq!(all[1].extra_specs, specs_of(&[("k", "v")]));
    assert_eq!(all[2].extra_specs, specs_of(&[("a", "1"), ("z", "26")]));
    db.finish().await;
}

pub(crate) async fn list_share_types_filters_visibility<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    store
        .insert_share_type(new_type("public", true, &[]))
        .await
        .unwrap();
    let shared = store
        .insert_share_type(new_type("shared", false, &[]))
        .await
        .unwrap();
    store
        .insert_share_type(new_type("secret", false, &[]))
        .await
        .unwrap();
    store
        .add_share_type_access(shared.id, "proj-a")
        .await
        .unwrap();

    let list = |project: Option<&str>, is_public: Option<bool>| {
        let filter = ShareTypeFilter {
            visible_to_project: project.map(str::to_owned),
            is_public,
        };
        async move { store.list_share_types(filter).await.expect("list") }
    };
    assert_eq!(
        names(&list(None, None).await),
        ["public", "secret", "shared"]
    );
    assert_eq!(
        names(&list(Some("proj-a"), None).await),
        ["public", "shared"]
    );
    assert_eq!(names(&list(Some("proj-b"), None).await), ["public"]);
    assert_eq!(names(&list(None, Some(true)).await), ["public"]);
    assert_eq!(names(&list(None, Some(false)).await), ["secret", "shared"]);
    assert_eq!(names(&list(Some("proj-a"), Some(false)).await), ["shared"]);
    assert!(list(Some("proj-b"), Some(false)).await.is_empty());
    db.finish().await;
}

pub(crate) async fn update_share_type<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let gold = new_type("gold", false, &[("a", "1")]);
    store.insert_share_type(gold.clone()).await.unwrap();
    store
        .add_share_type_access(gold.id, "proj-a")
        .await
        .unwrap();
    store
        .insert_share_type(new_type("silver", true, &[]))
        .await
        .unwrap();

    // Rename only: description, flag, specs and access stay.
    let renamed = store
        .update_share_type(
            gold.id,
            ShareTypeUpdate {
                name: Some("platinum".to_owned()),
                ..ShareTypeUpdate::default()
            },
            at(10),
        )
        .await
        .expect("rename");
    assert_eq!(renamed.name, "platinum");
    assert_eq!(renamed.description.as_deref(), Some("gold type"));
    assert!(!renamed.is_public);
    assert_eq!(renamed.extra_specs, specs_of(&[("a", "1")]));
    assert_eq!(renamed.created_at, at(0));
    assert_eq!(renamed.updated_at, Some(at(10)));
    assert_eq!(
        store.list_share_type_access(gold.id).await.unwrap(),
        ["proj-a"]
    );
    let err = store.get_share_type_by_name("gold").await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // Clear the description and make it public.
    let changed = store
        .update_share_type(
            gold.id,
            ShareTypeUpdate {
                description: Some(None),
                is_public: Some(true),
                ..ShareTypeUpdate::default()
            },
            at(20),
        )
        .await
        .expect("update");
    assert_eq!(changed.name, "platinum");
    assert_eq!(changed.description, None);
    assert!(changed.is_public);
    assert_eq!(changed.updated_at, Some(at(20)));

    let taken = ShareTypeUpdate {
        name: Some("silver".to_owned()),
        ..ShareTypeUpdate::default()
    };
    let err = store
        .update_share_type(gold.id, taken.clone(), at(30))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(store.get_share_type(gold.id).await.unwrap(), changed);
    let err = store
        .update_share_type(Uuid::new_v4(), taken, at(30))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}

pub(crate) async fn delete_share_type_cascades<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let new = new_type("gold", false, &[("a", "1")]);
    store.insert_share_type(new.clone()).await.unwrap();
    store.add_share_type_access(new.id, "proj-a").await.unwrap();

    store.delete_share_type(new.id).await.expect("delete");
    let err = store.get_share_type(new.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.delete_share_type(new.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.list_share_type_access(new.id).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // Re-creating with the same id and name shows no leftover specs or access.
    let mut again = new_type("gold", false, &[("b", "2")]);
    again.id = new.id;
    store.insert_share_type(again).await.expect("re-insert");
    let got = store.get_share_type(new.id).await.unwrap();
    assert_eq!(got.extra_specs, specs_of(&[("b", "2")]));
    assert!(
        store
            .list_share_type_access(new.id)
            .await
            .unwrap()
            .is_empty()
    );
    db.finish().await;
}

pub(crate) async fn set_extra_specs_upserts<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let new = new_type("gold", true, &[("a", "1"), ("b", "2")]);
    store.insert_share_type(new.clone()).await.unwrap();

    store
        .set_share_type_extra_specs(new.id, &specs_of(&[("b", "3"), ("c", "4")]))
        .await
        .expect("set");
    let got = store.get_share_type(new.id).await.unwrap();
    assert_eq!(
        got.extra_specs,
        specs_of(&[("a", "1"), ("b", "3"), ("c", "4")])
    );

    // Setting the same values again and setting nothing are both fine.
    store
        .set_share_type_extra_specs(new.id, &specs_of(&[("c", "4")]))
        .await
        .expect("set same");
    store
        .set_share_type_extra_specs(new.id, &specs_of(&[]))
        .await
        .expect("set empty");
    assert_eq!(
        store.get_share_type(new.id).await.unwrap().extra_specs,
        got.extra_specs
    );

    let err = store
        .set_share_type_extra_specs(Uuid::new_v4(), &specs_of(&[("a", "1")]))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}

pub(crate) async fn delete_extra_spec<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let new = new_type("gold", true, &[("a", "1"), ("b", "2")]);
    store.insert_share_type(new.clone()).await.unwrap();

    store
        .delete_share_type_extra_spec(new.id, "a")
        .await
        .expect("delete");
    assert_eq!(
        store.get_share_type(new.id).await.unwrap().extra_specs,
        specs_of(&[("b", "2")])
    );
    let err = store
        .delete_share_type_extra_spec(new.id, "a")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .delete_share_type_extra_spec(Uuid::new_v4(), "b")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}

pub(crate) async fn share_type_access<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let new = new_type("gold", false, &[]);
    store.insert_share_type(new.clone()).await.unwrap();
    let missing = Uuid::new_v4();

    assert!(
        store
            .list_share_type_access(new.id)
            .await
            .unwrap()
            .is_empty()
    );
    store
        .add_share_type_access(new.id, "proj-b")
        .await
        .expect("add b");
    store
        .add_share_type_access(new.id, "proj-a")
        .await
        .expect("add a");
    let err = store
        .add_share_type_access(new.id, "proj-a")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    assert_eq!(
        store.list_share_type_access(new.id).await.unwrap(),
        ["proj-a", "proj-b"]
    );

    store
        .remove_share_type_access(new.id, "proj-a")
        .await
        .expect("remove");
    let err = store
        .remove_share_type_access(new.id, "proj-a")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    assert_eq!(
        store.list_share_type_access(new.id).await.unwrap(),
        ["proj-b"]
    );

    let err = store
        .add_share_type_access(missing, "proj-a")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store
        .remove_share_type_access(missing, "proj-a")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    let err = store.list_share_type_access(missing).await.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
    db.finish().await;
}
