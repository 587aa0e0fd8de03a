//! What the stock OpenStack clients (python-openstackclient with python-manilaclient's
//! plugin, run end to end by `tests/clients/`) send and shoal once answered wrongly.
//!
//! `openstack share set` always ends with `POST /v2/shares/{id}/action
//! {"reset_task_state": {"task_state": null}}` (with the experimental header below 2.96),
//! even for a plain `--name`: Manila's admin `reset_task_state` action (2.22, GA at 2.96).

use serde_json::{Value, json};
use shoal_testkit::{TestApp, TestResponse};

const MISSING: &str = "00000000-0000-4000-8000-000000000000";

async fn app_with_share(app: TestApp) -> (TestApp, String) {
    let resp = app
        .post("/v2/types")
        .version("2.56")
        .json(&json!({"share_type": {"name": "default",
            "extra_specs": {"driver_handles_share_servers": false}}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = app
        .post("/v2/shares")
        .version("2.56")
        .json(&json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "default"}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let id = resp.json()["share"]["id"].as_str().unwrap().to_owned();
    app.settle().await;
    (app, id)
}

async fn reset_task_state(
    app: &TestApp,
    id: &str,
    version: &str,
    experimental: bool,
    body: Value,
) -> TestResponse {
    let mut req = app
        .post(&format!("/v2/shares/{id}/action"))
        .version(version)
        .json(&json!({ "reset_task_state": body }));
    if experimental {
        req = req.experimental("True");
    }
    req.send().await
}

async fn task_state(app: &TestApp, id: &str) -> Value {
    let resp = app
        .get(&format!("/v2/shares/{id}"))
        .version("2.98")
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["share"]["task_state"].clone()
}

#[tokio::test]
async fn share_set_reset_task_state_as_the_client_sends_it() {
    let (app, id) = app_with_share(TestApp::noauth().await).await;
    // What `openstack share set <share> --name x` sends at the client's default, 2.98.
    let resp = reset_task_state(&app, &id, "2.98", false, json!({"task_state": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(resp.text(), "");
    assert_eq!(task_state(&app, &id).await, Value::Null);

    // `--task-state migration_error`, then `--task-state None` clears it again.
    let resp = reset_task_state(
        &app,
        &id,
        "2.98",
        false,
        json!({"task_state": "migration_error"}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(task_state(&app, &id).await, "migration_error");
    let resp = reset_task_state(&app, &id, "2.96", false, json!({"task_state": null})).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(task_state(&app, &id).await, Value::Null);

    // A busy task state makes the share busy, as in Manila.
    let resp = reset_task_state(
        &app,
        &id,
        "2.98",
        false,
        json!({"task_state": "migration_in_progress"}),
    )
    .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let resp = app
        .post(&format!("/v2/shares/{id}/action"))
        .version("2.98")
        .json(&json!({"extend": {"new_size": 2}}))
        .send()
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    app.finish().await;
}

#[tokio::test]
async fn reset_task_state_is_experimental_from_2_22_to_2_95() {
    let (app, id) = app_with_share(TestApp::noauth().await).await;
    let body = || json!({"task_state": null});
    // The client adds the experimental header itself below 2.96.
    for version in ["2.22", "2.56", "2.95"] {
        let resp = reset_task_state(&app, &id, version, true, body()).await;
        assert_eq!(resp.status, 202, "{version}: {}", resp.text());
        reset_task_state(&app, &id, version, false, body())
            .await
            .assert_fault(
                404,
                "itemNotFound",
                Some("The resource could not be found."),
            );
    }
    for version in ["2.96", "2.99"] {
        let resp = reset_task_state(&app, &id, version, false, body()).await;
        assert_eq!(resp.status, 202, "{version}: {}", resp.text());
    }
    reset_task_state(&app, &id, "2.21", true, body())
        .await
        .assert_fault(404, "itemNotFound", None);
    // Never an `os-` action.
    app.post(&format!("/v2/shares/{id}/action"))
        .version("2.6")
        .json(&json!({"os-reset_task_state": {"task_state": null}}))
        .send()
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("There is no such action: os-reset_task_state"),
        );
    app.finish().await;
}

#[tokio::test]
async fn reset_task_state_validates_like_manila() {
    let (app, id) = app_with_share(TestApp::noauth().await).await;
    let resp = reset_task_state(&app, &id, "2.98", false, json!({"task_state": "bogus"})).await;
    resp.assert_fault(400, "badRequest", None);
    let message = resp.json()["badRequest"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.starts_with(
            "Invalid input for field/attribute task_state. Value: bogus. 'bogus' is not one of ['migration_starting', "
        ) && message.ends_with("'data_copying_error', None]"),
        "{message}"
    );
    reset_task_state(&app, &id, "2.98", false, json!({"task_state": 5}))
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("Invalid input for field/attribute task_state. Value: 5. 5 is not of type 'string', 'null'"),
        );
    reset_task_state(&app, &id, "2.98", false, Value::Null)
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("Invalid input for field/attribute reset_task_state. Value: None. None is not of type 'object'"),
        );
    reset_task_state(&app, &id, "2.98", false, json!({}))
        .await
        .assert_fault(400, "badRequest", Some("Must specify 'task_state'"));
    // The legacy key passes the schema but is not what `_reset_status` reads.
    reset_task_state(
        &app,
        &id,
        "2.98",
        false,
        json!({"os-task_state": "migration_error"}),
    )
    .await
    .assert_fault(400, "badRequest", Some("Must specify 'task_state'"));
    reset_task_state(&app, MISSING, "2.98", false, json!({"task_state": null}))
        .await
        .assert_fault(
            404,
            "itemNotFound",
            Some(&format!(
                "ShareNotFound: Share {MISSING} could not be found."
            )),
        );
    assert_eq!(task_state(&app, &id).await, Value::Null);
    app.finish().await;
}

#[tokio::test]
async fn reset_task_state_is_admin_only() {
    let app = TestApp::keystone().await;
    let admin = app.token_for("admin");
    let alice = app.token_for("alice");
    let resp = app
        .post("/v2/types")
        .version("2.56")
        .token(&admin)
        .json(&json!({"share_type": {"name": "default",
            "extra_specs": {"driver_handles_share_servers": false}}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = app
        .post("/v2/shares")
        .version("2.56")
        .token(&alice)
        .json(&json!({"share": {"share_proto": "NFS", "size": 1, "share_type": "default"}}))
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let id = resp.json()["share"]["id"].as_str().unwrap().to_owned();
    app.settle().await;
    let act = |token: String| {
        let app = &app;
        let id = id.clone();
        async move {
            app.post(&format!("/v2/shares/{id}/action"))
                .version("2.98")
                .token(&token)
                .json(&json!({"reset_task_state": {"task_state": null}}))
                .send()
                .await
        }
    };
    // Admin only (Manila's default policy): a member's `openstack share set` still updates
    // the name but then reports the refused reset, exactly as it does against Manila.
    act(alice).await.assert_fault(
        403,
        "forbidden",
        Some("Access was denied to this resource."),
    );
    let resp = act(admin).await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.finish().await;
}
