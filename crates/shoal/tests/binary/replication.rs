//! Replication between nodes on the netns harness: every share node in its own namespace
//! with its own address and replication endpoint, the cluster secret in a file they share,
//! one PostgreSQL. What the secondaries hold is read straight from their pools (all nodes
//! run on this machine's filesystem) and compared with the active's tree.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::{Cluster, Node, example};
use crate::{call, local_path, poll_until_within, tree};

/// Bound of every wait in these tests.
const WAIT: Duration = Duration::from_secs(60);

/// One share node of a test.
#[derive(Clone, Copy)]
struct Spec<'a> {
    name: &'a str,
    zone: &'a str,
    /// Top-level TOML (e.g. another `cluster_secret`).
    top: &'a str,
    /// TOML for the back end (`[backends.local]` keys).
    backend: &'a str,
    /// Whether the node serves a replication endpoint.
    endpoint: bool,
    /// Whether the node's endpoint serves TLS and its client trusts only the test CA.
    tls: bool,
}

impl<'a> Spec<'a> {
    fn new(name: &'a str, zone: &'a str) -> Self {
        Spec {
            name,
            zone,
            top: "",
            backend: "",
            endpoint: true,
            tls: false,
        }
    }
}

/// A share node's config additions: its zone, short peer timeouts (a cut link must fail a
/// sync in seconds) and an hour-long periodic update, so syncs happen only when a test asks
/// for one. The harness gives every node the cluster's secret and an endpoint on its address.
fn share_extra(spec: &Spec<'_>) -> String {
    format!(
        "{top}\n[replication]\nconnect_timeout = \"1s\"\nread_timeout = \"2s\"\n\
         [periodic]\nreplica_state_update_interval = \"1h\"\n\
         [[backends]]\navailability_zone = \"{zone}\"\n{backend}",
        top = spec.top,
        zone = spec.zone,
        backend = spec.backend,
    )
}

/// A cluster with an API+scheduler node and one share node per zone.
struct Replicated {
    cluster: Cluster,
    api: Node,
    nodes: Vec<Node>,
}

impl Replicated {
    async fn start(specs: &[Spec<'_>]) -> Option<Replicated> {
        let mut cluster = Cluster::new().await?;
        let ca = TestCa::new();
        let api = cluster
            .node(
                "api1",
                &example("api"),
                "roles = [\"api\", \"scheduler\"]\n",
            )
            .await;
        let mut nodes = Vec::new();
        for spec in specs {
            let host = cluster.add_host(spec.name);
            let mut config: toml::Table = cluster
                .config(&host, &example("share"), &share_extra(spec))
                .parse()
                .unwrap();
            let replication = config["replication"].as_table_mut().unwrap();
            if !spec.endpoint {
                replication.retain(|k, _| k != "listen" && k != "advertise");
            }
            if spec.tls {
                for (key, path) in ca.files_for(&host.dir, &host.ip.to_string()) {
                    replication.insert(key.to_owned(), path.to_string_lossy().as_ref().into());
                }
            }
            nodes.push(cluster.start(&host, &config.to_string()).await);
        }
        let v2 = api.v2();
        let hosts: Vec<String> = specs.iter().map(|s| format!("{}@local", s.name)).collect();
        poll_until_within(&format!("{v2}/services"), "share services up", WAIT, |b| {
            hosts.iter().all(|h| {
                b["services"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["binary"] == "manila-share" && s["host"] == *h && s["state"] == "up")
            })
        })
        .await;
        let (status, body) = call(
            Method::POST,
            &format!("{v2}/types"),
            "2.56",
            Some(json!({"share_type": {"name": "replicated", "extra_specs": {
                "driver_handles_share_servers": false, "replication_type": "readable"}}})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        Some(Replicated {
            cluster,
            api,
            nodes,
        })
    }

    fn v2(&self) -> String {
        self.api.v2()
    }

    /// A readable share in az1 (on n1), available; returns its id, its active replica's id
    /// and its data directory.
    async fn share(&self) -> (String, String, PathBuf) {
        self.share_in("az1", 0).await
    }

    /// [`Self::share`] in `zone`, on the node `node` of the specs.
    async fn share_in(&self, zone: &str, node: usize) -> (String, String, PathBuf) {
        let v2 = self.v2();
        let (status, body) = call(
            Method::POST,
            &format!("{v2}/shares"),
            "2.56",
            Some(json!({"share": {"share_proto": "NFS", "size": 1,
                "share_type": "replicated", "availability_zone": zone}})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let id = body["share"]["id"].as_str().unwrap().to_owned();
        poll_until_within(&format!("{v2}/shares/{id}"), "share available", WAIT, |b| {
            assert_ne!(b["share"]["status"], "error", "{b}");
            b["share"]["status"] == "available"
        })
        .await;
        let (_, replicas) = call(
            Method::GET,
            &format!("{v2}/share-replicas?share_id={id}"),
            "2.56",
            None,
        )
        .await;
        let active = replicas["share_replicas"][0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let root = self
            .paths(&active)
            .await
            .into_iter()
            .find(|p| p.is_dir())
            .expect("the active's data directory");
        assert!(
            root.starts_with(self.nodes[node].data_dir()),
            "the share is on {}: {}",
            self.nodes[node].host.name,
            root.display()
        );
        (id, active, root)
    }

    async fn paths(&self, replica: &str) -> Vec<PathBuf> {
        let (status, body) = call(
            Method::GET,
            &format!("{}/share-replicas/{replica}/export-locations", self.v2()),
            "2.56",
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["export_locations"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|l| l["path"].as_str().filter(|p| p.starts_with("local://")))
            .map(local_path)
            .collect()
    }

    /// Adds a replica in `zone` and waits until it is `in_sync`; returns its id and the
    /// directory of its published version.
    async fn replica_in(&self, share: &str, zone: &str) -> (String, PathBuf) {
        let v2 = self.v2();
        let id = request_replica(&v2, share, zone).await;
        let replica = poll_until_within(
            &format!("{v2}/share-replicas/{id}"),
            &format!("replica in {zone} in_sync"),
            WAIT,
            |b| {
                assert_ne!(b["share_replica"]["status"], "error", "{b}");
                b["share_replica"]["replica_state"] == "in_sync"
            },
        )
        .await;
        assert_eq!(replica["share_replica"]["availability_zone"], zone);
        let current = self
            .paths(&id)
            .await
            .into_iter()
            .find(|p| p.ends_with("current"))
            .expect("a readable secondary exports its published version");
        (id, current)
    }

    /// Waits until the share service `host` has sent a heartbeat after `after`.
    async fn heartbeat_after(&self, host: &str, after: chrono::DateTime<chrono::Utc>) {
        let after = after.naive_utc();
        poll_until_within(
            &format!("{}/services", self.v2()),
            &format!("a heartbeat of {host}"),
            WAIT,
            |b| {
                b["services"].as_array().unwrap().iter().any(|s| {
                    s["host"] == host
                        && s["updated_at"].as_str().is_some_and(|t| {
                            chrono::NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
                                .is_ok_and(|t| t > after)
                        })
                })
            },
        )
        .await;
    }

    /// The replica's sync records, newest first.
    async fn history(&self, replica: &str) -> Vec<Value> {
        let (status, body) = call(
            Method::GET,
            &format!("{}/share-replicas/{replica}/replication-history", self.v2()),
            "2.56",
            None,
        )
        .await;
        assert_eq!(status, 200, "{body}");
        body["replication_history"].as_array().unwrap().clone()
    }

    /// Asks for a resync and waits until a new sync record with an outcome in `outcomes`
    /// appears; returns it.
    async fn resync(&self, replica: &str, outcomes: &[&str]) -> Value {
        let before = self.history(replica).await.len();
        let (status, body) = call(
            Method::POST,
            &format!("{}/share-replicas/{replica}/action", self.v2()),
            "2.56",
            Some(json!({"resync": null})),
        )
        .await;
        assert_eq!(status, 202, "{body}");
        let deadline = Instant::now() + WAIT;
        loop {
            let history = self.history(replica).await;
            if history.len() > before {
                let record = history[0].clone();
                assert!(
                    outcomes.contains(&record["outcome"].as_str().unwrap_or_default()),
                    "{record}"
                );
                return record;
            }
            assert!(
                Instant::now() < deadline,
                "no new sync record for {replica}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// A CA of a test cluster, issuing endpoint certificates for the nodes' addresses.
struct TestCa {
    key: rcgen::KeyPair,
    cert: rcgen::Certificate,
}

impl TestCa {
    fn new() -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key).unwrap();
        TestCa { key, cert }
    }

    /// Writes a certificate for `ip`, its key and the CA into `dir`; returns the
    /// `[replication]` settings naming them.
    fn files_for(&self, dir: &Path, ip: &str) -> [(&'static str, PathBuf); 3] {
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = rcgen::CertificateParams::new(vec![ip.to_owned()])
            .unwrap()
            .signed_by(&key, &self.cert, &self.key)
            .unwrap();
        let files = [
            ("tls_cert", dir.join("replication.crt"), cert.pem()),
            ("tls_key", dir.join("replication.key"), key.serialize_pem()),
            ("tls_ca", dir.join("ca.crt"), self.cert.pem()),
        ];
        files.map(|(setting, path, pem)| {
            std::fs::write(&path, pem).unwrap();
            (setting, path)
        })
    }
}

/// A tree with nesting, a 50 MiB file, symlinks (one dangling), unicode names, modes and
/// old mtimes, and `files` small files.
fn write_tree(root: &Path, files: usize) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(root.join("a/b/c")).unwrap();
    std::fs::create_dir_all(root.join("dir with spaces/ünïcödé")).unwrap();
    std::fs::write(root.join("empty"), b"").unwrap();
    std::fs::write(root.join("dir with spaces/ünïcödé/naïve file.txt"), "héllo").unwrap();
    std::fs::write(root.join("a/big.bin"), big()).unwrap();
    std::os::unix::fs::symlink("a/big.bin", root.join("link-to-big")).unwrap();
    std::os::unix::fs::symlink("does/not/exist", root.join("dangling")).unwrap();
    for i in 0..files {
        let path = root.join(format!("a/b/c/f{i:04}"));
        std::fs::write(&path, format!("file {i}\n").repeat(i % 7 + 1)).unwrap();
        let mode = [0o644, 0o600, 0o755][i % 3];
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    std::fs::set_permissions(root.join("a/b"), std::fs::Permissions::from_mode(0o750)).unwrap();
    let old = std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_600_000_000);
    std::fs::File::options()
        .write(true)
        .open(root.join("a/big.bin"))
        .unwrap()
        .set_modified(old)
        .unwrap();
}

/// 50 MiB that do not repeat within a block.
fn big() -> Vec<u8> {
    (0..50 * 1024 * 1024u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// Three share nodes in az1/az2/az3, each in its own namespace: a tree on n1 is replicated
/// to n2 and n3 byte for byte (modes and mtimes too) through the replication endpoints;
/// after 1% of it changes, a resync's record shows that only that went over the wire.
#[tokio::test]
async fn netns_replicas_on_other_nodes_copy_the_tree_and_a_resync_sends_only_changes() {
    let started = Instant::now();
    let specs = [
        Spec::new("n1", "az1"),
        Spec::new("n2", "az2"),
        Spec::new("n3", "az3"),
    ];
    let Some(r) = Replicated::start(&specs).await else {
        return;
    };
    let (share, _active, root) = r.share().await;
    write_tree(&root, 200);

    let mut replicas = Vec::new();
    for (zone, node) in [("az2", 1), ("az3", 2)] {
        let (id, current) = r.replica_in(&share, zone).await;
        assert!(
            current.starts_with(r.nodes[node].data_dir()),
            "the replica in {zone} is on {}: {}",
            r.nodes[node].host.name,
            current.display()
        );
        assert_eq!(
            tree(&current),
            tree(&root),
            "the replica in {zone} equals the active"
        );
        let history = r.history(&id).await;
        let first = &history[0];
        assert_eq!(first["outcome"], "clean", "{first}");
        assert!(
            first["wire_bytes"].as_i64().unwrap() > 50 * 1024 * 1024,
            "the first sync came over the network: {first}"
        );
        replicas.push((id, current));
    }

    // 1%: two of the 200 small files and 512 KiB of the 50 MiB file.
    std::fs::write(root.join("a/b/c/f0003"), "changed\n").unwrap();
    std::fs::write(root.join("a/b/c/f0100"), "changed too\n").unwrap();
    let mut data = big();
    for b in &mut data[10 << 20..(10 << 20) + (512 << 10)] {
        *b = b.wrapping_add(1);
    }
    std::fs::write(root.join("a/big.bin"), &data).unwrap();
    for (id, current) in &replicas {
        let record = r.resync(id, &["clean"]).await;
        assert_eq!(
            tree(current),
            tree(&root),
            "resynced replica equals the active"
        );
        let changed = (512 << 10) + "changed\n".len() + "changed too\n".len();
        assert_eq!(
            record["bytes_transferred"].as_i64().unwrap(),
            changed as i64,
            "only the changed blocks and files were written: {record}"
        );
        let wire = record["wire_bytes"].as_i64().unwrap();
        assert!(
            wire >= changed as i64 && wire < changed as i64 + 256 * 1024,
            "only the changes (and the listing and block hashes) came over the wire: {record}"
        );
    }
    eprintln!("netns replication test took {:?}", started.elapsed());
    drop(r.cluster);
}

/// The link of the active's node goes down in the middle of a sync: the secondary keeps its
/// last published version (nothing half-applied), and once the link is back the next sync
/// finishes with the active's new contents.
#[tokio::test]
async fn netns_a_link_cut_mid_sync_keeps_the_last_version_and_the_next_sync_finishes() {
    // n2 pauses each sync after 30 written entries for 4 s: long enough to cut the link.
    // Entries count directories too, and a sync creates new directories before it fetches
    // any file, so with 40 new directories the pause comes before the first file request.
    let pause = "[backends.local]\nsync_pause_after_entries = 30\nsync_pause = \"4s\"\n";
    let specs = [
        Spec::new("n1", "az1"),
        Spec {
            backend: pause,
            ..Spec::new("n2", "az2")
        },
    ];
    let Some(mut r) = Replicated::start(&specs).await else {
        return;
    };
    let (share, _active, root) = r.share().await;
    write_tree(&root, 10);
    let (replica, current) = r.replica_in(&share, "az2").await;
    let before = tree(&current);
    assert_eq!(before, tree(&root));

    for d in 0..40 {
        let dir = root.join(format!("new-{d:02}"));
        std::fs::create_dir(&dir).unwrap();
        for i in 0..5 {
            std::fs::write(dir.join(format!("f{i}")), format!("new {d} {i}\n")).unwrap();
        }
    }
    let (status, body) = call(
        Method::POST,
        &format!("{}/share-replicas/{replica}/action", r.v2()),
        "2.56",
        Some(json!({"resync": null})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    r.nodes[1]
        .wait_for_log("sync paused after 30 entries", WAIT)
        .await;
    r.nodes[0].link_down();
    // The paused sync resumes, cannot reach n1, and fails; the published version is the old.
    let failed = r.nodes[1].wait_for_log("sync of replica", WAIT).await;
    assert!(failed.contains("failed"), "{failed}");
    assert_eq!(tree(&current), before, "the published version is untouched");
    r.nodes[0].link_up();
    // Until n1 reaches the database again it cannot confirm that it holds the active, and
    // refuses to serve it (409): wait for a heartbeat it sent after the link came back.
    r.heartbeat_after("n1@local", chrono::Utc::now()).await;

    // The failure is recorded in the history right after the driver logs it.
    let deadline = Instant::now() + WAIT;
    while r.history(&replica).await[0]["outcome"] != "failed" {
        assert!(Instant::now() < deadline, "no failed sync recorded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let record = r.resync(&replica, &["clean"]).await;
    assert_eq!(tree(&current), tree(&root), "the next sync finished");
    // The new files' data was written, and of the unchanged tree at most a few small files
    // (those written just before the first sync are compared again, and any that differ
    // are copied): the 50 MiB file was not sent again.
    let new_bytes: usize = (0..40)
        .flat_map(|d| (0..5).map(move |i| format!("new {d} {i}\n").len()))
        .sum();
    let written = record["bytes_transferred"].as_i64().unwrap();
    assert!(
        written >= new_bytes as i64 && written < new_bytes as i64 + 4096,
        "{record}"
    );
    assert!(record["wire_bytes"].as_i64().unwrap() < 1 << 20, "{record}");
}

/// The user messages of a resource, newest first.
/// Promotes `replica` and waits until it is the available active (`what` names the wait).
async fn promote(v2: &str, replica: &str, what: &str) {
    let (status, body) = call(
        Method::POST,
        &format!("{v2}/share-replicas/{replica}/action"),
        "2.56",
        Some(json!({"promote": null})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    poll_until_within(&format!("{v2}/share-replicas/{replica}"), what, WAIT, |b| {
        assert_ne!(b["share_replica"]["status"], "error", "{b}");
        b["share_replica"]["replica_state"] == "active"
            && b["share_replica"]["status"] == "available"
    })
    .await;
}

async fn messages_of(v2: &str, resource_id: &str) -> Vec<Value> {
    let (status, body) = call(
        Method::GET,
        &format!("{v2}/messages?resource_id={resource_id}"),
        "2.56",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["messages"].as_array().unwrap().clone()
}

/// Asks for a replica of `share` in `zone` (202); returns its id.
async fn request_replica(v2: &str, share: &str, zone: &str) -> String {
    let (status, body) = call(
        Method::POST,
        &format!("{v2}/share-replicas"),
        "2.56",
        Some(json!({"share_replica": {"share_id": share, "availability_zone": zone}})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    body["share_replica"]["id"].as_str().unwrap().to_owned()
}

/// Asks for a replica in `zone` and waits until it is in `error`; returns its id.
async fn failed_replica(v2: &str, share: &str, zone: &str) -> String {
    let id = request_replica(v2, share, zone).await;
    poll_until_within(
        &format!("{v2}/share-replicas/{id}"),
        &format!("replica in {zone} in error"),
        WAIT,
        |b| b["share_replica"]["status"] == "error",
    )
    .await;
    id
}

/// A replica is placed only where its node can copy the active's data, and a copy the
/// active's node refuses fails with a message that says so: n1 serves no replication
/// endpoint, so a replica of its share in another zone finds no pool (ReplicationPeer
/// filter); n2 holds another cluster secret, so n3 refuses its requests and the replica's
/// create fails naming the refusal. The same replica on a node with the right secret works.
#[tokio::test]
async fn netns_replicas_go_only_where_they_can_copy_and_a_refused_copy_says_why() {
    let specs = [
        Spec {
            endpoint: false,
            ..Spec::new("n1", "az1")
        },
        Spec {
            top: "cluster_secret = \"not the secret the other nodes hold\"",
            ..Spec::new("n2", "az2")
        },
        Spec::new("n3", "az3"),
        Spec::new("n4", "az4"),
    ];
    let Some(r) = Replicated::start(&specs).await else {
        return;
    };
    let v2 = r.v2();

    let (share, _, _) = r.share_in("az1", 0).await;
    let replica = failed_replica(&v2, &share, "az3").await;
    let (_, body) = call(
        Method::GET,
        &format!("{v2}/share-replicas/{replica}"),
        "2.56",
        None,
    )
    .await;
    assert!(
        body["share_replica"]["host"]
            .as_str()
            .unwrap_or("")
            .is_empty(),
        "never placed: {body}"
    );
    let messages = messages_of(&v2, &replica).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["detail_id"], "901", "{:?}", messages[0]);
    assert!(
        messages[0]["user_message"]
            .as_str()
            .unwrap()
            .contains("serves no replication endpoint"),
        "{:?}",
        messages[0]
    );

    let (share, _, root) = r.share_in("az3", 2).await;
    write_tree(&root, 5);
    let replica = failed_replica(&v2, &share, "az2").await;
    let messages = messages_of(&v2, &replica).await;
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert_eq!(messages[0]["detail_id"], "902", "{:?}", messages[0]);
    assert!(
        messages[0]["user_message"]
            .as_str()
            .unwrap()
            .contains("refused the replication request"),
        "{:?}",
        messages[0]
    );
    let (_, current) = r.replica_in(&share, "az4").await;
    assert_eq!(tree(&current), tree(&root));
}

/// Host death and failover: n1 (the active's node) is killed with SIGKILL and its link
/// dropped; an admin promotes the replica on n2, which becomes the writable active from its
/// last published version within seconds, and the history names the source point it holds
/// (what n1 took after it is lost). When n1 comes back, its endpoint refuses to serve its
/// old copy (the promotion moved the epoch), its copy is demoted and resynced from n2, and
/// nothing of it reaches n2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_promote_after_the_active_node_dies_fences_and_resyncs_the_old_active() {
    let specs = [Spec::new("n1", "az1"), Spec::new("n2", "az2")];
    let Some(mut r) = Replicated::start(&specs).await else {
        return;
    };
    let v2 = r.v2();
    let (share, old_active, root) = r.share().await;
    write_tree(&root, 20);
    let (replica, current) = r.replica_in(&share, "az2").await;
    let synced = tree(&current);
    let held_point = r.history(&replica).await[0]["source_point"].clone();
    assert!(held_point.is_string(), "{held_point}");
    // Written on the active after the last sync: this is what a host death loses.
    std::fs::write(root.join("after-the-last-sync"), "lost with n1").unwrap();

    r.nodes[0].kill9();
    r.nodes[0].link_down();
    let asked = Instant::now();
    promote(&v2, &replica, "promoted with the active's node dead").await;
    let rto = asked.elapsed();
    eprintln!("promote RTO with the active's node dead: {rto:?}");
    assert!(rto <= Duration::from_secs(10), "RTO {rto:?}");

    // The history says which point of the old active the new one holds.
    let record = r.history(&replica).await[0].clone();
    assert_eq!(record["trigger"], "promote", "{record}");
    assert_eq!(record["outcome"], "failed", "{record}");
    assert_eq!(record["source_point"], held_point, "{record}");
    assert!(
        record["detail"]
            .as_str()
            .unwrap()
            .contains("active unreachable"),
        "{record}"
    );
    // The new active is the last synced version, writable.
    let new_root = r
        .paths(&replica)
        .await
        .into_iter()
        .find(|p| p.is_dir() && !p.ends_with("current"))
        .expect("the new active's data directory");
    assert!(new_root.starts_with(r.nodes[1].data_dir()));
    assert_eq!(tree(&new_root), synced);
    std::fs::write(new_root.join("written-after-failover"), "kept").unwrap();

    // n1 comes back. Whatever it does first, its endpoint no longer serves the old active's
    // copy as the active's: the epoch moved with the promotion.
    r.nodes[0].link_up();
    r.nodes[0].restart().await;
    let n1_endpoint = format!("{}:{}", r.nodes[0].host.ip, super::REPLICATION_PORT);
    let secret = std::fs::read(r.cluster.secret_path()).unwrap();
    let refused = tokio::task::spawn_blocking({
        let root = root.clone();
        let handle = tokio::runtime::Handle::current();
        move || {
            let _guard = handle.enter();
            let key = shoal_replication::peer_auth::ClusterKey::derive(secret.trim_ascii_end());
            let client = shoal_replication::transport::PeerClient::new(
                "probe",
                key,
                shoal_replication::transport::ClientOptions::default(),
            )
            .unwrap();
            let scratch = tempfile::tempdir().unwrap();
            let dir = shoal_replication::ReplicaDir::open(&scratch.path().join("r")).unwrap();
            dir.sync_from_peer(
                &client.source(&n1_endpoint, &root, 0),
                &shoal_replication::SyncOptions::default(),
            )
            .map(|_| ())
            .map_err(|err| err.to_string())
        }
    })
    .await
    .unwrap();
    let err = refused.expect_err("n1 must not serve its old copy as the active's");
    assert!(
        err.contains("409") && err.contains("not an active replica"),
        "{err}"
    );

    // n1's copy is demoted and resynced from n2.
    poll_until_within(
        &format!("{v2}/share-replicas/{old_active}"),
        "the old active in_sync again",
        WAIT,
        |b| b["share_replica"]["replica_state"] == "in_sync",
    )
    .await;
    let old_current = r
        .paths(&old_active)
        .await
        .into_iter()
        .find(|p| p.ends_with("current"))
        .expect("the old active is now a readable secondary");
    assert!(old_current.starts_with(r.nodes[0].data_dir()));
    let new_tree = tree(&new_root);
    assert!(new_tree.contains_key("written-after-failover"));
    assert!(
        !new_tree.contains_key("after-the-last-sync"),
        "nothing of the old active reached the new one"
    );
    assert_eq!(tree(&old_current), new_tree, "the old active converged");
    let (_, body) = call(Method::GET, &format!("{v2}/shares/{share}"), "2.56", None).await;
    assert_eq!(body["share"]["availability_zone"], "az2", "{body}");
}

/// With `[replication]` TLS on both nodes, the endpoint serves HTTPS and a replica on the
/// other node is copied over it.
#[tokio::test]
async fn netns_replication_over_tls() {
    let specs = [
        Spec {
            tls: true,
            ..Spec::new("n1", "az1")
        },
        Spec {
            tls: true,
            ..Spec::new("n2", "az2")
        },
    ];
    let Some(mut r) = Replicated::start(&specs).await else {
        return;
    };
    let started = r.nodes[0]
        .log_lines()
        .iter()
        .any(|l| l.contains("replication endpoint listening on https://"));
    assert!(started, "n1 serves its endpoint over TLS");
    let (share, _, root) = r.share().await;
    write_tree(&root, 20);
    let (_, current) = r.replica_in(&share, "az2").await;
    assert_eq!(tree(&current), tree(&root));
}

/// The active on n1 takes writes through its NFS export; its readable replica on n2 follows
/// them through n1's change journal (the change follower on n1 queues the update for n2, and
/// n2's sync asks n1 for the changed paths instead of walking); then promoting the replica
/// on n2 first quiesces the active on n1 through its replication endpoint: n1 refuses the
/// next write, and n2 takes writes as the new active.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn netns_a_replica_on_another_node_follows_nfs_writes_by_the_journal_and_promotion_quiesces_the_active()
 {
    use shoal_testkit::nfs::NfsMount;

    let specs = [Spec::new("n1", "az1"), Spec::new("n2", "az2")];
    let Some(mut r) = Replicated::start(&specs).await else {
        return;
    };
    let v2 = r.v2();
    let (share, active, root) = r.share().await;
    write_tree(&root, 20);
    // The test process reaches the nodes' NFS servers from the bridge's address.
    crate::allow_ip(&v2, &share, &r.cluster.bridge_ip().to_string(), WAIT).await;
    let (replica, current) = r.replica_in(&share, "az2").await;
    assert_eq!(tree(&current), tree(&root));
    let synced_before = r.history(&replica).await.len();

    // Writes through n1's export: a file, and a new directory with a file in it.
    let n1_nfs = std::net::SocketAddr::from((r.nodes[0].host.ip, super::NFS_PORT));
    let mut on_n1 = NfsMount::mount(n1_nfs, &format!("/shares/{active}"))
        .await
        .unwrap();
    on_n1
        .write_file("through-nfs.txt", b"written on n1")
        .await
        .unwrap();
    on_n1.mkdir("new dir").await.unwrap();
    on_n1
        .write_file("new dir/inside.txt", b"also on n1")
        .await
        .unwrap();

    // n2's replica gets them without a periodic update (it is an hour away) or a resync.
    let deadline = Instant::now() + WAIT;
    while tree(&current) != tree(&root) {
        assert!(
            Instant::now() < deadline,
            "the replica on n2 did not follow the writes on n1"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let history = r.history(&replica).await;
    let followed: Vec<&Value> = history[..history.len() - synced_before]
        .iter()
        .filter(|h| h["trigger"] == "changes")
        .collect();
    assert!(!followed.is_empty(), "{history:#?}");
    for record in &followed {
        let detail = record["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("from the change journal") && detail.contains("no tree walk"),
            "{record}"
        );
        assert_eq!(record["outcome"], "clean", "{record}");
    }
    assert!(
        followed
            .iter()
            .any(|h| h["files_transferred"].as_i64().unwrap_or(0) > 0),
        "{followed:#?}"
    );

    // Promote n2's replica: n1 quiesces its active first, then the final sync runs.
    promote(&v2, &replica, "promoted").await;
    let quiesced = r.nodes[0]
        .wait_for_log(&format!("quiescing share instance {active}"), WAIT)
        .await;
    assert!(quiesced.contains(&replica), "{quiesced}");
    r.nodes[1]
        .wait_for_log("the active replica's node quiesced it", WAIT)
        .await;
    let promoted = r.history(&replica).await[0].clone();
    assert_eq!(promoted["trigger"], "promote", "{promoted}");
    assert_eq!(promoted["outcome"], "clean", "{promoted}");

    // n1 no longer takes writes to its former active.
    let refused = tokio::time::timeout(
        Duration::from_secs(10),
        on_n1.write_file("after-the-promotion.txt", b"must not land"),
    )
    .await;
    assert!(
        !matches!(refused, Ok(Ok(()))),
        "n1 took a write after the promotion"
    );

    // n2 takes writes as the new active.
    let n2_nfs = std::net::SocketAddr::from((r.nodes[1].host.ip, super::NFS_PORT));
    let deadline = Instant::now() + WAIT;
    loop {
        let written = match NfsMount::mount(n2_nfs, &format!("/shares/{replica}")).await {
            Ok(mut on_n2) => on_n2.write_file("on-the-new-active.txt", b"n2").await,
            Err(err) => Err(err),
        };
        match written {
            Ok(()) => break,
            Err(err) => assert!(
                Instant::now() < deadline,
                "the new active on n2 refuses writes: {err:?}"
            ),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let new_root = r
        .paths(&replica)
        .await
        .into_iter()
        .find(|p| p.is_dir() && !p.ends_with("current"))
        .expect("the new active's data directory");
    let new_tree = tree(&new_root);
    assert!(new_tree.contains_key("on-the-new-active.txt"));
    assert!(new_tree.contains_key("new dir/inside.txt"));
    assert!(!new_tree.contains_key("after-the-promotion.txt"));
}
