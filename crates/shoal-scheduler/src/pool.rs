//! One candidate pool as the scheduler sees it, and the capacity arithmetic on it.
//!
//! A [`PoolState`] is a snapshot the caller builds from the `pools` and `services` tables
//! (Manila's `HostManager` builds the same thing from the capability reports it caches).
//! Capabilities are kept exactly as the driver reported them, as a JSON map, because the
//! capabilities filter must be able to match any key a share type names. The numbers the
//! capacity filter and weigher need are *derived* from that map on every read by the
//! accessors below, with Manila's defaults for missing keys. [`PoolState::consume`] is the
//! only mutation: the virtual consumption that lets a batch scheduled in one pass see the
//! placements made earlier in that pass.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};

use crate::pyval;

/// Manila's `max_over_subscription_ratio` option default (`manila/share/driver.py`), used
/// when a thin pool does not report its own ratio.
pub const MAX_OVER_SUBSCRIPTION_RATIO_DEFAULT: f64 = 20.0;

/// One candidate pool (`host@backend#pool`) with its reported capabilities and the state of
/// the share service that owns it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolState {
    /// Full pool name, `host@backend#pool`: what a share instance's `host` is set to.
    pub name: String,
    /// The back end part, `host@backend`: what an `only_host` hint without `#` names.
    pub host: String,
    /// Back end name (the part after `@`).
    pub backend: String,
    /// Pool name (the part after `#`).
    pub pool: String,
    /// Availability zone of the share service owning the pool.
    pub availability_zone: String,
    /// Capabilities as the driver reported them for this pool, back-end level keys included:
    /// `total_capacity_gb`, `free_capacity_gb`, `allocated_capacity_gb`,
    /// `reserved_percentage`, `thin_provisioning`, `max_over_subscription_ratio`,
    /// `provisioned_capacity_gb`, `replication_type`, `replication_domain`,
    /// `driver_handles_share_servers`, `snapshot_support`, `share_backend_name`,
    /// `storage_protocol`, ... Capacity values may also be the strings `"unknown"` or
    /// `"infinite"`.
    pub capabilities: Map<String, Value>,
    /// Whether the owning service heartbeated recently; a down service gets no work.
    pub service_up: bool,
    /// Whether an admin disabled the owning service; it gets no work unless an admin
    /// names it with `only_host`.
    pub service_disabled: bool,
}

/// A capacity figure as drivers report it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Capacity {
    /// A number of GiB.
    Gb(f64),
    /// `"unknown"`: the back end cannot tell (Manila's base driver default).
    Unknown,
    /// `"infinite"`: no limit (Cinder's convention; Manila's own scheduler does not know it).
    Infinite,
    /// Not reported (or JSON `null`).
    Missing,
    /// Reported, but neither a number nor one of the strings above.
    Invalid,
}

impl Capacity {
    fn from_value(value: Option<&Value>) -> Self {
        match value {
            None | Some(Value::Null) => Self::Missing,
            Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("unknown") => Self::Unknown,
            Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("infinite") => Self::Infinite,
            Some(v) => pyval::number(Some(v)).map_or(Self::Invalid, Self::Gb),
        }
    }

    /// The number of GiB, if this is one.
    pub fn gb(self) -> Option<f64> {
        match self {
            Self::Gb(gb) => Some(gb),
            _ => None,
        }
    }
}

impl PoolState {
    /// A capability by key.
    pub fn capability(&self, key: &str) -> Option<&Value> {
        self.capabilities.get(key)
    }

    /// `total_capacity_gb` as reported.
    pub fn total_capacity(&self) -> Capacity {
        Capacity::from_value(self.capability("total_capacity_gb"))
    }

    /// `free_capacity_gb` as reported (and virtually consumed).
    pub fn free_capacity(&self) -> Capacity {
        Capacity::from_value(self.capability("free_capacity_gb"))
    }

    /// `reserved_percentage` (0 when not reported); `None` when it is not a number.
    pub fn reserved_percentage(&self) -> Option<f64> {
        match self.capability("reserved_percentage") {
            None | Some(Value::Null) => Some(0.0),
            value => pyval::number(value),
        }
    }

    /// `allocated_capacity_gb` (0 when not reported or not a number).
    pub fn allocated_capacity_gb(&self) -> f64 {
        pyval::number(self.capability("allocated_capacity_gb")).unwrap_or(0.0)
    }

    /// Whether the pool thin-provisions: Manila's `utils.thin_provisioning`, true when the
    /// reported `thin_provisioning` is `true` or a list containing `true` (a list such as
    /// `[true, false]` means the pool can do both).
    pub fn thin_provisioning(&self) -> bool {
        let is_true = |v: &Value| match v {
            Value::Bool(b) => *b,
            // Python's `True in [1]` holds because `1 == True`.
            Value::Number(n) => n.as_f64() == Some(1.0),
            _ => false,
        };
        match self.capability("thin_provisioning") {
            Some(Value::Array(items)) => items.iter().any(is_true),
            Some(v) => is_true(v),
            None => false,
        }
    }

    /// `max_over_subscription_ratio`, defaulting to [`MAX_OVER_SUBSCRIPTION_RATIO_DEFAULT`].
    pub fn max_over_subscription_ratio(&self) -> f64 {
        match self.capability("max_over_subscription_ratio") {
            None | Some(Value::Null) => MAX_OVER_SUBSCRIPTION_RATIO_DEFAULT,
            // A garbage ratio disables the pool for thin shares (a ratio < 1 does).
            value => pyval::number(value).unwrap_or(0.0),
        }
    }

    /// Provisioned capacity (the apparent size of everything on the pool).
    ///
    /// When a thin pool does not report `provisioned_capacity_gb`, Manila sums the sizes of
    /// the share instances on the pool from its database; this crate does no IO, so it
    /// uses `allocated_capacity_gb` (the same sum, as tracked by the share service) instead.
    /// A thick pool without the key has none.
    pub fn provisioned_capacity_gb(&self) -> Option<f64> {
        match pyval::number(self.capability("provisioned_capacity_gb")) {
            Some(gb) => Some(gb),
            None if self.thin_provisioning() => Some(self.allocated_capacity_gb()),
            None => None,
        }
    }

    /// The non-empty `replication_domain` the pool reports, if any.
    pub fn replication_domain(&self) -> Option<String> {
        match self.capability("replication_domain") {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        }
    }

    /// Whether the share service may be given work: up, and enabled unless the request
    /// names a pool explicitly (Manila lets an admin's `only_host` reach a disabled
    /// service, never a down one).
    pub fn service_usable(&self, only_host_requested: bool) -> bool {
        self.service_up && (!self.service_disabled || only_host_requested)
    }

    /// Virtually consume `size_gb` on this pool, as Manila's `consume_from_share`:
    /// `free_capacity_gb` shrinks (unless it is `"unknown"`/`"infinite"`),
    /// `allocated_capacity_gb` grows, and `provisioned_capacity_gb` grows when reported.
    pub fn consume(&mut self, size_gb: u64) {
        let size = size_gb as f64;
        if let Some(value) = self.capabilities.get_mut("provisioned_capacity_gb")
            && let Some(prov) = pyval::number(Some(value))
        {
            *value = add_number(value, prov, size);
        }
        let allocated = self.allocated_capacity_gb();
        let allocated_value = self
            .capabilities
            .get("allocated_capacity_gb")
            .cloned()
            .unwrap_or(Value::from(0));
        self.capabilities.insert(
            "allocated_capacity_gb".to_owned(),
            add_number(&allocated_value, allocated, size),
        );
        if let Some(value) = self.capabilities.get_mut("free_capacity_gb")
            && let Some(free) = pyval::number(Some(value))
        {
            *value = add_number(value, free, -size);
        }
    }
}

/// `current + delta`, written back as an integer when the reported value was one and the
/// result still is (so integer reports stay integers), otherwise as a float.
fn add_number(original: &Value, current: f64, delta: f64) -> Value {
    let result = current + delta;
    let was_integer = matches!(original, Value::Number(n) if n.is_i64() || n.is_u64());
    if was_integer && result.fract() == 0.0 && result.abs() < 9.0e15 {
        // The bound keeps the conversion exact; it is far above any real capacity.
        #[expect(
            clippy::cast_possible_truncation,
            reason = "checked integral and within i64 range"
        )]
        return Value::from(result as i64);
    }
    Number::from_f64(result).map_or(Value::Null, Value::Number)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::pool;
    use serde_json::json;

    #[test]
    fn capacity_values_are_read_like_manila() {
        let p = pool("h@b#p")
            .cap("total_capacity_gb", json!("unknown"))
            .cap("free_capacity_gb", json!("infinite"))
            .build();
        assert_eq!(p.total_capacity(), Capacity::Unknown);
        assert_eq!(p.free_capacity(), Capacity::Infinite);
        let p = pool("h@b#p")
            .cap("total_capacity_gb", json!("12.5"))
            .cap("free_capacity_gb", json!(null))
            .build();
        assert_eq!(p.total_capacity(), Capacity::Gb(12.5));
        assert_eq!(p.free_capacity(), Capacity::Missing);
        let p = pool("h@b#p").cap("total_capacity_gb", json!([1])).build();
        assert_eq!(p.total_capacity(), Capacity::Invalid);
    }

    #[test]
    fn thin_provisioning_accepts_bool_and_list() {
        for (value, expected) in [
            (json!(true), true),
            (json!(false), false),
            (json!([true, false]), true),
            (json!([false]), false),
            (json!("True"), false),
            (json!(1), true),
        ] {
            let p = pool("h@b#p")
                .cap("thin_provisioning", value.clone())
                .build();
            assert_eq!(p.thin_provisioning(), expected, "{value}");
        }
        assert!(!pool("h@b#p").build().thin_provisioning());
    }

    #[test]
    fn provisioned_capacity_falls_back_to_allocated_on_thin_pools() {
        let thin = pool("h@b#p")
            .thin()
            .cap("allocated_capacity_gb", json!(7))
            .build();
        assert_eq!(thin.provisioned_capacity_gb(), Some(7.0));
        let thick = pool("h@b#p").cap("allocated_capacity_gb", json!(7)).build();
        assert_eq!(thick.provisioned_capacity_gb(), None);
    }

    #[test]
    fn consume_moves_capacity() {
        let mut p = pool("h@b#p")
            .capacity(100, 40)
            .cap("allocated_capacity_gb", json!(60))
            .cap("provisioned_capacity_gb", json!(80.5))
            .build();
        p.consume(10);
        assert_eq!(p.capability("free_capacity_gb"), Some(&json!(30)));
        assert_eq!(p.capability("allocated_capacity_gb"), Some(&json!(70)));
        assert_eq!(p.capability("provisioned_capacity_gb"), Some(&json!(90.5)));
        assert_eq!(p.capability("total_capacity_gb"), Some(&json!(100)));
    }

    #[test]
    fn consume_leaves_unknown_free_and_missing_provisioned_alone() {
        let mut p = pool("h@b#p")
            .cap("free_capacity_gb", json!("unknown"))
            .build();
        p.capabilities.remove("allocated_capacity_gb");
        p.consume(3);
        assert_eq!(p.capability("free_capacity_gb"), Some(&json!("unknown")));
        assert_eq!(p.capability("allocated_capacity_gb"), Some(&json!(3)));
        assert_eq!(p.capability("provisioned_capacity_gb"), None);
    }

    #[test]
    fn service_usability() {
        let mut p = pool("h@b#p").build();
        assert!(p.service_usable(false));
        p.service_disabled = true;
        assert!(!p.service_usable(false));
        assert!(p.service_usable(true));
        p.service_up = false;
        assert!(!p.service_usable(true));
    }
}
