//! Scale-out on PostgreSQL: API, scheduler and share nodes as separate `shoal serve`
//! processes, each on its own loopback address, sharing one database (a fresh schema per
//! test). Skipped, with a note, when `TEST_DATABASE_URL` is unset.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shoal_store::Store;
use shoal_store::testing::{ForTest, TEST_DATABASE_URL_ENV, TestDb};

use super::{Served, call, serve_until};

/// A fresh PostgreSQL schema, or `None` (with a note) when no server is configured.
async fn pg_test_db(test: &str) -> Option<TestDb<dyn Store>> {
    if std::env::var_os(TEST_DATABASE_URL_ENV).is_none() {
        eprintln!("skipping {test}: it needs PostgreSQL and {TEST_DATABASE_URL_ENV} is not set");
        return None;
    }
    Some(shoal_store::PgStore::for_test().await?.into_dyn())
}

/// One node of a test cluster.
struct NodeSpec<'a> {
    /// `host` of the node (its services' host name).
    host: &'a str,
    roles: &'a [&'a str],
    /// Loopback address the node binds (the API only listens when the api role runs).
    ip: &'a str,
    /// Availability zone of the node's one `dummy` back end (share role only).
    zone: Option<&'a str>,
}

/// Writes the node's config file: noauth, the shared database, and `extra` TOML appended
/// (sections such as `[operations]`).
fn node_config(dir: &Path, database_url: &str, node: &NodeSpec<'_>, extra: &str) -> PathBuf {
    let data = dir.join(node.host);
    let roles: Vec<String> = node.roles.iter().map(|r| format!("\"{r}\"")).collect();
    let mut text = format!(
        "host = \"{}\"\ndata_dir = \"{}\"\ndatabase_url = \"{database_url}\"\nroles = [{}]\n\
         [api]\nauth_strategy = \"noauth\"\nlisten = \"{}:0\"\n\
         [quota]\nshares = -1\ngigabytes = -1\nshare_replicas = -1\nreplica_gigabytes = -1\n",
        node.host,
        data.display(),
        roles.join(", "),
        node.ip,
    );
    text.push_str(extra);
    if let Some(zone) = node.zone {
        text.push_str(&format!(
            "\n[[backends]]\nname = \"dummy\"\ndriver = \"dummy\"\navailability_zone = \"{zone}\"\n\
             replication_domain = \"scaleout\"\nreplication_type = \"readable\"\n\
             [[backends.pools]]\nname = \"pool1\"\ntotal_capacity_gb = 10000\n"
        ));
    }
    let path = dir.join(format!("{}.toml", node.host));
    std::fs::write(&path, text).expect("write node config");
    path
}

/// Starts the node and waits until it runs: its API listens, or its workers started.
fn start_node(dir: &Path, database_url: &str, node: &NodeSpec<'_>, extra: &str) -> Served {
    let config = node_config(dir, database_url, node, extra);
    let config = config.to_str().expect("utf-8 path");
    let api = node.roles.contains(&"api");
    let marker = if api {
        super::API_LISTENING
    } else {
        "operation workers started"
    };
    let (mut served, line) = serve_until(&["--config", config], &[], marker);
    if api {
        let addr = line
            .split(marker)
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .expect("address after the marker");
        assert!(
            addr.starts_with(&format!("{}:", node.ip)),
            "{} listens on {addr}",
            node.host
        );
        served.base = format!("http://{addr}");
    }
    served
}

/// Waits (bounded) until the database shows `services` services up and `pools` pools, as
/// seen through the API at `base`.
async fn wait_for_cluster(base: &str, services: usize, pools: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, listed) = call(
            reqwest::Method::GET,
            &format!("{base}/v2/services"),
            "2.65",
            None,
        )
        .await;
        let up = listed["services"]
            .as_array()
            .map_or(0, |s| s.iter().filter(|s| s["state"] == "up").count());
        let (_, listed) = call(
            reqwest::Method::GET,
            &format!("{base}/v2/scheduler-stats/pools"),
            "2.65",
            None,
        )
        .await;
        let seen = listed["pools"].as_array().map_or(0, Vec::len);
        if up == services && seen == pools {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "cluster not up after 30 s: {up} services up, {seen} pools"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates the share type `name` through `base` (replicated when `replication` is given).
async fn create_share_type(base: &str, name: &str, replication: Option<&str>) {
    let mut specs = json!({"driver_handles_share_servers": false});
    if let Some(replication) = replication {
        specs["replication_type"] = json!(replication);
    }
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{base}/v2/types"),
        "2.65",
        Some(json!({"share_type": {"name": name, "extra_specs": specs}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// Polls `GET url` until `done(status, body)` holds, failing after `within`.
async fn wait_for(
    url: &str,
    within: Duration,
    what: &str,
    done: impl Fn(u16, &Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, body) = call(reqwest::Method::GET, url, "2.65", None).await;
        if done(status, &body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what} not reached within {within:?}; last answer {status}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// API, scheduler and share roles on three processes that poll only once an hour: a share
/// still goes through scheduling and creation (two hand-overs between nodes) and deletion
/// at once, because every enqueue notifies the other nodes through PostgreSQL.
#[tokio::test]
async fn nodes_wake_each_other_through_postgres_while_polling_hourly() {
    let Some(db) = pg_test_db("nodes_wake_each_other_through_postgres_while_polling_hourly").await
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let url = db.database_url().to_owned();
    let hourly = "[operations]\npoll_interval = \"1h\"\n";
    let nodes: Vec<Served> = [
        NodeSpec {
            host: "api1",
            roles: &["api"],
            ip: "127.0.0.2",
            zone: None,
        },
        NodeSpec {
            host: "sched1",
            roles: &["scheduler"],
            ip: "127.0.0.3",
            zone: None,
        },
        NodeSpec {
            host: "n1",
            roles: &["share"],
            ip: "127.0.0.4",
            zone: Some("az1"),
        },
    ]
    .iter()
    .map(|node| start_node(dir.path(), &url, node, hourly))
    .collect();
    let base = nodes[0].base.clone();
    wait_for_cluster(&base, 2, 1).await;
    create_share_type(&base, "plain", None).await;

    let started = Instant::now();
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{base}/v2/shares"),
        "2.65",
        Some(json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "plain"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["share"]["id"].as_str().expect("share id").to_owned();
    let share_url = format!("{base}/v2/shares/{id}");
    // Far below the hour a poll would take: only wake-ups can have moved it.
    let share = wait_for(&share_url, Duration::from_secs(30), "available", |_, b| {
        b["share"]["status"] != "creating"
    })
    .await;
    assert_eq!(share["share"]["status"], "available", "{share}");
    assert_eq!(share["share"]["host"], "n1@dummy#pool1");
    let (status, _) = call(reqwest::Method::DELETE, &share_url, "2.65", None).await;
    assert_eq!(status, 202);
    wait_for(&share_url, Duration::from_secs(30), "deleted", |s, _| {
        s == 404
    })
    .await;
    eprintln!(
        "create, schedule, create on the back end and delete took {:?}",
        started.elapsed()
    );
    assert_eq!(db.store().count_unfinished_operations().await.unwrap(), 0);
    drop(nodes);
    db.finish().await;
}
