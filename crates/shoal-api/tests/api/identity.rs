//! The built-in identity (`auth_strategy = "builtin"`): Keystone v3 discovery, token issue,
//! validation and revocation at `/identity`, Keystone's errors, the failure limits, and the
//! tokens' use on `/v2`.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};
use serde_json::{Value, json};
use shoal_core::config::AuthStrategy;
use shoal_identity::{
    AuthMethod, AuthRequest, DomainRef, IdentityService, ProjectRef, Scope, UserRef,
};
use shoal_testkit::{BUILTIN_USERS, TestApp};

fn keystone_error(code: u16, title: &str, message: &str) -> Value {
    json!({"error": {"code": code, "title": title, "message": message}})
}

const UNAUTHORIZED: &str = "The request you have made requires authentication.";

#[tokio::test]
async fn discovery_documents_point_at_v3() {
    let app = TestApp::builtin().await;
    let resp = app.get("/identity").anonymous().send().await;
    assert_eq!(resp.status, 300);
    let body = resp.json();
    let version = &body["versions"]["values"][0];
    assert_eq!(version["id"], "v3.14");
    assert_eq!(version["status"], "stable");
    assert_eq!(
        version["links"][0]["href"],
        format!("{}/identity/v3/", app.base)
    );
    for path in ["/identity/v3", "/identity/v3/"] {
        let resp = app.get(path).anonymous().send().await;
        assert_eq!(resp.status, 200, "{path}");
        assert_eq!(resp.json()["version"]["id"], "v3.14");
    }
    // A method a route lacks: Keystone's 405 envelope.
    let resp = app
        .put("/identity/v3/projects")
        .json(&json!({"project": {"name": "x"}}))
        .send()
        .await;
    assert_eq!(resp.status, 405);
    assert_eq!(resp.json()["error"]["title"], "Method Not Allowed");
    let resp = app.get("/identity/v3/groups").anonymous().send().await;
    assert_eq!(resp.status, 404);
    assert_eq!(
        resp.json(),
        keystone_error(404, "Not Found", "The resource could not be found.")
    );
    app.finish().await;
}

#[tokio::test]
async fn noauth_and_keystone_nodes_have_no_identity_endpoint() {
    let app = TestApp::noauth().await;
    let resp = app.get("/identity/v3").send().await;
    assert_eq!(resp.status, 404);
    app.finish().await;
}

#[tokio::test]
async fn password_token_carries_roles_and_a_share_catalog() {
    let app = TestApp::builtin().await;
    let resp = app
        .issue_builtin_token("admin", "admin-secret", "admin")
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    let subject = resp.header("x-subject-token").expect("X-Subject-Token");
    assert!(subject.starts_with("sh1."));
    let token = &resp.json()["token"];
    assert_eq!(token["methods"], json!(["password"]));
    assert_eq!(token["user"]["name"], "admin");
    assert_eq!(
        token["user"]["domain"],
        json!({"id": "default", "name": "Default"})
    );
    assert_eq!(token["project"]["name"], "admin");
    assert_eq!(token["roles"][0]["name"], "admin");
    assert!(token["expires_at"].as_str().expect("expiry").ends_with('Z'));
    assert!(token["expires_at"].as_str() > token["issued_at"].as_str());
    let project_id = token["project"]["id"].as_str().expect("project id");
    let catalog = token["catalog"].as_array().expect("catalog");
    for service_type in ["sharev2", "share"] {
        let service = catalog
            .iter()
            .find(|s| s["type"] == service_type)
            .unwrap_or_else(|| panic!("{service_type} in {catalog:?}"));
        let mut interfaces: Vec<&str> = service["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .map(|e| {
                assert_eq!(e["region"], "RegionOne");
                assert_eq!(e["url"], format!("{}/v2/{project_id}", app.base));
                e["interface"].as_str().expect("interface")
            })
            .collect();
        interfaces.sort_unstable();
        assert_eq!(interfaces, ["admin", "internal", "public"]);
    }

    // The catalog's URL serves the project's API with that token.
    let resp = app
        .get(&format!("/v2/{project_id}/services"))
        .token(subject)
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());

    // ?nocatalog, and scoping by project id.
    let resp = app
        .post("/identity/v3/auth/tokens?nocatalog")
        .anonymous()
        .json(&json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "id": token["user"]["id"], "password": "admin-secret"}}},
            "scope": {"project": {"id": project_id}}}}))
        .send()
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert!(resp.json()["token"].get("catalog").is_none());
    assert_eq!(resp.json()["token"]["project"]["id"], project_id);
    app.finish().await;
}

#[tokio::test]
async fn roles_decide_what_v2_allows() {
    let app = TestApp::builtin().await;
    // A member of demo lists its shares but is not an admin.
    let resp = app
        .get("/v2/shares")
        .token(&app.token_for("demo"))
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = app
        .get("/v2/services")
        .token(&app.token_for("demo"))
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(403, "forbidden", None);
    let resp = app.get("/v2/services").version("2.56").send().await;
    assert_eq!(resp.status, 200, "admin: {}", resp.text());
    app.finish().await;
}

#[tokio::test]
async fn wrong_passwords_and_unknown_users_get_keystones_401() {
    let app = TestApp::builtin().await;
    for (user, password) in [("admin", "wrong"), ("ghost", "admin-secret")] {
        let resp = app.issue_builtin_token(user, password, "admin").await;
        assert_eq!(resp.status, 401, "{user}");
        assert_eq!(
            resp.json(),
            keystone_error(401, "Unauthorized", UNAUTHORIZED)
        );
        assert_eq!(
            resp.header("www-authenticate"),
            Some(format!("Keystone uri=\"{}/identity\"", app.base).as_str())
        );
        assert!(resp.header("x-subject-token").is_none());
    }
    // A project the user has no role on.
    let resp = app
        .issue_builtin_token("demo", "demo-secret", "admin")
        .await;
    assert_eq!(resp.status, 401);
    let message = resp.json()["error"]["message"].as_str().map(str::to_owned);
    assert!(
        message
            .as_deref()
            .is_some_and(|m| m.contains("has no access to project")),
        "{message:?}"
    );
    app.finish().await;
}

#[tokio::test]
async fn malformed_and_oversize_bodies_are_refused() {
    let app = TestApp::builtin().await;
    let resp = app
        .post("/identity/v3/auth/tokens")
        .anonymous()
        .body(Some("application/json"), "{not json")
        .send()
        .await;
    assert_eq!(resp.status, 400);
    assert_eq!(resp.json()["error"]["title"], "Bad Request");
    let resp = app
        .post("/identity/v3/auth/tokens")
        .anonymous()
        .json(&json!({"auth": {"identity": {"methods": ["password"]}}}))
        .send()
        .await;
    assert_eq!(resp.status, 400);
    assert!(
        resp.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Expecting to find user in password."))
    );
    let resp = app
        .post("/identity/v3/auth/tokens")
        .anonymous()
        .json(&json!({"auth": {"identity": {"methods": ["totp"]}}}))
        .send()
        .await;
    assert_eq!(resp.status, 401);
    let huge = "x".repeat(200_000);
    let resp = app
        .post("/identity/v3/auth/tokens")
        .anonymous()
        .body(Some("application/json"), huge)
        .send()
        .await;
    assert_eq!(resp.status, 413);
    app.finish().await;
}

#[tokio::test]
async fn validation_follows_keystones_rules() {
    let app = TestApp::builtin().await;
    let admin = app.token_for("admin");
    let demo = app.token_for("demo");
    let validate = |caller: &str, subject: &str| {
        app.get("/identity/v3/auth/tokens")
            .token(caller)
            .header("X-Subject-Token", subject)
    };
    // Admin validates anyone's token; the body names the subject.
    let resp = validate(&admin, &demo).send().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["token"]["user"]["name"], "demo");
    let body = resp.json();
    let roles: Vec<&str> = body["token"]["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|r| r["name"].as_str().expect("name"))
        .collect();
    assert_eq!(roles, ["member", "reader"]);
    assert_eq!(resp.header("x-subject-token"), Some(demo.as_str()));
    // A user validates its own token, not another's.
    assert_eq!(validate(&demo, &demo).send().await.status, 200);
    let resp = validate(&demo, &admin).send().await;
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.json(),
        keystone_error(
            403,
            "Forbidden",
            "You are not authorized to perform the requested action: identity:validate_token."
        )
    );
    // HEAD answers without a body.
    let resp = app
        .request(reqwest::Method::HEAD, "/identity/v3/auth/tokens")
        .token(&admin)
        .header("X-Subject-Token", &demo)
        .send()
        .await;
    assert_eq!(resp.status, 200);
    assert!(resp.body.is_empty());
    // A subject that is not a token: 404; no caller token: 401; no subject: 400.
    let resp = validate(&admin, "sh1.forged.AAAA").send().await;
    assert_eq!(
        resp.json(),
        keystone_error(404, "Not Found", "Failed to validate token")
    );
    let resp = app
        .get("/identity/v3/auth/tokens")
        .anonymous()
        .header("X-Subject-Token", &demo)
        .send()
        .await;
    assert_eq!(resp.status, 401);
    let resp = app
        .get("/identity/v3/auth/tokens")
        .token(&admin)
        .send()
        .await;
    assert_eq!(resp.status, 400);
    app.finish().await;
}

#[tokio::test]
async fn revoked_tokens_stop_working_everywhere() {
    let app = TestApp::builtin().await;
    let resp = app.issue_builtin_token("demo", "demo-secret", "demo").await;
    let token = resp.header("x-subject-token").expect("token").to_owned();
    assert_eq!(app.get("/v2/shares").token(&token).send().await.status, 200);
    // The token method makes a second token from the first.
    let resp = app
        .post("/identity/v3/auth/tokens")
        .anonymous()
        .json(&json!({"auth": {"identity": {"methods": ["token"], "token": {"id": token}}}}))
        .send()
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert_eq!(
        resp.json()["token"]["methods"],
        json!(["token", "password"])
    );
    assert_eq!(resp.json()["token"]["project"]["name"], "demo");
    let derived = resp.header("x-subject-token").expect("token").to_owned();

    // Its own user may revoke it.
    let resp = app
        .delete("/identity/v3/auth/tokens")
        .token(&token)
        .header("X-Subject-Token", &token)
        .send()
        .await;
    assert_eq!(resp.status, 204, "{}", resp.text());
    for t in [&token, &derived] {
        let resp = app.get("/v2/shares").token(t).send().await;
        assert_eq!(resp.status, 401);
        assert_eq!(
            resp.json(),
            keystone_error(401, "Unauthorized", UNAUTHORIZED)
        );
        let resp = app
            .get("/identity/v3/auth/tokens")
            .header("X-Subject-Token", t)
            .send()
            .await;
        assert_eq!(resp.status, 404);
    }
    let resp = app
        .delete("/identity/v3/auth/tokens")
        .header("X-Subject-Token", &token)
        .send()
        .await;
    assert_eq!(resp.status, 404, "revoking twice");
    app.finish().await;
}

/// A second service over the node's database mints tokens in the past: same key, so the
/// node must judge them by their expiry alone.
async fn token_issued_at(app: &TestApp, at: chrono::DateTime<Utc>) -> String {
    let service = IdentityService::open(
        Arc::clone(&app.core().store),
        app.core().config.identity.clone(),
    )
    .await
    .expect("open identity");
    let request = AuthRequest {
        method: AuthMethod::Password {
            user: UserRef::Name {
                name: "demo".to_owned(),
                domain: DomainRef::Id("default".to_owned()),
            },
            password: BUILTIN_USERS[1].1.to_owned(),
        },
        scope: Scope::Project(ProjectRef::Name {
            name: "demo".to_owned(),
            domain: DomainRef::Name("Default".to_owned()),
        }),
    };
    service
        .authenticate(request, None, at)
        .await
        .expect("issue")
        .token
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = TestApp::builtin().await;
    // Tokens issued before a user existed are void; move demo's creation back two hours so
    // that tokens from the last hour count.
    let store = &app.core().store;
    let demo = store
        .get_identity_user_by_name("default", "demo")
        .await
        .expect("demo");
    let update = shoal_store::IdentityUserUpdate {
        tokens_valid_after: Some(Utc::now() - TimeDelta::hours(2)),
        ..Default::default()
    };
    store
        .update_identity_user(&demo.id, update, Utc::now())
        .await
        .expect("backdate demo");
    let fresh = token_issued_at(&app, Utc::now() - TimeDelta::minutes(59)).await;
    assert_eq!(app.get("/v2/shares").token(&fresh).send().await.status, 200);
    let expired = token_issued_at(&app, Utc::now() - TimeDelta::minutes(61)).await;
    let resp = app.get("/v2/shares").token(&expired).send().await;
    assert_eq!(resp.status, 401);
    let resp = app
        .get("/identity/v3/auth/tokens")
        .header("X-Subject-Token", &expired)
        .send()
        .await;
    assert_eq!(resp.status, 404);
    let resp = app
        .post("/identity/v3/auth/tokens")
        .anonymous()
        .json(&json!({"auth": {"identity": {"methods": ["token"], "token": {"id": expired}}}}))
        .send()
        .await;
    assert_eq!(resp.status, 401, "an expired token cannot be traded");
    app.finish().await;
}

#[tokio::test]
async fn unscoped_tokens_do_not_reach_v2() {
    let app = TestApp::builtin().await;
    let resp = app
        .post("/identity/v3/auth/tokens")
        .anonymous()
        .json(&json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": "demo", "domain": {"id": "default"}, "password": "demo-secret"}}},
            "scope": "unscoped"}}))
        .send()
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    assert!(resp.json()["token"].get("project").is_none());
    assert!(resp.json()["token"].get("catalog").is_none());
    let token = resp.header("x-subject-token").expect("token").to_owned();
    assert_eq!(app.get("/v2/shares").token(&token).send().await.status, 401);
    app.finish().await;
}

#[tokio::test]
async fn repeated_failures_lock_the_user_then_throttle_the_address() {
    let app = TestApp::builder()
        .auth(AuthStrategy::Builtin)
        .configure(|config| {
            config.identity.user_failure_limit = 2;
            config.identity.address_failure_limit = 4;
        })
        .build()
        .await;
    for _ in 0..2 {
        let resp = app.issue_builtin_token("demo", "wrong", "demo").await;
        assert_eq!(resp.status, 401);
    }
    let resp = app.issue_builtin_token("demo", "demo-secret", "demo").await;
    assert_eq!(resp.status, 401, "locked even with the right password");
    assert!(
        resp.json()["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("The account is locked for user: "))
    );
    // Other users are not affected until the address itself is over its limit.
    let resp = app
        .issue_builtin_token("admin", "admin-secret", "admin")
        .await;
    assert_eq!(resp.status, 201);
    let resp = app.issue_builtin_token("ghost", "x", "demo").await;
    assert_eq!(resp.status, 401);
    let resp = app
        .issue_builtin_token("admin", "admin-secret", "admin")
        .await;
    assert_eq!(resp.status, 429, "{}", resp.text());
    assert_eq!(resp.json()["error"]["code"], 429);
    let retry: u64 = resp
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!((1..=60).contains(&retry), "{retry}");
    app.finish().await;
}

#[tokio::test]
async fn projects_and_users_can_be_looked_up_as_keystone_allows() {
    let app = TestApp::builtin().await;
    let demo = app.token_for("demo");
    let resp = app.get("/identity/v3/projects?name=demo").send().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    let projects = body["projects"].as_array().expect("projects");
    assert_eq!(projects.len(), 1);
    assert_eq!(projects[0]["name"], "demo");
    assert_eq!(projects[0]["domain_id"], "default");
    let demo_project = projects[0]["id"].as_str().expect("id").to_owned();

    // A member sees its own project, not the list nor another project.
    let resp = app
        .get(&format!("/identity/v3/projects/{demo_project}"))
        .token(&demo)
        .send()
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["project"]["name"], "demo");
    let resp = app.get("/identity/v3/projects").token(&demo).send().await;
    assert_eq!(resp.status, 403);
    let resp = app.get("/identity/v3/projects/admin").send().await;
    assert_eq!(
        resp.json(),
        keystone_error(404, "Not Found", "Could not find project: admin.")
    );
    let resp = app
        .get("/identity/v3/auth/projects")
        .token(&demo)
        .send()
        .await;
    let names: Vec<String> = resp.json()["projects"]
        .as_array()
        .expect("projects")
        .iter()
        .map(|p| p["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(names, ["demo"]);

    // Users: admins list and show, a user shows itself.
    let resp = app.get("/identity/v3/users?name=rita").send().await;
    let rita = resp.json()["users"][0].clone();
    assert_eq!(rita["name"], "rita");
    assert_eq!(rita["default_project_id"], demo_project.as_str());
    let resp = app
        .get(&format!(
            "/identity/v3/users/{}",
            rita["id"].as_str().expect("id")
        ))
        .token(&demo)
        .send()
        .await;
    assert_eq!(resp.status, 403);
    assert_eq!(
        app.get("/identity/v3/users")
            .anonymous()
            .send()
            .await
            .status,
        401
    );
    app.finish().await;
}
