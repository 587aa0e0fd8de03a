//! Availability zones, services and pools: what the share and scheduler roles report
//! (checklist S.284–285 and issue 2 §7).

use serde_json::Value;
use shoal_testkit::{TEST_HOST, TestApp};

#[tokio::test]
async fn s284_availability_zones_list_az1_and_az2() {
    let app = TestApp::noauth().await;
    let resp = app
        .get("/v2/availability-zones")
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 200);
    let body = resp.json();
    let zones = body["availability_zones"].as_array().unwrap();
    let names: Vec<&str> = zones.iter().map(|z| z["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["az1", "az2"]);
    for zone in zones {
        let keys: Vec<&String> = zone.as_object().unwrap().keys().collect();
        assert_eq!(keys.len(), 4, "{zone}");
        assert!(zone["id"].as_str().unwrap().len() == 36);
        assert!(zone["created_at"].as_str().unwrap().contains('.'));
        assert!(zone.get("updated_at").is_some());
    }
    app.finish().await;
}

#[tokio::test]
async fn s285_legacy_zone_path_until_2_6() {
    let app = TestApp::noauth().await;
    let resp = app
        .get("/v2/os-availability-zone")
        .version("2.6")
        .send()
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        resp.json()["availability_zones"].as_array().unwrap().len(),
        2
    );
    assert_eq!(
        app.get("/v2/os-availability-zone")
            .version("2.7")
            .send()
            .await
            .status,
        404
    );
    app.finish().await;
}

#[tokio::test]
async fn disabled_services_hide_their_zone() {
    let app = TestApp::noauth().await;
    let resp = app
        .put("/v2/services/disable")
        .version("2.83")
        .json(
            &serde_json::json!({"host": format!("{TEST_HOST}@local2"), "binary": "manila-share",
            "disabled_reason": "maintenance"}),
        )
        .send()
        .await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.json()["status"], "disabled");
    assert_eq!(resp.json()["disabled_reason"], "maintenance");
    let zones = app
        .get("/v2/availability-zones")
        .version("2.56")
        .send()
        .await
        .json();
    let names: Vec<&str> = zones["availability_zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| z["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["az1"]);
    let resp = app
        .put("/v2/services/enable")
        .version("2.83")
        .json(&serde_json::json!({"host": format!("{TEST_HOST}@local2"), "binary": "manila-share"}))
        .send()
        .await;
    assert_eq!(resp.json()["status"], "enabled");
    assert_eq!(
        app.get("/v2/availability-zones")
            .version("2.56")
            .send()
            .await
            .json()["availability_zones"]
            .as_array()
            .unwrap()
            .len(),
        2
    );
    app.finish().await;
}

#[tokio::test]
async fn services_report_heartbeats_and_state() {
    let app = TestApp::noauth().await;
    let resp = app.get("/v2/services").version("2.56").send().await;
    assert_eq!(resp.status, 200);
    let body = resp.json();
    let services = body["services"].as_array().unwrap();
    let find = |host: &str, binary: &str| -> Value {
        services
            .iter()
            .find(|s| s["host"] == host && s["binary"] == binary)
            .cloned()
            .unwrap_or_else(|| panic!("{host} {binary} in {body}"))
    };
    let scheduler = find(TEST_HOST, "manila-scheduler");
    assert_eq!(scheduler["zone"], "az1");
    let share1 = find(&format!("{TEST_HOST}@local1"), "manila-share");
    let share2 = find(&format!("{TEST_HOST}@local2"), "manila-share");
    assert_eq!(share1["zone"], "az1");
    assert_eq!(share2["zone"], "az2");
    for s in [&scheduler, &share1, &share2] {
        assert_eq!(s["status"], "enabled");
        assert_eq!(s["state"], "up");
        assert!(
            s.get("disabled_reason").is_none(),
            "2.56 has no disabled_reason"
        );
    }
    // Filters.
    let only_share = app
        .get("/v2/services?binary=manila-share")
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(only_share["services"].as_array().unwrap().len(), 2);
    let by_zone = app
        .get("/v2/services?zone=az2")
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(by_zone["services"].as_array().unwrap().len(), 1);
    let bogus_status = app
        .get("/v2/services?status=bogus")
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(bogus_status["services"].as_array().unwrap().len(), 0);
    // 2.83 adds disabled_reason, 2.86 ensuring.
    let v = app.get("/v2/services").version("2.86").send().await.json();
    assert!(v["services"][0].get("disabled_reason").is_some());
    assert_eq!(v["services"][0]["ensuring"], false);
    app.finish().await;
}

#[tokio::test]
async fn stale_heartbeat_shows_service_down() {
    let app = TestApp::builder()
        .configure(|c| c.periodic.service_down_time = std::time::Duration::ZERO)
        .build()
        .await;
    let body = app.get("/v2/services").version("2.56").send().await.json();
    assert!(
        body["services"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["state"] == "down"),
        "{body}"
    );
    app.finish().await;
}

#[tokio::test]
async fn pools_show_real_local_capacity_and_replication_capabilities() {
    let app = TestApp::noauth().await;
    let resp = app
        .get("/v2/scheduler-stats/pools")
        .version("2.56")
        .send()
        .await;
    assert_eq!(resp.status, 200);
    let summary = resp.json();
    let names: Vec<&str> = summary["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            format!("{TEST_HOST}@local1#pool1"),
            format!("{TEST_HOST}@local2#pool1")
        ]
    );
    assert!(summary["pools"][0].get("capabilities").is_none());
    assert_eq!(
        summary["pools"][0]["host"], TEST_HOST,
        "the host alone, as Manila"
    );
    assert_eq!(summary["pools"][0]["backend"], "local1");
    assert_eq!(summary["pools"][0]["pool"], "pool1");

    let detail = app
        .get("/v2/scheduler-stats/pools/detail")
        .version("2.56")
        .send()
        .await
        .json();
    let pools = detail["pools"].as_array().unwrap();
    for (pool, az) in pools.iter().zip(["az1", "az2"]) {
        let caps = &pool["capabilities"];
        assert!(caps["total_capacity_gb"].as_f64().unwrap() > 0.0, "{caps}");
        assert!(
            caps["free_capacity_gb"].as_f64().unwrap()
                <= caps["total_capacity_gb"].as_f64().unwrap()
        );
        assert_eq!(caps["replication_type"], "readable");
        assert_eq!(caps["replication_domain"], "shoal");
        assert_eq!(caps["availability_zone"], az);
        assert_eq!(caps["driver_handles_share_servers"], false);
        assert!(caps["timestamp"].is_string());
    }
    // Filters: anchored regexes, and share types matched against capabilities.
    let filtered = app
        .get("/v2/scheduler-stats/pools?backend=local2")
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(filtered["pools"].as_array().unwrap().len(), 1);
    let bad = app
        .get("/v2/scheduler-stats/pools?pool=(")
        .version("2.56")
        .send()
        .await;
    bad.assert_fault(400, "badRequest", None);
    let unknown_type = app
        .get("/v2/scheduler-stats/pools?share_type=nope")
        .version("2.56")
        .send()
        .await;
    unknown_type.assert_fault(400, "badRequest", Some("Share type nope not found."));
    app.finish().await;
}

#[tokio::test]
async fn pools_follow_share_type_extra_specs() {
    let app = TestApp::noauth().await;
    for (name, rt) in [("readable-type", "readable"), ("dr-type", "dr")] {
        let body = serde_json::json!({"share_type": {"name": name,
            "extra_specs": {"driver_handles_share_servers": false, "replication_type": rt}}});
        assert_eq!(
            app.post("/v2/types")
                .version("2.56")
                .json(&body)
                .send()
                .await
                .status,
            200
        );
    }
    let readable = app
        .get("/v2/scheduler-stats/pools?share_type=readable-type")
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(readable["pools"].as_array().unwrap().len(), 2);
    let dr = app
        .get("/v2/scheduler-stats/pools?share_type=dr-type")
        .version("2.56")
        .send()
        .await
        .json();
    assert_eq!(dr["pools"].as_array().unwrap().len(), 0);
    app.finish().await;
}

#[tokio::test]
async fn vanished_pool_directory_drops_out_of_the_pool_list() {
    let app = TestApp::noauth().await;
    let dir = app.core().config.data_dir.join("pools/local2");
    std::fs::remove_dir_all(&dir).unwrap();
    app.report_once().await;
    let body = app
        .get("/v2/scheduler-stats/pools")
        .version("2.56")
        .send()
        .await
        .json();
    let names: Vec<&str> = body["pools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, [format!("{TEST_HOST}@local1#pool1")]);
    app.finish().await;
}

#[tokio::test]
async fn dummy_backends_report_configured_capacity() {
    let app = TestApp::builder()
        .with_dummy_backend("dummy1", "az1", Some("writable"))
        .with_dummy_backend("dummy2", "az2", Some("writable"))
        .build()
        .await;
    let body = app
        .get("/v2/scheduler-stats/pools/detail")
        .version("2.56")
        .send()
        .await
        .json();
    let pools = body["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 2);
    assert_eq!(pools[0]["capabilities"]["total_capacity_gb"], 1000.0);
    assert_eq!(pools[0]["capabilities"]["replication_type"], "writable");
    app.finish().await;
}

#[tokio::test]
async fn members_cannot_see_services_or_pools() {
    let app = TestApp::keystone().await;
    let alice = app.token_for("alice");
    for path in [
        "/v2/services",
        "/v2/scheduler-stats/pools",
        "/v2/scheduler-stats/pools/detail",
    ] {
        let resp = app.get(path).token(&alice).version("2.56").send().await;
        resp.assert_fault(403, "forbidden", None);
    }
    let zones = app
        .get("/v2/availability-zones")
        .token(&alice)
        .version("2.56")
        .send()
        .await;
    assert_eq!(zones.status, 200);
    app.finish().await;
}

#[tokio::test]
async fn pool_filters_are_regexes_matched_at_the_start() {
    let app = TestApp::noauth().await;
    let names = |query: &'static str, version: &'static str| {
        let app = &app;
        async move {
            let resp = app
                .get(&format!("/v2/scheduler-stats/pools?{query}"))
                .version(version)
                .send()
                .await;
            assert_eq!(resp.status, 200, "{query}: {}", resp.text());
            resp.json()["pools"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    p["pool"].as_str().unwrap().to_owned() + "/" + p["backend"].as_str().unwrap()
                })
                .collect::<Vec<_>>()
        }
    };
    let both = ["pool1/local1", "pool1/local2"];
    assert_eq!(names("backend=local", "2.56").await, both);
    assert_eq!(names("backend=local[2-9]", "2.56").await, ["pool1/local2"]);
    assert_eq!(names("backend=ocal", "2.56").await, Vec::<String>::new());
    assert_eq!(names("pool=po.l1%24", "2.56").await, both);
    assert_eq!(names("host=.%2A", "2.56").await, both);
    assert_eq!(names("host=local1", "2.56").await, Vec::<String>::new());
    assert_eq!(
        names("name=.%2A%40local1%23", "2.56").await,
        ["pool1/local1"]
    );
    // A key that names no pool field matches nothing (Manila's `_passes_filters`), and
    // before 2.23 `share_type` is such a key.
    assert_eq!(names("flavor=x", "2.56").await, Vec::<String>::new());
    assert_eq!(names("share_type=nope", "2.22").await, Vec::<String>::new());
    app.finish().await;
}
