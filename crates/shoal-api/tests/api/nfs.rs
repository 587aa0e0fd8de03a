//! The NFS data plane end to end: shares of `local` back ends created through the API are
//! mounted with a real NFSv3 client at their export locations, access rules allow and refuse
//! clients live, readable secondaries serve read-only, dr secondaries not at all, a promote
//! moves the exports with the roles, and a share's size is its quota.

use std::net::SocketAddr;

use serde_json::{Value, json};
use shoal_testkit::TestApp;
use shoal_core::config::AuthStrategy;
use shoal_testkit::nfs::{MOUNT_ACCES, MOUNT_NOENT, NfsError, NfsMount, export_path};

use crate::replica_fixtures::*;

use nfs3_client::nfs3_types::nfs3::nfsstat3;

/// Two local back ends (az1, az2) replicating `replication`; the share type `readable` has it.
async fn nfs_app(replication: &'static str) -> TestApp {
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
    app
}

fn server(app: &TestApp) -> SocketAddr {
    app.nfs_addr().expect("a node with local back ends serves NFS")
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
        .json(&json!({"allow_access": {"access_type": "ip", "access_to": to, "access_level": level}}))
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
    let nfs = all.iter().find(|el| el["path"] == location.as_str()).unwrap();
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
    assert_eq!(share_view(&app, &share).await["access_rules_status"], "active");
    let mut client = mount(&app, &location).await.expect("the rule admits 127.0.0.1");
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
    app.finish().await;
}

#[tokio::test]
async fn a_readable_secondary_serves_the_synced_data_read_only() {
    let app = nfs_app("readable").await;
    let share = available_share(&app, "admin").await;
    let active = active_of(&app, &share).await;
    allow(&app, &share, "127.0.0.1", "rw").await;
    let secondary = in_sync_replica(&app, "admin", &share).await;
    let mut writer = mount(&app, &nfs_location(&app, &active).await).await.unwrap();
    writer.write_file("hello.txt", b"from the active").await.unwrap();

    app.update_replicas_once().await;
    let location = nfs_location(&app, &secondary).await;
    assert_eq!(location, format!("127.0.0.1:/shares/{secondary}"));
    let mut reader = mount(&app, &location).await.expect("the rw rule admits reads");
    assert_eq!(reader.read_file("hello.txt").await.unwrap(), b"from the active");
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
    let mut new_writer = mount(&app, &nfs_location(&app, &secondary).await).await.unwrap();
    new_writer
        .write_file("after.txt", b"written on the new active")
        .await
        .unwrap();
    let mut old = mount(&app, &nfs_location(&app, &active).await).await.unwrap();
    assert_eq!(old.read_file("hello.txt").await.unwrap(), b"from the active");
    let refused = old.write_file("late.txt", b"too late").await.err();
    assert!(
        matches!(
            refused,
            Some(NfsError::Status(nfsstat3::NFS3ERR_ROFS | nfsstat3::NFS3ERR_JUKEBOX))
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
    let mut client = mount(&app, &nfs_location(&app, &active).await).await.unwrap();
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
