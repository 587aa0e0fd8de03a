//! Checklist group B: noauth and keystone authentication (api-basics §4).

use shoal_testkit::{PROJECT_A, PROJECT_B, TestApp};

#[tokio::test]
async fn b21_b22_keystone_without_token_is_401_with_www_authenticate() {
    let app = TestApp::keystone().await;
    let resp = app
        .get("/v2/availability-zones")
        .anonymous()
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.json(),
        serde_json::json!({"error": {"code": 401, "title": "Unauthorized",
            "message": "The request you have made requires authentication."}})
    );
    let www = resp
        .header("www-authenticate")
        .expect("WWW-Authenticate header");
    assert!(www.starts_with("Keystone uri=\""), "{www}");
    assert!(resp.header("x-openstack-manila-api-version").is_none());
    app.finish().await;
}

#[tokio::test]
async fn b23_keystone_garbage_token_is_401_before_version_checks() {
    let app = TestApp::keystone().await;
    let resp = app
        .get("/v2/availability-zones")
        .token("garbage")
        .version("latest")
        .send()
        .await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.json()["error"]["code"], 401);
    app.finish().await;
}

#[tokio::test]
async fn b_keystone_expired_and_revoked_tokens_are_401() {
    let app = TestApp::keystone().await;
    let standin = app.keystone_standin();
    let expired = standin.issue_token_with_expiry("alice", chrono_past());
    let resp = app
        .get("/v2/availability-zones")
        .token(&expired)
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 401);
    let revoked = standin.issue_token("alice");
    standin.revoke(&revoked);
    let resp = app
        .get("/v2/availability-zones")
        .token(&revoked)
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 401);
    app.finish().await;
}

fn chrono_past() -> chrono::DateTime<chrono::Utc> {
    chrono::Utc::now() - chrono::Duration::hours(1)
}

#[tokio::test]
async fn b_keystone_unavailable_is_503_not_500() {
    let app = TestApp::keystone().await;
    let token = app.token_for("alice");
    app.keystone_standin().set_unavailable(true);
    let resp = app
        .get("/v2/availability-zones")
        .token(&token)
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 503);
    app.finish().await;
}

#[tokio::test]
async fn b24_keystone_root_is_public() {
    let app = TestApp::keystone().await;
    assert_eq!(app.get("/").anonymous().send().await.status, 300);
    app.finish().await;
}

#[tokio::test]
async fn b_keystone_roles_drive_policy() {
    let app = TestApp::keystone().await;
    // services are admin-only; availability zones need reader.
    let admin = app
        .get("/v2/services")
        .token(&app.token_for("admin"))
        .version("2.56")
        .send()
        .await;
    assert_eq!(admin.status, 200);
    let member = app
        .get("/v2/services")
        .token(&app.token_for("alice"))
        .version("2.56")
        .send()
        .await;
    member.assert_fault(
        403,
        "forbidden",
        Some("Access was denied to this resource."),
    );
    let reader = app
        .get("/v2/availability-zones")
        .token(&app.token_for("rita"))
        .version("2.56")
        .send()
        .await;
    assert_eq!(reader.status, 200);
    let no_roles = app
        .get("/v2/availability-zones")
        .token(&app.token_for("nobody"))
        .version("2.56")
        .send()
        .await;
    assert_eq!(no_roles.status, 403);
    app.finish().await;
}

#[tokio::test]
async fn b25_noauth_without_token_answers_204_with_fake_token() {
    let app = TestApp::noauth().await;
    let resp = app.get("/v2/availability-zones").anonymous().send().await;
    assert_eq!(resp.status, 204);
    assert!(resp.body.is_empty());
    assert_eq!(resp.header("x-auth-token"), Some("admin:admin"));
    // Every /v2 path, the root included.
    let resp = app.get("/v2/").anonymous().send().await;
    assert_eq!(resp.status, 204);
    app.finish().await;
}

#[tokio::test]
async fn b26_noauth_uses_auth_user_and_project_headers() {
    let app = TestApp::noauth().await;
    let resp = app
        .get("/v2/availability-zones")
        .anonymous()
        .header("X-Auth-User", "u1")
        .header("X-Auth-Project-Id", "p1")
        .send()
        .await;
    assert_eq!(resp.status, 204);
    assert_eq!(resp.header("x-auth-token"), Some("u1:p1"));
    let url = resp
        .header("x-server-management-url")
        .expect("management url");
    assert!(url.ends_with("/v2/availability-zones/p1"), "{url}");
    app.finish().await;
}

#[tokio::test]
async fn b27_b28_noauth_token_sets_user_and_project_and_everyone_is_admin() {
    let app = TestApp::noauth().await;
    // Admin-only endpoint passes for any noauth caller.
    let resp = app
        .get("/v2/services")
        .token("u1:abc123")
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 200);
    // Project from the token: the hex URL segment must match it.
    let ok = app
        .get("/v2/abc123/services")
        .token("u1:abc123")
        .version("2.56")
        .send()
        .await;
    assert_eq!(ok.status, 200);
    // Without a colon the project is the user id.
    let ok = app
        .get("/v2/abcdef/services")
        .token("abcdef")
        .version("2.56")
        .send()
        .await;
    assert_eq!(ok.status, 200);
    let bad = app
        .get("/v2/abc123/services")
        .token("abcdef")
        .version("2.56")
        .send()
        .await;
    bad.assert_fault(400, "badRequest", Some("Malformed request url"));
    app.finish().await;
}

#[tokio::test]
async fn b31_b32_project_segment_must_match_token_project() {
    let app = TestApp::keystone().await;
    let alice = app.token_for("alice");
    let same = app
        .get(&format!("/v2/{PROJECT_A}/availability-zones"))
        .token(&alice)
        .version("2.56")
        .send()
        .await;
    let bare = app
        .get("/v2/availability-zones")
        .token(&alice)
        .version("2.56")
        .send()
        .await;
    assert_eq!(same.status, 200);
    assert_eq!(same.json(), bare.json());
    let other = app
        .get(&format!("/v2/{PROJECT_B}/availability-zones"))
        .token(&alice)
        .version("2.56")
        .send()
        .await;
    other.assert_fault(400, "badRequest", Some("Malformed request url"));
    app.finish().await;
}
