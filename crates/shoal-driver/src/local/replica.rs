//! Replica calls of the `local` driver: creating a secondary, keeping it in sync, promoting
//! it, demoting a former active, deleting either.
//!
//! A secondary lives in `<pool>/replicas/<id>/`, a directory of the replication engine
//! ([`crate::replication::ReplicaDir`]): complete published versions and a `current` link
//! to the newest. The engine moves data; this module decides what to sync from, when, and
//! what state the replica is in.
//!
//! Sync source: the active replica's admin-only export location `local://<host><path>`
//! names its data root (`<pool>/shares/<active-id>`). On this host the engine reads it
//! directly; on another host it reads it through that node's replication endpoint, whose
//! address the node publishes with the heartbeat of its share services
//! ([`ReplicaRef::replication_address`]).
//!
//! Persisted in `<pool>/replicas/<id>.state.json` and why: the replication type (so
//! `ensure_share` after a restart answers the right export locations without the database),
//! the source point of the last clean sync, and the number of failed syncs in a row. The last
//! two make the reported state a fact about the data rather than about the last call: a
//! secondary whose active is unreachable stays `in_sync` while its last clean sync is newer
//! than the configured RPO, then turns `out_of_sync`, and `error` after
//! [`FAILED_SYNCS_FOR_ERROR`] failed syncs in a row.
//!
//! Role changes: promotion turns the published version into `shares/<id>` (the engine's
//! `promote_into`); the former active, on its own back end, is demoted on its next
//! `update_replica_state` by handing its tree to the engine (`adopt`), so the first sync
//! after a promotion sends only differences. Every step is idempotent, so an operation
//! retried after a crash finishes the job.
//!
//! Following the active's change journal: a secondary keeps, in its book, its cursor in
//! the active's change journal; each sync looks only at the paths recorded since, on this
//! host directly or, for an active on another node, through that node's `changes` request
//! (the same code looks at the paths in both cases, on the node holding the tree). It
//! walks when the journal cannot say, when the periodic verification is due, on an
//! admin's resync, and when the active keeps no journal (see [`sync_secondary`]).
//!
//! Quiescing: promotion quiesces the active first. On this node (the active lives in one
//! of this driver's pools) it writes `<pool>/shares/<active-id>.quiesced`, and the NFS data
//! plane then refuses new writes to it (`NFS3ERR_JUKEBOX`: clients retry) and waits, at
//! most `quiesce_wait`, for the writes under way; only then does the final sync start. On
//! another node the same is asked of that node through its replication endpoint
//! (`quiesce`, answered by [`LocalDriver::quiesce_active`] there). Writes that do not
//! finish in time fail the promotion, and a failed promotion lifts the quiesce (locally or
//! with `unquiesce`). When the active's node cannot be reached (the disaster case: it is
//! gone) or cannot quiesce, the promotion goes on without, which is logged: the final sync
//! then reads a share that may still take writes, or the last published version.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use super::{
    Instance, LOCAL_SCHEME, LocalDriver, Role, SYNC_PAUSE_DEFAULT, blocking, io_error,
    location_path, read_json, write_json,
};
use crate::fsutil;
use crate::replication::journal::{ChangeJournal, Cursor};
use crate::replication::transport::{PeerClient, QuiesceError, QuiesceFailure};
use crate::replication::{ReplicaDir, SyncError, SyncOptions, SyncReport};
use crate::{
    DriverError, ExportLocation, ReplicaContext, ReplicaRef, ReplicaResult, ShareInstanceRef,
    SyncRecord, check_protocol,
};

/// How long a promotion waits for the writes under way on the active to finish, when the
/// request gives no `quiesce_wait_time`.
pub(crate) const QUIESCE_WAIT_DEFAULT: Duration = Duration::from_secs(10);

/// Failed syncs in a row after which a secondary is reported in `error`.
pub(crate) const FAILED_SYNCS_FOR_ERROR: u32 = 3;

/// Contents of `replicas/<id>.state.json`.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
struct ReplicaBook {
    /// `readable` or `dr`: decides the export locations and the read-only bits.
    replication_type: Option<String>,
    /// Source point of the last clean sync: the newest moment the secondary is known to equal
    /// the active.
    last_clean_source_point: Option<DateTime<Utc>>,
    /// Syncs that failed in a row because the active was unreachable.
    consecutive_failures: u32,
    /// Position in the active's change journal that the published version reflects: the
    /// next sync looks only at the paths recorded since (see [`sync_secondary`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    journal_cursor: Option<Cursor>,
    /// When the last sync that walked the whole source started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_walk: Option<DateTime<Utc>>,
}

impl ReplicaBook {
    /// Records a sync that read the whole source and returns the replica's state.
    fn record_sync(&mut self, report: &SyncReport, rpo: Duration) -> &'static str {
        self.consecutive_failures = 0;
        if report.clean {
            self.last_clean_source_point = Some(report.source_point);
            "in_sync"
        } else {
            // Complete but not a point-in-time copy: only the last clean one counts.
            self.state(report.finished_at, rpo)
        }
    }

    /// Records a sync that could not read the source and returns the replica's state.
    fn record_failure(&mut self, now: DateTime<Utc>, rpo: Duration) -> &'static str {
        self.consecutive_failures = self.consecutive_failures.saturating_add(1);
        self.state(now, rpo)
    }

    /// The state the facts support at `now`.
    fn state(&self, now: DateTime<Utc>, rpo: Duration) -> &'static str {
        if self.consecutive_failures >= FAILED_SYNCS_FOR_ERROR {
            return "error";
        }
        let rpo = TimeDelta::from_std(rpo).unwrap_or(TimeDelta::MAX);
        match self.last_clean_source_point {
            Some(point) if now.signed_duration_since(point) < rpo => "in_sync",
            _ => "out_of_sync",
        }
    }
}

/// What the replica calls need besides the instance, cloned into blocking tasks.
#[derive(Debug, Clone)]
struct Job {
    host: String,
    share: ShareInstanceRef,
    replication_type: String,
    opts: SyncOptions,
    rpo: Duration,
    /// Longest time between two syncs that walk the whole source (see [`sync_secondary`]).
    verify_interval: Duration,
    /// This sync walks the whole source whatever the journal says (an admin's resync).
    full_sync: bool,
}

impl LocalDriver {
    /// Sync options for a share of `replication_type`, with the configured test pause.
    fn sync_options(&self, replication_type: &str) -> SyncOptions {
        SyncOptions {
            read_only: replication_type == "readable",
            pause_after_entries: self.options.sync_pause_after_entries.map(|entries| {
                (
                    entries,
                    self.options.sync_pause.unwrap_or(SYNC_PAUSE_DEFAULT),
                )
            }),
            ..SyncOptions::default()
        }
    }

    fn job(&self, replica: &ReplicaRef, ctx: &ReplicaContext<'_>) -> Job {
        Job {
            host: self.info.host.clone(),
            share: replica.instance.clone(),
            replication_type: ctx.replication_type.to_owned(),
            opts: self.sync_options(ctx.replication_type),
            rpo: self.options.replication_rpo,
            verify_interval: self.options.verify_interval,
            full_sync: ctx.full_sync,
        }
    }

    /// Where to sync from: the active's data root, from its admin-only `local://` export
    /// location (any `local://` location of a share created before every active had an
    /// admin-only one), on this host or through the endpoint of the active's node. Only the
    /// form is checked here; [`check_source`] (or the peer) looks at the directory.
    fn sync_source(
        &self,
        replica: &ReplicaRef,
        active: &ReplicaRef,
    ) -> Result<SyncSource, DriverError> {
        let active_id = &active.instance.id;
        if !fsutil::is_canonical_uuid(active_id) {
            return Err(DriverError::InvalidInput(format!(
                "active replica id {active_id:?} is not a canonical lowercase UUID"
            )));
        }
        if *active_id == replica.instance.id {
            return Err(DriverError::InvalidInput(format!(
                "replica {active_id} is the active replica itself"
            )));
        }
        let local = |l: &&ExportLocation| l.path.starts_with(LOCAL_SCHEME);
        let location = active
            .export_locations
            .iter()
            .filter(local)
            .find(|l| l.is_admin_only)
            .or_else(|| active.export_locations.iter().find(local))
            .ok_or_else(|| {
                DriverError::InvalidInput(format!(
                    "active replica {active_id} has no local:// export location to sync from"
                ))
            })?;
        let rest = &location.path[LOCAL_SCHEME.len()..];
        let slash = rest.find('/').ok_or_else(|| {
            DriverError::InvalidInput(format!(
                "export location {:?} of active replica {active_id} has no absolute path",
                location.path
            ))
        })?;
        let (host, path) = rest.split_at(slash);
        let path = PathBuf::from(path);
        // The path must be an active's data root, `<pool>/shares/<active-id>`, reached
        // without `..`: a stray or edited location cannot make the driver copy another tree.
        let plain = path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        let is_data_root = path.file_name().is_some_and(|n| n == active_id.as_str())
            && path
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == "shares");
        if !path.is_absolute() || !plain || !is_data_root {
            return Err(DriverError::InvalidInput(format!(
                "export location {:?} of active replica {active_id} is not a share data root",
                location.path
            )));
        }
        if host == self.info.host {
            return Ok(SyncSource::Local {
                root: path,
                journal: self.journal_of(active_id),
            });
        }
        let Some(client) = &self.peers else {
            return Ok(SyncSource::Unavailable(format!(
                "the active replica {active_id} is on host {host:?}, and this node has no \
                 replication client to reach it"
            )));
        };
        let Some(address) = active.replication_address.clone() else {
            return Ok(SyncSource::Unavailable(format!(
                "the active replica {active_id} is on host {host:?}, which publishes no \
                 replication endpoint (its [replication] listen is not set)"
            )));
        };
        Ok(SyncSource::Peer {
            client: client.clone(),
            address,
            root: path,
            epoch: active.replica_epoch,
        })
    }

    /// The active's instance when it lives in one of this driver's pools.
    fn own_instance(&self, replica: &ReplicaRef) -> Option<Instance> {
        let ours = format!(
            "{}@{}#{}",
            self.info.host, self.info.backend_name, replica.instance.pool
        );
        if replica.host != ours {
            return None;
        }
        self.instance(&replica.instance).ok()
    }

    pub(super) async fn create_replica_impl(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
    ) -> Result<ReplicaResult, DriverError> {
        check_protocol(&replica.instance)?;
        if replica.instance.size_gb == 0 {
            return Err(DriverError::InvalidInput(
                "a share size must be at least 1 GiB".to_owned(),
            ));
        }
        check_replication_type(ctx.replication_type)?;
        let instance = self.instance(&replica.instance)?;
        let active = ctx.active.ok_or_else(|| {
            DriverError::InvalidInput(format!(
                "share {} has no active replica to copy",
                replica.instance.share_id
            ))
        })?;
        let source = self.sync_source(replica, active)?;
        let job = self.job(replica, ctx);
        blocking(move || create_secondary(&instance, &job, &source)).await
    }

    pub(super) async fn update_replica_state_impl(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
    ) -> Result<ReplicaResult, DriverError> {
        check_replication_type(ctx.replication_type)?;
        let instance = self.instance(&replica.instance)?;
        let Some(active) = ctx.active else {
            // Nothing to sync from (the share manager handles this case before calling).
            return Ok(ReplicaResult {
                replica_state: "out_of_sync".to_owned(),
                export_locations: None,
                sync: None,
            });
        };
        if active.instance.id == replica.instance.id {
            return Ok(ReplicaResult {
                replica_state: "active".to_owned(),
                export_locations: None,
                sync: None,
            });
        }
        let source = self.sync_source(replica, active)?;
        let job = self.job(replica, ctx);
        let stored = replica.export_locations.clone();
        blocking(move || update_secondary(&instance, &job, &source, &stored)).await
    }

    pub(super) async fn promote_replica_impl(
        &self,
        replica: &ReplicaRef,
        ctx: &ReplicaContext<'_>,
        quiesce_wait: Option<Duration>,
    ) -> Result<ReplicaResult, DriverError> {
        check_replication_type(ctx.replication_type)?;
        let instance = self.instance(&replica.instance)?;
        let active = ctx.active.filter(|a| a.instance.id != replica.instance.id);
        let source = active.map(|a| self.sync_source(replica, a)).transpose()?;
        // (1) Quiesce the active, on this node or on its own: the marker survives a restart,
        // the data plane refuses new writes (clients are told to retry) and the writes under
        // way are waited for, at most `quiesce_wait`, so none is acknowledged after the
        // final sync starts.
        let wait = quiesce_wait.unwrap_or(QUIESCE_WAIT_DEFAULT);
        let promoting = &replica.instance.id;
        let quiesced = match (active.and_then(|a| self.own_instance(a)), &source) {
            (Some(active_instance), _) => {
                if let Err(err) = self
                    .quiesce_instance(&active_instance, promoting, wait)
                    .await
                {
                    self.unquiesce_instance(&active_instance).await;
                    return Err(DriverError::Other(anyhow::anyhow!("{err}")));
                }
                Some(Quiesced::Here(active_instance))
            }
            (None, Some(peer @ SyncSource::Peer { .. })) => {
                match peer_quiesce(peer.clone(), promoting, Some(wait)).await? {
                    Ok(()) => {
                        tracing::info!(share_instance.id = %promoting, "the active replica's node quiesced it for the promotion of {promoting}");
                        Some(Quiesced::Peer(peer.clone()))
                    }
                    Err(QuiesceFailure::TimedOut(why)) => {
                        unquiesce_peer(peer.clone(), promoting).await;
                        return Err(DriverError::Other(anyhow::anyhow!(
                            "the active replica's node could not quiesce it: {why}"
                        )));
                    }
                    Err(err) => {
                        // The disaster case (the node is gone) or a node that cannot:
                        // promote anyway, from whatever the final sync can still read.
                        tracing::warn!(share_instance.id = %promoting, error = %err, "promoting {promoting} without quiescing the active replica: {err}");
                        None
                    }
                }
            }
            (None, Some(SyncSource::Unavailable(why))) => {
                tracing::warn!(share_instance.id = %promoting, "promoting {promoting} without quiescing the active replica: {why}");
                None
            }
            _ => None,
        };
        let job = self.job(replica, ctx);
        let promote_instance = instance.clone();
        let result = blocking(move || promote_secondary(&promote_instance, &job, source)).await;
        if result.is_err() {
            // The active stays active: let it take writes again.
            match quiesced {
                Some(Quiesced::Here(active_instance)) => {
                    self.unquiesce_instance(&active_instance).await;
                }
                Some(Quiesced::Peer(peer)) => unquiesce_peer(peer, promoting).await,
                None => {}
            }
        }
        result
    }

    /// Quiesces `active` for the promotion of `promoting`: writes its marker (a failure is
    /// logged, not fatal: the active's pool may be the very thing that failed), makes the
    /// data plane refuse new writes and waits, at most `wait`, for the writes under way.
    /// On [`QuiesceError::TimedOut`] the active stays quiesced until
    /// [`Self::unquiesce_instance`].
    async fn quiesce_instance(
        &self,
        active: &Instance,
        promoting: &str,
        wait: Duration,
    ) -> Result<(), QuiesceError> {
        let (marking, promoting_id) = (active.clone(), promoting.to_owned());
        let marked = blocking(move || write_quiesced(&marking, &promoting_id)).await;
        if let Err(err) = marked {
            tracing::warn!(share_instance.id = %active.id, error = %err, "could not write the quiesce marker of {}: {err}", active.id);
        }
        self.drain_writes(active, wait).await
    }

    /// Makes the data plane refuse writes to `active` and waits, at most `wait`, for the
    /// writes under way to finish.
    async fn drain_writes(&self, active: &Instance, wait: Duration) -> Result<(), QuiesceError> {
        let Some(plane) = &self.nfs else {
            return Ok(());
        };
        match tokio::time::timeout(wait, plane.exports.set_quiesced(&active.id, true)).await {
            Ok(Ok(())) => Ok(()),
            // Not exported (a CIFS share, an export that failed): no NFS writer to wait for.
            Ok(Err(err)) => {
                tracing::debug!(share_instance.id = %active.id, error = %err, "nothing to quiesce on the data plane: {err}");
                Ok(())
            }
            Err(_) => Err(QuiesceError::TimedOut(format!(
                "the writes under way on active replica {} did not finish within the quiesce \
                 wait time of {wait:?}",
                active.id
            ))),
        }
    }

    /// The active instance whose data root is `root` (`<pool>/shares/<id>` of one of this
    /// driver's pools), if there is one.
    fn active_at(&self, root: &Path) -> Option<Instance> {
        let id = root.file_name()?.to_str()?;
        let shares = root.parent()?;
        let pool = self.pools.iter().find(|p| {
            let dir = p.path.join("shares");
            dir == shares || fs::canonicalize(&dir).is_ok_and(|c| c == shares)
        })?;
        let instance = self
            .instance(&ShareInstanceRef {
                id: id.to_owned(),
                share_id: String::new(),
                pool: pool.name.clone(),
                size_gb: 0,
                share_proto: String::new(),
            })
            .ok()?;
        matches!(instance.layout(), Ok(Some(Role::Active))).then_some(instance)
    }

    /// Whether the data root `root` is an active instance of this driver (the replication
    /// endpoint picks the driver to quiesce it with).
    pub fn has_active_at(&self, root: &Path) -> bool {
        self.active_at(root).is_some()
    }

    /// Quiesces the active instance whose data root is `root` for the promotion of
    /// `promoting` on another node (the replication endpoint's `quiesce`); the same steps
    /// as a promotion on this node.
    pub async fn quiesce_active(
        &self,
        root: &Path,
        promoting: &str,
        wait: Duration,
    ) -> Result<(), QuiesceError> {
        let active = self.active_at(root).ok_or_else(|| {
            QuiesceError::Failed(format!(
                "{} is not an active share instance of this node",
                root.display()
            ))
        })?;
        self.quiesce_instance(&active, promoting, wait).await
    }

    /// Lets the active instance whose data root is `root` take writes again (the
    /// replication endpoint's `unquiesce`, after a promotion on another node failed).
    pub async fn unquiesce_active(&self, root: &Path) -> Result<(), QuiesceError> {
        let active = self.active_at(root).ok_or_else(|| {
            QuiesceError::Failed(format!(
                "{} is not an active share instance of this node",
                root.display()
            ))
        })?;
        self.lift_quiesce(&active)
            .await
            .map_err(|err| QuiesceError::Failed(err.to_string()))
    }

    /// Lets a still-active replica take writes again: removes its marker and refreshes its
    /// export from that. Failures are logged.
    async fn unquiesce_instance(&self, active: &Instance) {
        if let Err(err) = self.lift_quiesce(active).await {
            tracing::warn!(share_instance.id = %active.id, error = %err, "could not unquiesce the active replica {}: {err}", active.id);
        }
    }

    async fn lift_quiesce(&self, active: &Instance) -> Result<(), DriverError> {
        let unmarking = active.clone();
        blocking(move || {
            fsutil::remove_any(&unmarking.shares.join(unmarking.quiesced_name()))
                .map_err(|e| io_error(e, "removing a quiesce marker".to_owned()))
        })
        .await?;
        self.refresh_export(active).await
    }
}

/// The active a promotion quiesced.
enum Quiesced {
    /// In one of this driver's pools.
    Here(Instance),
    /// On another node (a [`SyncSource::Peer`]).
    Peer(SyncSource),
}

/// Asks the node of the active `peer` (a [`SyncSource::Peer`]) to quiesce it (`wait`) or
/// unquiesce it (`None`).
async fn peer_quiesce(
    peer: SyncSource,
    promoting: &str,
    wait: Option<Duration>,
) -> Result<Result<(), QuiesceFailure>, DriverError> {
    let promoting = promoting.to_owned();
    blocking(move || {
        let SyncSource::Peer {
            client,
            address,
            root,
            epoch,
        } = &peer
        else {
            return Ok(Err(QuiesceFailure::Refused(
                "the active replica is not on a peer node".to_owned(),
            )));
        };
        let source = client.source(address, root, *epoch);
        Ok(match wait {
            Some(wait) => source.quiesce(&promoting, wait),
            None => source.unquiesce(&promoting),
        })
    })
    .await
}

/// Lifts the quiesce of an active on another node; failures are logged.
async fn unquiesce_peer(peer: SyncSource, promoting: &str) {
    match peer_quiesce(peer, promoting, None).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => {
            tracing::warn!(share_instance.id = %promoting, error = %err, "could not unquiesce the active replica on its node: {err}");
        }
        Err(err) => {
            tracing::warn!(share_instance.id = %promoting, error = %err, "could not unquiesce the active replica on its node: {err}");
        }
    }
}

/// The local back end replicates `readable` and `dr` shares only.
fn check_replication_type(replication_type: &str) -> Result<(), DriverError> {
    match replication_type {
        "readable" | "dr" => Ok(()),
        "writable" => Err(DriverError::InvalidInput(
            "the local back end supports readable and dr replication; writable needs the NFS \
             data plane"
                .to_owned(),
        )),
        other => Err(DriverError::InvalidInput(format!(
            "unknown replication type {other:?}"
        ))),
    }
}

/// An error of our own pool (replica directory unwritable, pool gone): the replica cannot be
/// served, which the share manager turns into status `error`.
fn pool_error(instance: &Instance, err: impl std::fmt::Display) -> DriverError {
    DriverError::PoolUnavailable {
        pool: instance.pool.clone(),
        reason: err.to_string(),
    }
}

/// Maps an engine error of a step that does not read the source.
fn engine_error(instance: &Instance, err: SyncError) -> DriverError {
    match err {
        SyncError::Io { .. } => pool_error(instance, err),
        SyncError::SourceUnavailable { .. } => DriverError::Other(anyhow::Error::from(err)),
    }
}

/// Checks the source is a real directory (never following a link) before the engine reads
/// it; anything else counts as an unavailable source.
fn check_source(source: &Path) -> Result<(), SyncError> {
    fsutil::require_real_dir(source).map_err(|err| SyncError::SourceUnavailable {
        path: source.to_owned(),
        source: err,
    })
}

/// Where a secondary syncs from.
#[derive(Debug, Clone)]
enum SyncSource {
    /// The active's data root on this host, with its change journal when this process
    /// serves the active over NFS.
    Local {
        root: PathBuf,
        journal: Option<Arc<ChangeJournal>>,
    },
    /// The active's data root on another node, read through that node's endpoint.
    Peer {
        client: Arc<PeerClient>,
        address: String,
        root: PathBuf,
        /// The active's epoch: its node refuses to serve the data at any other.
        epoch: i64,
    },
    /// On another node that cannot be reached (why): every sync fails as for an unreachable
    /// active, so the replica's state follows the same facts.
    Unavailable(String),
}

/// The update of a secondary: when the active's change journal (kept by the process that
/// serves the active over NFS, on this node or another) covers the secondary's cursor, only
/// the paths recorded since are looked at; otherwise, when the journal cannot say (a
/// restart or reset since, another active), when the active keeps no journal, when asked
/// (an admin's resync), and at least every `verify_interval` (changes made behind the data
/// plane's back), the whole source is walked. The journal's position taken before the
/// source is looked at becomes the new cursor: a change recorded after it is looked at
/// again next time, one recorded before it was on disk when the sync looked (the server
/// records after the change, before answering).
fn sync_secondary(
    dir: &ReplicaDir,
    source: &SyncSource,
    book: &mut ReplicaBook,
    job: &Job,
) -> Result<SyncReport, SyncError> {
    let verify_due = book.last_walk.is_none_or(|walked| {
        Utc::now().signed_duration_since(walked)
            >= TimeDelta::from_std(job.verify_interval).unwrap_or(TimeDelta::MAX)
    });
    let cursor = book
        .journal_cursor
        .filter(|_| !verify_due && !job.full_sync);
    let (report, next) = match source {
        SyncSource::Local {
            root,
            journal: Some(journal),
        } => {
            check_source(root)?;
            let (report, position) = dir.sync_from_journal(root, journal, cursor, &job.opts)?;
            (report, Some(position))
        }
        SyncSource::Peer {
            client,
            address,
            root,
            epoch,
        } => {
            dir.sync_from_peer_journal(&client.source(address, root, *epoch), cursor, &job.opts)?
        }
        SyncSource::Local { journal: None, .. } | SyncSource::Unavailable(_) => {
            (sync(dir, source, &job.opts)?, None)
        }
    };
    book.journal_cursor = next;
    if report.walked {
        book.last_walk = Some(report.started_at);
    }
    Ok(report)
}

fn sync(
    dir: &ReplicaDir,
    source: &SyncSource,
    opts: &SyncOptions,
) -> Result<SyncReport, SyncError> {
    match source {
        SyncSource::Local { root, .. } => {
            check_source(root)?;
            dir.sync_from(root, opts)
        }
        SyncSource::Peer {
            client,
            address,
            root,
            epoch,
        } => dir.sync_from_peer(&client.source(address, root, *epoch), opts),
        SyncSource::Unavailable(reason) => Err(SyncError::SourceUnavailable {
            path: PathBuf::new(),
            source: io::Error::other(reason.clone()),
        }),
    }
}

/// Creates `replicas/` if a pool set up before replication lacks it.
fn ensure_replicas_dir(instance: &Instance) -> Result<(), DriverError> {
    match fs::create_dir(&instance.replicas) {
        Err(err) if err.kind() != io::ErrorKind::AlreadyExists => {
            return Err(pool_error(instance, err));
        }
        _ => {}
    }
    fsutil::require_real_dir(&instance.replicas).map_err(|e| pool_error(instance, e))
}

fn read_book(instance: &Instance) -> Result<Option<ReplicaBook>, DriverError> {
    read_json(&instance.replicas.join(instance.state_name()))
}

fn write_book(instance: &Instance, book: &ReplicaBook) -> Result<(), DriverError> {
    write_json(&instance.replicas, &instance.state_name(), book)
        .map_err(|e| pool_error(instance, e))
}

fn remove_book(instance: &Instance) -> Result<(), DriverError> {
    fsutil::remove_any(&instance.replicas.join(instance.state_name()))
        .map_err(|e| pool_error(instance, e))
}

fn write_quiesced(active: &Instance, promoting: &str) -> Result<(), DriverError> {
    #[derive(Serialize)]
    struct Quiesced<'a> {
        /// The replica being promoted in its place.
        promoting: &'a str,
        quiesced_at: DateTime<Utc>,
    }
    write_json(
        &active.shares,
        &active.quiesced_name(),
        &Quiesced {
            promoting,
            quiesced_at: Utc::now(),
        },
    )
}

/// Export locations of a secondary: none for `dr` (a disaster-recovery copy is not mounted),
/// for `readable` its `current` link, read-only, once preferred and once admin-only.
fn secondary_locations(
    host: &str,
    instance: &Instance,
    replication_type: &str,
) -> Result<Vec<ExportLocation>, DriverError> {
    if replication_type == "dr" {
        return Ok(Vec::new());
    }
    let path = location_path(
        host,
        &instance.replicas,
        &format!("{}/current", instance.id),
    )?;
    let metadata = BTreeMap::from([("access".to_owned(), "ro".to_owned())]);
    Ok(vec![
        ExportLocation {
            path: path.clone(),
            is_admin_only: false,
            preferred: true,
            metadata: metadata.clone(),
        },
        ExportLocation {
            path,
            is_admin_only: true,
            preferred: false,
            metadata,
        },
    ])
}

/// The replication type a secondary was created with, `None` when its bookkeeping is gone
/// (then it is not exported: a `dr` copy must never be served by mistake).
pub(super) fn replication_type(instance: &Instance) -> Result<Option<String>, DriverError> {
    Ok(read_book(instance)?.and_then(|book| book.replication_type))
}

/// `ensure_share` of a secondary: its export locations, by the replication type it was
/// created with (the back end's when its bookkeeping was lost).
pub(super) fn ensure_secondary(
    host: &str,
    instance: &Instance,
    fallback_type: Option<&str>,
) -> Result<Vec<ExportLocation>, DriverError> {
    let book = read_book(instance)?.unwrap_or_default();
    let replication_type = book
        .replication_type
        .as_deref()
        .or(fallback_type)
        .unwrap_or("readable");
    secondary_locations(host, instance, replication_type)
}

/// Bytes of a secondary's published version (0 before its first sync finished).
pub(super) fn published_usage_bytes(instance: &Instance) -> Result<u64, DriverError> {
    if !instance.replica_exists()? {
        return Ok(0);
    }
    let dir = ReplicaDir::open(&instance.replica_root).map_err(|e| engine_error(instance, e))?;
    match dir.published().map_err(|e| engine_error(instance, e))? {
        Some(published) => fsutil::tree_usage_bytes(&published.path)
            .map_err(|e| io_error(e, format!("measuring {}", published.path.display()))),
        None => Ok(0),
    }
}

/// Removes a secondary's engine directory and bookkeeping, if any. Idempotent.
pub(super) fn remove_secondary(instance: &Instance) -> Result<(), DriverError> {
    if instance.replica_exists()? {
        let dir =
            ReplicaDir::open(&instance.replica_root).map_err(|e| engine_error(instance, e))?;
        // The engine restores write bits of read-only versions before removing them.
        dir.remove().map_err(|e| engine_error(instance, e))?;
    }
    if fs::symlink_metadata(&instance.replicas).is_ok() {
        remove_book(instance)?;
        fsutil::fsync_dir(&instance.replicas).map_err(|e| pool_error(instance, e))?;
    }
    Ok(())
}

/// The record of a sync that read the source.
fn record_of(report: &SyncReport) -> SyncRecord {
    let mut details = Vec::new();
    if !report.walked {
        details.push(format!(
            "from the change journal: {} paths examined, no tree walk",
            report.examined
        ));
    }
    if !report.published_new_version {
        details.push("nothing changed".to_owned());
    }
    if report.files_renamed > 0 {
        details.push(format!("{} entries renamed", report.files_renamed));
    }
    if report.tampered > 0 {
        details.push(format!(
            "{} entries changed in the published version were restored",
            report.tampered
        ));
    }
    SyncRecord {
        started_at: report.started_at,
        finished_at: report.finished_at,
        source_point: Some(report.source_point),
        version: report.version,
        files_total: report.files_total,
        bytes_total: report.bytes_total,
        files_transferred: report.files_transferred,
        bytes_transferred: report.bytes_transferred,
        files_deleted: report.files_deleted,
        outcome: if report.clean {
            "clean"
        } else {
            "inconsistent"
        }
        .to_owned(),
        detail: (!details.is_empty()).then(|| details.join("; ")),
        wire_bytes: report.wire_bytes,
    }
}

/// The record of a sync that could not read the source.
fn failed_record(started_at: DateTime<Utc>, version: u64, detail: String) -> SyncRecord {
    SyncRecord {
        started_at,
        finished_at: Utc::now(),
        source_point: None,
        version,
        files_total: 0,
        bytes_total: 0,
        files_transferred: 0,
        bytes_transferred: 0,
        files_deleted: 0,
        outcome: "failed".to_owned(),
        detail: Some(detail),
        wire_bytes: 0,
    }
}

fn published_version(dir: &ReplicaDir) -> u64 {
    dir.published().ok().flatten().map_or(0, |p| p.version)
}

/// Whether the locations the database holds differ from `wanted` (metadata aside, which the
/// database may store differently): only then are they replaced, so export location ids
/// stay stable across periodic updates.
fn locations_differ(stored: &[ExportLocation], wanted: &[ExportLocation]) -> bool {
    let key = |l: &ExportLocation| (l.path.clone(), l.is_admin_only, l.preferred);
    let mut stored: Vec<_> = stored.iter().map(key).collect();
    let mut wanted: Vec<_> = wanted.iter().map(key).collect();
    stored.sort();
    wanted.sort();
    stored != wanted
}

fn create_secondary(
    instance: &Instance,
    job: &Job,
    source: &SyncSource,
) -> Result<ReplicaResult, DriverError> {
    if instance.exists()? && !instance.replica_exists()? {
        return Err(DriverError::InvalidInput(format!(
            "share instance {} is an active share on this back end",
            instance.id
        )));
    }
    ensure_replicas_dir(instance)?;
    instance.write_meta(&job.share, job.share.size_gb, Role::Secondary)?;
    let mut book = read_book(instance)?.unwrap_or_default();
    book.replication_type = Some(job.replication_type.clone());
    write_book(instance, &book)?;
    let dir = ReplicaDir::open(&instance.replica_root).map_err(|e| engine_error(instance, e))?;
    // The first sync walks; it also takes the journal cursor the next one starts from.
    let report = match sync_secondary(&dir, source, &mut book, job) {
        Ok(report) => report,
        Err(err @ SyncError::SourceUnavailable { .. }) => {
            return Err(DriverError::SourceUnavailable(err.to_string()));
        }
        Err(err) => return Err(pool_error(instance, err)),
    };
    let state = book.record_sync(&report, job.rpo);
    write_book(instance, &book)?;
    tracing::info!(share_instance.id = %instance.id, version = report.version, "created secondary replica {} (version {})", instance.id, report.version);
    Ok(ReplicaResult {
        replica_state: state.to_owned(),
        export_locations: Some(secondary_locations(
            &job.host,
            instance,
            &job.replication_type,
        )?),
        sync: Some(record_of(&report)),
    })
}

/// Turns a former active (its data still in `shares/<id>`) into a secondary whose published
/// version is that data. Returns whether there was anything to demote.
fn demote_if_needed(instance: &Instance, job: &Job) -> Result<bool, DriverError> {
    if !instance.exists()? {
        return Ok(false);
    }
    tracing::info!(share_instance.id = %instance.id, "demoting former active replica {}", instance.id);
    ensure_replicas_dir(instance)?;
    let size_gb = instance.size_gb(&job.share, Role::Secondary)?;
    // The role goes first: a crash below leaves a secondary whose data is still in
    // `shares/<id>`, which the next update demotes again.
    instance.write_meta(&job.share, size_gb, Role::Secondary)?;
    if instance.replica_exists()? {
        let leftover =
            ReplicaDir::open(&instance.replica_root).map_err(|e| engine_error(instance, e))?;
        if leftover
            .published()
            .map_err(|e| engine_error(instance, e))?
            .is_some()
        {
            // Both layouts with a published version: a promotion of this replica stopped
            // after moving its data into `shares/<id>`. Finish it; that tree is the newer.
            leftover
                .promote_into(&instance.dir)
                .map_err(|e| engine_error(instance, e))?;
        }
    }
    let dir = ReplicaDir::open(&instance.replica_root).map_err(|e| engine_error(instance, e))?;
    let published = dir
        .adopt(&instance.dir, &job.opts)
        .map_err(|e| engine_error(instance, e))?;
    // The marker and the change journal of its time as the active go with the role.
    for leftover in [instance.quiesced_name(), instance.journal_name()] {
        fsutil::remove_any(&instance.shares.join(leftover)).map_err(|e| pool_error(instance, e))?;
    }
    write_book(
        instance,
        &ReplicaBook {
            replication_type: Some(job.replication_type.clone()),
            ..ReplicaBook::default()
        },
    )?;
    tracing::info!(share_instance.id = %instance.id, version = published.version, "demoted former active replica {} to a secondary (version {})", instance.id, published.version);
    Ok(true)
}

fn update_secondary(
    instance: &Instance,
    job: &Job,
    source: &SyncSource,
    stored: &[ExportLocation],
) -> Result<ReplicaResult, DriverError> {
    demote_if_needed(instance, job)?;
    ensure_replicas_dir(instance)?;
    // Repairs a lost meta file (the database holds the size).
    instance.size_gb(&job.share, Role::Secondary)?;
    let mut book = read_book(instance)?.unwrap_or_default();
    book.replication_type = Some(job.replication_type.clone());
    let started_at = Utc::now();
    let dir = ReplicaDir::open(&instance.replica_root).map_err(|e| engine_error(instance, e))?;
    let (state, record) = match sync_secondary(&dir, source, &mut book, job) {
        Ok(report) => (book.record_sync(&report, job.rpo), record_of(&report)),
        // A source that cannot be read, or a replica pool without space: the sync fails,
        // the published version stays, and a later sync (space freed, source back) goes on
        // from there. Neither makes the replica unusable, so neither is a driver error.
        Err(err) if err.is_source_unavailable() || err.is_out_of_space() => {
            let state = book.record_failure(Utc::now(), job.rpo);
            tracing::warn!(share_instance.id = %instance.id, failures = book.consecutive_failures, error = %err, "sync of replica {} failed: {err}", instance.id);
            let record = failed_record(started_at, published_version(&dir), err.to_string());
            (state, record)
        }
        Err(err) => return Err(pool_error(instance, err)),
    };
    match write_book(instance, &book) {
        // The book is small; on a full pool it may not fit either. It only counts failures
        // and clean points, which the next sync records again.
        Err(err) if record.outcome == "failed" => {
            tracing::warn!(share_instance.id = %instance.id, error = %err, "replica {} book not updated: {err}", instance.id);
        }
        other => other?,
    }
    let wanted = secondary_locations(&job.host, instance, &job.replication_type)?;
    Ok(ReplicaResult {
        replica_state: state.to_owned(),
        export_locations: locations_differ(stored, &wanted).then_some(wanted),
        sync: Some(record),
    })
}

fn promote_secondary(
    instance: &Instance,
    job: &Job,
    source: Option<SyncSource>,
) -> Result<ReplicaResult, DriverError> {
    let finish = |sync: Option<SyncRecord>| -> Result<ReplicaResult, DriverError> {
        let size_gb = instance.size_gb(&job.share, Role::Active)?;
        instance.write_meta(&job.share, size_gb, Role::Active)?;
        for path in [
            instance.replicas.join(instance.state_name()),
            instance.shares.join(instance.quiesced_name()),
        ] {
            fsutil::remove_any(&path).map_err(|e| pool_error(instance, e))?;
        }
        Ok(ReplicaResult {
            replica_state: "active".to_owned(),
            export_locations: Some(LocalDriver::export_locations(&job.host, instance)?),
            sync,
        })
    };
    let has_replica_dir = instance.replica_exists()?;
    if !has_replica_dir {
        if instance.exists()? {
            // A retried promotion that already finished.
            return finish(None);
        }
        return Err(DriverError::NotFound {
            share_instance_id: instance.id.clone(),
        });
    }
    let dir = ReplicaDir::open(&instance.replica_root).map_err(|e| engine_error(instance, e))?;
    let record = if instance.exists()? {
        // An interrupted promotion already moved the data into place; only finish it.
        None
    } else {
        // (2) Final sync, or the last published version when the active is unreachable.
        let started_at = Utc::now();
        let outcome = match &source {
            Some(source) => sync(&dir, source, &job.opts),
            None => Err(SyncError::SourceUnavailable {
                path: PathBuf::new(),
                source: io::Error::other("the share has no other active replica"),
            }),
        };
        match outcome {
            Ok(report) => Some(record_of(&report)),
            Err(err @ SyncError::SourceUnavailable { .. }) => {
                let published = dir
                    .published()
                    .map_err(|e| engine_error(instance, e))?
                    .ok_or_else(|| {
                        DriverError::Other(anyhow::anyhow!(
                            "cannot promote replica {}: the active replica is unreachable \
                             ({err}) and no version was ever synced",
                            instance.id
                        ))
                    })?;
                let detail = format!(
                    "promoted from version {} of {}; active unreachable: {err}",
                    published.version,
                    published
                        .source_point
                        .to_rfc3339_opts(SecondsFormat::Secs, true)
                );
                tracing::warn!(share_instance.id = %instance.id, "replica {}: {detail}", instance.id);
                // What the new active holds: the source point of its last version (anything
                // the old active took after it may be lost).
                Some(SyncRecord {
                    source_point: Some(published.source_point),
                    ..failed_record(started_at, published.version, detail)
                })
            }
            Err(err) => return Err(pool_error(instance, err)),
        }
    };
    // (3) The published version becomes the writable data root.
    dir.promote_into(&instance.dir)
        .map_err(|e| engine_error(instance, e))?;
    tracing::info!(share_instance.id = %instance.id, "promoted replica {} to active", instance.id);
    finish(record)
}

#[cfg(test)]
pub(super) mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    use std::time::{Duration, SystemTime};

    use super::*;
    use crate::local::{LocalOptions, LocalPool};
    use crate::{BackendInfo, ShareDriver};

    pub(in crate::local) const ACTIVE: &str = "aaaaaaaa-0000-4000-8000-000000000001";
    pub(in crate::local) const SECONDARY: &str = "bbbbbbbb-0000-4000-8000-000000000002";
    pub(in crate::local) const SHARE: &str = "0f0e0d0c-0b0a-4908-8706-050403020100";
    /// Small files of [`write_tree`]; 1% of them is two.
    const SMALL_FILES: usize = 200;

    /// One local back end on host `node1` with a pool `pool1` in its own temp dir.
    pub(in crate::local) struct Backend {
        pub(in crate::local) name: &'static str,
        pub(in crate::local) dir: tempfile::TempDir,
        pub(in crate::local) driver: LocalDriver,
    }

    impl Backend {
        pub(in crate::local) async fn new(name: &'static str) -> Self {
            Self::with_options(name, LocalOptions::default()).await
        }

        async fn with_options(name: &'static str, options: LocalOptions) -> Self {
            let dir = tempfile::tempdir().unwrap();
            let driver = driver_on(name, dir.path(), options);
            driver.do_setup().await.unwrap();
            Self { name, dir, driver }
        }

        /// Another driver over the same pool (a restart with other options).
        pub(in crate::local) fn restarted(&self, options: LocalOptions) -> LocalDriver {
            driver_on(self.name, self.dir.path(), options)
        }

        pub(in crate::local) fn pool(&self) -> PathBuf {
            self.dir.path().join("pool1")
        }

        pub(in crate::local) fn shares(&self) -> PathBuf {
            self.pool().join("shares")
        }

        pub(in crate::local) fn replicas(&self) -> PathBuf {
            self.pool().join("replicas")
        }

        pub(in crate::local) fn current(&self, id: &str) -> PathBuf {
            self.replicas().join(id).join("current")
        }

        pub(in crate::local) fn replica(
            &self,
            id: &str,
            state: Option<&str>,
            locations: &[ExportLocation],
        ) -> ReplicaRef {
            ReplicaRef {
                instance: instance(id),
                host: format!("node1@{}#pool1", self.name),
                replica_state: state.map(str::to_owned),
                export_locations: locations.to_vec(),
                replication_address: None,
                replica_epoch: 0,
            }
        }

        /// Renames the pool away, as if its disk were gone. `chmod 000` would not stop a
        /// test running as root, a rename stops everyone.
        pub(in crate::local) fn lose_pool(&self) -> PathBuf {
            let gone = self.dir.path().join("pool1.gone");
            fs::rename(self.pool(), &gone).unwrap();
            gone
        }

        pub(in crate::local) fn restore_pool(&self) {
            fs::rename(self.dir.path().join("pool1.gone"), self.pool()).unwrap();
        }
    }

    pub(in crate::local) fn driver_on(
        name: &str,
        dir: &Path,
        options: LocalOptions,
    ) -> LocalDriver {
        LocalDriver::new(
            BackendInfo {
                host: "node1".into(),
                backend_name: name.into(),
                replication_type: Some("readable".into()),
                replication_domain: Some("d1".into()),
            },
            vec![LocalPool {
                name: "pool1".into(),
                path: dir.join("pool1"),
                reserved_percentage: 0,
            }],
            options,
        )
    }

    pub(in crate::local) fn instance(id: &str) -> ShareInstanceRef {
        ShareInstanceRef {
            id: id.into(),
            share_id: SHARE.into(),
            pool: "pool1".into(),
            size_gb: 1,
            share_proto: "NFS".into(),
        }
    }

    pub(in crate::local) fn ctx<'a>(
        replication_type: &'a str,
        active: Option<&'a ReplicaRef>,
        replicas: &'a [ReplicaRef],
    ) -> ReplicaContext<'a> {
        ReplicaContext {
            replication_type,
            active,
            replicas,
            access_rules: &[],
            full_sync: false,
        }
    }

    /// An active share `ACTIVE` on back end `a`, and the reference of a secondary `SECONDARY`
    /// to be created on back end `b`.
    pub(in crate::local) async fn setup() -> (Backend, Backend, ReplicaRef, ReplicaRef) {
        let a = Backend::new("local1").await;
        let b = Backend::new("local2").await;
        let locations = a.driver.create_share(&instance(ACTIVE)).await.unwrap();
        let active = a.replica(ACTIVE, Some("active"), &locations);
        let secondary = b.replica(SECONDARY, None, &[]);
        (a, b, active, secondary)
    }

    pub(in crate::local) fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    pub(in crate::local) fn set_mtime(path: &Path, time: SystemTime) {
        fs::File::open(path).unwrap().set_modified(time).unwrap();
    }

    /// Writes the test tree into `root`: nested directories, empty files, names with
    /// spaces and unicode, symbolic links (one dangling, one to a directory), varied modes,
    /// old mtimes, and with `big` a 50 MiB file. Returns the small files.
    pub(in crate::local) fn write_tree(root: &Path, big: bool) -> Vec<PathBuf> {
        let dirs = ["docs", "docs/nested/deeper", "naïve café", "with space", ""];
        for dir in &dirs[..4] {
            fs::create_dir_all(root.join(dir)).unwrap();
        }
        fs::create_dir(root.join("empty dir")).unwrap();
        let mut small = Vec::new();
        for i in 0..SMALL_FILES {
            let path = root
                .join(dirs[i % dirs.len()])
                .join(format!("file {i} ✓.txt"));
            fs::write(&path, format!("content of file {i}\n").repeat(i % 7 + 1)).unwrap();
            let mode = [0o644, 0o600, 0o755, 0o640][i % 4];
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            set_mtime(&path, at(1_600_000_000 + i as u64));
            small.push(path);
        }
        for empty in ["empty", "docs/empty too"] {
            fs::write(root.join(empty), b"").unwrap();
            set_mtime(&root.join(empty), at(1_500_000_000));
        }
        if big {
            let data: Vec<u8> = (0..50u32 * 1024 * 1024)
                .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
                .collect();
            fs::write(root.join("big.bin"), data).unwrap();
            set_mtime(&root.join("big.bin"), at(1_550_000_000));
        }
        std::os::unix::fs::symlink("docs/file 0 ✓.txt", root.join("link to file")).unwrap();
        std::os::unix::fs::symlink("nowhere/at all", root.join("dangling")).unwrap();
        std::os::unix::fs::symlink("docs", root.join("dir link")).unwrap();
        fs::set_permissions(root.join("docs/nested"), fs::Permissions::from_mode(0o700)).unwrap();
        for (i, dir) in [
            "docs/nested/deeper",
            "docs/nested",
            "docs",
            "naïve café",
            "with space",
            "empty dir",
            "",
        ]
        .iter()
        .enumerate()
        {
            set_mtime(&root.join(dir), at(1_400_000_000 + i as u64));
        }
        small
    }

    /// Asserts `copy` holds exactly `source`'s entries: types, bytes, symlink targets, mtimes
    /// of files and directories, and modes (without write bits when `read_only`).
    pub(in crate::local) fn assert_same_tree(source: &Path, copy: &Path, read_only: bool) {
        let names = |dir: &Path| {
            let mut names: Vec<_> = fs::read_dir(dir)
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            names.sort();
            names
        };
        // `current` is a link to the published version: compare what it points to.
        let copy = fs::canonicalize(copy).unwrap();
        let mut stack = vec![(source.to_owned(), copy)];
        while let Some((src, dst)) = stack.pop() {
            let (s, d) = (
                fs::symlink_metadata(&src).unwrap(),
                fs::symlink_metadata(&dst)
                    .unwrap_or_else(|e| panic!("{} is missing: {e}", dst.display())),
            );
            let what = dst.display();
            assert_eq!(s.file_type(), d.file_type(), "{what}");
            if s.file_type().is_symlink() {
                assert_eq!(
                    fs::read_link(&src).unwrap(),
                    fs::read_link(&dst).unwrap(),
                    "{what}"
                );
                continue;
            }
            let expected_mode = s.mode() & 0o7777 & if read_only { !0o222 } else { !0 };
            assert_eq!(d.mode() & 0o7777, expected_mode, "mode of {what}");
            assert_eq!(
                (s.mtime(), s.mtime_nsec()),
                (d.mtime(), d.mtime_nsec()),
                "mtime of {what}"
            );
            if s.is_dir() {
                assert_eq!(names(&src), names(&dst), "entries of {what}");
                for name in names(&src) {
                    stack.push((src.join(&name), dst.join(&name)));
                }
            } else {
                assert_eq!(s.len(), d.len(), "size of {what}");
                assert!(
                    fs::read(&src).unwrap() == fs::read(&dst).unwrap(),
                    "bytes of {what}"
                );
            }
        }
    }

    /// No file or directory of `root` has a write bit.
    pub(in crate::local) fn assert_no_write_bits(root: &Path) {
        let mut stack = vec![fs::canonicalize(root).unwrap()];
        while let Some(path) = stack.pop() {
            let meta = fs::symlink_metadata(&path).unwrap();
            if meta.file_type().is_symlink() {
                continue;
            }
            assert_eq!(meta.mode() & 0o222, 0, "{} is writable", path.display());
            if meta.is_dir() {
                for entry in fs::read_dir(&path).unwrap() {
                    stack.push(entry.unwrap().path());
                }
            }
        }
    }

    pub(in crate::local) fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn readable_secondary_is_a_read_only_copy_that_follows_the_active() {
        let (a, b, active, secondary) = setup().await;
        let data = a.shares().join(ACTIVE);
        let small = write_tree(&data, true);
        let replicas = [active.clone(), secondary.clone()];
        let ctx = ctx("readable", Some(&active), &replicas);

        let created = b.driver.create_replica(&secondary, &ctx).await.unwrap();
        assert_eq!(created.replica_state, "in_sync");
        let sync = created.sync.unwrap();
        assert_eq!(sync.outcome, "clean");
        assert_eq!(sync.version, 1);
        assert!(sync.source_point.is_some());
        assert_eq!(sync.bytes_total, fsutil::tree_usage_bytes(&data).unwrap());
        assert_same_tree(&data, &b.current(SECONDARY), true);
        assert_no_write_bits(&b.current(SECONDARY));

        // One read-only location for clients, one for admins, both on `current`.
        let locations = created.export_locations.unwrap();
        let current = fs::canonicalize(b.replicas())
            .unwrap()
            .join(SECONDARY)
            .join("current");
        let path = format!("local://node1{}", current.display());
        let summary: Vec<_> = locations
            .iter()
            .map(|l| {
                (
                    l.path.as_str(),
                    l.is_admin_only,
                    l.preferred,
                    l.metadata["access"].as_str(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (path.as_str(), false, true, "ro"),
                (path.as_str(), true, false, "ro")
            ]
        );
        assert_eq!(
            b.driver.ensure_share(&secondary.instance).await.unwrap(),
            locations
        );
        assert_eq!(
            b.driver
                .get_share_usage_bytes(&secondary.instance)
                .await
                .unwrap(),
            a.driver
                .get_share_usage_bytes(&active.instance)
                .await
                .unwrap()
        );

        // 1% of the files change: only they are sent.
        let secondary = b.replica(SECONDARY, Some("in_sync"), &locations);
        let mut changed_bytes = 0;
        for path in [&small[10], &small[137]] {
            let len = fs::metadata(path).unwrap().len() as usize;
            fs::write(path, "x".repeat(len)).unwrap();
            set_mtime(path, at(1_700_000_000));
            changed_bytes += len as u64;
        }
        let updated = b
            .driver
            .update_replica_state(&secondary, &ctx)
            .await
            .unwrap();
        assert_eq!(updated.replica_state, "in_sync");
        assert_eq!(updated.export_locations, None, "locations did not change");
        let sync = updated.sync.unwrap();
        assert_eq!((sync.outcome.as_str(), sync.version), ("clean", 2));
        assert_eq!(sync.files_transferred, 2, "{sync:?}");
        assert!(
            sync.bytes_transferred > 0 && sync.bytes_transferred <= changed_bytes,
            "{sync:?}"
        );
        assert_eq!(sync.files_deleted, 0);
        assert_same_tree(&data, &b.current(SECONDARY), true);

        // Nothing changed: nothing sent.
        let updated = b
            .driver
            .update_replica_state(&secondary, &ctx)
            .await
            .unwrap();
        let sync = updated.sync.unwrap();
        assert_eq!(updated.replica_state, "in_sync");
        assert_eq!(
            (sync.files_transferred, sync.bytes_transferred),
            (0, 0),
            "{sync:?}"
        );

        // A file changed behind shoal's back in `current` is undone by the next update.
        let tampered = b.current(SECONDARY).join("docs/file 0 ✓.txt");
        fs::set_permissions(&tampered, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&tampered, b"tampered").unwrap();
        let updated = b
            .driver
            .update_replica_state(&secondary, &ctx)
            .await
            .unwrap();
        assert_eq!(updated.replica_state, "in_sync");
        assert_same_tree(&data, &b.current(SECONDARY), true);
    }

    #[tokio::test]
    async fn dr_secondary_has_no_export_locations_and_keeps_modes() {
        let (a, b, active, secondary) = setup().await;
        let data = a.shares().join(ACTIVE);
        write_tree(&data, false);
        let replicas = [active.clone(), secondary.clone()];
        let ctx = ctx("dr", Some(&active), &replicas);
        let created = b.driver.create_replica(&secondary, &ctx).await.unwrap();
        assert_eq!(created.replica_state, "in_sync");
        assert_eq!(created.export_locations, Some(Vec::new()));
        assert_same_tree(&data, &b.current(SECONDARY), false);
        assert_eq!(
            b.driver.ensure_share(&secondary.instance).await.unwrap(),
            []
        );
        // A retried create syncs again and sends nothing.
        let again = b.driver.create_replica(&secondary, &ctx).await.unwrap();
        assert_eq!(again.replica_state, "in_sync");
        assert_eq!(again.sync.unwrap().files_transferred, 0);
        // Resizes follow the share onto its secondaries.
        b.driver.extend_share(&secondary.instance, 3).await.unwrap();
        let meta: serde_json::Value = serde_json::from_slice(
            &fs::read(b.shares().join(format!("{SECONDARY}.meta.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            (meta["size_gb"].as_u64(), meta["role"].as_str()),
            (Some(3), Some("secondary"))
        );
    }

    #[tokio::test]
    async fn promotion_then_demotion_of_the_former_active() {
        let (a, b, active, secondary) = setup().await;
        let data = a.shares().join(ACTIVE);
        let small = write_tree(&data, false);
        let replicas = [active.clone(), secondary.clone()];
        let created = b
            .driver
            .create_replica(&secondary, &ctx("readable", Some(&active), &replicas))
            .await
            .unwrap();
        let secondary = b.replica(
            SECONDARY,
            Some("in_sync"),
            &created.export_locations.unwrap(),
        );
        let replicas = [active.clone(), secondary.clone()];

        // Changed after the last sync: the final sync of the promotion carries it over.
        fs::write(&small[3], b"written just before the promotion").unwrap();
        let promoted = b
            .driver
            .promote_replica(&secondary, &ctx("readable", Some(&active), &replicas), None)
            .await
            .unwrap();
        assert_eq!(promoted.replica_state, "active");
        let sync = promoted.sync.unwrap();
        assert_eq!(sync.outcome, "clean");
        assert!(sync.files_transferred >= 1, "{sync:?}");
        let new_data = b.shares().join(SECONDARY);
        assert_same_tree(&data, &new_data, false);
        assert!(!b.replicas().join(SECONDARY).exists());
        assert!(
            !b.replicas()
                .join(format!("{SECONDARY}.state.json"))
                .exists()
        );
        let locations = promoted.export_locations.unwrap();
        assert_eq!(
            locations,
            b.driver.ensure_share(&instance(SECONDARY)).await.unwrap()
        );
        assert!(locations.iter().any(|l| l.is_admin_only) && locations.iter().any(|l| l.preferred));
        // The old active is on another back end: this one does not touch its pool.
        assert!(!a.shares().join(format!("{ACTIVE}.quiesced")).exists());
        // A retried promotion answers the same.
        let again = b
            .driver
            .promote_replica(&secondary, &ctx("readable", Some(&active), &replicas), None)
            .await
            .unwrap();
        assert_eq!(
            (again.replica_state.as_str(), again.export_locations),
            ("active", Some(locations.clone()))
        );

        // The new active takes writes.
        fs::write(new_data.join("docs/new file"), b"after the promotion").unwrap();
        fs::remove_file(new_data.join("with space/file 3 ✓.txt")).unwrap();

        // The former active's back end demotes it and brings it up to date.
        let new_active = b.replica(SECONDARY, Some("active"), &locations);
        let old_active = a.replica(ACTIVE, Some("out_of_sync"), &active.export_locations);
        let replicas = [old_active.clone(), new_active.clone()];
        let updated = a
            .driver
            .update_replica_state(&old_active, &ctx("readable", Some(&new_active), &replicas))
            .await
            .unwrap();
        assert_eq!(updated.replica_state, "in_sync");
        assert_eq!(updated.sync.unwrap().outcome, "clean");
        let new_locations = updated
            .export_locations
            .expect("locations move to replicas/");
        assert!(
            new_locations
                .iter()
                .all(|l| l.path.ends_with(&format!("/replicas/{ACTIVE}/current")))
        );
        assert!(
            !a.shares().join(ACTIVE).exists(),
            "the data moved into the replica"
        );
        assert_same_tree(&new_data, &a.current(ACTIVE), true);
        assert_eq!(
            a.driver.ensure_share(&instance(ACTIVE)).await.unwrap(),
            new_locations
        );
    }

    #[tokio::test]
    async fn promotion_within_one_back_end_quiesces_the_active() {
        let a = Backend::new("local1").await;
        let locations = a.driver.create_share(&instance(ACTIVE)).await.unwrap();
        let active = a.replica(ACTIVE, Some("active"), &locations);
        let secondary = a.replica(SECONDARY, None, &[]);
        write_tree(&a.shares().join(ACTIVE), false);
        let replicas = [active.clone(), secondary.clone()];
        let ctx = ctx("readable", Some(&active), &replicas);
        a.driver.create_replica(&secondary, &ctx).await.unwrap();
        let promoted = a
            .driver
            .promote_replica(&secondary, &ctx, Some(Duration::from_secs(1)))
            .await
            .unwrap();
        assert_eq!(promoted.replica_state, "active");
        let marker = a.shares().join(format!("{ACTIVE}.quiesced"));
        let content: serde_json::Value =
            serde_json::from_slice(&fs::read(&marker).unwrap()).unwrap();
        assert_eq!(content["promoting"], SECONDARY);

        // Demoting the former active lifts the marker.
        let new_active = a.replica(
            SECONDARY,
            Some("active"),
            &promoted.export_locations.unwrap(),
        );
        let replicas = [active.clone(), new_active.clone()];
        a.driver
            .update_replica_state(&active, &ctx_owned(&new_active, &replicas))
            .await
            .unwrap();
        assert!(!marker.exists());
        assert_same_tree(&a.shares().join(SECONDARY), &a.current(ACTIVE), true);
    }

    fn ctx_owned<'a>(active: &'a ReplicaRef, replicas: &'a [ReplicaRef]) -> ReplicaContext<'a> {
        ctx("readable", Some(active), replicas)
    }

    #[tokio::test]
    async fn promotion_with_the_active_gone_uses_the_last_version() {
        let (a, b, active, secondary) = setup().await;
        write_tree(&a.shares().join(ACTIVE), false);
        let replicas = [active.clone(), secondary.clone()];
        let ctx = ctx("readable", Some(&active), &replicas);
        b.driver.create_replica(&secondary, &ctx).await.unwrap();

        let gone = a.lose_pool();
        let promoted = b
            .driver
            .promote_replica(&secondary, &ctx, None)
            .await
            .unwrap();
        assert_eq!(promoted.replica_state, "active");
        let sync = promoted.sync.unwrap();
        assert_eq!((sync.outcome.as_str(), sync.version), ("failed", 1));
        let detail = sync.detail.unwrap();
        assert!(
            detail.starts_with("promoted from version 1 of "),
            "{detail}"
        );
        assert!(detail.contains("active unreachable"), "{detail}");
        // Nothing of the last sync is lost, and the data is writable again.
        assert_same_tree(
            &gone.join("shares").join(ACTIVE),
            &b.shares().join(SECONDARY),
            false,
        );
    }

    #[tokio::test]
    async fn unreachable_active_keeps_the_state_within_the_rpo_then_errors() {
        let (a, b, active, secondary) = setup().await;
        write_tree(&a.shares().join(ACTIVE), false);
        let replicas = [active.clone(), secondary.clone()];
        let ctx = ctx("dr", Some(&active), &replicas);
        b.driver.create_replica(&secondary, &ctx).await.unwrap();
        a.lose_pool();

        // With a zero RPO, the first failed sync already leaves the replica behind.
        let strict = b.restarted(LocalOptions {
            replication_rpo: Duration::ZERO,
            ..LocalOptions::default()
        });
        let updated = strict.update_replica_state(&secondary, &ctx).await.unwrap();
        assert_eq!(updated.replica_state, "out_of_sync");
        let sync = updated.sync.unwrap();
        assert_eq!(
            (sync.outcome.as_str(), sync.source_point, sync.version),
            ("failed", None, 1)
        );
        assert!(sync.detail.is_some());

        // Within the default 10-minute RPO the last clean sync is recent enough...
        let updated = b
            .driver
            .update_replica_state(&secondary, &ctx)
            .await
            .unwrap();
        assert_eq!(updated.replica_state, "in_sync");
        // ...until the third failure in a row.
        let updated = b
            .driver
            .update_replica_state(&secondary, &ctx)
            .await
            .unwrap();
        assert_eq!(updated.replica_state, "error");
        assert_eq!(updated.sync.unwrap().outcome, "failed");

        // The active is back: the next sync succeeds and clears the failures.
        a.restore_pool();
        let updated = b
            .driver
            .update_replica_state(&secondary, &ctx)
            .await
            .unwrap();
        assert_eq!(updated.replica_state, "in_sync");
        assert_eq!(updated.sync.unwrap().outcome, "clean");
    }

    #[tokio::test]
    async fn own_pool_gone_is_pool_unavailable() {
        let (a, b, active, secondary) = setup().await;
        write_tree(&a.shares().join(ACTIVE), false);
        let replicas = [active.clone(), secondary.clone()];
        let ctx = ctx("readable", Some(&active), &replicas);
        b.driver.create_replica(&secondary, &ctx).await.unwrap();
        b.lose_pool();
        assert!(matches!(
            b.driver.update_replica_state(&secondary, &ctx).await,
            Err(DriverError::PoolUnavailable { .. })
        ));
    }

    #[tokio::test]
    async fn secondaries_are_deleted_by_either_call_idempotently() {
        let (a, b, active, secondary) = setup().await;
        write_tree(&a.shares().join(ACTIVE), false);
        let replicas = [active.clone(), secondary.clone()];
        let ctx = ctx("readable", Some(&active), &replicas);

        b.driver.create_replica(&secondary, &ctx).await.unwrap();
        b.driver
            .update_access(&secondary.instance, &[], &[], &[])
            .await
            .unwrap();
        b.driver.delete_replica(&secondary).await.unwrap();
        assert!(names_in(&b.replicas()).is_empty());
        assert!(names_in(&b.shares()).is_empty());
        b.driver.delete_replica(&secondary).await.unwrap();
        assert!(matches!(
            b.driver.ensure_share(&secondary.instance).await,
            Err(DriverError::NotFound { .. })
        ));

        b.driver.create_replica(&secondary, &ctx).await.unwrap();
        b.driver.delete_share(&secondary.instance).await.unwrap();
        assert!(names_in(&b.replicas()).is_empty());
        assert!(names_in(&b.shares()).is_empty());
        b.driver.delete_share(&secondary.instance).await.unwrap();
        // The active is untouched.
        assert!(a.shares().join(ACTIVE).join("docs").is_dir());
    }

    #[tokio::test]
    async fn sources_and_types_are_checked_before_anything_is_written() {
        let (a, b, active, secondary) = setup().await;
        let replicas = [active.clone(), secondary.clone()];
        let invalid = |result: Result<ReplicaResult, DriverError>, needle: &str| match result {
            Err(DriverError::InvalidInput(message)) => {
                assert!(message.contains(needle), "{message} lacks {needle:?}")
            }
            other => panic!("expected InvalidInput with {needle:?}, got {other:?}"),
        };
        invalid(
            b.driver
                .create_replica(&secondary, &ctx("writable", Some(&active), &replicas))
                .await,
            "supports readable and dr replication",
        );
        invalid(
            b.driver
                .create_replica(&secondary, &ctx("readable", None, &replicas))
                .await,
            "no active replica",
        );
        let data_root = fs::canonicalize(a.shares().join(ACTIVE)).unwrap();
        let with_path = |path: String| {
            let location = ExportLocation {
                path,
                is_admin_only: true,
                preferred: false,
                metadata: BTreeMap::new(),
            };
            a.replica(ACTIVE, Some("active"), &[location])
        };
        for (location, needle) in [
            ("local://node1".to_owned(), "no absolute path"),
            (
                format!("local://node1{}/../{ACTIVE}", data_root.display()),
                "not a share data root",
            ),
            (
                format!("local://node1{}", a.pool().display()),
                "not a share data root",
            ),
            (
                format!("local://node1{}", a.replicas().join(ACTIVE).display()),
                "not a share data root",
            ),
            (
                "10.0.0.1:/exports/share".to_owned(),
                "no local:// export location",
            ),
        ] {
            let active = with_path(location);
            let replicas = [active.clone(), secondary.clone()];
            invalid(
                b.driver
                    .create_replica(&secondary, &ctx("readable", Some(&active), &replicas))
                    .await,
                needle,
            );
            invalid(
                b.driver
                    .update_replica_state(&secondary, &ctx("readable", Some(&active), &replicas))
                    .await,
                needle,
            );
        }
        let itself = b.replica(SECONDARY, None, &[]);
        invalid(
            b.driver
                .create_replica(&secondary, &ctx("readable", Some(&itself), &replicas))
                .await,
            "is the active replica itself",
        );
        let mut bad_id = secondary.clone();
        bad_id.instance.id = "../escape".into();
        invalid(
            b.driver
                .create_replica(&bad_id, &ctx("readable", Some(&active), &replicas))
                .await,
            "canonical lowercase UUID",
        );
        // Without an active there is nothing to sync from, and nothing is touched.
        let updated = b
            .driver
            .update_replica_state(&secondary, &ctx("readable", None, &replicas))
            .await
            .unwrap();
        assert_eq!(
            (updated.replica_state.as_str(), updated.sync),
            ("out_of_sync", None)
        );
        assert!(names_in(&b.replicas()).is_empty());
        assert!(names_in(&b.shares()).is_empty());

        // On another host with no way to reach it (no peer client here): the create fails
        // naming the cause, and an update is a failed sync, so the state follows the facts.
        let active = with_path(format!("local://node2{}", data_root.display()));
        let replicas = [active.clone(), secondary.clone()];
        let ctx = ctx("readable", Some(&active), &replicas);
        match b.driver.create_replica(&secondary, &ctx).await {
            Err(DriverError::SourceUnavailable(reason)) => {
                assert!(reason.contains("no replication client"), "{reason}")
            }
            other => panic!("expected SourceUnavailable, got {other:?}"),
        }
        let updated = b
            .driver
            .update_replica_state(&secondary, &ctx)
            .await
            .unwrap();
        assert_eq!(updated.replica_state, "out_of_sync");
        let sync = updated.sync.expect("a failed sync is recorded");
        assert_eq!(sync.outcome, "failed");
        assert!(
            sync.detail
                .as_deref()
                .is_some_and(|d| d.contains("no replication client")),
            "{sync:?}"
        );
    }

    #[tokio::test]
    async fn setup_creates_and_keeps_the_replica_directory() {
        let b = Backend::new("local2").await;
        assert!(b.replicas().is_dir());
        let leftover = b.replicas().join(SECONDARY).join("staging");
        fs::create_dir_all(&leftover).unwrap();
        fs::write(b.replicas().join(format!("{SECONDARY}.state.json")), b"{}").unwrap();
        b.driver.do_setup().await.unwrap();
        assert!(
            leftover.is_dir(),
            "engine leftovers are the engine's to resume"
        );
        assert_eq!(
            names_in(&b.replicas()),
            [SECONDARY.to_owned(), format!("{SECONDARY}.state.json")]
        );
    }

    #[test]
    fn state_follows_the_facts() {
        let now = Utc::now();
        let rpo = Duration::from_secs(600);
        let mut book = ReplicaBook::default();
        assert_eq!(book.state(now, rpo), "out_of_sync", "never synced");
        book.last_clean_source_point = Some(now - TimeDelta::seconds(599));
        assert_eq!(book.state(now, rpo), "in_sync");
        book.last_clean_source_point = Some(now - TimeDelta::seconds(601));
        assert_eq!(book.state(now, rpo), "out_of_sync");
        book.last_clean_source_point = Some(now);
        assert_eq!(book.record_failure(now, rpo), "in_sync");
        assert_eq!(book.record_failure(now, rpo), "in_sync");
        assert_eq!(book.record_failure(now, rpo), "error");
        assert_eq!(book.state(now, Duration::MAX), "error");
    }

    #[test]
    fn locations_compare_without_metadata_or_order() {
        let location = |path: &str, admin: bool| ExportLocation {
            path: path.into(),
            is_admin_only: admin,
            preferred: !admin,
            metadata: BTreeMap::new(),
        };
        let wanted = [
            location("local://n/a", false),
            location("local://n/a", true),
        ];
        let mut stored = vec![wanted[1].clone(), wanted[0].clone()];
        stored[0].metadata.insert("access".into(), "ro".into());
        assert!(!locations_differ(&stored, &wanted));
        assert!(locations_differ(&stored[..1], &wanted));
        assert!(locations_differ(&[], &wanted));
        assert!(!locations_differ(&[], &[]));
    }
}
