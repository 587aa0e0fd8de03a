//! `shoal bench api-nodes`: API throughput with one API node against two on one PostgreSQL.
//! Each node is a separate `shoal serve` process (this executable) on its own loopback
//! address, sharing a fresh schema that is dropped afterwards; a third process runs the
//! scheduler and share roles with two `dummy` back ends, so creates go through the whole
//! pipeline. Clients are spread round-robin over the API nodes of the round. Two workloads
//! per round: `GET /v2/shares/detail` of a project holding 20 shares, and `POST /v2/shares`
//! (1 GiB NFS shares of another project).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use shoal_store::PgStore;

/// Settings of one benchmark run.
#[derive(Debug, Clone)]
pub struct ApiNodesBench {
    /// A PostgreSQL URL; a schema of its own is created there and dropped afterwards.
    pub database_url: String,
    /// API node counts to measure, one round each (at most 2).
    pub nodes: Vec<usize>,
    /// Concurrent clients of each workload.
    pub clients: usize,
    /// Length of each workload.
    pub duration: Duration,
}

/// Result of one workload of one round.
#[derive(Debug, Clone)]
pub struct Row {
    /// `GET /v2/shares/detail` or `POST /v2/shares`.
    pub workload: &'static str,
    /// API nodes the clients were spread over.
    pub nodes: usize,
    /// Concurrent clients.
    pub clients: usize,
    /// Requests answered with a success status.
    pub requests: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Median latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

impl Row {
    /// Requests per second.
    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// Most API nodes a run starts (each on its own address 127.0.0.2, 127.0.0.3).
const MAX_API_NODES: usize = 2;

/// Shares the listed project holds.
const LISTED_SHARES: usize = 20;

/// A `shoal serve` child, killed on drop.
struct Node {
    child: Child,
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `shoal serve --config <file>` and waits for the log line with `marker`, which it
/// returns. The rest of the log is drained and dropped.
fn start_node(config: &Path, marker: &'static str) -> anyhow::Result<(Node, String)> {
    let exe = std::env::current_exe().context("locating the shoal executable")?;
    let mut child = Command::new(exe)
        .arg("serve")
        .arg("--config")
        .arg(config)
        .env_remove("SHOAL_CONFIG")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .context("starting a node")?;
    let stderr = child.stderr.take().context("node stderr")?;
    let node = Node { child };
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut found = false;
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if !found && line.contains(marker) {
                found = true;
                let _ = tx.send(line);
            }
        }
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .with_context(|| format!("node {} did not log {marker:?}", config.display()))?;
    Ok((node, line))
}

fn node_config(
    dir: &Path,
    name: &str,
    body: &str,
    database_url: &str,
) -> anyhow::Result<std::path::PathBuf> {
    let path = dir.join(format!("{name}.toml"));
    let text = format!(
        "host = \"{name}\"\ndata_dir = \"{}\"\ndatabase_url = \"{database_url}\"\n{body}",
        dir.join(name).display()
    );
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

fn client(token: &str) -> anyhow::Result<reqwest::Client> {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("X-Auth-Token", token.parse()?);
    headers.insert("X-OpenStack-Manila-API-Version", "2.65".parse()?);
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(256)
        .build()?)
}

async fn create_share(client: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    let body = json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "bench"}});
    let answer: Value = client
        .post(format!("{base}/v2/shares"))
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    Ok(answer["share"]["id"]
        .as_str()
        .context("share id in the create answer")?
        .to_owned())
}

async fn list_detail(client: &reqwest::Client, base: &str) -> anyhow::Result<()> {
    let answer: Value = client
        .get(format!("{base}/v2/shares/detail"))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let listed = answer["shares"].as_array().map_or(0, Vec::len);
    if listed != LISTED_SHARES {
        bail!("listed {listed} shares, expected {LISTED_SHARES}");
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Runs `clients` loops of `request` against `bases` (client i on node i mod n) for
/// `duration`.
async fn workload<F, Fut>(
    workload: &'static str,
    bases: &[String],
    clients: usize,
    duration: Duration,
    request: F,
) -> anyhow::Result<Row>
where
    F: Fn(String) -> Fut + Send + Sync + 'static,
    Fut: std::future::Future<Output = anyhow::Result<()>> + Send,
{
    let request = Arc::new(request);
    let started = Instant::now();
    let end = started + duration;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..clients {
        let (request, base) = (request.clone(), bases[i % bases.len()].clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            while Instant::now() < end {
                let sent = Instant::now();
                request(base.clone()).await?;
                latencies.push(sent.elapsed());
            }
            anyhow::Ok(latencies)
        });
    }
    let mut latencies = Vec::new();
    while let Some(result) = tasks.join_next().await {
        latencies.extend(result??);
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(Row {
        workload,
        nodes: bases.len(),
        clients,
        requests: latencies.len(),
        elapsed,
        p50: percentile(&latencies, 0.5),
        p99: percentile(&latencies, 0.99),
    })
}

/// Runs every round and returns its rows.
pub async fn run(settings: &ApiNodesBench) -> anyhow::Result<Vec<Row>> {
    if !settings.database_url.starts_with("postgres") {
        bail!("api-nodes needs a PostgreSQL --database-url (several processes share it)");
    }
    if let Some(n) = settings
        .nodes
        .iter()
        .find(|n| **n == 0 || **n > MAX_API_NODES)
    {
        bail!("--nodes takes 1 or {MAX_API_NODES}, not {n}");
    }
    let schema = format!("bench_{}", scratch_suffix());
    let url = PgStore::create_schema(&settings.database_url, &schema)
        .await
        .context("creating the benchmark schema")?;
    let result = run_in(settings, &url).await;
    if let Err(err) = PgStore::drop_schema(&settings.database_url, &schema).await {
        tracing::warn!(error = %err, "could not drop benchmark schema {schema}: {err}");
    }
    result
}

/// A name suffix unique enough for a scratch schema: the time in nanoseconds and the pid.
pub(crate) fn scratch_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("{nanos:x}_{}", std::process::id())
}

async fn run_in(settings: &ApiNodesBench, url: &str) -> anyhow::Result<Vec<Row>> {
    let dir = tempfile::tempdir().context("temp dir for the benchmark nodes")?;
    // The back end node migrates the schema; the API nodes start after it.
    let backends = "roles = [\"scheduler\", \"share\"]\n[operations]\npoll_interval = \"1s\"\n\
        [[backends]]\nname = \"dummy1\"\ndriver = \"dummy\"\navailability_zone = \"az1\"\n\
        [[backends.pools]]\nname = \"pool1\"\ntotal_capacity_gb = 1000000\n\
        [[backends]]\nname = \"dummy2\"\ndriver = \"dummy\"\navailability_zone = \"az2\"\n\
        [[backends.pools]]\nname = \"pool1\"\ntotal_capacity_gb = 1000000\n";
    let config = node_config(dir.path(), "backends", backends, url)?;
    let (backend_node, _) = start_node(&config, "operation workers started")?;
    let mut nodes = vec![backend_node];
    let mut bases = Vec::new();
    for i in 0..MAX_API_NODES {
        let body = format!(
            "roles = [\"api\"]\n[api]\nauth_strategy = \"noauth\"\nlisten = \"127.0.0.{}:0\"\n\
             [quota]\nshares = -1\ngigabytes = -1\n",
            i + 2
        );
        let config = node_config(dir.path(), &format!("api{}", i + 1), &body, url)?;
        let (node, line) = start_node(&config, "API listening on http://")?;
        nodes.push(node);
        let addr = line
            .split("API listening on http://")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .context("address in the API node's log")?;
        bases.push(format!("http://{addr}"));
    }

    let admin = client("admin:admin")?;
    let share_type = json!({"share_type": {"name": "bench", "is_public": true,
        "extra_specs": {"driver_handles_share_servers": false}}});
    admin
        .post(format!("{}/v2/types", bases[0]))
        .json(&share_type)
        .send()
        .await?
        .error_for_status()?;
    // The listed project's shares, created and then left alone.
    let lister = client("bench:bench")?;
    for _ in 0..LISTED_SHARES {
        create_share(&lister, &bases[0]).await?;
    }

    let writer = client("load:load")?;
    let mut rows = Vec::new();
    for &n in &settings.nodes {
        let in_use = bases[..n].to_vec();
        let reader = lister.clone();
        rows.push(
            workload(
                "GET /v2/shares/detail",
                &in_use,
                settings.clients,
                settings.duration,
                move |base| {
                    let reader = reader.clone();
                    async move { list_detail(&reader, &base).await }
                },
            )
            .await?,
        );
        let creator = writer.clone();
        rows.push(
            workload(
                "POST /v2/shares",
                &in_use,
                settings.clients,
                settings.duration,
                move |base| {
                    let creator = creator.clone();
                    async move { create_share(&creator, &base).await.map(|_| ()) }
                },
            )
            .await?,
        );
    }
    drop(nodes);
    Ok(rows)
}

/// Prints the rows as a Markdown table, then the two-node/one-node ratio per workload.
pub fn print(rows: &[Row]) {
    println!("| workload | API nodes | clients | requests | seconds | req/s | p50 ms | p99 ms |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| `{}` | {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.1} |",
            r.workload,
            r.nodes,
            r.clients,
            r.requests,
            r.elapsed.as_secs_f64(),
            r.rate(),
            r.p50.as_secs_f64() * 1000.0,
            r.p99.as_secs_f64() * 1000.0
        );
    }
    for workload in ["GET /v2/shares/detail", "POST /v2/shares"] {
        let rate = |nodes| {
            rows.iter()
                .find(|r| r.workload == workload && r.nodes == nodes)
                .map(Row::rate)
        };
        if let (Some(one), Some(two)) = (rate(1), rate(2)) {
            println!("\n`{workload}`: 2 nodes / 1 node = {:.2}", two / one);
        }
    }
}
