//! The two-namespace lab of the network benchmarks (`bench replication-peer`, `bench nfs`):
//! namespaces `A` and `B` (`ip netns add`) joined by a veth pair with one /24 address each
//! and nothing else (no route to the host's network, so the addresses cannot clash with
//! anything), the serving processes started in A, and their removal.
//!
//! The lab is removed when dropped, also on errors; [`interrupt`] (for SIGINT or SIGTERM)
//! kills what runs in the namespaces so that the step under way fails and the run cleans
//! up; a run killed outright leaves its namespaces to be swept by the next run of the same
//! benchmark (namespace names carry the pid of the run that made them).

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

/// Set by [`interrupt`]: the run stops at its next step.
static STOPPED: AtomicBool = AtomicBool::new(false);
/// Namespaces of the running lab, for [`interrupt`].
static ACTIVE: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Stops a running benchmark (for SIGINT/SIGTERM): kills every process in its namespaces,
/// so the step under way fails and the run removes the lab and its scratch dir.
pub fn interrupt() {
    STOPPED.store(true, Ordering::SeqCst);
    let names = ACTIVE.lock().map(|a| a.clone()).unwrap_or_default();
    for ns in names {
        kill_all_in(&ns);
    }
}

/// Fails once [`interrupt`] was called.
pub(crate) fn check_stopped() -> anyhow::Result<()> {
    if STOPPED.load(Ordering::SeqCst) {
        bail!("interrupted");
    }
    Ok(())
}

/// Runs `ip args`; the error carries its stderr.
pub(crate) fn ip(args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .context("running ip")?;
    if !out.status.success() {
        bail!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// SIGKILLs every process in namespace `ns` (a namespace lives on while a process is in it).
fn kill_all_in(ns: &str) {
    let pids = ip(&["netns", "pids", ns]).unwrap_or_default();
    for pid in pids.split_whitespace() {
        let _ = Command::new("kill")
            .args(["-KILL", pid])
            .stderr(Stdio::null())
            .status();
    }
}

fn remove_netns(ns: &str) {
    kill_all_in(ns);
    // Killed processes may take a moment to leave the namespace.
    for _ in 0..50 {
        if ip(&["netns", "pids", ns]).is_ok_and(|p| p.trim().is_empty()) {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    if let Err(err) = ip(&["netns", "del", ns]) {
        eprintln!("bench: could not remove namespace {ns}: {err}");
    }
}

/// Whether process `pid` runs (a zombie does not).
fn alive(pid: &str) -> bool {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name.
    let state = stat
        .rsplit_once(") ")
        .and_then(|(_, rest)| rest.chars().next());
    state.is_some_and(|s| s != 'Z' && s != 'X')
}

/// Removes the namespaces named `<prefix><pid>-...` of earlier runs whose process is gone
/// (killed outright).
fn sweep_stale(prefix: &str) {
    let list = ip(&["netns", "list"]).unwrap_or_default();
    for line in list.lines() {
        let Some(name) = line.split_whitespace().next() else {
            continue;
        };
        let Some(pid) = name
            .strip_prefix(prefix)
            .and_then(|rest| rest.split('-').next())
        else {
            continue;
        };
        if !alive(pid) {
            eprintln!("bench: removing namespace {name} left by an earlier run");
            remove_netns(name);
        }
    }
}

/// How a benchmark names and addresses its lab.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LabSpec {
    /// Namespaces are `<prefix><pid>-a` and `<prefix><pid>-b`; unique per benchmark.
    pub prefix: &'static str,
    /// The veth ends are `<veth_a><pid>` and `<veth_b><pid>` (at most 15 characters).
    pub veth_a: &'static str,
    pub veth_b: &'static str,
    /// Address of A's end (/24).
    pub addr_a: &'static str,
    /// Address of B's end (/24, same network).
    pub addr_b: &'static str,
}

/// The two namespaces, their veth pair and the servers in A; all removed on drop.
pub(crate) struct Lab {
    pub a: String,
    pub b: String,
    spec: LabSpec,
    /// Serving processes in A, by name, each with its log file.
    servers: Vec<(&'static str, Child, PathBuf)>,
}

impl Lab {
    pub(crate) fn create(spec: LabSpec) -> anyhow::Result<Lab> {
        sweep_stale(spec.prefix);
        let pid = std::process::id();
        let lab = Lab {
            a: format!("{}{pid}-a", spec.prefix),
            b: format!("{}{pid}-b", spec.prefix),
            spec,
            servers: Vec::new(),
        };
        if let Ok(mut active) = ACTIVE.lock() {
            active.extend([lab.a.clone(), lab.b.clone()]);
        }
        ip(&["netns", "add", &lab.a])?;
        ip(&["netns", "add", &lab.b])?;
        let (veth_a, veth_b) = (
            format!("{}{pid}", spec.veth_a),
            format!("{}{pid}", spec.veth_b),
        );
        ip(&[
            "link", "add", &veth_a, "netns", &lab.a, "type", "veth", "peer", "name", &veth_b,
            "netns", &lab.b,
        ])?;
        for (ns, dev, addr) in [
            (&lab.a, &veth_a, spec.addr_a),
            (&lab.b, &veth_b, spec.addr_b),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{addr}/24"), "dev", dev])?;
            ip(&["-n", ns, "link", "set", "dev", dev, "up"])?;
            ip(&["-n", ns, "link", "set", "dev", "lo", "up"])?;
        }
        Ok(lab)
    }

    /// `program` to be run in namespace `ns`.
    pub(crate) fn exec_in(ns: &str, program: &str) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", ns, program]);
        command
    }

    /// Starts a server in A (its output goes to `log`) and waits until `port` accepts
    /// connections from B.
    pub(crate) fn start_server(
        &mut self,
        name: &'static str,
        program: &str,
        args: &[&str],
        log: PathBuf,
        port: u16,
    ) -> anyhow::Result<()> {
        let out = fs::File::create(&log)?;
        let child = Self::exec_in(&self.a, program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .with_context(|| format!("starting {name}"))?;
        self.servers.push((name, child, log));
        self.wait_listening(port)
    }

    /// Waits until `port` of A accepts connections from B; fails if the server started
    /// last exits first or 15 s pass.
    pub(crate) fn wait_listening(&mut self, port: u16) -> anyhow::Result<()> {
        let addr_a = self.spec.addr_a;
        let deadline = Instant::now() + Duration::from_secs(15);
        let probe = format!("exec 3<>/dev/tcp/{addr_a}/{port}");
        loop {
            let up = Self::exec_in(&self.b, "bash")
                .args(["-c", &probe])
                .stdin(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|st| st.success());
            if up {
                return Ok(());
            }
            let Some((name, child, log)) = self.servers.last_mut() else {
                bail!("no server started");
            };
            let exited = child.try_wait().ok().flatten();
            if exited.is_some() || Instant::now() > deadline {
                let text = fs::read_to_string(&*log).unwrap_or_default();
                bail!(
                    "{name} did not start listening on {addr_a}:{port} ({}); its log:\n{text}",
                    exited.map_or("timed out".to_owned(), |st| st.to_string())
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for (name, child, _) in &mut self.servers {
            if let Err(err) = child.kill() {
                eprintln!("bench: could not kill {name}: {err}");
            }
            let _ = child.wait();
        }
        remove_netns(&self.a);
        remove_netns(&self.b);
        if let Ok(mut active) = ACTIVE.lock() {
            active.retain(|ns| *ns != self.a && *ns != self.b);
        }
    }
}

/// `name` found on `PATH` or in /usr/sbin and /sbin.
pub(crate) fn find_program(name: &str) -> anyhow::Result<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
        .with_context(|| format!("`{name}` is required by this benchmark but was not found"))
}
