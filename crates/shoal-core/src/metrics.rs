//! The series this crate records through the `metrics` facade: durable operations as this
//! process's workers run them, and replica syncs as this node's back ends finish them. The
//! API crate installs the recorder and serves `/metrics`; [`describe`] gives the help texts
//! of these series and of the crates below (replication transport, NFS, identity).

use chrono::{DateTime, Utc};
use metrics::{Unit, counter, describe_counter, describe_histogram, histogram};
use shoal_store::{OperationRow, ReplicationRecord};

/// Help texts of every series recorded below the API crate.
pub fn describe() {
    describe_histogram!(
        "shoal_operation_claim_delay_seconds",
        Unit::Seconds,
        "Time from an operation becoming claimable (created, or its retry backoff over) to its claim, by kind"
    );
    describe_histogram!(
        "shoal_operation_duration_seconds",
        Unit::Seconds,
        "Time a claimed operation's handler ran, by kind and outcome"
    );
    describe_counter!(
        "shoal_operations_completed_total",
        "Operations this process completed, by kind"
    );
    describe_counter!(
        "shoal_operation_retries_total",
        "Failed attempts of operations that will be retried, by kind"
    );
    describe_counter!(
        "shoal_operation_failures_total",
        "Operations this process gave up on after their last attempt, by kind"
    );
    describe_counter!(
        "shoal_operation_lock_waits_total",
        "Attempts put back because another node held the share's replica lock, by kind"
    );
    describe_counter!(
        "shoal_replication_syncs_total",
        "Replica syncs this node finished, by trigger and outcome"
    );
    describe_histogram!(
        "shoal_replication_sync_duration_seconds",
        Unit::Seconds,
        "Duration of the replica syncs this node finished, by trigger"
    );
    describe_counter!(
        "shoal_replication_written_bytes_total",
        Unit::Bytes,
        "File bytes replica syncs wrote on this node"
    );
    describe_counter!(
        "shoal_replication_written_files_total",
        "Entries replica syncs wrote on this node"
    );
    describe_counter!(
        "shoal_replication_wire_bytes_total",
        Unit::Bytes,
        "Bytes replica syncs on this node received from other nodes"
    );
    shoal_replication::metrics::describe();
    shoal_nfs::metrics::describe();
    shoal_identity::metrics::describe();
}

/// Seconds from `from` to `to`, 0 when `to` is earlier (clocks of two nodes may differ).
pub fn seconds_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(0).max(0) as f64 / 1e6
}

/// An operation was claimed at `now`.
pub(crate) fn operation_claimed(op: &OperationRow, now: DateTime<Utc>) {
    let ready = op.not_before.unwrap_or(op.created_at).max(op.created_at);
    let delay = seconds_between(ready, now);
    histogram!("shoal_operation_claim_delay_seconds", "kind" => op.kind.clone()).record(delay);
}

/// How a claimed operation's attempt ended.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Attempt {
    Completed,
    /// Another node holds the share's lock; retried soon, not counted as a failure.
    LockBusy,
    Retried,
    GaveUp,
}

/// A claimed operation's handler returned after `seconds`.
pub(crate) fn operation_finished(kind: &str, attempt: Attempt, seconds: f64) {
    let (outcome, name) = match attempt {
        Attempt::Completed => ("completed", "shoal_operations_completed_total"),
        Attempt::LockBusy => ("lock_busy", "shoal_operation_lock_waits_total"),
        Attempt::Retried => ("retried", "shoal_operation_retries_total"),
        Attempt::GaveUp => ("failed", "shoal_operation_failures_total"),
    };
    histogram!("shoal_operation_duration_seconds", "kind" => kind.to_owned(), "outcome" => outcome)
        .record(seconds);
    counter!(name, "kind" => kind.to_owned()).increment(1);
}

/// A replica sync finished on this node.
pub(crate) fn sync_finished(record: &ReplicationRecord) {
    let seconds = seconds_between(record.started_at, record.finished_at);
    counter!("shoal_replication_syncs_total", "trigger" => record.trigger.clone(), "outcome" => record.outcome.clone())
        .increment(1);
    histogram!("shoal_replication_sync_duration_seconds", "trigger" => record.trigger.clone())
        .record(seconds);
    counter!("shoal_replication_written_bytes_total")
        .increment(record.bytes_transferred.max(0) as u64);
    counter!("shoal_replication_written_files_total")
        .increment(record.files_transferred.max(0) as u64);
    counter!("shoal_replication_wire_bytes_total").increment(record.wire_bytes.max(0) as u64);
}
