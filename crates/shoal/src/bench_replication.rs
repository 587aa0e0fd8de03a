//! `shoal bench replication`: the `local` back end's replication engine against `cp -a` and
//! `rsync -a` on the same tree, in one run: initial copy, 1% of the files changed, nothing
//! changed, and 4 KiB changed in the middle of a large file; then 1% changed and nothing
//! changed again, synced from a change list (what the NFS data plane's journal gives)
//! instead of a walk. Every tool reads the same warm
//! source (no cache is dropped); dirty pages are flushed with sync(2) before each timed run,
//! outside the timing, so no tool pays for another's writes. The engine's own timings include
//! its `syncfs` (it publishes only durable versions); `cp` and `rsync` do not flush, so the
//! initial step also times `cp -a` followed by `sync` (one timing for both) as the durable
//! reference. With `SHOAL_BENCH_TRACE=1` the engine prints the time of each phase of each sync.

use std::fs;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
use shoal_replication::{ReplicaDir, SyncOptions, SyncReport};

/// Name of the large file in the generated tree.
const BIG_FILE: &str = "big.bin";

/// Settings of one run.
#[derive(Debug, Clone)]
pub struct ReplicationBench {
    /// Scratch directory (created; removed at the end). `None`: a temp dir under `.`.
    pub dir: Option<PathBuf>,
    /// Small files in the tree.
    pub files: usize,
    /// Size of the one large file, in GiB (0 for none).
    pub big_gib: u64,
    /// Seed of the generated data.
    pub seed: u64,
}

/// One row of the result table.
#[derive(Debug, Clone)]
pub struct Row {
    /// Scenario.
    pub step: &'static str,
    /// The engine's seconds.
    pub shoal: f64,
    /// The comparison tool and its seconds.
    pub tools: Vec<(&'static str, f64)>,
    /// The engine's report of the step.
    pub report: SyncReport,
}

/// xorshift64*: reproducible data without a dependency.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    pub(crate) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub(crate) fn fill(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }

    /// Log-uniform in [lo, hi].
    fn log_uniform(&mut self, lo: f64, hi: f64) -> u64 {
        let u = (self.next() >> 11) as f64 / (1u64 << 53) as f64;
        (lo * (hi / lo).powf(u)) as u64
    }
}

pub(crate) fn require_tool(name: &str) -> anyhow::Result<()> {
    let ok = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        bail!("`{name}` is required by this benchmark but was not found on PATH");
    }
    Ok(())
}

/// Flushes every dirty page (sync(1)), outside the timings.
pub(crate) fn flush() {
    let _ = Command::new("sync").status();
}

pub(crate) fn timed_cmd(args: &[&str]) -> anyhow::Result<f64> {
    timed_cmds(&[args])
}

/// Runs the commands one after the other and returns their total time.
fn timed_cmds(cmds: &[&[&str]]) -> anyhow::Result<f64> {
    flush();
    let started = Instant::now();
    for args in cmds {
        let status = Command::new(args[0])
            .args(&args[1..])
            .status()
            .with_context(|| format!("running {}", args.join(" ")))?;
        if !status.success() {
            bail!("{} failed: {status}", args.join(" "));
        }
    }
    Ok(started.elapsed().as_secs_f64())
}

fn timed_sync(
    replica: &ReplicaDir,
    src: &Path,
    opts: &SyncOptions,
) -> anyhow::Result<(f64, SyncReport)> {
    flush();
    let started = Instant::now();
    let report = replica.sync_from(src, opts)?;
    Ok((started.elapsed().as_secs_f64(), report))
}

fn timed_change_sync(
    replica: &ReplicaDir,
    src: &Path,
    changed: &[Vec<u8>],
    opts: &SyncOptions,
) -> anyhow::Result<(f64, SyncReport)> {
    flush();
    let started = Instant::now();
    let report = replica.sync_changes_from(src, changed, opts)?;
    Ok((started.elapsed().as_secs_f64(), report))
}

pub(crate) fn s(p: &Path) -> &str {
    p.to_str().expect("scratch paths are UTF-8")
}

/// Builds the source tree: `files` files of log-uniform sizes (1 KiB – 1 MiB) in 50 × 7
/// directories, plus one `big_gib` GiB file (none for 0). Returns the small files' paths.
pub(crate) fn build_tree(
    src: &Path,
    files: usize,
    big_gib: u64,
    rng: &mut Rng,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut paths = Vec::with_capacity(files);
    let mut buf = vec![0u8; 1 << 20];
    for i in 0..files {
        let dir = src.join(format!("d{:02}/s{}", i % 50, (i / 50) % 7));
        if i < 350 {
            fs::create_dir_all(&dir)?;
        }
        let size = rng.log_uniform(1024.0, 1024.0 * 1024.0) as usize;
        rng.fill(&mut buf[..size]);
        let path = dir.join(format!("f{i:06}.dat"));
        fs::write(&path, &buf[..size])?;
        paths.push(path);
    }
    if big_gib > 0 {
        let mut big = fs::File::create(src.join(BIG_FILE))?;
        for _ in 0..big_gib * 1024 {
            rng.fill(&mut buf);
            big.write_all(&buf)?;
        }
    }
    Ok(paths)
}

/// Step 2: changes 1% of the small files (`paths`), half overwritten at the start (1 KiB),
/// half appended to (4 KiB). Returns the files changed.
pub(crate) fn change_files(paths: &[PathBuf], rng: &mut Rng) -> anyhow::Result<Vec<PathBuf>> {
    let mut buf = vec![0u8; 4096];
    let count = (paths.len() / 100).max(1);
    let mut changed = Vec::with_capacity(count);
    for k in 0..count {
        let idx = (rng.next() % paths.len() as u64) as usize;
        changed.push(paths[idx].clone());
        rng.fill(&mut buf);
        let f = fs::OpenOptions::new().write(true).open(&paths[idx])?;
        if k % 2 == 0 {
            f.write_all_at(&buf[..1024], 0)?;
        } else {
            let len = f.metadata()?.len();
            f.write_all_at(&buf, len)?;
        }
    }
    Ok(changed)
}

/// Step 4: overwrites 4 KiB in the middle of the `big_gib` GiB file of the tree `src`.
pub(crate) fn change_big(src: &Path, big_gib: u64, rng: &mut Rng) -> anyhow::Result<()> {
    let mut buf = vec![0u8; 4096];
    let big = fs::OpenOptions::new()
        .write(true)
        .open(src.join(BIG_FILE))?;
    rng.fill(&mut buf);
    big.write_all_at(&buf, big_gib * (1 << 29))?;
    Ok(())
}

/// Runs the four steps and returns one row each.
pub fn run(settings: &ReplicationBench) -> anyhow::Result<Vec<Row>> {
    require_tool("cp")?;
    require_tool("rsync")?;
    let scratch = match &settings.dir {
        Some(d) => {
            fs::create_dir_all(d)?;
            tempfile::tempdir_in(d)?
        }
        None => tempfile::tempdir_in(".")?,
    };
    let result = run_in(scratch.path(), settings);
    // The replica is read-only: remove it with the engine, then the rest.
    if let Ok(replica) = ReplicaDir::open(&scratch.path().join("replica")) {
        let _ = replica.remove();
    }
    drop(scratch);
    result
}

fn run_in(root: &Path, settings: &ReplicationBench) -> anyhow::Result<Vec<Row>> {
    let mut rng = Rng(settings.seed.max(1));
    let src = root.join("src");
    fs::create_dir(&src)?;
    eprintln!("building the source tree in {} ...", src.display());
    let paths = build_tree(&src, settings.files, settings.big_gib, &mut rng)?;
    let cp_dst = root.join("cp");
    let rsync_dst = root.join("rsync");
    let replica = ReplicaDir::open(&root.join("replica"))?;
    let opts = SyncOptions::default();
    let src_slash = format!("{}/", s(&src));
    let rsync_slash = format!("{}/", s(&rsync_dst));
    let mut rows = Vec::new();

    // 1. Initial.
    eprintln!("initial copies ...");
    let cp = timed_cmd(&["cp", "-a", s(&src), s(&cp_dst)])?;
    fs::remove_dir_all(&cp_dst)?;
    let cp_sync = timed_cmds(&[&["cp", "-a", s(&src), s(&cp_dst)], &["sync"]])?;
    fs::remove_dir_all(&cp_dst)?;
    let rs = timed_cmd(&["rsync", "-a", &src_slash, &rsync_slash])?;
    let (sh, report) = timed_sync(&replica, &src, &opts)?;
    rows.push(Row {
        step: "initial",
        shoal: sh,
        tools: vec![("cp -a", cp), ("cp -a; sync", cp_sync), ("rsync -a", rs)],
        report,
    });

    // 2. 1% of the files changed (half overwritten at the start, half appended to).
    change_files(&paths, &mut rng)?;
    let rs = timed_cmd(&["rsync", "-a", &src_slash, &rsync_slash])?;
    let (sh, report) = timed_sync(&replica, &src, &opts)?;
    rows.push(Row {
        step: "1% of files changed",
        shoal: sh,
        tools: vec![("rsync -a", rs)],
        report,
    });

    // 3. Nothing changed.
    let rs = timed_cmd(&["rsync", "-a", &src_slash, &rsync_slash])?;
    let (sh, report) = timed_sync(&replica, &src, &opts)?;
    rows.push(Row {
        step: "nothing changed",
        shoal: sh,
        tools: vec![("rsync -a", rs)],
        report,
    });

    // 4. 4 KiB in the middle of the big file.
    if settings.big_gib > 0 {
        change_big(&src, settings.big_gib, &mut rng)?;
        let rs = timed_cmd(&[
            "rsync",
            "-a",
            "--inplace",
            "--no-whole-file",
            &src_slash,
            &rsync_slash,
        ])?;
        let (sh, report) = timed_sync(&replica, &src, &opts)?;
        rows.push(Row {
            step: "4 KiB changed in the big file",
            shoal: sh,
            tools: vec![("rsync -a --inplace --no-whole-file", rs)],
            report,
        });
    }

    // 5-6. The same with the change list the NFS data plane's journal would give: the
    // published manifest stands for the source, only the listed paths are looked at.
    let changed = change_files(&paths, &mut rng)?;
    let listed: Vec<Vec<u8>> = changed
        .iter()
        .map(|p| {
            use std::os::unix::ffi::OsStrExt;
            p.strip_prefix(&src)
                .expect("a file of the source")
                .as_os_str()
                .as_bytes()
                .to_vec()
        })
        .collect();
    let rs = timed_cmd(&["rsync", "-a", &src_slash, &rsync_slash])?;
    let (sh, report) = timed_change_sync(&replica, &src, &listed, &opts)?;
    rows.push(Row {
        step: "1% of files changed, change list",
        shoal: sh,
        tools: vec![("rsync -a", rs)],
        report,
    });
    let rs = timed_cmd(&["rsync", "-a", &src_slash, &rsync_slash])?;
    let (sh, report) = timed_change_sync(&replica, &src, &[], &opts)?;
    rows.push(Row {
        step: "nothing changed, change list",
        shoal: sh,
        tools: vec![("rsync -a", rs)],
        report,
    });

    let diffs = replica.verify_against(&src)?;
    if !diffs.is_empty() {
        bail!(
            "the replica differs from the source: {:?}",
            &diffs[..diffs.len().min(5)]
        );
    }
    Ok(rows)
}

/// Prints the rows as a Markdown table.
pub fn print(rows: &[Row]) {
    println!("| step | shoal s | tool | tool s | shoal/tool | files sent | bytes sent |");
    println!("|---|---:|---|---:|---:|---:|---:|");
    for r in rows {
        for (tool, secs) in &r.tools {
            println!(
                "| {} | {:.3} | `{}` | {:.3} | {:.2} | {} | {} |",
                r.step,
                r.shoal,
                tool,
                secs,
                r.shoal / secs,
                r.report.files_transferred,
                r.report.bytes_transferred
            );
        }
    }
    if let Some(first) = rows.first() {
        println!(
            "\nsource: {} entries, {:.2} GB",
            first.report.files_total,
            first.report.bytes_total as f64 / 1e9
        );
    }
}
