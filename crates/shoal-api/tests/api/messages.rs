//! User messages (`/v2/messages`, ≥2.37; replication.md §15). Messages are recorded through
//! the same core function the workers call.

use chrono::{Duration, Utc};
use serde_json::Value;
use shoal_core::config::AuthStrategy;
use shoal_core::messages::{
    self, ACTION_ALLOCATE_HOST, ACTION_PROMOTE, DETAIL_FILTER_REPLICATION, DETAIL_NO_ACTIVE_REPLICA,
};
use shoal_store::MessageRow;
use shoal_testkit::{PROJECT_A, PROJECT_B, TestApp, TestResponse};
use uuid::Uuid;

const V: &str = "2.37";

async fn app() -> TestApp {
    TestApp::builder()
        .auth(AuthStrategy::Keystone)
        .build()
        .await
}

async fn record(
    app: &TestApp,
    project: &str,
    resource_type: &str,
    resource: &str,
    action: &str,
    detail: &str,
) {
    messages::record(
        app.core(),
        project,
        resource_type,
        resource,
        action,
        detail,
        "ERROR",
    )
    .await
    .expect("record");
}

async fn get(app: &TestApp, user: &str, version: &str, path: &str) -> TestResponse {
    app.get(path)
        .version(version)
        .token(&app.token_for(user))
        .send()
        .await
}

fn list(resp: &TestResponse) -> Vec<Value> {
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["messages"].as_array().unwrap().clone()
}

#[tokio::test]
async fn messages_exist_from_2_37() {
    let app = app().await;
    get(&app, "alice", "2.36", "/v2/messages")
        .await
        .assert_fault(
            404,
            "itemNotFound",
            Some("The resource could not be found."),
        );
    assert!(list(&get(&app, "alice", V, "/v2/messages").await).is_empty());
    app.finish().await;
}

#[tokio::test]
async fn list_show_and_delete_with_manila_fields() {
    let app = app().await;
    let replica = Uuid::new_v4().to_string();
    record(
        &app,
        PROJECT_A,
        "SHARE_REPLICA",
        &replica,
        ACTION_ALLOCATE_HOST,
        DETAIL_FILTER_REPLICATION,
    )
    .await;
    let items = list(&get(&app, "alice", V, "/v2/messages").await);
    assert_eq!(items.len(), 1);
    let message = &items[0];
    let mut keys: Vec<&str> = message
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "action_id",
            "created_at",
            "detail_id",
            "expires_at",
            "id",
            "links",
            "message_level",
            "project_id",
            "request_id",
            "resource_id",
            "resource_type",
            "user_message"
        ]
    );
    assert_eq!(message["project_id"], PROJECT_A);
    assert_eq!(message["resource_type"], "SHARE_REPLICA");
    assert_eq!(message["resource_id"], replica.as_str());
    assert_eq!(message["action_id"], "001");
    assert_eq!(message["detail_id"], "014");
    assert_eq!(message["message_level"], "ERROR");
    assert_eq!(
        message["user_message"],
        "allocate host: No storage could be allocated for this share request, ShareReplication filter didn't succeed."
    );
    let id = message["id"].as_str().unwrap().to_owned();
    let links = message["links"].as_array().unwrap();
    assert!(
        links[0]["href"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v2/{PROJECT_A}/messages/{id}"))
    );
    assert_eq!(links[0]["rel"], "self");
    assert_eq!(links[1]["rel"], "bookmark");
    // Expiry is 30 days after creation.
    let parse = |v: &Value| {
        chrono::NaiveDateTime::parse_from_str(v.as_str().unwrap(), "%Y-%m-%dT%H:%M:%S%.f").unwrap()
    };
    assert_eq!(
        parse(&message["expires_at"]) - parse(&message["created_at"]),
        Duration::days(30)
    );

    let shown = get(&app, "rita", V, &format!("/v2/messages/{id}")).await;
    assert_eq!(shown.status, 200, "{}", shown.text());
    assert_eq!(&shown.json()["message"], message);

    // Readers may not delete; members may.
    let resp = app
        .delete(&format!("/v2/messages/{id}"))
        .version(V)
        .token(&app.token_for("rita"))
        .send()
        .await;
    resp.assert_fault(403, "forbidden", None);
    let resp = app
        .delete(&format!("/v2/messages/{id}"))
        .version(V)
        .token(&app.token_for("alice"))
        .send()
        .await;
    assert_eq!(resp.status, 204, "{}", resp.text());
    assert!(resp.body.is_empty());
    get(&app, "alice", V, &format!("/v2/messages/{id}"))
        .await
        .assert_fault(
            404,
            "itemNotFound",
            Some(&format!("Message {id} could not be found.")),
        );
    let resp = app
        .delete(&format!("/v2/messages/{id}"))
        .version(V)
        .token(&app.token_for("alice"))
        .send()
        .await;
    resp.assert_fault(404, "itemNotFound", None);
    app.finish().await;
}

#[tokio::test]
async fn messages_are_scoped_to_their_project() {
    let app = app().await;
    record(
        &app,
        PROJECT_A,
        "SHARE",
        &Uuid::new_v4().to_string(),
        ACTION_PROMOTE,
        DETAIL_NO_ACTIVE_REPLICA,
    )
    .await;
    record(
        &app,
        PROJECT_B,
        "SHARE",
        &Uuid::new_v4().to_string(),
        ACTION_PROMOTE,
        DETAIL_NO_ACTIVE_REPLICA,
    )
    .await;
    let alice = list(&get(&app, "alice", V, "/v2/messages").await);
    assert_eq!(alice.len(), 1);
    assert_eq!(alice[0]["project_id"], PROJECT_A);
    let bob = list(&get(&app, "bob", V, "/v2/messages").await);
    assert_eq!(bob.len(), 1);
    let bobs = bob[0]["id"].as_str().unwrap().to_owned();
    get(&app, "alice", V, &format!("/v2/messages/{bobs}"))
        .await
        .assert_fault(404, "itemNotFound", None);
    let resp = app
        .delete(&format!("/v2/messages/{bobs}"))
        .version(V)
        .token(&app.token_for("alice"))
        .send()
        .await;
    resp.assert_fault(404, "itemNotFound", None);
    // Admins see every project's messages.
    assert_eq!(list(&get(&app, "admin", V, "/v2/messages").await).len(), 2);
    get(&app, "nobody", V, "/v2/messages")
        .await
        .assert_fault(403, "forbidden", None);
    app.finish().await;
}

#[tokio::test]
async fn filters_sorting_paging_and_expiry() {
    let app = app().await;
    for (kind, action) in [("SHARE", "002"), ("SHARE_REPLICA", "004"), ("SHARE", "007")] {
        record(
            &app,
            PROJECT_A,
            kind,
            &Uuid::new_v4().to_string(),
            action,
            "001",
        )
        .await;
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // An expired message is never shown.
    let now = Utc::now();
    app.core()
        .store
        .insert_message(MessageRow {
            id: Uuid::new_v4(),
            project_id: PROJECT_A.to_owned(),
            request_id: None,
            resource_type: "SHARE".to_owned(),
            resource_id: None,
            action_id: "002".to_owned(),
            detail_id: "001".to_owned(),
            message_level: "ERROR".to_owned(),
            created_at: now - Duration::days(31),
            expires_at: now - Duration::days(1),
        })
        .await
        .expect("insert");
    let all = list(&get(&app, "alice", V, "/v2/messages").await);
    let actions: Vec<&str> = all
        .iter()
        .map(|m| m["action_id"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["007", "004", "002"], "newest first by default");
    let asc = list(&get(&app, "alice", V, "/v2/messages?sort_dir=asc").await);
    assert_eq!(asc[0]["action_id"], "002");
    let shares = list(&get(&app, "alice", V, "/v2/messages?resource_type=SHARE").await);
    assert_eq!(shares.len(), 2);
    let by_action = list(
        &get(
            &app,
            "alice",
            V,
            "/v2/messages?action_id=004&sort_key=action_id",
        )
        .await,
    );
    assert_eq!(by_action.len(), 1);
    let page = get(&app, "alice", V, "/v2/messages?limit=2").await;
    assert_eq!(list(&page).len(), 2);
    let next = page.json()["messages_links"][0]["href"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(next.contains("marker="), "{next}");
    let rest = list(&get(&app, "alice", V, "/v2/messages?limit=2&offset=2").await);
    assert_eq!(rest.len(), 1);
    get(&app, "alice", V, "/v2/messages?sort_key=bogus")
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("Invalid input received: Invalid sort key bogus."),
        );
    get(&app, "alice", V, "/v2/messages?limit=x")
        .await
        .assert_fault(400, "badRequest", None);
    // Time filters from 2.52.
    let future = (Utc::now() + Duration::hours(1))
        .format("%Y-%m-%dT%H:%M:%S")
        .to_string();
    assert_eq!(
        list(
            &get(
                &app,
                "alice",
                "2.51",
                &format!("/v2/messages?created_since={future}")
            )
            .await
        )
        .len(),
        3
    );
    assert!(
        list(
            &get(
                &app,
                "alice",
                "2.52",
                &format!("/v2/messages?created_since={future}")
            )
            .await
        )
        .is_empty()
    );
    assert_eq!(
        list(
            &get(
                &app,
                "alice",
                "2.52",
                &format!("/v2/messages?created_before={future}")
            )
            .await
        )
        .len(),
        3
    );
    get(
        &app,
        "alice",
        "2.52",
        "/v2/messages?created_since=yesterday",
    )
    .await
    .assert_fault(400, "badRequest", None);
    app.finish().await;
}
