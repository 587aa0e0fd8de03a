//! The NFS data plane black-box, with libnfs's command-line client (`nfs-cp`, `nfs-cat` from
//! Debian's `libnfs-utils`; the kernel of the test machines has no NFS client): the done-when
//! flow of the data-plane issue on a fresh `shoal serve` with its embedded default.

use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::{call, poll_until, readable_share_in_az1, serve};

/// Whether libnfs's tools are installed (CI installs them; elsewhere the test says why it
/// does nothing).
fn libnfs_tools() -> bool {
    Command::new("nfs-cp").output().is_ok()
}

/// `nfs://` URL of `file` in the export at `location` (`<address>:/shares/<id>`), with the
/// server's port for both MOUNT and NFS (no portmapper).
fn url(location: &str, server: SocketAddr, file: &str) -> String {
    let (host, path) = location.split_once(":/").expect("an NFS export location");
    assert_eq!(host, server.ip().to_string(), "{location}");
    let port = server.port();
    format!("nfs://{host}/{path}/{file}?nfsport={port}&mountport={port}")
}

fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"))
}

/// The client-facing export location of a share replica.
async fn location(v2: &str, replica: &str) -> String {
    let (status, body) = call(
        Method::GET,
        &format!("{v2}/share-replicas/{replica}/export-locations"),
        "2.56",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let client: Vec<&Value> = body["export_locations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["is_admin_only"] == false)
        .collect();
    assert_eq!(client.len(), 1, "{body}");
    assert_eq!(client[0]["preferred"], true, "{body}");
    client[0]["path"].as_str().unwrap().to_owned()
}

/// Allows `ip 127.0.0.1 rw` on `share` and waits until the rule is active.
async fn allow_this_host(v2: &str, share: &str) {
    crate::allow_ip(v2, share, "127.0.0.1", Duration::from_secs(90)).await;
}

/// Asks for a replica of `share` in az2; its id (not waited for).
pub(crate) async fn request_replica_in_az2(v2: &str, share: &str) -> String {
    let (status, body) = call(
        Method::POST,
        &format!("{v2}/share-replicas"),
        "2.56",
        Some(json!({"share_replica": {"share_id": share, "availability_zone": "az2"}})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    body["share_replica"]["id"].as_str().unwrap().to_owned()
}

/// Adds a replica of `share` in az2 and waits until it is available and in_sync; its id.
pub(crate) async fn replica_in_az2(v2: &str, share: &str) -> String {
    let replica = request_replica_in_az2(v2, share).await;
    poll_until(
        &format!("{v2}/share-replicas/{replica}"),
        "replica in_sync",
        |b| {
            b["share_replica"]["status"] == "available"
                && b["share_replica"]["replica_state"] == "in_sync"
        },
    )
    .await;
    replica
}

/// Fresh `shoal serve`: allow `ip 127.0.0.1 rw`, write a file with `nfs-cp` to the share's
/// export location and one to a nested path below it (a subdirectory MOUNT), list and read
/// them, see the first on a readable replica's export after the next sync, and see that
/// replica refuse a write.
#[tokio::test]
async fn nfs_cp_writes_a_share_and_a_readable_replica_serves_it_read_only() {
    if !libnfs_tools() {
        eprintln!("skipped: nfs-cp not found (install Debian's libnfs-utils)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let served = serve(
        &["--data-dir", data.to_str().unwrap()],
        &[
            ("SHOAL_OPERATIONS__POLL_INTERVAL", "100ms"),
            ("SHOAL_PERIODIC__REPLICA_STATE_UPDATE_INTERVAL", "1s"),
        ],
    );
    let server = served.nfs_addr();
    let v2 = format!("{}/v2", served.base);
    let (share, active) = readable_share_in_az1(&v2).await;

    allow_this_host(&v2, &share).await;

    let active_location = location(&v2, &active).await;
    assert_eq!(active_location, format!("127.0.0.1:/shares/{active}"));
    let local = dir.path().join("hello.txt");
    std::fs::write(&local, "hello over NFS\n").unwrap();
    let out = run(
        "nfs-cp",
        &[
            local.to_str().unwrap(),
            &url(&active_location, server, "hello.txt"),
        ],
    );
    assert!(out.status.success(), "nfs-cp to the share: {out:?}");

    // A URL with a nested path: libnfs mounts the file's directory below the export.
    let share_dir = data.join("pools/local1/shares").join(&active);
    assert_eq!(
        std::fs::read(share_dir.join("hello.txt")).unwrap(),
        b"hello over NFS\n"
    );
    std::fs::create_dir_all(share_dir.join("sub/dir")).unwrap();
    let out = run(
        "nfs-cp",
        &[
            local.to_str().unwrap(),
            &url(&active_location, server, "sub/dir/nested.txt"),
        ],
    );
    assert!(out.status.success(), "nfs-cp to a nested path: {out:?}");
    assert_eq!(
        std::fs::read(share_dir.join("sub/dir/nested.txt")).unwrap(),
        b"hello over NFS\n"
    );
    let out = run("nfs-ls", &[&url(&active_location, server, "sub")]);
    assert!(out.status.success(), "nfs-ls of a subdirectory: {out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("dir"),
        "{out:?}"
    );
    let out = run(
        "nfs-cat",
        &[&url(&active_location, server, "sub/dir/nested.txt")],
    );
    assert!(out.status.success(), "nfs-cat of a nested path: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello over NFS\n");
    let out = run(
        "nfs-cat",
        &[&url(&active_location, server, "sub/missing/nested.txt")],
    );
    assert!(
        !out.status.success(),
        "nfs-cat below a missing directory: {out:?}"
    );

    // A readable replica; then a second file, which only the next periodic sync carries.
    let replica = replica_in_az2(&v2, &share).await;
    let second = dir.path().join("second.txt");
    std::fs::write(&second, "written after the replica was made\n").unwrap();
    let out = run(
        "nfs-cp",
        &[
            second.to_str().unwrap(),
            &url(&active_location, server, "second.txt"),
        ],
    );
    assert!(out.status.success(), "nfs-cp to the share: {out:?}");

    let replica_location = location(&v2, &replica).await;
    assert_eq!(replica_location, format!("127.0.0.1:/shares/{replica}"));
    let out = run("nfs-cat", &[&url(&replica_location, server, "hello.txt")]);
    assert!(out.status.success(), "nfs-cat from the replica: {out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "hello over NFS\n");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let out = run("nfs-cat", &[&url(&replica_location, server, "second.txt")]);
        if out.status.success() {
            assert_eq!(
                String::from_utf8_lossy(&out.stdout),
                "written after the replica was made\n"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the periodic sync never brought second.txt: {out:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The replica is read-only at the data plane, whatever the rule says.
    let out = run(
        "nfs-cp",
        &[
            local.to_str().unwrap(),
            &url(&replica_location, server, "intruder.txt"),
        ],
    );
    assert!(
        !out.status.success(),
        "a readable replica took a write: {out:?}"
    );
    let out = run(
        "nfs-cat",
        &[&url(&replica_location, server, "intruder.txt")],
    );
    assert!(!out.status.success(), "the refused file exists: {out:?}");
}

/// Content of file number `i` of the kill test.
fn content(i: usize) -> Vec<u8> {
    format!("file {i} ").repeat(100 + i % 50).into_bytes()
}

/// kill -9 of the node while a client writes files (each acknowledged `FILE_SYNC`): after a
/// restart, every acknowledged file is in the active's change journal, and the readable
/// replica's next sync brings every one of them, intact.
#[tokio::test]
async fn kill_9_with_writes_in_flight_loses_no_acknowledged_write() {
    use shoal_testkit::nfs::NfsMount;
    use std::sync::{Arc, Mutex};

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    let env = [
        ("SHOAL_OPERATIONS__LEASE", "2s"),
        ("SHOAL_OPERATIONS__POLL_INTERVAL", "100ms"),
        ("SHOAL_PERIODIC__REPLICA_STATE_UPDATE_INTERVAL", "1s"),
    ];
    let mut served = serve(&["--data-dir", &data_arg], &env);
    let v2 = format!("{}/v2", served.base);
    let (share, active) = readable_share_in_az1(&v2).await;
    allow_this_host(&v2, &share).await;
    let replica = replica_in_az2(&v2, &share).await;

    let active_path = format!("/shares/{active}");
    let mut writer = NfsMount::mount(served.nfs_addr(), &active_path)
        .await
        .unwrap();
    let acked = Arc::new(Mutex::new(Vec::new()));
    let acked_by_writer = acked.clone();
    let writing = tokio::spawn(async move {
        for i in 0.. {
            if writer
                .write_file(&format!("f{i:05}"), &content(i))
                .await
                .is_err()
            {
                return;
            }
            acked_by_writer.lock().unwrap().push(i);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while acked.lock().unwrap().len() < 100 {
        assert!(Instant::now() < deadline, "the writer never got going");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    drop(served);
    writing.await.unwrap();
    let acked = acked.lock().unwrap().clone();

    // Every acknowledged write was recorded before it was acknowledged.
    let journal = std::fs::read(
        data.join("pools/local1/shares")
            .join(format!("{active}.journal")),
    )
    .expect("the active's change journal");
    for i in &acked {
        let name = format!("f{i:05}");
        assert!(
            journal.windows(name.len()).any(|w| w == name.as_bytes()),
            "{name} acknowledged but not in the journal"
        );
    }

    // After the restart the replica catches up with every acknowledged file.
    let served = serve(&["--data-dir", &data_arg], &env);
    let replica_path = format!("/shares/{replica}");
    let last = *acked.last().unwrap();
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut reader = loop {
        if let Ok(mut reader) = NfsMount::mount(served.nfs_addr(), &replica_path).await
            && reader.read_file(&format!("f{last:05}")).await.is_ok()
        {
            break reader;
        }
        assert!(
            Instant::now() < deadline,
            "the replica never caught up with f{last:05}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for i in &acked {
        let got = reader.read_file(&format!("f{i:05}")).await.unwrap();
        assert_eq!(got, content(*i), "f{i:05}");
    }
}

/// `shoal bench nfs-lag` on a small tree for two seconds: the benchmark's whole path (a node
/// on the embedded default, a replica, NFS writes followed by the change follower) works and
/// prints its table; the figures themselves are for docs/BENCHMARKS.md, not for tests.
#[test]
fn bench_nfs_lag_runs_and_reports_syncs_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(crate::BIN)
        .args(["bench", "nfs-lag", "--tree-files", "50", "--seconds", "2"])
        .args(["--rate", "10", "--file-size", "4KiB", "--dir"])
        .arg(dir.path())
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let row = stdout
        .lines()
        .last()
        .expect("a result row")
        .split('|')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect::<Vec<_>>();
    // entries, writes, rate, size, syncs, from the journal, p50, p99, max
    assert_eq!(row.len(), 9, "{stdout}");
    assert_eq!(row[1], "20", "{stdout}");
    let syncs: usize = row[4].parse().unwrap();
    let journal: usize = row[5].parse().unwrap();
    assert!(syncs >= 1 && journal >= 1, "{stdout}");
}
