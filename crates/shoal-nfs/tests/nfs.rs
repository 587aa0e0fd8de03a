//! The server on 127.0.0.1 with real temporary directories, driven by a real NFSv3 client
//! (`nfs3_client`) and, for pipelining and record marking, by raw RPC over TCP.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use nfs3_client::nfs3_types::mount::mountstat3;
use nfs3_client::nfs3_types::nfs3::*;
use nfs3_client::nfs3_types::xdr_codec::{Opaque, Pack};
use nfs3_client::tokio::{TokioConnector, TokioIo};
use nfs3_client::{ConnectError, MountError, Nfs3Connection, Nfs3ConnectionBuilder};
use shoal_nfs::{
    Change, ChangeKind, ChangeObserver, ClientRule, ExportRoot, ExportSpec, Exports, NfsServer,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

type Conn = Nfs3Connection<TokioIo<TcpStream>>;

struct Fixture {
    exports: Arc<Exports>,
    addr: SocketAddr,
    cancel: CancellationToken,
    dir: tempfile::TempDir,
}

impl Drop for Fixture {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

fn rule(to: &str, level: &str) -> ClientRule {
    ClientRule::parse(to, level).unwrap()
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Fixture {
    async fn start() -> Fixture {
        let exports = Exports::new();
        let server = NfsServer::bind("127.0.0.1:0".parse().unwrap(), exports.clone())
            .await
            .unwrap();
        let addr = server.local_addr();
        let cancel = CancellationToken::new();
        tokio::spawn(server.run(cancel.clone()));
        Fixture {
            exports,
            addr,
            cancel,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A new directory export with the given rules; returns its id and root.
    fn share(&self, rules: Vec<ClientRule>) -> (String, PathBuf) {
        let id = new_id();
        let root = self.dir.path().join(&id);
        std::fs::create_dir(&root).unwrap();
        self.exports
            .export(
                &id,
                ExportSpec {
                    root: ExportRoot::Directory(root.clone()),
                    read_only: false,
                    rules,
                    quota_bytes: None,
                },
            )
            .unwrap();
        (id, root)
    }

    fn rw_share(&self) -> (String, PathBuf) {
        self.share(vec![rule("127.0.0.1", "rw")])
    }

    async fn mount(&self, id: &str) -> Result<Conn, ConnectError> {
        self.mount_path(&Exports::export_path(id)).await
    }

    /// Mounts `path` (an export or a directory below one).
    async fn mount_path(&self, path: &str) -> Result<Conn, ConnectError> {
        Nfs3ConnectionBuilder::new(TokioConnector, "127.0.0.1", path)
            .mount_port(self.addr.port())
            .nfs3_port(self.addr.port())
            .connect_from_privileged_port(false)
            .mount()
            .await
    }
}

fn ok<T, E>(result: Nfs3Result<T, E>) -> Result<T, nfsstat3> {
    match result {
        Nfs3Result::Ok(ok) => Ok(ok),
        Nfs3Result::Err((status, _)) => Err(status),
    }
}

fn dirop<'a>(dir: &nfs_fh3, name: &'a str) -> diropargs3<'a> {
    diropargs3 {
        dir: dir.clone(),
        name: name.as_bytes().into(),
    }
}

fn mode(mode: u32) -> sattr3 {
    sattr3 {
        mode: Nfs3Option::Some(mode),
        ..Default::default()
    }
}

async fn lookup(c: &mut Conn, dir: &nfs_fh3, name: &str) -> Result<nfs_fh3, nfsstat3> {
    let args = LOOKUP3args {
        what: dirop(dir, name),
    };
    ok(c.lookup(&args).await.unwrap()).map(|ok| ok.object)
}

async fn getattr(c: &mut Conn, fh: &nfs_fh3) -> Result<fattr3, nfsstat3> {
    let args = GETATTR3args { object: fh.clone() };
    ok(c.getattr(&args).await.unwrap()).map(|ok| ok.obj_attributes)
}

async fn create(
    c: &mut Conn,
    dir: &nfs_fh3,
    name: &str,
    how: createhow3,
) -> Result<nfs_fh3, nfsstat3> {
    let args = CREATE3args {
        where_: dirop(dir, name),
        how,
    };
    ok(c.create(&args).await.unwrap()).map(|ok| ok.obj.unwrap())
}

async fn create_file(c: &mut Conn, dir: &nfs_fh3, name: &str) -> nfs_fh3 {
    create(c, dir, name, createhow3::UNCHECKED(mode(0o644)))
        .await
        .unwrap()
}

async fn mkdir(c: &mut Conn, dir: &nfs_fh3, name: &str) -> Result<nfs_fh3, nfsstat3> {
    let args = MKDIR3args {
        where_: dirop(dir, name),
        attributes: mode(0o755),
    };
    ok(c.mkdir(&args).await.unwrap()).map(|ok| ok.obj.unwrap())
}

async fn write(
    c: &mut Conn,
    fh: &nfs_fh3,
    offset: u64,
    data: &[u8],
    stable: stable_how,
) -> Result<WRITE3resok, nfsstat3> {
    let args = WRITE3args {
        file: fh.clone(),
        offset,
        count: data.len() as u32,
        stable,
        data: Opaque::borrowed(data),
    };
    ok(c.write(&args).await.unwrap())
}

async fn write_all(c: &mut Conn, fh: &nfs_fh3, data: &[u8], chunk: usize) {
    let mut offset = 0;
    for piece in data.chunks(chunk.max(1)) {
        let res = write(c, fh, offset, piece, stable_how::UNSTABLE)
            .await
            .unwrap();
        assert_eq!(res.count as usize, piece.len());
        offset += piece.len() as u64;
    }
    let commit = COMMIT3args {
        file: fh.clone(),
        offset: 0,
        count: 0,
    };
    ok(c.commit(&commit).await.unwrap()).unwrap();
}

async fn read(
    c: &mut Conn,
    fh: &nfs_fh3,
    offset: u64,
    count: u32,
) -> Result<(Vec<u8>, bool), nfsstat3> {
    let args = READ3args {
        file: fh.clone(),
        offset,
        count,
    };
    ok(c.read(&args).await.unwrap()).map(|ok| {
        assert_eq!(ok.count as usize, ok.data.len());
        (ok.data.to_vec(), ok.eof)
    })
}

async fn read_all(c: &mut Conn, fh: &nfs_fh3) -> Result<Vec<u8>, nfsstat3> {
    let mut data = Vec::new();
    loop {
        let (piece, eof) = read(c, fh, data.len() as u64, 1024 * 1024).await?;
        data.extend_from_slice(&piece);
        if eof {
            return Ok(data);
        }
        assert!(!piece.is_empty(), "no data and no eof");
    }
}

async fn remove(c: &mut Conn, dir: &nfs_fh3, name: &str) -> Result<(), nfsstat3> {
    let args = REMOVE3args {
        object: dirop(dir, name),
    };
    ok(c.remove(&args).await.unwrap()).map(|_| ())
}

async fn rename(
    c: &mut Conn,
    from_dir: &nfs_fh3,
    from: &str,
    to_dir: &nfs_fh3,
    to: &str,
) -> Result<(), nfsstat3> {
    let args = RENAME3args {
        from: dirop(from_dir, from),
        to: dirop(to_dir, to),
    };
    ok(c.rename(&args).await.unwrap()).map(|_| ())
}

async fn setattr(c: &mut Conn, fh: &nfs_fh3, attrs: sattr3) -> Result<(), nfsstat3> {
    let args = SETATTR3args {
        object: fh.clone(),
        new_attributes: attrs,
        guard: Nfs3Option::None,
    };
    ok(c.setattr(&args).await.unwrap()).map(|_| ())
}

/// All names of a directory (with fileids), paging with `count`-byte replies.
async fn list(
    c: &mut Conn,
    dir: &nfs_fh3,
    plus: bool,
    count: u32,
) -> (BTreeMap<String, u64>, usize) {
    let mut names = BTreeMap::new();
    let mut cookie = 0;
    let mut pages = 0;
    loop {
        pages += 1;
        let (entries, eof): (Vec<(String, u64, u64)>, bool) = if plus {
            let args = READDIRPLUS3args {
                dir: dir.clone(),
                cookie,
                cookieverf: cookieverf3::default(),
                dircount: count,
                maxcount: count,
            };
            let ok = ok(c.readdirplus(&args).await.unwrap()).unwrap();
            let entries = ok
                .reply
                .entries
                .0
                .into_iter()
                .map(|e| {
                    let name = String::from_utf8(e.name.0.to_vec()).unwrap();
                    if name != ".." {
                        assert!(e.name_handle.is_some(), "{name} has a handle");
                        let Nfs3Option::Some(attrs) = e.name_attributes else {
                            panic!("{name} has attributes")
                        };
                        assert_eq!(attrs.fileid, e.fileid);
                    }
                    (name, e.fileid, e.cookie)
                })
                .collect();
            (entries, ok.reply.eof)
        } else {
            let args = READDIR3args {
                dir: dir.clone(),
                cookie,
                cookieverf: cookieverf3::default(),
                count,
            };
            let ok = ok(c.readdir(&args).await.unwrap()).unwrap();
            let entries = ok
                .reply
                .entries
                .0
                .into_iter()
                .map(|e| {
                    (
                        String::from_utf8(e.name.0.to_vec()).unwrap(),
                        e.fileid,
                        e.cookie,
                    )
                })
                .collect();
            (entries, ok.reply.eof)
        };
        for (name, fileid, next) in entries {
            assert!(
                names.insert(name.clone(), fileid).is_none(),
                "{name} listed twice"
            );
            cookie = next;
        }
        if eof {
            return (names, pages);
        }
    }
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn mount_is_allowed_or_refused_by_rule() {
    let fx = Fixture::start().await;
    let (allowed, _) = fx.rw_share();
    let (refused, _) = fx.share(vec![rule("10.9.9.9", "rw")]);
    let mut conn = fx.mount(&allowed).await.unwrap();
    let root = conn.root_nfs_fh3();
    assert_eq!(
        getattr(&mut conn, &root).await.unwrap().type_,
        ftype3::NF3DIR
    );
    conn.null().await.unwrap();

    let err = fx.mount(&refused).await.err().expect("refused");
    assert!(
        matches!(
            err,
            ConnectError::Mount(MountError::Denied(mountstat3::MNT3ERR_ACCES))
        ),
        "{err:?}"
    );
    let err = fx.mount(&new_id()).await.err().expect("unknown");
    assert!(
        matches!(
            err,
            ConnectError::Mount(MountError::Denied(mountstat3::MNT3ERR_NOENT))
        ),
        "{err:?}"
    );
    // the handle of the refused export does not work either
    let refused_root = nfs_fh3 {
        data: {
            let mut data = root.data.to_vec();
            data[4..20].copy_from_slice(uuid::Uuid::parse_str(&refused).unwrap().as_bytes());
            Opaque::owned(data)
        },
    };
    assert_eq!(
        getattr(&mut conn, &refused_root).await.err(),
        Some(nfsstat3::NFS3ERR_ACCES)
    );

    // MOUNT EXPORT lists both
    let mut listed: Vec<String> = conn
        .mount_client
        .export()
        .await
        .unwrap()
        .0
        .into_iter()
        .map(|node| String::from_utf8(node.ex_dir.0.to_vec()).unwrap())
        .collect();
    listed.sort();
    let mut expected = vec![
        Exports::export_path(&allowed),
        Exports::export_path(&refused),
    ];
    expected.sort();
    assert_eq!(listed, expected);
    conn.unmount().await.unwrap();
}

fn mount_status(result: Result<Conn, ConnectError>) -> mountstat3 {
    match result {
        Ok(_) => panic!("mounted"),
        Err(ConnectError::Mount(MountError::Denied(status))) => status,
        Err(err) => panic!("{err:?}"),
    }
}

#[tokio::test]
async fn a_directory_below_an_export_mounts_under_the_same_rules() {
    let fx = Fixture::start().await;
    let (id, root_dir) = fx.rw_share();
    std::fs::create_dir_all(root_dir.join("a/b")).unwrap();
    std::fs::write(root_dir.join("a/b/f"), b"nested").unwrap();
    std::fs::write(root_dir.join("a/plain"), b"x").unwrap();
    std::os::unix::fs::symlink("b", root_dir.join("a/link")).unwrap();
    std::os::unix::fs::symlink("/etc", root_dir.join("esc")).unwrap();
    let export = Exports::export_path(&id);

    let mut conn = fx.mount_path(&format!("{export}/a/b")).await.unwrap();
    let sub = conn.root_nfs_fh3();
    let attrs = getattr(&mut conn, &sub).await.unwrap();
    assert_eq!(attrs.type_, ftype3::NF3DIR);
    assert_eq!(
        attrs.fileid,
        std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(root_dir.join("a/b")).unwrap())
    );
    let f = lookup(&mut conn, &sub, "f").await.unwrap();
    assert_eq!(read_all(&mut conn, &f).await.unwrap(), b"nested");
    let new = create_file(&mut conn, &sub, "new").await;
    write_all(&mut conn, &new, b"through the subdirectory", 7).await;
    assert_eq!(
        std::fs::read(root_dir.join("a/b/new")).unwrap(),
        b"through the subdirectory"
    );
    // ".." leads up to the export's own directories, and no further than its root
    let a = lookup(&mut conn, &sub, "..").await.unwrap();
    assert_eq!(lookup(&mut conn, &a, "plain").await.map(|_| ()), Ok(()));
    let top = lookup(&mut conn, &a, "..").await.unwrap();
    let above = lookup(&mut conn, &top, "..").await.unwrap();
    assert_eq!(above, top, "the export root is its own parent");

    // other spellings of the same directory give the same handle
    for path in [format!("{export}/a/b/"), format!("{export}//a/./b")] {
        let other = fx.mount_path(&path).await.unwrap();
        assert_eq!(other.root_nfs_fh3(), sub, "{path}");
    }
    // the export itself, with a trailing slash
    let whole = fx.mount_path(&format!("{export}/")).await.unwrap();
    assert_eq!(lookup(&mut conn, &top, "a").await.unwrap(), a);
    assert_eq!(whole.root_nfs_fh3(), top);

    for (path, expected) in [
        ("a/missing", mountstat3::MNT3ERR_NOENT),
        ("a/missing/deeper", mountstat3::MNT3ERR_NOENT),
        ("a/plain", mountstat3::MNT3ERR_NOTDIR),
        ("a/plain/x", mountstat3::MNT3ERR_NOTDIR),
        ("a/../a", mountstat3::MNT3ERR_ACCES),
        ("..", mountstat3::MNT3ERR_ACCES),
        ("a/link", mountstat3::MNT3ERR_ACCES),
        ("esc", mountstat3::MNT3ERR_ACCES),
        ("esc/ssh", mountstat3::MNT3ERR_ACCES),
    ] {
        let status = mount_status(fx.mount_path(&format!("{export}/{path}")).await);
        assert_eq!(status as u32, expected as u32, "{path}");
    }

    // the export's rules decide, for the subdirectory too, before anything is looked up
    fx.exports
        .set_rules(&id, vec![rule("10.9.9.9", "rw")])
        .unwrap();
    for path in ["a/b", "a/missing", "a/plain"] {
        let status = mount_status(fx.mount_path(&format!("{export}/{path}")).await);
        assert_eq!(status as u32, mountstat3::MNT3ERR_ACCES as u32, "{path}");
    }
    assert_eq!(
        getattr(&mut conn, &sub).await.err(),
        Some(nfsstat3::NFS3ERR_ACCES)
    );
    fx.exports
        .set_rules(&id, vec![rule("127.0.0.1", "ro")])
        .unwrap();
    let mut ro = fx.mount_path(&format!("{export}/a/b")).await.unwrap();
    assert_eq!(
        create(&mut ro, &sub, "refused", createhow3::UNCHECKED(mode(0o644)))
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_ROFS)
    );
    assert_eq!(read_all(&mut ro, &f).await.unwrap(), b"nested");
}

#[tokio::test]
async fn writes_and_reads_files_of_many_sizes() {
    let fx = Fixture::start().await;
    let (id, root_dir) = fx.rw_share();
    let mut conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    for (index, size) in [0usize, 1, 4095, 4096, 1024 * 1024 + 3, 5 * 1024 * 1024 + 17]
        .into_iter()
        .enumerate()
    {
        let name = format!("file-{size}");
        let fh = create_file(&mut conn, &root, &name).await;
        let data = pattern(size, index as u8);
        write_all(&mut conn, &fh, &data, 1024 * 1024).await;
        assert_eq!(read_all(&mut conn, &fh).await.unwrap(), data, "{name}");
        assert_eq!(
            std::fs::read(root_dir.join(&name)).unwrap(),
            data,
            "{name} on disk"
        );
        let attrs = getattr(&mut conn, &fh).await.unwrap();
        assert_eq!(attrs.size, size as u64);
        assert_eq!(attrs.type_, ftype3::NF3REG);
        // a read past the end: nothing, eof
        let (tail, eof) = read(&mut conn, &fh, size as u64 + 10, 100).await.unwrap();
        assert!(tail.is_empty() && eof);
    }
    assert_eq!(
        fx.exports.usage_bytes(&id),
        Some(1 + 4095 + 4096 + 1024 * 1024 + 3 + 5 * 1024 * 1024 + 17)
    );
    // stable writes answer FILE_SYNC, with the same verifier as the unstable ones
    let fh = lookup(&mut conn, &root, "file-1").await.unwrap();
    let unstable = write(&mut conn, &fh, 0, b"x", stable_how::UNSTABLE)
        .await
        .unwrap();
    let stable = write(&mut conn, &fh, 0, b"y", stable_how::FILE_SYNC)
        .await
        .unwrap();
    assert_eq!(unstable.committed, stable_how::UNSTABLE);
    assert_eq!(stable.committed, stable_how::FILE_SYNC);
    assert_eq!(unstable.verf, stable.verf);
    // sparse write far out
    write(&mut conn, &fh, 1 << 20, b"end", stable_how::UNSTABLE)
        .await
        .unwrap();
    assert_eq!(getattr(&mut conn, &fh).await.unwrap().size, (1 << 20) + 3);
    // reading a directory
    assert_eq!(
        read(&mut conn, &root, 0, 10).await,
        Err(nfsstat3::NFS3ERR_ISDIR)
    );
    // FSINFO, PATHCONF, FSSTAT
    let info = ok(conn
        .fsinfo(&FSINFO3args {
            fsroot: root.clone(),
        })
        .await
        .unwrap())
    .unwrap();
    assert_eq!(info.rtmax, 1024 * 1024);
    assert_eq!(info.wtmax, 1024 * 1024);
    assert_eq!(
        info.properties,
        FSF3_LINK | FSF3_SYMLINK | FSF3_HOMOGENEOUS | FSF3_CANSETTIME
    );
    let conf = ok(conn
        .pathconf(&PATHCONF3args {
            object: root.clone(),
        })
        .await
        .unwrap())
    .unwrap();
    assert_eq!(conf.name_max, 255);
    let stat = ok(conn
        .fsstat(&FSSTAT3args {
            fsroot: root.clone(),
        })
        .await
        .unwrap())
    .unwrap();
    assert!(stat.tbytes > 0 && stat.abytes <= stat.fbytes);
}

#[tokio::test]
async fn create_modes_and_exclusive_retransmission() {
    let fx = Fixture::start().await;
    let (id, root_dir) = fx.rw_share();
    let mut conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    let first = create(&mut conn, &root, "g", createhow3::GUARDED(mode(0o640)))
        .await
        .unwrap();
    assert_eq!(
        getattr(&mut conn, &first).await.unwrap().mode,
        0o640,
        "umask not applied"
    );
    assert_eq!(
        create(&mut conn, &root, "g", createhow3::GUARDED(mode(0o640))).await,
        Err(nfsstat3::NFS3ERR_EXIST)
    );
    // UNCHECKED on an existing file keeps it (and its content)
    write(&mut conn, &first, 0, b"keep", stable_how::FILE_SYNC)
        .await
        .unwrap();
    let again = create(&mut conn, &root, "g", createhow3::UNCHECKED(mode(0o600)))
        .await
        .unwrap();
    assert_eq!(again, first);
    assert_eq!(read_all(&mut conn, &first).await.unwrap(), b"keep");
    // UNCHECKED with size 0 truncates
    let truncate = sattr3 {
        size: Nfs3Option::Some(0),
        ..Default::default()
    };
    create(&mut conn, &root, "g", createhow3::UNCHECKED(truncate))
        .await
        .unwrap();
    assert_eq!(getattr(&mut conn, &first).await.unwrap().size, 0);

    let verf = createverf3(*b"\x12\x34\x56\x78\x9a\xbc\xde\xf0");
    let excl = create(&mut conn, &root, "x", createhow3::EXCLUSIVE(verf))
        .await
        .unwrap();
    // the retransmission of the same create succeeds with the same file
    let retry = create(&mut conn, &root, "x", createhow3::EXCLUSIVE(verf))
        .await
        .unwrap();
    assert_eq!(excl, retry);
    // another client's exclusive create of the name fails
    let other = createverf3(*b"abcdefgh");
    assert_eq!(
        create(&mut conn, &root, "x", createhow3::EXCLUSIVE(other)).await,
        Err(nfsstat3::NFS3ERR_EXIST)
    );
    // invalid names
    for (name, status) in [
        ("a/b", nfsstat3::NFS3ERR_ACCES),
        ("", nfsstat3::NFS3ERR_ACCES),
        (".", nfsstat3::NFS3ERR_EXIST),
        ("..", nfsstat3::NFS3ERR_EXIST),
    ] {
        assert_eq!(
            create(&mut conn, &root, name, createhow3::UNCHECKED(mode(0o644))).await,
            Err(status),
            "{name:?}"
        );
    }
    let long = "n".repeat(256);
    assert_eq!(
        create(&mut conn, &root, &long, createhow3::UNCHECKED(mode(0o644))).await,
        Err(nfsstat3::NFS3ERR_NAMETOOLONG)
    );
    assert!(!root_dir.join("a").exists());
    // MKNOD is not served
    let args = MKNOD3args {
        where_: dirop(&root, "fifo"),
        what: mknoddata3::NF3FIFO(sattr3::default()),
    };
    assert_eq!(
        ok(conn.mknod(&args).await.unwrap()).err(),
        Some(nfsstat3::NFS3ERR_NOTSUPP)
    );
}

#[tokio::test]
async fn directories_list_across_pages() {
    let fx = Fixture::start().await;
    let (id, root_dir) = fx.rw_share();
    let mut conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    let big = mkdir(&mut conn, &root, "big").await.unwrap();
    assert_eq!(
        mkdir(&mut conn, &root, "big").await,
        Err(nfsstat3::NFS3ERR_EXIST)
    );
    assert_eq!(lookup(&mut conn, &root, "big").await.unwrap(), big);
    assert_eq!(getattr(&mut conn, &big).await.unwrap().mode, 0o755);
    for i in 0..10_000 {
        std::fs::write(root_dir.join("big").join(format!("entry-{i:05}")), b"").unwrap();
    }
    let (names, pages) = list(&mut conn, &big, false, 8 * 1024).await;
    assert_eq!(names.len(), 10_002, "10,000 entries plus . and ..");
    assert!(pages > 10, "{pages} pages");
    assert!(names.contains_key("entry-09999"));
    let (plus_names, plus_pages) = list(&mut conn, &big, true, 16 * 1024).await;
    assert!(plus_pages > 10, "{plus_pages} pages");
    assert_eq!(plus_names, names);
    // the handles READDIRPLUS handed out resolve
    let fh = lookup(&mut conn, &big, "entry-04242").await.unwrap();
    assert_eq!(
        getattr(&mut conn, &fh).await.unwrap().fileid,
        names["entry-04242"]
    );
    // "." is the directory, ".." its parent (the root)
    let root_attrs = getattr(&mut conn, &root).await.unwrap();
    let big_attrs = getattr(&mut conn, &big).await.unwrap();
    assert_eq!(names["."], big_attrs.fileid);
    assert_eq!(names[".."], root_attrs.fileid);
    assert_eq!(lookup(&mut conn, &big, "..").await.unwrap(), root);
    // a reply too small for one entry
    let args = READDIR3args {
        dir: big.clone(),
        cookie: 0,
        cookieverf: cookieverf3::default(),
        count: 100,
    };
    assert_eq!(
        ok(conn.readdir(&args).await.unwrap()).err(),
        Some(nfsstat3::NFS3ERR_TOOSMALL)
    );

    // RMDIR of a non-empty directory, then of an empty one
    let rmdir = |name: &'static str| RMDIR3args {
        object: dirop(&root, name),
    };
    assert_eq!(
        ok(conn.rmdir(&rmdir("big")).await.unwrap()).err(),
        Some(nfsstat3::NFS3ERR_NOTEMPTY)
    );
    let empty = mkdir(&mut conn, &root, "empty").await.unwrap();
    let sub = mkdir(&mut conn, &empty, "sub").await.unwrap();
    assert_eq!(lookup(&mut conn, &sub, "..").await.unwrap(), empty);
    ok(conn
        .rmdir(&RMDIR3args {
            object: dirop(&empty, "sub"),
        })
        .await
        .unwrap())
    .unwrap();
    ok(conn.rmdir(&rmdir("empty")).await.unwrap()).unwrap();
    assert!(!root_dir.join("empty").exists());
    assert_eq!(
        getattr(&mut conn, &empty).await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );
    assert_eq!(
        lookup(&mut conn, &root, "empty").await,
        Err(nfsstat3::NFS3ERR_NOENT)
    );
}

#[tokio::test]
async fn rename_remove_setattr_symlink_and_link() {
    let fx = Fixture::start().await;
    let (id, root_dir) = fx.rw_share();
    let mut conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    let a = create_file(&mut conn, &root, "a").await;
    write_all(&mut conn, &a, b"alpha", 4096).await;
    let b = create_file(&mut conn, &root, "b").await;
    write_all(&mut conn, &b, b"bravo!", 4096).await;
    let dir = mkdir(&mut conn, &root, "dir").await.unwrap();

    // rename into a directory, then over an existing file
    rename(&mut conn, &root, "a", &dir, "a2").await.unwrap();
    assert_eq!(
        read_all(&mut conn, &a).await.unwrap(),
        b"alpha",
        "the handle follows the rename"
    );
    assert_eq!(
        lookup(&mut conn, &root, "a").await,
        Err(nfsstat3::NFS3ERR_NOENT)
    );
    rename(&mut conn, &dir, "a2", &root, "b").await.unwrap();
    assert_eq!(std::fs::read(root_dir.join("b")).unwrap(), b"alpha");
    assert_eq!(
        getattr(&mut conn, &b).await.err(),
        Some(nfsstat3::NFS3ERR_STALE),
        "replaced"
    );
    assert_eq!(fx.exports.usage_bytes(&id), Some(5));
    // renaming a directory keeps the handles below it working
    let inner = create_file(&mut conn, &dir, "inner").await;
    rename(&mut conn, &root, "dir", &root, "dir2")
        .await
        .unwrap();
    write_all(&mut conn, &inner, b"in", 4096).await;
    assert_eq!(std::fs::read(root_dir.join("dir2/inner")).unwrap(), b"in");
    assert_eq!(
        rename(&mut conn, &root, "nope", &root, "x").await,
        Err(nfsstat3::NFS3ERR_NOENT)
    );
    assert_eq!(
        rename(&mut conn, &root, "..", &root, "x").await,
        Err(nfsstat3::NFS3ERR_INVAL)
    );

    // setattr: mode, size, mtime
    setattr(&mut conn, &a, mode(0o600)).await.unwrap();
    let attrs = getattr(&mut conn, &a).await.unwrap();
    assert_eq!(attrs.mode, 0o600);
    let grow = sattr3 {
        size: Nfs3Option::Some(10),
        ..Default::default()
    };
    setattr(&mut conn, &a, grow).await.unwrap();
    assert_eq!(read_all(&mut conn, &a).await.unwrap(), b"alpha\0\0\0\0\0");
    let shrink = sattr3 {
        size: Nfs3Option::Some(2),
        ..Default::default()
    };
    setattr(&mut conn, &a, shrink).await.unwrap();
    assert_eq!(read_all(&mut conn, &a).await.unwrap(), b"al");
    let when = nfstime3 {
        seconds: 1_000_000_000,
        nseconds: 123,
    };
    let times = sattr3 {
        mtime: set_mtime::SET_TO_CLIENT_TIME(when),
        atime: set_atime::SET_TO_SERVER_TIME,
        ..Default::default()
    };
    setattr(&mut conn, &a, times).await.unwrap();
    assert_eq!(getattr(&mut conn, &a).await.unwrap().mtime, when);
    // a stale ctime guard
    let guarded = SETATTR3args {
        object: a.clone(),
        new_attributes: mode(0o644),
        guard: Nfs3Option::Some(nfstime3 {
            seconds: 1,
            nseconds: 0,
        }),
    };
    assert_eq!(
        ok(conn.setattr(&guarded).await.unwrap()).err(),
        Some(nfsstat3::NFS3ERR_NOT_SYNC)
    );
    // giving a file away
    let chown = sattr3 {
        uid: Nfs3Option::Some(attrs.uid + 1),
        ..Default::default()
    };
    assert_eq!(
        setattr(&mut conn, &a, chown).await,
        Err(nfsstat3::NFS3ERR_PERM)
    );
    let same_owner = sattr3 {
        uid: Nfs3Option::Some(attrs.uid),
        gid: Nfs3Option::Some(attrs.gid),
        ..Default::default()
    };
    setattr(&mut conn, &a, same_owner).await.unwrap();

    // symlink + readlink
    let args = SYMLINK3args {
        where_: dirop(&root, "ln"),
        symlink: symlinkdata3 {
            symlink_attributes: sattr3::default(),
            symlink_data: b"dir2/inner".as_slice().into(),
        },
    };
    let ln = ok(conn.symlink(&args).await.unwrap()).unwrap().obj.unwrap();
    assert_eq!(getattr(&mut conn, &ln).await.unwrap().type_, ftype3::NF3LNK);
    let target = ok(conn
        .readlink(&READLINK3args {
            symlink: ln.clone(),
        })
        .await
        .unwrap())
    .unwrap();
    assert_eq!(target.data.0.as_ref(), b"dir2/inner");
    assert_eq!(
        std::fs::read_link(root_dir.join("ln")).unwrap(),
        Path::new("dir2/inner")
    );
    // a symlink's times can be set; its mode is left alone
    let times = sattr3 {
        mtime: set_mtime::SET_TO_CLIENT_TIME(when),
        ..Default::default()
    };
    setattr(&mut conn, &ln, times).await.unwrap();
    assert_eq!(getattr(&mut conn, &ln).await.unwrap().mtime, when);
    assert_eq!(
        read(&mut conn, &ln, 0, 10).await,
        Err(nfsstat3::NFS3ERR_INVAL)
    );
    assert_eq!(
        ok(conn
            .readlink(&READLINK3args { symlink: a.clone() })
            .await
            .unwrap())
        .err(),
        Some(nfsstat3::NFS3ERR_INVAL)
    );

    // hard link
    let args = LINK3args {
        file: a.clone(),
        link: dirop(&root, "hard"),
    };
    let linked = ok(conn.link(&args).await.unwrap()).unwrap();
    let Nfs3Option::Some(attrs) = linked.file_attributes else {
        panic!("attributes")
    };
    assert_eq!(attrs.nlink, 2);
    let hard = lookup(&mut conn, &root, "hard").await.unwrap();
    assert_eq!(hard, a, "one inode, one handle");
    assert_eq!(
        fx.exports.usage_bytes(&id),
        Some(2 + 2),
        "a hard link is counted once"
    );
    // removing one name keeps the other working
    remove(&mut conn, &root, "b").await.unwrap();
    assert_eq!(read_all(&mut conn, &hard).await.unwrap(), b"al");
    remove(&mut conn, &root, "hard").await.unwrap();
    assert_eq!(
        getattr(&mut conn, &a).await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );
    assert_eq!(
        remove(&mut conn, &root, "hard").await,
        Err(nfsstat3::NFS3ERR_NOENT)
    );
    assert_eq!(
        remove(&mut conn, &root, "..").await,
        Err(nfsstat3::NFS3ERR_ACCES)
    );
    assert_eq!(fx.exports.usage_bytes(&id), Some(2));
    let _ = dir;
}

#[tokio::test]
async fn access_levels_follow_the_rules_on_every_call() {
    let fx = Fixture::start().await;
    let (id, root_dir) = fx.share(vec![rule("127.0.0.0/8", "ro")]);
    std::fs::write(root_dir.join("f"), b"data").unwrap();
    let mut conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    let f = lookup(&mut conn, &root, "f").await.unwrap();
    assert_eq!(read_all(&mut conn, &f).await.unwrap(), b"data");
    assert_eq!(
        write(&mut conn, &f, 0, b"x", stable_how::FILE_SYNC)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_ROFS)
    );
    assert_eq!(
        create(&mut conn, &root, "n", createhow3::UNCHECKED(mode(0o644))).await,
        Err(nfsstat3::NFS3ERR_ROFS)
    );
    assert_eq!(
        remove(&mut conn, &root, "f").await,
        Err(nfsstat3::NFS3ERR_ROFS)
    );
    let access = |object: &nfs_fh3| ACCESS3args {
        object: object.clone(),
        access: 0x3f,
    };
    let bits = ok(conn.access(&access(&root)).await.unwrap())
        .unwrap()
        .access;
    assert_eq!(bits, ACCESS3_READ | ACCESS3_LOOKUP | ACCESS3_EXECUTE);

    // a rw rule next to it: rw wins, for the connected client at once
    fx.exports
        .set_rules(
            &id,
            vec![rule("127.0.0.0/8", "ro"), rule("127.0.0.1", "rw")],
        )
        .unwrap();
    write(&mut conn, &f, 0, b"D", stable_how::FILE_SYNC)
        .await
        .unwrap();
    let bits = ok(conn.access(&access(&root)).await.unwrap())
        .unwrap()
        .access;
    assert_eq!(bits, 0x3f);
    let bits = ok(conn.access(&access(&f)).await.unwrap()).unwrap().access;
    assert_eq!(bits, 0x3f & !ACCESS3_EXECUTE, "f is not executable");

    // a read-only export stays read-only whatever the rules say
    fx.exports
        .export(
            &id,
            ExportSpec {
                root: ExportRoot::Directory(root_dir.clone()),
                read_only: true,
                rules: vec![rule("127.0.0.1", "rw")],
                quota_bytes: None,
            },
        )
        .unwrap();
    assert_eq!(
        read_all(&mut conn, &f).await.unwrap(),
        b"Data",
        "handles survive the re-export"
    );
    assert_eq!(
        write(&mut conn, &f, 0, b"x", stable_how::FILE_SYNC)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_ROFS)
    );

    // the rule removed while mounted
    fx.exports.set_rules(&id, vec![]).unwrap();
    assert_eq!(
        getattr(&mut conn, &f).await.err(),
        Some(nfsstat3::NFS3ERR_ACCES)
    );
    assert_eq!(
        read(&mut conn, &f, 0, 4).await,
        Err(nfsstat3::NFS3ERR_ACCES)
    );

    // unexported
    fx.exports
        .set_rules(&id, vec![rule("127.0.0.1", "rw")])
        .unwrap();
    getattr(&mut conn, &f).await.unwrap();
    fx.exports.unexport(&id);
    assert_eq!(
        getattr(&mut conn, &f).await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );
    assert_eq!(
        getattr(&mut conn, &root).await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );
    assert!(fx.mount(&id).await.is_err());

    // malformed handles
    for data in [vec![], vec![1; 39], vec![9; 40], vec![1; 64]] {
        let fh = nfs_fh3 {
            data: Opaque::owned(data),
        };
        assert_eq!(
            getattr(&mut conn, &fh).await.err(),
            Some(nfsstat3::NFS3ERR_BADHANDLE)
        );
    }
}

/// Builds a replica directory `dir` with versions, `current -> v1`.
fn replica(dir: &Path) {
    std::fs::create_dir_all(dir.join("v1/sub")).unwrap();
    std::fs::write(dir.join("v1/same"), b"linked into both").unwrap();
    std::fs::write(dir.join("v1/changed"), b"version 1").unwrap();
    std::fs::write(dir.join("v1/sub/deep"), b"deep 1").unwrap();
    std::fs::create_dir_all(dir.join("v2/sub")).unwrap();
    std::fs::hard_link(dir.join("v1/same"), dir.join("v2/same")).unwrap();
    std::fs::write(dir.join("v2/changed"), b"version 2").unwrap();
    std::fs::write(dir.join("v2/new"), b"new in 2").unwrap();
    std::fs::hard_link(dir.join("v1/sub/deep"), dir.join("v2/sub/deep")).unwrap();
    std::os::unix::fs::symlink("v1", dir.join("current")).unwrap();
}

fn publish(dir: &Path, version: &str) {
    std::os::unix::fs::symlink(version, dir.join("current.tmp")).unwrap();
    std::fs::rename(dir.join("current.tmp"), dir.join("current")).unwrap();
}

#[tokio::test]
async fn published_root_follows_current() {
    let fx = Fixture::start().await;
    let id = new_id();
    let dir = fx.dir.path().join("replica");
    replica(&dir);
    fx.exports
        .export(
            &id,
            ExportSpec {
                root: ExportRoot::Published(dir.clone()),
                read_only: true,
                rules: vec![rule("127.0.0.1", "rw")],
                quota_bytes: None,
            },
        )
        .unwrap();
    let mut conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    let root_id = getattr(&mut conn, &root).await.unwrap().fileid;
    let same = lookup(&mut conn, &root, "same").await.unwrap();
    let changed = lookup(&mut conn, &root, "changed").await.unwrap();
    let sub = lookup(&mut conn, &root, "sub").await.unwrap();
    let deep = lookup(&mut conn, &sub, "deep").await.unwrap();
    assert_eq!(read_all(&mut conn, &changed).await.unwrap(), b"version 1");
    assert_eq!(
        lookup(&mut conn, &root, "new").await,
        Err(nfsstat3::NFS3ERR_NOENT)
    );
    assert_eq!(
        write(&mut conn, &same, 0, b"x", stable_how::FILE_SYNC)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_ROFS)
    );

    publish(&dir, "v2");
    assert_eq!(
        getattr(&mut conn, &root).await.unwrap().fileid,
        root_id,
        "the root's fileid is stable"
    );
    let new = lookup(&mut conn, &root, "new").await.unwrap();
    assert_eq!(read_all(&mut conn, &new).await.unwrap(), b"new in 2");
    assert_eq!(
        getattr(&mut conn, &changed).await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );
    assert_eq!(
        read_all(&mut conn, &same).await.unwrap(),
        b"linked into both"
    );
    // hard-linked below a directory that is a new inode in v2: still the same file
    assert_eq!(read_all(&mut conn, &deep).await.unwrap(), b"deep 1");
    let changed2 = lookup(&mut conn, &root, "changed").await.unwrap();
    assert_eq!(read_all(&mut conn, &changed2).await.unwrap(), b"version 2");
    let (names, _) = list(&mut conn, &root, true, 4096).await;
    assert!(names.contains_key("new") && names.contains_key("same"));
    assert_eq!(names["."], root_id);
    assert_eq!(names[".."], root_id);
}

#[tokio::test]
async fn a_recreated_file_is_stale_never_the_new_data() {
    let fx = Fixture::start().await;
    let (id, root_dir) = fx.rw_share();
    let mut conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    let fh = create_file(&mut conn, &root, "f").await;
    write_all(&mut conn, &fh, b"old secret", 4096).await;
    for round in 0..20 {
        // deleted and recreated behind the server's back (the inode number may be reused)
        std::fs::remove_file(root_dir.join("f")).unwrap();
        std::fs::write(root_dir.join("f"), format!("new data {round}")).unwrap();
        assert_eq!(
            read(&mut conn, &fh, 0, 100).await,
            Err(nfsstat3::NFS3ERR_STALE)
        );
        assert_eq!(
            getattr(&mut conn, &fh).await.err(),
            Some(nfsstat3::NFS3ERR_STALE)
        );
    }
    // after a fresh lookup the new file is served
    let fresh = lookup(&mut conn, &root, "f").await.unwrap();
    assert_eq!(read_all(&mut conn, &fresh).await.unwrap(), b"new data 19");
    assert_eq!(
        read(&mut conn, &fh, 0, 100).await,
        Err(nfsstat3::NFS3ERR_STALE)
    );
}

/// `fh` with another inode generation (bytes 40..44 of a file handle).
fn with_generation(fh: &nfs_fh3, generation: u32) -> nfs_fh3 {
    let mut data = fh.data.to_vec();
    data[40..44].copy_from_slice(&generation.to_be_bytes());
    nfs_fh3 {
        data: Opaque::owned(data),
    }
}

#[tokio::test]
async fn handles_carry_the_inode_generation_and_every_way_to_a_file_gives_one_handle() {
    let fx = Fixture::start().await;
    let (id, root_dir) = fx.rw_share();
    std::fs::create_dir(root_dir.join("d")).unwrap();
    std::fs::write(root_dir.join("d/f"), b"data").unwrap();
    let mut conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    assert_eq!(
        root.data.len(),
        40,
        "root handles keep their format-1 bytes"
    );
    let d = lookup(&mut conn, &root, "d").await.unwrap();
    let f = lookup(&mut conn, &d, "f").await.unwrap();
    let g = create_file(&mut conn, &d, "g").await;
    let e = mkdir(&mut conn, &d, "e").await.unwrap();
    for fh in [&d, &f, &g, &e] {
        assert_eq!(fh.data.len(), 44);
        let generation = u32::from_be_bytes(fh.data[40..44].try_into().unwrap());
        // /tmp of the test machines is ext4, which keeps generations; tmpfs keeps none
        if generation != 0 {
            assert_eq!(
                getattr(&mut conn, &with_generation(fh, generation.wrapping_add(1)))
                    .await
                    .err(),
                Some(nfsstat3::NFS3ERR_STALE)
            );
        }
        // 0: the generation was not known; inode and birth time decide
        getattr(&mut conn, &with_generation(fh, 0)).await.unwrap();
        // a format-1 file handle (from before the generation) is stale, not malformed
        let mut old = fh.data[..40].to_vec();
        old[0] = 1;
        let old = nfs_fh3 {
            data: Opaque::owned(old),
        };
        assert_eq!(
            getattr(&mut conn, &old).await.err(),
            Some(nfsstat3::NFS3ERR_STALE)
        );
    }
    // LOOKUP, CREATE, MKDIR, READDIRPLUS and ".." name each object by the same handle
    assert_eq!(lookup(&mut conn, &d, "g").await.unwrap(), g);
    assert_eq!(lookup(&mut conn, &d, "e").await.unwrap(), e);
    assert_eq!(lookup(&mut conn, &e, "..").await.unwrap(), d);
    assert_eq!(lookup(&mut conn, &d, "..").await.unwrap(), root);
    assert_eq!(
        create(&mut conn, &d, "f", createhow3::UNCHECKED(sattr3::default()))
            .await
            .unwrap(),
        f
    );
    let args = READDIRPLUS3args {
        dir: d.clone(),
        cookie: 0,
        cookieverf: cookieverf3::default(),
        dircount: 64 * 1024,
        maxcount: 64 * 1024,
    };
    let listed = ok(conn.readdirplus(&args).await.unwrap()).unwrap();
    let mut seen = 0;
    for entry in listed.reply.entries.0 {
        let expected = match entry.name.0.as_ref() {
            b"f" => &f,
            b"g" => &g,
            b"e" => &e,
            _ => continue,
        };
        assert_eq!(entry.name_handle, Nfs3Option::Some(expected.clone()));
        seen += 1;
    }
    assert_eq!(seen, 3);
}

#[tokio::test]
async fn symlinks_never_lead_out_of_the_export() {
    let fx = Fixture::start().await;
    let (id, root_dir) = fx.rw_share();
    std::os::unix::fs::symlink("/etc", root_dir.join("esc")).unwrap();
    std::os::unix::fs::symlink("..", root_dir.join("up")).unwrap();
    std::fs::create_dir(root_dir.join("d")).unwrap();
    let mut conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    let esc = lookup(&mut conn, &root, "esc").await.unwrap();
    assert_eq!(
        getattr(&mut conn, &esc).await.unwrap().type_,
        ftype3::NF3LNK
    );
    assert_eq!(
        lookup(&mut conn, &esc, "passwd").await,
        Err(nfsstat3::NFS3ERR_NOTDIR)
    );
    let up = lookup(&mut conn, &root, "up").await.unwrap();
    assert_eq!(
        lookup(&mut conn, &up, "..").await,
        Err(nfsstat3::NFS3ERR_NOTDIR)
    );
    // ".." of the root is the root
    assert_eq!(lookup(&mut conn, &root, "..").await.unwrap(), root);
    // creating through a symlink is refused, the target untouched
    assert_eq!(
        create(&mut conn, &esc, "x", createhow3::UNCHECKED(mode(0o644))).await,
        Err(nfsstat3::NFS3ERR_NOTDIR)
    );
    // a directory replaced by a symlink: the old handle does not follow it
    let d = lookup(&mut conn, &root, "d").await.unwrap();
    std::fs::remove_dir(root_dir.join("d")).unwrap();
    std::os::unix::fs::symlink("/etc", root_dir.join("d")).unwrap();
    assert_eq!(
        lookup(&mut conn, &d, "passwd").await,
        Err(nfsstat3::NFS3ERR_STALE)
    );
    // a symlinked name in a file's path is not followed either: "sub" -> real dir
    std::fs::create_dir(root_dir.join("real")).unwrap();
    std::fs::write(root_dir.join("real/file"), b"in real").unwrap();
    let real = lookup(&mut conn, &root, "real").await.unwrap();
    let file = lookup(&mut conn, &real, "file").await.unwrap();
    std::fs::rename(root_dir.join("real"), root_dir.join("real.moved")).unwrap();
    std::os::unix::fs::symlink("real.moved", root_dir.join("real")).unwrap();
    assert_eq!(
        read(&mut conn, &file, 0, 10).await,
        Err(nfsstat3::NFS3ERR_STALE)
    );
}

#[tokio::test]
async fn quota_refuses_growth_and_changes_nothing() {
    let fx = Fixture::start().await;
    let (id, root_dir) = fx.rw_share();
    std::fs::write(root_dir.join("existing"), vec![7u8; 2000]).unwrap();
    fx.exports.recount_usage(&id).unwrap();
    fx.exports.set_quota(&id, Some(10_000)).unwrap();
    let mut conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    let f = create_file(&mut conn, &root, "f").await;
    let first = pattern(8000, 1);
    write(&mut conn, &f, 0, &first, stable_how::FILE_SYNC)
        .await
        .unwrap();
    assert_eq!(fx.exports.usage_bytes(&id), Some(10_000));
    // crossing the limit: DQUOT, nothing written
    assert_eq!(
        write(&mut conn, &f, 8000, &[1; 4000], stable_how::FILE_SYNC)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_DQUOT)
    );
    assert_eq!(
        write(&mut conn, &f, 7000, &[1; 1001], stable_how::FILE_SYNC)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_DQUOT)
    );
    assert_eq!(std::fs::read(root_dir.join("f")).unwrap(), first);
    // rewriting inside the file is fine
    write(&mut conn, &f, 0, &[9; 100], stable_how::FILE_SYNC)
        .await
        .unwrap();
    // growing by truncate too
    let grow = sattr3 {
        size: Nfs3Option::Some(9000),
        ..Default::default()
    };
    assert_eq!(
        setattr(&mut conn, &f, grow.clone()).await,
        Err(nfsstat3::NFS3ERR_DQUOT)
    );
    assert_eq!(std::fs::metadata(root_dir.join("f")).unwrap().len(), 8000);
    let stat = ok(conn
        .fsstat(&FSSTAT3args {
            fsroot: root.clone(),
        })
        .await
        .unwrap())
    .unwrap();
    assert_eq!((stat.tbytes, stat.fbytes, stat.abytes), (10_000, 0, 0));

    fx.exports.set_quota(&id, Some(20_000)).unwrap();
    write(&mut conn, &f, 8000, &[1; 4000], stable_how::FILE_SYNC)
        .await
        .unwrap();
    assert_eq!(fx.exports.usage_bytes(&id), Some(14_000));
    let stat = ok(conn
        .fsstat(&FSSTAT3args {
            fsroot: root.clone(),
        })
        .await
        .unwrap())
    .unwrap();
    assert_eq!((stat.tbytes, stat.abytes), (20_000, 6_000));
    // removing gives room back; so does a shrinking truncate
    remove(&mut conn, &root, "existing").await.unwrap();
    assert_eq!(fx.exports.usage_bytes(&id), Some(12_000));
    let shrink = sattr3 {
        size: Nfs3Option::Some(1000),
        ..Default::default()
    };
    setattr(&mut conn, &f, shrink).await.unwrap();
    assert_eq!(fx.exports.usage_bytes(&id), Some(1000));
    fx.exports.recount_usage(&id).unwrap();
    assert_eq!(fx.exports.usage_bytes(&id), Some(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_never_overshoot_the_quota() {
    let fx = Fixture::start().await;
    let (id, _) = fx.rw_share();
    fx.exports.set_quota(&id, Some(100_000)).unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let mut conn = fx.mount(&id).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let root = conn.root_nfs_fh3();
            let fh = create_file(&mut conn, &root, &format!("w{t}")).await;
            let mut written = 0u64;
            // Appending at the file's own end: a refused write leaves no hole, so every
            // success grows the usage by exactly 1000 bytes.
            for _ in 0..100 {
                match write(
                    &mut conn,
                    &fh,
                    written,
                    &[t as u8; 1000],
                    stable_how::UNSTABLE,
                )
                .await
                {
                    Ok(_) => written += 1000,
                    Err(status) => assert_eq!(status, nfsstat3::NFS3ERR_DQUOT),
                }
            }
            written
        }));
    }
    let mut total = 0;
    for task in tasks {
        total += task.await.unwrap();
    }
    assert_eq!(total, 100_000);
    assert_eq!(fx.exports.usage_bytes(&id), Some(100_000));
}

#[tokio::test]
async fn quiesce_holds_writes_and_lets_reads_through() {
    let fx = Fixture::start().await;
    let (id, _) = fx.rw_share();
    let mut conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    let f = create_file(&mut conn, &root, "f").await;
    write_all(&mut conn, &f, b"before", 4096).await;
    fx.exports.set_quiesced(&id, true).await.unwrap();
    assert_eq!(
        write(&mut conn, &f, 0, b"during", stable_how::FILE_SYNC)
            .await
            .err(),
        Some(nfsstat3::NFS3ERR_JUKEBOX)
    );
    assert_eq!(
        create(&mut conn, &root, "g", createhow3::UNCHECKED(mode(0o644))).await,
        Err(nfsstat3::NFS3ERR_JUKEBOX)
    );
    assert_eq!(read_all(&mut conn, &f).await.unwrap(), b"before");
    let (names, _) = list(&mut conn, &root, false, 4096).await;
    assert!(names.contains_key("f"));
    fx.exports.set_quiesced(&id, false).await.unwrap();
    write(&mut conn, &f, 0, b"after!", stable_how::FILE_SYNC)
        .await
        .unwrap();
    assert_eq!(read_all(&mut conn, &f).await.unwrap(), b"after!");
}

#[derive(Default)]
struct Recorder(Mutex<Vec<(String, Change)>>);

impl ChangeObserver for Recorder {
    fn changed(&self, instance_id: &str, change: &Change) {
        self.0
            .lock()
            .unwrap()
            .push((instance_id.to_owned(), change.clone()));
    }
}

#[tokio::test]
async fn the_observer_sees_exactly_the_changes() {
    let fx = Fixture::start().await;
    let recorder = Arc::new(Recorder::default());
    fx.exports.set_observer(recorder.clone());
    let (id, _) = fx.rw_share();
    let mut conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    let dir = mkdir(&mut conn, &root, "d").await.unwrap();
    let f = create_file(&mut conn, &dir, "f").await;
    write(&mut conn, &f, 0, b"data", stable_how::UNSTABLE)
        .await
        .unwrap();
    setattr(&mut conn, &f, mode(0o600)).await.unwrap();
    rename(&mut conn, &dir, "f", &root, "g").await.unwrap();
    let args = LINK3args {
        file: f.clone(),
        link: dirop(&dir, "h"),
    };
    ok(conn.link(&args).await.unwrap()).unwrap();
    let args = SYMLINK3args {
        where_: dirop(&root, "s"),
        symlink: symlinkdata3 {
            symlink_attributes: sattr3::default(),
            symlink_data: b"g".as_slice().into(),
        },
    };
    ok(conn.symlink(&args).await.unwrap()).unwrap();
    remove(&mut conn, &dir, "h").await.unwrap();
    ok(conn
        .rmdir(&RMDIR3args {
            object: dirop(&root, "d"),
        })
        .await
        .unwrap())
    .unwrap();
    // failures and reads change nothing
    assert!(
        create(&mut conn, &root, "g", createhow3::GUARDED(mode(0o644)))
            .await
            .is_err()
    );
    assert!(remove(&mut conn, &root, "missing").await.is_err());
    assert!(mkdir(&mut conn, &root, "g").await.is_err());
    read_all(&mut conn, &f).await.unwrap();
    lookup(&mut conn, &root, "g").await.unwrap();

    let change = |kind, path: &str, to: Option<&str>| {
        (
            id.clone(),
            Change {
                kind,
                path: PathBuf::from(path),
                to: to.map(PathBuf::from),
            },
        )
    };
    let seen = recorder.0.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![
            change(ChangeKind::Mkdir, "d", None),
            change(ChangeKind::Create, "d/f", None),
            change(ChangeKind::Write, "d/f", None),
            change(ChangeKind::Setattr, "d/f", None),
            change(ChangeKind::Rename, "d/f", Some("g")),
            change(ChangeKind::Link, "g", Some("d/h")),
            change(ChangeKind::Symlink, "s", None),
            change(ChangeKind::Remove, "d/h", None),
            change(ChangeKind::Rmdir, "d", None),
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_clients_write_different_files() {
    let fx = Fixture::start().await;
    let (id, root_dir) = fx.rw_share();
    let mut tasks = Vec::new();
    for t in 0..8u8 {
        let mut conn = fx.mount(&id).await.unwrap();
        tasks.push(tokio::spawn(async move {
            let root = conn.root_nfs_fh3();
            let fh = create_file(&mut conn, &root, &format!("c{t}")).await;
            let data = pattern(2 * 1024 * 1024 + usize::from(t), t);
            write_all(&mut conn, &fh, &data, 256 * 1024).await;
            assert_eq!(read_all(&mut conn, &fh).await.unwrap(), data);
            data
        }));
    }
    for (t, task) in tasks.into_iter().enumerate() {
        let data = task.await.unwrap();
        assert_eq!(std::fs::read(root_dir.join(format!("c{t}"))).unwrap(), data);
    }
}

fn rpc_call(xid: u32, prog: u32, vers: u32, proc: u32, args: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for word in [xid, 0, 2, prog, vers, proc, 0, 0, 0, 0] {
        body.extend_from_slice(&word.to_be_bytes());
    }
    body.extend_from_slice(args);
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_calls_and_fragmented_records_on_one_connection() {
    let fx = Fixture::start().await;
    let (id, root_dir) = fx.rw_share();
    std::fs::write(root_dir.join("f"), pattern(300_000, 3)).unwrap();
    let conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    let mut raw = TcpStream::connect(fx.addr).await.unwrap();
    // LOOKUP of "f" sent in three fragments
    let mut lookup_args = Vec::new();
    dirop(&root, "f").pack(&mut lookup_args).unwrap();
    let call = rpc_call(1, 100003, 3, 3, &lookup_args);
    let mut wire = Vec::new();
    let (a, rest) = call.split_at(8);
    let (b, c) = rest.split_at(12);
    wire.extend_from_slice(&(a.len() as u32).to_be_bytes());
    wire.extend_from_slice(a);
    wire.extend_from_slice(&(b.len() as u32).to_be_bytes());
    wire.extend_from_slice(b);
    wire.extend_from_slice(&(0x8000_0000 | c.len() as u32).to_be_bytes());
    wire.extend_from_slice(c);
    // then 40 GETATTR calls at once, without waiting
    let mut getattr_args = Vec::new();
    root.pack(&mut getattr_args).unwrap();
    for xid in 100..140 {
        let call = rpc_call(xid, 100003, 3, 1, &getattr_args);
        wire.extend_from_slice(&(0x8000_0000 | call.len() as u32).to_be_bytes());
        wire.extend_from_slice(&call);
    }
    raw.write_all(&wire).await.unwrap();
    let mut xids = Vec::new();
    for _ in 0..41 {
        let mut mark = [0u8; 4];
        raw.read_exact(&mut mark).await.unwrap();
        let len = u32::from_be_bytes(mark) & 0x7fff_ffff;
        let mut reply = vec![0u8; len as usize];
        raw.read_exact(&mut reply).await.unwrap();
        let word = |i: usize| u32::from_be_bytes(reply[i * 4..i * 4 + 4].try_into().unwrap());
        assert_eq!((word(1), word(2), word(5)), (1, 0, 0), "accepted, success");
        assert_eq!(word(6), 0, "NFS3_OK");
        xids.push(word(0));
    }
    xids.sort();
    let expected: Vec<u32> = std::iter::once(1).chain(100..140).collect();
    assert_eq!(xids, expected);
    // a record over the limit closes the connection
    raw.write_all(&(0x8000_0000u32 | (2 * 1024 * 1024)).to_be_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 4];
    assert_eq!(raw.read(&mut buf).await.unwrap(), 0);
}

#[tokio::test]
async fn binding_a_used_port_names_the_address() {
    let fx = Fixture::start().await;
    let err = NfsServer::bind(fx.addr, fx.exports.clone())
        .await
        .err()
        .expect("the port is taken");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot listen for NFS on {}: ", fx.addr)),
        "{text}"
    );
    assert!(text.contains("in use"), "{text}");
}

#[tokio::test]
async fn after_a_restart_only_the_root_handle_resolves() {
    let fx = Fixture::start().await;
    let (id, root_dir) = fx.rw_share();
    let mut conn = fx.mount(&id).await.unwrap();
    let root = conn.root_nfs_fh3();
    let f = create_file(&mut conn, &root, "f").await;
    let first = write(&mut conn, &f, 0, b"x", stable_how::UNSTABLE)
        .await
        .unwrap();

    // a new server process: a new registry (empty name table), the same export
    let restarted = Fixture::start().await;
    restarted
        .exports
        .export(
            &id,
            ExportSpec {
                root: ExportRoot::Directory(root_dir.clone()),
                read_only: false,
                rules: vec![rule("127.0.0.1", "rw")],
                quota_bytes: None,
            },
        )
        .unwrap();
    let mut conn = restarted.mount(&id).await.unwrap();
    assert_eq!(conn.root_nfs_fh3(), root, "the root handle is the same");
    assert_eq!(
        getattr(&mut conn, &f).await.err(),
        Some(nfsstat3::NFS3ERR_STALE)
    );
    let again = lookup(&mut conn, &root, "f").await.unwrap();
    assert_eq!(again, f, "the same file gets the same handle");
    let second = write(&mut conn, &f, 0, b"y", stable_how::UNSTABLE)
        .await
        .unwrap();
    assert_ne!(
        first.verf, second.verf,
        "clients must resend uncommitted writes"
    );
}
