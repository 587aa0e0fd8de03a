//! Keystone's v3 admin calls on the built-in identity: users, projects, the Default domain,
//! roles, role grants and role assignments, as `openstack user/project/role ...` and
//! manila-tempest-plugin's class set-ups use them; admin-only, Keystone's codes and envelope,
//! and changes that end tokens at once (the node's validation cache is cleared).

use reqwest::Method;
use serde_json::{Value, json};
use shoal_identity::role_id;
use shoal_testkit::TestApp;

fn keystone_error(code: u16, title: &str, message: &str) -> Value {
    json!({"error": {"code": code, "title": title, "message": message}})
}

fn forbidden(action: &str) -> Value {
    keystone_error(
        403,
        "Forbidden",
        &format!("You are not authorized to perform the requested action: identity:{action}."),
    )
}

/// The id of the project named `name`.
async fn project_id(app: &TestApp, name: &str) -> String {
    let resp = app
        .get(&format!("/identity/v3/projects?name={name}"))
        .send()
        .await;
    resp.json()["projects"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("project {name}: {}", resp.text()))
        .to_owned()
}

/// A project-scoped token of `user`, or the status of the refusal.
async fn token(app: &TestApp, user: &str, password: &str, project: &str) -> Result<String, u16> {
    let resp = app.issue_builtin_token(user, password, project).await;
    match resp.header("x-subject-token") {
        Some(token) if resp.status == 201 => Ok(token.to_owned()),
        _ => Err(resp.status),
    }
}

/// Status of `GET /v2/shares` with `token`.
async fn v2_status(app: &TestApp, token: &str) -> u16 {
    app.get("/v2/shares")
        .token(token)
        .version("2.56")
        .send()
        .await
        .status
}

#[tokio::test]
async fn admins_create_change_and_delete_users() {
    let app = TestApp::builtin().await;
    let demo = project_id(&app, "demo").await;
    let member = app.token_for("demo");

    // Create, as tempest's credentials client does (email is a Keystone extra).
    let resp = app
        .post("/identity/v3/users")
        .json(
            &json!({"user": {"name": "carol", "password": "carol-secret",
            "default_project_id": demo, "email": "carol@example.org", "domain_id": "default"}}),
        )
        .send()
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    let user = resp.json()["user"].clone();
    let id = user["id"].as_str().expect("id").to_owned();
    assert_eq!(id.len(), 32);
    assert_eq!(user["name"], "carol");
    assert_eq!(user["domain_id"], "default");
    assert_eq!(user["enabled"], true);
    assert_eq!(user["default_project_id"], demo.as_str());
    assert_eq!(
        user["links"]["self"],
        format!("{}/identity/v3/users/{id}", app.base)
    );
    assert!(user.get("password").is_none() && user.get("password_hash").is_none());
    let resp = app.get(&format!("/identity/v3/users/{id}")).send().await;
    assert_eq!(resp.json()["user"], user);
    // No role yet: a scoped token is refused, an unscoped one is not.
    assert_eq!(token(&app, "carol", "carol-secret", "demo").await, Err(401));

    // Refusals: duplicate name, missing name, bad types, unknown project or domain, callers.
    let resp = app
        .post("/identity/v3/users")
        .json(&json!({"user": {"name": "carol", "password": "x"}}))
        .send()
        .await;
    assert_eq!(
        resp.json(),
        keystone_error(
            409,
            "Conflict",
            "Conflict occurred attempting to store user - Duplicate entry found with name carol \
             at domain ID default."
        )
    );
    for (body, status) in [
        (json!({"user": {"password": "x"}}), 400),
        (json!({"user": {"name": ""}}), 400),
        (json!({"user": {"name": "d", "enabled": "yes"}}), 400),
        (json!({"user": "d"}), 400),
        (json!({"users": {"name": "d"}}), 400),
        (
            json!({"user": {"name": "d", "default_project_id": "nope"}}),
            404,
        ),
        (json!({"user": {"name": "d", "domain_id": "other"}}), 404),
    ] {
        let resp = app.post("/identity/v3/users").json(&body).send().await;
        assert_eq!(resp.status, status, "{body}: {}", resp.text());
        assert_eq!(resp.json()["error"]["code"], status, "{body}");
    }
    let resp = app
        .post("/identity/v3/users")
        .json(&json!({"user": {"name": "d", "default_project_id": "nope"}}))
        .send()
        .await;
    assert_eq!(
        resp.json(),
        keystone_error(404, "Not Found", "Could not find project: nope.")
    );
    let resp = app
        .post("/identity/v3/users")
        .token(&member)
        .json(&json!({"user": {"name": "d", "password": "x"}}))
        .send()
        .await;
    assert_eq!(resp.json(), forbidden("create_user"));
    let resp = app
        .post("/identity/v3/users")
        .anonymous()
        .json(&json!({"user": {"name": "d"}}))
        .send()
        .await;
    assert_eq!(resp.status, 401);
    assert!(
        app.get("/identity/v3/users?name=d").send().await.json()["users"]
            .as_array()
            .expect("users")
            .is_empty(),
        "no refused create made a user"
    );

    // Give carol a role (through the grant API) and a token that the node has validated
    // (and so cached).
    let resp = app
        .put(&format!(
            "/identity/v3/projects/{demo}/users/{id}/roles/{}",
            role_id("member")
        ))
        .send()
        .await;
    assert_eq!(resp.status, 204, "{}", resp.text());
    let first = token(&app, "carol", "carol-secret", "demo")
        .await
        .expect("carol's token");
    assert_eq!(v2_status(&app, &first).await, 200);

    // PATCH: rename, then a new password ends the old tokens at once.
    let patch = |body: Value| {
        app.request(Method::PATCH, &format!("/identity/v3/users/{id}"))
            .json(&body)
    };
    let resp = patch(json!({"user": {"name": "caroline"}})).send().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["user"]["name"], "caroline");
    assert_eq!(v2_status(&app, &first).await, 200, "a rename keeps tokens");
    let resp = patch(json!({"user": {"password": "new-secret"}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(v2_status(&app, &first).await, 401);
    assert_eq!(
        token(&app, "caroline", "carol-secret", "demo").await,
        Err(401)
    );
    let second = token(&app, "caroline", "new-secret", "demo")
        .await
        .expect("the new password works");
    assert_eq!(v2_status(&app, &second).await, 200);

    // Disable: refused at once; enable again.
    let resp = patch(json!({"user": {"enabled": false}})).send().await;
    assert_eq!(resp.json()["user"]["enabled"], false);
    assert_eq!(v2_status(&app, &second).await, 401);
    assert_eq!(
        token(&app, "caroline", "new-secret", "demo").await,
        Err(401)
    );
    let resp = patch(json!({"user": {"enabled": true, "default_project_id": null}}))
        .send()
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["user"]["enabled"], true);
    assert!(resp.json()["user"].get("default_project_id").is_none());
    let third = token(&app, "caroline", "new-secret", "demo")
        .await
        .expect("enabled again");

    // PATCH refusals.
    let resp = patch(json!({"user": {"name": "rita"}})).send().await;
    assert_eq!(resp.status, 409, "{}", resp.text());
    let resp = patch(json!({"user": {"default_project_id": "nope"}}))
        .send()
        .await;
    assert_eq!(
        resp.json(),
        keystone_error(404, "Not Found", "Could not find project: nope.")
    );
    for body in [
        json!({"user": {"password": ""}}),
        json!({"user": {"id": "other"}}),
        json!({"user": {"enabled": 1}}),
    ] {
        let resp = patch(body.clone()).send().await;
        assert_eq!(resp.status, 400, "{body}: {}", resp.text());
    }
    let resp = app
        .request(Method::PATCH, "/identity/v3/users/nobody")
        .json(&json!({"user": {"enabled": false}}))
        .send()
        .await;
    assert_eq!(
        resp.json(),
        keystone_error(404, "Not Found", "Could not find user: nobody.")
    );
    let resp = patch(json!({"user": {"enabled": false}}))
        .token(&member)
        .send()
        .await;
    assert_eq!(resp.json(), forbidden("update_user"));
    assert_eq!(
        v2_status(&app, &third).await,
        200,
        "refusals changed nothing"
    );

    // DELETE: a member may not; the admin may, once; the user's tokens die with it.
    let resp = app
        .delete(&format!("/identity/v3/users/{id}"))
        .token(&member)
        .send()
        .await;
    assert_eq!(resp.json(), forbidden("delete_user"));
    let resp = app.delete(&format!("/identity/v3/users/{id}")).send().await;
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_eq!(v2_status(&app, &third).await, 401);
    let resp = app.delete(&format!("/identity/v3/users/{id}")).send().await;
    assert_eq!(
        resp.json(),
        keystone_error(404, "Not Found", &format!("Could not find user: {id}."))
    );
    app.finish().await;
}

#[tokio::test]
async fn admins_create_and_delete_projects() {
    let app = TestApp::builtin().await;
    let member = app.token_for("demo");
    let resp = app
        .post("/identity/v3/projects")
        .json(
            &json!({"project": {"name": "ops", "description": "Operations",
            "domain_id": "default", "parent_id": "default", "enabled": true, "tags": []}}),
        )
        .send()
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    let project = resp.json()["project"].clone();
    let id = project["id"].as_str().expect("id").to_owned();
    assert_eq!(project["name"], "ops");
    assert_eq!(project["description"], "Operations");
    assert_eq!(project["domain_id"], "default");
    assert_eq!(project["enabled"], true);
    assert_eq!(
        project["links"]["self"],
        format!("{}/identity/v3/projects/{id}", app.base)
    );
    assert_eq!(project_id(&app, "ops").await, id);

    let resp = app
        .post("/identity/v3/projects")
        .json(&json!({"project": {"name": "ops"}}))
        .send()
        .await;
    assert_eq!(
        resp.json(),
        keystone_error(
            409,
            "Conflict",
            "Conflict occurred attempting to store project - Duplicate entry found with name \
             ops at domain ID default."
        )
    );
    for (body, status) in [
        (json!({"project": {}}), 400),
        (json!({"project": {"name": "x", "is_domain": true}}), 400),
        (json!({"project": {"name": "x", "description": 3}}), 400),
        (json!({"project": {"name": "x", "parent_id": "nope"}}), 404),
        (json!({"project": {"name": "x", "domain_id": "nope"}}), 404),
    ] {
        let resp = app.post("/identity/v3/projects").json(&body).send().await;
        assert_eq!(resp.status, status, "{body}: {}", resp.text());
    }
    let resp = app
        .post("/identity/v3/projects")
        .token(&member)
        .json(&json!({"project": {"name": "x"}}))
        .send()
        .await;
    assert_eq!(resp.json(), forbidden("create_project"));

    // A disabled project can be made; nobody can scope to it.
    let resp = app
        .post("/identity/v3/projects")
        .json(&json!({"project": {"name": "frozen", "enabled": false}}))
        .send()
        .await;
    assert_eq!(resp.status, 201);
    assert_eq!(resp.json()["project"]["enabled"], false);

    // A user of ops; deleting ops ends its tokens there.
    let resp = app
        .post("/identity/v3/users")
        .json(
            &json!({"user": {"name": "olga", "password": "olga-secret", "default_project_id": id}}),
        )
        .send()
        .await;
    let olga = resp.json()["user"]["id"].as_str().expect("olga").to_owned();
    let resp = app
        .put(&format!(
            "/identity/v3/projects/{id}/users/{olga}/roles/{}",
            role_id("admin")
        ))
        .send()
        .await;
    assert_eq!(resp.status, 204);
    let olga_token = token(&app, "olga", "olga-secret", "ops")
        .await
        .expect("olga's token");
    assert_eq!(v2_status(&app, &olga_token).await, 200);

    let resp = app
        .delete(&format!("/identity/v3/projects/{id}"))
        .token(&member)
        .send()
        .await;
    assert_eq!(resp.json(), forbidden("delete_project"));
    let resp = app
        .delete(&format!("/identity/v3/projects/{id}"))
        .send()
        .await;
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_eq!(v2_status(&app, &olga_token).await, 401);
    let resp = app.get(&format!("/identity/v3/users/{olga}")).send().await;
    assert!(resp.json()["user"].get("default_project_id").is_none());
    let resp = app
        .delete(&format!("/identity/v3/projects/{id}"))
        .send()
        .await;
    assert_eq!(
        resp.json(),
        keystone_error(404, "Not Found", &format!("Could not find project: {id}."))
    );
    app.finish().await;
}

#[tokio::test]
async fn the_default_domain_and_the_roles_are_listed() {
    let app = TestApp::builtin().await;
    let member = app.token_for("demo");
    let resp = app.get("/identity/v3/domains?name=Default").send().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let domains = resp.json()["domains"].clone();
    assert_eq!(domains.as_array().expect("domains").len(), 1);
    assert_eq!(domains[0]["id"], "default");
    assert_eq!(domains[0]["name"], "Default");
    assert_eq!(domains[0]["enabled"], true);
    assert_eq!(
        domains[0]["links"]["self"],
        format!("{}/identity/v3/domains/default", app.base)
    );
    for query in ["?name=Other", "?enabled=false"] {
        let resp = app
            .get(&format!("/identity/v3/domains{query}"))
            .send()
            .await;
        assert_eq!(resp.json()["domains"], json!([]), "{query}");
    }
    let resp = app.get("/identity/v3/domains").token(&member).send().await;
    assert_eq!(resp.json(), forbidden("list_domains"));
    // A member sees the domain of its project, not others.
    let resp = app
        .get("/identity/v3/domains/default")
        .token(&member)
        .send()
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.json()["domain"], domains[0]);
    let resp = app.get("/identity/v3/domains/other").send().await;
    assert_eq!(
        resp.json(),
        keystone_error(404, "Not Found", "Could not find domain: other.")
    );

    let resp = app.get("/identity/v3/roles").send().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    let names: Vec<&str> = body["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .map(|r| {
            assert_eq!(r["id"], role_id(r["name"].as_str().expect("name")));
            assert_eq!(r["domain_id"], Value::Null);
            r["name"].as_str().expect("name")
        })
        .collect();
    assert_eq!(names, ["admin", "member", "reader", "service"]);
    let resp = app.get("/identity/v3/roles?name=member").send().await;
    let roles = resp.json()["roles"].clone();
    assert_eq!(roles.as_array().expect("roles").len(), 1);
    let member_id = role_id("member");
    assert_eq!(roles[0]["id"], member_id.as_str());
    assert_eq!(
        roles[0]["links"]["self"],
        format!("{}/identity/v3/roles/{member_id}", app.base)
    );
    let resp = app
        .get(&format!("/identity/v3/roles/{member_id}"))
        .send()
        .await;
    assert_eq!(resp.json()["role"], roles[0]);
    let resp = app.get("/identity/v3/roles/member").send().await;
    assert_eq!(
        resp.json(),
        keystone_error(404, "Not Found", "Could not find role: member.")
    );
    let resp = app.get("/identity/v3/roles").token(&member).send().await;
    assert_eq!(resp.json(), forbidden("list_roles"));
    let resp = app
        .get(&format!("/identity/v3/roles/{member_id}"))
        .token(&member)
        .send()
        .await;
    assert_eq!(resp.json(), forbidden("get_role"));
    app.finish().await;
}

/// What manila-tempest-plugin's `create_user_and_get_client` does at class set-up, through
/// tempest's V3CredsClient, then the grant calls around it.
#[tokio::test]
async fn role_grants_are_made_checked_listed_and_revoked() {
    let app = TestApp::builtin().await;
    let member = app.token_for("demo");
    let admin_project = project_id(&app, "admin").await;

    let resp = app.get("/identity/v3/domains?name=Default").send().await;
    let domain = resp.json()["domains"][0]["id"].clone();
    let resp = app
        .post("/identity/v3/users")
        .json(
            &json!({"user": {"name": "manila_tempest", "password": "pw-1",
            "default_project_id": admin_project, "email": "m@example.org", "domain_id": domain}}),
        )
        .send()
        .await;
    assert_eq!(resp.status, 201, "{}", resp.text());
    let user = resp.json()["user"]["id"].as_str().expect("id").to_owned();
    let resp = app.get("/identity/v3/roles").send().await;
    let member_role = resp.json()["roles"]
        .as_array()
        .expect("roles")
        .iter()
        .find(|r| r["name"] == "member")
        .expect("member")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let grant = format!("/identity/v3/projects/{admin_project}/users/{user}/roles/{member_role}");
    let resp = app.request(Method::HEAD, &grant).send().await;
    assert_eq!(resp.status, 404, "not held yet");
    let resp = app.put(&grant).token(&member).send().await;
    assert_eq!(resp.json(), forbidden("create_grant"));
    let resp = app.put(&grant).send().await;
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_eq!(app.put(&grant).send().await.status, 204, "granting twice");
    assert_eq!(app.request(Method::HEAD, &grant).send().await.status, 204);
    assert_eq!(app.get(&grant).send().await.status, 204);
    let user_token = token(&app, "manila_tempest", "pw-1", "admin")
        .await
        .expect("the new user's token");
    assert_eq!(v2_status(&app, &user_token).await, 200);

    // The roles on the project, and the assignments with Keystone's filters.
    let resp = app
        .get(&format!(
            "/identity/v3/projects/{admin_project}/users/{user}/roles"
        ))
        .send()
        .await;
    assert_eq!(resp.json()["roles"][0]["name"], "member");
    let resp = app
        .get(&format!("/identity/v3/role_assignments?user.id={user}"))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json()["role_assignments"],
        json!([{
            "role": {"id": member_role},
            "user": {"id": user},
            "scope": {"project": {"id": admin_project}},
            "links": {"assignment": format!("{}{grant}", app.base)},
        }])
    );
    let resp = app
        .get(&format!(
            "/identity/v3/role_assignments?user.id={user}&effective&include_names"
        ))
        .send()
        .await;
    let body = resp.json();
    let roles: Vec<&str> = body["role_assignments"]
        .as_array()
        .expect("assignments")
        .iter()
        .map(|a| {
            assert_eq!(a["user"]["name"], "manila_tempest");
            assert_eq!(a["scope"]["project"]["name"], "admin");
            a["role"]["name"].as_str().expect("name")
        })
        .collect();
    assert_eq!(roles, ["member", "reader"]);
    let resp = app
        .get(&format!(
            "/identity/v3/role_assignments?scope.project.id={admin_project}&role.id={}",
            role_id("admin")
        ))
        .send()
        .await;
    assert_eq!(
        resp.json()["role_assignments"]
            .as_array()
            .expect("assignments")
            .len(),
        1,
        "only the bootstrap admin"
    );
    let resp = app
        .get("/identity/v3/role_assignments")
        .token(&member)
        .send()
        .await;
    assert_eq!(resp.json(), forbidden("list_role_assignments"));

    // Unknown role, project or user, in Keystone's order.
    let unknown = [
        (
            format!("/identity/v3/projects/nope/users/nobody/roles/{member_role}"),
            "Could not find project: nope.",
        ),
        (
            format!("/identity/v3/projects/{admin_project}/users/nobody/roles/{member_role}"),
            "Could not find user: nobody.",
        ),
        (
            "/identity/v3/projects/nope/users/nobody/roles/member".to_owned(),
            "Could not find role: member.",
        ),
    ];
    for (path, message) in &unknown {
        let resp = app.put(path).send().await;
        assert_eq!(
            resp.json(),
            keystone_error(404, "Not Found", message),
            "{path}"
        );
    }

    // Revoke: the token loses the project at once; revoking again is 404.
    let resp = app.delete(&grant).token(&member).send().await;
    assert_eq!(resp.json(), forbidden("revoke_grant"));
    let resp = app.delete(&grant).send().await;
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert_eq!(v2_status(&app, &user_token).await, 401);
    let resp = app.delete(&grant).send().await;
    assert_eq!(
        resp.json(),
        keystone_error(
            404,
            "Not Found",
            &format!(
                "Could not find role assignment with role: {member_role}, user or group: \
                 {user}, project, domain, or system: {admin_project}."
            )
        )
    );
    assert_eq!(app.request(Method::HEAD, &grant).send().await.status, 404);

    // The class clean-up.
    let resp = app
        .delete(&format!("/identity/v3/users/{user}"))
        .send()
        .await;
    assert_eq!(resp.status, 204);
    app.finish().await;
}
