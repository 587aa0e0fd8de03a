//! Crash tests: for each failpoint at a durable step (`crash_point` in shoal-core,
//! shoal-driver and shoal-replication, compiled in by the `testing` feature this test binary
//! is built with), start a node with it armed, drive the API through the flow that reaches
//! it, see the node abort there, restart it on the same data directory and database without
//! failpoints, let it settle, and check the invariants: no unfinished operation, every object
//! in its terminal state, quota usage equal to what the objects hold, no orphan or temporary
//! directory in the pools, and every readable replica's published version complete.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::{Served, call, serve, tree};

/// The API flow that reaches a failpoint.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flow {
    /// Create a share of a type without replication.
    CreateShare,
    /// Create a share, then delete it.
    DeleteShare,
    /// Create a readable share with data in az1, then a replica in az2.
    CreateReplica,
    /// [`Flow::CreateReplica`] until `in_sync`, change the active's data, then `resync`.
    Resync,
    /// [`Flow::CreateReplica`] until `in_sync`, then promote the replica.
    Promote,
    /// [`Flow::CreateReplica`] until `in_sync`, then delete the replica.
    DeleteReplica,
}

/// One row: a failpoint, the `fail` action that arms it, and the flow that reaches it.
struct Case {
    failpoint: &'static str,
    /// `return` aborts at the first hit; `1*off->return` lets the first hit pass (the
    /// replica's initial sync) and aborts at the second (the resync).
    action: &'static str,
    flow: Flow,
}

const fn case(failpoint: &'static str, action: &'static str, flow: Flow) -> Case {
    Case {
        failpoint,
        action,
        flow,
    }
}

/// Every failpoint, with the flow that reaches it. A new failpoint gets a row here.
const CASES: &[Case] = &[
    case("share_create::after_mkdir", "return", Flow::CreateShare),
    case(
        "share_create::after_backend_create",
        "return",
        Flow::CreateShare,
    ),
    case(
        "share_create::before_available",
        "return",
        Flow::CreateShare,
    ),
    case(
        "share_delete::after_rename_away",
        "return",
        Flow::DeleteShare,
    ),
    case(
        "share_delete::before_row_delete",
        "return",
        Flow::DeleteShare,
    ),
    case(
        "replica_create::after_initial_sync",
        "return",
        Flow::CreateReplica,
    ),
    case(
        "replica_create::before_available",
        "return",
        Flow::CreateReplica,
    ),
    case("sync::before_publish", "return", Flow::CreateReplica),
    case("sync::before_swap", "return", Flow::CreateReplica),
    case("sync::after_publish", "return", Flow::CreateReplica),
    case("sync::before_publish", "1*off->return", Flow::Resync),
    case("sync::before_swap", "1*off->return", Flow::Resync),
    case("sync::after_publish", "1*off->return", Flow::Resync),
    case("promote::after_move", "return", Flow::Promote),
    case("promote::after_backend_promote", "return", Flow::Promote),
    case("promote::before_swap", "return", Flow::Promote),
    case("promote::after_swap", "return", Flow::Promote),
    case(
        "replica_delete::before_row_delete",
        "return",
        Flow::DeleteReplica,
    ),
];

/// A short lease and poll, so the restarted node takes over the dead node's claims at once.
const ENV: [(&str, &str); 2] = [
    ("SHOAL_OPERATIONS__LEASE", "2s"),
    ("SHOAL_OPERATIONS__POLL_INTERVAL", "100ms"),
];

/// The noauth admin's project, which owns everything the flows create.
const PROJECT: &str = "admin";

#[tokio::test]
async fn a_crash_at_each_failpoint_leaves_consistent_state() {
    // `CASES=<substring>` runs only the matching rows (while debugging one failpoint).
    let only = std::env::var("CASES").ok();
    for case in CASES
        .iter()
        .filter(|c| only.as_deref().is_none_or(|o| c.failpoint.contains(o)))
    {
        let started = Instant::now();
        crash_and_check(case).await;
        eprintln!(
            "{} ({}, {:?}): consistent after the crash, {:.1} s",
            case.failpoint,
            case.action,
            case.flow,
            started.elapsed().as_secs_f64()
        );
    }
}

/// A tree as [`tree`] reads it.
type Tree = BTreeMap<String, (char, Vec<u8>, u32, i128)>;

/// What a flow leaves for the checks after the restart.
#[derive(Default)]
struct Driven {
    share: Option<String>,
    /// The share's first instance (its active replica when replicated).
    active: Option<String>,
    replica: Option<String>,
    /// The replica's published tree before the step that crashed (resync).
    published_before: Option<Tree>,
}

async fn crash_and_check(case: &Case) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let armed = format!("{}={}", case.failpoint, case.action);
    let mut env = ENV.to_vec();
    env.push(("FAILPOINTS", &armed));
    let mut served = serve(&["--data-dir", &data_arg], &env);
    assert!(
        served
            .startup_log
            .iter()
            .any(|l| l.contains("failpoints compiled in")),
        "the test binary is built with the `testing` feature: {:?}",
        served.startup_log
    );
    let v2 = format!("{}/v2", served.base);
    let driven = drive(case.flow, &v2, &data).await;
    died_at(&mut served, case.failpoint);
    drop(served);

    // While the node is down: a replica's published version is a complete one.
    if let Some(replica) = &driven.replica {
        let current = data
            .join("pools/local2/replicas")
            .join(replica)
            .join("current");
        if current.exists() {
            let active = tree(
                &data
                    .join("pools/local1/shares")
                    .join(driven.active.as_ref().unwrap()),
            );
            let published = tree(&current);
            assert!(
                published == active || driven.published_before.as_ref() == Some(&published),
                "{}: replica {replica} publishes a half-built version",
                case.failpoint
            );
        }
    }

    let served = serve(&["--data-dir", &data_arg], &ENV);
    let v2 = format!("{}/v2", served.base);
    let db = database(&data).await;
    let settled = settle(&db, case).await;
    check_flow_outcome(case, &driven, &settled);
    check_quotas(&v2, &settled, case).await;
    check_pools(&data, &settled, case);
    check_published_versions(&data, &settled, case);
    db.close().await;
}

/// Runs `flow` up to the call that reaches its failpoint.
async fn drive(flow: Flow, v2: &str, data: &Path) -> Driven {
    let replicated = flow != Flow::CreateShare && flow != Flow::DeleteShare;
    let type_name = if replicated { "replicated" } else { "plain" };
    let specs = if replicated {
        json!({"driver_handles_share_servers": false, "replication_type": "readable"})
    } else {
        json!({"driver_handles_share_servers": false})
    };
    let share = super::type_and_share_in_az1(v2, type_name, specs).await;
    let mut driven = Driven {
        share: Some(share.clone()),
        ..Default::default()
    };
    if flow == Flow::CreateShare {
        return driven;
    }
    wait_for(&format!("{v2}/shares/{share}"), |b| {
        b["share"]["status"] == "available"
    })
    .await;
    let (_, replicas) = call(
        Method::GET,
        &format!("{v2}/share-replicas?share_id={share}"),
        "2.56",
        None,
    )
    .await;
    let active = match replicas["share_replicas"][0]["id"].as_str() {
        Some(active) => active.to_owned(),
        None => {
            let (_, instances) = call(
                Method::GET,
                &format!("{v2}/shares/{share}/instances"),
                "2.56",
                None,
            )
            .await;
            instances["share_instances"][0]["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let active_root = data.join("pools/local1/shares").join(&active);
    driven.active = Some(active);
    write_small_tree(&active_root, "first");
    if flow == Flow::DeleteShare {
        let (status, body) = call(
            Method::DELETE,
            &format!("{v2}/shares/{share}"),
            "2.56",
            None,
        )
        .await;
        assert_eq!(status, 202, "{body}");
        return driven;
    }
    let replica = crate::nfs::request_replica_in_az2(v2, &share).await;
    driven.replica = Some(replica.clone());
    if flow == Flow::CreateReplica {
        return driven;
    }
    wait_for(&format!("{v2}/share-replicas/{replica}"), |b| {
        b["share_replica"]["status"] == "available"
            && b["share_replica"]["replica_state"] == "in_sync"
    })
    .await;
    let replica_url = format!("{v2}/share-replicas/{replica}");
    let (status, body) = match flow {
        Flow::Resync => {
            let current = data
                .join("pools/local2/replicas")
                .join(&replica)
                .join("current");
            driven.published_before = Some(tree(&current));
            write_small_tree(&active_root, "second");
            call(
                Method::POST,
                &format!("{replica_url}/action"),
                "2.56",
                Some(json!({"resync": null})),
            )
            .await
        }
        Flow::Promote => {
            call(
                Method::POST,
                &format!("{replica_url}/action"),
                "2.56",
                Some(json!({"promote": null})),
            )
            .await
        }
        Flow::DeleteReplica => call(Method::DELETE, &replica_url, "2.56", None).await,
        _ => unreachable!("handled above"),
    };
    assert_eq!(status, 202, "{body}");
    driven
}

/// A few files, a directory, a symlink; `round` changes the contents of some.
fn write_small_tree(root: &Path, round: &str) {
    std::fs::create_dir_all(root.join("sub/deeper")).unwrap();
    for i in 0..12 {
        let text = if i % 3 == 0 {
            format!("{round} {i}\n")
        } else {
            format!("file {i}\n")
        };
        std::fs::write(root.join(format!("sub/deeper/f{i:02}")), text).unwrap();
    }
    std::fs::write(root.join("top"), round).unwrap();
    let link = root.join("link");
    if std::fs::symlink_metadata(&link).is_err() {
        std::os::unix::fs::symlink("sub/deeper/f00", &link).unwrap();
    }
}

/// Polls `url` until `done` holds (bounded).
async fn wait_for(url: &str, done: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = call(Method::GET, url, "2.56", None).await;
        if status == 200 && done(&body) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting on {url}; last answer {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Waits (bounded) for the failpoint's line, then for the process to end by SIGABRT.
fn died_at(served: &mut Served, failpoint: &str) {
    let marker = format!("failpoint {failpoint} reached: aborting");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match served.log.recv_timeout(left) {
            Ok(line) if line.contains(&marker) => break,
            Ok(line) => seen.push(line),
            Err(_) => panic!(
                "the node never reached {failpoint}; its log:\n{}",
                seen.join("\n")
            ),
        }
    }
    let status = served.child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(6),
        "the node aborted (SIGABRT) at {failpoint}: {status:?}"
    );
}

async fn database(data: &Path) -> sqlx::SqlitePool {
    let options = sqlx::sqlite::SqliteConnectOptions::new()
        .filename(data.join("shoal.db"))
        .read_only(true);
    sqlx::SqlitePool::connect_with(options).await.unwrap()
}

/// One share instance as the database holds it.
#[derive(Debug, Clone)]
struct Instance {
    id: String,
    share_id: String,
    status: String,
    replica_state: Option<String>,
    host: String,
    size_gb: i64,
    replication_type: Option<String>,
}

impl Instance {
    /// The back end (= pool directory name of the embedded defaults) it lives on.
    fn backend(&self) -> &str {
        self.host
            .split_once('@')
            .map(|(_, rest)| rest.split('#').next().unwrap_or(rest))
            .unwrap_or("")
    }

    fn is_secondary(&self) -> bool {
        self.replica_state
            .as_deref()
            .is_some_and(|state| state != "active")
    }
}

/// The database once the node has settled.
struct Settled {
    instances: Vec<Instance>,
    /// Operations that gave up (`failed`).
    failed: Vec<String>,
}

const TERMINAL: [&str; 2] = ["available", "error"];

/// Waits (bounded) until no operation is pending or running and every instance is in a
/// terminal state, then reads the database.
async fn settle(db: &sqlx::SqlitePool, case: &Case) -> Settled {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let unfinished: Vec<(i64, String, String, Option<String>)> = sqlx::query_as(
            "SELECT id, kind, state, last_error FROM operations \
             WHERE state IN ('pending', 'running') ORDER BY id",
        )
        .fetch_all(db)
        .await
        .unwrap();
        let instances: Vec<Instance> = sqlx::query_as::<
            _,
            (
                String,
                String,
                String,
                Option<String>,
                String,
                i64,
                Option<String>,
            ),
        >(
            "SELECT i.id, i.share_id, i.status, i.replica_state, i.host, s.size_gb, \
             s.replication_type FROM share_instances i JOIN shares s ON s.id = i.share_id \
             ORDER BY i.id",
        )
        .fetch_all(db)
        .await
        .unwrap()
        .into_iter()
        .map(
            |(id, share_id, status, replica_state, host, size_gb, replication_type)| Instance {
                id,
                share_id,
                status,
                replica_state,
                host,
                size_gb,
                replication_type,
            },
        )
        .collect();
        let busy: Vec<&Instance> = instances
            .iter()
            .filter(|i| !TERMINAL.contains(&i.status.as_str()))
            .collect();
        if unfinished.is_empty() && busy.is_empty() {
            let failed: Vec<(i64, String, Option<String>)> = sqlx::query_as(
                "SELECT id, kind, last_error FROM operations WHERE state = 'failed'",
            )
            .fetch_all(db)
            .await
            .unwrap();
            return Settled {
                instances,
                failed: failed.iter().map(|f| format!("{f:?}")).collect(),
            };
        }
        assert!(
            Instant::now() < deadline,
            "{}: not settled 30 s after the restart: operations {unfinished:?}, instances {busy:?}",
            case.failpoint
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The flow's request was accepted before the crash, so after the restart it is carried out.
fn check_flow_outcome(case: &Case, driven: &Driven, settled: &Settled) {
    let fp = case.failpoint;
    assert!(
        settled.failed.is_empty(),
        "{fp}: operations gave up: {:?}",
        settled.failed
    );
    let share = driven.share.as_deref().unwrap();
    let of_share: Vec<&Instance> = settled
        .instances
        .iter()
        .filter(|i| i.share_id == share)
        .collect();
    let find = |id: &str| of_share.iter().find(|i| i.id == id).copied();
    match case.flow {
        Flow::DeleteShare => assert!(of_share.is_empty(), "{fp}: share not deleted: {of_share:?}"),
        Flow::CreateShare => {
            assert_eq!(of_share.len(), 1, "{fp}: {of_share:?}");
            assert_eq!(of_share[0].status, "available", "{fp}: {of_share:?}");
        }
        Flow::DeleteReplica => {
            assert_eq!(of_share.len(), 1, "{fp}: replica not deleted: {of_share:?}");
            assert_eq!(of_share[0].status, "available", "{fp}: {of_share:?}");
            assert_eq!(of_share[0].replica_state.as_deref(), Some("active"));
        }
        Flow::CreateReplica | Flow::Resync | Flow::Promote => {
            let replica = find(driven.replica.as_deref().unwrap())
                .unwrap_or_else(|| panic!("{fp}: replica gone: {of_share:?}"));
            let other = of_share
                .iter()
                .find(|i| i.id != replica.id)
                .unwrap_or_else(|| panic!("{fp}: active gone: {of_share:?}"));
            assert!(
                of_share.iter().all(|i| i.status == "available"),
                "{fp}: {of_share:?}"
            );
            let (active, secondary) = if case.flow == Flow::Promote {
                (replica, *other)
            } else {
                (*other, replica)
            };
            assert_eq!(
                active.replica_state.as_deref(),
                Some("active"),
                "{fp}: {of_share:?}"
            );
            assert_eq!(
                secondary.replica_state.as_deref(),
                Some("in_sync"),
                "{fp}: {of_share:?}"
            );
        }
    }
}

/// Quota usage (the quota-set detail API) equals what the remaining objects hold.
async fn check_quotas(v2: &str, settled: &Settled, case: &Case) {
    let shares: BTreeMap<&str, &Instance> = settled
        .instances
        .iter()
        .map(|i| (i.share_id.as_str(), i))
        .collect();
    let replicated: Vec<&Instance> = settled
        .instances
        .iter()
        .filter(|i| i.replication_type.is_some())
        .collect();
    let expected = [
        ("shares", shares.len() as i64),
        ("gigabytes", shares.values().map(|i| i.size_gb).sum()),
        ("share_replicas", replicated.len() as i64),
        (
            "replica_gigabytes",
            replicated.iter().map(|i| i.size_gb).sum(),
        ),
    ];
    let (status, body) = call(
        Method::GET,
        &format!("{v2}/quota-sets/{PROJECT}/detail"),
        "2.56",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for (resource, in_use) in expected {
        let usage = &body["quota_set"][resource];
        assert_eq!(
            usage["in_use"].as_i64(),
            Some(in_use),
            "{}: {resource} in use vs objects: {body}",
            case.failpoint
        );
        assert_eq!(
            usage["reserved"].as_i64(),
            Some(0),
            "{}: {resource} reserved: {body}",
            case.failpoint
        );
    }
}

/// Every directory in the pools belongs to an instance in the database and vice versa; no
/// temporary or half-built entries are left.
fn check_pools(data: &Path, settled: &Settled, case: &Case) {
    let fp = case.failpoint;
    let mut expected: BTreeSet<PathBuf> = BTreeSet::new();
    for instance in &settled.instances {
        let layout = if instance.is_secondary() {
            "replicas"
        } else {
            "shares"
        };
        expected.insert(
            data.join("pools")
                .join(instance.backend())
                .join(layout)
                .join(&instance.id),
        );
    }
    let known: BTreeSet<&str> = settled.instances.iter().map(|i| i.id.as_str()).collect();
    let mut found = BTreeSet::new();
    for pool in ["local1", "local2"] {
        for layout in ["shares", "replicas"] {
            let dir = data.join("pools").join(pool).join(layout);
            let Ok(read) = std::fs::read_dir(&dir) else {
                continue;
            };
            for entry in read.map_while(Result::ok) {
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = entry.path();
                // `<id>`, or a file beside it: `<id>.meta.json`, `<id>.state.json`, ...
                let id = name.split('.').next().unwrap_or_default();
                assert!(
                    !name.starts_with('.') && !name.contains("tmp") && !name.ends_with(".deleting"),
                    "{fp}: crash leftover {}",
                    path.display()
                );
                assert!(
                    known.contains(id),
                    "{fp}: orphan {} (no such instance in the database)",
                    path.display()
                );
                if path.is_dir() {
                    found.insert(path);
                }
            }
        }
    }
    assert_eq!(
        found, expected,
        "{fp}: instance directories vs the database"
    );
    // Inside a replica directory: versions, manifests and state only.
    for path in found
        .iter()
        .filter(|p| p.parent().unwrap().ends_with("replicas"))
    {
        let names: Vec<String> = std::fs::read_dir(path)
            .unwrap()
            .map_while(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        for name in &names {
            assert!(
                !name.starts_with("staging") && !name.starts_with("spare") && !name.contains("tmp"),
                "{fp}: leftover {name} in {}: {names:?}",
                path.display()
            );
        }
    }
}

/// A readable secondary publishes exactly what its active holds (nothing changes the
/// active after the flow, and the settled replica is in_sync).
fn check_published_versions(data: &Path, settled: &Settled, case: &Case) {
    for secondary in settled.instances.iter().filter(|i| i.is_secondary()) {
        let active = settled
            .instances
            .iter()
            .find(|i| i.share_id == secondary.share_id && !i.is_secondary())
            .expect("an active replica");
        let active_root = data
            .join("pools")
            .join(active.backend())
            .join("shares")
            .join(&active.id);
        let current = data
            .join("pools")
            .join(secondary.backend())
            .join("replicas")
            .join(&secondary.id)
            .join("current");
        assert_eq!(
            tree(&current),
            tree(&active_root),
            "{}: replica {} publishes what its active holds",
            case.failpoint,
            secondary.id
        );
    }
}
