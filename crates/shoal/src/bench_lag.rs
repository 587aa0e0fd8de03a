//! `shoal bench nfs-lag`: how far a readable secondary trails its active under a steady
//! write load through NFS (issue 12's target: p99 at most 1 s).
//!
//! One in-process node on its embedded default (SQLite, the two `local` back ends in `az1`
//! and `az2`), with the periodic replica update pushed out to an hour, so only the data
//! plane's change follower (`shoal_core::replica_updater`) moves the secondary. The share is
//! filled first with the replication benchmark's tree (written into its data directory, so
//! every sync works against a manifest of that size), gets an `ip 127.0.0.1 rw` rule and a
//! readable replica in `az2`. Then a writer creates `lag/fNNNNNN` files at a steady rate,
//! each with one WRITE FILE_SYNC (what a client's close sends for a file that fits one
//! WRITE), through the active's NFS export; a reader polls the secondary's NFS export (a
//! MOUNT when its root handle went stale after a new version, then LOOKUPs) for the next
//! file it has not seen. A file's lag is the time from the reply to its WRITE to the first
//! poll that finds it on the secondary with its full size, so the figure includes the
//! debounce, the queueing of the update operation, the sync, the publication and the export
//! refresh, plus up to one poll interval.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use nfs3_client::Nfs3ConnectionBuilder;
use nfs3_client::nfs3_types::nfs3::{
    LOOKUP3args, MKDIR3args, Nfs3Option, Nfs3Result, WRITE3args, nfs_fh3, nfsstat3, stable_how,
};
use nfs3_client::nfs3_types::xdr_codec::Opaque;
use serde_json::{Value, json};
use shoal_core::Config;

use crate::bench::percentile;
use crate::bench_nfs::{NoDelay, Stream, call, create, dirop, mode, ok};
use crate::bench_replication::{Rng, build_tree};
use crate::server::Server;

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct LagBench {
    /// Scratch directory (the node's data directory is made in it). `None`: under `.`.
    pub dir: Option<PathBuf>,
    /// Files of the replication benchmark's tree in the share before the load starts.
    pub tree_files: usize,
    /// How long the writer writes.
    pub duration: Duration,
    /// Files written per second.
    pub rate: f64,
    /// Bytes of each written file (one WRITE, at most 1 MiB).
    pub file_size: u64,
    /// How often the reader looks at the secondary.
    pub poll: Duration,
}

/// What one run measured.
#[derive(Debug, Clone)]
pub struct LagResults {
    /// Files acknowledged by the active.
    pub written: usize,
    /// Lag of each file, sorted.
    pub lags: Vec<Duration>,
    /// Syncs of the secondary during the load, and how many of them read the change journal.
    pub syncs: usize,
    pub journal_syncs: usize,
    /// Time the writer actually took (behind the schedule when writes were slow).
    pub write_time: Duration,
    /// Entries in the share before the load.
    pub tree_entries: usize,
}

/// Gibibytes the share is created with: room for the tree (the replication benchmark's files
/// average about 150 KiB) and the load, with one to spare, so that a small run does not ask
/// the pool's capacity filter for space it will never use (a fixed 10 GiB put CI's run in
/// `error` on a machine with little free disk).
fn share_size_gib(settings: &LagBench) -> u64 {
    let tree = settings.tree_files as u64 * 160 * 1024;
    let load = (settings.duration.as_secs_f64() * settings.rate).ceil() as u64 * settings.file_size;
    (tree + load).div_ceil(1 << 30) + 1
}

/// Token of the benchmark's requests (noauth: `user:project`, admin).
const TOKEN: &str = "bench:bench";
/// Microversion: replication without the experimental header.
const VERSION: &str = "2.56";
/// Longest wait for a control-plane state (share, rule, first replica sync).
const SETUP_WAIT: Duration = Duration::from_secs(600);
/// Sync records asked for (the API's default `max_limit`): the load's syncs must fit.
const HISTORY_LIMIT: usize = 1000;
/// How long after the last write the reader keeps looking before it gives up.
const DRAIN_WAIT: Duration = Duration::from_secs(60);

struct Api {
    client: reqwest::Client,
    base: String,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .client
            .request(method.clone(), format!("{}{path}", self.base))
            .header("X-Auth-Token", TOKEN)
            .header("X-OpenStack-Manila-API-Version", VERSION);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        if !status.is_success() {
            bail!("{method} {path}: {status}: {text}");
        }
        if text.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).with_context(|| format!("{method} {path}: {text}"))
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn post(&self, path: &str, body: Value) -> anyhow::Result<Value> {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    /// Polls `path` until `done` says the answer is final (`Ok(true)`), or fails.
    async fn wait_for(
        &self,
        what: &str,
        path: &str,
        done: impl Fn(&Value) -> anyhow::Result<bool>,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + SETUP_WAIT;
        loop {
            let value = self.get(path).await?;
            if done(&value)? {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!("{what}: still {value} after {SETUP_WAIT:?}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The export location of `locations` that clients use (`addr:/shares/<id>`), and the
/// admin-only `local://` one when asked for.
fn location(locations: &Value, admin_only: bool) -> anyhow::Result<String> {
    locations["export_locations"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|l| l["is_admin_only"].as_bool() == Some(admin_only))
        .and_then(|l| l["path"].as_str())
        .map(str::to_owned)
        .with_context(|| format!("no export location with is_admin_only={admin_only}: {locations}"))
}

/// Splits `127.0.0.1:/shares/<id>` into the server address and the export path.
fn nfs_target(location: &str, port: u16) -> anyhow::Result<(String, String, u16)> {
    let (host, path) = location
        .split_once(":/")
        .with_context(|| format!("{location:?} is not an NFS location"))?;
    Ok((host.to_owned(), format!("/{path}"), port))
}

async fn mount(target: &(String, String, u16)) -> anyhow::Result<Stream> {
    let (host, path, port) = target;
    let conn = Nfs3ConnectionBuilder::new(NoDelay, host.clone(), path)
        .mount_port(*port)
        .nfs3_port(*port)
        // The reader mounts again after every new version; privileged ports (724 of them,
        // each held in TIME_WAIT after use) would run out, and shoal does not ask for them.
        .connect_from_privileged_port(false)
        .mount();
    let conn = call(&format!("mounting {host}:{path}"), conn).await?;
    let root = conn.root_nfs_fh3();
    Ok(Stream {
        nfs: conn.into_nfs3_client(),
        root,
    })
}

/// LOOKUP of `name` in `dir`: the handle and size, `None` when it is not there.
async fn lookup(
    s: &mut Stream,
    dir: &nfs_fh3,
    name: &str,
) -> anyhow::Result<Result<(nfs_fh3, u64), nfsstat3>> {
    let args = LOOKUP3args {
        what: dirop(dir, name),
    };
    Ok(match call("LOOKUP", s.nfs.lookup(&args)).await? {
        Nfs3Result::Ok(res) => {
            let size = match res.obj_attributes {
                Nfs3Option::Some(attr) => attr.size,
                Nfs3Option::None => 0,
            };
            Ok((res.object, size))
        }
        Nfs3Result::Err((status, _)) => Err(status),
    })
}

/// The writer: one file every `1 / rate` seconds; returns each file's acknowledgement time.
async fn write_load(
    target: (String, String, u16),
    settings: LagBench,
    count: usize,
) -> anyhow::Result<(Vec<Instant>, Duration)> {
    let mut s = mount(&target).await?;
    let root = s.root.clone();
    let args = MKDIR3args {
        where_: dirop(&root, "lag"),
        attributes: mode(0o755),
    };
    let res = ok("MKDIR", call("MKDIR", s.nfs.mkdir(&args)).await?)?;
    let Nfs3Option::Some(dir) = res.obj else {
        bail!("MKDIR lag: no handle in the reply");
    };
    let data = vec![0x5au8; settings.file_size as usize];
    let period = Duration::from_secs_f64(1.0 / settings.rate);
    let mut ticks = tokio::time::interval(period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let started = Instant::now();
    let mut acked = Vec::with_capacity(count);
    for k in 0..count {
        ticks.tick().await;
        let fh = create(&mut s, &dir, &file_name(k)).await?;
        let args = WRITE3args {
            file: fh,
            offset: 0,
            count: data.len() as u32,
            stable: stable_how::FILE_SYNC,
            data: Opaque::borrowed(&data),
        };
        ok("WRITE", call("WRITE", s.nfs.write(&args)).await?)?;
        acked.push(Instant::now());
    }
    Ok((acked, started.elapsed()))
}

fn file_name(k: usize) -> String {
    format!("f{k:06}")
}

/// The reader: the time each file was first seen whole on the secondary.
async fn watch(
    target: (String, String, u16),
    count: usize,
    size: u64,
    poll: Duration,
    give_up: Instant,
) -> anyhow::Result<Vec<Instant>> {
    let mut seen = Vec::with_capacity(count);
    let mut s = mount(&target).await?;
    let mut dir: Option<nfs_fh3> = None;
    while seen.len() < count {
        if Instant::now() > give_up {
            bail!(
                "the secondary showed {} of {count} files {DRAIN_WAIT:?} after the last write",
                seen.len()
            );
        }
        tokio::time::sleep(poll).await;
        let current = match &dir {
            Some(d) => d.clone(),
            None => {
                let root = s.root.clone();
                match lookup(&mut s, &root, "lag").await? {
                    Ok((d, _)) => {
                        dir = Some(d.clone());
                        d
                    }
                    Err(nfsstat3::NFS3ERR_NOENT) => continue,
                    Err(nfsstat3::NFS3ERR_STALE) => {
                        s = mount(&target).await?;
                        continue;
                    }
                    Err(status) => bail!("LOOKUP lag on the secondary: {status:?}"),
                }
            }
        };
        loop {
            match lookup(&mut s, &current, &file_name(seen.len())).await? {
                Ok((_, got)) if got == size => {
                    seen.push(Instant::now());
                    if seen.len() == count {
                        break;
                    }
                }
                // Not there (or not whole) yet.
                Ok(_) | Err(nfsstat3::NFS3ERR_NOENT) => break,
                // A new version was published: its root has another handle.
                Err(nfsstat3::NFS3ERR_STALE) => {
                    s = mount(&target).await?;
                    dir = None;
                    break;
                }
                Err(status) => bail!("LOOKUP on the secondary: {status:?}"),
            }
        }
    }
    Ok(seen)
}

/// Runs the benchmark.
pub async fn run(settings: &LagBench) -> anyhow::Result<LagResults> {
    if !settings.rate.is_finite()
        || settings.rate <= 0.0
        || settings.file_size == 0
        || settings.file_size > 1 << 20
    {
        bail!("--rate must be positive and --file-size between 1 byte and 1 MiB");
    }
    let scratch = match &settings.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            tempfile::tempdir_in(dir)?
        }
        None => tempfile::tempdir_in(".")?,
    };
    let mut config = Config {
        data_dir: scratch.path().to_path_buf(),
        ..Config::default()
    };
    config.host = "bench".to_owned();
    config.api.auth_strategy = shoal_core::config::AuthStrategy::Noauth;
    config.api.listen = "127.0.0.1:0".parse()?;
    config.nfs.listen = "127.0.0.1:0".parse()?;
    // Only the change follower moves the secondary during the load.
    config.periodic.replica_state_update_interval = Duration::from_secs(3600);
    config.quota.shares = -1;
    config.quota.gigabytes = -1;
    let server = Server::start(config).await?;
    let result = measure(settings, &server).await;
    server.shutdown().await;
    result
}

async fn measure(settings: &LagBench, server: &Server) -> anyhow::Result<LagResults> {
    let api = Api {
        client: reqwest::Client::new(),
        base: format!("http://{}/v2", server.api_addr.context("api address")?),
    };
    let nfs_port = server.nfs_addr.context("the node serves no NFS")?.port();
    api.post(
        "/types",
        json!({"share_type": {"name": "lag", "extra_specs": {
            "driver_handles_share_servers": false, "replication_type": "readable"}}}),
    )
    .await?;
    let share = api
        .post(
            "/shares",
            json!({"share": {"share_proto": "NFS", "size": share_size_gib(settings), "share_type": "lag",
                "availability_zone": "az1"}}),
        )
        .await?;
    let share_id = share["share"]["id"]
        .as_str()
        .context("share id")?
        .to_owned();
    api.wait_for(
        "share",
        &format!("/shares/{share_id}"),
        |v| match v["share"]["status"].as_str() {
            Some("available") => Ok(true),
            Some("error") => bail!("share went to error"),
            _ => Ok(false),
        },
    )
    .await?;
    let locations = api
        .get(&format!("/shares/{share_id}/export_locations"))
        .await?;
    let data_dir = location(&locations, true)?;
    let data_dir = data_dir
        .strip_prefix("local://")
        .and_then(|rest| rest.find('/').map(|slash| PathBuf::from(&rest[slash..])))
        .with_context(|| format!("{data_dir:?} is not a local:// location"))?;
    let active = nfs_target(&location(&locations, false)?, nfs_port)?;

    eprintln!("filling the share with {} files ...", settings.tree_files);
    let tree_files = settings.tree_files;
    let fill = data_dir.clone();
    tokio::task::spawn_blocking(move || build_tree(&fill, tree_files, 0, &mut Rng(1))).await??;
    let tree_entries = count_entries(&data_dir)?;

    let rule = api
        .post(
            &format!("/shares/{share_id}/action"),
            json!({"allow_access": {"access_type": "ip", "access_to": "127.0.0.1",
                "access_level": "rw"}}),
        )
        .await?;
    let rule_id = rule["access"]["id"].as_str().context("rule id")?.to_owned();
    api.wait_for(
        "access rule",
        &format!("/share-access-rules/{rule_id}"),
        |v| match v["access"]["state"].as_str() {
            Some("active") => Ok(true),
            Some("error") => bail!("the access rule went to error"),
            _ => Ok(false),
        },
    )
    .await?;

    eprintln!("creating the readable replica (first sync walks the tree) ...");
    let replica = api
        .post(
            "/share-replicas",
            json!({"share_replica": {"share_id": share_id, "availability_zone": "az2"}}),
        )
        .await?;
    let replica_id = replica["share_replica"]["id"]
        .as_str()
        .context("replica id")?
        .to_owned();
    api.wait_for("replica", &format!("/share-replicas/{replica_id}"), |v| {
        let r = &v["share_replica"];
        match (r["status"].as_str(), r["replica_state"].as_str()) {
            (Some("available"), Some("in_sync")) => Ok(true),
            (Some("error"), _) => bail!("the replica went to error"),
            _ => Ok(false),
        }
    })
    .await?;
    let replica_locations = api
        .get(&format!("/share-replicas/{replica_id}/export-locations"))
        .await?;
    let secondary = nfs_target(&location(&replica_locations, false)?, nfs_port)?;
    // Syncs that started after the newest one before the load are the load's.
    let before = history(&api, &replica_id)
        .await?
        .last()
        .and_then(|r| r["started_at"].as_str().map(str::to_owned))
        .unwrap_or_default();

    let count = (settings.duration.as_secs_f64() * settings.rate).ceil() as usize;
    eprintln!(
        "writing {count} files of {} bytes at {}/s through NFS ...",
        settings.file_size, settings.rate
    );
    let give_up = Instant::now() + settings.duration * 3 + DRAIN_WAIT;
    let reader = tokio::spawn(watch(
        secondary,
        count,
        settings.file_size,
        settings.poll,
        give_up,
    ));
    let (acked, write_time) = write_load(active, settings.clone(), count).await?;
    let seen = reader.await??;
    let mut lags: Vec<Duration> = acked
        .iter()
        .zip(&seen)
        .map(|(a, s)| s.saturating_duration_since(*a))
        .collect();
    lags.sort();
    let records = history(&api, &replica_id).await?;
    let during: Vec<&Value> = records
        .iter()
        .filter(|r| r["started_at"].as_str().is_some_and(|t| *t > *before))
        .collect();
    let journal_syncs = during
        .iter()
        .filter(|r| {
            r["detail"]
                .as_str()
                .is_some_and(|d| d.contains("from the change journal"))
        })
        .count();
    Ok(LagResults {
        written: acked.len(),
        lags,
        syncs: during.len(),
        journal_syncs,
        write_time,
        tree_entries,
    })
}

/// The replica's sync records, oldest first.
async fn history(api: &Api, replica: &str) -> anyhow::Result<Vec<Value>> {
    let v = api
        .get(&format!(
            "/share-replicas/{replica}/replication-history?limit={HISTORY_LIMIT}"
        ))
        .await?;
    let mut records = v["replication_history"]
        .as_array()
        .cloned()
        .context("replication history")?;
    records.sort_by(|a, b| a["started_at"].as_str().cmp(&b["started_at"].as_str()));
    Ok(records)
}

fn count_entries(root: &Path) -> anyhow::Result<usize> {
    let mut n = 0;
    let mut todo = vec![root.to_path_buf()];
    while let Some(dir) = todo.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            n += 1;
            if entry.file_type()?.is_dir() {
                todo.push(entry.path());
            }
        }
    }
    Ok(n)
}

/// Prints the results as a Markdown table.
pub fn print(settings: &LagBench, r: &LagResults) {
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "| entries in the share | writes | rate /s | file size | syncs | from the journal | p50 ms | p99 ms | max ms |"
    );
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {:.1} | {} | {} | {} | {:.0} | {:.0} | {:.0} |",
        r.tree_entries,
        r.written,
        r.written as f64 / r.write_time.as_secs_f64(),
        settings.file_size,
        r.syncs,
        r.journal_syncs,
        ms(percentile(&r.lags, 0.5)),
        ms(percentile(&r.lags, 0.99)),
        ms(r.lags.last().copied().unwrap_or_default()),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(tree_files: usize, seconds: u64, rate: f64, file_size: u64) -> LagBench {
        LagBench {
            dir: None,
            tree_files,
            duration: Duration::from_secs(seconds),
            rate,
            file_size,
            poll: Duration::from_millis(50),
        }
    }

    #[test]
    fn the_share_is_sized_from_the_tree_and_the_load() {
        // The CI test's run: a few megabytes.
        assert_eq!(share_size_gib(&settings(50, 2, 10.0, 4096)), 2);
        // The recorded run: 20,400 files (~3.1 GiB) and 1200 × 64 KiB (75 MiB).
        assert_eq!(share_size_gib(&settings(20_400, 60, 20.0, 64 << 10)), 5);
    }
}
