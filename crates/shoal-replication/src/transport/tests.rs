//! The transport alone: a real endpoint on an ephemeral port, a real client, real trees, and
//! a TCP relay in between that can cut the connection or flip a byte, so every guarantee is
//! checked against what the network can do.

use std::fs;
use std::net::SocketAddr;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::runtime::Runtime;

use super::*;
use crate::peer_auth::{ClusterKey, RequestSignature};
use crate::source::Source;
use crate::tests::{MIB, big_data, make_tree, opts, write};
use crate::walk::walk_trees;
use crate::{ReplicaDir, SyncError};

const SHARE: &str = "3f0b6c2e-8a4d-4e1f-9c7b-2d5e6f708192";

struct Peer {
    rt: Runtime,
    _tmp: tempfile::TempDir,
    pool: PathBuf,
    src: PathBuf,
    addr: SocketAddr,
    replica: ReplicaDir,
}

fn key() -> ClusterKey {
    ClusterKey::derive(b"the cluster secret of these tests")
}

fn peer() -> Peer {
    peer_with(None, None)
}

fn peer_with(fence: Option<server::FenceCheck>, tls: Option<tokio_rustls::TlsAcceptor>) -> Peer {
    peer_configured(fence, tls, |state| state)
}

fn peer_configured(
    fence: Option<server::FenceCheck>,
    tls: Option<tokio_rustls::TlsAcceptor>,
    configure: impl FnOnce(ServerState) -> ServerState,
) -> Peer {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path().join("pool");
    let src = pool.join("shares").join(SHARE);
    fs::create_dir_all(&src).unwrap();
    make_tree(&src);
    let mut state = ServerState::new(key(), 60, RootPolicy::pools([pool.clone()]));
    if let Some(fence) = fence {
        state = state.with_fence(fence);
    }
    let state = Arc::new(configure(state));
    let listener = rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    match tls {
        None => drop(rt.spawn(async move { axum::serve(listener, router(state)).await })),
        Some(acceptor) => drop(rt.spawn(async move {
            axum::serve(tls::TlsListener::new(listener, acceptor), router(state)).await
        })),
    }
    let replica = ReplicaDir::open(&tmp.path().join("replica")).unwrap();
    Peer {
        rt,
        _tmp: tmp,
        pool,
        src,
        addr,
        replica,
    }
}

impl Peer {
    fn client(&self, key: ClusterKey) -> PeerClient {
        let _guard = self.rt.enter();
        PeerClient::new("n2", key, ClientOptions::default()).unwrap()
    }
}

fn assert_same(rep: &ReplicaDir, src: &Path) {
    let diffs = rep.verify_against(src).unwrap();
    assert!(diffs.is_empty(), "{diffs:#?}");
}

#[test]
fn a_peer_sync_is_an_exact_copy_and_sends_only_changes() {
    let p = peer();
    let client = p.client(key());
    let source = client.source(&p.addr.to_string(), &p.src, 0);
    let r = p.replica.sync_from_peer(&source, &opts()).unwrap();
    assert!(r.published_new_version && r.clean, "{r:?}");
    assert_eq!(r.files_total, 51, "{r:?}");
    assert_eq!(r.bytes_transferred, r.bytes_total);
    assert!(r.wire_bytes > r.bytes_total, "{r:?}");
    assert_same(&p.replica, &p.src);

    // One small file rewritten, one touched, one 4 KiB change in the big file.
    write(&p.src.join("a/f0.txt"), &[b'q'; 100], 0o644, 500);
    write(&p.src.join("a/f10.txt"), &[b'x'; 470], 0o644, 777);
    let mut big = big_data();
    for b in &mut big[MIB + 100..MIB + 100 + 4096] {
        *b = b.wrapping_add(1);
    }
    write(&p.src.join("big.bin"), &big, 0o644, 600);
    let source = client.source(&p.addr.to_string(), &p.src, 0);
    let r2 = p.replica.sync_from_peer(&source, &opts()).unwrap();
    assert_same(&p.replica, &p.src);
    assert_eq!(r2.bytes_transferred, 100 + 470 + 64 * 1024, "{r2:?}");
    // The listing of 51 entries, the block hashes of one 3 MiB file and framing: far below
    // what a second full copy would take.
    assert!(r2.wire_bytes < 64 * 1024 + 32 * 1024, "{r2:?}");

    let source = client.source(&p.addr.to_string(), &p.src, 0);
    let r3 = p.replica.sync_from_peer(&source, &opts()).unwrap();
    assert!(!r3.published_new_version && r3.clean, "{r3:?}");
    assert_eq!(r3.bytes_transferred, 0);
    assert!(r3.wire_bytes < 16 * 1024, "{r3:?}");
}

/// Posts `body` to `path` `times` times with the headers of `sig` (none: unsigned); returns
/// the statuses.
fn post(
    p: &Peer,
    path: &str,
    sig: Option<&RequestSignature>,
    body: &[u8],
    times: usize,
) -> Vec<u16> {
    let url = format!("http://{}{path}", p.addr);
    p.rt.block_on(async {
        let http = reqwest::Client::new();
        let mut statuses = Vec::new();
        for _ in 0..times {
            let mut request = http.post(&url).body(body.to_vec());
            if let Some(sig) = sig {
                request = request
                    .header(HEADER_NODE, &sig.node)
                    .header(HEADER_TIMESTAMP, sig.timestamp.to_string())
                    .header(HEADER_NONCE, &sig.nonce)
                    .header(HEADER_MAC, &sig.mac);
            }
            let response = request.send().await.unwrap();
            statuses.push(response.status().as_u16());
            let _ = response.bytes().await;
        }
        statuses
    })
}

/// Sends one request signed with `key` (twice when `replay`); returns the statuses.
fn send(p: &Peer, key: &ClusterKey, path: &str, body: Vec<u8>, replay: bool) -> Vec<u16> {
    let body = wire::with_epoch(0, &body);
    let sig = crate::peer_auth::sign(key, "n2", "POST", path, &body, now());
    post(p, path, Some(&sig), &body, if replay { 2 } else { 1 })
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[test]
fn unsigned_wrongly_signed_replayed_and_foreign_requests_are_refused() {
    let p = peer();
    let root = p.src.as_os_str().as_encoded_bytes().to_vec();
    let walk = wire::walk_request(&root);

    // No signature at all.
    assert_eq!(post(&p, "/replication/v1/walk", None, &walk, 1), vec![401]);

    // Another secret: refused, and the engine reports the source unavailable.
    assert_eq!(
        send(
            &p,
            &ClusterKey::derive(b"wrong"),
            "/replication/v1/walk",
            walk.clone(),
            false
        ),
        vec![401]
    );
    let wrong = p.client(ClusterKey::derive(b"wrong"));
    let err = p
        .replica
        .sync_from_peer(&wrong.source(&p.addr.to_string(), &p.src, 0), &opts())
        .unwrap_err();
    assert!(
        matches!(&err, SyncError::SourceUnavailable { source, .. } if source.to_string().contains("401")),
        "{err}"
    );
    assert_eq!(p.replica.published().unwrap(), None);

    // The same signed request twice: the second is a replay.
    assert_eq!(
        send(&p, &key(), "/replication/v1/walk", walk.clone(), true),
        vec![200, 401]
    );
    // A signature made for another path does not verify on this one.
    let body = wire::with_epoch(0, &walk);
    let sig = crate::peer_auth::sign(&key(), "n2", "POST", "/replication/v1/hash", &body, now());
    assert_eq!(
        post(&p, "/replication/v1/walk", Some(&sig), &body, 1),
        vec![401]
    );

    // Roots other than a share data root of this node's pools.
    for other in [
        p.pool.join("replicas").join(SHARE),
        p.pool.join("shares"),
        p.pool.join("shares").join("not-a-uuid"),
        p.pool.join("shares").join("..").join("shares").join(SHARE),
        PathBuf::from("/etc"),
    ] {
        let body = wire::walk_request(other.as_os_str().as_encoded_bytes());
        assert_eq!(
            send(&p, &key(), "/replication/v1/walk", body, false),
            vec![403],
            "{}",
            other.display()
        );
    }
    // Relative paths that climb out are malformed.
    for rel in [&b"../../etc/passwd"[..], b"/etc/passwd", b"a/./f0.txt", b""] {
        let body = wire::files_request(&root, true, &[(rel, 0)]);
        assert_eq!(
            send(&p, &key(), "/replication/v1/files", body, false),
            vec![400],
            "{}",
            String::from_utf8_lossy(rel)
        );
    }
}

#[test]
fn files_are_never_read_through_a_symbolic_link() {
    let p = peer();
    let client = p.client(key());
    let source = client.source(&p.addr.to_string(), &p.src, 0);
    let tmp = tempfile::tempdir().unwrap();
    // `link to dir` -> a/b: a file below it is not served through the link.
    let through = source.copy_file(
        b"link to dir/f1.txt",
        &tmp.path().join("x"),
        0o644,
        None,
        true,
    );
    assert!(
        matches!(through, Err(crate::copy::CopyError::Vanished)),
        "{through:?}"
    );
    let direct = source.copy_file(b"a/b/f1.txt", &tmp.path().join("y"), 0o644, None, true);
    assert!(direct.is_ok(), "{direct:?}");
    assert_eq!(
        fs::read(tmp.path().join("y")).unwrap(),
        fs::read(p.src.join("a/b/f1.txt")).unwrap()
    );
}

/// A TCP relay in front of the endpoint: passes `budget` bytes of responses, then cuts every
/// connection (and refuses new ones) until `heal`; or flips one response byte.
struct Relay {
    addr: SocketAddr,
    budget: Arc<AtomicI64>,
    cut: Arc<AtomicBool>,
    flip_at: Arc<AtomicI64>,
}

impl Relay {
    fn start(p: &Peer) -> Relay {
        let budget = Arc::new(AtomicI64::new(i64::MAX));
        let cut = Arc::new(AtomicBool::new(false));
        let flip_at = Arc::new(AtomicI64::new(-1));
        let listener = p.rt.block_on(TcpListener::bind("127.0.0.1:0")).unwrap();
        let addr = listener.local_addr().unwrap();
        let upstream = p.addr;
        let (b, c, f) = (budget.clone(), cut.clone(), flip_at.clone());
        p.rt.spawn(async move {
            loop {
                let Ok((down, _)) = listener.accept().await else {
                    return;
                };
                if c.load(Ordering::SeqCst) {
                    continue;
                }
                let up = TcpStream::connect(upstream).await.unwrap();
                let (mut dr, mut dw) = down.into_split();
                let (mut ur, mut uw) = up.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut dr, &mut uw).await;
                });
                let (b, c, f) = (b.clone(), c.clone(), f.clone());
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 64 * 1024];
                    loop {
                        let n = match ur.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        let flip = f.load(Ordering::SeqCst);
                        let before = i64::MAX - b.load(Ordering::SeqCst);
                        if flip >= 0 && flip >= before && flip < before + n as i64 {
                            buf[(flip - before) as usize] ^= 0x40;
                            f.store(-1, Ordering::SeqCst);
                        }
                        let left = b.fetch_sub(n as i64, Ordering::SeqCst);
                        if c.load(Ordering::SeqCst) || left < n as i64 {
                            c.store(true, Ordering::SeqCst);
                            let pass = left.clamp(0, n as i64) as usize;
                            let _ = dw.write_all(&buf[..pass]).await;
                            let _ = dw.shutdown().await;
                            return;
                        }
                        if dw.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        });
        Relay {
            addr,
            budget,
            cut,
            flip_at,
        }
    }

    fn cut_after(&self, bytes: i64) {
        self.budget.store(bytes, Ordering::SeqCst);
    }

    fn heal(&self) {
        self.budget.store(i64::MAX, Ordering::SeqCst);
        self.cut.store(false, Ordering::SeqCst);
    }
}

#[test]
fn a_cut_mid_sync_keeps_the_last_version_and_the_next_sync_resumes() {
    let p = peer();
    let relay = Relay::start(&p);
    let client = {
        let _guard = p.rt.enter();
        PeerClient::new(
            "n2",
            key(),
            ClientOptions {
                connect_timeout: std::time::Duration::from_secs(2),
                read_timeout: std::time::Duration::from_secs(2),
                tls_ca_pem: None,
            },
        )
        .unwrap()
    };
    let addr = relay.addr.to_string();
    let first = p
        .replica
        .sync_from_peer(&client.source(&addr, &p.src, 0), &opts())
        .unwrap();
    assert_same(&p.replica, &p.src);
    let old_f0 = fs::read(p.replica.current_path().join("a/f0.txt")).unwrap();

    // A new big file (4 MiB) and changed small files; the link breaks 2.5 MiB into the sync
    // (the largest file goes first).
    let bigger: Vec<u8> = (0..4 * MIB as u32).map(|i| (i % 253) as u8).collect();
    write(&p.src.join("bigger.bin"), &bigger, 0o600, 40);
    write(&p.src.join("a/f0.txt"), &[b'z'; 300], 0o644, 41);
    relay.cut_after(5 * MIB as i64 / 2);
    let err = p
        .replica
        .sync_from_peer(&client.source(&addr, &p.src, 0), &opts())
        .unwrap_err();
    assert!(matches!(err, SyncError::SourceUnavailable { .. }), "{err}");
    // The published version is the first one, whole and unchanged.
    let published = p.replica.published().unwrap().unwrap();
    assert_eq!(published.version, first.version);
    assert_eq!(
        fs::read(p.replica.current_path().join("a/f0.txt")).unwrap(),
        old_f0
    );
    assert!(!p.replica.current_path().join("bigger.bin").exists());

    relay.heal();
    let r = p
        .replica
        .sync_from_peer(&client.source(&addr, &p.src, 0), &opts())
        .unwrap();
    assert!(r.published_new_version && r.clean, "{r:?}");
    assert_same(&p.replica, &p.src);
    // What arrived before the cut (about 2.5 MiB of the new file) was not sent again.
    assert!(
        r.wire_bytes < 2 * MIB as u64,
        "the resumed sync received {} bytes: {r:?}",
        r.wire_bytes
    );
}

#[test]
fn a_byte_changed_on_the_way_fails_the_sync() {
    let p = peer();
    let relay = Relay::start(&p);
    let client = p.client(key());
    let addr = relay.addr.to_string();
    // Somewhere inside the big file's data (the first response is the listing, a few KiB).
    relay.flip_at.store(1_000_000, Ordering::SeqCst);
    let err = p
        .replica
        .sync_from_peer(&client.source(&addr, &p.src, 0), &opts())
        .unwrap_err();
    assert!(matches!(err, SyncError::SourceUnavailable { .. }), "{err}");
    assert_eq!(p.replica.published().unwrap(), None);
    let r = p
        .replica
        .sync_from_peer(&client.source(&addr, &p.src, 0), &opts())
        .unwrap();
    assert!(r.clean);
    assert_same(&p.replica, &p.src);
}

#[test]
fn a_fenced_root_is_not_served_at_another_epoch() {
    // The node's database says: SHARE is the active replica at epoch 2.
    let fence: server::FenceCheck = Arc::new(|instance: String, epoch: i64| {
        Box::pin(async move {
            if instance == SHARE && epoch == 2 {
                Ok(())
            } else {
                Err(format!(
                    "{instance} is not the active replica at epoch {epoch}"
                ))
            }
        })
    });
    let p = peer_with(Some(fence), None);
    let client = p.client(key());
    let err = p
        .replica
        .sync_from_peer(&client.source(&p.addr.to_string(), &p.src, 1), &opts())
        .unwrap_err();
    assert!(
        matches!(&err, SyncError::SourceUnavailable { source, .. }
            if source.to_string().contains("409") && source.to_string().contains("epoch 1")),
        "{err}"
    );
    assert_eq!(p.replica.published().unwrap(), None);
    let r = p
        .replica
        .sync_from_peer(&client.source(&p.addr.to_string(), &p.src, 2), &opts())
        .unwrap();
    assert!(r.clean);
    assert_same(&p.replica, &p.src);
}

/// A CA and a certificate it issued for 127.0.0.1: (CA PEM, certificate PEM, key PEM).
fn test_pki() -> (String, String, String) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    (ca.pem(), cert.pem(), key.serialize_pem())
}

#[test]
fn with_tls_a_sync_goes_over_https_to_a_certificate_of_the_cluster_ca_only() {
    let (ca, cert, key_pem) = test_pki();
    let acceptor = tls::acceptor(cert.as_bytes(), key_pem.as_bytes()).unwrap();
    let p = peer_with(None, Some(acceptor));
    let client_with = |ca: Option<String>| {
        let _guard = p.rt.enter();
        PeerClient::new(
            "n2",
            key(),
            ClientOptions {
                tls_ca_pem: ca.map(String::into_bytes),
                ..ClientOptions::default()
            },
        )
        .unwrap()
    };
    let addr = p.addr.to_string();

    // Plain HTTP to a TLS endpoint fails; so does TLS with another CA.
    let plain = client_with(None);
    assert!(matches!(
        p.replica
            .sync_from_peer(&plain.source(&addr, &p.src, 0), &opts()),
        Err(SyncError::SourceUnavailable { .. })
    ));
    let (other_ca, _, _) = test_pki();
    let stranger = client_with(Some(other_ca));
    assert!(matches!(
        p.replica
            .sync_from_peer(&stranger.source(&addr, &p.src, 0), &opts()),
        Err(SyncError::SourceUnavailable { .. })
    ));
    assert_eq!(p.replica.published().unwrap(), None);

    let client = client_with(Some(ca));
    let r = p
        .replica
        .sync_from_peer(&client.source(&addr, &p.src, 0), &opts())
        .unwrap();
    assert!(r.clean && r.published_new_version, "{r:?}");
    assert_same(&p.replica, &p.src);
}

/// A fence admitting SHARE at epoch 2 only.
fn epoch_two_fence() -> server::FenceCheck {
    Arc::new(|instance: String, epoch: i64| {
        Box::pin(async move {
            if instance == SHARE && epoch == 2 {
                Ok(())
            } else {
                Err(format!(
                    "{instance} is not the active replica at epoch {epoch}"
                ))
            }
        })
    })
}

/// A peer whose SHARE has a change journal (at `<pool>/shares/SHARE.journal`), fenced at
/// epoch 2.
fn journaled_peer() -> (Peer, Arc<crate::journal::ChangeJournal>) {
    let slot: Arc<std::sync::OnceLock<Arc<crate::journal::ChangeJournal>>> = Arc::default();
    let lookup_slot = slot.clone();
    let p = peer_configured(Some(epoch_two_fence()), None, move |state| {
        state.with_journals(Arc::new(move |id: &str| {
            (id == SHARE).then(|| lookup_slot.get().cloned()).flatten()
        }))
    });
    let journal = Arc::new(
        crate::journal::ChangeJournal::open(
            &p.pool.join("shares").join(format!("{SHARE}.journal")),
        )
        .unwrap(),
    );
    slot.set(journal.clone()).unwrap();
    (p, journal)
}

#[test]
fn changes_are_refused_unsigned_and_at_another_epoch() {
    let (p, _journal) = journaled_peer();
    let root = p.src.as_os_str().as_encoded_bytes().to_vec();
    let body = wire::with_epoch(2, &wire::changes_request(&root, None, &[], &[]));
    assert_eq!(
        post(&p, "/replication/v1/changes", None, &body, 1),
        vec![401]
    );
    // Signed, at the active's epoch: answered.
    let sig = crate::peer_auth::sign(
        &key(),
        "n2",
        "POST",
        "/replication/v1/changes",
        &body,
        now(),
    );
    assert_eq!(
        post(&p, "/replication/v1/changes", Some(&sig), &body, 1),
        vec![200]
    );
    // At another epoch: fenced, and a sync that follows the journal fails like any read.
    let stale = wire::with_epoch(1, &wire::changes_request(&root, None, &[], &[]));
    let sig = crate::peer_auth::sign(
        &key(),
        "n2",
        "POST",
        "/replication/v1/changes",
        &stale,
        now(),
    );
    assert_eq!(
        post(&p, "/replication/v1/changes", Some(&sig), &stale, 1),
        vec![409]
    );
    let client = p.client(key());
    let err = p
        .replica
        .sync_from_peer_journal(
            &client.source(&p.addr.to_string(), &p.src, 1),
            None,
            &opts(),
        )
        .unwrap_err();
    assert!(
        matches!(&err, SyncError::SourceUnavailable { source, .. } if source.to_string().contains("409")),
        "{err}"
    );
    assert_eq!(p.replica.published().unwrap(), None);
}

/// Changes a change-list sync must get right, each recorded in `journal` the way the NFS
/// server records them (a rename records both names).
fn change_the_tree(src: &Path, journal: &crate::journal::ChangeJournal) {
    let record = |paths: &[&str]| {
        for path in paths {
            journal.record(path.as_bytes()).unwrap();
        }
    };
    // A directory with content renamed.
    fs::rename(src.join("a/b"), src.join("moved b")).unwrap();
    record(&["a/b", "moved b"]);
    // A removal and an overwrite.
    fs::remove_file(src.join("dir with space/f3.txt")).unwrap();
    write(&src.join("a/f0.txt"), &[b'o'; 321], 0o644, 900);
    record(&["dir with space/f3.txt", "a/f0.txt"]);
    // New nested directories with files.
    fs::create_dir_all(src.join("new/deeper/deepest")).unwrap();
    write(
        &src.join("new/deeper/deepest/leaf.txt"),
        b"leaf",
        0o600,
        901,
    );
    write(&src.join("new/top.txt"), b"top", 0o644, 902);
    record(&[
        "new",
        "new/deeper",
        "new/deeper/deepest",
        "new/deeper/deepest/leaf.txt",
        "new/top.txt",
    ]);
    // A symbolic link.
    symlink("moved b/f1.txt", src.join("a/link")).unwrap();
    record(&["a/link"]);
}

#[test]
fn a_peer_change_list_sync_equals_a_walk_without_walking() {
    let (p, journal) = journaled_peer();
    let client = p.client(key());
    let addr = p.addr.to_string();
    let source = client.source(&addr, &p.src, 2);
    // No cursor yet: the first sync walks and takes the journal's position.
    let (first, cursor) = p
        .replica
        .sync_from_peer_journal(&source, None, &opts())
        .unwrap();
    assert!(first.walked && first.published_new_version, "{first:?}");
    assert_eq!(cursor, Some(journal.position()));

    change_the_tree(&p.src, &journal);
    let source = client.source(&addr, &p.src, 2);
    let (r, next) = p
        .replica
        .sync_from_peer_journal(&source, cursor, &opts())
        .unwrap();
    assert!(!r.walked && r.published_new_version && r.clean, "{r:?}");
    assert_eq!(next, Some(journal.position()));
    assert_same(&p.replica, &p.src);
    // Only the changes, their parents and the subtrees that arrived whole were examined.
    assert!(r.examined < r.files_total, "{r:?}");

    // A walk of the same tree into another replica publishes the same tree.
    let walked = ReplicaDir::open(&p.pool.join("walked")).unwrap();
    let w = walked
        .sync_from_peer(&client.source(&addr, &p.src, 2), &opts())
        .unwrap();
    assert!(w.walked && w.files_total == r.files_total, "{w:?} {r:?}");
    assert_same(&walked, &p.src);

    // Nothing recorded since: nothing looked at, no new version.
    let (idle, _) = p
        .replica
        .sync_from_peer_journal(&client.source(&addr, &p.src, 2), next, &opts())
        .unwrap();
    assert!(!idle.walked && !idle.published_new_version, "{idle:?}");
}

#[test]
fn an_unknown_cursor_or_no_journal_makes_a_peer_sync_walk() {
    let (p, journal) = journaled_peer();
    let client = p.client(key());
    let addr = p.addr.to_string();
    let (_, cursor) = p
        .replica
        .sync_from_peer_journal(&client.source(&addr, &p.src, 2), None, &opts())
        .unwrap();
    // A reset since the cursor (a revert): the journal cannot say, the sync walks and
    // takes the new journal's position.
    journal.reset().unwrap();
    write(&p.src.join("a/f0.txt"), b"after the reset", 0o644, 950);
    let (r, next) = p
        .replica
        .sync_from_peer_journal(&client.source(&addr, &p.src, 2), cursor, &opts())
        .unwrap();
    assert!(r.walked && r.published_new_version, "{r:?}");
    assert_eq!(next, Some(journal.position()));
    assert_ne!(next, cursor);
    assert_same(&p.replica, &p.src);

    // A node that keeps no journal of the share: walk, no cursor.
    let plain = peer_with(Some(epoch_two_fence()), None);
    let client = plain.client(key());
    let (r, none) = plain
        .replica
        .sync_from_peer_journal(
            &client.source(&plain.addr.to_string(), &plain.src, 2),
            next,
            &opts(),
        )
        .unwrap();
    assert!(r.walked && none.is_none(), "{r:?}");
    assert_same(&plain.replica, &plain.src);
}

#[test]
fn a_changed_path_below_a_link_is_not_looked_at_through_it() {
    let (p, journal) = journaled_peer();
    let client = p.client(key());
    let addr = p.addr.to_string();
    let (_, cursor) = p
        .replica
        .sync_from_peer_journal(&client.source(&addr, &p.src, 2), None, &opts())
        .unwrap();
    // A directory written to, then replaced by a link to a directory outside the share.
    let outside = p.pool.join("outside");
    fs::create_dir_all(outside.join("secret dir")).unwrap();
    fs::write(outside.join("secret dir/secret"), b"not yours").unwrap();
    fs::remove_dir_all(p.src.join("a/b/c")).unwrap();
    symlink(&outside, p.src.join("a/b/c")).unwrap();
    journal.record(b"a/b/c/secret dir").unwrap();
    let (r, _) = p
        .replica
        .sync_from_peer_journal(&client.source(&addr, &p.src, 2), cursor, &opts())
        .unwrap();
    assert!(!r.walked, "{r:?}");
    assert_same(&p.replica, &p.src);
    // The replica holds the link, and nothing of what it points to.
    let copied = fs::symlink_metadata(p.replica.current_path().join("a/b/c")).unwrap();
    assert!(copied.file_type().is_symlink());
    let published = p.replica.published().unwrap().unwrap().path;
    assert!(
        !walk_trees(&[&published], false)
            .pop()
            .unwrap()
            .unwrap()
            .entries
            .iter()
            .any(|e| e.path.ends_with(b"secret"))
    );
}

#[test]
fn quiesce_calls_the_hook_with_the_wait_and_is_fenced() {
    let calls: Arc<std::sync::Mutex<Vec<QuiesceCall>>> = Arc::default();
    let recorded = calls.clone();
    let hook: QuiesceHook = Arc::new(move |call: QuiesceCall| {
        recorded.lock().unwrap().push(call.clone());
        Box::pin(async move {
            match call.wait {
                Some(wait) if wait > std::time::Duration::from_secs(5) => {
                    Err(QuiesceError::TimedOut("writes still under way".to_owned()))
                }
                _ => Ok(()),
            }
        })
    });
    let p = peer_configured(Some(epoch_two_fence()), None, |state| {
        state.with_quiesce(hook)
    });
    let client = p.client(key());
    let addr = p.addr.to_string();
    let source = client.source(&addr, &p.src, 2);
    source
        .quiesce("the promoted one", std::time::Duration::from_millis(1500))
        .unwrap();
    assert_eq!(
        source.quiesce("the promoted one", std::time::Duration::from_secs(9)),
        Err(QuiesceFailure::TimedOut(
            "writes still under way".to_owned()
        ))
    );
    source.unquiesce("the promoted one").unwrap();
    {
        let calls = calls.lock().unwrap();
        let seen: Vec<_> = calls
            .iter()
            .map(|c| (c.instance.as_str(), c.promoting.as_str(), c.wait))
            .collect();
        assert_eq!(
            seen,
            vec![
                (
                    SHARE,
                    "the promoted one",
                    Some(std::time::Duration::from_millis(1500))
                ),
                (
                    SHARE,
                    "the promoted one",
                    Some(std::time::Duration::from_secs(9))
                ),
                (SHARE, "the promoted one", None),
            ]
        );
        assert!(calls.iter().all(|c| c.root == p.src));
    }

    // At another epoch the hook is not called; unsigned requests are refused.
    let stale = client.source(&addr, &p.src, 1);
    assert!(
        matches!(stale.quiesce("x", std::time::Duration::from_secs(1)), Err(QuiesceFailure::Refused(m)) if m.contains("409")),
    );
    let root = p.src.as_os_str().as_encoded_bytes().to_vec();
    let body = wire::with_epoch(2, &wire::quiesce_request(&root, b"x", 1000));
    assert_eq!(
        post(&p, "/replication/v1/quiesce", None, &body, 1),
        vec![401]
    );
    assert_eq!(calls.lock().unwrap().len(), 3);

    // A node without the hook answers that it cannot; a dead node is unreachable.
    let plain = peer_with(Some(epoch_two_fence()), None);
    let plain_client = plain.client(key());
    assert!(matches!(
        plain_client
            .source(&plain.addr.to_string(), &plain.src, 2)
            .quiesce("x", std::time::Duration::from_secs(1)),
        Err(QuiesceFailure::Refused(_))
    ));
    let dead = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    assert!(matches!(
        plain_client
            .source(&dead.to_string(), &plain.src, 2)
            .quiesce("x", std::time::Duration::from_secs(1)),
        Err(QuiesceFailure::Unreachable(_))
    ));
}
