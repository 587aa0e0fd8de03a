//! The NFS data plane seen from two client machines (network namespaces with their own
//! addresses): an `ip` rule admits the address it names and refuses the other, and changing
//! the rule moves access between them. The clients are libnfs's `nfs-cp`/`nfs-cat` run in
//! each client's namespace (the kernel here has no NFS client).

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use super::{Cluster, Host, NFS_PORT, example};
use crate::{call, poll_until_within};

const WAIT: Duration = Duration::from_secs(60);

/// `nfs://` URL of `file` in the export at `location` (`<address>:/shares/<id>`).
fn url(location: &str, file: &str) -> String {
    let (host, path) = location.split_once(":/").expect("an NFS export location");
    format!("nfs://{host}/{path}/{file}?nfsport={NFS_PORT}&mountport={NFS_PORT}")
}

/// Runs `program args` in `host`'s namespace; whether it succeeded, and its output.
fn run_on(host: &Host, program: &str, args: &[&str]) -> (bool, String) {
    let out = host
        .command(program)
        .args(args)
        .output()
        .expect("ip netns exec");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

#[tokio::test]
async fn netns_an_ip_rule_admits_its_client_address_and_refuses_another() {
    if std::process::Command::new("nfs-cp").output().is_err() {
        eprintln!("skipped: nfs-cp not found (install Debian's libnfs-utils)");
        return;
    }
    let Some(mut cluster) = Cluster::new().await else {
        return;
    };
    let api = cluster
        .node(
            "api1",
            &example("api"),
            "roles = [\"api\", \"scheduler\"]\n",
        )
        .await;
    let n1 = cluster.node("n1", &example("share"), "").await;
    let alice = cluster.add_host("alice");
    let bob = cluster.add_host("bob");
    let v2 = api.v2();
    poll_until_within(&format!("{v2}/services"), "share service up", WAIT, |b| {
        b["services"].as_array().is_some_and(|s| {
            s.iter()
                .any(|s| s["host"] == "n1@local" && s["state"] == "up")
        })
    })
    .await;
    let (status, body) = call(
        Method::POST,
        &format!("{v2}/types"),
        "2.56",
        Some(json!({"share_type": {"name": "nfs", "extra_specs": {
            "driver_handles_share_servers": false}}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        Method::POST,
        &format!("{v2}/shares"),
        "2.56",
        Some(json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "nfs"}})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let share = body["share"]["id"].as_str().unwrap().to_owned();
    poll_until_within(
        &format!("{v2}/shares/{share}"),
        "share available",
        WAIT,
        |b| b["share"]["status"] == "available",
    )
    .await;
    let (_, body) = call(
        Method::GET,
        &format!("{v2}/shares/{share}/export_locations"),
        "2.56",
        None,
    )
    .await;
    let location = body["export_locations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["is_admin_only"] == false)
        .unwrap_or_else(|| panic!("{body}"))["path"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        location.starts_with(&format!("{}:/shares/", n1.host.ip)),
        "{location}"
    );

    let allow = |who: &Host| {
        let ip = who.ip.to_string();
        let (v2, share) = (v2.clone(), share.clone());
        async move { crate::allow_ip(&v2, &share, &ip, WAIT).await }
    };
    let file = alice.dir.join("note.txt");
    std::fs::write(&file, "from alice\n").unwrap();
    let file = file.to_str().unwrap().to_owned();

    // alice's address is admitted, bob's is not.
    let rule = allow(&alice).await;
    let (ok, out) = run_on(&alice, "nfs-cp", &[&file, &url(&location, "note.txt")]);
    assert!(ok, "alice writes: {out}");
    let (ok, out) = run_on(&bob, "nfs-cat", &[&url(&location, "note.txt")]);
    assert!(!ok, "bob must not read: {out}");

    // The rule moves to bob: now bob reads and alice is refused.
    let (status, body) = call(
        Method::POST,
        &format!("{v2}/shares/{share}/action"),
        "2.56",
        Some(json!({"deny_access": {"access_id": rule}})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    allow(&bob).await;
    poll_until_within(
        &format!("{v2}/shares/{share}"),
        "rules applied",
        WAIT,
        |b| b["share"]["access_rules_status"] == "active",
    )
    .await;
    let (ok, out) = run_on(&bob, "nfs-cat", &[&url(&location, "note.txt")]);
    assert!(ok && out.contains("from alice"), "bob reads: {out}");
    let (ok, out) = run_on(&alice, "nfs-cat", &[&url(&location, "note.txt")]);
    assert!(!ok, "alice must be refused now: {out}");
}
