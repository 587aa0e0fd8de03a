//! Failure limits of password authentication, per user and per source address.
//!
//! Each key has a fixed window that opens with its first failure: after `limit` failures
//! inside the window the key is refused until the window closes; a window that has closed
//! starts over. A successful login clears the user's count (not the address's: one good
//! password must not launder a scan). State is in memory, per API node: with N API nodes an
//! attacker gets at most N times the limit, which still turns a guessing attack from
//! millions of tries per hour into hundreds.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};

/// Keys kept per map before closed windows are swept, so a scan of many user names or
/// addresses cannot grow memory without bound.
const SWEEP_AT: usize = 10_000;

#[derive(Debug, Clone, Copy)]
struct Window {
    opened: DateTime<Utc>,
    failures: u32,
}

/// Fixed-window failure counters for one kind of key.
#[derive(Debug)]
struct Counter<K> {
    limit: u32,
    window: TimeDelta,
    windows: HashMap<K, Window>,
}

impl<K: Eq + Hash + Clone> Counter<K> {
    fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window: TimeDelta::from_std(window).unwrap_or(TimeDelta::MAX),
            windows: HashMap::new(),
        }
    }

    /// `Err(retry_after)` when `key` is over its limit.
    fn check(&self, key: &K, now: DateTime<Utc>) -> Result<(), Duration> {
        if self.limit == 0 {
            return Ok(());
        }
        match self.windows.get(key) {
            Some(w) if w.failures >= self.limit && now < w.opened + self.window => {
                Err((w.opened + self.window - now).to_std().unwrap_or_default())
            }
            _ => Ok(()),
        }
    }

    fn record(&mut self, key: &K, now: DateTime<Utc>) {
        if self.limit == 0 {
            return;
        }
        if self.windows.len() >= SWEEP_AT {
            let window = self.window;
            self.windows.retain(|_, w| now < w.opened + window);
        }
        let window = self.window;
        let entry = self.windows.entry(key.clone()).or_insert(Window {
            opened: now,
            failures: 0,
        });
        if now >= entry.opened + window {
            *entry = Window {
                opened: now,
                failures: 0,
            };
        }
        entry.failures = entry.failures.saturating_add(1);
    }

    fn clear(&mut self, key: &K) {
        self.windows.remove(key);
    }
}

/// Why an authentication attempt is refused before its password is even looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user has failed too often; Keystone's "account is locked".
    UserLocked,
    /// The source address has failed too often; answered with 429.
    AddressThrottled {
        /// When the window closes.
        retry_after: Duration,
    },
}

/// The per-user and per-address failure counters of one API node.
#[derive(Debug)]
pub struct FailureLimiter {
    users: Mutex<Counter<String>>,
    addresses: Mutex<Counter<IpAddr>>,
}

impl FailureLimiter {
    /// Limits of `limit` failures per `window`, for users and addresses; 0 disables one.
    pub fn new(
        user_limit: u32,
        user_window: Duration,
        address_limit: u32,
        address_window: Duration,
    ) -> Self {
        Self {
            users: Mutex::new(Counter::new(user_limit, user_window)),
            addresses: Mutex::new(Counter::new(address_limit, address_window)),
        }
    }

    /// Refuses an address over its limit.
    pub fn check_address(
        &self,
        address: Option<IpAddr>,
        now: DateTime<Utc>,
    ) -> Result<(), Refusal> {
        let Some(address) = address else {
            return Ok(());
        };
        let addresses = self
            .addresses
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        addresses
            .check(&address, now)
            .map_err(|retry_after| Refusal::AddressThrottled { retry_after })
    }

    /// Refuses a user over its limit.
    pub fn check_user(&self, user_key: &str, now: DateTime<Utc>) -> Result<(), Refusal> {
        let users = self.users.lock().unwrap_or_else(PoisonError::into_inner);
        users
            .check(&user_key.to_owned(), now)
            .map_err(|_| Refusal::UserLocked)
    }

    /// Counts a failure against the user (when known) and the address (when known).
    pub fn record_failure(
        &self,
        user_key: Option<&str>,
        address: Option<IpAddr>,
        now: DateTime<Utc>,
    ) {
        if let Some(user_key) = user_key {
            self.users
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(&user_key.to_owned(), now);
        }
        if let Some(address) = address {
            self.addresses
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .record(&address, now);
        }
    }

    /// A successful login clears the user's failures.
    pub fn record_success(&self, user_key: &str) {
        self.users
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear(&user_key.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_700_000_000 + secs, 0).expect("time")
    }

    #[test]
    fn user_is_locked_after_the_limit_until_the_window_closes() {
        let limiter = FailureLimiter::new(3, Duration::from_secs(60), 0, Duration::ZERO);
        for i in 0..3 {
            assert_eq!(limiter.check_user("u", at(i)), Ok(()));
            limiter.record_failure(Some("u"), None, at(i));
        }
        assert_eq!(limiter.check_user("u", at(3)), Err(Refusal::UserLocked));
        assert_eq!(limiter.check_user("other", at(3)), Ok(()));
        assert_eq!(limiter.check_user("u", at(59)), Err(Refusal::UserLocked));
        assert_eq!(limiter.check_user("u", at(60)), Ok(()));
        // A new window starts with the next failure.
        limiter.record_failure(Some("u"), None, at(61));
        assert_eq!(limiter.check_user("u", at(61)), Ok(()));
    }

    #[test]
    fn success_clears_the_user_but_not_the_address() {
        let limiter = FailureLimiter::new(2, Duration::from_secs(60), 2, Duration::from_secs(60));
        let ip: IpAddr = "127.0.0.9".parse().expect("ip");
        limiter.record_failure(Some("u"), Some(ip), at(0));
        limiter.record_success("u");
        limiter.record_failure(Some("u"), Some(ip), at(1));
        assert_eq!(limiter.check_user("u", at(2)), Ok(()));
        assert_eq!(
            limiter.check_address(Some(ip), at(10)),
            Err(Refusal::AddressThrottled {
                retry_after: Duration::from_secs(50)
            })
        );
        assert_eq!(limiter.check_address(None, at(10)), Ok(()));
    }

    #[test]
    fn zero_disables_a_limit() {
        let limiter = FailureLimiter::new(0, Duration::from_secs(60), 0, Duration::from_secs(60));
        let ip: IpAddr = "::1".parse().expect("ip");
        for i in 0..100 {
            limiter.record_failure(Some("u"), Some(ip), at(i));
        }
        assert_eq!(limiter.check_user("u", at(100)), Ok(()));
        assert_eq!(limiter.check_address(Some(ip), at(100)), Ok(()));
    }

    #[test]
    fn many_keys_are_swept() {
        let limiter = FailureLimiter::new(1, Duration::from_secs(1), 0, Duration::ZERO);
        for i in 0..(SWEEP_AT + 10) {
            limiter.record_failure(Some(&format!("user{i}")), None, at(i as i64 * 2));
        }
        let users = limiter.users.lock().expect("lock");
        assert!(users.windows.len() < SWEEP_AT, "closed windows are swept");
    }
}
