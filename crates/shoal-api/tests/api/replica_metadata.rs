//! Replica metadata, `/v2/share-replicas/{id}/metadata[/{key}]` (≥2.95): checklist group Q
//! (246–267), replication.md §5.9.

use serde_json::{Value, json};
use shoal_testkit::{TestApp, TestResponse};

use crate::replica_fixtures::*;

fn path(id: &str) -> String {
    format!("/v2/share-replicas/{id}/metadata")
}

async fn meta(
    app: &TestApp,
    user: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> TestResponse {
    let mut req = app
        .request(method, path)
        .version(V95)
        .token(&app.token_for(user));
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await
}

async fn get_meta(app: &TestApp, id: &str) -> Value {
    let resp = meta(app, "admin", reqwest::Method::GET, &path(id), None).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["metadata"].clone()
}

async fn post_meta(app: &TestApp, id: &str, body: Value) -> TestResponse {
    meta(app, "admin", reqwest::Method::POST, &path(id), Some(body)).await
}

/// A replicated share with an in_sync secondary carrying `{"b": "2"}` (set at create).
async fn with_metadata(app: &TestApp, user: &str) -> (String, String, String) {
    let share = available_share(app, user).await;
    let active = active_of(app, &share).await;
    let resp = post_replica(
        app,
        user,
        V95,
        json!({"share_replica": {"share_id": share, "metadata": {"b": "2"}}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let id = resp.json()["share_replica"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    app.settle().await;
    (share, active, id)
}

#[tokio::test]
async fn q246_metadata_is_hidden_at_2_94() {
    let app = app().await;
    let (_, _, id) = replicated(&app, "admin").await;
    app.get(&path(&id))
        .version("2.94")
        .send()
        .await
        .assert_fault(404, "itemNotFound", Some(NOT_FOUND));
    app.finish().await;
}

#[tokio::test]
async fn q247_metadata_at_2_95() {
    let app = app().await;
    let (_, _, id) = replicated(&app, "admin").await;
    let resp = meta(&app, "admin", reqwest::Method::GET, &path(&id), None).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"metadata": {}}));
    app.finish().await;
}

#[tokio::test]
async fn q248_post_merges_and_answers_what_was_sent() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    let resp = post_meta(&app, &id, json!({"metadata": {"a": "1"}})).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"metadata": {"a": "1"}}));
    assert_eq!(get_meta(&app, &id).await, json!({"a": "1", "b": "2"}));
    app.finish().await;
}

#[tokio::test]
async fn q249_post_overwrites_an_existing_key() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    let resp = post_meta(&app, &id, json!({"metadata": {"b": "3"}})).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(get_meta(&app, &id).await, json!({"b": "3"}));
    app.finish().await;
}

#[tokio::test]
async fn q250_put_replaces_everything() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    let resp = meta(
        &app,
        "admin",
        reqwest::Method::PUT,
        &path(&id),
        Some(json!({"metadata": {"c": "3"}})),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"metadata": {"c": "3"}}));
    assert_eq!(get_meta(&app, &id).await, json!({"c": "3"}));
    app.finish().await;
}

#[tokio::test]
async fn q251_put_empty_object_clears() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    let resp = meta(
        &app,
        "admin",
        reqwest::Method::PUT,
        &path(&id),
        Some(json!({"metadata": {}})),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(get_meta(&app, &id).await, json!({}));
    app.finish().await;
}

#[tokio::test]
async fn q252_put_null_clears_and_answers_empty_object() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    let resp = meta(
        &app,
        "admin",
        reqwest::Method::PUT,
        &path(&id),
        Some(json!({"metadata": null})),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"metadata": {}}));
    assert_eq!(get_meta(&app, &id).await, json!({}));
    app.finish().await;
}

#[tokio::test]
async fn q253_get_one_key() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    assert_eq!(
        post_meta(&app, &id, json!({"metadata": {"a": "1"}}))
            .await
            .status,
        200
    );
    let resp = meta(
        &app,
        "admin",
        reqwest::Method::GET,
        &format!("{}/a", path(&id)),
        None,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"meta": {"a": "1"}}));
    app.finish().await;
}

#[tokio::test]
async fn q254_get_missing_key_is_404() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    meta(
        &app,
        "admin",
        reqwest::Method::GET,
        &format!("{}/missing", path(&id)),
        None,
    )
    .await
    .assert_fault(
        404,
        "itemNotFound",
        Some("MetadataItemNotFound: Metadata item is not found."),
    );
    app.finish().await;
}

#[tokio::test]
async fn q255_post_one_key() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    let resp = meta(
        &app,
        "admin",
        reqwest::Method::POST,
        &format!("{}/a", path(&id)),
        Some(json!({"metadata": {"a": "9"}})),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"metadata": {"a": "9"}}));
    assert_eq!(get_meta(&app, &id).await, json!({"a": "9", "b": "2"}));
    app.finish().await;
}

#[tokio::test]
async fn q256_post_one_key_with_other_key_in_body_is_400() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    meta(
        &app,
        "admin",
        reqwest::Method::POST,
        &format!("{}/a", path(&id)),
        Some(json!({"metadata": {"b": "9"}})),
    )
    .await
    .assert_fault(400, "badRequest", Some("Request body and URI mismatch"));
    assert_eq!(get_meta(&app, &id).await, json!({"b": "2"}));
    app.finish().await;
}

#[tokio::test]
async fn q257_post_one_key_with_two_keys_is_400() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    meta(
        &app,
        "admin",
        reqwest::Method::POST,
        &format!("{}/a", path(&id)),
        Some(json!({"metadata": {"a": "9", "b": "1"}})),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Request body contains too many items"),
    );
    app.finish().await;
}

#[tokio::test]
async fn q258_delete_key_is_200_and_removes_it() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    let resp = meta(
        &app,
        "admin",
        reqwest::Method::DELETE,
        &format!("{}/b", path(&id)),
        None,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(get_meta(&app, &id).await, json!({}));
    app.finish().await;
}

#[tokio::test]
async fn q259_delete_missing_key_is_404() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    meta(
        &app,
        "admin",
        reqwest::Method::DELETE,
        &format!("{}/missing", path(&id)),
        None,
    )
    .await
    .assert_fault(
        404,
        "itemNotFound",
        Some("MetadataItemNotFound: Metadata item is not found."),
    );
    app.finish().await;
}

#[tokio::test]
async fn q260_post_without_metadata_key_is_400() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    post_meta(&app, &id, json!({"meta": {"a": "1"}}))
        .await
        .assert_fault(400, "badRequest", Some("Malformed request body"));
    app.finish().await;
}

#[tokio::test]
async fn q261_blank_value_is_400() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    post_meta(&app, &id, json!({"metadata": {"a": ""}}))
        .await
        .assert_fault(400, "badRequest", Some("Metadata property value is blank."));
    meta(
        &app,
        "admin",
        reqwest::Method::PUT,
        &path(&id),
        Some(json!({"metadata": {"a": ""}})),
    )
    .await
    .assert_fault(400, "badRequest", Some("Metadata property value is blank."));
    assert_eq!(get_meta(&app, &id).await, json!({"b": "2"}));
    app.finish().await;
}

#[tokio::test]
async fn q262_unknown_replica_is_404() {
    let app = app().await;
    for (method, suffix, body) in [
        (reqwest::Method::GET, "", None),
        (
            reqwest::Method::POST,
            "",
            Some(json!({"metadata": {"a": "1"}})),
        ),
        (reqwest::Method::GET, "/a", None),
        (reqwest::Method::DELETE, "/a", None),
    ] {
        meta(
            &app,
            "admin",
            method,
            &format!("{}{suffix}", path(MISSING)),
            body,
        )
        .await
        .assert_fault(404, "itemNotFound", Some("Share_replica not found."));
    }
    app.finish().await;
}

#[tokio::test]
async fn q263_member_of_other_project_gets_404() {
    let app = keystone_app().await;
    let (_, _, id) = with_metadata(&app, "alice").await;
    meta(&app, "bob", reqwest::Method::GET, &path(&id), None)
        .await
        .assert_fault(404, "itemNotFound", Some("Share_replica not found."));
    app.finish().await;
}

#[tokio::test]
async fn q264_reader_reading_metadata_is_403() {
    let app = keystone_app().await;
    let (_, _, id) = with_metadata(&app, "alice").await;
    meta(&app, "rita", reqwest::Method::GET, &path(&id), None)
        .await
        .assert_fault(403, "forbidden", Some(DENIED));
    meta(
        &app,
        "rita",
        reqwest::Method::GET,
        &format!("{}/b", path(&id)),
        None,
    )
    .await
    .assert_fault(403, "forbidden", Some(DENIED));
    app.finish().await;
}

#[tokio::test]
async fn q265_member_writes_and_deletes_own_metadata() {
    let app = keystone_app().await;
    let (_, _, id) = with_metadata(&app, "alice").await;
    let resp = meta(
        &app,
        "alice",
        reqwest::Method::POST,
        &path(&id),
        Some(json!({"metadata": {"a": "1"}})),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = meta(
        &app,
        "alice",
        reqwest::Method::DELETE,
        &format!("{}/b", path(&id)),
        None,
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = meta(&app, "alice", reqwest::Method::GET, &path(&id), None).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"metadata": {"a": "1"}}));
    app.finish().await;
}

#[tokio::test]
async fn q266_replica_view_reflects_metadata_and_share_metadata_is_untouched() {
    let app = app().await;
    let (share, _, id) = with_metadata(&app, "admin").await;
    assert_eq!(
        post_meta(&app, &id, json!({"metadata": {"a": "1"}}))
            .await
            .status,
        200
    );
    let view = show_replica(&app, "admin", V95, &id).await.json();
    assert_eq!(
        view["share_replica"]["metadata"],
        json!({"a": "1", "b": "2"})
    );
    let share_meta = app
        .get(&format!("/v2/shares/{share}/metadata"))
        .version(V95)
        .send()
        .await;
    assert_eq!(share_meta.status, 200, "{}", share_meta.text());
    let share_meta = share_meta.json()["metadata"].clone();
    assert!(share_meta.get("a").is_none(), "{share_meta}");
    assert!(share_meta.get("b").is_none(), "{share_meta}");
    app.finish().await;
}

#[tokio::test]
async fn q267_metadata_survives_promotion() {
    let app = app().await;
    let (_, _, id) = with_metadata(&app, "admin").await;
    let resp = action(&app, "admin", V, &id, json!({"promote": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    assert_eq!(replica(&app, &id).await["replica_state"], "active");
    assert_eq!(get_meta(&app, &id).await, json!({"b": "2"}));
    app.finish().await;
}
