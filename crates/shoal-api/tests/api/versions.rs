//! Checklist group A: versions documents and microversion headers (api-basics §2–3).

use shoal_testkit::TestApp;

#[tokio::test]
async fn a01_a02_root_lists_only_v2() {
    let app = TestApp::noauth().await;
    let resp = app.get("/").anonymous().send().await;
    assert_eq!(resp.status, 300);
    let body = resp.json();
    let versions = body["versions"].as_array().unwrap();
    assert_eq!(versions.len(), 1);
    let v = &versions[0];
    assert_eq!(v["id"], "v2.0");
    assert_eq!(v["status"], "CURRENT");
    assert_eq!(v["version"], "2.99");
    assert_eq!(v["min_version"], "2.0");
    let links = v["links"].as_array().unwrap();
    let self_link = links.iter().find(|l| l["rel"] == "self").unwrap();
    assert!(
        self_link["href"].as_str().unwrap().ends_with("/v2/"),
        "{self_link}"
    );
    assert_eq!(
        v["media-types"][0]["type"],
        "application/vnd.openstack.share+json;version=1"
    );
    assert!(
        resp.header("x-openstack-request-id")
            .unwrap()
            .starts_with("req-")
    );
    app.finish().await;
}

#[tokio::test]
async fn a03_root_ignores_version_header() {
    let app = TestApp::noauth().await;
    let resp = app.get("/").anonymous().version("2.5").send().await;
    assert_eq!(resp.status, 300);
    assert!(resp.header("x-openstack-manila-api-version").is_none());
    // Even a malformed version is ignored on the public root.
    let resp = app.get("/").anonymous().version("latest").send().await;
    assert_eq!(resp.status, 300);
    app.finish().await;
}

#[tokio::test]
async fn a04_v2_root_defaults_to_2_0() {
    let app = TestApp::noauth().await;
    let resp = app.get("/v2/").send().await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("x-openstack-manila-api-version"), Some("2.0"));
    assert_eq!(resp.json()["versions"][0]["id"], "v2.0");
    let redirect = app.get("/v2").send().await;
    assert_eq!(redirect.status, 302);
    assert_eq!(redirect.header("location"), Some("/v2/"));
    app.finish().await;
}

#[tokio::test]
async fn a05_version_and_vary_are_echoed() {
    let app = TestApp::noauth().await;
    for path in ["/v2/availability-zones", "/v2/types", "/v2/"] {
        let resp = app.get(path).version("2.56").send().await;
        assert_eq!(resp.status, 200, "{path}");
        assert_eq!(resp.header("x-openstack-manila-api-version"), Some("2.56"));
        assert_eq!(resp.header("vary"), Some("X-OpenStack-Manila-API-Version"));
        assert!(resp.header("x-openstack-manila-api-experimental").is_none());
    }
    app.finish().await;
}

#[tokio::test]
async fn a06_a07_malformed_versions_are_400() {
    let app = TestApp::noauth().await;
    let resp = app
        .get("/v2/availability-zones")
        .version("latest")
        .send()
        .await;
    resp.assert_fault(
        400,
        "badRequest",
        Some(
            "API Version String latest is of invalid format. Must be of format MajorNum.MinorNum.",
        ),
    );
    for bad in ["2.05", "2", "v2.1", "2.", ""] {
        let resp = app.get("/v2/availability-zones").version(bad).send().await;
        resp.assert_fault(400, "badRequest", None);
    }
    app.finish().await;
}

#[tokio::test]
async fn a08_a09_a10_out_of_range_versions_are_406() {
    let app = TestApp::noauth().await;
    let resp = app
        .get("/v2/availability-zones")
        .version("2.100")
        .send()
        .await;
    resp.assert_fault(
        406,
        "computeFault",
        Some("Version 2.100 is not supported by the API. Minimum is 2.0 and maximum is 2.99."),
    );
    assert_eq!(resp.header("x-openstack-manila-api-version"), Some("2.100"));
    assert_eq!(resp.header("vary"), Some("X-OpenStack-Manila-API-Version"));
    for bad in ["1.0", "3.0", "1.99"] {
        let resp = app.get("/v2/availability-zones").version(bad).send().await;
        resp.assert_fault(406, "computeFault", None);
        assert_eq!(resp.header("x-openstack-manila-api-version"), Some(bad));
    }
    app.finish().await;
}

#[tokio::test]
async fn a_method_outside_its_version_range_is_item_not_found_with_headers() {
    let app = TestApp::noauth().await;
    // availability-zones exists from 2.7; the legacy name only until 2.6 (checklist S.285).
    let resp = app
        .get("/v2/availability-zones")
        .version("2.6")
        .send()
        .await;
    resp.assert_fault(
        404,
        "itemNotFound",
        Some("The resource could not be found."),
    );
    assert_eq!(resp.header("x-openstack-manila-api-version"), Some("2.6"));
    assert_eq!(
        app.get("/v2/os-availability-zone")
            .version("2.6")
            .send()
            .await
            .status,
        200
    );
    let resp = app
        .get("/v2/os-availability-zone")
        .version("2.7")
        .send()
        .await;
    resp.assert_fault(404, "itemNotFound", None);
    app.finish().await;
}

#[tokio::test]
async fn a_experimental_flag_is_echoed_only_when_true() {
    let app = TestApp::noauth().await;
    for (value, echoed) in [
        ("true", true),
        ("yes", true),
        ("1", true),
        ("false", false),
        ("nope", false),
    ] {
        let resp = app
            .get("/v2/availability-zones")
            .version("2.56")
            .experimental(value)
            .send()
            .await;
        assert_eq!(resp.status, 200);
        assert_eq!(
            resp.header("x-openstack-manila-api-experimental").is_some(),
            echoed,
            "{value}"
        );
        if echoed {
            assert_eq!(
                resp.header("x-openstack-manila-api-experimental"),
                Some("True")
            );
        }
    }
    // Faults carry it too.
    let resp = app
        .get("/v2/types/nope")
        .version("2.56")
        .experimental("true")
        .send()
        .await;
    assert_eq!(resp.status, 404);
    assert_eq!(
        resp.header("x-openstack-manila-api-experimental"),
        Some("True")
    );
    app.finish().await;
}
