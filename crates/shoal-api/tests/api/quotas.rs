//! Quota sets and limits (checklist U.296, 298–300, 302–303; api-basics §11,
//! replication.md §11). U.297, U.301 and U.304 with replicas need secondary replicas and
//! live with the replica tests.

use serde_json::{Value, json};
use shoal_core::config::AuthStrategy;
use shoal_testkit::{PROJECT_A, PROJECT_B, TestApp, TestResponse};

const V: &str = "2.56";

/// A keystone node with one readable dummy back end and the types `default` and
/// `readable` (`replication_type=readable`).
async fn app() -> TestApp {
    let app = TestApp::builder()
        .auth(AuthStrategy::Keystone)
        .with_dummy_backend("dummy1", "az1", Some("readable"))
        .build()
        .await;
    for (name, specs) in [
        ("default", json!({"driver_handles_share_servers": false})),
        (
            "readable",
            json!({"driver_handles_share_servers": false, "replication_type": "readable"}),
        ),
    ] {
        let resp = app
            .post("/v2/types")
            .version(V)
            .json(&json!({"share_type": {"name": name, "extra_specs": specs}}))
            .send()
            .await;
        assert_eq!(resp.status, 200, "{}", resp.text());
    }
    app
}

async fn create_share(app: &TestApp, user: &str, share_type: &str, size: i64) -> TestResponse {
    app.post("/v2/shares")
        .version(V)
        .token(&app.token_for(user))
        .json(&json!({"share": {"share_proto": "NFS", "size": size, "share_type": share_type}}))
        .send()
        .await
}

async fn get(app: &TestApp, user: &str, version: &str, path: &str) -> TestResponse {
    app.get(path)
        .version(version)
        .token(&app.token_for(user))
        .send()
        .await
}

async fn put(app: &TestApp, user: &str, version: &str, path: &str, body: Value) -> TestResponse {
    app.put(path)
        .version(version)
        .token(&app.token_for(user))
        .json(&body)
        .send()
        .await
}

/// Admin's detail view of project A at `version`.
async fn detail(app: &TestApp, version: &str) -> Value {
    let resp = get(
        app,
        "admin",
        version,
        &format!("/v2/quota-sets/{PROJECT_A}/detail"),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    resp.json()["quota_set"].clone()
}

fn sorted_keys(value: &Value) -> Vec<String> {
    let mut keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    keys
}

// ---- checklist U ----

#[tokio::test]
async fn u296_replicated_share_counts_one_replica() {
    let app = app().await;
    let before = detail(&app, "2.53").await;
    let resp = create_share(&app, "alice", "readable", 3).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;
    let after = detail(&app, "2.53").await;
    let used = |v: &Value, k: &str| v[k]["in_use"].as_i64().unwrap();
    assert_eq!(
        used(&after, "share_replicas"),
        used(&before, "share_replicas") + 1
    );
    assert_eq!(
        used(&after, "replica_gigabytes"),
        used(&before, "replica_gigabytes") + 3
    );
    assert_eq!(used(&after, "shares"), used(&before, "shares") + 1);
    assert_eq!(used(&after, "gigabytes"), used(&before, "gigabytes") + 3);
    app.finish().await;
}

#[tokio::test]
async fn u298_plain_share_leaves_replica_usage_alone() {
    let app = app().await;
    let before = detail(&app, "2.53").await;
    let resp = create_share(&app, "alice", "default", 2).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;
    let after = detail(&app, "2.53").await;
    assert_eq!(after["share_replicas"], before["share_replicas"]);
    assert_eq!(after["replica_gigabytes"], before["replica_gigabytes"]);
    assert_eq!(after["shares"]["in_use"], 1);
    assert_eq!(after["gigabytes"]["in_use"], 2);
    app.finish().await;
}

#[tokio::test]
async fn u299_replica_keys_appear_at_2_53() {
    let app = app().await;
    let path = format!("/v2/quota-sets/{PROJECT_A}");
    let old = get(&app, "alice", "2.52", &path).await;
    assert_eq!(old.status, 200, "{}", old.text());
    let old = old.json()["quota_set"].clone();
    assert!(old.get("share_replicas").is_none());
    assert!(old.get("replica_gigabytes").is_none());
    let new = get(&app, "alice", "2.53", &path).await.json()["quota_set"].clone();
    assert_eq!(new["share_replicas"], 100);
    assert_eq!(new["replica_gigabytes"], 1000);
    assert_eq!(new["id"], PROJECT_A);
    app.finish().await;
}

#[tokio::test]
async fn u300_setting_replica_quotas_needs_2_53() {
    let app = app().await;
    let path = format!("/v2/quota-sets/{PROJECT_A}");
    let body = json!({"quota_set": {"share_replicas": 1}});
    put(&app, "admin", "2.52", &path, body.clone()).await.assert_fault(
        400,
        "badRequest",
        Some("'share_replicas' key is not supported by this microversion. Use 2.53 or greater microversion to be able to use 'share_replicas' quotas."),
    );
    let resp = put(&app, "admin", "2.53", &path, body).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let quota_set = resp.json()["quota_set"].clone();
    assert_eq!(quota_set["share_replicas"], 1);
    // Manila's update view has no `id`.
    assert!(quota_set.get("id").is_none());
    let shown = get(&app, "alice", "2.53", &path).await.json()["quota_set"].clone();
    assert_eq!(shown["share_replicas"], 1);
    app.finish().await;
}

#[tokio::test]
async fn u302_zero_replica_quota_refuses_replicated_share() {
    let app = app().await;
    let resp = put(
        &app,
        "admin",
        "2.53",
        &format!("/v2/quota-sets/{PROJECT_A}"),
        json!({"quota_set": {"share_replicas": 0}}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = create_share(&app, "alice", "readable", 1).await;
    resp.assert_fault(
        413,
        "overLimit",
        Some("ShareReplicasLimitExceeded: Failed while creating a share with replication support. Maximum number of allowed share-replicas is exceeded."),
    );
    // Shares without replication are not affected.
    let resp = create_share(&app, "alice", "default", 1).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;
    app.finish().await;
}

#[tokio::test]
async fn u303_limits_show_replica_keys_from_2_53() {
    let app = app().await;
    let resp = create_share(&app, "alice", "readable", 2).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;
    let new = get(&app, "alice", "2.53", "/v2/limits").await;
    assert_eq!(new.status, 200, "{}", new.text());
    let limits = new.json()["limits"].clone();
    assert_eq!(limits["rate"], json!([]));
    let absolute = &limits["absolute"];
    assert_eq!(absolute["maxTotalShareReplicas"], 100);
    assert_eq!(absolute["maxTotalReplicaGigabytes"], 1000);
    assert_eq!(absolute["totalShareReplicasUsed"], 1);
    assert_eq!(absolute["totalReplicaGigabytesUsed"], 2);
    assert_eq!(absolute["totalSharesUsed"], 1);
    assert_eq!(absolute["maxTotalShares"], 50);
    let old = get(&app, "alice", "2.52", "/v2/limits").await.json()["limits"]["absolute"].clone();
    assert_eq!(
        sorted_keys(&old),
        [
            "maxTotalShareGigabytes",
            "maxTotalShareNetworks",
            "maxTotalShareSnapshots",
            "maxTotalShares",
            "maxTotalSnapshotGigabytes",
            "totalShareGigabytesUsed",
            "totalShareNetworksUsed",
            "totalShareSnapshotsUsed",
            "totalSharesUsed",
            "totalSnapshotGigabytesUsed",
        ]
    );
    // Another project's limits are its own.
    let bob = get(&app, "bob", "2.53", "/v2/limits").await.json()["limits"]["absolute"].clone();
    assert_eq!(bob["totalShareReplicasUsed"], 0);
    app.finish().await;
}

// ---- show, defaults, detail by version ----

#[tokio::test]
async fn quota_set_keys_by_version() {
    let app = app().await;
    let path = format!("/v2/quota-sets/{PROJECT_A}");
    let at = |v: &'static str| get(&app, "alice", v, &path);
    let base = [
        "gigabytes",
        "id",
        "share_networks",
        "shares",
        "snapshot_gigabytes",
        "snapshots",
    ];
    assert_eq!(sorted_keys(&at("2.7").await.json()["quota_set"]), base);
    let v240 = sorted_keys(&at("2.40").await.json()["quota_set"]);
    assert!(v240.contains(&"share_groups".to_owned()));
    assert!(v240.contains(&"share_group_snapshots".to_owned()));
    let v290 = at("2.90").await.json()["quota_set"].clone();
    assert_eq!(v290["per_share_gigabytes"], -1);
    assert_eq!(v290["backups"], 10);
    assert_eq!(v290["backup_gigabytes"], 1000);
    assert_eq!(v290["encryption_keys"], 100);
    // `os-quota-sets` below 2.7, `quota-sets` from 2.7.
    let legacy = format!("/v2/os-quota-sets/{PROJECT_A}");
    assert_eq!(get(&app, "alice", "2.6", &legacy).await.status, 200);
    get(&app, "alice", "2.7", &legacy)
        .await
        .assert_fault(404, "itemNotFound", None);
    get(&app, "alice", "2.6", &path)
        .await
        .assert_fault(404, "itemNotFound", None);
    app.finish().await;
}

#[tokio::test]
async fn defaults_and_detail() {
    let app = app().await;
    let defaults = get(
        &app,
        "alice",
        V,
        &format!("/v2/quota-sets/{PROJECT_B}/defaults"),
    )
    .await;
    assert_eq!(defaults.status, 200, "{}", defaults.text());
    let defaults = defaults.json()["quota_set"].clone();
    assert_eq!(defaults["id"], PROJECT_B);
    assert_eq!(defaults["shares"], 50);
    assert_eq!(defaults["gigabytes"], 1000);
    assert_eq!(defaults["snapshots"], 50);
    assert_eq!(defaults["share_networks"], 10);
    assert_eq!(defaults["share_replicas"], 100);
    let path = format!("/v2/quota-sets/{PROJECT_A}/detail");
    get(&app, "alice", "2.24", &path)
        .await
        .assert_fault(404, "itemNotFound", None);
    let detail = get(&app, "alice", "2.25", &path).await;
    assert_eq!(detail.status, 200, "{}", detail.text());
    assert_eq!(
        detail.json()["quota_set"]["shares"],
        json!({"in_use": 0, "limit": 50, "reserved": 0})
    );
    let legacy = get(
        &app,
        "alice",
        "2.6",
        &format!("/v2/os-quota-sets/{PROJECT_A}/defaults"),
    )
    .await;
    assert_eq!(legacy.status, 200, "{}", legacy.text());
    app.finish().await;
}

// ---- update and delete ----

#[tokio::test]
async fn update_validation() {
    let app = app().await;
    let path = format!("/v2/quota-sets/{PROJECT_A}");
    let bad = |body: Value, message: &'static str| {
        let resp = put(&app, "admin", V, &path, body);
        async move { resp.await.assert_fault(400, "badRequest", Some(message)) }
    };
    bad(
        json!({"quota_set": {}}),
        "Must supply at least one quota field to update.",
    )
    .await;
    bad(
        json!({"quota_set": {"force": true}}),
        "Must supply at least one quota field to update.",
    )
    .await;
    bad(
        json!({"quota_set": {"shares": 5, "bogus": 1}}),
        "Bad key(s) bogus in quota_set.",
    )
    .await;
    bad(
        json!({"quota_set": {"shares": "five"}}),
        "Quota 'five' for shares should be integer.",
    )
    .await;
    bad(
        json!({"quota_set": {"shares": -2}}),
        "Quota limit must be -1 or greater.",
    )
    .await;
    let resp = put(&app, "admin", V, &path, json!({})).await;
    assert_eq!(resp.status, 400, "{}", resp.text());
    let resp = app
        .put(&path)
        .version(V)
        .body(None, Vec::new())
        .send()
        .await;
    assert_eq!(resp.status, 400, "{}", resp.text());

    // Below current usage needs force.
    let resp = create_share(&app, "alice", "default", 1).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;
    bad(
        json!({"quota_set": {"shares": 0}}),
        "Quota value 0 for shares is smaller than already used and reserved 1.",
    )
    .await;
    let forced = put(
        &app,
        "admin",
        V,
        &path,
        json!({"quota_set": {"shares": 0, "force": true}}),
    )
    .await;
    assert_eq!(forced.status, 200, "{}", forced.text());
    assert_eq!(forced.json()["quota_set"]["shares"], 0);
    let resp = put(
        &app,
        "admin",
        V,
        &path,
        json!({"quota_set": {"shares": "7", "gigabytes": -1}}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["quota_set"]["shares"], 7);
    assert_eq!(resp.json()["quota_set"]["gigabytes"], -1);
    app.finish().await;
}

#[tokio::test]
async fn delete_resets_to_defaults() {
    let app = app().await;
    let path = format!("/v2/quota-sets/{PROJECT_A}");
    let resp = put(
        &app,
        "admin",
        V,
        &path,
        json!({"quota_set": {"shares": 3, "share_replicas": 4}}),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let resp = app.delete(&path).version(V).send().await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let shown = get(&app, "alice", V, &path).await.json()["quota_set"].clone();
    assert_eq!(shown["shares"], 50);
    assert_eq!(shown["share_replicas"], 100);
    app.finish().await;
}

#[tokio::test]
async fn policies_and_scopes() {
    let app = app().await;
    let own = format!("/v2/quota-sets/{PROJECT_A}");
    let other = format!("/v2/quota-sets/{PROJECT_B}");
    assert_eq!(get(&app, "rita", V, &own).await.status, 200);
    get(&app, "alice", V, &other).await.assert_fault(
        403,
        "forbidden",
        Some("Access was denied to this resource."),
    );
    get(&app, "nobody", V, &other)
        .await
        .assert_fault(403, "forbidden", None);
    assert_eq!(get(&app, "admin", V, &other).await.status, 200);
    put(&app, "alice", V, &own, json!({"quota_set": {"shares": 1}}))
        .await
        .assert_fault(403, "forbidden", None);
    let resp = app
        .delete(&own)
        .version(V)
        .token(&app.token_for("alice"))
        .send()
        .await;
    resp.assert_fault(403, "forbidden", None);
    // Per-user and per-share-type scopes.
    get(&app, "alice", "2.38", &format!("{own}?share_type=default")).await.assert_fault(
        400,
        "badRequest",
        Some("'share_type' key is not supported by this microversion. Use 2.39 or greater microversion to be able to use 'share_type' quotas."),
    );
    get(
        &app,
        "alice",
        V,
        &format!("{own}?share_type=default&user_id=x"),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("'user_id' and 'share_type' values are mutually exclusive"),
    );
    get(&app, "alice", V, &format!("{own}?share_type=nope"))
        .await
        .assert_fault(
            404,
            "itemNotFound",
            Some("Share type with name or id 'nope' not found."),
        );
    let user = get(&app, "alice", V, &format!("{own}?user_id=alice")).await;
    assert_eq!(user.status, 200, "{}", user.text());
    let typed = get(&app, "alice", V, &format!("{own}?share_type=default")).await;
    assert_eq!(typed.status, 200, "{}", typed.text());
    assert!(typed.json()["quota_set"].get("share_networks").is_none());
    // An empty value counts as absent.
    assert_eq!(
        get(&app, "alice", V, &format!("{own}?user_id="))
            .await
            .status,
        200
    );
    app.finish().await;
}

/// `PUT` as admin and assert 200; returns the quota set.
async fn admin_put(app: &TestApp, version: &str, path: &str, body: Value) -> Value {
    let resp = put(app, "admin", version, path, body).await;
    assert_eq!(resp.status, 200, "{path}: {}", resp.text());
    resp.json()["quota_set"].clone()
}

#[tokio::test]
async fn user_quotas_are_bounded_by_the_project_and_enforced() {
    let app = app().await;
    let project = format!("/v2/quota-sets/{PROJECT_A}");
    let resp = create_share(&app, "alice", "default", 1).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    let share = resp.json()["share"]["id"].as_str().unwrap().to_owned();
    let user_id = resp.json()["share"]["user_id"].as_str().unwrap().to_owned();
    app.settle().await;
    let user = format!("{project}?user_id={user_id}");

    // A user's set defaults to the project's; its usage is the user's.
    let detail = get(
        &app,
        "admin",
        V,
        &format!("{project}/detail?user_id={user_id}"),
    )
    .await;
    assert_eq!(detail.status, 200, "{}", detail.text());
    let detail = detail.json()["quota_set"].clone();
    assert_eq!(detail["shares"]["in_use"], 1, "{detail}");
    assert_eq!(detail["gigabytes"]["in_use"], 1, "{detail}");
    let other_user = get(
        &app,
        "admin",
        V,
        &format!("{project}/detail?user_id=someone"),
    )
    .await;
    assert_eq!(other_user.json()["quota_set"]["shares"]["in_use"], 0);

    admin_put(&app, V, &project, json!({"quota_set": {"shares": 5}})).await;
    put(&app, "admin", V, &user, json!({"quota_set": {"shares": 6}}))
        .await
        .assert_fault(400, "badRequest", Some("Quota limit must be less than 5."));
    let set = admin_put(&app, V, &user, json!({"quota_set": {"shares": 4}})).await;
    assert_eq!(set["shares"], 4);
    assert_eq!(set.get("id"), None);
    // The project cannot go below what its users were given.
    put(
        &app,
        "admin",
        V,
        &project,
        json!({"quota_set": {"shares": 2}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Quota limit must be greater than 4."),
    );
    put(&app, "admin", V, &user, json!({"quota_set": {"shares": 0}}))
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("Quota value 0 for shares is smaller than already used and reserved 1."),
        );

    // Enforced on create: one share is the user's limit.
    admin_put(&app, V, &user, json!({"quota_set": {"shares": 1}})).await;
    let refused = create_share(&app, "alice", "default", 1).await;
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert!(
        refused.text().contains("ShareLimitExceeded"),
        "{}",
        refused.text()
    );
    // rita is another user of the project: only the project's limit applies to her.
    // (rita is a reader and cannot create; the project's own usage is unchanged.)
    let project_detail = get(&app, "admin", V, &format!("{project}/detail")).await;
    assert_eq!(project_detail.json()["quota_set"]["shares"]["in_use"], 1);

    // Delete: the user's limits follow the project's again.
    let resp = app
        .delete(&user)
        .version(V)
        .token(&app.token_for("admin"))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    let shown = get(&app, "admin", V, &user).await;
    assert_eq!(shown.json()["quota_set"]["shares"], 5);
    assert_eq!(create_share(&app, "alice", "default", 1).await.status, 200);
    app.settle().await;

    // Deleting a share gives the user's usage back.
    let resp = app
        .delete(&format!("/v2/shares/{share}"))
        .version(V)
        .token(&app.token_for("alice"))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    app.settle().await;
    let detail = get(
        &app,
        "admin",
        V,
        &format!("{project}/detail?user_id={user_id}"),
    )
    .await;
    assert_eq!(detail.json()["quota_set"]["shares"]["in_use"], 1);
    app.finish().await;
}

#[tokio::test]
async fn share_type_quotas_count_the_types_usage() {
    let app = app().await;
    let project = format!("/v2/quota-sets/{PROJECT_A}");
    let typed = format!("{project}?share_type=default");
    let resp = create_share(&app, "alice", "default", 1).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    app.settle().await;

    let detail = get(
        &app,
        "admin",
        "2.40",
        &format!("{project}/detail?share_type=default"),
    )
    .await;
    assert_eq!(detail.status, 200, "{}", detail.text());
    let detail = detail.json()["quota_set"].clone();
    assert_eq!(detail["gigabytes"]["in_use"], 1, "{detail}");
    assert!(detail.get("share_networks").is_none(), "{detail}");
    assert!(detail.get("share_groups").is_none(), "{detail}");
    let readable = get(
        &app,
        "admin",
        V,
        &format!("{project}/detail?share_type=readable"),
    )
    .await;
    assert_eq!(readable.json()["quota_set"]["gigabytes"]["in_use"], 0);

    put(&app, "admin", V, &typed, json!({"quota_set": {"share_networks": 1}}))
        .await
        .assert_fault(
            400,
            "badRequest",
            Some("'share_networks' quota cannot be set for share type. It can be set only for project or user."),
        );
    put(
        &app,
        "admin",
        "2.40",
        &typed,
        json!({"quota_set": {"share_groups": 1}}),
    )
    .await
    .assert_fault(
        400,
        "badRequest",
        Some("Share type quotas cannot constrain share groups and share group snapshots."),
    );
    put(
        &app,
        "admin",
        "2.38",
        &typed,
        json!({"quota_set": {"gigabytes": 1}}),
    )
    .await
    .assert_fault(400, "badRequest", None);
    put(
        &app,
        "admin",
        V,
        &format!("{project}?share_type=nope"),
        json!({"quota_set": {"gigabytes": 1}}),
    )
    .await
    .assert_fault(
        404,
        "itemNotFound",
        Some("Share type with name or id 'nope' not found."),
    );
    let set = admin_put(&app, V, &typed, json!({"quota_set": {"gigabytes": 1}})).await;
    assert_eq!(set["gigabytes"], 1);
    assert!(set.get("share_networks").is_none());

    // The type is full; another type is not.
    let refused = create_share(&app, "alice", "default", 1).await;
    assert_eq!(refused.status, 413, "{}", refused.text());
    assert!(
        refused.text().contains("ShareSizeExceedsAvailableQuota"),
        "{}",
        refused.text()
    );
    assert_eq!(create_share(&app, "alice", "readable", 1).await.status, 200);
    // The project's own limit is untouched.
    let shown = get(&app, "admin", V, &project).await;
    assert_ne!(shown.json()["quota_set"]["gigabytes"], 1);

    let resp = app
        .delete(&typed)
        .version(V)
        .token(&app.token_for("admin"))
        .send()
        .await;
    assert_eq!(resp.status, 202, "{}", resp.text());
    assert_eq!(create_share(&app, "alice", "default", 1).await.status, 200);
    app.settle().await;
    app.finish().await;
}
