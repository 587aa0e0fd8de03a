//! Export locations of replicas: checklist groups O (replica export locations, 226–239) and
//! P (share export locations of a replicated share, 240–245); replication.md §5.8 and §9.
//! The dummy back end gives each instance three locations (§9): `11.0.0.11` admin-only,
//! `10.0.0.10` preferred, `10.0.0.20`.

use serde_json::{Value, json};

use crate::replica_fixtures::*;

const EL_SUMMARY: &[&str] = &[
    "id",
    "path",
    "preferred",
    "replica_state",
    "availability_zone",
];

fn paths(list: &[Value]) -> Vec<String> {
    let mut paths: Vec<String> = list
        .iter()
        .map(|el| el["path"].as_str().expect("path").to_owned())
        .collect();
    paths.sort();
    paths
}

#[tokio::test]
async fn o226_replica_export_locations_are_hidden_at_2_46() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    replica_els(&app, "admin", "2.46", &secondary)
        .await
        .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    app.finish().await;
}

#[tokio::test]
async fn o227_experimental_between_2_47_and_2_55() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let path = format!("/v2/share-replicas/{secondary}/export-locations");
    for version in ["2.47", "2.55"] {
        app.get(&path).version(version).send().await.assert_fault(
            404,
            "itemNotFound",
            Some(NOT_FOUND),
        );
        let resp = app
            .get(&path)
            .version(version)
            .experimental("true")
            .send()
            .await;
        assert_eq!(els(&resp).len(), 3, "{version}");
    }
    app.finish().await;
}

#[tokio::test]
async fn o228_replica_export_locations_at_2_56() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    let resp = app
        .get(&format!("/v2/share-replicas/{secondary}/export-locations"))
        .version(V)
        .send()
        .await;
    assert_eq!(keys(&resp.json()), sorted(&["export_locations"]));
    assert_eq!(els(&resp).len(), 3);
    app.finish().await;
}

#[tokio::test]
async fn o229_member_items_have_summary_fields_and_no_admin_only() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    let list = els(&replica_els(&app, "alice", V, &secondary).await);
    assert_eq!(list.len(), 2, "{list:?}");
    for el in &list {
        assert_eq!(keys(el), sorted(EL_SUMMARY), "{el}");
        assert!(!el["path"].as_str().unwrap().starts_with("11.0.0.11"));
    }
    let list = els(&replica_els(&app, "alice", "2.87", &secondary).await);
    let mut with_metadata = EL_SUMMARY.to_vec();
    with_metadata.push("metadata");
    for el in &list {
        assert_eq!(keys(el), sorted(&with_metadata), "{el}");
    }
    app.finish().await;
}

#[tokio::test]
async fn o230_admin_items_add_instance_and_admin_only_flag() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    let list = els(&replica_els(&app, "admin", V, &secondary).await);
    assert_eq!(list.len(), 3, "{list:?}");
    let mut admin_keys = EL_SUMMARY.to_vec();
    admin_keys.extend(["share_instance_id", "is_admin_only"]);
    for el in &list {
        assert_eq!(keys(el), sorted(&admin_keys), "{el}");
        assert_eq!(el["share_instance_id"], secondary.as_str());
    }
    assert_eq!(
        list.iter().filter(|el| el["is_admin_only"] == true).count(),
        1
    );
    app.finish().await;
}

#[tokio::test]
async fn o231_secondary_locations_carry_its_state_and_az() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    for el in els(&replica_els(&app, "admin", V, &secondary).await) {
        assert_eq!(el["replica_state"], "in_sync", "{el}");
        assert_eq!(el["availability_zone"], "az2", "{el}");
    }
    reset_state(&app, &secondary, "out_of_sync").await;
    for el in els(&replica_els(&app, "admin", V, &secondary).await) {
        assert_eq!(el["replica_state"], "out_of_sync", "{el}");
    }
    app.finish().await;
}

#[tokio::test]
async fn o232_active_locations_say_active() {
    let app = app().await;
    let (_, active, _) = replicated(&app, "admin").await;
    let list = els(&replica_els(&app, "admin", V, &active).await);
    assert_eq!(list.len(), 3);
    for el in list {
        assert_eq!(el["replica_state"], "active", "{el}");
        assert_eq!(el["availability_zone"], "az1", "{el}");
    }
    app.finish().await;
}

#[tokio::test]
async fn o233_unknown_or_non_replica_instance_is_404() {
    let app = app().await;
    replica_els(&app, "admin", V, MISSING).await.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Share replica '{MISSING}' not found.")),
    );
    let plain = plain_share(&app, "admin").await;
    let share_els = els(&get_as(
        &app,
        "admin",
        V,
        &format!("/v2/shares/{plain}/export_locations"),
    )
    .await);
    let instance = share_els[0]["share_instance_id"]
        .as_str()
        .unwrap()
        .to_owned();
    replica_els(&app, "admin", V, &instance).await.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Share replica '{instance}' not found.")),
    );
    app.finish().await;
}

#[tokio::test]
async fn o234_show_one_location_adds_timestamps() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    let list = els(&replica_els(&app, "alice", V, &secondary).await);
    let el_id = list[0]["id"].as_str().unwrap();
    let resp = get_as(
        &app,
        "alice",
        V,
        &format!("/v2/share-replicas/{secondary}/export-locations/{el_id}"),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let el = &resp.json()["export_location"];
    let mut want = EL_SUMMARY.to_vec();
    want.extend(["created_at", "updated_at"]);
    assert_eq!(keys(el), sorted(&want), "{el}");
    assert_eq!(el["id"], el_id);
    app.finish().await;
}

#[tokio::test]
async fn o235_unknown_export_location_is_404() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    get_as(
        &app,
        "admin",
        V,
        &format!("/v2/share-replicas/{secondary}/export-locations/{MISSING}"),
    )
    .await
    .assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Export location {MISSING} could not be found.")),
    );
    app.finish().await;
}

#[tokio::test]
async fn o236_dummy_has_one_preferred_location_and_admins_see_three() {
    let app = keystone_app().await;
    let (_, active, secondary) = replicated(&app, "alice").await;
    for id in [&active, &secondary] {
        let member = els(&replica_els(&app, "alice", V, id).await);
        let preferred: Vec<&Value> = member.iter().filter(|el| el["preferred"] == true).collect();
        assert_eq!(preferred.len(), 1, "{member:?}");
        assert!(
            preferred[0]["path"]
                .as_str()
                .unwrap()
                .starts_with("10.0.0.10"),
            "{member:?}"
        );
        assert_eq!(els(&replica_els(&app, "admin", V, id).await).len(), 3);
    }
    app.finish().await;
}

#[tokio::test]
async fn o237_dummy_location_metadata_is_empty_at_2_87() {
    let app = app().await;
    let (_, _, secondary) = replicated(&app, "admin").await;
    for el in els(&replica_els(&app, "admin", "2.87", &secondary).await) {
        assert_eq!(el["metadata"], json!({}), "{el}");
    }
    app.finish().await;
}

#[tokio::test]
async fn o238_reader_lists_replica_export_locations() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    assert_eq!(
        els(&replica_els(&app, "rita", V, &secondary).await).len(),
        2
    );
    app.finish().await;
}

#[tokio::test]
async fn o239_member_of_other_project_gets_404() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    replica_els(&app, "bob", V, &secondary).await.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Share replica '{secondary}' not found.")),
    );
    app.finish().await;
}

#[tokio::test]
async fn p240_share_locations_at_2_46_include_secondaries() {
    let app = app().await;
    let (share, active, secondary) = replicated(&app, "admin").await;
    let list = els(&get_as(
        &app,
        "admin",
        "2.46",
        &format!("/v2/shares/{share}/export_locations"),
    )
    .await);
    assert_eq!(list.len(), 6, "{list:?}");
    for id in [&active, &secondary] {
        assert_eq!(
            list.iter()
                .filter(|el| el["share_instance_id"] == id.as_str())
                .count(),
            3
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn p241_share_locations_at_2_47_are_the_actives_only() {
    let app = app().await;
    let (share, active, _) = replicated(&app, "admin").await;
    let list = els(&get_as(
        &app,
        "admin",
        "2.47",
        &format!("/v2/shares/{share}/export_locations"),
    )
    .await);
    assert_eq!(list.len(), 3, "{list:?}");
    assert!(
        list.iter()
            .all(|el| el["share_instance_id"] == active.as_str())
    );
    app.finish().await;
}

#[tokio::test]
async fn p242_share_location_show_of_a_secondarys_location_is_404() {
    let app = app().await;
    let (share, _, secondary) = replicated(&app, "admin").await;
    let el_id = els(&replica_els(&app, "admin", V, &secondary).await)[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let resp = get_as(
        &app,
        "admin",
        "2.47",
        &format!("/v2/shares/{share}/export_locations/{el_id}"),
    )
    .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Export location '{el_id}' not found.")),
    );
    app.finish().await;
}

#[tokio::test]
async fn p243_member_share_locations_hide_admin_only_and_admin_fields() {
    let app = keystone_app().await;
    let (share, _, _) = replicated(&app, "alice").await;
    let list = els(&get_as(
        &app,
        "alice",
        V,
        &format!("/v2/shares/{share}/export_locations"),
    )
    .await);
    assert_eq!(list.len(), 2, "{list:?}");
    for el in &list {
        assert!(el.get("is_admin_only").is_none(), "{el}");
        assert!(el.get("share_instance_id").is_none(), "{el}");
        assert!(!el["path"].as_str().unwrap().starts_with("11.0.0.11"));
    }
    app.finish().await;
}

#[tokio::test]
async fn p244_member_showing_admin_only_share_location_is_403() {
    let app = keystone_app().await;
    let (share, _, _) = replicated(&app, "alice").await;
    let list = els(&get_as(
        &app,
        "admin",
        V,
        &format!("/v2/shares/{share}/export_locations"),
    )
    .await);
    let admin_only = list
        .iter()
        .find(|el| el["is_admin_only"] == true)
        .expect("an admin-only location")["id"]
        .as_str()
        .unwrap()
        .to_owned();
    get_as(
        &app,
        "alice",
        V,
        &format!("/v2/shares/{share}/export_locations/{admin_only}"),
    )
    .await
    .assert_fault(403, "forbidden", None);
    app.finish().await;
}

#[tokio::test]
async fn p245_share_view_at_2_8_embeds_active_paths_and_not_at_2_9() {
    let app = keystone_app().await;
    let (share, active, _) = replicated(&app, "alice").await;
    let active_paths = paths(&els(&replica_els(&app, "admin", V, &active).await));
    assert_eq!(active_paths.len(), 3);
    for user in ["alice", "admin"] {
        let resp = get_as(&app, user, "2.8", &format!("/v2/shares/{share}")).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        let view = resp.json()["share"].clone();
        let mut embedded: Vec<String> = view["export_locations"]
            .as_array()
            .unwrap_or_else(|| panic!("export_locations in {view}"))
            .iter()
            .map(|p| p.as_str().unwrap().to_owned())
            .collect();
        embedded.sort();
        assert_eq!(embedded, active_paths, "{user}");
        let one = view["export_location"].as_str().expect("export_location");
        assert!(active_paths.iter().any(|p| p == one), "{one}");
        let resp = get_as(&app, user, "2.9", &format!("/v2/shares/{share}")).await;
        let view = resp.json()["share"].clone();
        assert!(view.get("export_locations").is_none(), "{view}");
        assert!(view.get("export_location").is_none(), "{view}");
    }
    app.finish().await;
}
