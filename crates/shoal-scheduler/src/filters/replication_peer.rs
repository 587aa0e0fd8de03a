//! `ReplicationPeerFilter` (shoal's own): a replica goes to another node only if that node
//! can read the active replica's data there.
//!
//! A back end whose replicas read the active's data from the active's node (the `local`
//! back end reports the capability `replication_peer_transport`) can only copy across
//! nodes through the replication endpoint of the active's node. The scheduler knows when
//! there is none (the node publishes no `replication_address` with its heartbeat), so it
//! does not place a replica that would only end in `error`: it keeps the pools of the
//! active's own node and drops the others. Back ends that copy without a transport (the
//! `dummy` driver) are not constrained.

use serde_json::Value;

use super::Filter;
use crate::{PoolState, ScheduleRequest};

/// Capability of a pool whose replicas on other nodes read from its node's endpoint.
pub const PEER_TRANSPORT_CAPABILITY: &str = "replication_peer_transport";
/// Capability the scheduler adds to a pool from its share service: where its node serves
/// the replication endpoint (absent when it serves none).
pub const REPLICATION_ADDRESS_CAPABILITY: &str = "replication_address";

/// Keeps, for a secondary replica, the pools that can copy from the active replica's node.
#[derive(Debug, Clone, Default)]
pub struct ReplicationPeerFilter {
    /// The node of the active replica's pool, when replicas elsewhere need its endpoint and
    /// it serves none.
    unreachable_active_node: Option<String>,
}

/// The node (`host` setting) of a pool or back end name `node@backend#pool`.
fn node_of(name: &str) -> &str {
    name.split('@').next().unwrap_or(name)
}

impl ReplicationPeerFilter {
    /// Looks the active replica's pool up in the snapshot.
    pub fn for_request(req: &ScheduleRequest, pools: &[PoolState]) -> Self {
        let unreachable_active_node = req.replication.as_ref().and_then(|replication| {
            let active = pools
                .iter()
                .find(|p| p.name == replication.active_replica_host)?;
            let needs_peer =
                active.capability(PEER_TRANSPORT_CAPABILITY) == Some(&Value::Bool(true));
            let has_address = active
                .capability(REPLICATION_ADDRESS_CAPABILITY)
                .and_then(Value::as_str)
                .is_some_and(|a| !a.is_empty());
            (needs_peer && !has_address).then(|| node_of(&active.name).to_owned())
        });
        Self {
            unreachable_active_node,
        }
    }
}

impl Filter for ReplicationPeerFilter {
    fn name(&self) -> &'static str {
        "ReplicationPeerFilter"
    }

    fn passes(&self, pool: &PoolState, _req: &ScheduleRequest) -> bool {
        self.unreachable_active_node
            .as_deref()
            .is_none_or(|node| node_of(&pool.name) == node)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ReplicaRequest;
    use crate::test_utils::{pool, request};

    fn replica_of(active: &str) -> ScheduleRequest {
        let mut req = request(1);
        req.replication = Some(ReplicaRequest {
            active_replica_host: active.to_owned(),
            replication_type: "readable".to_owned(),
        });
        req
    }

    #[test]
    fn other_nodes_need_the_active_nodes_endpoint() {
        let local = |name: &str, address: Option<&str>| {
            let mut b = pool(name).cap(PEER_TRANSPORT_CAPABILITY, json!(true));
            if let Some(a) = address {
                b = b.cap(REPLICATION_ADDRESS_CAPABILITY, json!(a));
            }
            b.build()
        };
        let candidates = [local("n1@local2#p", None), local("n2@local#p", None)];
        let passing = |active: PoolState| {
            let mut pools = vec![active.clone()];
            pools.extend(candidates.iter().cloned());
            let req = replica_of(&active.name);
            let filter = ReplicationPeerFilter::for_request(&req, &pools);
            candidates
                .iter()
                .filter(|p| filter.passes(p, &req))
                .map(|p| p.name.clone())
                .collect::<Vec<_>>()
        };
        // The active's node serves an endpoint: every node can copy from it.
        assert_eq!(
            passing(local("n1@local#p", Some("10.0.0.1:8787"))),
            ["n1@local2#p", "n2@local#p"]
        );
        // It serves none: only its own node's pools can.
        assert_eq!(passing(local("n1@local#p", None)), ["n1@local2#p"]);
        assert_eq!(passing(local("n1@local#p", Some(""))), ["n1@local2#p"]);
        // A back end that copies without a transport (dummy) is not constrained.
        assert_eq!(
            passing(pool("n1@dummy#p").build()),
            ["n1@local2#p", "n2@local#p"]
        );
        // A new share (no active replica) is not constrained either.
        let req = request(1);
        let filter = ReplicationPeerFilter::for_request(&req, &candidates);
        assert!(candidates.iter().all(|p| filter.passes(p, &req)));
    }
}
