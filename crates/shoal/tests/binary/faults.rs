//! Faults from outside shoal, black-box (issue 13, item 6): a pool whose filesystem fills
//! up, and the database going away and coming back.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use crate::{call, local_path, poll_until, readable_share_in_az1, serve, tree, write_sample_tree};

/// A tmpfs mounted for one test, unmounted on drop (also when the test panics).
pub(crate) struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount -o size=`) at `at`. Needs root, as CI runs.
    pub(crate) fn mount(at: &Path, size: &str) -> Self {
        std::fs::create_dir_all(at).unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "this test mounts a tmpfs and needs root (CI runs as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Tmpfs(at.to_path_buf())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Writes zeros into `path` until the filesystem refuses with ENOSPC; returns the bytes.
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut file = std::fs::File::create(path).unwrap();
    let mut written = 0u64;
    for chunk in [8 << 20, 64 << 10, 4 << 10, 512] {
        let zeros = vec![0u8; chunk];
        loop {
            match file.write(&zeros) {
                Ok(0) => break,
                Ok(n) => written += n as u64,
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    written
}

/// The newest `trigger` sync of a replica once it is recorded.
async fn newest_sync(v2: &str, replica: &str, trigger: &str, after: usize) -> serde_json::Value {
    let history = poll_until(
        &format!("{v2}/share-replicas/{replica}/replication-history"),
        &format!("a {trigger} sync recorded"),
        |b| {
            b["replication_history"]
                .as_array()
                .is_some_and(|r| r.len() > after && r.iter().any(|r| r["trigger"] == trigger))
        },
    )
    .await;
    history["replication_history"][0].clone()
}

async fn history_len(v2: &str, replica: &str) -> usize {
    let (status, body) = call(
        Method::GET,
        &format!("{v2}/share-replicas/{replica}/replication-history"),
        "2.56",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["replication_history"].as_array().unwrap().len()
}

async fn resync(v2: &str, replica: &str) {
    let (status, body) = call(
        Method::POST,
        &format!("{v2}/share-replicas/{replica}/action"),
        "2.56",
        Some(json!({"resync": null})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
}

/// A replica whose pool's filesystem is full: the sync fails with the reason recorded, the
/// replica keeps serving its last complete version, the active loses nothing, and once
/// space is freed the next resync brings the replica in line.
#[tokio::test]
async fn a_full_pool_fails_the_sync_clearly_and_keeps_the_published_version() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // Just over 1 GiB, so the scheduler places a 1 GiB replica there; the test then fills
    // it with a file of its own (RAM-backed only while the test runs).
    let full = Tmpfs::mount(&dir.path().join("full"), "1100m");
    let mut config = format!("data_dir = {:?}\n", data.to_str().unwrap());
    for (name, az, path) in [
        ("local1", "az1", "pools/local1".to_owned()),
        ("local2", "az2", full.0.to_str().unwrap().to_owned()),
    ] {
        config.push_str(&format!(
            "[[backends]]\nname = \"{name}\"\ndriver = \"local\"\navailability_zone = \"{az}\"\n\
             replication_domain = \"shoal\"\nreplication_type = \"readable\"\n\
             [[backends.pools]]\nname = \"pool1\"\npath = {path:?}\n"
        ));
    }
    let config_path = dir.path().join("shoal.toml");
    std::fs::write(&config_path, config).unwrap();
    let env = [("SHOAL_OPERATIONS__POLL_INTERVAL", "100ms")];
    let served = serve(&["--config", config_path.to_str().unwrap()], &env);
    let v2 = format!("{}/v2", served.base);

    let (share_id, active_id) = readable_share_in_az1(&v2).await;
    let (_, els) = call(
        Method::GET,
        &format!("{v2}/share-replicas/{active_id}/export-locations"),
        "2.56",
        None,
    )
    .await;
    let active_root = els["export_locations"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|el| el["path"].as_str().filter(|p| p.starts_with("local://")))
        .map(local_path)
        .expect("the active's local location");
    write_sample_tree(&active_root, 100);
    let replica_id = crate::nfs::replica_in_az2(&v2, &share_id).await;
    let current = full.0.join("replicas").join(&replica_id).join("current");
    let published = tree(&current);
    assert_eq!(published, tree(&active_root));

    // The pool's filesystem fills up (something else on it took the space), then the active
    // changes: 6 MiB more to copy.
    let filler = full.0.join("filler");
    assert!(fill(&filler) > 0);
    let big: Vec<u8> = (0..6 << 20).map(|i: u32| (i % 253) as u8).collect();
    std::fs::write(active_root.join("new-big.bin"), &big).unwrap();
    std::fs::write(active_root.join("empty"), b"now with content").unwrap();
    let active_before = tree(&active_root);

    let before = history_len(&v2, &replica_id).await;
    resync(&v2, &replica_id).await;
    let record = newest_sync(&v2, &replica_id, "resync", before).await;
    assert_eq!(record["outcome"], "failed", "{record}");
    let detail = record["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("No space left on device"),
        "the failed sync names its cause: {record}"
    );
    assert_eq!(tree(&current), published, "the published version is intact");
    assert_eq!(tree(&active_root), active_before, "the active lost nothing");
    let (_, replica) = call(
        Method::GET,
        &format!("{v2}/share-replicas/{replica_id}"),
        "2.56",
        None,
    )
    .await;
    // Still usable: it serves its last version, and its state follows the RPO from the
    // newest clean sync, as after any failed sync.
    assert_eq!(replica["share_replica"]["status"], "available", "{replica}");
    assert!(
        ["in_sync", "out_of_sync"].contains(
            &replica["share_replica"]["replica_state"]
                .as_str()
                .unwrap_or("")
        ),
        "{replica}"
    );

    // Space comes back: the next resync converges and leaves no staging behind.
    std::fs::remove_file(&filler).unwrap();
    let before = history_len(&v2, &replica_id).await;
    resync(&v2, &replica_id).await;
    let record = newest_sync(&v2, &replica_id, "resync", before).await;
    assert_eq!(record["outcome"], "clean", "{record}");
    assert_eq!(tree(&current), tree(&active_root));
    poll_until(
        &format!("{v2}/share-replicas/{replica_id}"),
        "in_sync again",
        |b| b["share_replica"]["replica_state"] == "in_sync",
    )
    .await;
    let leftovers = crate::staging_leftovers(&full.0.join("replicas").join(&replica_id));
    assert!(leftovers.is_empty(), "staging leftovers: {leftovers:?}");
    drop(served);
}

/// A TCP proxy between a node and its PostgreSQL server that the test can cut (every
/// connection reset, new ones refused) and restore, as a network partition would.
struct DbLink {
    addr: std::net::SocketAddr,
    up: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>>,
    accept: tokio::task::JoinHandle<()>,
}

impl DbLink {
    async fn start(server: String) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let up = Arc::new(AtomicBool::new(true));
        let connections: Arc<Mutex<Vec<tokio::task::AbortHandle>>> = Arc::default();
        let accept = {
            let (up, connections) = (up.clone(), connections.clone());
            tokio::spawn(async move {
                loop {
                    let Ok((mut client, _)) = listener.accept().await else {
                        return;
                    };
                    if !up.load(Ordering::SeqCst) {
                        drop(client);
                        continue;
                    }
                    let server = server.clone();
                    let task = tokio::spawn(async move {
                        if let Ok(mut upstream) = tokio::net::TcpStream::connect(server).await {
                            let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                        }
                    });
                    connections.lock().unwrap().push(task.abort_handle());
                }
            })
        };
        DbLink {
            addr,
            up,
            connections,
            accept,
        }
    }

    fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        for task in self.connections.lock().unwrap().drain(..) {
            task.abort();
        }
    }

    fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

impl Drop for DbLink {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Polls `GET {base}{path}` (noauth admin) until it answers `want`; returns every status
/// seen on the way.
async fn statuses_until(base: &str, path: &str, want: u16, within: Duration) -> Vec<u16> {
    let deadline = Instant::now() + within;
    let mut seen = Vec::new();
    loop {
        let (status, _) = call(Method::GET, &format!("{base}{path}"), "2.56", None).await;
        seen.push(status);
        if status == want {
            return seen;
        }
        assert!(
            Instant::now() < deadline,
            "GET {path} never answered {want}: {seen:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The database going away: the node answers 503 (the probe and the API alike, never a
/// 500), keeps running, and serves again by itself once the database is back, with
/// nothing lost. PostgreSQL only (a SQLite file does not go away). Multi-threaded: the
/// link's tasks must run while `serve` blocks this thread waiting for the node's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_away_gives_503_and_the_node_recovers() {
    use shoal_store::testing::ForTest;
    let Some(db) = shoal_store::PgStore::for_test().await else {
        return;
    };
    let url = db.database_url().to_owned();
    // Route the node's connections through the link: swap the URL's host:port.
    let authority_start = url.find('@').map_or("postgres://".len(), |at| at + 1);
    let authority_end = url[authority_start..]
        .find('/')
        .map_or(url.len(), |i| authority_start + i);
    let server = url[authority_start..authority_end].to_owned();
    let link = DbLink::start(server).await;
    let proxied = format!(
        "{}{}{}",
        &url[..authority_start],
        link.addr,
        &url[authority_end..]
    );
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = [("SHOAL_OPERATIONS__POLL_INTERVAL", "100ms")];
    let served = serve(
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--database-url",
            &proxied,
        ],
        &env,
    );
    let base = served.base.clone();
    let (status, body) = call(
        Method::POST,
        &format!("{base}/v2/types"),
        "2.56",
        Some(json!({"share_type": {"name": "kept", "extra_specs": {"driver_handles_share_servers": false}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    link.cut();
    let seen = statuses_until(&base, "/healthcheck", 503, Duration::from_secs(30)).await;
    assert!(seen.iter().all(|s| [200, 503].contains(s)), "{seen:?}");
    for path in ["/v2/types", "/v2/shares", "/v2/share-replicas"] {
        let (status, body) = call(Method::GET, &format!("{base}{path}"), "2.56", None).await;
        assert_eq!(status, 503, "GET {path} with the database away: {body}");
    }

    link.restore();
    let seen = statuses_until(&base, "/healthcheck", 200, Duration::from_secs(30)).await;
    assert!(seen.iter().all(|s| [200, 503].contains(s)), "{seen:?}");
    let (status, types) = call(Method::GET, &format!("{base}/v2/types"), "2.56", None).await;
    assert_eq!(status, 200, "{types}");
    assert!(
        types["share_types"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["name"] == "kept"),
        "{types}"
    );
    // The workers carry on too: a new share goes through the whole pipeline.
    let (status, body) = call(
        Method::POST,
        &format!("{base}/v2/shares"),
        "2.56",
        Some(json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "kept"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["share"]["id"].as_str().unwrap().to_owned();
    poll_until(&format!("{base}/v2/shares/{id}"), "share available", |b| {
        b["share"]["status"] == "available"
    })
    .await;
    drop(served);
    db.finish().await;
}

/// Log lines carry the request id of the request they concern (the same id the client got
/// in `x-openstack-request-id`) and the operation id of the operation they concern, in the
/// text and the JSON format alike.
#[tokio::test]
async fn log_lines_carry_request_and_operation_ids() {
    for json_format in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut env = vec![("RUST_LOG", "info,tower_http=debug")];
        if json_format {
            env.push(("RUST_LOG_FORMAT", "json"));
        }
        let served = serve(&["--data-dir", data.to_str().unwrap()], &env);
        let response = reqwest::Client::new()
            .post(format!("{}/v2/types", served.base))
            .header("X-Auth-Token", "admin:admin")
            .header("X-OpenStack-Manila-API-Version", "2.56")
            .json(&json!({"share_type": {"name": "t", "extra_specs": {"driver_handles_share_servers": false}}}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 200);
        let request_id = response.headers()["x-openstack-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let (status, body) = call(
            Method::POST,
            &format!("{}/v2/shares", served.base),
            "2.56",
            Some(json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "t"}})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let id = body["share"]["id"].as_str().unwrap().to_owned();
        poll_until(
            &format!("{}/v2/shares/{id}", served.base),
            "share available",
            |b| b["share"]["status"] == "available",
        )
        .await;
        let lines: Vec<String> = served
            .startup_log
            .iter()
            .cloned()
            .chain(served.log.try_iter())
            .collect();
        let request_line = lines
            .iter()
            .find(|l| l.contains(&request_id))
            .unwrap_or_else(|| panic!("no line names {request_id}: {lines:#?}"));
        let scheduled = lines
            .iter()
            .find(|l| l.contains("scheduled share instance"))
            .unwrap_or_else(|| panic!("no scheduling line: {lines:#?}"));
        if json_format {
            let request: serde_json::Value = serde_json::from_str(request_line).unwrap();
            assert_eq!(
                request["span"]["request_id"],
                request_id.as_str(),
                "{request}"
            );
            let scheduled: serde_json::Value = serde_json::from_str(scheduled).unwrap();
            assert!(
                scheduled["span"]["op.id"].is_number(),
                "the operation's id: {scheduled}"
            );
        } else {
            assert!(request_line.contains("request_id="), "{request_line}");
            assert!(
                scheduled.contains("operation{op.id="),
                "the operation's id: {scheduled}"
            );
        }
        drop(served);
    }
}
