//! Built-in identity: projects, users, role assignments, token revocations, the signing key.

use std::sync::Arc;

use uuid::Uuid;

use super::at;
use crate::testing::ForTest;
use crate::{
    IdentityProjectRow, IdentityUserRow, IdentityUserUpdate, NewIdentityProject, NewIdentityUser,
    RoleAssignmentRow, StoreError,
};

/// A fresh Keystone-style id: 32 lowercase hex characters.
fn hex_id() -> String {
    Uuid::new_v4().simple().to_string()
}

fn project(domain: &str, name: &str, secs: i64) -> NewIdentityProject {
    NewIdentityProject {
        id: hex_id(),
        name: name.to_owned(),
        domain_id: domain.to_owned(),
        description: format!("{name} project"),
        enabled: true,
        created_at: at(secs),
    }
}

fn user(domain: &str, name: &str, default_project: Option<&str>, secs: i64) -> NewIdentityUser {
    NewIdentityUser {
        id: hex_id(),
        name: name.to_owned(),
        domain_id: domain.to_owned(),
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${name}-hash"),
        enabled: true,
        default_project_id: default_project.map(str::to_owned),
        created_at: at(secs),
    }
}

fn assert_not_found<T: std::fmt::Debug>(result: crate::Result<T>) {
    let err = result.unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");
}

fn assert_conflict<T: std::fmt::Debug>(result: crate::Result<T>) {
    let err = result.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
}

pub(crate) async fn identity_projects_insert_get_list_delete<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let new = project("default", "service", 0);
    let created = store.insert_identity_project(new.clone()).await.unwrap();
    assert_eq!(
        created,
        IdentityProjectRow {
            id: new.id.clone(),
            name: "service".to_owned(),
            domain_id: "default".to_owned(),
            description: "service project".to_owned(),
            enabled: true,
            created_at: at(0),
        }
    );
    assert_eq!(store.get_identity_project(&new.id).await.unwrap(), created);
    assert_eq!(
        store
            .get_identity_project_by_name("default", "service")
            .await
            .unwrap(),
        created
    );

    // The same name is taken in its domain, free in another; a taken id conflicts too.
    assert_conflict(
        store
            .insert_identity_project(project("default", "service", 1))
            .await,
    );
    let mut same_id = project("default", "other", 1);
    same_id.id = new.id.clone();
    assert_conflict(store.insert_identity_project(same_id).await);
    let mut elsewhere = project("ops", "service", 2);
    elsewhere.enabled = false;
    elsewhere.description = String::new();
    let elsewhere = store.insert_identity_project(elsewhere).await.unwrap();
    assert!(!elsewhere.enabled);
    assert_eq!(elsewhere.description, "");
    let admin = store
        .insert_identity_project(project("default", "admin", 3))
        .await
        .unwrap();

    assert_eq!(
        store.list_identity_projects().await.unwrap(),
        [admin.clone(), created.clone(), elsewhere.clone()]
    );
    assert_not_found(store.get_identity_project(&hex_id()).await);
    assert_not_found(store.get_identity_project_by_name("ops", "admin").await);
    assert_not_found(store.get_identity_project_by_name("nope", "service").await);

    store.delete_identity_project(&admin.id).await.unwrap();
    assert_not_found(store.delete_identity_project(&admin.id).await);
    assert_not_found(store.get_identity_project(&admin.id).await);
    assert_eq!(
        store.list_identity_projects().await.unwrap(),
        [created, elsewhere]
    );
    db.finish().await;
}

pub(crate) async fn identity_users_insert_get_list_delete<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let home = store
        .insert_identity_project(project("default", "home", 0))
        .await
        .unwrap();
    let new = user("default", "alice", Some(&home.id), 5);
    let alice = store.insert_identity_user(new.clone()).await.unwrap();
    assert_eq!(
        alice,
        IdentityUserRow {
            id: new.id.clone(),
            name: "alice".to_owned(),
            domain_id: "default".to_owned(),
            password_hash: new.password_hash.clone(),
            enabled: true,
            default_project_id: Some(home.id.clone()),
            tokens_valid_after: at(5),
            created_at: at(5),
            updated_at: at(5),
        }
    );
    assert_eq!(store.get_identity_user(&new.id).await.unwrap(), alice);
    assert_eq!(
        store
            .get_identity_user_by_name("default", "alice")
            .await
            .unwrap(),
        alice
    );

    assert_conflict(
        store
            .insert_identity_user(user("default", "alice", None, 6))
            .await,
    );
    let mut same_id = user("default", "carol", None, 6);
    same_id.id = new.id.clone();
    assert_conflict(store.insert_identity_user(same_id).await);
    assert_not_found(
        store
            .insert_identity_user(user("default", "dave", Some(&hex_id()), 6))
            .await,
    );
    let other_alice = store
        .insert_identity_user(user("ops", "alice", None, 7))
        .await
        .unwrap();
    assert_eq!(other_alice.default_project_id, None);
    let bob = store
        .insert_identity_user(user("default", "bob", None, 8))
        .await
        .unwrap();

    assert_eq!(
        store.list_identity_users().await.unwrap(),
        [alice.clone(), bob.clone(), other_alice.clone()]
    );
    assert_not_found(store.get_identity_user(&hex_id()).await);
    assert_not_found(store.get_identity_user_by_name("ops", "bob").await);
    assert_not_found(store.get_identity_user_by_name("default", "dave").await);

    store.delete_identity_user(&bob.id).await.unwrap();
    assert_not_found(store.delete_identity_user(&bob.id).await);
    assert_not_found(store.get_identity_user(&bob.id).await);
    assert_eq!(
        store.list_identity_users().await.unwrap(),
        [alice, other_alice]
    );
    db.finish().await;
}

pub(crate) async fn update_identity_user_applies_only_given_fields<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let first = store
        .insert_identity_project(project("default", "first", 0))
        .await
        .unwrap();
    let second = store
        .insert_identity_project(project("default", "second", 0))
        .await
        .unwrap();
    let alice = store
        .insert_identity_user(user("default", "alice", Some(&first.id), 1))
        .await
        .unwrap();

    // Nothing given: only `updated_at` moves.
    let touched = store
        .update_identity_user(&alice.id, IdentityUserUpdate::default(), at(10))
        .await
        .unwrap();
    assert_eq!(
        touched,
        IdentityUserRow {
            updated_at: at(10),
            ..alice.clone()
        }
    );

    // A password change with its token cut-off.
    let changed = store
        .update_identity_user(
            &alice.id,
            IdentityUserUpdate {
                password_hash: Some("$argon2id$new".to_owned()),
                tokens_valid_after: Some(at(20)),
                ..IdentityUserUpdate::default()
            },
            at(20),
        )
        .await
        .unwrap();
    let expected = IdentityUserRow {
        password_hash: "$argon2id$new".to_owned(),
        tokens_valid_after: at(20),
        updated_at: at(20),
        ..alice.clone()
    };
    assert_eq!(changed, expected);
    assert_eq!(store.get_identity_user(&alice.id).await.unwrap(), expected);

    // Disable and move the default project; then clear it.
    let moved = store
        .update_identity_user(
            &alice.id,
            IdentityUserUpdate {
                enabled: Some(false),
                default_project_id: Some(Some(second.id.clone())),
                ..IdentityUserUpdate::default()
            },
            at(30),
        )
        .await
        .unwrap();
    let expected = IdentityUserRow {
        enabled: false,
        default_project_id: Some(second.id.clone()),
        updated_at: at(30),
        ..expected
    };
    assert_eq!(moved, expected);
    let cleared = store
        .update_identity_user(
            &alice.id,
            IdentityUserUpdate {
                default_project_id: Some(None),
                ..IdentityUserUpdate::default()
            },
            at(40),
        )
        .await
        .unwrap();
    let expected = IdentityUserRow {
        default_project_id: None,
        updated_at: at(40),
        ..expected
    };
    assert_eq!(cleared, expected);

    // A rename; a name another user of the domain holds is a Conflict that changes nothing.
    let renamed = store
        .update_identity_user(
            &alice.id,
            IdentityUserUpdate {
                name: Some("alicia".to_owned()),
                ..IdentityUserUpdate::default()
            },
            at(45),
        )
        .await
        .unwrap();
    let expected = IdentityUserRow {
        name: "alicia".to_owned(),
        updated_at: at(45),
        ..expected
    };
    assert_eq!(renamed, expected);
    store
        .insert_identity_user(user("default", "bob", None, 2))
        .await
        .unwrap();
    let taken = store
        .update_identity_user(
            &alice.id,
            IdentityUserUpdate {
                name: Some("bob".to_owned()),
                enabled: Some(true),
                ..IdentityUserUpdate::default()
            },
            at(46),
        )
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(store.get_identity_user(&alice.id).await.unwrap(), expected);

    // A missing default project or user is NotFound, and changes nothing.
    assert_not_found(
        store
            .update_identity_user(
                &alice.id,
                IdentityUserUpdate {
                    enabled: Some(true),
                    default_project_id: Some(Some(hex_id())),
                    ..IdentityUserUpdate::default()
                },
                at(50),
            )
            .await,
    );
    assert_eq!(store.get_identity_user(&alice.id).await.unwrap(), expected);
    assert_not_found(
        store
            .update_identity_user(&hex_id(), IdentityUserUpdate::default(), at(50))
            .await,
    );
    db.finish().await;
}

pub(crate) async fn identity_password_hash_is_redacted_in_debug<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let new = user("default", "alice", None, 0);
    let secret = new.password_hash.clone();
    let row = store.insert_identity_user(new.clone()).await.unwrap();
    let update = IdentityUserUpdate {
        password_hash: Some(secret.clone()),
        ..IdentityUserUpdate::default()
    };
    for shown in [
        format!("{new:?}"),
        format!("{row:?}"),
        format!("{row:#?}"),
        format!("{update:?}"),
    ] {
        assert!(!shown.contains(&secret), "{shown}");
        assert!(!shown.contains("argon2"), "{shown}");
        assert!(shown.contains("\"<redacted>\""), "{shown}");
        assert!(shown.contains("password_hash"), "{shown}");
    }
    let shown = format!("{row:?}");
    assert!(
        shown.contains(&row.id) && shown.contains("alice"),
        "{shown}"
    );
    let unchanged = format!("{:?}", IdentityUserUpdate::default());
    assert!(unchanged.contains("password_hash: None"), "{unchanged}");
    db.finish().await;
}

pub(crate) async fn identity_roles_grant_list_revoke<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let p1 = store
        .insert_identity_project(project("default", "p1", 0))
        .await
        .unwrap();
    let p2 = store
        .insert_identity_project(project("default", "p2", 0))
        .await
        .unwrap();
    let alice = store
        .insert_identity_user(user("default", "alice", None, 0))
        .await
        .unwrap();

    for role in ["reader", "admin", "member", "admin"] {
        store
            .grant_identity_role(&alice.id, &p1.id, role)
            .await
            .unwrap();
    }
    store
        .grant_identity_role(&alice.id, &p2.id, "reader")
        .await
        .unwrap();
    assert_eq!(
        store.list_identity_roles(&alice.id, &p1.id).await.unwrap(),
        ["admin", "member", "reader"]
    );
    assert_eq!(
        store.list_identity_roles(&alice.id, &p2.id).await.unwrap(),
        ["reader"]
    );
    assert!(
        store
            .list_identity_roles(&alice.id, &hex_id())
            .await
            .unwrap()
            .is_empty()
    );

    assert_not_found(store.grant_identity_role(&hex_id(), &p1.id, "admin").await);
    assert_not_found(
        store
            .grant_identity_role(&alice.id, &hex_id(), "admin")
            .await,
    );

    store
        .revoke_identity_role(&alice.id, &p1.id, "member")
        .await
        .unwrap();
    assert_not_found(
        store
            .revoke_identity_role(&alice.id, &p1.id, "member")
            .await,
    );
    assert_not_found(store.revoke_identity_role(&alice.id, &p2.id, "admin").await);
    assert_eq!(
        store.list_identity_roles(&alice.id, &p1.id).await.unwrap(),
        ["admin", "reader"]
    );

    let assignment = |project_id: &str, role: &str| RoleAssignmentRow {
        user_id: alice.id.clone(),
        project_id: project_id.to_owned(),
        role: role.to_owned(),
    };
    let mut expected = vec![
        assignment(&p1.id, "admin"),
        assignment(&p1.id, "reader"),
        assignment(&p2.id, "reader"),
    ];
    expected.sort_by(|a, b| (&a.project_id, &a.role).cmp(&(&b.project_id, &b.role)));
    assert_eq!(
        store.list_identity_role_assignments().await.unwrap(),
        expected
    );
    db.finish().await;
}

pub(crate) async fn identity_assignments_go_with_user_and_project<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let p1 = store
        .insert_identity_project(project("default", "p1", 0))
        .await
        .unwrap();
    let p2 = store
        .insert_identity_project(project("default", "p2", 0))
        .await
        .unwrap();
    let alice = store
        .insert_identity_user(user("default", "alice", Some(&p1.id), 0))
        .await
        .unwrap();
    let bob = store
        .insert_identity_user(user("default", "bob", Some(&p2.id), 0))
        .await
        .unwrap();
    for u in [&alice, &bob] {
        for p in [&p1, &p2] {
            store
                .grant_identity_role(&u.id, &p.id, "member")
                .await
                .unwrap();
        }
    }
    assert_eq!(
        store.list_identity_role_assignments().await.unwrap().len(),
        4
    );

    // Deleting a project takes its assignments and clears it as a default project, without
    // touching `updated_at`.
    store.delete_identity_project(&p1.id).await.unwrap();
    let left = store.list_identity_role_assignments().await.unwrap();
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(left.iter().all(|a| a.project_id == p2.id), "{left:?}");
    assert_eq!(
        store.get_identity_user(&alice.id).await.unwrap(),
        IdentityUserRow {
            default_project_id: None,
            ..alice.clone()
        }
    );
    assert_eq!(store.get_identity_user(&bob.id).await.unwrap(), bob);

    // Deleting a user takes its assignments.
    store.delete_identity_user(&alice.id).await.unwrap();
    assert_eq!(
        store.list_identity_role_assignments().await.unwrap(),
        [RoleAssignmentRow {
            user_id: bob.id.clone(),
            project_id: p2.id.clone(),
            role: "member".to_owned(),
        }]
    );
    assert!(
        store
            .list_identity_roles(&alice.id, &p2.id)
            .await
            .unwrap()
            .is_empty()
    );
    db.finish().await;
}

pub(crate) async fn identity_token_revocation_is_idempotent_and_purged<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    assert!(!store.is_identity_token_revoked("audit-a").await.unwrap());
    store
        .revoke_identity_token("audit-a", at(100), at(0))
        .await
        .unwrap();
    // Again, even with other times: still one record, the first one.
    store
        .revoke_identity_token("audit-a", at(500), at(1))
        .await
        .unwrap();
    store
        .revoke_identity_token("audit-b", at(200), at(2))
        .await
        .unwrap();
    assert!(store.is_identity_token_revoked("audit-a").await.unwrap());
    assert!(store.is_identity_token_revoked("audit-b").await.unwrap());
    assert!(!store.is_identity_token_revoked("audit-c").await.unwrap());

    assert_eq!(
        store
            .delete_expired_identity_revocations(at(100))
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .delete_expired_identity_revocations(at(101))
            .await
            .unwrap(),
        1,
        "audit-a expires at 100 (the repeated revocation did not extend it)"
    );
    assert!(!store.is_identity_token_revoked("audit-a").await.unwrap());
    assert!(store.is_identity_token_revoked("audit-b").await.unwrap());
    assert_eq!(
        store
            .delete_expired_identity_revocations(at(1000))
            .await
            .unwrap(),
        1
    );
    assert!(!store.is_identity_token_revoked("audit-b").await.unwrap());
    db.finish().await;
}

pub(crate) async fn identity_signing_key_is_created_once<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store = db.store();
    let first = "aa".repeat(32);
    let second = "bb".repeat(32);
    assert_eq!(
        store
            .ensure_identity_signing_key(&first, at(0))
            .await
            .unwrap(),
        first
    );
    assert_eq!(
        store
            .ensure_identity_signing_key(&second, at(1))
            .await
            .unwrap(),
        first
    );
    db.finish().await;
}

pub(crate) async fn concurrent_identity_signing_keys_agree<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store: Arc<S> = Arc::clone(db.store());
    let first = "11".repeat(32);
    let second = "22".repeat(32);
    let (a, b) = tokio::join!(
        store.ensure_identity_signing_key(&first, at(0)),
        store.ensure_identity_signing_key(&second, at(0)),
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a, b);
    assert!(a == first || a == second, "{a}");
    // A later caller gets the same key.
    assert_eq!(
        store
            .ensure_identity_signing_key(&"33".repeat(32), at(1))
            .await
            .unwrap(),
        a
    );

    db.finish().await;
}

pub(crate) async fn many_concurrent_identity_signing_keys_agree<S: ForTest>() {
    let Some(db) = S::for_test().await else {
        return;
    };
    let store: Arc<S> = Arc::clone(db.store());
    // Eight racers on an empty table, each with its own candidate: exactly one wins.
    let candidates: Vec<String> = (0..8).map(|i| format!("{:064x}", i + 1)).collect();
    let tasks: Vec<_> = candidates
        .iter()
        .cloned()
        .map(|candidate| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.ensure_identity_signing_key(&candidate, at(0)).await })
        })
        .collect();
    let mut got = Vec::new();
    for task in tasks {
        got.push(task.await.expect("join").expect("ensure"));
    }
    assert!(got.iter().all(|k| *k == got[0]), "{got:?}");
    assert!(candidates.contains(&got[0]), "{got:?}");
    db.finish().await;
}
