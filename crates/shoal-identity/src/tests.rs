//! Tests of the identity service over a real store (SQLite, or PostgreSQL when
//! `TEST_DATABASE_URL` is set). Time is passed in, so expiry needs no sleeping.

use std::net::IpAddr;
use std::sync::Arc;

use chrono::{DateTime, TimeDelta, Utc};
use shoal_store::testing::{TestDb, fresh_store_from_env};

use super::*;

async fn service(config: IdentityConfig) -> (TestDb<dyn Store>, IdentityService) {
    let db = fresh_store_from_env().await;
    let identity = IdentityService::open(Arc::clone(db.store()), config)
        .await
        .expect("open identity");
    (db, identity)
}

fn password_request(user: &str, password: &str, project: Option<&str>) -> AuthRequest {
    AuthRequest {
        method: AuthMethod::Password {
            user: UserRef::Name {
                name: user.to_owned(),
                domain: DomainRef::Name(DEFAULT_DOMAIN_NAME.to_owned()),
            },
            password: password.to_owned(),
        },
        scope: match project {
            Some(name) => Scope::Project(ProjectRef::Name {
                name: name.to_owned(),
                domain: DomainRef::Id(DEFAULT_DOMAIN_ID.to_owned()),
            }),
            None => Scope::Default,
        },
    }
}

fn now() -> DateTime<Utc> {
    shoal_store::truncate_to_micros(Utc::now())
}

#[tokio::test]
async fn bootstrap_creates_the_admin_once_and_generates_a_password() {
    let (db, identity) = service(IdentityConfig::default()).await;
    let report = identity.bootstrap(None, now()).await.expect("bootstrap");
    let generated = report
        .generated_admin_password
        .expect("a generated password");
    let issued = identity
        .authenticate(
            password_request(ADMIN, &generated, Some(ADMIN)),
            None,
            now(),
        )
        .await
        .expect("admin logs in with the generated password");
    assert_eq!(issued.valid.roles, ["admin", "member", "reader"]);
    assert_eq!(
        issued.valid.project.as_ref().map(|p| p.name.as_str()),
        Some(ADMIN)
    );

    // A second start keeps the password and generates nothing.
    let again = identity
        .bootstrap(None, now())
        .await
        .expect("bootstrap again");
    assert_eq!(again, BootstrapReport::default());
    identity
        .authenticate(password_request(ADMIN, &generated, None), None, now())
        .await
        .expect("no scope: the default project");
    db.finish().await;
}

#[tokio::test]
async fn configured_admin_password_replaces_the_stored_one_and_ends_old_tokens() {
    let (db, identity) = service(IdentityConfig::default()).await;
    let t0 = now();
    identity
        .bootstrap(Some("first"), t0)
        .await
        .expect("bootstrap");
    let old = identity
        .authenticate(password_request(ADMIN, "first", Some(ADMIN)), None, t0)
        .await
        .expect("login");
    let t1 = t0 + TimeDelta::seconds(1);
    let report = identity
        .bootstrap(Some("second"), t1)
        .await
        .expect("bootstrap");
    assert!(report.admin_password_updated);
    assert!(matches!(
        identity.validate(&old.token, t1).await,
        Err(IdentityError::InvalidToken)
    ));
    assert!(
        identity
            .authenticate(password_request(ADMIN, "first", Some(ADMIN)), None, t1)
            .await
            .is_err()
    );
    identity
        .authenticate(password_request(ADMIN, "second", Some(ADMIN)), None, t1)
        .await
        .expect("the new password works");
    db.finish().await;
}

#[tokio::test]
async fn tokens_expire_and_can_be_revoked() {
    let config = IdentityConfig {
        token_expiration: std::time::Duration::from_secs(60),
        ..IdentityConfig::default()
    };
    let (db, identity) = service(config).await;
    let t0 = now();
    identity.bootstrap(Some("pw"), t0).await.expect("bootstrap");
    let issued = identity
        .authenticate(password_request(ADMIN, "pw", Some(ADMIN)), None, t0)
        .await
        .expect("login");
    assert_eq!(issued.valid.payload.expires_at, t0 + TimeDelta::seconds(60));
    identity
        .validate(&issued.token, t0 + TimeDelta::seconds(59))
        .await
        .expect("valid before expiry");
    assert!(matches!(
        identity
            .validate(&issued.token, t0 + TimeDelta::seconds(60))
            .await,
        Err(IdentityError::InvalidToken)
    ));

    let other = identity
        .authenticate(password_request(ADMIN, "pw", Some(ADMIN)), None, t0)
        .await
        .expect("login");
    // A token made from `other` dies with it.
    let rescoped = identity
        .authenticate(
            AuthRequest {
                method: AuthMethod::Token {
                    token: other.token.clone(),
                },
                scope: Scope::Default,
            },
            None,
            t0,
        )
        .await
        .expect("token method");
    assert_eq!(rescoped.valid.payload.methods, vec!["token", "password"]);
    assert_eq!(
        rescoped.valid.payload.expires_at,
        other.valid.payload.expires_at
    );
    assert_eq!(
        rescoped.valid.project.as_ref().map(|p| p.name.as_str()),
        Some(ADMIN)
    );
    identity.revoke(&other.token, t0).await.expect("revoke");
    for token in [&other.token, &rescoped.token] {
        assert!(matches!(
            identity.validate(token, t0).await,
            Err(IdentityError::InvalidToken)
        ));
    }
    assert!(matches!(
        identity.revoke(&other.token, t0).await,
        Err(IdentityError::InvalidToken)
    ));
    db.finish().await;
}

#[tokio::test]
async fn tokens_survive_a_new_service_on_the_same_store() {
    let (db, identity) = service(IdentityConfig::default()).await;
    identity
        .bootstrap(Some("pw"), now())
        .await
        .expect("bootstrap");
    let issued = identity
        .authenticate(password_request(ADMIN, "pw", Some(ADMIN)), None, now())
        .await
        .expect("login");
    let restarted = IdentityService::open(Arc::clone(db.store()), IdentityConfig::default())
        .await
        .expect("reopen");
    restarted
        .validate(&issued.token, now())
        .await
        .expect("the signing key is shared through the store");
    db.finish().await;
}

#[tokio::test]
async fn scopes_need_a_role_and_roles_are_read_at_validation() {
    let (db, identity) = service(IdentityConfig::default()).await;
    let t = now();
    identity.bootstrap(Some("pw"), t).await.expect("bootstrap");
    identity
        .add_user("demo", "demo-pw", Some("demo"), &["member".to_owned()], t)
        .await
        .expect("add demo");
    let issued = identity
        .authenticate(password_request("demo", "demo-pw", Some("demo")), None, t)
        .await
        .expect("member of demo");
    assert_eq!(issued.valid.roles, ["member", "reader"]);
    match identity
        .authenticate(password_request("demo", "demo-pw", Some(ADMIN)), None, t)
        .await
    {
        Err(IdentityError::Unauthorized(message)) => assert!(message.contains("has no access")),
        other => panic!("expected 401, got {other:?}"),
    }
    match identity
        .authenticate(password_request("demo", "demo-pw", Some("nope")), None, t)
        .await
    {
        Err(IdentityError::Unauthorized(message)) => {
            assert_eq!(message, "Could not find project: nope.");
        }
        other => panic!("expected 401, got {other:?}"),
    }
    identity
        .revoke_role("demo", "demo", "member")
        .await
        .expect("revoke role");
    assert!(matches!(
        identity.validate(&issued.token, t).await,
        Err(IdentityError::InvalidToken)
    ));
    db.finish().await;
}

#[tokio::test]
async fn wrong_passwords_unknown_users_and_disabled_users_get_the_generic_401() {
    let (db, identity) = service(IdentityConfig::default()).await;
    let t = now();
    identity.bootstrap(Some("pw"), t).await.expect("bootstrap");
    identity
        .add_user("demo", "demo-pw", Some("demo"), &["member".to_owned()], t)
        .await
        .expect("add demo");
    for request in [
        password_request(ADMIN, "wrong", Some(ADMIN)),
        password_request("ghost", "pw", Some(ADMIN)),
        AuthRequest {
            method: AuthMethod::Password {
                user: UserRef::Name {
                    name: ADMIN.to_owned(),
                    domain: DomainRef::Name("Elsewhere".to_owned()),
                },
                password: "pw".to_owned(),
            },
            scope: Scope::Default,
        },
    ] {
        match identity.authenticate(request, None, t).await {
            Err(IdentityError::Unauthorized(m)) => assert_eq!(m, UNAUTHORIZED_MESSAGE),
            other => panic!("expected 401, got {other:?}"),
        }
    }
    let token = identity
        .authenticate(password_request("demo", "demo-pw", None), None, t)
        .await
        .expect("login")
        .token;
    identity
        .set_enabled("demo", false, t)
        .await
        .expect("disable");
    assert!(identity.validate(&token, t).await.is_err());
    assert!(
        identity
            .authenticate(password_request("demo", "demo-pw", None), None, t)
            .await
            .is_err()
    );
    db.finish().await;
}

#[tokio::test]
async fn repeated_failures_lock_the_user_and_throttle_the_address() {
    let config = IdentityConfig {
        user_failure_limit: 2,
        address_failure_limit: 4,
        ..IdentityConfig::default()
    };
    let (db, identity) = service(config).await;
    let t = now();
    identity.bootstrap(Some("pw"), t).await.expect("bootstrap");
    let a: IpAddr = "127.0.0.2".parse().expect("ip");
    let b: IpAddr = "127.0.0.3".parse().expect("ip");
    for _ in 0..2 {
        assert!(
            identity
                .authenticate(password_request(ADMIN, "wrong", None), Some(a), t)
                .await
                .is_err()
        );
    }
    // Locked: even the right password is refused, from any address.
    match identity
        .authenticate(password_request(ADMIN, "pw", None), Some(b), t)
        .await
    {
        Err(IdentityError::Unauthorized(m)) => assert!(m.starts_with("The account is locked")),
        other => panic!("expected the lockout, got {other:?}"),
    }
    // The window ends.
    let later = t + TimeDelta::seconds(301);
    identity
        .authenticate(password_request(ADMIN, "pw", None), Some(b), later)
        .await
        .expect("unlocked after the window");
    // Address a has 2 failures; two more from it, for unknown users, reach its limit.
    for _ in 0..2 {
        let _ = identity
            .authenticate(password_request("ghost", "x", None), Some(a), t)
            .await;
    }
    assert!(matches!(
        identity
            .authenticate(password_request(ADMIN, "pw", None), Some(a), t)
            .await,
        Err(IdentityError::TooManyFailures { .. })
    ));
    db.finish().await;
}

#[tokio::test]
async fn config_users_are_created_and_kept_in_step() {
    let hash = password::hash_password("from-hash").expect("hash");
    let config = IdentityConfig {
        users: vec![
            UserSeed {
                name: "alice".to_owned(),
                password_hash: Some(hash),
                password: None,
                project: Some("team".to_owned()),
                roles: vec!["member".to_owned(), "reader".to_owned()],
            },
            UserSeed {
                name: "bob".to_owned(),
                password_hash: None,
                password: Some("bob-pw".to_owned()),
                project: None,
                roles: Vec::new(),
            },
        ],
        projects: vec![ProjectSeed {
            name: "spare".to_owned(),
            description: "unused".to_owned(),
        }],
        role_assignments: vec![RoleAssignmentSeed {
            user: "alice".to_owned(),
            project: "spare".to_owned(),
            roles: vec!["reader".to_owned()],
        }],
        ..IdentityConfig::default()
    };
    let (db, identity) = service(config).await;
    let t = now();
    identity.bootstrap(Some("pw"), t).await.expect("bootstrap");
    identity.bootstrap(Some("pw"), t).await.expect("idempotent");
    let alice = identity
        .authenticate(password_request("alice", "from-hash", None), None, t)
        .await
        .expect("alice");
    assert_eq!(
        alice.valid.roles,
        vec!["member".to_owned(), "reader".to_owned()]
    );
    let bob = identity
        .authenticate(password_request("bob", "bob-pw", None), None, t)
        .await
        .expect("bob");
    assert!(bob.valid.project.is_none(), "no project: unscoped");
    let names: Vec<String> = identity
        .list_projects()
        .await
        .expect("projects")
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, vec!["admin", "spare", "team"]);
    let spare = identity
        .authenticate(
            password_request("alice", "from-hash", Some("spare")),
            None,
            t,
        )
        .await
        .expect("alice reads spare");
    assert_eq!(spare.valid.roles, ["reader"]);
    db.finish().await;
}

#[tokio::test]
async fn cli_operations_report_missing_and_duplicate_names() {
    let (db, identity) = service(IdentityConfig::default()).await;
    let t = now();
    identity.bootstrap(Some("pw"), t).await.expect("bootstrap");
    identity
        .add_user("demo", "x", Some("demo"), &[], t)
        .await
        .expect("add");
    assert!(matches!(
        identity.add_user("demo", "x", None, &[], t).await,
        Err(IdentityError::Conflict(_))
    ));
    assert!(matches!(
        identity.set_password("ghost", "x", t).await,
        Err(IdentityError::NotFound(_))
    ));
    assert!(matches!(
        identity.grant_role("demo", "ghost", "member").await,
        Err(IdentityError::NotFound(_))
    ));
    assert!(matches!(
        identity
            .add_user("x", "y", None, &["member".to_owned()], t)
            .await,
        Err(IdentityError::BadRequest(_))
    ));
    identity.delete_user("demo").await.expect("delete");
    assert!(matches!(
        identity.delete_user("demo").await,
        Err(IdentityError::NotFound(_))
    ));
    db.finish().await;
}

#[test]
fn roles_imply_keystones_defaults() {
    let roles = |r: &[&str]| effective_roles(r.iter().map(|s| (*s).to_owned()).collect());
    assert_eq!(roles(&["admin"]), ["admin", "member", "reader"]);
    assert_eq!(roles(&["member"]), ["member", "reader"]);
    assert_eq!(roles(&["reader", "service"]), ["reader", "service"]);
    assert!(roles(&[]).is_empty());
}

#[test]
fn role_ids_are_stable_hex() {
    assert_eq!(role_id("admin"), role_id("admin"));
    assert_ne!(role_id("admin"), role_id("member"));
    assert_eq!(role_id("admin").len(), 32);
}

#[tokio::test]
async fn validations_are_cached_for_the_ttl_and_cleared_by_local_changes() {
    let (db, identity) = service(IdentityConfig::default()).await;
    let t = now();
    identity.bootstrap(Some("pw"), t).await.expect("bootstrap");
    identity
        .add_user("demo", "demo-pw", Some("demo"), &["member".to_owned()], t)
        .await
        .expect("add demo");
    let token = identity
        .authenticate(password_request("demo", "demo-pw", None), None, t)
        .await
        .expect("login")
        .token;
    identity
        .validate(&token, t)
        .await
        .expect("valid, now cached");
    // A cached token still expires on time.
    assert!(matches!(
        identity.validate(&token, t + TimeDelta::hours(1)).await,
        Err(IdentityError::InvalidToken)
    ));
    identity
        .validate(&token, t)
        .await
        .expect("valid, cached again");

    // Another node (or the CLI) disables demo: this node trusts its cache until the TTL ends.
    let other_node = IdentityService::open(Arc::clone(db.store()), IdentityConfig::default())
        .await
        .expect("second node");
    other_node
        .set_enabled("demo", false, t)
        .await
        .expect("disable");
    identity
        .validate(&token, t)
        .await
        .expect("still cached here");
    assert!(
        other_node.validate(&token, t).await.is_err(),
        "not on the node that changed it"
    );

    // A change made on this node clears the cache at once; a zero TTL disables it.
    identity.set_enabled("demo", true, t).await.expect("enable");
    let uncached = IdentityService::open(
        Arc::clone(db.store()),
        IdentityConfig {
            token_cache_ttl: std::time::Duration::ZERO,
            ..IdentityConfig::default()
        },
    )
    .await
    .expect("uncached node");
    let token = uncached
        .authenticate(password_request("demo", "demo-pw", None), None, t)
        .await
        .expect("login")
        .token;
    uncached.validate(&token, t).await.expect("valid");
    identity
        .validate(&token, t)
        .await
        .expect("valid, cached on the first node");
    identity
        .set_enabled("demo", false, t)
        .await
        .expect("disable");
    assert!(identity.validate(&token, t).await.is_err(), "local change");
    assert!(uncached.validate(&token, t).await.is_err(), "no cache");
    db.finish().await;
}
