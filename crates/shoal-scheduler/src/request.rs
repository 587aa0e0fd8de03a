//! What is being placed: the scheduling request, and the share-type preprocessing Manila
//! applies to it before filtering (`FilterScheduler._format_filter_properties`).
//!
//! Nothing here is persisted. The request is built by the caller from the share (or
//! replica) row and its share type; [`ScheduleRequest::effective_extra_specs`] derives the
//! extra specs the filters really compare, so every filter sees the same rewritten set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::extra_specs_ops;
use crate::pyval::bool_from_str_strict;

/// Extra specs Manila treats as booleans: a bare value such as `"True"` is rewritten to
/// `"<is> True"` before matching (`constants.ExtraSpecs.BOOLEAN`).
pub const BOOLEAN_EXTRA_SPECS: [&str; 6] = [
    "driver_handles_share_servers",
    "snapshot_support",
    "create_share_from_snapshot_support",
    "revert_to_snapshot_support",
    "mount_snapshot_support",
    "snapshot_inherit_share_access_support",
];

/// One share instance (a share's first instance, or a secondary replica) to place.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduleRequest {
    /// Size of the share in GiB.
    pub size_gb: u64,
    /// The share's protocol (`NFS`, `CIFS`, ...). Unless the type sets `storage_protocol`,
    /// pools must report this protocol in their `storage_protocol` capability.
    pub share_proto: String,
    /// The availability zone asked for (name, already resolved by the caller).
    pub availability_zone: Option<String>,
    /// The share type's `availability_zones` extra spec, split on commas. When `None`, the
    /// `availability_zones` extra spec in [`Self::extra_specs`] (if any) is used instead.
    pub availability_zones: Option<Vec<String>>,
    /// The share type's extra specs, as stored (matched by the capabilities filter).
    pub extra_specs: BTreeMap<String, String>,
    /// Set when placing a secondary replica of an existing share.
    pub replication: Option<ReplicaRequest>,
    /// The admin-only `only_host` scheduler hint: an exact pool name (`host@backend#pool`)
    /// or a back end (`host@backend`, any of its pools). The caller drops the hint for
    /// non-admins, as Manila's `OnlyHostFilter` ignores it for them.
    pub only_host: Option<String>,
    /// Pools that already hold an instance of this share (any state, even `error`): never
    /// chosen, so a share has at most one replica per pool.
    pub excluded_hosts: Vec<String>,
    /// The `same_host` scheduler hint (2.65+), resolved by the caller: only pools holding
    /// an instance of every share it names pass (`AffinityFilter`).
    pub same_host: Option<AffinityHint>,
    /// The `different_host` scheduler hint (2.65+), resolved by the caller: pools holding an
    /// instance of any share it names fail (`AntiAffinityFilter`).
    pub different_host: Option<AffinityHint>,
    /// For a share created from a snapshot: the pool (`host@backend#pool`) of the snapshot
    /// instance it is copied from (`CreateFromSnapshotFilter`, `HostAffinityWeigher`).
    #[serde(default)]
    pub snapshot_host: Option<String>,
    /// For a share created from a snapshot: the zone of the snapshot's share
    /// (`HostAffinityWeigher`).
    #[serde(default)]
    pub snapshot_availability_zone: Option<String>,
}

/// A `same_host` / `different_host` hint after the caller looked its shares up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AffinityHint {
    /// The pools (`host@backend#pool`) the hint speaks of: for `same_host` those that hold
    /// an instance of every named share, for `different_host` those that hold an instance
    /// of any.
    Hosts(Vec<String>),
    /// A named share (or all its instances) is gone: as Manila's filter, no pool passes.
    Unresolved,
}

/// The replication side of a request for a secondary replica.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaRequest {
    /// Pool name (`host@backend#pool`) of the share's active replica: the new replica must
    /// be in the same `replication_domain`, and never on this pool.
    pub active_replica_host: String,
    /// The share's `replication_type` (`readable`, `dr`, `writable`): the pool must report
    /// the same.
    pub replication_type: String,
}

impl ScheduleRequest {
    /// The extra specs the filters compare, after Manila's rewriting:
    ///
    /// * boolean specs ([`BOOLEAN_EXTRA_SPECS`]) not starting with `<is>` get `<is> `
    ///   prepended, so `"True"` matches a capability reported as `true`;
    /// * without a `storage_protocol` spec, `storage_protocol` = `<in> <share_proto>` is
    ///   added (a pool may report several protocols, e.g. `NFS_CIFS`);
    /// * for a replica, `share_backend_name` is dropped: a replica may land on another
    ///   back end of the replication domain.
    pub fn effective_extra_specs(&self) -> BTreeMap<String, String> {
        let mut specs = self.extra_specs.clone();
        for key in BOOLEAN_EXTRA_SPECS {
            if let Some(value) = specs.get_mut(key)
                && !value.starts_with("<is>")
            {
                *value = format!("<is> {value}");
            }
        }
        if !specs.contains_key("storage_protocol") && !self.share_proto.is_empty() {
            specs.insert(
                "storage_protocol".to_owned(),
                format!("<in> {}", self.share_proto),
            );
        }
        if self.replication.is_some() {
            specs.remove("share_backend_name");
        }
        specs
    }

    /// The availability zones the share type restricts placement to (empty: no limit).
    pub fn type_availability_zones(&self) -> Vec<String> {
        match &self.availability_zones {
            Some(azs) => azs.clone(),
            None => self
                .extra_specs
                .get("availability_zones")
                .map(|azs| {
                    azs.split(',')
                        .map(str::trim)
                        .filter(|az| !az.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    /// Whether the share type lets thin provisioning be considered (Manila's
    /// `utils.use_thin_logic`): yes when the type has no `thin_provisioning` spec (nor
    /// `capabilities:thin_provisioning`), or when it reads as true (`True`, `<is> True`).
    pub fn use_thin_logic(&self) -> bool {
        let spec = self
            .extra_specs
            .get("thin_provisioning")
            .or_else(|| self.extra_specs.get("capabilities:thin_provisioning"));
        let Some(spec) = spec else {
            return true;
        };
        // A strict boolean first; otherwise the spec is an operator expression that must
        // accept `True` (`<is> True` does, `<is> False` and garbage do not).
        bool_from_str_strict(spec)
            .unwrap_or_else(|| extra_specs_ops::matches(&serde_json::Value::Bool(true), spec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(specs: &[(&str, &str)]) -> ScheduleRequest {
        ScheduleRequest {
            size_gb: 1,
            share_proto: "NFS".to_owned(),
            extra_specs: specs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            ..ScheduleRequest::default()
        }
    }

    #[test]
    fn boolean_specs_get_is_prefix_and_protocol_is_added() {
        let r = req(&[
            ("driver_handles_share_servers", "False"),
            ("snapshot_support", "<is> True"),
            ("replication_type", "readable"),
            ("share_backend_name", "dummy1"),
        ]);
        let specs = r.effective_extra_specs();
        assert_eq!(specs["driver_handles_share_servers"], "<is> False");
        assert_eq!(specs["snapshot_support"], "<is> True");
        assert_eq!(specs["replication_type"], "readable");
        assert_eq!(specs["storage_protocol"], "<in> NFS");
        assert_eq!(specs["share_backend_name"], "dummy1");
    }

    #[test]
    fn explicit_storage_protocol_is_kept() {
        let r = req(&[("storage_protocol", "CEPHFS")]);
        assert_eq!(r.effective_extra_specs()["storage_protocol"], "CEPHFS");
    }

    #[test]
    fn replica_requests_drop_share_backend_name() {
        let mut r = req(&[("share_backend_name", "dummy1")]);
        r.replication = Some(ReplicaRequest {
            active_replica_host: "h@dummy1#p".to_owned(),
            replication_type: "readable".to_owned(),
        });
        assert!(!r.effective_extra_specs().contains_key("share_backend_name"));
    }

    #[test]
    fn thin_logic_follows_manila() {
        for (spec, expected) in [
            (None, true),
            (Some("True"), true),
            (Some("true"), true),
            (Some("False"), false),
            (Some("<is> True"), true),
            (Some("<is> False"), false),
            (Some("garbage"), false),
        ] {
            let r = match spec {
                Some(s) => req(&[("thin_provisioning", s)]),
                None => req(&[]),
            };
            assert_eq!(r.use_thin_logic(), expected, "{spec:?}");
        }
        let scoped = req(&[("capabilities:thin_provisioning", "<is> False")]);
        assert!(!scoped.use_thin_logic());
    }

    #[test]
    fn type_availability_zones_fall_back_to_the_extra_spec() {
        let r = req(&[("availability_zones", "az1, az2")]);
        assert_eq!(r.type_availability_zones(), ["az1", "az2"]);
        let mut explicit = r.clone();
        explicit.availability_zones = Some(vec!["az3".to_owned()]);
        assert_eq!(explicit.type_availability_zones(), ["az3"]);
    }
}
