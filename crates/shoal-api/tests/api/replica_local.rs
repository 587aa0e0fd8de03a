//! Replication on the `local` back end, end to end through the API: a readable replica holds
//! the active's bytes, a `writable` type finds no local pool, and a `dr` secondary exports
//! nothing. Local back ends advertise `readable` by default.

use std::path::PathBuf;

use serde_json::{Value, json};
use shoal_testkit::TestApp;

use crate::replica_fixtures::*;

/// Two local back ends, `local1` in az1 and `local2` in az2, advertising `replication`; a type
/// `readable` with that replication type and a type `writable`.
async fn local_app(replication: &'static str) -> TestApp {
    let app = TestApp::builder()
        .with_local_backend("local1", "az1")
        .with_local_backend("local2", "az2")
        .configure(move |config| {
            for backend in &mut config.backends {
                backend.replication_type = Some(replication.to_owned());
            }
        })
        .build()
        .await;
    create_type(&app, "readable", json!({"replication_type": replication})).await;
    create_type(&app, "writable", json!({"replication_type": "writable"})).await;
    app
}

/// The directory behind a `local://<host><absolute path>` export location.
fn local_dir(path: &str) -> PathBuf {
    let rest = path
        .strip_prefix("local://")
        .unwrap_or_else(|| panic!("not a local location: {path}"));
    let slash = rest.find('/').expect("absolute path after the host");
    PathBuf::from(&rest[slash..])
}

/// Directory of the active instance: its admin-only location if any, else its first.
fn active_dir(locations: &[Value]) -> PathBuf {
    let el = locations
        .iter()
        .find(|el| el["is_admin_only"] == true)
        .or_else(|| locations.first())
        .unwrap_or_else(|| panic!("no export location in {locations:?}"));
    local_dir(el["path"].as_str().unwrap())
}

#[tokio::test]
async fn local_readable_replica_holds_the_actives_bytes() {
    let app = local_app("readable").await;
    let share = available_share(&app, "admin").await;
    let view = share_view(&app, &share).await;
    assert_eq!(view["availability_zone"], "az1", "{view}");
    let active = active_of(&app, &share).await;
    let dir = active_dir(&els(&replica_els(&app, "admin", V, &active).await));
    assert!(dir.is_dir(), "{}", dir.display());
    let files: [(&str, Vec<u8>); 3] = [
        ("a.txt", b"hello replica\n".to_vec()),
        ("nested/b.bin", (0..=255u8).cycle().take(70_000).collect()),
        ("nested/deeper/empty", Vec::new()),
    ];
    for (name, bytes) in &files {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, bytes).unwrap();
    }
    let secondary = request_replica(&app, "admin", &share).await;
    app.settle().await;
    let view = replica(&app, &secondary).await;
    assert_eq!(view["status"], "available", "{view}");
    assert_eq!(view["replica_state"], "in_sync", "{view}");
    assert_eq!(view["availability_zone"], "az2", "{view}");
    let locations = els(&replica_els(&app, "admin", V, &secondary).await);
    let current = locations
        .iter()
        .map(|el| el["path"].as_str().unwrap())
        .find(|p| p.ends_with("/current"))
        .unwrap_or_else(|| panic!("no `current` location in {locations:?}"));
    let copy = local_dir(current);
    for (name, bytes) in &files {
        let got = std::fs::read(copy.join(name))
            .unwrap_or_else(|e| panic!("{name} in {}: {e}", copy.display()));
        assert_eq!(&got, bytes, "{name}");
    }
    app.finish().await;
}

#[tokio::test]
async fn local_pools_do_not_serve_writable_types() {
    let app = local_app("readable").await;
    let id = new_share(&app, "admin", json!({"share_type": "writable"})).await;
    app.settle().await;
    let view = share_view(&app, &id).await;
    assert_eq!(view["status"], "error", "{view}");
    assert_eq!(view["host"], "", "{view}");
    app.finish().await;
}

#[tokio::test]
async fn local_dr_replica_has_no_export_locations() {
    let app = local_app("dr").await;
    let share = available_share(&app, "admin").await;
    assert_eq!(share_view(&app, &share).await["replication_type"], "dr");
    let secondary = request_replica(&app, "admin", &share).await;
    app.settle().await;
    let view = replica(&app, &secondary).await;
    assert_eq!(view["status"], "available", "{view}");
    assert_eq!(view["cast_rules_to_readonly"], false, "{view}");
    let locations = els(&replica_els(&app, "admin", V, &secondary).await);
    assert!(locations.is_empty(), "{locations:?}");
    app.finish().await;
}

#[tokio::test]
async fn local_nfs_share_refuses_user_rules_and_takes_level_changes() {
    let app = local_app("readable").await;
    let share = available_share(&app, "admin").await;
    let mut rules = Vec::new();
    for (access_type, access_to) in [("ip", "10.0.0.0/24"), ("user", "alice")] {
        let resp = app
            .post(&format!("/v2/shares/{share}/action"))
            .version(V)
            .json(&json!({"allow_access": {"access_type": access_type, "access_to": access_to}}))
            .send()
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        rules.push(resp.json()["access"]["id"].as_str().unwrap().to_owned());
    }
    app.settle().await;
    let state = |id: String| {
        let app = &app;
        async move {
            let resp = app
                .get(&format!("/v2/share-access-rules/{id}"))
                .version(V)
                .send()
                .await;
            assert_eq!(resp.status, 200, "{}", resp.text());
            resp.json()["access"]["state"].clone()
        }
    };
    assert_eq!(state(rules[0].clone()).await, "active");
    assert_eq!(state(rules[1].clone()).await, "error");
    assert_eq!(
        share_view(&app, &share).await["access_rules_status"],
        "error"
    );

    // A level change (2.88) reaches the back end: the recorded rule becomes read-only.
    let resp = app
        .put(&format!("/v2/share-access-rules/{}", rules[0]))
        .version("2.88")
        .json(&json!({"update_access": {"access_level": "ro"}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;
    assert_eq!(state(rules[0].clone()).await, "active");
    let active = active_of(&app, &share).await;
    let dir = active_dir(&els(&replica_els(&app, "admin", V, &active).await));
    let file = dir.with_file_name(format!("{active}.access.json"));
    let recorded: Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(recorded["rules"][0]["id"], rules[0].as_str());
    assert_eq!(recorded["rules"][0]["access_level"], "ro", "{recorded}");
    app.finish().await;
}
