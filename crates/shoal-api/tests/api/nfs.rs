//! The NFS data plane end to end: shares of `local` back ends created through the API are
//! mounted with a real NFSv3 client at their export locations, access rules allow and refuse
//! clients live, readable secondaries serve read-only, dr secondaries not at all, a promote
//! moves the exports with the roles, and a share's size is its quota.

use std::net::SocketAddr;

use serde_json::{Value, json};
use shoal_core::config::AuthStrategy;
use shoal_testkit::TestApp;
use shoal_testkit::nfs::{MOUNT_ACCES, MOUNT_NOENT, NfsError, NfsMount, export_path};

use crate::replica_fixtures::*;

use nfs3_client::nfs3_types::nfs3::nfsstat3;

/// Two local back ends (az1, az2) replicating `replication`; the share type `readable` has it.
async fn nfs_app(replication: &'static str) -> TestApp {
    nfs_app_with(replication, shoal_driver::LocalOptions::default()).await
}

/// [`nfs_app`] with the local back ends' `options`.
async fn nfs_app_with(replication: &'static str, options: shoal_driver::LocalOptions) -> TestApp {
    let app = TestApp::builder()
        .with_local_backend("local1", "az1")
        .with_local_backend("local2", "az2")
        .configure(move |config| {
            for backend in &mut config.backends {
                backend.replication_type = Some(replication.to_owned());
                backend.local = Some(options.clone());
            }
        })
        .build()
        .await;
    create_type(&app, "readable", json!({"replication_type": replication})).await;
    app
}

fn server(app: &TestApp) -> SocketAddr {
    app.nfs_addr()
        .expect("a node with local back ends serves NFS")
}

/// The client-facing (non admin-only) location of a replica, as the admin sees it.
async fn nfs_location(app: &TestApp, replica: &str) -> String {
    let locations = els(&replica_els(app, "admin", V, replica).await);
    let preferred: Vec<&Value> = locations
        .iter()
        .filter(|el| el["is_admin_only"] == false)
        .collect();
    assert_eq!(preferred.len(), 1, "{locations:?}");
    preferred[0]["path"].as_str().unwrap().to_owned()
}

async fn allow(app: &TestApp, share: &str, to: &str, level: &str) -> String {
    let resp = app
        .post(&format!("/v2/shares/{share}/action"))
        .version(V)
        .json(
            &json!({"allow_access": {"access_type": "ip", "access_to": to, "access_level": level}}),
        )
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let id = resp.json()["access"]["id"].as_str().unwrap().to_owned();
    app.settle().await;
    id
}

async fn rule_state(app: &TestApp, rule: &str) -> Value {
    let resp = app
        .get(&format!("/v2/share-access-rules/{rule}"))
        .version(V)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["access"]["state"].clone()
}

async fn mount(app: &TestApp, location: &str) -> Result<NfsMount, NfsError> {
    NfsMount::mount(server(app), export_path(location)).await
}

#[tokio::test]
async fn export_locations_take_the_nfs_form_and_name_the_instance() {
    // Built-in identity: under noauth every caller is an admin.
    let app = TestApp::builder()
        .auth(AuthStrategy::Builtin)
        .with_local_backend("local1", "az1")
        .with_local_backend("local2", "az2")
        .build()
        .await;
    create_type(&app, "readable", json!({"replication_type": "readable"})).await;
    let share = available_share(&app, "demo").await;
    let active = active_of(&app, &share).await;
    let location = nfs_location(&app, &active).await;
    assert_eq!(location, format!("127.0.0.1:/shares/{active}"));
    // The owner sees only the NFS location; the admin-only one is the replication's.
    let resp = app
        .get(&format!("/v2/shares/{share}/export_locations"))
        .version(V)
        .token(&app.token_for("demo"))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let paths: Vec<String> = resp.json()["export_locations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|el| el["path"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(paths, vec![location.clone()]);
    let admin = app
        .get(&format!("/v2/shares/{share}/export_locations"))
        .version(V)
        .send()
        .await;
    let all = admin.json()["export_locations"].as_array().unwrap().clone();
    assert_eq!(all.len(), 2, "{all:?}");
    let nfs = all
        .iter()
        .find(|el| el["path"] == location.as_str())
        .unwrap();
    assert_eq!(nfs["preferred"], true, "{all:?}");
    assert_eq!(nfs["is_admin_only"], false, "{all:?}");
    app.finish().await;
}

#[tokio::test]
async fn an_ip_rule_admits_its_client_live_and_its_removal_cuts_it_off() {
    let app = nfs_app("readable").await;
    let share = available_share(&app, "admin").await;
    let active = active_of(&app, &share).await;
    let location = nfs_location(&app, &active).await;

    // No rule: no access.
    assert_eq!(
        mount(&app, &location).await.err(),
        Some(NfsError::Mount(MOUNT_ACCES))
    );
    // A rule for another address does not admit this client.
    let other = allow(&app, &share, "10.9.9.9", "rw").await;
    assert_eq!(rule_state(&app, &other).await, "active");
    assert_eq!(
        mount(&app, &location).await.err(),
        Some(NfsError::Mount(MOUNT_ACCES))
    );

    let rule = allow(&app, &share, "127.0.0.1", "rw").await;
    assert_eq!(rule_state(&app, &rule).await, "active");
    assert_eq!(
        share_view(&app, &share).await["access_rules_status"],
        "active"
    );
    let mut client = mount(&app, &location)
        .await
        .expect("the rule admits 127.0.0.1");
    client.mkdir("docs").await.unwrap();
    let data: Vec<u8> = (0..=255u8).cycle().take(300_000).collect();
    client.write_file("docs/report.bin", &data).await.unwrap();
    assert_eq!(client.read_file("docs/report.bin").await.unwrap(), data);

    // Deny: the client already mounted is cut off at its next call.
    let resp = app
        .post(&format!("/v2/shares/{share}/action"))
        .version(V)
        .json(&json!({"deny_access": {"access_id": rule}}))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(
        client.read_file("docs/report.bin").await.err(),
        Some(NfsError::Status(nfsstat3::NFS3ERR_ACCES))
    );
    app.finish().await;
}

#[tokio::test]
async fn a_ro_rule_refuses_writes_and_a_level_change_applies_to_mounted_clients() {
    let app = nfs_app("readable").await;
    let share = available_share(&app, "admin").await;
    let active = active_of(&app, &share).await;
    let location = nfs_location(&app, &active).await;
    let rule = allow(&app, &share, "127.0.0.0/8", "ro").await;
    let mut client = mount(&app, &location).await.unwrap();
    assert_eq!(
        client.write_file("nope.txt", b"x").await.err(),
        Some(NfsError::Status(nfsstat3::NFS3ERR_ROFS))
    );
    let resp = app
        .put(&format!("/v2/share-access-rules/{rule}"))
        .version("2.88")
        .json(&json!({"update_access": {"access_level": "rw"}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;
    client.write_file("yes.txt", b"written").await.unwrap();
    assert_eq!(client.read_file("yes.txt").await.unwrap(), b"written");
    // Both answers are counted in /metrics by procedure and status, never by path.
    let body = app.get("/metrics").anonymous().send().await.text();
    for series in [
        "shoal_nfs_calls_total{program=\"nfs\",procedure=\"CREATE\",status=\"ROFS\"}",
        "shoal_nfs_calls_total{program=\"nfs\",procedure=\"WRITE\",status=\"OK\"}",
        "shoal_nfs_calls_total{program=\"mount\",procedure=\"MNT\",status=\"OK\"}",
    ] {
        assert!(body.contains(series), "{series} missing");
    }
    assert!(!body.contains("yes.txt") && !body.contains(&active));
    app.finish().await;
}

#[tokio::test]
async fn a_readable_secondary_serves_the_synced_data_read_only() {
    let app = nfs_app("readable").await;
    let share = available_share(&app, "admin").await;
    let active = active_of(&app, &share).await;
    allow(&app, &share, "127.0.0.1", "rw").await;
    let secondary = in_sync_replica(&app, "admin", &share).await;
    let mut writer = mount(&app, &nfs_location(&app, &active).await)
        .await
        .unwrap();
    writer
        .write_file("hello.txt", b"from the active")
        .await
        .unwrap();

    app.update_replicas_once().await;
    let location = nfs_location(&app, &secondary).await;
    assert_eq!(location, format!("127.0.0.1:/shares/{secondary}"));
    let mut reader = mount(&app, &location)
        .await
        .expect("the rw rule admits reads");
    assert_eq!(
        reader.read_file("hello.txt").await.unwrap(),
        b"from the active"
    );
    assert_eq!(
        reader.write_file("hello.txt", b"overwrite").await.err(),
        Some(NfsError::Status(nfsstat3::NFS3ERR_ROFS))
    );

    // Promote: the exports move with the roles.
    let resp = action(&app, "admin", V, &secondary, json!({"promote": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(replica(&app, &secondary).await["replica_state"], "active");
    app.update_replicas_once().await;
    let mut new_writer = mount(&app, &nfs_location(&app, &secondary).await)
        .await
        .unwrap();
    new_writer
        .write_file("after.txt", b"written on the new active")
        .await
        .unwrap();
    let mut old = mount(&app, &nfs_location(&app, &active).await)
        .await
        .unwrap();
    assert_eq!(
        old.read_file("hello.txt").await.unwrap(),
        b"from the active"
    );
    let refused = old.write_file("late.txt", b"too late").await.err();
    assert!(
        matches!(
            refused,
            Some(NfsError::Status(
                nfsstat3::NFS3ERR_ROFS | nfsstat3::NFS3ERR_JUKEBOX
            ))
        ),
        "{refused:?}"
    );
    app.finish().await;
}

#[tokio::test]
async fn a_dr_secondary_is_not_exported() {
    let app = nfs_app("dr").await;
    let share = available_share(&app, "admin").await;
    allow(&app, &share, "127.0.0.1", "rw").await;
    let secondary = in_sync_replica(&app, "admin", &share).await;
    let locations = els(&replica_els(&app, "admin", V, &secondary).await);
    assert!(locations.is_empty(), "{locations:?}");
    assert_eq!(
        NfsMount::mount(server(&app), &format!("/shares/{secondary}"))
            .await
            .err(),
        Some(NfsError::Mount(MOUNT_NOENT))
    );
    app.finish().await;
}

#[tokio::test]
async fn the_share_size_is_its_quota_and_extend_moves_it() {
    let app = nfs_app("readable").await;
    let share = available_share(&app, "admin").await;
    let active = active_of(&app, &share).await;
    allow(&app, &share, "127.0.0.1", "rw").await;
    let mut client = mount(&app, &nfs_location(&app, &active).await)
        .await
        .unwrap();
    client.write_file("big", b"start").await.unwrap();
    let file = client.lookup("big").await.unwrap();
    // A write ending past 1 GiB fails whole and leaves the file as it was.
    let gib = 1024 * 1024 * 1024;
    assert_eq!(
        client.write_at(&file, gib - 2, b"crosses").await.err(),
        Some(NfsError::Status(nfsstat3::NFS3ERR_DQUOT))
    );
    assert_eq!(client.read_file("big").await.unwrap(), b"start");
    // Up to the limit is fine.
    client.write_at(&file, gib - 3, b"end").await.unwrap();

    let resp = app
        .post(&format!("/v2/shares/{share}/action"))
        .version(V)
        .json(&json!({"extend": {"new_size": 2}}))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(share_view(&app, &share).await["size"], 2);
    client.write_at(&file, gib - 2, b"crosses").await.unwrap();
    app.finish().await;
}

/// The newest record of the replica's replication history.
async fn last_sync(app: &TestApp, replica: &str) -> Value {
    let resp = app
        .get(&format!("/v2/share-replicas/{replica}/replication-history"))
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let records = resp.json()["replication_history"]
        .as_array()
        .unwrap()
        .clone();
    records
        .into_iter()
        .max_by_key(|r| r["started_at"].as_str().unwrap().to_owned())
        .expect("a sync was recorded")
}

/// The records of the replica's syncs that started after `after`, oldest first.
async fn syncs_since(app: &TestApp, replica: &str, after: &Value) -> Vec<Value> {
    let resp = app
        .get(&format!("/v2/share-replicas/{replica}/replication-history"))
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let since = after["started_at"].as_str().unwrap().to_owned();
    let mut records: Vec<Value> = resp.json()["replication_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["started_at"].as_str().unwrap() > since.as_str())
        .cloned()
        .collect();
    records.sort_by_key(|r| r["started_at"].as_str().unwrap().to_owned());
    records
}

/// The data directory of an active instance, from its admin-only `local://` location.
async fn active_dir(app: &TestApp, active: &str) -> std::path::PathBuf {
    let locations = els(&replica_els(app, "admin", V, active).await);
    let local = locations
        .iter()
        .find(|el| el["is_admin_only"] == true)
        .unwrap_or_else(|| panic!("{locations:?}"))["path"]
        .as_str()
        .unwrap()
        .to_owned();
    let rest = local.strip_prefix("local://").unwrap();
    std::path::PathBuf::from(&rest[rest.find('/').unwrap()..])
}

/// A readable share with 200 files (written before the replica, so its first sync walks
/// them), an `ip 127.0.0.1 rw` rule, an in-sync secondary, and a mounted client of the active.
async fn journaled_share(app: &TestApp) -> (String, String, NfsMount) {
    let share = available_share(app, "admin").await;
    let active = active_of(app, &share).await;
    let dir = active_dir(app, &active).await;
    // Old files, as most of a real share is (a file modified just before a sync is looked at
    // again by the next one, whatever the journal says).
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    for i in 0..200 {
        let path = dir.join(format!("seed-{i:03}"));
        std::fs::write(&path, format!("seed {i}")).unwrap();
        let file = std::fs::File::options().write(true).open(&path).unwrap();
        file.set_modified(old).unwrap();
    }
    allow(app, &share, "127.0.0.1", "rw").await;
    let secondary = in_sync_replica(app, "admin", &share).await;
    let client = mount(app, &nfs_location(app, &active).await).await.unwrap();
    (active, secondary, client)
}

#[tokio::test]
async fn a_sync_after_writes_over_nfs_reads_the_journal_not_the_tree() {
    let app = nfs_app("readable").await;
    let (active, secondary, mut client) = journaled_share(&app).await;
    let first = last_sync(&app, &secondary).await;
    assert_eq!(first["files_total"], 200, "{first}");
    assert!(
        first["detail"].is_null() || !first["detail"].as_str().unwrap().contains("journal"),
        "{first}"
    );

    client.mkdir("docs").await.unwrap();
    client.write_file("docs/a.txt", b"alpha").await.unwrap();
    client.write_file("seed-007", b"rewritten").await.unwrap();
    // Written behind the server's back: no journal record, so a journal sync misses it.
    std::fs::write(active_dir(&app, &active).await.join("unseen"), b"x").unwrap();
    app.update_replicas_once().await;

    // The syncs since (the debounced one may have run before the periodic one): all from
    // the journal, looking at the changed paths and their parents only.
    let records = syncs_since(&app, &secondary, &first).await;
    assert!(!records.is_empty());
    let mut transferred = 0;
    for record in &records {
        let detail = record["detail"].as_str().unwrap_or_default();
        assert!(detail.contains("from the change journal"), "{record}");
        assert!(detail.contains("no tree walk"), "{record}");
        let examined: u64 = detail
            .split(": ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{record}"));
        // docs, docs/a.txt, seed-007, their parent (the root) and what the previous sync
        // flagged racy: a handful, against 202 entries.
        assert!(examined <= 6, "{record}");
        assert_eq!(record["files_total"], 202, "{record}");
        transferred += record["files_transferred"].as_u64().unwrap();
    }
    // docs, docs/a.txt and seed-007 (the root's new mtime rides along).
    assert_eq!(transferred, 3, "{records:?}");
    let mut reader = mount(&app, &nfs_location(&app, &secondary).await)
        .await
        .unwrap();
    assert_eq!(reader.read_file("docs/a.txt").await.unwrap(), b"alpha");
    assert_eq!(reader.read_file("seed-007").await.unwrap(), b"rewritten");
    assert_eq!(
        reader.read_file("unseen").await.err(),
        Some(NfsError::Status(nfsstat3::NFS3ERR_NOENT))
    );
    app.finish().await;
}

#[tokio::test]
async fn the_verification_walk_catches_changes_behind_the_servers_back() {
    // Every sync verifies (walks the whole tree): the change made on disk is found.
    let app = nfs_app_with(
        "readable",
        shoal_driver::LocalOptions {
            verify_interval: std::time::Duration::ZERO,
            ..shoal_driver::LocalOptions::default()
        },
    )
    .await;
    let (active, secondary, mut client) = journaled_share(&app).await;
    client.write_file("through-nfs", b"seen").await.unwrap();
    std::fs::write(active_dir(&app, &active).await.join("unseen"), b"x").unwrap();
    app.update_replicas_once().await;
    let record = last_sync(&app, &secondary).await;
    assert!(
        !record["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("journal"),
        "{record}"
    );
    let mut reader = mount(&app, &nfs_location(&app, &secondary).await)
        .await
        .unwrap();
    assert_eq!(reader.read_file("unseen").await.unwrap(), b"x");
    assert_eq!(reader.read_file("through-nfs").await.unwrap(), b"seen");
    app.finish().await;
}

#[tokio::test]
async fn secondaries_follow_writes_without_the_periodic_update() {
    let app = nfs_app("readable").await;
    let (_active, secondary, mut client) = journaled_share(&app).await;
    let mut reader = mount(&app, &nfs_location(&app, &secondary).await)
        .await
        .unwrap();
    // Several rounds: each write reaches the secondary through the debounced update alone
    // (nothing here ticks the periodic one).
    for round in 0..3 {
        let name = format!("round-{round}");
        client.write_file(&name, name.as_bytes()).await.unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            match reader.read_file(&name).await {
                Ok(data) => {
                    assert_eq!(data, name.as_bytes());
                    break;
                }
                Err(NfsError::Status(nfsstat3::NFS3ERR_NOENT)) => {}
                Err(other) => panic!("{other:?}"),
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{name} never reached the secondary"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let record = last_sync(&app, &secondary).await;
    assert!(
        record["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("from the change journal"),
        "{record}"
    );
    app.finish().await;
}
