//! `CapabilitiesFilter` (`manila/scheduler/filters/capabilities.py`, `utils.py`).

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::Filter;
use crate::extra_specs_ops;
use crate::pyval::truthy;
use crate::{PoolState, ScheduleRequest};

/// Extra specs that are not capabilities and never constrain a pool here.
const IGNORED_EXTRA_SPECS: [&str; 3] = [
    "availability_zones",
    "capabilities:availability_zones",
    "default_qos_type",
];

/// Keeps pools whose capabilities satisfy the share type's extra specs (after Manila's
/// rewriting, [`ScheduleRequest::effective_extra_specs`]); see
/// [`capabilities_satisfied`]. A type with `default_qos_type` also needs a pool reporting
/// `qos_type_support`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CapabilitiesFilter;

impl Filter for CapabilitiesFilter {
    fn name(&self) -> &'static str {
        "CapabilitiesFilter"
    }

    fn passes(&self, pool: &PoolState, req: &ScheduleRequest) -> bool {
        let specs = req.effective_extra_specs();
        if specs.is_empty() {
            return true;
        }
        let wants_qos = specs.get("default_qos_type").is_some_and(|v| !v.is_empty());
        if wants_qos && !pool.capability("qos_type_support").is_some_and(truthy) {
            return false;
        }
        capabilities_satisfied(&pool.capabilities, &specs)
    }
}

/// Manila's `utils.capabilities_satisfied`: every extra spec that names a capability must
/// match it ([`extra_specs_ops::matches`]).
///
/// * `availability_zones`, `capabilities:availability_zones` and `default_qos_type` are
///   skipped (they are not capabilities);
/// * a scoped key (`vendor:thing`, `provisioning:max_share_size`) is skipped unless the
///   scope is `capabilities:`, which is stripped; further `:` walk into nested maps
///   (`capabilities:a:b` is `capabilities["a"]["b"]`);
/// * a capability the pool does not report (or reports as `null`) fails the pool;
/// * a list-valued capability matches when any element does.
pub fn capabilities_satisfied(
    capabilities: &Map<String, Value>,
    extra_specs: &BTreeMap<String, String>,
) -> bool {
    extra_specs.iter().all(|(key, req)| {
        if IGNORED_EXTRA_SPECS.contains(&key.as_str()) {
            return true;
        }
        let mut scope: Vec<&str> = key.split(':').collect();
        if scope.len() > 1 && scope[0] != "capabilities" {
            return true; // some other scope (vendor specific): not ours to check
        }
        if scope[0] == "capabilities" {
            scope.remove(0);
        }
        let root;
        let cap = if scope.is_empty() {
            // The bare key `capabilities` compares against the whole map, as in Manila.
            root = Value::Object(capabilities.clone());
            Some(&root)
        } else {
            lookup(capabilities, &scope)
        };
        let Some(cap) = cap else {
            return false;
        };
        match cap {
            Value::Array(values) => values.iter().any(|v| extra_specs_ops::matches(v, req)),
            single => extra_specs_ops::matches(single, req),
        }
    })
}

/// Walks `path` through nested capability maps; `None` when a step is missing, `null`, or
/// not a map.
fn lookup<'a>(capabilities: &'a Map<String, Value>, path: &[&str]) -> Option<&'a Value> {
    let (first, rest) = path.split_first()?;
    let mut cap = capabilities.get(*first)?;
    for step in rest {
        cap = cap.as_object()?.get(*step)?;
    }
    (!cap.is_null()).then_some(cap)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_utils::{pool, request};
    use serde_json::json;

    fn specs(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn caps(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn capabilities_satisfied_table() {
        let c = caps(json!({
            "share_backend_name": "Dummy1",
            "replication_type": "readable",
            "snapshot_support": true,
            "driver_handles_share_servers": false,
            "storage_protocol": "NFS_CIFS",
            "total_capacity_gb": 100,
            "thin_provisioning": [true, false],
            "protocols": ["nfs", "cifs"],
            "nested": {"level": {"deep": "yes"}, "n": null},
            "maybe": null,
            "empty_list": [],
        }));
        let rows: &[(&[(&str, &str)], bool)] = &[
            (&[], true),
            (&[("share_backend_name", "dummy1")], true),
            (&[("share_backend_name", "dummy2")], false),
            (&[("capabilities:share_backend_name", "DUMMY1")], true),
            (&[("replication_type", "readable")], true),
            (&[("replication_type", "dr")], false),
            (&[("snapshot_support", "<is> True")], true),
            (&[("snapshot_support", "True")], true),
            (&[("snapshot_support", "<is> False")], false),
            (&[("driver_handles_share_servers", "<is> False")], true),
            (&[("storage_protocol", "<in> NFS")], true),
            (&[("storage_protocol", "<in> CEPHFS")], false),
            (&[("total_capacity_gb", ">= 50")], true),
            (&[("total_capacity_gb", "<= 50")], false),
            (&[("thin_provisioning", "<is> True")], true),
            (&[("thin_provisioning", "<is> False")], true), // any list element
            (&[("protocols", "cifs")], true),
            (&[("protocols", "<or> glusterfs <or> nfs")], true),
            (&[("protocols", "cephfs")], false),
            (&[("empty_list", "x")], false),
            (&[("not_reported", "x")], false),
            (&[("maybe", "x")], false),
            (&[("capabilities:nested:level:deep", "<is> True")], true),
            (&[("capabilities:nested:level:other", "x")], false),
            (&[("capabilities:nested:n", "x")], false),
            (&[("capabilities:share_backend_name:x", "x")], false),
            // scoped keys of other scopes are not capabilities
            (&[("vendor:anything", "whatever")], true),
            (&[("provisioning:max_share_size", "1")], true),
            // ignored specs
            (&[("availability_zones", "az9")], true),
            (&[("capabilities:availability_zones", "az9")], true),
            (&[("default_qos_type", "gold")], true),
            // all must match
            (
                &[("share_backend_name", "dummy1"), ("replication_type", "dr")],
                false,
            ),
        ];
        for (pairs, expected) in rows {
            assert_eq!(
                capabilities_satisfied(&c, &specs(pairs)),
                *expected,
                "{pairs:?}"
            );
        }
    }

    #[test]
    fn filter_applies_manila_rewrites() {
        let p = pool("h@dummy1#p")
            .cap("storage_protocol", json!("NFS_CIFS"))
            .cap("snapshot_support", json!(true))
            .cap("share_backend_name", json!("dummy1"))
            .build();
        let mut req = request(1);
        req.extra_specs
            .insert("snapshot_support".to_owned(), "True".to_owned());
        assert!(CapabilitiesFilter.passes(&p, &req));

        // the share protocol must be among the pool's
        req.share_proto = "CEPHFS".to_owned();
        assert!(!CapabilitiesFilter.passes(&p, &req));
        req.share_proto = "cifs".to_owned();
        assert!(CapabilitiesFilter.passes(&p, &req));

        // share_backend_name pins a share, not a replica
        req.extra_specs
            .insert("share_backend_name".to_owned(), "dummy2".to_owned());
        assert!(!CapabilitiesFilter.passes(&p, &req));
        req.replication = Some(crate::ReplicaRequest {
            active_replica_host: "h@dummy2#p".to_owned(),
            replication_type: "readable".to_owned(),
        });
        assert!(CapabilitiesFilter.passes(&p, &req));
    }

    #[test]
    fn default_qos_type_needs_qos_support() {
        let mut req = request(1);
        req.extra_specs
            .insert("default_qos_type".to_owned(), "gold".to_owned());
        let without = pool("h@b#p").build();
        let with = pool("h@b#p").cap("qos_type_support", json!(true)).build();
        let falsy = pool("h@b#p").cap("qos_type_support", json!(false)).build();
        assert!(!CapabilitiesFilter.passes(&without, &req));
        assert!(CapabilitiesFilter.passes(&with, &req));
        assert!(!CapabilitiesFilter.passes(&falsy, &req));
    }
}
