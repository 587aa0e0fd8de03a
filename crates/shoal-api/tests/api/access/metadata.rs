//! Access rule metadata (≥2.45): `PUT /v2/share-access-rules/{id}/metadata`,
//! `DELETE /v2/share-access-rules/{id}/metadata/{key}`, metadata given to `allow_access`,
//! and how it shows in the rule, the list and its `metadata` filter (Manila's
//! `share_access_metadata.py`, `share/api.py::update_share_access_metadata`,
//! `db/sqlalchemy/api.py::share_access_metadata_*`).

use serde_json::{Value, json};
use shoal_testkit::{PROJECT_A, TestApp, TestResponse};

use super::{V, action, alice_share, allow, allow_ok, app, list_rules, rule_view, show_rule};

/// webob's bare 400 (`HTTPBadRequest()`).
const BARE_400: &str = "The server could not comply with the request since it is either malformed or otherwise incorrect.";
const RULE_NOT_FOUND: &str = "Resource could not be found.";
const KEY_NOT_FOUND: &str = "Share access rule metadata does not exist.";

async fn put_metadata(
    app: &TestApp,
    user: &str,
    version: &str,
    rule: &str,
    body: Value,
) -> TestResponse {
    app.put(&format!("/v2/share-access-rules/{rule}/metadata"))
        .version(version)
        .token(&app.token_for(user))
        .json(&body)
        .send()
        .await
}

async fn delete_key(
    app: &TestApp,
    user: &str,
    version: &str,
    rule: &str,
    key: &str,
) -> TestResponse {
    app.delete(&format!("/v2/share-access-rules/{rule}/metadata/{key}"))
        .version(version)
        .token(&app.token_for(user))
        .send()
        .await
}

/// An available share of alice with one rule carrying `metadata`; returns both ids.
async fn share_with_rule(app: &TestApp, to: &str, metadata: Value) -> (String, String) {
    let id = alice_share(app).await;
    let resp = allow(
        app,
        "alice",
        "2.45",
        &id,
        json!({"access_type": "ip", "access_to": to, "metadata": metadata}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["access"]["metadata"], metadata);
    let rule = resp.json()["access"]["id"].as_str().unwrap().to_owned();
    app.settle().await;
    (id, rule)
}

#[tokio::test]
async fn set_merges_keys_and_answers_the_keys_sent() {
    let app = app().await;
    let (id, rule) = share_with_rule(&app, "10.20.0.0/16", json!({"a": "1", "b": "2"})).await;
    let before = rule_view(&app, &rule).await;
    assert_eq!(before["metadata"], json!({"a": "1", "b": "2"}));

    let resp = put_metadata(
        &app,
        "alice",
        "2.45",
        &rule,
        json!({"metadata": {"b": "3", "c": "4"}}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    // Manila answers with the keys sent, not with the whole set.
    assert_eq!(resp.json(), json!({"metadata": {"b": "3", "c": "4"}}));
    let after = rule_view(&app, &rule).await;
    assert_eq!(after["metadata"], json!({"a": "1", "b": "3", "c": "4"}));
    // Metadata is not a change of the rule: its timestamps and state stay.
    assert_eq!(after["updated_at"], before["updated_at"]);
    assert_eq!(after["created_at"], before["created_at"]);
    assert_eq!(after["state"], "active");

    // An empty object changes nothing and answers it.
    let resp = put_metadata(&app, "alice", V, &rule, json!({"metadata": {}})).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"metadata": {}}));
    // Other keys of the body are ignored.
    let resp = put_metadata(
        &app,
        "alice",
        V,
        &rule,
        json!({"metadata": {"d": "5"}, "x": 1}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json(), json!({"metadata": {"d": "5"}}));

    // The list shows it and filters on it (every pair must match).
    let all = json!({"a": "1", "b": "3", "c": "4", "d": "5"});
    let resp = list_rules(&app, "alice", V, &format!("share_id={id}")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["access_list"][0]["metadata"], all);
    let other = allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.21.0.0/16"}),
    )
    .await;
    app.settle().await;
    for (filter, expected) in [
        ("{'c': '4'}", vec![rule.as_str()]),
        ("{'c': '4', 'a': '1'}", vec![rule.as_str()]),
        ("{'c': '5'}", vec![]),
        ("{}", vec![rule.as_str(), other.as_str()]),
    ] {
        let resp = list_rules(
            &app,
            "alice",
            V,
            &format!("share_id={id}&metadata={filter}"),
        )
        .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        let mut ids: Vec<String> = resp.json()["access_list"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        let mut expected: Vec<String> = expected.into_iter().map(str::to_owned).collect();
        expected.sort();
        assert_eq!(ids, expected, "filter {filter}");
    }
    assert_eq!(rule_view(&app, &other).await["metadata"], json!({}));

    // The project-segment form, and a later microversion.
    let resp = app
        .put(&format!(
            "/v2/{PROJECT_A}/share-access-rules/{rule}/metadata"
        ))
        .version("2.99")
        .token(&app.token_for("alice"))
        .json(&json!({"metadata": {"a": "changed"}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(rule_view(&app, &rule).await["metadata"]["a"], "changed");
    app.finish().await;
}

#[tokio::test]
async fn delete_answers_200_with_an_empty_body_and_unknown_keys_are_404() {
    let app = app().await;
    let (_, rule) = share_with_rule(&app, "10.22.0.0/16", json!({"a": "1", "b": "2"})).await;
    let resp = delete_key(&app, "alice", "2.45", &rule, "a").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert!(resp.body.is_empty(), "{}", resp.text());
    assert_eq!(rule_view(&app, &rule).await["metadata"], json!({"b": "2"}));
    // Gone already; never set; keys are case-sensitive.
    for key in ["a", "nope", "B"] {
        delete_key(&app, "alice", V, &rule, key).await.assert_fault(
            404,
            "itemNotFound",
            Some(KEY_NOT_FOUND),
        );
    }
    // Keys travel percent-encoded in the path.
    let resp = put_metadata(
        &app,
        "alice",
        V,
        &rule,
        json!({"metadata": {"with space/é": "v"}}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = delete_key(&app, "alice", V, &rule, "with%20space%2F%C3%A9").await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    delete_key(&app, "alice", V, &rule, "b").await;
    assert_eq!(rule_view(&app, &rule).await["metadata"], json!({}));
    app.finish().await;
}

#[tokio::test]
async fn update_validation_uses_manilas_texts() {
    let app = app().await;
    let (_, rule) = share_with_rule(&app, "10.23.0.0/16", json!({"keep": "me"})).await;
    // Body shapes `is_valid_body` refuses: webob's bare 400.
    for body in [
        json!({}),
        json!({"meta": {"k": "v"}}),
        json!({"metadata": null}),
        json!({"metadata": ["k"]}),
        json!({"metadata": "k=v"}),
        json!([{"metadata": {}}]),
    ] {
        put_metadata(&app, "alice", V, &rule, body.clone())
            .await
            .assert_fault(400, "badRequest", Some(BARE_400));
    }
    let resp = app
        .put(&format!("/v2/share-access-rules/{rule}/metadata"))
        .version(V)
        .token(&app.token_for("alice"))
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some(BARE_400));
    let resp = app
        .put(&format!("/v2/share-access-rules/{rule}/metadata"))
        .version(V)
        .token(&app.token_for("alice"))
        .body(Some("application/json"), "{\"metadata\": ")
        .send()
        .await;
    resp.assert_fault(400, "badRequest", Some("Malformed request body"));

    // Keys and values: Manila re-raises without the specific texts.
    let long_key = "k".repeat(256);
    let long_value = "v".repeat(1024);
    for (metadata, text) in [
        (json!({"": "v"}), "Invalid metadata."),
        (json!({"k": ""}), "Invalid metadata."),
        (json!({"k": null}), "Invalid metadata."),
        (json!({"k": false}), "Invalid metadata."),
        (json!({"k": 0}), "Invalid metadata."),
        (json!({long_key: "v"}), "Invalid metadata size."),
        (json!({"k": long_value}), "Invalid metadata size."),
        // `len()` of a number raises TypeError.
        (json!({"k": 5}), BARE_400),
        (json!({"k": true}), BARE_400),
        (json!({"k": ["v"]}), BARE_400),
    ] {
        put_metadata(
            &app,
            "alice",
            V,
            &rule,
            json!({"metadata": metadata.clone()}),
        )
        .await
        .assert_fault(400, "badRequest", Some(text));
    }
    // One bad entry refuses the whole update.
    put_metadata(
        &app,
        "alice",
        V,
        &rule,
        json!({"metadata": {"good": "v", "bad": ""}}),
    )
    .await
    .assert_fault(400, "badRequest", Some("Invalid metadata."));
    assert_eq!(
        rule_view(&app, &rule).await["metadata"],
        json!({"keep": "me"})
    );

    // The limits themselves are fine, counted in characters.
    let key = "é".repeat(255);
    let value = "ü".repeat(1023);
    let resp = put_metadata(
        &app,
        "alice",
        V,
        &rule,
        json!({"metadata": {key.clone(): value.clone()}}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(
        rule_view(&app, &rule).await["metadata"][&key],
        value.as_str()
    );

    // The body's shape is checked before the rule is looked up, its contents after.
    let unknown = "00000000-0000-4000-8000-000000000000";
    put_metadata(&app, "alice", V, unknown, json!({}))
        .await
        .assert_fault(400, "badRequest", Some(BARE_400));
    put_metadata(&app, "alice", V, unknown, json!({"metadata": {"": ""}}))
        .await
        .assert_fault(404, "itemNotFound", Some(RULE_NOT_FOUND));
    app.finish().await;
}

#[tokio::test]
async fn allow_access_validates_and_stores_metadata() {
    let app = app().await;
    let id = alice_share(&app).await;
    for (metadata, text) in [
        (json!({"": "v"}), "Metadata property key is blank."),
        (json!({"k": ""}), "Metadata property value is blank."),
        (
            json!({"k".repeat(256): "v"}),
            "Metadata property key is greater than 255 characters.",
        ),
        (
            json!({"k": "v".repeat(1024)}),
            "Metadata property value is greater than 1023 characters.",
        ),
        (json!({"k": 1}), BARE_400),
    ] {
        let resp = allow(
            &app,
            "alice",
            V,
            &id,
            json!({"access_type": "ip", "access_to": "10.24.0.0/16", "metadata": metadata}),
        )
        .await;
        resp.assert_fault(400, "badRequest", Some(text));
    }
    // Nothing was created by the refusals.
    let resp = list_rules(&app, "alice", V, &format!("share_id={id}")).await;
    assert_eq!(resp.json()["access_list"], json!([]));
    // No or empty metadata: an empty object.
    for (to, metadata) in [
        ("10.25.0.0/16", None),
        ("10.26.0.0/16", Some(json!({}))),
        ("10.27.0.0/16", Some(json!(null))),
    ] {
        let mut rule = json!({"access_type": "ip", "access_to": to});
        if let Some(m) = metadata {
            rule["metadata"] = m;
        }
        let resp = allow(&app, "alice", V, &id, rule).await;
        assert_eq!(resp.status, 200, "{}", resp.text());
        assert_eq!(resp.json()["access"]["metadata"], json!({}));
    }
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn unknown_and_invisible_rules_are_404() {
    let app = app().await;
    let (id, rule) = share_with_rule(&app, "10.30.0.0/16", json!({"k": "v"})).await;
    for missing in ["00000000-0000-4000-8000-000000000000", "not-a-uuid"] {
        put_metadata(&app, "alice", V, missing, json!({"metadata": {"k": "w"}}))
            .await
            .assert_fault(404, "itemNotFound", Some(RULE_NOT_FOUND));
        delete_key(&app, "alice", V, missing, "k")
            .await
            .assert_fault(404, "itemNotFound", Some(RULE_NOT_FOUND));
    }
    // bob (project B) cannot tell alice's private rule from a missing one.
    put_metadata(&app, "bob", V, &rule, json!({"metadata": {"k": "bob"}}))
        .await
        .assert_fault(404, "itemNotFound", Some(RULE_NOT_FOUND));
    delete_key(&app, "bob", V, &rule, "k").await.assert_fault(
        404,
        "itemNotFound",
        Some(RULE_NOT_FOUND),
    );
    delete_key(&app, "bob", V, &rule, "missing")
        .await
        .assert_fault(404, "itemNotFound", Some(RULE_NOT_FOUND));
    assert_eq!(rule_view(&app, &rule).await["metadata"], json!({"k": "v"}));

    // An admin of another project may.
    let resp = app
        .put(&format!("/v2/share-access-rules/{rule}/metadata"))
        .version(V)
        .json(&json!({"metadata": {"by": "admin"}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = app
        .delete(&format!("/v2/share-access-rules/{rule}/metadata/by"))
        .version(V)
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());

    // Public: bob sees the rule and its metadata but may not change them.
    let resp = app
        .put(&format!("/v2/shares/{id}"))
        .version(V)
        .json(&json!({"share": {"is_public": true}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = show_rule(&app, "bob", V, &rule).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["access"]["metadata"], json!({"k": "v"}));
    let forbidden = "Policy doesn't allow share:get to be performed.";
    put_metadata(&app, "bob", V, &rule, json!({"metadata": {"k": "bob"}}))
        .await
        .assert_fault(403, "forbidden", Some(forbidden));
    delete_key(&app, "bob", V, &rule, "k")
        .await
        .assert_fault(403, "forbidden", Some(forbidden));
    assert_eq!(rule_view(&app, &rule).await["metadata"], json!({"k": "v"}));
    app.finish().await;
}

#[tokio::test]
async fn policies_are_checked_before_any_lookup() {
    let app = app().await;
    let (_, rule) = share_with_rule(&app, "10.31.0.0/16", json!({"k": "v"})).await;
    // Readers and callers without roles: `share_access_metadata:*` is member.
    for user in ["rita", "nobody"] {
        for target in [rule.as_str(), "unknown"] {
            put_metadata(&app, user, V, target, json!({"metadata": {"k": "w"}}))
                .await
                .assert_fault(
                    403,
                    "forbidden",
                    Some("Access was denied to this resource."),
                );
            put_metadata(&app, user, V, target, json!({}))
                .await
                .assert_fault(
                    403,
                    "forbidden",
                    Some("Access was denied to this resource."),
                );
            delete_key(&app, user, V, target, "k").await.assert_fault(
                403,
                "forbidden",
                Some("Access was denied to this resource."),
            );
        }
    }
    // The reader still sees the metadata.
    let resp = show_rule(&app, "rita", V, &rule).await;
    assert_eq!(resp.json()["access"]["metadata"], json!({"k": "v"}));
    app.finish().await;
}

#[tokio::test]
async fn share_access_get_policy_is_checked_by_the_lookup() {
    let dir = tempfile::tempdir().unwrap();
    let policy = dir.path().join("policy.yaml");
    std::fs::write(
        &policy,
        "\"share:access_get\": \"!\"\n\"share_access_metadata:delete\": \"rule:context_is_admin\"\n",
    )
    .unwrap();
    let app = TestApp::builder()
        .auth(shoal_core::config::AuthStrategy::Keystone)
        .with_dummy_backend("dummy1", "az1", None)
        .configure(move |config| config.api.policy_file = Some(policy))
        .build()
        .await;
    super::create_type(&app, "default", json!({})).await;
    let (_, rule) = share_with_rule(&app, "10.32.0.0/16", json!({"k": "v"})).await;
    let denied = "Policy doesn't allow share:access_get to be performed.";
    // The endpoint's rule passes, the lookup's does not.
    put_metadata(&app, "alice", V, &rule, json!({"metadata": {"k": "w"}}))
        .await
        .assert_fault(403, "forbidden", Some(denied));
    put_metadata(&app, "alice", V, "unknown", json!({"metadata": {"k": "w"}}))
        .await
        .assert_fault(403, "forbidden", Some(denied));
    // An overridden endpoint rule answers first, with the generic text.
    delete_key(&app, "alice", V, &rule, "k").await.assert_fault(
        403,
        "forbidden",
        Some("Access was denied to this resource."),
    );
    drop(dir);
    app.finish().await;
}

#[tokio::test]
async fn routes_exist_from_2_45() {
    let app = app().await;
    let (_, rule) = share_with_rule(&app, "10.33.0.0/16", json!({"k": "v"})).await;
    for version in ["2.0", "2.7", "2.44"] {
        put_metadata(
            &app,
            "alice",
            version,
            &rule,
            json!({"metadata": {"k": "w"}}),
        )
        .await
        .assert_fault(
            404,
            "itemNotFound",
            Some("The resource could not be found."),
        );
        delete_key(&app, "alice", version, &rule, "k")
            .await
            .assert_fault(
                404,
                "itemNotFound",
                Some("The resource could not be found."),
            );
    }
    // Below 2.45 the version answers before the policy.
    put_metadata(&app, "rita", "2.44", &rule, json!({"metadata": {"k": "w"}}))
        .await
        .assert_fault(404, "itemNotFound", None);
    // Manila routes only PUT on the collection and DELETE on a key.
    for (method, path) in [
        ("GET", format!("/v2/share-access-rules/{rule}/metadata")),
        ("POST", format!("/v2/share-access-rules/{rule}/metadata")),
        ("DELETE", format!("/v2/share-access-rules/{rule}/metadata")),
        ("GET", format!("/v2/share-access-rules/{rule}/metadata/k")),
        ("PUT", format!("/v2/share-access-rules/{rule}/metadata/k")),
    ] {
        let resp = app
            .request(method.parse().unwrap(), &path)
            .version(V)
            .token(&app.token_for("alice"))
            .json(&json!({"metadata": {"k": "w"}}))
            .send()
            .await;
        assert_eq!(resp.status, 404, "{method} {path}: {}", resp.text());
    }
    assert_eq!(rule_view(&app, &rule).await["metadata"], json!({"k": "v"}));
    app.finish().await;
}

#[tokio::test]
async fn metadata_goes_away_with_its_rule() {
    let app = app().await;
    let (id, rule) = share_with_rule(&app, "10.34.0.0/16", json!({"k": "v"})).await;
    let resp = action(
        &app,
        "alice",
        V,
        &id,
        json!({"deny_access": {"access_id": rule}}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    put_metadata(&app, "alice", V, &rule, json!({"metadata": {"k": "w"}}))
        .await
        .assert_fault(404, "itemNotFound", Some(RULE_NOT_FOUND));
    delete_key(&app, "alice", V, &rule, "k").await.assert_fault(
        404,
        "itemNotFound",
        Some(RULE_NOT_FOUND),
    );
    // The same target allowed again starts without the old metadata.
    let again = allow_ok(
        &app,
        &id,
        json!({"access_type": "ip", "access_to": "10.34.0.0/16"}),
    )
    .await;
    assert_ne!(again, rule);
    assert_eq!(rule_view(&app, &again).await["metadata"], json!({}));
    app.settle().await;
    app.finish().await;
}
