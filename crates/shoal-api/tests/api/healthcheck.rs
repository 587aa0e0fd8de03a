//! `/healthcheck` (oslo.middleware's healthcheck app in Manila's paste pipeline): anonymous
//! plain `OK`/503, `HEAD`, and the JSON details only for an admin who asks for JSON.

use std::sync::Arc;

use axum::body::Body;
use http_body_util::BodyExt;
use reqwest::Method;
use serde_json::json;
use shoal_api::{ApiState, Authenticator};
use shoal_testkit::{TEST_HOST, TestApp, TestResponse};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

fn assert_plain(resp: &TestResponse, status: u16, body: &str) {
    assert_eq!(resp.status, status, "body: {}", resp.text());
    assert_eq!(
        resp.header("content-type"),
        Some("text/plain; charset=UTF-8")
    );
    assert_eq!(resp.text(), body);
    // Outside microversion negotiation: no version headers.
    assert_eq!(resp.header("x-openstack-manila-api-version"), None);
}

#[tokio::test]
async fn healthy_node_answers_200_ok_without_a_token() {
    let app = TestApp::keystone().await;
    let resp = app.get("/healthcheck").anonymous().send().await;
    assert_plain(&resp, 200, "OK");
    // Asking for JSON without a token is no reason for a 401: still the plain form.
    let resp = app
        .get("/healthcheck")
        .anonymous()
        .header("Accept", "application/json")
        .send()
        .await;
    assert_plain(&resp, 200, "OK");
    app.finish().await;
}

#[tokio::test]
async fn head_answers_the_status_without_a_body() {
    let app = TestApp::noauth().await;
    let resp = app
        .request(Method::HEAD, "/healthcheck")
        .anonymous()
        .send()
        .await;
    assert_eq!(resp.status, 204);
    assert!(resp.body.is_empty());
    app.finish().await;
}

#[tokio::test]
async fn unreachable_database_answers_503() {
    let app = TestApp::noauth().await;
    // Kill the database the way a lost server would look: every query fails.
    app.core().store.close().await;
    let resp = app.get("/healthcheck").anonymous().send().await;
    assert_plain(&resp, 503, "database unreachable");
    let resp = app
        .request(Method::HEAD, "/healthcheck")
        .anonymous()
        .send()
        .await;
    assert_eq!(resp.status, 503);
    assert!(resp.body.is_empty());
    // An admin (every noauth token is one) sees which check failed and why.
    let resp = app
        .get("/healthcheck")
        .header("Accept", "application/json")
        .send()
        .await;
    assert_eq!(resp.status, 503);
    let body = resp.json();
    assert_eq!(body["healthy"], false);
    assert_eq!(body["checks"][0]["name"], "database");
    assert_eq!(body["checks"][0]["passed"], false);
    assert_eq!(body["checks"][0]["reason"], "database unreachable");
    assert!(body["checks"][0]["details"].is_string(), "{body}");
    assert_eq!(body["checks"][1]["passed"], true);
    // No `finish()`: its check for unfinished operations needs the database just closed.
    // Dropping the app removes the test database all the same.
}

#[tokio::test]
async fn shutting_down_answers_503() {
    // Once shutdown begins the listener stops accepting, so a new connection cannot see
    // the 503 over HTTP; call the node's service directly with the signal it watches.
    let app = TestApp::noauth().await;
    let core = app.core().clone();
    let state = ApiState {
        core: core.clone(),
        policy: Arc::new(shoal_policy::Enforcer::with_manila_defaults()),
        auth: Authenticator::Noauth,
        config: Arc::new(core.config.api.clone()),
        shutdown: CancellationToken::new(),
    };
    let service = shoal_api::service(state.clone());
    let probe = || {
        axum::http::Request::get("/healthcheck")
            .body(Body::empty())
            .unwrap()
    };
    let resp = service.clone().oneshot(probe()).await.unwrap();
    assert_eq!(resp.status(), 200);
    state.shutdown.cancel();
    let resp = service.oneshot(probe()).await.unwrap();
    assert_eq!(resp.status(), 503);
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"shutting down");
    app.finish().await;
}

/// The details an admin gets from a healthy default node.
fn healthy_details() -> serde_json::Value {
    json!({
        "detailed": true,
        "healthy": true,
        "hostname": TEST_HOST,
        "roles": ["api", "scheduler", "share"],
        "checks": [
            {"name": "database", "passed": true, "reason": "OK"},
            {"name": "shutdown", "passed": true, "reason": "OK"}
        ]
    })
}

#[tokio::test]
async fn keystone_admin_gets_json_details_and_a_member_the_plain_form() {
    let app = TestApp::keystone().await;
    let details = |token: String| {
        app.get("/healthcheck")
            .token(&token)
            .header("Accept", "application/json")
            .send()
    };
    let resp = details(app.token_for("admin")).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("content-type"), Some("application/json"));
    assert_eq!(resp.json(), healthy_details());
    // A member, a bad token: the plain form, never a 401.
    assert_plain(&details(app.token_for("alice")).await, 200, "OK");
    assert_plain(&details("not-a-token".to_owned()).await, 200, "OK");
    // An admin who does not ask for JSON gets the plain form too.
    let resp = app.get("/healthcheck").send().await;
    assert_plain(&resp, 200, "OK");
    // Keystone down: the admin cannot be recognised, the probe still answers.
    let token = app.token_for("admin");
    app.keystone_standin().set_unavailable(true);
    assert_plain(&details(token).await, 200, "OK");
    app.finish().await;
}

#[tokio::test]
async fn builtin_admin_gets_json_details_and_a_member_the_plain_form() {
    let app = TestApp::builtin().await;
    let details = |user: &str| {
        app.get("/healthcheck")
            .token(&app.token_for(user))
            .header("Accept", "application/json")
            .send()
    };
    let resp = details("admin").await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json(), healthy_details());
    assert_plain(&details("demo").await, 200, "OK");
    app.finish().await;
}
