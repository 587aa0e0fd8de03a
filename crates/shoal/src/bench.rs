//! `shoal bench shares`: throughput of share create → `available` through the real HTTP API,
//! on an in-process node with `dummy` back ends (no storage work), so the figure measures
//! the control plane: API, database, scheduler and share manager. Each client creates a
//! share, polls it until it is `available`, and starts the next one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use shoal_core::Config;
use shoal_core::config::{BackendConfig, PoolConfig};

use crate::server::Server;

/// Settings of one benchmark run.
#[derive(Debug, Clone)]
pub struct SharesBench {
    /// Concurrent client counts to measure, one round each.
    pub clients: Vec<usize>,
    /// Shares created per round.
    pub shares: usize,
    /// Database URL; empty = SQLite in a temp dir.
    pub database_url: String,
}

/// Result of one round.
#[derive(Debug, Clone)]
pub struct Round {
    /// Concurrent clients.
    pub clients: usize,
    /// Shares that became available.
    pub shares: usize,
    /// Wall time of the round.
    pub elapsed: Duration,
    /// Median create→available latency.
    pub p50: Duration,
    /// 99th percentile latency.
    pub p99: Duration,
}

fn dummy_backend(name: &str, az: &str) -> BackendConfig {
    BackendConfig {
        name: name.to_owned(),
        driver: "dummy".to_owned(),
        availability_zone: az.to_owned(),
        replication_domain: Some("bench".to_owned()),
        replication_type: None,
        pools: vec![PoolConfig {
            name: "pool1".to_owned(),
            path: None,
            total_capacity_gb: Some(1_000_000),
            reserved_percentage: 0,
        }],
        dummy: None,
        local: None,
    }
}

async fn create_and_wait(client: &reqwest::Client, base: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let body = json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "bench"}});
    let response: Value = client
        .post(format!("{base}/v2/shares"))
        .json(&body)
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let id = response["share"]["id"]
        .as_str()
        .context("share id in the create answer")?
        .to_owned();
    loop {
        let share: Value = client
            .get(format!("{base}/v2/shares/{id}"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        match share["share"]["status"].as_str() {
            Some("available") => return Ok(started.elapsed()),
            Some("error") => bail!("share {id} went to error"),
            // Poll gently: a tight loop of 64 clients would take the CPU the node needs.
            _ => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

/// Runs every round and returns the results.
pub async fn run(settings: &SharesBench) -> anyhow::Result<Vec<Round>> {
    let dir = tempfile::tempdir().context("temp dir for the benchmark node")?;
    let mut config = Config {
        data_dir: dir.path().to_path_buf(),
        database_url: settings.database_url.clone(),
        ..Config::default()
    };
    config.host = "bench".to_owned();
    // The pipeline is what is measured, not token validation.
    config.api.auth_strategy = shoal_core::config::AuthStrategy::Noauth;
    config.api.listen = "127.0.0.1:0".parse().context("listen address")?;
    config.backends = vec![
        dummy_backend("dummy1", "az1"),
        dummy_backend("dummy2", "az2"),
    ];
    config.quota.shares = -1;
    config.quota.gigabytes = -1;
    config.operations.poll_interval = Duration::from_millis(50);
    let server = Server::start(config).await?;
    let base = format!("http://{}", server.api_addr.context("api address")?);
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("X-Auth-Token", "bench:bench".parse()?);
    headers.insert("X-OpenStack-Manila-API-Version", "2.65".parse()?);
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(256)
        .build()?;
    let share_type = json!({"share_type": {"name": "bench", "extra_specs": {"driver_handles_share_servers": false}}});
    client
        .post(format!("{base}/v2/types"))
        .json(&share_type)
        .send()
        .await?
        .error_for_status()?;

    let mut rounds = Vec::new();
    for &clients in &settings.clients {
        let per_client = settings.shares.div_ceil(clients.max(1));
        let started = Instant::now();
        let mut tasks = tokio::task::JoinSet::new();
        let client = Arc::new(client.clone());
        for _ in 0..clients {
            let (client, base) = (client.clone(), base.clone());
            tasks.spawn(async move {
                let mut latencies = Vec::with_capacity(per_client);
                for _ in 0..per_client {
                    latencies.push(create_and_wait(&client, &base).await?);
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
        rounds.push(Round {
            clients,
            shares: latencies.len(),
            elapsed,
            p50: percentile(&latencies, 0.5),
            p99: percentile(&latencies, 0.99),
        });
    }
    server.shutdown().await;
    Ok(rounds)
}

/// Prints the rounds as a Markdown table.
pub fn print(rounds: &[Round]) {
    println!("| clients | shares | seconds | shares/s | p50 ms | p99 ms |");
    println!("|---:|---:|---:|---:|---:|---:|");
    for r in rounds {
        let secs = r.elapsed.as_secs_f64();
        println!(
            "| {} | {} | {:.2} | {:.1} | {:.1} | {:.1} |",
            r.clients,
            r.shares,
            secs,
            r.shares as f64 / secs,
            r.p50.as_secs_f64() * 1000.0,
            r.p99.as_secs_f64() * 1000.0
        );
    }
}
