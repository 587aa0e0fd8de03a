//! The validator against the Keystone stand-in: validation outcomes,
//! caching, service-token handling and Keystone outages.

use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use shoal_keystone::standin::KeystoneStandin;
use shoal_keystone::{KeystoneConfig, KeystoneValidator, ManualClock, ValidateError};

const SERVICE_USER: &str = "shoal";
const SERVICE_PASSWORD: &str = "shoal-secret";

/// A stand-in with shoal's service user, a member and an admin.
async fn standin() -> KeystoneStandin {
    let ks = KeystoneStandin::start().await;
    ks.add_user(
        SERVICE_USER,
        SERVICE_PASSWORD,
        "svc-project-id",
        "service",
        &["service"],
    );
    ks.add_user(
        "alice",
        "alice-pw",
        "demo-id",
        "demo",
        &["member", "reader"],
    );
    ks.add_user("root", "root-pw", "admin-id", "admin", &["admin", "member"]);
    ks
}

fn config(ks: &KeystoneStandin) -> KeystoneConfig {
    KeystoneConfig::new(
        format!("{}/v3", ks.url),
        SERVICE_USER,
        SERVICE_PASSWORD,
        "service",
    )
}

fn validator(cfg: KeystoneConfig, clock: &Arc<ManualClock>) -> KeystoneValidator {
    match KeystoneValidator::with_clock(cfg, clock.clone()) {
        Ok(v) => v,
        Err(e) => panic!("validator: {e}"),
    }
}

/// A validator on a manual clock, with default cache lifetimes.
async fn setup() -> (KeystoneStandin, KeystoneValidator, Arc<ManualClock>) {
    let ks = standin().await;
    let clock = Arc::new(ManualClock::starting_now());
    let v = validator(config(&ks), &clock);
    (ks, v, clock)
}

#[tokio::test]
async fn member_token_yields_project_and_roles() {
    let (ks, v, _clock) = setup().await;
    let token = ks.issue_token("alice");
    let info = v.validate(&token).await.expect("valid token");
    assert_eq!(info.user_name, "alice");
    assert!(!info.user_id.is_empty());
    assert_eq!(info.project_id, "demo-id");
    assert_eq!(info.project_name, "demo");
    assert_eq!(info.domain_id.as_deref(), Some("default"));
    assert_eq!(info.project_domain_id.as_deref(), Some("default"));
    assert_eq!(info.roles, ["member", "reader"]);
    assert!(!info.has_role("admin"));
    assert!(info.expires_at > Utc::now());
}

#[tokio::test]
async fn admin_token_carries_admin_role() {
    let (ks, v, _clock) = setup().await;
    let root_id = ks.add_user("root", "root-pw", "admin-id", "admin", &["admin", "member"]);
    let info = v
        .validate(&ks.issue_token("root"))
        .await
        .expect("valid token");
    assert_eq!(info.user_id, root_id);
    assert!(info.has_role("admin"));
    assert!(info.roles.iter().any(|r| r == "admin"));
    assert_eq!(info.project_name, "admin");
}

#[tokio::test]
async fn garbage_token_is_invalid() {
    let (_ks, v, _clock) = setup().await;
    assert_eq!(v.validate("not-a-token").await, Err(ValidateError::Invalid));
}

#[tokio::test]
async fn revoked_token_is_invalid() {
    let (ks, v, _clock) = setup().await;
    let token = ks.issue_token("alice");
    ks.revoke(&token);
    assert_eq!(v.validate(&token).await, Err(ValidateError::Invalid));
}

#[tokio::test]
async fn revocation_takes_effect_once_the_cached_validation_expires() {
    let ks = standin().await;
    let clock = Arc::new(ManualClock::starting_now());
    let mut cfg = config(&ks);
    cfg.cache_ttl = Duration::from_secs(60);
    let v = validator(cfg, &clock);
    let token = ks.issue_token("alice");
    assert!(v.validate(&token).await.is_ok());
    ks.revoke(&token);
    // Like keystonemiddleware, a cached validation is trusted for its TTL.
    assert!(v.validate(&token).await.is_ok());
    clock.advance(Duration::from_secs(61));
    assert_eq!(v.validate(&token).await, Err(ValidateError::Invalid));
}

#[tokio::test]
async fn expired_token_is_invalid() {
    let (ks, v, _clock) = setup().await;
    let token = ks.issue_token_with_expiry("alice", Utc::now() - TimeDelta::seconds(5));
    assert_eq!(v.validate(&token).await, Err(ValidateError::Invalid));
}

#[tokio::test]
async fn token_keystone_still_vouches_for_is_invalid_past_its_expiry() {
    let (ks, v, clock) = setup().await;
    // The stand-in (on the real clock) will say 200; the validator's clock
    // is past the token's expiry.
    let token = ks.issue_token_with_expiry("alice", Utc::now() + TimeDelta::seconds(30));
    clock.advance(Duration::from_secs(31));
    assert_eq!(v.validate(&token).await, Err(ValidateError::Invalid));
    assert_eq!(ks.validation_count(), 1);
}

#[tokio::test]
async fn unscoped_token_is_invalid() {
    let (ks, v, _clock) = setup().await;
    let token = ks.issue_unscoped_token("alice");
    assert_eq!(v.validate(&token).await, Err(ValidateError::Invalid));
}

#[tokio::test]
async fn validating_twice_asks_keystone_once() {
    let (ks, v, _clock) = setup().await;
    let token = ks.issue_token("alice");
    let first = v.validate(&token).await.expect("valid");
    let second = v.validate(&token).await.expect("valid");
    assert_eq!(first, second);
    assert_eq!(ks.validation_count(), 1);
    // Clones share the cache.
    assert!(v.clone().validate(&token).await.is_ok());
    assert_eq!(ks.validation_count(), 1);
}

#[tokio::test]
async fn cached_validation_expires_after_cache_ttl() {
    let ks = standin().await;
    let clock = Arc::new(ManualClock::starting_now());
    let mut cfg = config(&ks);
    cfg.cache_ttl = Duration::from_secs(60);
    let v = validator(cfg, &clock);
    let token = ks.issue_token("alice");
    assert!(v.validate(&token).await.is_ok());
    clock.advance(Duration::from_secs(59));
    assert!(v.validate(&token).await.is_ok());
    assert_eq!(ks.validation_count(), 1);
    clock.advance(Duration::from_secs(2));
    assert!(v.validate(&token).await.is_ok());
    assert_eq!(ks.validation_count(), 2);
}

#[tokio::test]
async fn cached_validation_never_outlives_the_token() {
    let (ks, v, clock) = setup().await;
    // Expires long before the 300 s cache TTL.
    let token = ks.issue_token_with_expiry("alice", Utc::now() + TimeDelta::seconds(20));
    assert!(v.validate(&token).await.is_ok());
    clock.advance(Duration::from_secs(21));
    assert_eq!(v.validate(&token).await, Err(ValidateError::Invalid));
    assert_eq!(ks.validation_count(), 2);
}

#[tokio::test]
async fn cache_ttl_is_honoured_on_the_system_clock() {
    let ks = standin().await;
    let mut cfg = config(&ks);
    cfg.cache_ttl = Duration::from_millis(50);
    let v = KeystoneValidator::new(cfg).expect("validator");
    let token = ks.issue_token("alice");
    assert!(v.validate(&token).await.is_ok());
    assert!(v.validate(&token).await.is_ok());
    assert_eq!(ks.validation_count(), 1);
    // Only to let the 50 ms TTL lapse; nothing is synchronised by this.
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(v.validate(&token).await.is_ok());
    assert_eq!(ks.validation_count(), 2);
}

#[tokio::test]
async fn rejections_are_cached_briefly() {
    let ks = standin().await;
    let clock = Arc::new(ManualClock::starting_now());
    let mut cfg = config(&ks);
    cfg.negative_cache_ttl = Duration::from_secs(5);
    let v = validator(cfg, &clock);
    for _ in 0..5 {
        assert_eq!(v.validate("bogus").await, Err(ValidateError::Invalid));
    }
    assert_eq!(ks.validation_count(), 1);
    clock.advance(Duration::from_secs(6));
    assert_eq!(v.validate("bogus").await, Err(ValidateError::Invalid));
    assert_eq!(ks.validation_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_validations_of_one_token_coalesce() {
    let (ks, v, _clock) = setup().await;
    let token = ks.issue_token("alice");
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let v = v.clone();
            let token = token.clone();
            tokio::spawn(async move { v.validate(&token).await })
        })
        .collect();
    for task in tasks {
        let info = task.await.expect("task").expect("valid");
        assert_eq!(info.project_id, "demo-id");
    }
    assert_eq!(ks.validation_count(), 1);
    assert_eq!(ks.authentication_count(), 1);
}

#[tokio::test]
async fn service_token_is_obtained_once_and_reused() {
    let (ks, v, _clock) = setup().await;
    for user in ["alice", "root", "alice"] {
        assert!(v.validate(&ks.issue_token(user)).await.is_ok());
    }
    assert_eq!(ks.validation_count(), 3);
    assert_eq!(ks.authentication_count(), 1);
}

#[tokio::test]
async fn rejected_service_token_is_replaced_and_the_validation_retried() {
    let (ks, v, _clock) = setup().await;
    assert!(v.validate(&ks.issue_token("alice")).await.is_ok());
    assert_eq!(ks.authentication_count(), 1);
    assert_eq!(ks.revoke_user_tokens(SERVICE_USER), 1);
    let info = v.validate(&ks.issue_token("root")).await.expect("valid");
    assert_eq!(info.user_name, "root");
    assert_eq!(ks.authentication_count(), 2);
    // The 401 and the retry.
    assert_eq!(ks.validation_count(), 3);
}

#[tokio::test]
async fn service_token_is_renewed_shortly_before_it_expires() {
    let (ks, v, clock) = setup().await;
    assert!(v.validate(&ks.issue_token("alice")).await.is_ok());
    assert_eq!(ks.authentication_count(), 1);
    // The stand-in's service token lives an hour; 100 s before its end
    // the validator renews it.
    clock.advance(Duration::from_secs(3500));
    let token = ks.issue_token_with_expiry("alice", Utc::now() + TimeDelta::hours(2));
    assert!(v.validate(&token).await.is_ok());
    assert_eq!(ks.authentication_count(), 2);
}

#[tokio::test]
async fn keystone_answering_503_is_unavailable_and_not_cached() {
    let (ks, v, _clock) = setup().await;
    let token = ks.issue_token("alice");
    ks.set_unavailable(true);
    assert!(matches!(
        v.validate(&token).await,
        Err(ValidateError::Unavailable(_))
    ));
    ks.set_unavailable(false);
    assert!(v.validate(&token).await.is_ok());
}

#[tokio::test]
async fn keystone_down_during_validation_is_unavailable() {
    let (ks, v, _clock) = setup().await;
    // The service token is in hand; only the validation fails.
    assert!(v.validate(&ks.issue_token("alice")).await.is_ok());
    let token = ks.issue_token("root");
    ks.set_unavailable(true);
    let err = v.validate(&token).await.expect_err("keystone is down");
    let ValidateError::Unavailable(message) = err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(message.contains("503"), "{message}");
}

#[tokio::test]
async fn keystone_gone_is_unavailable() {
    let (ks, v, _clock) = setup().await;
    let token = ks.issue_token("alice");
    drop(ks);
    assert!(matches!(
        v.validate(&token).await,
        Err(ValidateError::Unavailable(_))
    ));
}

#[tokio::test]
async fn wrong_service_password_is_unavailable() {
    let ks = standin().await;
    let clock = Arc::new(ManualClock::starting_now());
    let mut cfg = config(&ks);
    cfg.password = "wrong".to_owned();
    let v = validator(cfg, &clock);
    let err = v
        .validate(&ks.issue_token("alice"))
        .await
        .expect_err("service auth fails");
    let ValidateError::Unavailable(message) = err else {
        panic!("expected Unavailable, got {err:?}");
    };
    assert!(message.contains("401"), "{message}");
    assert!(!message.contains("wrong"), "{message}");
    assert_eq!(ks.validation_count(), 0);
}

#[tokio::test]
async fn service_user_without_service_role_is_unavailable() {
    let ks = standin().await;
    ks.add_user(
        SERVICE_USER,
        SERVICE_PASSWORD,
        "svc-project-id",
        "service",
        &["member"],
    );
    let clock = Arc::new(ManualClock::starting_now());
    let v = validator(config(&ks), &clock);
    assert!(matches!(
        v.validate(&ks.issue_token("alice")).await,
        Err(ValidateError::Unavailable(_))
    ));
}

#[tokio::test]
async fn auth_url_without_version_works_too() {
    let ks = standin().await;
    let clock = Arc::new(ManualClock::starting_now());
    let mut cfg = config(&ks);
    cfg.auth_url = format!("{}/", ks.url);
    let v = validator(cfg, &clock);
    assert!(v.validate(&ks.issue_token("alice")).await.is_ok());
    assert_eq!(
        v.www_authenticate_header(),
        format!("Keystone uri=\"{}\"", ks.url)
    );
}
