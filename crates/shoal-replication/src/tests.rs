//! Engine tests on real trees in temp dirs: exact copies (content, modes, mtimes, links),
//! incremental transfers, crash resume, tamper undo, promotion and adoption.

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::Path;

use super::*;

pub(crate) const MIB: usize = 1024 * 1024;

pub(crate) fn opts() -> SyncOptions {
    SyncOptions {
        delta_threshold: MIB as u64,
        block_size: 64 * 1024,
        ..SyncOptions::default()
    }
}

pub(crate) fn old_time(sec: i64) -> Ts {
    Ts {
        sec: 1_600_000_000 + sec,
        nsec: 123_456_789,
    }
}

pub(crate) fn write(path: &Path, data: &[u8], mode: u32, sec: i64) {
    fs::write(path, data).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    set_mtime(path, old_time(sec)).unwrap();
}

pub(crate) fn big_data() -> Vec<u8> {
    (0..3 * MIB as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect()
}

/// A tree with nested dirs, empty files, a big file, symlinks (one dangling), names with
/// spaces and unicode, varied modes and old mtimes.
pub(crate) fn make_tree(root: &Path) {
    fs::create_dir_all(root.join("a/b/c")).unwrap();
    fs::create_dir_all(root.join("dir with space/ünïcødé")).unwrap();
    fs::create_dir_all(root.join("empty dir")).unwrap();
    for i in 0..40 {
        let dir = [
            "a",
            "a/b",
            "a/b/c",
            "dir with space",
            "dir with space/ünïcødé",
        ][i % 5];
        let data = vec![b'x' + (i % 3) as u8; 100 + i * 37];
        write(
            &root.join(format!("{dir}/f{i}.txt")),
            &data,
            [0o644, 0o600, 0o755][i % 3],
            i as i64,
        );
    }
    write(&root.join("empty"), b"", 0o640, 1);
    write(&root.join("big.bin"), &big_data(), 0o644, 2);
    symlink("a/b", root.join("link to dir")).unwrap();
    symlink("nowhere/at/all", root.join("dangling")).unwrap();
    symlink("../f0.txt", root.join("a/b/rel")).unwrap();
    fs::set_permissions(root.join("a/b"), fs::Permissions::from_mode(0o750)).unwrap();
    for d in [
        "a/b/c",
        "a/b",
        "a",
        "dir with space/ünïcødé",
        "dir with space",
        "empty dir",
        "",
    ] {
        set_mtime(&root.join(d), old_time(100)).unwrap();
    }
}

fn setup() -> (tempfile::TempDir, PathBuf, ReplicaDir) {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    fs::create_dir(&src).unwrap();
    make_tree(&src);
    let rep = ReplicaDir::open(&tmp.path().join("replica")).unwrap();
    (tmp, src, rep)
}

fn assert_same(rep: &ReplicaDir, src: &Path) {
    let diffs = rep.verify_against(src).unwrap();
    assert!(diffs.is_empty(), "{diffs:#?}");
}

#[test]
fn initial_sync_is_an_exact_read_only_copy() {
    let (_tmp, src, rep) = setup();
    assert_eq!(rep.published().unwrap(), None);
    let r = rep.sync_from(&src, &opts()).unwrap();
    assert!(r.published_new_version && r.clean);
    assert_eq!(r.version, 1);
    assert_eq!(r.files_total, 51, "{r:?}");
    assert_eq!(r.files_transferred, r.files_total);
    assert_eq!(r.bytes_transferred, r.bytes_total);
    assert_same(&rep, &src);
    let cur = rep.current_path();
    assert_eq!(
        fs::read_link(cur.join("dangling")).unwrap(),
        Path::new("nowhere/at/all")
    );
    let m = fs::symlink_metadata(cur.join("a/f0.txt")).unwrap();
    assert_eq!(m.mode() & 0o7777, 0o444);
    let d = fs::symlink_metadata(cur.join("a/b")).unwrap();
    assert_eq!(d.mode() & 0o7777, 0o550);
    let p = rep.published().unwrap().unwrap();
    assert_eq!(
        (p.version, p.clean, p.source_point),
        (1, true, r.source_point)
    );
}

#[test]
fn incremental_sync_sends_only_changes() {
    let (_tmp, src, rep) = setup();
    rep.sync_from(&src, &opts()).unwrap();
    // Changed content (same size), deleted, renamed, chmod, touched, a 4 KiB block change.
    write(&src.join("a/f0.txt"), &[b'q'; 100], 0o644, 500);
    fs::remove_file(src.join("a/b/f1.txt")).unwrap();
    fs::rename(
        src.join("a/b/c/f2.txt"),
        src.join("dir with space/moved.txt"),
    )
    .unwrap();
    fs::set_permissions(src.join("a/f5.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    set_mtime(&src.join("a/f10.txt"), old_time(777)).unwrap();
    let mut big = big_data();
    for b in &mut big[MIB + 100..MIB + 100 + 4096] {
        *b = b.wrapping_add(1);
    }
    write(&src.join("big.bin"), &big, 0o644, 600);
    fs::remove_dir_all(src.join("empty dir")).unwrap();
    let r = rep.sync_from(&src, &opts()).unwrap();
    assert!(r.published_new_version && r.clean, "{r:?}");
    assert_eq!(r.version, 2);
    assert_same(&rep, &src);
    assert_eq!(r.files_renamed, 1, "{r:?}");
    assert_eq!(r.files_deleted, 2, "{r:?}");
    // f0 (100) + f10 touched (100 + 10 * 37) + the big file's one changed block... the 4 KiB
    // change spans one 64 KiB block only if aligned: MiB + 100 .. + 4196 stays in one block.
    assert_eq!(r.bytes_transferred, 100 + 470 + 64 * 1024, "{r:?}");
    assert_eq!(r.files_transferred, 4, "{r:?}");
    // Nothing changed now.
    let r2 = rep.sync_from(&src, &opts()).unwrap();
    assert!(!r2.published_new_version && r2.clean, "{r2:?}");
    assert_eq!(
        (r2.version, r2.files_transferred, r2.bytes_transferred),
        (2, 0, 0)
    );
    // A third sync builds from the retired first version: still exact.
    write(&src.join("a/new file"), b"new", 0o600, 9);
    let r3 = rep.sync_from(&src, &opts()).unwrap();
    assert_eq!(r3.version, 3);
    assert_same(&rep, &src);
    // The first version's slot was reused: only two versions stay.
    let versions: Vec<_> = fs::read_dir(rep.root())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().unwrap().is_dir())
        .map(|e| e.file_name())
        .collect();
    assert_eq!(versions.len(), 2, "{versions:?}");
}

#[test]
fn published_version_is_never_modified_by_later_syncs() {
    let (tmp, src, rep) = setup();
    rep.sync_from(&src, &opts()).unwrap();
    let v1 = tmp.path().join("replica/v1");
    let before = rep.verify_against(&v1).unwrap();
    assert!(before.is_empty(), "{before:?}");
    let mut big = big_data();
    big[5] ^= 1;
    write(&src.join("big.bin"), &big, 0o600, 50);
    write(&src.join("a/f0.txt"), b"changed", 0o644, 51);
    fs::set_permissions(src.join("a/b/f6.txt"), fs::Permissions::from_mode(0o700)).unwrap();
    rep.sync_from(&src, &opts()).unwrap();
    assert_eq!(fs::read(v1.join("big.bin")).unwrap(), big_data());
    assert_eq!(fs::read(v1.join("a/f0.txt")).unwrap(), vec![b'x'; 100]);
    assert_eq!(
        fs::metadata(v1.join("a/b/f6.txt")).unwrap().mode() & 0o777,
        0o444
    );
    assert_same(&rep, &src);
}

#[test]
fn what_the_previous_sync_wrote_is_linked_from_the_published_version_not_sent_again() {
    let (tmp, src, rep) = setup();
    rep.sync_from(&src, &opts()).unwrap();
    write(&src.join("a/f0.txt"), &[b'q'; 300], 0o644, 500);
    let mut big = big_data();
    big[10] ^= 1;
    write(&src.join("big.bin"), &big, 0o644, 500);
    let r2 = rep.sync_from(&src, &opts()).unwrap();
    let block = 64 * 1024;
    assert_eq!(
        (r2.version, r2.bytes_transferred),
        (2, 300 + block),
        "{r2:?}"
    );
    let v2_ino = fs::metadata(tmp.path().join("replica/v2/a/f0.txt"))
        .unwrap()
        .ino();
    // Sync 3 builds from v1, which lacks sync 2's changes: f0 comes from v2 by a link; the
    // large file keeps its own copy and gets the missing block as a delta.
    write(&src.join("a/f10.txt"), b"ten", 0o644, 501);
    let r3 = rep.sync_from(&src, &opts()).unwrap();
    assert_eq!(r3.version, 3);
    assert_eq!(
        (r3.files_transferred, r3.bytes_transferred),
        (2, 3 + block),
        "{r3:?}"
    );
    let v3 = tmp.path().join("replica/v3/a/f0.txt");
    assert_eq!(fs::metadata(&v3).unwrap().ino(), v2_ino);
    let big_ino = |v: &str| {
        fs::metadata(tmp.path().join(format!("replica/{v}/big.bin")))
            .unwrap()
            .ino()
    };
    assert_ne!(big_ino("v3"), big_ino("v2"));
    assert_same(&rep, &src);
    // The shared inode is never written in place: sync 4 (staging = v2) replaces it, and
    // the published v3 keeps its content.
    write(&src.join("a/f0.txt"), &[b'r'; 300], 0o644, 502);
    let r4 = rep.sync_from(&src, &opts()).unwrap();
    assert_eq!(r4.version, 4);
    assert_eq!(fs::read(&v3).unwrap(), vec![b'q'; 300]);
    assert_same(&rep, &src);
    // A published copy replaced behind the engine's back (another inode, same content)
    // is tampered: sync 5 re-creates it and copies f0 from the source, not the link.
    let v4 = tmp.path().join("replica/v4/a/f0.txt");
    fs::set_permissions(v4.parent().unwrap(), fs::Permissions::from_mode(0o755)).unwrap();
    fs::rename(&v4, tmp.path().join("aside")).unwrap();
    fs::copy(tmp.path().join("aside"), &v4).unwrap();
    set_mtime(&v4, old_time(502)).unwrap();
    fs::set_permissions(&v4, fs::Permissions::from_mode(0o444)).unwrap();
    fs::set_permissions(v4.parent().unwrap(), fs::Permissions::from_mode(0o550)).unwrap();
    write(&src.join("a/f10.txt"), b"eleven", 0o644, 503);
    let r5 = rep.sync_from(&src, &opts()).unwrap();
    // f0 and its directory (whose mtime the replacement moved).
    assert_eq!((r5.version, r5.tampered), (5, 2), "{r5:?}");
    assert_eq!(r5.bytes_transferred, 300 + 6, "{r5:?}");
    assert_same(&rep, &src);
    // A large file the base lacks comes from the published copy's differing blocks, not
    // from the source: a source changed behind the size-and-mtime check (which a walk
    // cannot see either) is not read.
    let sneaky = {
        let mut b = big.clone();
        b[20] ^= 1;
        b
    };
    write(&src.join("big.bin"), &big, 0o644, 600);
    let ra = rep.sync_from(&src, &opts()).unwrap(); // the big file's delta from the source
    write(&src.join("big.bin"), &sneaky, 0o644, 600);
    write(&src.join("a/f11.txt"), b"eleven", 0o644, 601);
    let rb = rep.sync_from(&src, &opts()).unwrap(); // from ra's copy
    assert_eq!(rb.version, ra.version + 1);
    assert_eq!(
        fs::read(tmp.path().join(format!("replica/v{}/big.bin", rb.version))).unwrap(),
        big,
        "{rb:?}"
    );
    // Both copies hold the same blocks already (only the mtime moved): nothing rewritten.
    assert_eq!(rb.bytes_transferred, 6, "{rb:?}");
    write(&src.join("big.bin"), &big, 0o644, 602);
    rep.sync_from(&src, &opts()).unwrap();
    assert_same(&rep, &src);
}

#[test]
fn racy_change_with_same_size_and_mtime_is_caught() {
    let (_tmp, src, rep) = setup();
    // A window far above the time this test takes, so "fresh" is racy however slow the
    // machine is (the default is sized for the filesystem's timestamp granularity).
    let opts = SyncOptions {
        racy_window: Duration::from_secs(3600),
        ..opts()
    };
    // Fresh mtime: within the racy window of the scan.
    fs::write(src.join("fresh"), b"aaaa").unwrap();
    let mtime = walk::ts_mtime(&fs::metadata(src.join("fresh")).unwrap());
    rep.sync_from(&src, &opts).unwrap();
    // Rewritten in the same mtime tick: size and mtime equal, content not.
    fs::write(src.join("fresh"), b"bbbb").unwrap();
    set_mtime(&src.join("fresh"), mtime).unwrap();
    set_mtime(&src, old_time(100)).unwrap();
    let r = rep.sync_from(&src, &opts).unwrap();
    assert!(r.published_new_version, "{r:?}");
    assert_eq!(fs::read(rep.current_path().join("fresh")).unwrap(), b"bbbb");
    assert_same(&rep, &src);
}

#[test]
fn interrupted_sync_keeps_the_last_version_and_the_next_finishes() {
    let (tmp, src, rep) = setup();
    rep.sync_from(&src, &opts()).unwrap();
    let reference = ReplicaDir::open(&tmp.path().join("reference")).unwrap();
    reference.sync_from(&src, &opts()).unwrap();
    for i in 0..40 {
        let dir = [
            "a",
            "a/b",
            "a/b/c",
            "dir with space",
            "dir with space/ünïcødé",
        ][i % 5];
        write(
            &src.join(format!("{dir}/f{i}.txt")),
            b"rewritten",
            0o644,
            1000 + i as i64,
        );
    }
    let mut big = big_data();
    big[2 * MIB] ^= 0xff;
    write(&src.join("big.bin"), &big, 0o644, 2000);
    let crash = SyncOptions {
        fail_after_entries: Some(7),
        ..opts()
    };
    assert!(rep.sync_from(&src, &crash).is_err());
    // Readers still see version 1, exactly.
    assert_eq!(rep.published().unwrap().unwrap().version, 1);
    let diffs = rep
        .verify_against(&reference.published().unwrap().unwrap().path)
        .unwrap();
    assert!(diffs.is_empty(), "{diffs:#?}");
    // The next sync resumes the leftover staging tree and publishes an exact copy.
    let r = rep.sync_from(&src, &opts()).unwrap();
    assert!(r.published_new_version && r.clean, "{r:?}");
    assert_eq!(r.version, 2);
    assert_same(&rep, &src);
    let again = rep.sync_from(&src, &opts()).unwrap();
    assert!(!again.published_new_version, "{again:?}");
}

#[test]
fn tampering_with_the_published_tree_is_undone() {
    let (_tmp, src, rep) = setup();
    rep.sync_from(&src, &opts()).unwrap();
    let cur = rep.current_path();
    let f = cur.join("a/f0.txt");
    fs::set_permissions(&f, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&f, b"evil").unwrap();
    let d = cur.join("a");
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    fs::write(d.join("planted"), b"x").unwrap();
    let r = rep.sync_from(&src, &opts()).unwrap();
    assert!(r.tampered >= 2, "{r:?}");
    assert!(r.published_new_version);
    assert_same(&rep, &src);
    // The retired version carried the tamper marks: the next build from it is exact too.
    write(&src.join("a/f5.txt"), b"next", 0o644, 3);
    let r2 = rep.sync_from(&src, &opts()).unwrap();
    assert_eq!(r2.tampered, 0, "{r2:?}");
    assert_same(&rep, &src);
    assert!(!rep.sync_from(&src, &opts()).unwrap().published_new_version);
}

#[test]
fn unavailable_source_leaves_the_published_version() {
    let (tmp, src, rep) = setup();
    rep.sync_from(&src, &opts()).unwrap();
    let err = rep
        .sync_from(&tmp.path().join("gone"), &opts())
        .unwrap_err();
    assert!(matches!(err, SyncError::SourceUnavailable { .. }), "{err}");
    assert_eq!(rep.published().unwrap().unwrap().version, 1);
    assert_same(&rep, &src);
}

#[test]
fn promote_and_adopt_round_trip() {
    let (tmp, src, rep) = setup();
    rep.sync_from(&src, &opts()).unwrap();
    let dest = tmp.path().join("promoted");
    rep.promote_into(&dest).unwrap();
    assert!(!rep.root().exists());
    rep.promote_into(&dest).unwrap();
    // Modes are the source's again (writable).
    assert_eq!(
        fs::metadata(dest.join("a/f0.txt")).unwrap().mode() & 0o777,
        0o644
    );
    assert_eq!(
        fs::metadata(dest.join("a/b")).unwrap().mode() & 0o777,
        0o750
    );
    let plain = ReplicaDir::open(&tmp.path().join("plain")).unwrap();
    plain
        .sync_from(
            &dest,
            &SyncOptions {
                read_only: false,
                ..opts()
            },
        )
        .unwrap();
    let diffs = plain.verify_against(&src).unwrap();
    assert!(diffs.is_empty(), "{diffs:#?}");

    // The former active (src) is demoted: adopted as a replica of the promoted tree.
    let demoted = ReplicaDir::open(&tmp.path().join("demoted")).unwrap();
    let src_copy_root = tmp.path().join("src-copy");
    let keep = ReplicaDir::open(&src_copy_root).unwrap();
    keep.sync_from(
        &src,
        &SyncOptions {
            read_only: false,
            ..opts()
        },
    )
    .unwrap();
    let p = demoted.adopt(&src, &opts()).unwrap();
    assert_eq!(p.version, 1);
    assert!(!src.exists());
    let diffs = demoted
        .verify_against(&keep.published().unwrap().unwrap().path)
        .unwrap();
    assert!(diffs.is_empty(), "{diffs:#?}");
    write(&dest.join("a/f0.txt"), b"after promotion", 0o644, 42);
    let r = demoted.sync_from(&dest, &opts()).unwrap();
    assert_eq!(r.files_transferred, 1, "{r:?}");
    assert_same(&demoted, &dest);
    demoted.remove().unwrap();
    assert!(!demoted.root().exists());
}

#[test]
fn kind_changes_and_directory_renames() {
    let (_tmp, src, rep) = setup();
    rep.sync_from(&src, &opts()).unwrap();
    fs::rename(src.join("dir with space"), src.join("renamed dir")).unwrap();
    fs::remove_file(src.join("empty")).unwrap();
    fs::create_dir(src.join("empty")).unwrap();
    fs::remove_file(src.join("dangling")).unwrap();
    symlink("elsewhere", src.join("dangling")).unwrap();
    fs::remove_dir_all(src.join("a/b/c")).unwrap();
    fs::write(src.join("a/b/c"), b"now a file").unwrap();
    let r = rep.sync_from(&src, &opts()).unwrap();
    assert_same(&rep, &src);
    assert!(r.files_renamed >= 1, "{r:?}");
    // The renamed directory's files were not re-sent.
    assert!(r.bytes_transferred < 100, "{r:?}");
}

#[test]
fn leftovers_of_an_interrupted_publish_or_spare_build_are_removed() {
    let (_tmp, src, rep) = setup();
    rep.sync_from(&src, &opts()).unwrap();
    // A spare slot whose build died (read-only dirs, like a real one) and the temporaries
    // of a publish that never happened.
    let spare = rep.root().join("spare-999999");
    fs::create_dir_all(spare.join("d")).unwrap();
    fs::write(spare.join("d/f"), b"x").unwrap();
    fs::set_permissions(spare.join("d"), fs::Permissions::from_mode(0o555)).unwrap();
    fs::write(rep.root().join("v7.manifest.tmp"), b"torn").unwrap();
    write(&src.join("a/f0.txt"), b"changed", 0o644, 700);
    let r = rep.sync_from(&src, &opts()).unwrap();
    assert!(r.published_new_version && r.clean, "{r:?}");
    assert_same(&rep, &src);
    assert!(!spare.exists());
    assert!(!rep.root().join("v7.manifest.tmp").exists());
    assert!(!rep.root().join("state.json.tmp").exists());
    // The nothing-changed path moves the source point without a new version.
    let again = rep.sync_from(&src, &opts()).unwrap();
    assert!(!again.published_new_version && again.clean, "{again:?}");
    let p = rep.published().unwrap().unwrap();
    assert_eq!((p.version, p.source_point), (r.version, again.source_point));
}

/// Regression (failpoint `sync::after_publish` on a replica's first sync): the node died
/// after publishing v1 and before naming the spare it built alongside, leaving `spare-<pid>`
/// and `v0.manifest.tmp`; the re-run finds nothing changed, and the temporary stayed for good.
#[test]
fn a_nothing_changed_sync_removes_the_leftovers_of_a_crash_after_publishing() {
    let (_tmp, src, rep) = setup();
    rep.sync_from(&src, &opts()).unwrap();
    let v0 = rep.root().join("v0");
    fs::rename(&v0, rep.root().join("spare-999999")).unwrap();
    fs::rename(
        rep.root().join("v0.manifest"),
        rep.root().join("v0.manifest.tmp"),
    )
    .unwrap();
    let again = rep.sync_from(&src, &opts()).unwrap();
    assert!(!again.published_new_version && again.clean, "{again:?}");
    let mut names: Vec<String> = fs::read_dir(rep.root())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(
        names
            .iter()
            .all(|n| !n.contains("tmp") && !n.starts_with("spare-")),
        "{names:?}"
    );
    assert_same(&rep, &src);
}

fn paths(list: &[&str]) -> Vec<Vec<u8>> {
    list.iter().map(|p| p.as_bytes().to_vec()).collect()
}

#[test]
fn a_change_list_sync_sends_the_listed_changes_without_walking() {
    let (_tmp, src, rep) = setup();
    let first = rep.sync_from(&src, &opts()).unwrap();
    assert!(first.walked && first.examined == 52, "{first:?}");
    // The same kinds of change as the walking test, each named by the journal's paths.
    write(&src.join("a/f0.txt"), &[b'q'; 100], 0o644, 500);
    fs::remove_file(src.join("a/b/f1.txt")).unwrap();
    fs::rename(
        src.join("a/b/c/f2.txt"),
        src.join("dir with space/moved.txt"),
    )
    .unwrap();
    fs::set_permissions(src.join("a/f5.txt"), fs::Permissions::from_mode(0o600)).unwrap();
    fs::remove_dir_all(src.join("empty dir")).unwrap();
    // A directory with content renamed into place: the list names only its new root.
    fs::create_dir_all(src.join("incoming/x")).unwrap();
    write(&src.join("incoming/x/deep.txt"), b"deep", 0o644, 3);
    write(&src.join("incoming/top.txt"), b"top", 0o644, 4);
    fs::rename(src.join("incoming"), src.join("arrived")).unwrap();
    let changed = paths(&[
        "a/f0.txt",
        "a/b/f1.txt",
        "a/b/c/f2.txt",
        "dir with space/moved.txt",
        "/a/f5.txt",
        "empty dir",
        "arrived",
        "a/f0.txt",
    ]);
    let r = rep.sync_changes_from(&src, &changed, &opts()).unwrap();
    assert!(r.published_new_version && r.clean, "{r:?}");
    assert!(!r.walked, "{r:?}");
    // 7 distinct paths, their parents (root, a, a/b, a/b/c, dir with space) and the 3
    // entries below the directory that arrived whole.
    assert_eq!(r.examined, 7 + 5 + 3, "{r:?}");
    // moved.txt, and whatever else reuses a freed inode (then its content is compared).
    assert!(r.files_renamed >= 1, "{r:?}");
    assert_same(&rep, &src);

    // Nothing listed, nothing changed: no new version, nothing but the root looked at.
    let r = rep.sync_changes_from(&src, &[], &opts()).unwrap();
    assert!(!r.published_new_version && !r.walked, "{r:?}");
    assert_eq!(r.examined, 0, "{r:?}");
    assert_same(&rep, &src);

    // A change behind the list's back is not seen by a change-list sync, only by a walk.
    write(&src.join("a/f3.txt"), b"changed unseen", 0o644, 800);
    let r = rep.sync_changes_from(&src, &[], &opts()).unwrap();
    assert!(!r.published_new_version, "{r:?}");
    assert!(!rep.verify_against(&src).unwrap().is_empty());
    let r = rep.sync_from(&src, &opts()).unwrap();
    assert!(r.published_new_version && r.walked, "{r:?}");
    assert_same(&rep, &src);
}

#[test]
fn a_change_list_sync_rechecks_what_the_last_sync_could_not_vouch_for() {
    let (_tmp, src, rep) = setup();
    let opts = SyncOptions {
        racy_window: Duration::from_secs(3600),
        ..opts()
    };
    fs::write(src.join("fresh"), b"aaaa").unwrap();
    let mtime = walk::ts_mtime(&fs::metadata(src.join("fresh")).unwrap());
    rep.sync_from(&src, &opts).unwrap();
    // Rewritten within the same tick and left out of the list: still caught, because the
    // manifest flags it racy.
    fs::write(src.join("fresh"), b"bbbb").unwrap();
    set_mtime(&src.join("fresh"), mtime).unwrap();
    set_mtime(&src, old_time(100)).unwrap();
    let r = rep.sync_changes_from(&src, &[], &opts).unwrap();
    assert!(r.published_new_version && !r.walked, "{r:?}");
    assert_eq!(fs::read(rep.current_path().join("fresh")).unwrap(), b"bbbb");
    assert_same(&rep, &src);
}

#[test]
fn a_change_list_sync_without_a_published_version_walks() {
    let (_tmp, src, rep) = setup();
    let r = rep
        .sync_changes_from(&src, &paths(&["a"]), &opts())
        .unwrap();
    assert!(r.walked && r.published_new_version, "{r:?}");
    assert_same(&rep, &src);
    // Paths that would leave the tree are ignored (and cost a look at the root only).
    let r = rep
        .sync_changes_from(&src, &paths(&["../outside", "a/../../x"]), &opts())
        .unwrap();
    assert!(!r.published_new_version && !r.walked, "{r:?}");
    assert_eq!(r.examined, 1, "{r:?}");
}

#[test]
fn a_change_list_sync_handles_kind_changes() {
    let (_tmp, src, rep) = setup();
    rep.sync_from(&src, &opts()).unwrap();
    // A directory replaced by a file, a file by a directory with content, a file by a link.
    fs::remove_dir_all(src.join("a/b/c")).unwrap();
    write(&src.join("a/b/c"), b"now a file", 0o644, 5);
    fs::remove_file(src.join("empty")).unwrap();
    fs::create_dir(src.join("empty")).unwrap();
    write(&src.join("empty/inside"), b"in", 0o644, 6);
    fs::remove_file(src.join("a/f5.txt")).unwrap();
    symlink("f0.txt", src.join("a/f5.txt")).unwrap();
    let changed = paths(&["a/b/c", "empty", "a/f5.txt"]);
    let r = rep.sync_changes_from(&src, &changed, &opts()).unwrap();
    assert!(r.published_new_version && !r.walked, "{r:?}");
    assert_same(&rep, &src);
}
