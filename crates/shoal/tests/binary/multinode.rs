//! Multi-node tests on the netns harness: each node in its own network namespace with its
//! own address, started from the README's example configs, all on one PostgreSQL.

use std::time::{Duration, Instant};

use reqwest::Method;

use super::{Cluster, example};
use crate::{call, local_path, poll_until_within};

/// Bound of every wait in these tests.
const WAIT: Duration = Duration::from_secs(30);

/// The `state` (`up`/`down`) of service `binary` on `host`, as the API node reports it.
fn service_state<'a>(services: &'a serde_json::Value, binary: &str, host: &str) -> Option<&'a str> {
    services["services"]
        .as_array()?
        .iter()
        .find(|s| s["binary"] == binary && s["host"] == host)
        .and_then(|s| s["state"].as_str())
}

/// Creates a 1 GiB share of type `t` in `zone`, waits until it is available, and returns
/// its detail view.
async fn share_in(v2: &str, zone: &str) -> serde_json::Value {
    let (status, body) = call(
        Method::POST,
        &format!("{v2}/shares"),
        "2.65",
        Some(
            serde_json::json!({"share": {"share_proto": "NFS", "size": 1,
            "share_type": "t", "availability_zone": zone}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let id = body["share"]["id"].as_str().unwrap().to_owned();
    poll_until_within(
        &format!("{v2}/shares/{id}"),
        &format!("share in {zone} available"),
        WAIT,
        |b| {
            assert_ne!(b["share"]["status"], "error", "{b}");
            b["share"]["status"] == "available"
        },
    )
    .await
}

/// The directory of a share's (single) `local://` export location.
async fn share_dir(v2: &str, id: &str) -> std::path::PathBuf {
    let (status, body) = call(
        Method::GET,
        &format!("{v2}/shares/{id}/export_locations"),
        "2.65",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let locations: Vec<&str> = body["export_locations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["path"].as_str().filter(|p| p.starts_with("local://")))
        .collect();
    assert_eq!(locations.len(), 1, "{body}");
    local_path(locations[0])
}

/// An API+scheduler node and two share nodes (the README's examples), each in its own
/// namespace: both share services report up, a share lands on the node of its zone, and a
/// share node whose link is cut turns `down` after `service_down_time`, then `up` again once
/// the link is back.
#[tokio::test]
async fn netns_share_nodes_place_shares_by_zone_and_a_cut_link_turns_a_service_down() {
    let started = Instant::now();
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    // The API example plus the scheduler role; the share example as is on n1, in az2 on n2.
    let api = cluster
        .node(
            "api1",
            &example("api"),
            "roles = [\"api\", \"scheduler\"]\n",
        )
        .await;
    let n1 = cluster.node("n1", &example("share"), "").await;
    let n2 = cluster
        .node(
            "n2",
            &example("share"),
            "[[backends]]\navailability_zone = \"az2\"\n",
        )
        .await;
    let v2 = api.v2();

    let services = poll_until_within(&format!("{v2}/services"), "share services up", WAIT, |b| {
        service_state(b, "manila-share", "n1@local") == Some("up")
            && service_state(b, "manila-share", "n2@local") == Some("up")
    })
    .await;
    assert_eq!(
        service_state(&services, "manila-scheduler", "api1"),
        Some("up"),
        "{services}"
    );
    let zone = |host: &str| {
        services["services"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["host"] == host)
            .map(|s| s["zone"].clone())
    };
    assert_eq!(zone("n1@local"), Some("az1".into()), "{services}");
    assert_eq!(zone("n2@local"), Some("az2".into()), "{services}");

    let (status, body) = call(
        Method::POST,
        &format!("{v2}/types"),
        "2.65",
        Some(serde_json::json!({"share_type": {"name": "t",
            "extra_specs": {"driver_handles_share_servers": false}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for (zone, node) in [("az1", &n1), ("az2", &n2)] {
        let share = share_in(&v2, zone).await;
        let name = &node.host.name;
        assert_eq!(
            share["share"]["host"],
            format!("{name}@local#pool1"),
            "{share}"
        );
        let id = share["share"]["id"].as_str().unwrap();
        let dir = share_dir(&v2, id).await;
        let pool = node.data_dir().join("pools/local/shares");
        assert!(
            dir.starts_with(&pool) && dir.is_dir(),
            "the share in {zone} is a directory in {name}'s pool: {}",
            dir.display()
        );
    }

    // Cut n2 off: its heartbeats stop reaching the database, so it is down once its last
    // one is older than service_down_time (3 s); n1 stays up.
    n2.link_down();
    let cut = Instant::now();
    let services = poll_until_within(&format!("{v2}/services"), "n2 down", WAIT, |b| {
        service_state(b, "manila-share", "n2@local") == Some("down")
    })
    .await;
    assert!(
        cut.elapsed() >= Duration::from_secs(2),
        "down only after service_down_time, not at once ({:?})",
        cut.elapsed()
    );
    assert_eq!(
        service_state(&services, "manila-share", "n1@local"),
        Some("up"),
        "{services}"
    );
    n2.link_up();
    poll_until_within(&format!("{v2}/services"), "n2 up again", WAIT, |b| {
        service_state(b, "manila-share", "n2@local") == Some("up")
    })
    .await;
    eprintln!("multi-node test took {:?}", started.elapsed());
}

/// `GET <base>/` (the versions document, no auth) with a short timeout: its status, or
/// `None` when the node cannot be reached.
async fn versions_status(base: &str) -> Option<u16> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let response = client.get(format!("{base}/")).send().await.ok()?;
    Some(response.status().as_u16())
}

/// The harness itself: a cut link makes a node unreachable and a restored one reachable,
/// `kill -9` and a restart in the namespace work, and dropping the cluster leaves no
/// namespace, veth or bridge behind.
#[tokio::test]
async fn netns_harness_cuts_links_restarts_nodes_and_cleans_up() {
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    assert!(
        cluster
            .database_url()
            .contains(&format!("@{}:", cluster.bridge_ip())),
        "nodes reach PostgreSQL through the bridge"
    );
    let mut api = cluster.node("api1", &example("api"), "").await;
    assert_eq!(versions_status(&api.base).await, Some(300));

    api.link_down();
    assert_eq!(versions_status(&api.base).await, None, "the link is cut");
    api.link_up();
    let deadline = Instant::now() + WAIT;
    while versions_status(&api.base).await != Some(300) {
        assert!(
            Instant::now() < deadline,
            "the node is unreachable after link up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    api.kill9();
    assert_eq!(versions_status(&api.base).await, None, "killed");
    api.restart().await;
    assert_eq!(versions_status(&api.base).await, Some(300));
    let starts = api
        .log_lines()
        .iter()
        .filter(|l| l.contains("API listening on"))
        .count();
    assert_eq!(starts, 2, "one start, one restart");

    let (netns, veth) = (api.host.netns.clone(), api.host.veth.clone());
    let bridge = cluster.net.bridge.clone();
    drop(api);
    drop(cluster);
    let namespaces = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .unwrap();
    assert!(
        !String::from_utf8_lossy(&namespaces.stdout).contains(&netns),
        "namespace {netns} removed"
    );
    for link in [veth, bridge] {
        assert!(
            !std::path::Path::new("/sys/class/net").join(&link).exists(),
            "{link} removed"
        );
    }
}
