//! Black-box tests: spawn the real `shoal` binary on an ephemeral port and drive it over HTTP,
//! as an operator would.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_shoal");

/// A running `shoal serve` child; killed on drop if the test did not stop it.
struct Served {
    child: Child,
    base: String,
    log: mpsc::Receiver<String>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[expect(
    clippy::zombie_processes,
    reason = "the child is owned by Served, whose Drop kills and waits for it"
)]
fn serve(args: &[&str], envs: &[(&str, &str)]) -> Served {
    let mut command = Command::new(BIN);
    command
        .arg("serve")
        .args(["--listen", "127.0.0.1:0"])
        .args(args);
    command.env_remove("SHOAL_CONFIG").env("RUST_LOG", "info");
    for (k, v) in envs {
        command.env(k, v);
    }
    let mut child = command
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn shoal");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    // The start-up log names the bound address; wait for it (bounded).
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| {
                panic!(
                    "shoal did not report its address; log so far:\n{}",
                    seen.join("\n")
                )
            });
        if let Some(rest) = line.split("API listening on http://").nth(1) {
            let addr = rest
                .split_whitespace()
                .next()
                .expect("address after the marker")
                .to_owned();
            return Served {
                child,
                base: format!("http://{addr}"),
                log: rx,
            };
        }
        seen.push(line);
    }
}

async fn get(url: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = reqwest::Client::new()
        .get(url)
        .header("X-OpenStack-Manila-API-Version", "2.99");
    if let Some(token) = token {
        request = request.header("X-Auth-Token", token);
    }
    let response = request.send().await.expect("request");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

#[tokio::test]
async fn serve_on_embedded_defaults_answers_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut served = serve(&["--data-dir", data.to_str().unwrap()], &[]);
    let (status, versions) = get(&format!("{}/", served.base), None).await;
    assert_eq!(status, 300);
    assert_eq!(versions["versions"][0]["version"], "2.99");
    let (status, zones) = get(
        &format!("{}/v2/availability-zones", served.base),
        Some("admin:admin"),
    )
    .await;
    assert_eq!(status, 200);
    let names: Vec<&str> = zones["availability_zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["az1", "az2"]);
    // Everything the default writes is under the data dir.
    assert!(data.join("shoal.db").is_file());
    assert!(data.join("pools/local1/shares").is_dir());
    assert!(data.join("pools/local2/shares").is_dir());

    let pid = served.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = served.child.wait().expect("wait for shoal");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
    let rest: Vec<String> = served.log.try_iter().collect();
    assert!(
        rest.iter().any(|l| l.contains("SIGTERM received")),
        "{rest:?}"
    );
}

#[tokio::test]
async fn environment_and_config_file_override_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("shoal.toml");
    std::fs::write(
        &config,
        format!(
            "host = \"node9\"\ndata_dir = \"{}\"\n[[backends]]\nname = \"d1\"\ndriver = \"dummy\"\navailability_zone = \"zone-x\"\n[[backends.pools]]\nname = \"p\"\n",
            dir.path().join("data").display()
        ),
    )
    .unwrap();
    let served = serve(
        &["--config", config.to_str().unwrap()],
        &[("SHOAL_STORAGE_AVAILABILITY_ZONE", "zone-x")],
    );
    let (status, zones) = get(
        &format!("{}/v2/availability-zones", served.base),
        Some("admin:admin"),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(zones["availability_zones"].as_array().unwrap().len(), 1);
    assert_eq!(zones["availability_zones"][0]["name"], "zone-x");
    let (_, pools) = get(
        &format!("{}/v2/scheduler-stats/pools", served.base),
        Some("admin:admin"),
    )
    .await;
    assert_eq!(pools["pools"][0]["name"], "node9@d1#p");
}

#[test]
fn config_check_and_db_sync() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("d");
    let ok = Command::new(BIN)
        .args(["config", "check", "--data-dir", data.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("[api]"));

    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[api]\nauth_strategy = \"magic\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["config", "check", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("magic"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "\"share_type:index\": \"role:admin and (\"\n").unwrap();
    let cfg = dir.path().join("p.toml");
    std::fs::write(
        &cfg,
        format!("[api]\npolicy_file = \"{}\"\n", policy.display()),
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["config", "check", "--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "an unparsable policy rule fails the check"
    );

    for _ in 0..2 {
        let out = Command::new(BIN)
            .args(["db", "sync", "--data-dir", data.to_str().unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert!(data.join("shoal.db").is_file());
}

async fn post(url: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("X-OpenStack-Manila-API-Version", "2.65")
        .header("X-Auth-Token", "admin:admin")
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (
        status,
        response.json().await.unwrap_or(serde_json::Value::Null),
    )
}

/// Every entry of the local pools' `shares/` directories: instance directories, their
/// `.meta.json`/`.access.json` files, and anything a crash left behind.
fn pool_entries(data: &std::path::Path) -> Vec<String> {
    let mut entries = Vec::new();
    for pool in ["local1", "local2"] {
        let dir = data.join("pools").join(pool).join("shares");
        if let Ok(read) = std::fs::read_dir(&dir) {
            entries.extend(
                read.map_while(Result::ok)
                    .map(|e| e.file_name().to_string_lossy().into_owned()),
            );
        }
    }
    entries
}

#[tokio::test]
async fn sigkill_during_50_creates_leaves_nothing_stuck_or_orphaned() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data_arg = data.to_str().unwrap().to_owned();
    // A short lease, so the restarted node takes over the dead node's claims quickly.
    let env = [
        ("SHOAL_OPERATIONS__LEASE", "2s"),
        ("SHOAL_OPERATIONS__POLL_INTERVAL", "100ms"),
    ];
    let mut served = serve(&["--data-dir", &data_arg], &env);
    let (status, _) = post(
        &format!("{}/v2/types", served.base),
        serde_json::json!({"share_type": {"name": "t", "extra_specs": {"driver_handles_share_servers": false}}}),
    )
    .await;
    assert_eq!(status, 200);
    let mut creates = tokio::task::JoinSet::new();
    for i in 0..50 {
        let url = format!("{}/v2/shares", served.base);
        creates.spawn(async move {
            post(&url, serde_json::json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "t", "name": format!("s{i}")}})).await
        });
    }
    let mut ids = Vec::new();
    while let Some(result) = creates.join_next().await {
        let (status, body) = result.unwrap();
        assert_eq!(status, 200, "{body}");
        ids.push(body["share"]["id"].as_str().unwrap().to_owned());
    }
    // Kill without warning while the pipeline is still working through them.
    served.child.kill().unwrap();
    served.child.wait().unwrap();
    drop(served);

    let served = serve(&["--data-dir", &data_arg], &env);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut available = 0;
    for id in &ids {
        loop {
            let (status, body) = get(
                &format!("{}/v2/shares/{id}", served.base),
                Some("admin:admin"),
            )
            .await;
            assert_eq!(status, 200, "{body}");
            match body["share"]["status"].as_str().unwrap() {
                "available" => {
                    available += 1;
                    break;
                }
                "error" => break,
                other => {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "share {id} stuck in {other}"
                    );
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    assert_eq!(available, 50, "local pools have room for all 50 shares");
    // Each available share has exactly its directory and metadata file; nothing else.
    let entries = pool_entries(&data);
    let dirs = entries.iter().filter(|e| !e.contains('.')).count();
    let metas = entries.iter().filter(|e| e.ends_with(".meta.json")).count();
    let leftovers: Vec<&String> = entries.iter().filter(|e| e.starts_with(".tmp")).collect();
    assert_eq!(dirs, 50, "{entries:?}");
    assert_eq!(metas, 50, "{entries:?}");
    assert!(leftovers.is_empty(), "crash leftovers: {leftovers:?}");
}
