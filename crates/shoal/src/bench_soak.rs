//! `shoal bench soak`: many concurrent clients mix every share lifecycle call that the
//! `local` back end supports on replicated shares (create, extend, add/resync/promote/delete
//! a readable replica, snapshot create/delete, ip access allow/deny, share delete) for a
//! fixed time, through the real HTTP API of an in-process node; then every client deletes
//! what it owns and the bench checks that nothing is left behind (issue 13, item 5).
//!
//! The node: SQLite in a temp dir (or a fresh PostgreSQL schema), three `local` back ends,
//! `local1` in `az1`, `local2` and `local3` in `az2`, all advertising `replication_type =
//! readable`, NFS off (writes go straight into the active instance's data directory, found
//! through its admin-only `local://` export location, so replication moves real bytes).
//!
//! Each client is a loop with its own xorshift generator seeded from `--seed` and its index,
//! so a run's choice of actions is reproducible (their interleaving is not). An action
//! waits for its object to reach a stable state (bounded polling). The answers Manila gives
//! for races (400 and 409 for an invalid state, 404 after a delete) are counted per status
//! and accepted; any 5xx, any other answer, an `error` status or an object still not stable
//! at its deadline is a failure, listed at the end. Nothing here is persisted: the figures
//! and checks are printed and the scratch directory is removed.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use reqwest::Method;
use serde_json::{Value, json};
use shoal_core::Config;
use shoal_core::config::BackendConfig;
use shoal_store::{
    OperationState, ShareInstanceFilter, ShareListFilter, SnapshotInstanceFilter,
    SnapshotListFilter, Store,
};

use crate::bench::percentile;
use crate::server::Server;

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct SoakBench {
    /// Concurrent clients.
    pub clients: usize,
    /// How long the clients pick actions before they clean up.
    pub duration: Duration,
    /// Database URL; empty = SQLite in the scratch directory. A PostgreSQL URL gets a
    /// schema of its own, dropped afterwards.
    pub database_url: String,
    /// Seed of the clients' generators.
    pub seed: u64,
    /// Scratch directory (the node's data directory is made in it). `None`: the system's.
    pub dir: Option<PathBuf>,
}

/// Token of the benchmark's requests (noauth: `user:project`; admin, so resync works).
const TOKEN: &str = "soak:soak";
/// The project the shares are charged to.
const PROJECT: &str = "soak";
/// Microversion: replication without the experimental header, access rules by id.
const VERSION: &str = "2.56";
/// Longest wait for one object to reach a stable state.
const STABLE_WAIT: Duration = Duration::from_secs(120);
/// Longest wait for the node to have no unfinished operation after the clients' cleanup.
const QUIESCE_WAIT: Duration = Duration::from_secs(120);
/// Between two polls of one object.
const POLL: Duration = Duration::from_millis(200);
/// Shares a client holds at most.
const SHARES_PER_CLIENT: usize = 2;
/// Largest size a share is extended to, GiB.
const MAX_SIZE: u64 = 3;
/// The node's back ends and their zones.
const BACKENDS: [(&str, &str); 3] = [("local1", "az1"), ("local2", "az2"), ("local3", "az2")];
/// Statuses Manila answers to a request that lost a race: invalid state, gone.
const RACE_STATUSES: [u16; 3] = [400, 404, 409];
/// Resources whose project usage must be back to zero.
const QUOTA_RESOURCES: [&str; 6] = [
    "shares",
    "gigabytes",
    "snapshots",
    "snapshot_gigabytes",
    "share_replicas",
    "replica_gigabytes",
];

/// A tiny xorshift64* generator: reproducible per client, no dependency.
#[derive(Debug, Clone)]
pub struct XorShift(u64);

impl XorShift {
    /// A generator for client `index` of a run seeded with `seed` (never the zero state).
    pub fn new(seed: u64, index: u64) -> Self {
        let mixed = (seed ^ index.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        Self(mixed | 1)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// A number in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> Option<&'a T> {
        if items.is_empty() {
            return None;
        }
        items.get(self.below(items.len() as u64) as usize)
    }
}

/// Action kinds, in the order the figures are printed.
const KINDS: [&str; 12] = [
    "share_create",
    "write",
    "extend",
    "replica_create",
    "replica_resync",
    "replica_promote",
    "replica_delete",
    "snapshot_create",
    "snapshot_delete",
    "access_allow",
    "access_deny",
    "share_delete",
];

/// Figures of one action kind.
#[derive(Debug, Clone, Default)]
pub struct KindStats {
    /// Actions tried.
    pub count: usize,
    /// Latency to the stable state of the actions that succeeded.
    pub latencies: Vec<Duration>,
    /// Accepted race answers (400/404/409) by status.
    pub refused: BTreeMap<u16, usize>,
    /// Failures (5xx, unexpected answers, `error` states, deadlines).
    pub failed: usize,
}

/// One check of the end state.
#[derive(Debug, Clone)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// Whether it held.
    pub passed: bool,
    /// What was found.
    pub detail: String,
}

/// What one run measured.
#[derive(Debug, Clone, Default)]
pub struct SoakResults {
    /// Clients that ran.
    pub clients: usize,
    /// Per action kind.
    pub kinds: BTreeMap<&'static str, KindStats>,
    /// HTTP requests sent, polls included.
    pub requests: u64,
    /// Time the clients picked actions.
    pub load_time: Duration,
    /// From the end of the load to a quiet node (cleanup plus the last operations).
    pub drain_time: Duration,
    /// Every failure, with what it was about.
    pub failures: Vec<String>,
    /// Shares created in the run.
    pub shares_created: usize,
    /// Operations the node ran to `done`, and those that ended `failed`, by kind.
    pub operations_done: i64,
    pub operations_failed: BTreeMap<String, i64>,
    /// The end-state checks.
    pub checks: Vec<Check>,
}

impl SoakResults {
    /// True when no action failed and every check held.
    pub fn passed(&self) -> bool {
        self.failures.is_empty() && self.checks.iter().all(|c| c.passed)
    }
}

/// State every client shares: the HTTP client, counters, figures.
struct Shared {
    http: reqwest::Client,
    base: String,
    requests: AtomicU64,
    stats: Mutex<BTreeMap<&'static str, KindStats>>,
    failures: Mutex<Vec<String>>,
    /// Every share id ever created (the row checks look up their access rules).
    created: Mutex<Vec<String>>,
    /// The node's store, read only for the capacity guard and the end checks.
    store: Arc<dyn Store>,
    /// GiB a pool may hold allocated before clients stop adding to it.
    budget_gb: u64,
    /// When the guard last looked, and whether there was room then.
    room: Mutex<(Option<Instant>, bool)>,
}

/// How one action ended.
enum Outcome {
    /// Reached its stable state.
    Done,
    /// Manila refused it the way it refuses a race (400/404/409).
    Refused(u16),
    /// Nothing to do (no object to act on).
    Skipped,
}

type ActionResult = Result<Outcome, String>;

impl Shared {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), String> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .header("X-Auth-Token", TOKEN)
            .header("X-OpenStack-Manila-API-Version", VERSION);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request
            .send()
            .await
            .map_err(|e| format!("{method} {path}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| format!("{method} {path}: reading the answer: {e}"))?;
        let value = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Ok((status, value))
    }

    /// Sends a request that starts an action: `Ok(Ok(answer))` on 2xx, `Ok(Err(status))` on
    /// an accepted race answer, `Err` on anything else.
    async fn start(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Result<Value, u16>, String> {
        self.start_accepting(method, path, body, &[]).await
    }

    /// [`Self::start`], also accepting the statuses of `extra`.
    async fn start_accepting(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        extra: &[u16],
    ) -> Result<Result<Value, u16>, String> {
        let (status, value) = self.call(method.clone(), path, body).await?;
        match status {
            200..=299 => Ok(Ok(value)),
            s if RACE_STATUSES.contains(&s) || extra.contains(&s) => Ok(Err(s)),
            s => Err(format!("{method} {path}: {s}: {value}")),
        }
    }

    /// Polls `path` until `stable` says done (`Ok(true)`), the object is gone when `gone`
    /// is wanted (404), or the deadline passes.
    async fn wait(
        &self,
        what: &str,
        path: &str,
        want_gone: bool,
        stable: impl Fn(&Value) -> Result<bool, String>,
    ) -> Result<(), String> {
        let deadline = Instant::now() + STABLE_WAIT;
        let mut last = Value::Null;
        while Instant::now() < deadline {
            let (status, value) = self.call(Method::GET, path, None).await?;
            match status {
                200 if !want_gone => {
                    if stable(&value)? {
                        return Ok(());
                    }
                }
                200 => {
                    stable(&value)?;
                }
                404 if want_gone => return Ok(()),
                404 => return Err(format!("{what}: gone while waiting for it to be stable")),
                s => return Err(format!("{what}: GET {path}: {s}: {value}")),
            }
            last = value;
            tokio::time::sleep(POLL).await;
        }
        Err(format!("{what}: not stable after {STABLE_WAIT:?}: {last}"))
    }

    /// Whether every pool's allocation is under the budget (looked up at most once a
    /// second). Local pools are thick: past their filesystem's size the scheduler rightly
    /// finds no valid host, so the clients keep well below it instead of measuring that.
    async fn has_room(&self) -> Result<bool, String> {
        {
            let room = self.room.lock().expect("room lock");
            if room
                .0
                .is_some_and(|at| at.elapsed() < Duration::from_secs(1))
            {
                return Ok(room.1);
            }
        }
        let allocated = self
            .store
            .allocated_gb_by_pool()
            .await
            .map_err(|e| format!("reading the pools' allocations: {e}"))?;
        let ok = allocated.values().all(|gb| *gb < self.budget_gb);
        *self.room.lock().expect("room lock") = (Some(Instant::now()), ok);
        Ok(ok)
    }

    fn record(&self, kind: &'static str, started: Instant, result: ActionResult) {
        let mut stats = self.stats.lock().expect("stats lock");
        let entry = stats.entry(kind).or_default();
        match result {
            Ok(Outcome::Skipped) => {}
            Ok(Outcome::Done) => {
                entry.count += 1;
                entry.latencies.push(started.elapsed());
            }
            Ok(Outcome::Refused(status)) => {
                entry.count += 1;
                *entry.refused.entry(status).or_default() += 1;
            }
            Err(reason) => {
                entry.count += 1;
                entry.failed += 1;
                drop(stats);
                eprintln!("soak failure: {kind}: {reason}");
                self.failures
                    .lock()
                    .expect("failures lock")
                    .push(format!("{kind}: {reason}"));
            }
        }
    }
}

/// `error`-like statuses end a wait as a failure.
fn refuse_error(what: &str, status: Option<&str>) -> Result<(), String> {
    match status {
        Some(s) if s.starts_with("error") => Err(format!("{what} went to {s}")),
        _ => Ok(()),
    }
}

fn share_available(v: &Value) -> Result<bool, String> {
    let status = v["share"]["status"].as_str();
    refuse_error("share", status)?;
    Ok(status == Some("available"))
}

/// A replica is stable once `available` with a settled replica state.
fn replica_stable(v: &Value) -> Result<bool, String> {
    let r = &v["share_replica"];
    let status = r["status"].as_str();
    refuse_error("replica", status)?;
    if r["replica_state"].as_str() == Some("error") {
        return Err(format!("replica {} has replica_state error", r["id"]));
    }
    Ok(status == Some("available")
        && matches!(
            r["replica_state"].as_str(),
            Some("active" | "in_sync" | "out_of_sync")
        ))
}

fn id_of(v: &Value, key: &str) -> Result<String, String> {
    v[key]["id"]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| format!("no {key}.id in {v}"))
}

/// A share a client owns, with the objects it made on it.
#[derive(Debug, Clone)]
struct Owned {
    id: String,
    size: u64,
    snapshots: Vec<String>,
    rules: Vec<String>,
}

/// How long a client waits after an action it had to skip.
const SKIP_PAUSE: Duration = Duration::from_millis(100);

struct Client {
    shared: Arc<Shared>,
    rng: XorShift,
    shares: Vec<Owned>,
    index: usize,
    files: u64,
}

impl Client {
    async fn run(&mut self, until: Instant) {
        while Instant::now() < until {
            let roll = self.rng.below(100);
            let started = Instant::now();
            let (kind, result) =
                if self.shares.is_empty() || (roll < 12 && self.shares.len() < SHARES_PER_CLIENT) {
                    ("share_create", self.create_share().await)
                } else {
                    let share = self.rng.below(self.shares.len() as u64) as usize;
                    match roll {
                        0..=24 => ("write", self.write(share).await),
                        25..=29 => ("extend", self.extend(share).await),
                        30..=41 => ("replica_create", self.replica_create(share).await),
                        42..=48 => ("replica_resync", self.replica_resync(share).await),
                        49..=55 => ("replica_promote", self.replica_promote(share).await),
                        56..=63 => ("replica_delete", self.replica_delete(share).await),
                        64..=71 => ("snapshot_create", self.snapshot_create(share).await),
                        72..=77 => ("snapshot_delete", self.snapshot_delete(share).await),
                        78..=85 => ("access_allow", self.access_allow(share).await),
                        86..=91 => ("access_deny", self.access_deny(share).await),
                        _ => ("share_delete", self.share_delete(share).await),
                    }
                };
            let skipped = matches!(result, Ok(Outcome::Skipped));
            self.shared.record(kind, started, result);
            if skipped {
                // Nothing to do (no room for a share, no replica to delete, ...): a skipped
                // action may not have awaited anything, and 64 clients looping on it would
                // hold the runtime the node under test shares with them (it froze the node
                // for up to a second at a time, and its SQLite writers timed out).
                tokio::time::sleep(SKIP_PAUSE).await;
            }
        }
    }

    async fn create_share(&mut self) -> ActionResult {
        if !self.shared.has_room().await? {
            return Ok(Outcome::Skipped);
        }
        let size = 1;
        let az = if self.rng.below(2) == 0 { "az1" } else { "az2" };
        let body = json!({"share": {"share_proto": "NFS", "size": size, "share_type": "soak",
            "availability_zone": az, "name": format!("soak-{}", self.index)}});
        let answer = match self
            .shared
            .start(Method::POST, "/shares", Some(body))
            .await?
        {
            Ok(v) => v,
            Err(status) => return Ok(Outcome::Refused(status)),
        };
        let id = id_of(&answer, "share")?;
        self.shared
            .created
            .lock()
            .expect("created lock")
            .push(id.clone());
        // Owned from now on, so the cleanup deletes it whatever happens next.
        self.shares.push(Owned {
            id: id.clone(),
            size,
            snapshots: Vec::new(),
            rules: Vec::new(),
        });
        self.shared
            .wait(
                &format!("share {id}"),
                &format!("/shares/{id}"),
                false,
                share_available,
            )
            .await?;
        Ok(Outcome::Done)
    }

    /// Writes one file of 4-64 KiB into the share's active instance.
    async fn write(&mut self, share: usize) -> ActionResult {
        let id = self.shares[share].id.clone();
        let (status, v) = self
            .shared
            .call(Method::GET, &format!("/shares/{id}/export_locations"), None)
            .await?;
        if status == 404 {
            return Ok(Outcome::Refused(404));
        }
        let Some(dir) = v["export_locations"]
            .as_array()
            .into_iter()
            .flatten()
            .find_map(|l| {
                l["path"]
                    .as_str()
                    .and_then(|p| p.strip_prefix("local://"))
                    .and_then(|rest| rest.find('/').map(|slash| PathBuf::from(&rest[slash..])))
            })
        else {
            // Not exported yet or any more (creating, deleting, promoting).
            return Ok(Outcome::Skipped);
        };
        let size = 4096 * (1 + self.rng.below(16)) as usize;
        let mut data = vec![0u8; size];
        for chunk in data.chunks_mut(8) {
            let bits = self.rng.next_u64().to_le_bytes();
            chunk.copy_from_slice(&bits[..chunk.len()]);
        }
        self.files += 1;
        let file = dir.join(format!("soak-{}-{}", self.index, self.files));
        // Never creates a directory: a share deleted meanwhile leaves nothing behind.
        match tokio::task::spawn_blocking(move || std::fs::write(file, data)).await {
            Ok(Ok(())) => Ok(Outcome::Done),
            // The directory went away (a promote or delete of another path): not shoal's fault.
            Ok(Err(_)) => Ok(Outcome::Skipped),
            Err(e) => Err(format!("writing into share {id}: {e}")),
        }
    }

    async fn extend(&mut self, share: usize) -> ActionResult {
        if !self.shared.has_room().await? {
            return Ok(Outcome::Skipped);
        }
        let owned = &self.shares[share];
        if owned.size >= MAX_SIZE {
            return Ok(Outcome::Skipped);
        }
        let (id, new_size) = (owned.id.clone(), owned.size + 1);
        let body = json!({"extend": {"new_size": new_size}});
        if let Err(status) = self
            .shared
            .start(Method::POST, &format!("/shares/{id}/action"), Some(body))
            .await?
        {
            return Ok(Outcome::Refused(status));
        }
        self.shares[share].size = new_size;
        self.shared
            .wait(
                &format!("extend of share {id}"),
                &format!("/shares/{id}"),
                false,
                |v| Ok(share_available(v)? && v["share"]["size"].as_u64() == Some(new_size)),
            )
            .await?;
        Ok(Outcome::Done)
    }

    /// The share's replicas (detail view), or `None` when the share is gone.
    async fn replicas(&self, share: &str) -> Result<Option<Vec<Value>>, String> {
        let (status, v) = self
            .shared
            .call(
                Method::GET,
                &format!("/share-replicas/detail?share_id={share}"),
                None,
            )
            .await?;
        match status {
            200 => Ok(Some(
                v["share_replicas"].as_array().cloned().unwrap_or_default(),
            )),
            404 => Ok(None),
            s => Err(format!("listing the replicas of {share}: {s}: {v}")),
        }
    }

    /// A random secondary replica id of the share.
    async fn secondary(&mut self, share: usize) -> Result<Option<String>, String> {
        let id = self.shares[share].id.clone();
        let Some(replicas) = self.replicas(&id).await? else {
            return Ok(None);
        };
        let secondaries: Vec<String> = replicas
            .iter()
            .filter(|r| r["replica_state"].as_str() != Some("active"))
            .filter_map(|r| r["id"].as_str().map(str::to_owned))
            .collect();
        Ok(self.rng.pick(&secondaries).cloned())
    }

    async fn replica_create(&mut self, share: usize) -> ActionResult {
        if !self.shared.has_room().await? {
            return Ok(Outcome::Skipped);
        }
        let id = self.shares[share].id.clone();
        let Some(replicas) = self.replicas(&id).await? else {
            return Ok(Outcome::Refused(404));
        };
        // A back end holds one instance of a share (Manila's ShareReplicationFilter): ask
        // for a zone that still has a back end without one, or the replica rightly ends in
        // `error` with "no valid host".
        let free: Vec<&str> = BACKENDS
            .iter()
            .filter(|(name, _)| {
                !replicas.iter().any(|r| {
                    r["host"]
                        .as_str()
                        .is_some_and(|h| h.contains(&format!("@{name}#")))
                })
            })
            .map(|(_, az)| *az)
            .collect();
        let Some(az) = self.rng.pick(&free).copied() else {
            return Ok(Outcome::Skipped);
        };
        let body = json!({"share_replica": {"share_id": id, "availability_zone": az}});
        let answer = match self
            .shared
            .start(Method::POST, "/share-replicas", Some(body))
            .await?
        {
            Ok(v) => v,
            Err(status) => return Ok(Outcome::Refused(status)),
        };
        let replica = id_of(&answer, "share_replica")?;
        self.shared
            .wait(
                &format!("replica {replica} of share {id}"),
                &format!("/share-replicas/{replica}"),
                false,
                replica_stable,
            )
            .await?;
        Ok(Outcome::Done)
    }

    async fn replica_resync(&mut self, share: usize) -> ActionResult {
        self.replica_action(share, "resync", replica_stable).await
    }

    async fn replica_promote(&mut self, share: usize) -> ActionResult {
        self.replica_action(share, "promote", |v| {
            Ok(
                replica_stable(v)?
                    && v["share_replica"]["replica_state"].as_str() == Some("active"),
            )
        })
        .await
    }

    /// `POST /share-replicas/{id}/action {action: null}` on one of the share's secondaries,
    /// then waits until `stable` holds for it.
    async fn replica_action(
        &mut self,
        share: usize,
        action: &str,
        stable: fn(&Value) -> Result<bool, String>,
    ) -> ActionResult {
        let Some(replica) = self.secondary(share).await? else {
            return Ok(Outcome::Skipped);
        };
        let path = format!("/share-replicas/{replica}");
        if let Err(status) = self
            .shared
            .start(
                Method::POST,
                &format!("{path}/action"),
                Some(Value::Object(serde_json::Map::from_iter([(
                    action.to_owned(),
                    Value::Null,
                )]))),
            )
            .await?
        {
            return Ok(Outcome::Refused(status));
        }
        self.shared
            .wait(
                &format!("{action} of replica {replica}"),
                &path,
                false,
                stable,
            )
            .await?;
        Ok(Outcome::Done)
    }

    async fn replica_delete(&mut self, share: usize) -> ActionResult {
        let Some(replica) = self.secondary(share).await? else {
            return Ok(Outcome::Skipped);
        };
        self.delete_replica(&replica).await
    }

    async fn delete_replica(&self, replica: &str) -> ActionResult {
        let path = format!("/share-replicas/{replica}");
        if let Err(status) = self.shared.start(Method::DELETE, &path, None).await? {
            return Ok(Outcome::Refused(status));
        }
        self.shared
            .wait(
                &format!("deletion of replica {replica}"),
                &path,
                true,
                |v| refuse_error("replica", v["share_replica"]["status"].as_str()).map(|()| false),
            )
            .await?;
        Ok(Outcome::Done)
    }

    async fn snapshot_create(&mut self, share: usize) -> ActionResult {
        if !self.shared.has_room().await? {
            return Ok(Outcome::Skipped);
        }
        let id = self.shares[share].id.clone();
        let body = json!({"snapshot": {"share_id": id, "name": format!("soak-{}", self.index)}});
        let answer = match self
            .shared
            .start(Method::POST, "/snapshots", Some(body))
            .await?
        {
            Ok(v) => v,
            Err(status) => return Ok(Outcome::Refused(status)),
        };
        let snapshot = id_of(&answer, "snapshot")?;
        self.shares[share].snapshots.push(snapshot.clone());
        self.shared
            .wait(
                &format!("snapshot {snapshot} of share {id}"),
                &format!("/snapshots/{snapshot}"),
                false,
                |v| {
                    let status = v["snapshot"]["status"].as_str();
                    refuse_error("snapshot", status)?;
                    Ok(status == Some("available"))
                },
            )
            .await?;
        Ok(Outcome::Done)
    }

    async fn snapshot_delete(&mut self, share: usize) -> ActionResult {
        let snapshots = &self.shares[share].snapshots;
        let Some(index) =
            (!snapshots.is_empty()).then(|| self.rng.below(snapshots.len() as u64) as usize)
        else {
            return Ok(Outcome::Skipped);
        };
        let snapshot = snapshots[index].clone();
        let outcome = self.delete_snapshot(&snapshot).await?;
        if matches!(outcome, Outcome::Done | Outcome::Refused(404)) {
            self.shares[share].snapshots.retain(|s| *s != snapshot);
        }
        Ok(outcome)
    }

    async fn delete_snapshot(&self, snapshot: &str) -> ActionResult {
        let path = format!("/snapshots/{snapshot}");
        if let Err(status) = self.shared.start(Method::DELETE, &path, None).await? {
            return Ok(Outcome::Refused(status));
        }
        self.shared
            .wait(
                &format!("deletion of snapshot {snapshot}"),
                &path,
                true,
                |v| refuse_error("snapshot", v["snapshot"]["status"].as_str()).map(|()| false),
            )
            .await?;
        Ok(Outcome::Done)
    }

    async fn access_allow(&mut self, share: usize) -> ActionResult {
        let id = self.shares[share].id.clone();
        let to = format!(
            "10.{}.{}.{}",
            self.index % 250,
            self.rng.below(250),
            1 + self.rng.below(250)
        );
        let level = if self.rng.below(2) == 0 { "rw" } else { "ro" };
        let body =
            json!({"allow_access": {"access_type": "ip", "access_to": to, "access_level": level}});
        let answer = match self
            .shared
            .start(Method::POST, &format!("/shares/{id}/action"), Some(body))
            .await?
        {
            Ok(v) => v,
            Err(status) => return Ok(Outcome::Refused(status)),
        };
        let rule = id_of(&answer, "access")?;
        self.shares[share].rules.push(rule.clone());
        self.shared
            .wait(
                &format!("rule {rule} ({to}) of share {id}"),
                &format!("/share-access-rules/{rule}"),
                false,
                |v| {
                    let state = v["access"]["state"].as_str();
                    refuse_error("access rule", state)?;
                    Ok(state == Some("active"))
                },
            )
            .await?;
        Ok(Outcome::Done)
    }

    async fn access_deny(&mut self, share: usize) -> ActionResult {
        let owned = &self.shares[share];
        let Some(rule) = self.rng.pick(&owned.rules).cloned() else {
            return Ok(Outcome::Skipped);
        };
        let id = owned.id.clone();
        let body = json!({"deny_access": {"access_id": rule}});
        match self
            .shared
            .start(Method::POST, &format!("/shares/{id}/action"), Some(body))
            .await?
        {
            Ok(_) => {}
            Err(404) => {
                self.shares[share].rules.retain(|r| *r != rule);
                return Ok(Outcome::Refused(404));
            }
            Err(status) => return Ok(Outcome::Refused(status)),
        }
        self.shares[share].rules.retain(|r| *r != rule);
        self.shared
            .wait(
                &format!("denial of rule {rule} of share {id}"),
                &format!("/share-access-rules/{rule}"),
                true,
                |v| refuse_error("access rule", v["access"]["state"].as_str()).map(|()| false),
            )
            .await?;
        Ok(Outcome::Done)
    }

    async fn share_delete(&mut self, share: usize) -> ActionResult {
        let id = self.shares[share].id.clone();
        let outcome = self.delete_share(&id).await?;
        if matches!(outcome, Outcome::Done | Outcome::Refused(404)) {
            self.shares.remove(share);
        }
        Ok(outcome)
    }

    async fn delete_share(&self, id: &str) -> ActionResult {
        let path = format!("/shares/{id}");
        // Manila answers 403 to deleting a share that still has snapshots (InvalidShare
        // turned into HTTPForbidden in api/v1/shares.py).
        if let Err(status) = self
            .shared
            .start_accepting(Method::DELETE, &path, None, &[403])
            .await?
        {
            return Ok(Outcome::Refused(status));
        }
        self.shared
            .wait(&format!("deletion of share {id}"), &path, true, |v| {
                refuse_error("share", v["share"]["status"].as_str()).map(|()| false)
            })
            .await?;
        Ok(Outcome::Done)
    }

    /// Deletes everything the client owns: snapshots, secondary replicas, then the share
    /// (its rules go with it), retrying what is refused while objects settle.
    async fn cleanup(&mut self) {
        while let Some(owned) = self.shares.pop() {
            let deadline = Instant::now() + STABLE_WAIT;
            loop {
                let done = self.cleanup_share(&owned).await;
                match done {
                    Ok(true) => break,
                    Ok(false) if Instant::now() < deadline => tokio::time::sleep(POLL * 5).await,
                    Ok(false) => {
                        self.shared.record(
                            "share_delete",
                            Instant::now(),
                            Err(format!(
                                "cleanup: share {} still there after {STABLE_WAIT:?}",
                                owned.id
                            )),
                        );
                        break;
                    }
                    Err(reason) => {
                        self.shared.record(
                            "share_delete",
                            Instant::now(),
                            Err(format!("cleanup: {reason}")),
                        );
                        break;
                    }
                }
            }
        }
    }

    /// One pass of deleting a share and what is on it: `Ok(true)` once it is gone.
    async fn cleanup_share(&self, owned: &Owned) -> Result<bool, String> {
        let (status, v) = self
            .shared
            .call(
                Method::GET,
                &format!("/snapshots/detail?share_id={}", owned.id),
                None,
            )
            .await?;
        if status != 200 {
            return Err(format!(
                "listing the snapshots of {}: {status}: {v}",
                owned.id
            ));
        }
        for snapshot in v["snapshots"].as_array().into_iter().flatten() {
            if let Some(sid) = snapshot["id"].as_str() {
                let started = Instant::now();
                let result = self.delete_snapshot(sid).await;
                self.shared.record("snapshot_delete", started, result);
            }
        }
        let Some(replicas) = self.replicas(&owned.id).await? else {
            return Ok(true);
        };
        for replica in replicas
            .iter()
            .filter(|r| r["replica_state"].as_str() != Some("active"))
        {
            if let Some(rid) = replica["id"].as_str() {
                let started = Instant::now();
                let result = self.delete_replica(rid).await;
                self.shared.record("replica_delete", started, result);
            }
        }
        let started = Instant::now();
        let result = self.delete_share(&owned.id).await;
        let gone = matches!(result, Ok(Outcome::Done | Outcome::Refused(404)));
        self.shared.record("share_delete", started, result);
        Ok(gone)
    }
}

/// Runs the soak and its checks.
pub async fn run(settings: &SoakBench) -> anyhow::Result<SoakResults> {
    if settings.clients == 0 {
        bail!("--clients must be at least 1");
    }
    if settings.database_url.starts_with("postgres") {
        let schema = format!("soak_{}", crate::bench_api_nodes::scratch_suffix());
        let url = shoal_store::PgStore::create_schema(&settings.database_url, &schema)
            .await
            .context("creating the benchmark schema")?;
        let result = run_on(settings, &url).await;
        if let Err(err) = shoal_store::PgStore::drop_schema(&settings.database_url, &schema).await {
            tracing::warn!(error = %err, "could not drop benchmark schema {schema}: {err}");
        }
        return result;
    }
    run_on(settings, &settings.database_url).await
}

async fn run_on(settings: &SoakBench, database_url: &str) -> anyhow::Result<SoakResults> {
    let scratch = match &settings.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            tempfile::tempdir_in(dir)?
        }
        None => tempfile::tempdir()?,
    };
    let mut config = Config {
        data_dir: scratch.path().to_path_buf(),
        database_url: database_url.to_owned(),
        ..Config::default()
    };
    config.host = "soak".to_owned();
    config.api.auth_strategy = shoal_core::config::AuthStrategy::Noauth;
    config.api.listen = "127.0.0.1:0".parse()?;
    config.nfs.enabled = false;
    config.backends = BACKENDS
        .iter()
        .map(|(name, az)| BackendConfig::local(name, az))
        .collect();
    // Secondaries are refreshed by the periodic update too, so data moves without resyncs.
    config.periodic.replica_state_update_interval = Duration::from_secs(10);
    config.operations.poll_interval = Duration::from_millis(200);
    // Limits high enough never to refuse, so usage is still counted (and checked).
    let q = &mut config.quota;
    for limit in [&mut q.shares, &mut q.snapshots, &mut q.share_replicas] {
        *limit = 1_000_000;
    }
    for limit in [
        &mut q.gigabytes,
        &mut q.snapshot_gigabytes,
        &mut q.replica_gigabytes,
    ] {
        *limit = 10_000_000;
    }
    let pools: Vec<PathBuf> = config
        .backends
        .iter()
        .map(|b| scratch.path().join(format!("pools/{}", b.name)))
        .collect();
    let server = Server::start(config).await?;
    let result = soak(settings, &server, &pools).await;
    server.shutdown().await;
    result
}

async fn soak(
    settings: &SoakBench,
    server: &Server,
    pools: &[PathBuf],
) -> anyhow::Result<SoakResults> {
    // A third of the smallest pool's filesystem: snapshots are allocated on top of the
    // instances the store counts, and the filesystem is shared with everything else.
    let total_gb = pools
        .iter()
        .map(|p| filesystem_gb(p))
        .collect::<anyhow::Result<Vec<u64>>>()?
        .into_iter()
        .min()
        .unwrap_or(0);
    let budget_gb = (total_gb / 3).max(1);
    eprintln!("soak: clients add to a pool while it holds under {budget_gb} GiB allocated");
    let shared = Arc::new(Shared {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(settings.clients * 2)
            .timeout(Duration::from_secs(60))
            .build()?,
        base: format!("http://{}/v2", server.api_addr.context("api address")?),
        requests: AtomicU64::new(0),
        stats: Mutex::new(BTreeMap::new()),
        failures: Mutex::new(Vec::new()),
        created: Mutex::new(Vec::new()),
        store: server.core.store.clone(),
        budget_gb,
        room: Mutex::new((None, true)),
    });
    let share_type = json!({"share_type": {"name": "soak", "extra_specs": {
        "driver_handles_share_servers": false, "replication_type": "readable",
        "snapshot_support": true}}});
    match shared.start(Method::POST, "/types", Some(share_type)).await {
        Ok(Ok(_)) => {}
        other => bail!("creating the share type: {other:?}"),
    }

    eprintln!(
        "soak: {} clients for {:?} (seed {}) ...",
        settings.clients, settings.duration, settings.seed
    );
    let until = Instant::now() + settings.duration;
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..settings.clients {
        let mut client = Client {
            shared: shared.clone(),
            rng: XorShift::new(settings.seed, index as u64),
            shares: Vec::new(),
            index,
            files: 0,
        };
        tasks.spawn(async move {
            client.run(until).await;
            client.cleanup().await;
        });
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a soak client panicked")?;
    }
    let load_time = settings.duration;
    let drain_started = until;

    // Quiescence: no pending or running operation left.
    let store = server.core.store.clone();
    let quiet_deadline = Instant::now() + QUIESCE_WAIT;
    let mut unfinished = store.count_unfinished_operations().await?;
    while unfinished > 0 && Instant::now() < quiet_deadline {
        tokio::time::sleep(POLL).await;
        unfinished = store.count_unfinished_operations().await?;
    }
    let drain_time = Instant::now().saturating_duration_since(drain_started);
    eprintln!(
        "soak: load done, drained in {:.1} s; checking ...",
        drain_time.as_secs_f64()
    );

    let created = shared.created.lock().expect("created lock").clone();
    let mut checks = Vec::new();
    checks.push(check(
        "no pending or running operation (count_unfinished_operations)",
        unfinished == 0,
        format!("{unfinished} unfinished"),
    ));
    checks.extend(api_checks(&shared).await?);
    checks.extend(store_checks(store.as_ref(), &created).await?);
    checks.push(pool_check(pools)?);

    let mut operations_done = 0;
    let mut operations_failed = BTreeMap::new();
    for count in store.count_operations_by_kind().await? {
        match count.state {
            OperationState::Done => operations_done += count.count,
            OperationState::Failed => {
                *operations_failed.entry(count.kind).or_default() += count.count;
            }
            OperationState::Pending | OperationState::Running => {}
        }
    }
    let kinds = shared.stats.lock().expect("stats lock").clone();
    let failures = shared.failures.lock().expect("failures lock").clone();
    Ok(SoakResults {
        clients: settings.clients,
        kinds,
        requests: shared.requests.load(Ordering::Relaxed),
        load_time,
        drain_time,
        failures,
        shares_created: created.len(),
        operations_done,
        operations_failed,
        checks,
    })
}

/// Size of the filesystem holding `path`, GiB.
fn filesystem_gb(path: &std::path::Path) -> anyhow::Result<u64> {
    let stat = nix::sys::statvfs::statvfs(path)
        .with_context(|| format!("statvfs of {}", path.display()))?;
    Ok(stat.blocks() as u64 * stat.fragment_size() as u64 / (1 << 30))
}

fn check(name: &str, passed: bool, detail: String) -> Check {
    Check {
        name: name.to_owned(),
        passed,
        detail,
    }
}

/// The API shows nothing of the project any more.
async fn api_checks(shared: &Shared) -> anyhow::Result<Vec<Check>> {
    let mut checks = Vec::new();
    for (name, path, key) in [
        ("API: no share left", "/shares/detail", "shares"),
        (
            "API: no replica left",
            "/share-replicas/detail",
            "share_replicas",
        ),
        ("API: no snapshot left", "/snapshots/detail", "snapshots"),
    ] {
        let (status, v) = shared
            .call(Method::GET, path, None)
            .await
            .map_err(anyhow::Error::msg)?;
        let left: Vec<String> = v[key]
            .as_array()
            .into_iter()
            .flatten()
            .map(|o| {
                format!(
                    "{} ({})",
                    o["id"].as_str().unwrap_or("?"),
                    o["status"].as_str().unwrap_or("?")
                )
            })
            .collect();
        checks.push(check(
            name,
            status == 200 && left.is_empty(),
            format!("{status}, {} left {left:?}", left.len()),
        ));
    }
    let (status, v) = shared
        .call(Method::GET, &format!("/quota-sets/{PROJECT}/detail"), None)
        .await
        .map_err(anyhow::Error::msg)?;
    let nonzero: Vec<String> = QUOTA_RESOURCES
        .iter()
        .filter(|r| {
            let q = &v["quota_set"][**r];
            q["in_use"].as_i64() != Some(0) || q["reserved"].as_i64() != Some(0)
        })
        .map(|r| format!("{r}={}", v["quota_set"][*r]))
        .collect();
    checks.push(check(
        "API: quota usage of the project is zero (quota-set detail)",
        status == 200 && nonzero.is_empty(),
        format!("{status}, nonzero: {nonzero:?}"),
    ));
    Ok(checks)
}

/// The database holds no row of the run's objects and no usage.
async fn store_checks(store: &dyn Store, created: &[String]) -> anyhow::Result<Vec<Check>> {
    let mut checks = Vec::new();
    let shares = store
        .list_shares(ShareListFilter {
            project_id: None,
            include_public: false,
        })
        .await?;
    checks.push(check(
        "store: no share row",
        shares.is_empty(),
        format!("{} rows", shares.len()),
    ));
    let instances = store
        .list_all_share_instances(ShareInstanceFilter::default())
        .await?;
    checks.push(check(
        "store: no share instance row",
        instances.is_empty(),
        format!("{} rows", instances.len()),
    ));
    let snapshots = store.list_snapshots(SnapshotListFilter::default()).await?;
    checks.push(check(
        "store: no snapshot row",
        snapshots.is_empty(),
        format!("{} rows", snapshots.len()),
    ));
    let snapshot_instances = store
        .list_snapshot_instances(SnapshotInstanceFilter::default())
        .await?;
    checks.push(check(
        "store: no snapshot instance row",
        snapshot_instances.is_empty(),
        format!("{} rows", snapshot_instances.len()),
    ));
    let mut rules = 0;
    for id in created {
        let id = id.parse().context("share id")?;
        rules += store.list_access_rules(id).await?.len();
    }
    checks.push(check(
        "store: no access rule row of any share the run created",
        rules == 0,
        format!("{rules} rows over {} shares", created.len()),
    ));
    let usages = store.get_quota_usages(PROJECT).await?;
    let nonzero: Vec<String> = usages
        .values()
        .filter(|u| {
            QUOTA_RESOURCES.contains(&u.resource.as_str()) && (u.in_use != 0 || u.reserved != 0)
        })
        .map(|u| format!("{} in_use={} reserved={}", u.resource, u.in_use, u.reserved))
        .collect();
    checks.push(check(
        "store: quota usages of the project are zero",
        nonzero.is_empty(),
        format!("nonzero: {nonzero:?}"),
    ));
    Ok(checks)
}

/// The pools' `shares/`, `replicas/` and `snapshots/` hold nothing (no instance directory,
/// meta file, temporary or version directory).
fn pool_check(pools: &[PathBuf]) -> anyhow::Result<Check> {
    let mut left = Vec::new();
    for pool in pools {
        for sub in ["shares", "replicas", "snapshots"] {
            let dir = pool.join(sub);
            for entry in
                std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?
            {
                left.push(entry?.path().display().to_string());
            }
        }
    }
    Ok(check(
        "pools: shares/, replicas/ and snapshots/ are empty",
        left.is_empty(),
        format!("{} entries {left:?}", left.len()),
    ))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Prints the figures and the checks as Markdown.
pub fn print(r: &SoakResults) {
    println!("| action | count | ok | refused (status: n) | failed | p50 ms | p99 ms |");
    println!("|---|---:|---:|---|---:|---:|---:|");
    for kind in KINDS {
        let Some(k) = r.kinds.get(kind) else {
            continue;
        };
        let mut latencies = k.latencies.clone();
        latencies.sort();
        let refused: Vec<String> = k.refused.iter().map(|(s, n)| format!("{s}: {n}")).collect();
        println!(
            "| {kind} | {} | {} | {} | {} | {:.0} | {:.0} |",
            k.count,
            latencies.len(),
            if refused.is_empty() {
                "-".to_owned()
            } else {
                refused.join(", ")
            },
            k.failed,
            ms(percentile(&latencies, 0.5)),
            ms(percentile(&latencies, 0.99)),
        );
    }
    let total = r.load_time + r.drain_time;
    println!();
    println!(
        "clients {}, load {:.0} s, drain {:.1} s, shares created {}, requests {} ({:.0}/s over load + drain), failures {}",
        r.clients,
        r.load_time.as_secs_f64(),
        r.drain_time.as_secs_f64(),
        r.shares_created,
        r.requests,
        r.requests as f64 / total.as_secs_f64(),
        r.failures.len()
    );
    println!(
        "operations done {}, failed {} {:?}",
        r.operations_done,
        r.operations_failed.values().sum::<i64>(),
        r.operations_failed
    );
    for failure in &r.failures {
        println!("- failure: {failure}");
    }
    println!();
    for c in &r.checks {
        println!(
            "check {}: {} ({})",
            if c.passed { "PASS" } else { "FAIL" },
            c.name,
            c.detail
        );
    }
    println!(
        "soak {}",
        if r.passed() {
            "passed: every check held"
        } else {
            "FAILED"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xorshift_is_reproducible_per_client_and_differs_between_clients() {
        let draw = |seed, index| {
            let mut rng = XorShift::new(seed, index);
            (0..8).map(|_| rng.next_u64()).collect::<Vec<_>>()
        };
        assert_eq!(draw(1, 0), draw(1, 0));
        assert_ne!(draw(1, 0), draw(1, 1));
        assert_ne!(draw(1, 0), draw(2, 0));
        let mut rng = XorShift::new(0, 0);
        assert!((0..1000).all(|_| rng.below(7) < 7));
    }

    #[test]
    fn replica_stability_follows_status_and_replica_state() {
        let replica = |status: &str, state: &str| json!({"share_replica": {"id": "r", "status": status, "replica_state": state}});
        assert_eq!(replica_stable(&replica("available", "in_sync")), Ok(true));
        assert_eq!(
            replica_stable(&replica("creating", "out_of_sync")),
            Ok(false)
        );
        assert_eq!(replica_stable(&replica("available", "")), Ok(false));
        assert!(replica_stable(&replica("error", "out_of_sync")).is_err());
        assert!(replica_stable(&replica("available", "error")).is_err());
    }
}
