//! Share types, extra specs and type access (checklist D.46–57, api-basics §7).
//! D.58 (removing `replication_type` after a share was created with it) needs shares and
//! replicas; it is in `replicas.rs`.

use serde_json::{Value, json};
use shoal_testkit::{PROJECT_A, PROJECT_B, TestApp, TestResponse};

const GENERIC_400: &str = "The server could not comply with the request since it is either malformed or otherwise incorrect.";

/// `{"share_type": {name, extra_specs}}` with DHSS false plus `specs`.
fn type_body(name: &str, specs: Value) -> Value {
    let mut extra_specs = json!({"driver_handles_share_servers": false});
    if let Value::Object(more) = specs {
        for (k, v) in more {
            extra_specs[k] = v;
        }
    }
    json!({"share_type": {"name": name, "extra_specs": extra_specs}})
}

async fn create(app: &TestApp, body: &Value) -> TestResponse {
    app.post("/v2/types")
        .version("2.56")
        .json(body)
        .send()
        .await
}

/// Creates a type as admin and returns its id.
async fn create_type(app: &TestApp, name: &str, specs: Value) -> String {
    let resp = create(app, &type_body(name, specs)).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["share_type"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Creates a private type as admin and returns its id.
async fn create_private_type(app: &TestApp, name: &str) -> String {
    let mut body = type_body(name, json!({}));
    body["share_type"]["share_type_access:is_public"] = json!(false);
    let resp = create(app, &body).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["share_type"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

fn names(list: &Value) -> Vec<String> {
    list["share_types"]
        .as_array()
        .expect("share_types")
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

async fn access_action(app: &TestApp, id: &str, action: &str, project: &str) -> TestResponse {
    app.post(&format!("/v2/types/{id}/action"))
        .version("2.56")
        .json(&json!({ action: {"project": project} }))
        .send()
        .await
}

// ---- checklist D ----

#[tokio::test]
async fn d46_admin_creates_type_with_both_objects() {
    let app = TestApp::noauth().await;
    let resp = create(
        &app,
        &type_body("repl", json!({"replication_type": "readable"})),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    assert_eq!(body["share_type"], body["volume_type"]);
    let t = &body["share_type"];
    assert_eq!(t["name"], "repl");
    assert_eq!(t["id"].as_str().unwrap().len(), 36);
    assert_eq!(t["share_type_access:is_public"], true);
    assert_eq!(t["description"], Value::Null);
    assert_eq!(t["is_default"], false);
    // required_extra_specs echoes the value as sent on create.
    assert_eq!(
        t["required_extra_specs"],
        json!({"driver_handles_share_servers": false})
    );
    app.finish().await;
}

#[tokio::test]
async fn d47_extra_specs_are_stored_as_strings() {
    let app = TestApp::noauth().await;
    let id = create_type(
        &app,
        "repl",
        json!({"replication_type": "readable", "snapshot_support": true}),
    )
    .await;
    let shown = app
        .get(&format!("/v2/types/{id}"))
        .version("2.56")
        .send()
        .await
        .json();
    let specs = &shown["share_type"]["extra_specs"];
    assert_eq!(specs["driver_handles_share_servers"], "False");
    assert_eq!(specs["replication_type"], "readable");
    assert_eq!(specs["snapshot_support"], "True");
    // Later reads derive required_extra_specs from the stored strings.
    assert_eq!(
        shown["share_type"]["required_extra_specs"],
        json!({"driver_handles_share_servers": "False"})
    );
    app.finish().await;
}

#[tokio::test]
async fn d48_unknown_replication_type_is_refused() {
    let app = TestApp::noauth().await;
    let resp = create(&app, &type_body("bad", json!({"replication_type": "foo"}))).await;
    // Manila formats the inner exception's template, so the text is literally this.
    resp.assert_fault(
        400,
        "badRequest",
        Some("Invalid share type: Invalid extra_spec: %(reason)s."),
    );
    app.finish().await;
}

#[tokio::test]
async fn d49_writable_and_dr_are_accepted() {
    let app = TestApp::noauth().await;
    for kind in ["writable", "dr"] {
        let resp = create(&app, &type_body(kind, json!({"replication_type": kind}))).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(
            resp.json()["share_type"]["extra_specs"]["replication_type"],
            kind
        );
    }
    app.finish().await;
}

#[tokio::test]
async fn d50_missing_dhss_is_refused() {
    let app = TestApp::noauth().await;
    let body =
        json!({"share_type": {"name": "x", "extra_specs": {"replication_type": "readable"}}});
    create(&app, &body).await.assert_fault(
        400,
        "badRequest",
        Some("Invalid extra_spec: Required extra specs 'driver_handles_share_servers' not specified."),
    );
    let body = json!({"share_type": {"name": "x", "extra_specs": {"driver_handles_share_servers": "maybe"}}});
    create(&app, &body).await.assert_fault(
        400,
        "badRequest",
        Some("Invalid extra_spec: Value of required extra_spec driver_handles_share_servers is not valid."),
    );
    app.finish().await;
}

#[tokio::test]
async fn d51_members_and_readers_cannot_create_types() {
    let app = TestApp::keystone().await;
    for user in ["alice", "rita"] {
        let resp = app
            .post("/v2/types")
            .version("2.56")
            .token(&app.token_for(user))
            .json(&type_body("mine", json!({})))
            .send()
            .await;
        resp.assert_fault(
            403,
            "forbidden",
            Some("Access was denied to this resource."),
        );
    }
    // Policy comes before body validation.
    let resp = app
        .post("/v2/types")
        .version("2.56")
        .token(&app.token_for("alice"))
        .send()
        .await;
    assert_eq!(resp.status, 403);
    let resp = app
        .post("/v2/types")
        .version("2.56")
        .token(&app.token_for("admin"))
        .json(&type_body("mine", json!({})))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.finish().await;
}

#[tokio::test]
async fn d52_duplicate_name_is_a_conflict() {
    let app = TestApp::noauth().await;
    create_type(&app, "dup", json!({})).await;
    let resp = create(&app, &type_body("dup", json!({}))).await;
    resp.assert_fault(
        409,
        "conflictingRequest",
        Some("Share Type dup already exists."),
    );
    app.finish().await;
}

#[tokio::test]
async fn d53_extra_specs_post_echoes_and_persists() {
    let app = TestApp::noauth().await;
    let id = create_type(&app, "t", json!({})).await;
    let body = json!({"extra_specs": {"replication_type": "readable"}});
    let resp = app
        .post(&format!("/v2/types/{id}/extra_specs"))
        .version("2.56")
        .json(&body)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), body);
    let shown = app
        .get(&format!("/v2/types/{id}"))
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(
        shown["share_type"]["extra_specs"]["replication_type"],
        "readable"
    );
    let listed = app
        .get(&format!("/v2/types/{id}/extra_specs"))
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(
        listed,
        json!({"extra_specs": {"driver_handles_share_servers": "False", "replication_type": "readable"}})
    );
    app.finish().await;
}

#[tokio::test]
async fn d54_key_with_space_is_refused() {
    let app = TestApp::noauth().await;
    let id = create_type(&app, "t", json!({})).await;
    let resp = app
        .post(&format!("/v2/types/{id}/extra_specs"))
        .version("2.56")
        .json(&json!({"extra_specs": {"has space": "v"}}))
        .send()
        .await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("Key names can only contain alphanumeric characters, underscores, periods, colons and hyphens."),
    );
    app.finish().await;
}

#[tokio::test]
async fn d55_bogus_replication_type_via_extra_specs() {
    let app = TestApp::noauth().await;
    let id = create_type(&app, "t", json!({})).await;
    let resp = app
        .post(&format!("/v2/types/{id}/extra_specs"))
        .version("2.56")
        .json(&json!({"extra_specs": {"replication_type": "bogus"}}))
        .send()
        .await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("Invalid extra_spec: replication_type: bogus"),
    );
    app.finish().await;
}

#[tokio::test]
async fn d56_member_sees_inferred_snapshot_specs_and_replication_type() {
    let app = TestApp::keystone().await;
    create_type(
        &app,
        "repl",
        json!({"replication_type": "readable", "vendor:secret": "x"}),
    )
    .await;
    let resp = app
        .get("/v2/types")
        .version("2.56")
        .token(&app.token_for("alice"))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let body = resp.json();
    let t = &body["share_types"][0];
    assert_eq!(
        t["extra_specs"],
        json!({
            "driver_handles_share_servers": "False",
            "replication_type": "readable",
            "snapshot_support": false,
            "create_share_from_snapshot_support": false,
            "revert_to_snapshot_support": false,
            "mount_snapshot_support": false,
        })
    );
    assert_eq!(
        t["required_extra_specs"],
        json!({"driver_handles_share_servers": "False"})
    );
    // The admin sees exactly what is stored, non-standard keys included.
    let admin = app
        .get("/v2/types")
        .version("2.56")
        .token(&app.token_for("admin"))
        .send()
        .await
        .json();
    assert_eq!(admin["share_types"][0]["extra_specs"]["vendor:secret"], "x");
    assert!(
        admin["share_types"][0]["extra_specs"]
            .get("snapshot_support")
            .is_none()
    );
    app.finish().await;
}

#[tokio::test]
async fn d57_dhss_cannot_be_unset() {
    let app = TestApp::noauth().await;
    let id = create_type(&app, "t", json!({})).await;
    let resp = app
        .delete(&format!(
            "/v2/types/{id}/extra_specs/driver_handles_share_servers"
        ))
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(
        403,
        "forbidden",
        Some("Extra spec 'driver_handles_share_servers' can't be deleted."),
    );
    app.finish().await;
}

// ---- views by microversion ----

#[tokio::test]
async fn views_follow_the_microversion() {
    let app = TestApp::noauth().await;
    let id = create_type(&app, "t", json!({})).await;
    let path = format!("/v2/types/{id}");

    let old = app.get(&path).version("2.6").send().await.json()["share_type"].clone();
    assert_eq!(old["os-share-type-access:is_public"], true);
    assert!(old.get("share_type_access:is_public").is_none());
    assert!(old.get("description").is_none() && old.get("is_default").is_none());

    let v7 = app.get(&path).version("2.7").send().await.json()["share_type"].clone();
    assert_eq!(v7["share_type_access:is_public"], true);
    assert!(v7.get("os-share-type-access:is_public").is_none());

    let v41 = app.get(&path).version("2.41").send().await.json()["share_type"].clone();
    assert!(v41.get("description").is_some() && v41.get("is_default").is_none());

    let v46 = app.get(&path).version("2.46").send().await.json()["share_type"].clone();
    let mut keys: Vec<&str> = v46
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "description",
            "extra_specs",
            "id",
            "is_default",
            "name",
            "required_extra_specs",
            "share_type_access:is_public"
        ]
    );
    app.finish().await;
}

#[tokio::test]
async fn description_needs_2_41() {
    let app = TestApp::noauth().await;
    let mut body = type_body("t", json!({}));
    body["share_type"]["description"] = json!("words");
    let resp = app
        .post("/v2/types")
        .version("2.40")
        .json(&body)
        .send()
        .await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("'description' key is not supported by this microversion. Use 2.41 or greater microversion to be able to use 'description' in share type."),
    );
    let resp = app
        .post("/v2/types")
        .version("2.41")
        .json(&body)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["share_type"]["description"], "words");
    app.finish().await;
}

#[tokio::test]
async fn before_2_24_snapshot_support_defaults_to_true() {
    let app = TestApp::noauth().await;
    let resp = app
        .post("/v2/types")
        .version("2.23")
        .json(&type_body("old", json!({})))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json()["share_type"]["extra_specs"]["snapshot_support"],
        "True"
    );
    let resp = app
        .post("/v2/types")
        .version("2.24")
        .json(&type_body("new", json!({})))
        .send()
        .await;
    assert!(
        resp.json()["share_type"]["extra_specs"]
            .get("snapshot_support")
            .is_none()
    );
    app.finish().await;
}

#[tokio::test]
async fn snapshot_inherit_access_is_inferred_from_2_99() {
    let app = TestApp::keystone().await;
    let id = create_type(&app, "t", json!({})).await;
    let path = format!("/v2/types/{id}");
    let alice = app.token_for("alice");
    let v98 = app
        .get(&path)
        .version("2.98")
        .token(&alice)
        .send()
        .await
        .json();
    assert!(
        v98["share_type"]["extra_specs"]
            .get("snapshot_inherit_share_access_support")
            .is_none()
    );
    let v99 = app
        .get(&path)
        .version("2.99")
        .token(&alice)
        .send()
        .await
        .json();
    assert_eq!(
        v99["share_type"]["extra_specs"]["snapshot_inherit_share_access_support"],
        false
    );
    let v23 = app
        .get(&path)
        .version("2.23")
        .token(&alice)
        .send()
        .await
        .json();
    assert_eq!(
        v23["share_type"]["extra_specs"],
        json!({"driver_handles_share_servers": "False"})
    );
    app.finish().await;
}

#[tokio::test]
async fn volume_type_key_is_accepted_on_create() {
    let app = TestApp::noauth().await;
    let body = json!({"volume_type": {"name": "legacy", "extra_specs": {"driver_handles_share_servers": "true"}}});
    let resp = create(&app, &body).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json()["volume_type"]["required_extra_specs"],
        json!({"driver_handles_share_servers": "true"})
    );
    app.finish().await;
}

// ---- bad input is a 400, never a 500 ----

#[tokio::test]
async fn malformed_create_bodies_are_400() {
    let app = TestApp::noauth().await;
    let not_valid = Some("Type name or description is not valid.");
    for (body, message) in [
        (json!({}), Some(GENERIC_400)),
        (json!({"share_type": "x"}), Some(GENERIC_400)),
        (
            json!({"share_type": {"extra_specs": {"driver_handles_share_servers": false}}}),
            not_valid,
        ),
        (
            json!({"share_type": {"name": "", "extra_specs": {"driver_handles_share_servers": false}}}),
            not_valid,
        ),
        (
            json!({"share_type": {"name": "x".repeat(256), "extra_specs": {"driver_handles_share_servers": false}}}),
            not_valid,
        ),
        (
            json!({"share_type": {"name": 5, "extra_specs": {"driver_handles_share_servers": false}}}),
            Some(GENERIC_400),
        ),
        (
            json!({"share_type": {"name": "x", "extra_specs": "dhss"}}),
            Some(GENERIC_400),
        ),
        (
            json!({"share_type": {"name": "x", "extra_specs": {"driver_handles_share_servers": false, "k": null}}}),
            None,
        ),
        (
            json!({"share_type": {"name": "x", "extra_specs": {"driver_handles_share_servers": false, "k": [1]}}}),
            None,
        ),
        (
            json!({"share_type": {"name": "x", "share_type_access:is_public": "maybe",
                "extra_specs": {"driver_handles_share_servers": false}}}),
            Some("share_type_access:is_public has a non-boolean value."),
        ),
        (
            json!({"share_type": {"name": "x", "extra_specs": {"driver_handles_share_servers": false, "snapshot_support": "maybe"}}}),
            Some("Invalid share type: Invalid extra_spec: %(reason)s."),
        ),
        (
            json!({"share_type": {"name": "x", "extra_specs": {"driver_handles_share_servers": false,
                "provisioning:max_share_size": "big"}}}),
            Some("share_size must be an integer"),
        ),
    ] {
        let resp = create(&app, &body).await;
        resp.assert_fault(400, "badRequest", message);
    }
    let resp = app
        .post("/v2/types")
        .version("2.56")
        .body(Some("application/json"), "{not json")
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some("Malformed request body"));
    let resp = app.post("/v2/types").version("2.56").send().await;
    resp.assert_fault(400, "badRequest", Some(GENERIC_400));
    let resp = app
        .post("/v2/types")
        .version("2.41")
        .json(&json!({"share_type": {"name": "x", "description": 7,
        "extra_specs": {"driver_handles_share_servers": false}}}))
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some(GENERIC_400));
    // Nothing was created along the way.
    assert_eq!(
        names(
            &app.get("/v2/types?is_public=all")
                .version("2.56")
                .send()
                .await
                .json()
        ),
        Vec::<String>::new()
    );
    app.finish().await;
}

#[tokio::test]
async fn is_public_accepts_bool_like_strings_and_the_extension_key() {
    let app = TestApp::noauth().await;
    let mut body = type_body("a", json!({}));
    body["share_type"]["share_type_access:is_public"] = json!("false");
    assert_eq!(
        create(&app, &body).await.json()["share_type"]["share_type_access:is_public"],
        false
    );
    let mut body = type_body("b", json!({}));
    body["share_type"]["share_type_access:is_public"] = json!(true);
    body["share_type"]["os-share-type-access:is_public"] = json!(false);
    assert_eq!(
        create(&app, &body).await.json()["share_type"]["share_type_access:is_public"],
        false
    );
    app.finish().await;
}

// ---- show, list, default, delete ----

#[tokio::test]
async fn unknown_type_is_404() {
    let app = TestApp::noauth().await;
    for id in ["7fa1342b-de9d-4d89-bdc8-af67795c0e52", "not-a-uuid"] {
        let resp = app
            .get(&format!("/v2/types/{id}"))
            .version("2.56")
            .send()
            .await;
        resp.assert_fault(404, "itemNotFound", Some("Share type not found."));
        let resp = app
            .get(&format!("/v2/types/{id}/extra_specs"))
            .version("2.56")
            .send()
            .await;
        resp.assert_fault(
            404,
            "itemNotFound",
            Some(&format!("Share type {id} could not be found.")),
        );
        let resp = app
            .delete(&format!("/v2/types/{id}"))
            .version("2.56")
            .send()
            .await;
        resp.assert_fault(
            404,
            "itemNotFound",
            Some("The resource could not be found."),
        );
    }
    let resp = app.get("/v2/types/detail").version("2.56").send().await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some("The resource could not be found."),
    );
    app.finish().await;
}

#[tokio::test]
async fn list_is_ordered_by_name_and_filters_visibility_for_admins() {
    let app = TestApp::noauth().await;
    create_type(&app, "zeta", json!({})).await;
    create_type(&app, "alpha", json!({})).await;
    create_private_type(&app, "hidden").await;
    let list = app.get("/v2/types").version("2.56").send().await.json();
    assert_eq!(names(&list), ["alpha", "zeta"]);
    assert_eq!(list["share_types"], list["volume_types"]);
    let private = app
        .get("/v2/types?is_public=false")
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(names(&private), ["hidden"]);
    let all = app
        .get("/v2/types?is_public=all")
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(names(&all), ["alpha", "hidden", "zeta"]);
    let resp = app
        .get("/v2/types?is_public=sometimes")
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("Invalid is_public filter [sometimes]"),
    );
    app.finish().await;
}

#[tokio::test]
async fn list_filters_by_extra_specs_from_2_43() {
    let app = TestApp::noauth().await;
    create_type(
        &app,
        "readable",
        json!({"replication_type": "readable", "availability_zones": "az1,az2"}),
    )
    .await;
    create_type(&app, "dr", json!({"replication_type": "dr"})).await;
    let query = "/v2/types?extra_specs=%7B%27replication_type%27%3A+%27readable%27%7D";
    let resp = app.get(query).version("2.42").send().await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("Filter by 'extra_specs' is not supported by this microversion. Use 2.43 or greater microversion to be able to use filter search by 'extra_specs."),
    );
    assert_eq!(
        names(&app.get(query).version("2.43").send().await.json()),
        ["readable"]
    );
    // A type without a zone list matches any zone.
    let by_zone = "/v2/types?extra_specs=%7B%27availability_zones%27%3A+%27az2%27%7D";
    assert_eq!(
        names(&app.get(by_zone).version("2.43").send().await.json()),
        ["dr", "readable"]
    );
    let resp = app
        .get("/v2/types?extra_specs=%7Bbroken")
        .version("2.43")
        .send()
        .await;
    assert_eq!(resp.status, 400);
    app.finish().await;
}

#[tokio::test]
async fn default_type_comes_from_config() {
    let app = TestApp::noauth().await;
    let resp = app.get("/v2/types/default").version("2.56").send().await;
    resp.assert_fault(404, "itemNotFound", Some("Default share type not found"));
    app.finish().await;

    let app = TestApp::builder()
        .configure(|c| c.api.default_share_type = Some("default".to_owned()))
        .build()
        .await;
    let resp = app.get("/v2/types/default").version("2.56").send().await;
    resp.assert_fault(404, "itemNotFound", Some("Default share type not found"));
    create_type(&app, "default", json!({})).await;
    create_type(&app, "other", json!({})).await;
    let resp = app.get("/v2/types/default").version("2.56").send().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["share_type"]["name"], "default");
    assert_eq!(resp.json()["share_type"]["is_default"], true);
    let list = app.get("/v2/types").version("2.46").send().await.json();
    let defaults: Vec<bool> = list["share_types"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["is_default"].as_bool().unwrap())
        .collect();
    assert_eq!(defaults, [true, false]);
    app.finish().await;
}

#[tokio::test]
async fn delete_type_answers_202() {
    let app = TestApp::noauth().await;
    let id = create_type(&app, "t", json!({})).await;
    let resp = app
        .delete(&format!("/v2/types/{id}"))
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 202);
    assert!(resp.body.is_empty());
    assert_eq!(
        app.get(&format!("/v2/types/{id}"))
            .version("2.56")
            .send()
            .await
            .status,
        404
    );
    // The name is free again.
    create_type(&app, "t", json!({})).await;
    app.finish().await;
}

// ---- update (2.50) ----

#[tokio::test]
async fn update_type_from_2_50() {
    let app = TestApp::noauth().await;
    let id = create_type(&app, "before", json!({"replication_type": "dr"})).await;
    let path = format!("/v2/types/{id}");
    let body = json!({"share_type": {"name": "after", "description": "d", "share_type_access:is_public": false}});
    assert_eq!(
        app.put(&path)
            .version("2.49")
            .json(&body)
            .send()
            .await
            .status,
        404
    );
    let resp = app.put(&path).version("2.50").json(&body).send().await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let t = resp.json()["share_type"].clone();
    assert_eq!(
        (t["id"].as_str().unwrap(), &t["name"], &t["description"]),
        (id.as_str(), &json!("after"), &json!("d"))
    );
    assert_eq!(t["share_type_access:is_public"], false);
    assert_eq!(t["extra_specs"]["replication_type"], "dr");
    // An empty description clears it.
    let resp = app
        .put(&path)
        .version("2.50")
        .json(&json!({"share_type": {"description": ""}}))
        .send()
        .await;
    assert_eq!(resp.json()["share_type"]["description"], Value::Null);

    create_type(&app, "taken", json!({})).await;
    let resp = app
        .put(&path)
        .version("2.50")
        .json(&json!({"share_type": {"name": "taken"}}))
        .send()
        .await;
    resp.assert_fault(
        409,
        "conflictingRequest",
        Some("Share Type taken already exists."),
    );
    for (body, message) in [
        (
            json!({"share_type": {"name": "  "}}),
            "Share type name cannot be empty.",
        ),
        (
            json!({"share_type": {}}),
            "Specify share type name, description, share_type_access:is_public or a combination thereof.",
        ),
        (
            json!({"share_type": {"share_type_access:is_public": "perhaps"}}),
            "share_type_access:is_public has a non-boolean value.",
        ),
        (json!({"share_type": {"name": ["x"]}}), GENERIC_400),
        (json!({"other": {}}), GENERIC_400),
    ] {
        app.put(&path)
            .version("2.50")
            .json(&body)
            .send()
            .await
            .assert_fault(400, "badRequest", Some(message));
    }
    let missing = "7fa1342b-de9d-4d89-bdc8-af67795c0e52";
    let resp = app
        .put(&format!("/v2/types/{missing}"))
        .version("2.50")
        .json(&json!({"share_type": {"name": "n"}}))
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some(&format!(
            "ShareTypeNotFound: Share type {missing} could not be found."
        )),
    );
    app.finish().await;
}

#[tokio::test]
async fn update_keeps_the_access_list() {
    let app = TestApp::noauth().await;
    let id = create_private_type(&app, "p").await;
    assert_eq!(
        access_action(&app, &id, "addProjectAccess", PROJECT_A)
            .await
            .status,
        202
    );
    let resp = app
        .put(&format!("/v2/types/{id}"))
        .version("2.50")
        .json(&json!({"share_type": {"name": "q"}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let access = app
        .get(&format!("/v2/types/{id}/share_type_access"))
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(
        access["share_type_access"],
        json!([{"share_type_id": id, "project_id": PROJECT_A}])
    );
    app.finish().await;
}

// ---- private types and project access ----

#[tokio::test]
async fn private_types_are_visible_only_to_projects_with_access() {
    let app = TestApp::keystone().await;
    create_type(&app, "public", json!({})).await;
    let id = create_private_type(&app, "private").await;
    let (alice, bob) = (app.token_for("alice"), app.token_for("bob"));
    let list_as = |token: String| {
        let app = &app;
        async move {
            names(
                &app.get("/v2/types")
                    .version("2.56")
                    .token(&token)
                    .send()
                    .await
                    .json(),
            )
        }
    };
    assert_eq!(list_as(alice.clone()).await, ["public"]);
    let resp = app
        .get(&format!("/v2/types/{id}"))
        .version("2.56")
        .token(&alice)
        .send()
        .await;
    resp.assert_fault(404, "itemNotFound", Some("Share type not found."));

    assert_eq!(
        access_action(&app, &id, "addProjectAccess", PROJECT_A)
            .await
            .status,
        202
    );
    assert_eq!(list_as(alice.clone()).await, ["private", "public"]);
    assert_eq!(list_as(bob.clone()).await, ["public"]);
    let resp = app
        .get(&format!("/v2/types/{id}"))
        .version("2.56")
        .token(&alice)
        .send()
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        app.get(&format!("/v2/types/{id}"))
            .version("2.56")
            .token(&bob)
            .send()
            .await
            .status,
        404
    );
    // A reader of the project sees it too; the admin's default list does not include it.
    assert_eq!(list_as(app.token_for("rita")).await, ["private", "public"]);
    assert_eq!(list_as(app.token_for("admin")).await, ["public"]);

    assert_eq!(
        access_action(&app, &id, "removeProjectAccess", PROJECT_A)
            .await
            .status,
        202
    );
    assert_eq!(list_as(alice).await, ["public"]);
    app.finish().await;
}

#[tokio::test]
async fn access_list_and_actions() {
    let app = TestApp::noauth().await;
    let public = create_type(&app, "public", json!({})).await;
    let private = create_private_type(&app, "private").await;

    let resp = app
        .get(&format!("/v2/types/{public}/share_type_access"))
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some("Access list not available for public share types."),
    );
    let missing = "7fa1342b-de9d-4d89-bdc8-af67795c0e52";
    let resp = app
        .get(&format!("/v2/types/{missing}/share_type_access"))
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some(&format!("Share type {missing} not found.")),
    );

    assert_eq!(
        access_action(&app, &private, "addProjectAccess", PROJECT_B)
            .await
            .status,
        202
    );
    assert_eq!(
        access_action(&app, &private, "addProjectAccess", PROJECT_A)
            .await
            .status,
        202
    );
    let expected = json!({"share_type_access": [
        {"share_type_id": private, "project_id": PROJECT_A},
        {"share_type_id": private, "project_id": PROJECT_B},
    ]});
    for alias in ["share_type_access", "os-share-type-access"] {
        let resp = app
            .get(&format!("/v2/types/{private}/{alias}"))
            .version("2.56")
            .send()
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.json(), expected);
    }

    access_action(&app, &private, "addProjectAccess", PROJECT_A)
        .await
        .assert_fault(
            409,
            "conflictingRequest",
            Some(&format!(
                "Share type access for {private} / {PROJECT_A} combination already exists."
            )),
        );
    access_action(&app, &public, "addProjectAccess", PROJECT_A)
        .await
        .assert_fault(
            409,
            "conflictingRequest",
            Some("Type access modification is not applicable to public share type."),
        );
    access_action(&app, &private, "addProjectAccess", "project-a")
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("Bad project format: project is not in proper format (project-a)"),
        );
    access_action(&app, missing, "addProjectAccess", PROJECT_A)
        .await
        .assert_fault(
            404,
            "itemNotFound",
            Some(&format!("Share type {missing} could not be found.")),
        );
    assert_eq!(
        access_action(&app, &private, "removeProjectAccess", PROJECT_B)
            .await
            .status,
        202
    );
    access_action(&app, &private, "removeProjectAccess", PROJECT_B)
        .await
        .assert_fault(
            404,
            "itemNotFound",
            Some(&format!(
                "Share type access not found for {private} / {PROJECT_B} combination."
            )),
        );

    let action = format!("/v2/types/{private}/action");
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
        .json(&json!({"addProjectAccess": "x"}))
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some(GENERIC_400));
    let resp = app
        .post(&action)
        .version("2.56")
        .json(&json!({"addProjectAccess": {}}))
        .send()
        .await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("Bad project format: project is not in proper format (None)"),
    );
    let resp = app
        .post(&action)
        .version("2.56")
        .json(&json!({"addProjectAccess": {"project": 42}}))
        .send()
        .await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("Bad project format: project is not in proper format (42)"),
    );
    app.finish().await;
}

#[tokio::test]
async fn members_cannot_manage_access_or_extra_specs() {
    let app = TestApp::keystone().await;
    let id = create_private_type(&app, "p").await;
    let alice = app.token_for("alice");
    let forbidden = |resp: TestResponse| {
        resp.assert_fault(
            403,
            "forbidden",
            Some("Access was denied to this resource."),
        )
    };
    forbidden(
        app.get(&format!("/v2/types/{id}/share_type_access"))
            .version("2.56")
            .token(&alice)
            .send()
            .await,
    );
    forbidden(
        app.post(&format!("/v2/types/{id}/action"))
            .version("2.56")
            .token(&alice)
            .json(&json!({"addProjectAccess": {"project": PROJECT_A}}))
            .send()
            .await,
    );
    forbidden(
        app.get(&format!("/v2/types/{id}/extra_specs"))
            .version("2.56")
            .token(&alice)
            .send()
            .await,
    );
    forbidden(
        app.post(&format!("/v2/types/{id}/extra_specs"))
            .version("2.56")
            .token(&alice)
            .json(&json!({"extra_specs": {"k": "v"}}))
            .send()
            .await,
    );
    forbidden(
        app.delete(&format!("/v2/types/{id}"))
            .version("2.56")
            .token(&alice)
            .send()
            .await,
    );
    forbidden(
        app.put(&format!("/v2/types/{id}"))
            .version("2.50")
            .token(&alice)
            .json(&json!({"share_type": {"name": "n"}}))
            .send()
            .await,
    );
    // Policy is checked before the lookup: an unknown id is still a 403.
    forbidden(
        app.delete("/v2/types/7fa1342b-de9d-4d89-bdc8-af67795c0e52")
            .version("2.56")
            .token(&alice)
            .send()
            .await,
    );
    // Reading types is allowed to readers; a user without roles gets nothing.
    assert_eq!(
        app.get("/v2/types")
            .version("2.56")
            .token(&app.token_for("rita"))
            .send()
            .await
            .status,
        200
    );
    forbidden(
        app.get("/v2/types")
            .version("2.56")
            .token(&app.token_for("nobody"))
            .send()
            .await,
    );
    app.finish().await;
}

// ---- extra specs ----

#[tokio::test]
async fn extra_spec_key_show_update_delete() {
    let app = TestApp::noauth().await;
    let id = create_type(&app, "t", json!({"replication_type": "readable"})).await;
    let key_path = format!("/v2/types/{id}/extra_specs/replication_type");

    let resp = app.get(&key_path).version("2.56").send().await;
    assert_eq!(resp.json(), json!({"replication_type": "readable"}));
    let resp = app
        .get(&format!("/v2/types/{id}/extra_specs/nope"))
        .version("2.56")
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some("The resource could not be found."),
    );

    let resp = app
        .put(&key_path)
        .version("2.56")
        .json(&json!({"replication_type": "dr"}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"replication_type": "dr"}));
    assert_eq!(
        app.get(&key_path).version("2.56").send().await.json(),
        json!({"replication_type": "dr"})
    );
    for (body, message) in [
        (
            json!({"snapshot_support": "True"}),
            "Request body and URI mismatch",
        ),
        (
            json!({"replication_type": "dr", "x": "y"}),
            "Request body contains too many items",
        ),
        (json!({}), "Request body empty"),
        (
            json!({"replication_type": "nope"}),
            "Invalid extra_spec: replication_type: nope",
        ),
    ] {
        app.put(&key_path)
            .version("2.56")
            .json(&body)
            .send()
            .await
            .assert_fault(400, "badRequest", Some(message));
    }
    app.put(&key_path)
        .version("2.56")
        .send()
        .await
        .assert_fault(400, "badRequest", Some("Request body empty"));
    // A bad boolean shows its reason on PUT, but only webob's generic text on POST.
    let resp = app
        .put(&format!("/v2/types/{id}/extra_specs/snapshot_support"))
        .version("2.56")
        .json(&json!({"snapshot_support": "maybe"}))
        .send()
        .await;
    resp.assert_fault(
        400,
        "badRequest",
        Some("Invalid extra_spec: Invalid boolean extra spec snapshot_support : maybe."),
    );
    let resp = app
        .post(&format!("/v2/types/{id}/extra_specs"))
        .version("2.56")
        .json(&json!({"extra_specs": {"snapshot_support": "maybe"}}))
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some(GENERIC_400));

    let resp = app.delete(&key_path).version("2.56").send().await;
    assert_eq!(resp.status, 202);
    let resp = app.delete(&key_path).version("2.56").send().await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some(&format!(
            "Share Type {id} has no extra specs with key replication_type."
        )),
    );
    app.finish().await;
}

#[tokio::test]
async fn extra_specs_post_normalises_values() {
    let app = TestApp::noauth().await;
    let id = create_type(&app, "t", json!({})).await;
    let body = json!({"extra_specs": {"availability_zones": "az1, az2", "snapshot_support": true}});
    let resp = app
        .post(&format!("/v2/types/{id}/extra_specs"))
        .version("2.56")
        .json(&body)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        resp.json(),
        json!({"extra_specs": {"availability_zones": "az1,az2", "snapshot_support": true}})
    );
    let specs = app
        .get(&format!("/v2/types/{id}/extra_specs"))
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(specs["extra_specs"]["availability_zones"], "az1,az2");
    assert_eq!(specs["extra_specs"]["snapshot_support"], "True");
    for bad in [
        json!({"extra_specs": {"k": 5}}),
        json!({"extra_specs": {"k": ""}}),
        json!({"extra_specs": {"k": {"a": "b"}}}),
    ] {
        let resp = app
            .post(&format!("/v2/types/{id}/extra_specs"))
            .version("2.56")
            .json(&bad)
            .send()
            .await;
        assert_eq!(resp.status, 400, "{bad}: {}", resp.text());
    }
    let resp = app
        .post(&format!("/v2/types/{id}/extra_specs"))
        .version("2.56")
        .json(&json!({"extra_specs": "x"}))
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some(GENERIC_400));
    app.finish().await;
}

#[tokio::test]
async fn snapshot_support_is_protected_before_2_24() {
    let app = TestApp::noauth().await;
    let id = create_type(&app, "t", json!({"snapshot_support": true})).await;
    let path = format!("/v2/types/{id}/extra_specs/snapshot_support");
    let resp = app.delete(&path).version("2.23").send().await;
    resp.assert_fault(
        403,
        "forbidden",
        Some("Extra spec 'snapshot_support' can't be deleted."),
    );
    assert_eq!(app.delete(&path).version("2.24").send().await.status, 202);
    app.finish().await;
}
