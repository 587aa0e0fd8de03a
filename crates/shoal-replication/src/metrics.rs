//! The replication transport's series: requests served and made between nodes, by
//! endpoint and status, and the bytes on the wire each way.

use metrics::{Unit, counter, describe_counter};

/// Help texts of this crate's series.
pub fn describe() {
    describe_counter!(
        "shoal_replication_transport_requests_total",
        "Replication requests this node's endpoint answered, by endpoint and status"
    );
    describe_counter!(
        "shoal_replication_transport_sent_bytes_total",
        Unit::Bytes,
        "Response bytes this node's replication endpoint sent"
    );
    describe_counter!(
        "shoal_replication_transport_client_requests_total",
        "Replication requests this node made to other nodes, by endpoint and status (or unreachable)"
    );
    describe_counter!(
        "shoal_replication_transport_received_bytes_total",
        Unit::Bytes,
        "Response bytes this node received from other nodes' replication endpoints"
    );
}

pub(crate) fn served(endpoint: String, status: u16) {
    counter!("shoal_replication_transport_requests_total", "endpoint" => endpoint, "status" => status.to_string())
        .increment(1);
}

pub(crate) fn sent(bytes: usize) {
    counter!("shoal_replication_transport_sent_bytes_total").increment(bytes as u64);
}

pub(crate) fn asked(endpoint: &str, status: &str) {
    counter!("shoal_replication_transport_client_requests_total", "endpoint" => endpoint.to_owned(), "status" => status.to_owned())
        .increment(1);
}

pub(crate) fn received(bytes: usize) {
    counter!("shoal_replication_transport_received_bytes_total").increment(bytes as u64);
}
