//! Checklist group C: fault envelope, route misses, bodies and request ids (api-basics §5).

use std::time::Duration;

use serde_json::json;
use shoal_testkit::TestApp;

#[tokio::test]
async fn c38_route_miss_is_raw_404_without_version_headers() {
    let app = TestApp::noauth().await;
    let resp = app
        .get("/v2/no-such-thing")
        .version("2.56")
        .header("Accept", "application/json")
        .send()
        .await;
    assert_eq!(resp.status, 404);
    let body = resp.json();
    assert!(body.get("itemNotFound").is_none(), "{body}");
    assert_eq!(body["code"], "404 Not Found");
    assert!(resp.header("x-openstack-manila-api-version").is_none());
    assert!(
        resp.header("x-openstack-request-id")
            .unwrap()
            .starts_with("req-")
    );
    app.finish().await;
}

#[tokio::test]
async fn c_routed_path_with_unknown_method_is_item_not_found() {
    let app = TestApp::noauth().await;
    let resp = app
        .delete("/v2/availability-zones")
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some("The resource could not be found."),
    );
    assert_eq!(resp.header("x-openstack-manila-api-version"), Some("2.56"));
    app.finish().await;
}

#[tokio::test]
async fn c33_c35_faults_are_json_envelopes() {
    let app = TestApp::keystone().await;
    let resp = app
        .post("/v2/types")
        .token(&app.token_for("alice"))
        .version("2.56")
        .json(&json!({}))
        .send()
        .await;
    resp.assert_fault(
        403,
        "forbidden",
        Some("Access was denied to this resource."),
    );
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let resp = app
        .post("/v2/types")
        .version("2.56")
        .token(&app.token_for("admin"))
        .json(&json!({}))
        .send()
        .await;
    resp.assert_fault(400, "badRequest", None);
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    app.finish().await;
}

#[tokio::test]
async fn c34_missing_resource_is_item_not_found() {
    let app = TestApp::noauth().await;
    let resp = app
        .get("/v2/types/00000000-0000-4000-8000-000000000000")
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(404, "itemNotFound", None);
    app.finish().await;
}

#[tokio::test]
async fn c36_conflicts_are_conflicting_request() {
    let app = TestApp::noauth().await;
    let body = json!({"share_type": {"name": "dup", "extra_specs": {"driver_handles_share_servers": false}}});
    assert_eq!(
        app.post("/v2/types")
            .version("2.56")
            .json(&body)
            .send()
            .await
            .status,
        200
    );
    let resp = app
        .post("/v2/types")
        .version("2.56")
        .json(&body)
        .send()
        .await;
    resp.assert_fault(409, "conflictingRequest", None);
    assert_eq!(resp.header("x-openstack-manila-api-version"), Some("2.56"));
    app.finish().await;
}

#[tokio::test]
async fn c40_to_c43_action_body_plumbing() {
    let app = TestApp::noauth().await;
    let created = app
        .post("/v2/types")
        .version("2.56")
        .json(
            &json!({"share_type": {"name": "private", "share_type_access:is_public": false,
            "extra_specs": {"driver_handles_share_servers": false}}}),
        )
        .send()
        .await;
    let id = created.json()["share_type"]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let action = format!("/v2/types/{id}/action");
    let resp = app
        .post(&action)
        .version("2.56")
        .body(None, "{\"addProjectAccess\": {}}")
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some("There is no such action: None"));
    let resp = app
        .post(&action)
        .version("2.56")
        .json(&json!({"a": {}, "b": {}}))
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some("Malformed request body"));
    let resp = app
        .post(&action)
        .version("2.56")
        .json(&json!({"frobnicate": {}}))
        .send()
        .await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("There is no such action: frobnicate"),
    );
    let resp = app
        .post(&action)
        .version("2.56")
        .body(Some("application/json"), "{not json")
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some("Malformed request body"));
    app.finish().await;
}

#[tokio::test]
async fn c45_every_response_has_a_request_id() {
    let app = TestApp::noauth().await;
    let a = app
        .get("/v2/availability-zones")
        .version("2.56")
        .send()
        .await;
    let b = app
        .get("/v2/availability-zones")
        .version("2.56")
        .send()
        .await;
    let (ra, rb) = (
        a.header("x-openstack-request-id").unwrap(),
        b.header("x-openstack-request-id").unwrap(),
    );
    assert!(ra.starts_with("req-") && rb.starts_with("req-"));
    assert_ne!(ra, rb);
    assert_eq!(a.header("x-compute-request-id"), Some(ra));
    let fault = app
        .get("/v2/availability-zones")
        .version("latest")
        .send()
        .await;
    assert!(
        fault
            .header("x-openstack-request-id")
            .unwrap()
            .starts_with("req-")
    );
    app.finish().await;
}

#[tokio::test]
async fn c_oversize_bodies_are_refused_with_413() {
    let app = TestApp::noauth().await;
    let big = format!(
        "{{\"share_type\": {{\"name\": \"{}\"}}}}",
        "x".repeat(200_000)
    );
    let resp = app
        .post("/v2/types")
        .version("2.56")
        .body(Some("application/json"), big)
        .send()
        .await;
    assert_eq!(resp.status, 413);
    // Nothing was created.
    let list = app.get("/v2/types").version("2.56").send().await.json();
    assert_eq!(list["share_types"].as_array().unwrap().len(), 0);
    app.finish().await;
}

#[tokio::test]
async fn c_wrong_json_types_never_give_500() {
    let app = TestApp::noauth().await;
    let bodies = [
        json!(null),
        json!([]),
        json!("text"),
        json!({"share_type": null}),
        json!({"share_type": []}),
        json!({"share_type": {"name": 5}}),
        json!({"share_type": {"name": "n", "extra_specs": "x"}}),
        json!({"share_type": {"name": "n", "extra_specs": {"driver_handles_share_servers": {"a": 1}}}}),
        json!({"share_type": {"name": "n", "share_type_access:is_public": "maybe",
            "extra_specs": {"driver_handles_share_servers": false}}}),
        json!({"share_type": {"name": "n", "description": 7, "extra_specs": {"driver_handles_share_servers": false}}}),
    ];
    for body in bodies {
        let resp = app
            .post("/v2/types")
            .version("2.56")
            .json(&body)
            .send()
            .await;
        assert!(
            (400..500).contains(&resp.status),
            "{body} gave {}: {}",
            resp.status,
            resp.text()
        );
    }
    app.finish().await;
}

/// Sends `POST path` with a body of `len` bytes on a new connection and returns the answer's
/// head, lowercased, and whether a second request on that connection got an answer.
async fn post_raw(app: &TestApp, path: &str, token: &str, len: usize) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
         x-auth-token: {token}\r\ncontent-length: {len}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.expect("head");
    // The server may answer and close before taking it all.
    let body = vec![b' '; len];
    let _ = tokio::time::timeout(Duration::from_millis(500), stream.write_all(&body)).await;
    let mut buf = vec![0u8; 8192];
    let n = stream.read(&mut buf).await.unwrap_or(0);
    let text = String::from_utf8_lossy(&buf[..n]).to_lowercase();
    let head = text.split("\r\n\r\n").next().unwrap_or_default().to_owned();
    let reused = stream
        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n")
        .await
        .is_ok()
        && tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
            .await
            .is_ok_and(|read| read.is_ok_and(|n| n > 0));
    (head, reused)
}

#[tokio::test]
async fn test_reproduce_an_answer_before_the_whole_body_says_connection_close() {
    // Found by the HTTP fuzzer: after a 413 (or a route miss) the server dropped the
    // connection without saying so, and a client's next request on it got no answer.
    let app = TestApp::noauth().await;
    let (head, reused) = post_raw(&app, "/v2/shares", "admin:p", 200_000).await;
    assert!(head.starts_with("http/1.1 413"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    assert!(!reused);
    let (head, _) = post_raw(&app, "/v2/nothing-here", "admin:p", 60_000).await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
    assert!(head.contains("connection: close"), "{head}");
    // A body read to its end keeps the connection open.
    let (head, reused) = post_raw(&app, "/v2/shares", "admin:p", 2).await;
    assert!(head.starts_with("http/1.1 422"), "{head}");
    assert!(!head.contains("connection: close"), "{head}");
    assert!(reused);
    app.finish().await;
}

/// Found by the HTTP fuzzer on PostgreSQL, which cannot hold or compare a NUL in text: an
/// id or a body string with one was a 500 there. Refused on every engine, before any query.
#[tokio::test]
async fn nul_characters_in_urls_and_bodies_are_refused_with_400() {
    let app = TestApp::noauth().await;
    for path in ["/v2/quota-sets/%00/detail", "/v2/shares?name=a%00"] {
        let resp = app.get(path).version("2.95").send().await;
        resp.assert_fault(
            400,
            "badRequest",
            Some("Invalid input: text may not contain NUL characters."),
        );
        assert!(resp.header("x-openstack-request-id").is_some());
    }
    let resp = app
        .post("/v2/types")
        .version("2.95")
        .json(&serde_json::json!({"share_type": {"name": "a\u{0}b", "extra_specs": {"driver_handles_share_servers": false}}}))
        .send()
        .await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("Invalid input: text may not contain NUL characters."),
    );
    app.finish().await;
}
