//! Replica list and show, `GET /v2/share-replicas[/detail]` and `GET /v2/share-replicas/{id}`:
//! checklist groups G (131–150) and H (151–158), replication.md §4, §5.2, §5.3.

use serde_json::json;

use crate::replica_fixtures::*;

const SUMMARY: &[&str] = &["id", "share_id", "status", "replica_state"];
const DETAIL: &[&str] = &[
    "id",
    "share_id",
    "availability_zone",
    "created_at",
    "status",
    "share_network_id",
    "replica_state",
    "updated_at",
];

fn with(base: &[&str], more: &[&str]) -> Vec<String> {
    let all: Vec<&str> = base.iter().chain(more.iter()).copied().collect();
    sorted(&all)
}

#[tokio::test]
async fn g131_summary_items_have_exactly_four_fields() {
    let app = app().await;
    replicated(&app, "admin").await;
    let resp = get_as(&app, "admin", V, "/v2/share-replicas").await;
    let body = resp.json();
    assert_eq!(keys(&body), sorted(&["share_replicas"]), "{body}");
    let list = items(&resp);
    assert_eq!(list.len(), 2);
    for item in &list {
        assert_eq!(keys(item), sorted(SUMMARY), "{item}");
    }
    app.finish().await;
}

#[tokio::test]
async fn g132_member_detail_at_2_56_has_exactly_the_detail_fields() {
    let app = keystone_app().await;
    replicated(&app, "alice").await;
    let list = items(&get_as(&app, "alice", V, "/v2/share-replicas/detail").await);
    assert_eq!(list.len(), 2);
    for item in &list {
        assert_eq!(keys(item), sorted(DETAIL), "{item}");
    }
    app.finish().await;
}

#[tokio::test]
async fn g133_admin_detail_at_2_29_adds_host_and_server_not_cast() {
    let app = app().await;
    replicated(&app, "admin").await;
    let list = items(&get_as(&app, "admin", "2.29", "/v2/share-replicas/detail").await);
    assert_eq!(list.len(), 2);
    for item in &list {
        assert_eq!(
            keys(item),
            with(DETAIL, &["share_server_id", "host"]),
            "{item}"
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn g134_admin_detail_at_2_30_adds_cast_rules_to_readonly() {
    let app = app().await;
    replicated(&app, "admin").await;
    let list = items(&get_as(&app, "admin", "2.30", "/v2/share-replicas/detail").await);
    for item in &list {
        assert_eq!(
            keys(item),
            with(
                DETAIL,
                &["share_server_id", "host", "cast_rules_to_readonly"]
            ),
            "{item}"
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn g135_detail_at_2_95_has_metadata_for_admins_and_members() {
    let app = keystone_app().await;
    replicated(&app, "alice").await;
    for user in ["alice", "admin"] {
        let list = items(&get_as(&app, user, V95, "/v2/share-replicas/detail").await);
        assert_eq!(list.len(), 2);
        for item in &list {
            assert_eq!(item["metadata"], json!({}), "{user}: {item}");
        }
    }
    app.finish().await;
}

#[tokio::test]
async fn g136_summary_at_2_99_still_has_four_fields() {
    let app = app().await;
    replicated(&app, "admin").await;
    for item in items(&get_as(&app, "admin", "2.99", "/v2/share-replicas").await) {
        assert_eq!(keys(&item), sorted(SUMMARY), "{item}");
    }
    app.finish().await;
}

#[tokio::test]
async fn g137_member_lists_only_own_projects_replicas() {
    let app = keystone_app().await;
    let (alice_share, _, _) = replicated(&app, "alice").await;
    let bob_share = available_share(&app, "bob").await;
    let list = items(&get_as(&app, "alice", V, "/v2/share-replicas").await);
    assert_eq!(list.len(), 2);
    assert!(list.iter().all(|r| r["share_id"] == alice_share.as_str()));
    let list = items(&get_as(&app, "bob", V, "/v2/share-replicas").await);
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["share_id"], bob_share.as_str());
    app.finish().await;
}

#[tokio::test]
async fn g138_admin_lists_every_project_without_all_tenants() {
    let app = keystone_app().await;
    replicated(&app, "alice").await;
    available_share(&app, "bob").await;
    let list = items(&get_as(&app, "admin", V, "/v2/share-replicas").await);
    assert_eq!(list.len(), 3);
    app.finish().await;
}

#[tokio::test]
async fn g139_share_id_filter_keeps_that_shares_replicas() {
    let app = app().await;
    let (share, active, secondary) = replicated(&app, "admin").await;
    available_share(&app, "admin").await;
    let list = items(
        &get_as(
            &app,
            "admin",
            V,
            &format!("/v2/share-replicas?share_id={share}"),
        )
        .await,
    );
    let mut got = ids(&list);
    got.sort();
    let mut want = vec![active, secondary];
    want.sort();
    assert_eq!(got, want);
    app.finish().await;
}

#[tokio::test]
async fn g140_unknown_share_id_gives_an_empty_list() {
    let app = app().await;
    replicated(&app, "admin").await;
    let resp = get_as(
        &app,
        "admin",
        V,
        &format!("/v2/share-replicas?share_id={MISSING}"),
    )
    .await;
    assert_eq!(resp.json(), json!({"share_replicas": []}));
    app.finish().await;
}

#[tokio::test]
async fn g141_member_filtering_by_other_projects_share_gets_empty_list() {
    let app = keystone_app().await;
    let (share, _, _) = replicated(&app, "alice").await;
    let resp = get_as(
        &app,
        "bob",
        V,
        &format!("/v2/share-replicas/detail?share_id={share}"),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"share_replicas": []}));
    app.finish().await;
}

#[tokio::test]
async fn g142_limit_gives_a_next_link_with_marker() {
    let app = app().await;
    replicated(&app, "admin").await;
    let resp = get_as(&app, "admin", V, "/v2/share-replicas?limit=1").await;
    let list = items(&resp);
    assert_eq!(list.len(), 1);
    let body = resp.json();
    let link = &body["share_replica_links"][0];
    assert_eq!(link["rel"], "next", "{body}");
    let href = link["href"].as_str().unwrap();
    let id = list[0]["id"].as_str().unwrap();
    assert!(href.contains(&format!("marker={id}")), "{href}");
    assert!(href.contains("limit=1"), "{href}");
    assert!(href.contains("/v2/share-replicas?"), "{href}");
    app.finish().await;
}

#[tokio::test]
async fn g143_limit_and_offset_give_the_second_in_creation_order() {
    let app = app().await;
    let (share, active, secondary) = replicated(&app, "admin").await;
    let first = items(
        &get_as(
            &app,
            "admin",
            V,
            &format!("/v2/share-replicas?share_id={share}&limit=1"),
        )
        .await,
    );
    assert_eq!(ids(&first), vec![active]);
    let second = items(
        &get_as(
            &app,
            "admin",
            V,
            &format!("/v2/share-replicas?share_id={share}&limit=1&offset=1"),
        )
        .await,
    );
    assert_eq!(ids(&second), vec![secondary]);
    app.finish().await;
}

#[tokio::test]
async fn g144_non_integer_limit_is_400() {
    let app = app().await;
    get_as(&app, "admin", V, "/v2/share-replicas?limit=abc")
        .await
        .assert_fault(400, "badRequest", Some("limit param must be an integer"));
    app.finish().await;
}

#[tokio::test]
async fn g145_negative_limit_is_400() {
    let app = app().await;
    get_as(&app, "admin", V, "/v2/share-replicas/detail?limit=-1")
        .await
        .assert_fault(400, "badRequest", Some("limit param must be positive"));
    app.finish().await;
}

#[tokio::test]
async fn g146_negative_offset_is_400() {
    let app = app().await;
    get_as(&app, "admin", V, "/v2/share-replicas?offset=-1")
        .await
        .assert_fault(400, "badRequest", Some("offset param must be positive"));
    app.finish().await;
}

#[tokio::test]
async fn g147_offset_past_the_end_gives_an_empty_list() {
    let app = app().await;
    replicated(&app, "admin").await;
    let list = items(&get_as(&app, "admin", V, "/v2/share-replicas?offset=5").await);
    assert!(list.is_empty(), "{list:?}");
    app.finish().await;
}

#[tokio::test]
async fn g148_reader_lists() {
    let app = keystone_app().await;
    replicated(&app, "alice").await;
    for path in ["/v2/share-replicas", "/v2/share-replicas/detail"] {
        assert_eq!(items(&get_as(&app, "rita", V, path).await).len(), 2);
    }
    app.finish().await;
}

#[tokio::test]
async fn g149_caller_without_any_role_is_403() {
    let app = keystone_app().await;
    for path in ["/v2/share-replicas", "/v2/share-replicas/detail"] {
        get_as(&app, "nobody", V, path)
            .await
            .assert_fault(403, "forbidden", Some(DENIED));
    }
    app.finish().await;
}

#[tokio::test]
async fn g150_unknown_query_params_are_ignored() {
    let app = app().await;
    replicated(&app, "admin").await;
    let list = items(
        &get_as(
            &app,
            "admin",
            V,
            "/v2/share-replicas/detail?status=error&replica_state=error&sort_key=id",
        )
        .await,
    );
    assert_eq!(list.len(), 2);
    app.finish().await;
}

#[tokio::test]
async fn h151_show_has_the_detail_fields() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    let resp = show_replica(&app, "alice", V, &secondary).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    assert_eq!(keys(&body), sorted(&["share_replica"]));
    assert_eq!(keys(&body["share_replica"]), sorted(DETAIL));
    assert_eq!(body["share_replica"]["id"], secondary.as_str());
    let admin = show_replica(&app, "admin", V, &secondary).await.json();
    assert_eq!(
        keys(&admin["share_replica"]),
        with(
            DETAIL,
            &["share_server_id", "host", "cast_rules_to_readonly"]
        )
    );
    app.finish().await;
}

#[tokio::test]
async fn h152_unknown_id_is_404() {
    let app = app().await;
    show_replica(&app, "admin", V, MISSING).await.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Replica {MISSING} not found.")),
    );
    app.finish().await;
}

#[tokio::test]
async fn h153_member_showing_other_projects_replica_is_404() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    show_replica(&app, "bob", V, &secondary).await.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Replica {secondary} not found.")),
    );
    app.finish().await;
}

#[tokio::test]
async fn h154_admin_shows_other_projects_replica() {
    let app = keystone_app().await;
    let (_, _, secondary) = replicated(&app, "alice").await;
    let resp = show_replica(&app, "admin", V, &secondary).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["share_replica"]["id"], secondary.as_str());
    app.finish().await;
}

#[tokio::test]
async fn h155_active_replica_shows_active_and_no_cast() {
    let app = app().await;
    let (_, active, _) = replicated(&app, "admin").await;
    let resp = show_replica(&app, "admin", "2.30", &active).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let view = &resp.json()["share_replica"];
    assert_eq!(view["replica_state"], "active", "{view}");
    assert_eq!(view["cast_rules_to_readonly"], false, "{view}");
    app.finish().await;
}

#[tokio::test]
async fn h156_share_id_is_not_a_replica_id() {
    let app = app().await;
    let (share, _, _) = replicated(&app, "admin").await;
    show_replica(&app, "admin", V, &share).await.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Replica {share} not found.")),
    );
    app.finish().await;
}

fn is_manila_timestamp(value: &serde_json::Value) -> bool {
    let Some(text) = value.as_str() else {
        return false;
    };
    let bytes = text.as_bytes();
    bytes.len() == 26
        && bytes.iter().enumerate().all(|(i, b)| match i {
            4 | 7 => *b == b'-',
            10 => *b == b'T',
            13 | 16 => *b == b':',
            19 => *b == b'.',
            _ => b.is_ascii_digit(),
        })
}

#[tokio::test]
async fn h157_timestamps_have_microseconds_and_no_zone() {
    let app = app().await;
    let (_, active, secondary) = replicated(&app, "admin").await;
    for id in [active, secondary] {
        let view = replica(&app, &id).await;
        for key in ["created_at", "updated_at"] {
            assert!(is_manila_timestamp(&view[key]), "{key} of {view}");
        }
    }
    app.finish().await;
}

#[tokio::test]
async fn h158_show_at_2_95_has_the_metadata_set_at_create() {
    let app = app().await;
    let share = available_share(&app, "admin").await;
    let resp = post_replica(
        &app,
        "admin",
        V95,
        json!({"share_replica": {"share_id": share, "metadata": {"k1": "v1", "k2": "v2"}}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let id = resp.json()["share_replica"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    let shown = show_replica(&app, "admin", V95, &id).await.json();
    assert_eq!(
        shown["share_replica"]["metadata"],
        json!({"k1": "v1", "k2": "v2"})
    );
    app.finish().await;
}
