//! Manila's versions documents (`manila/api/versions.py`): `GET /` is public and answers 300
//! with the single `v2.0` entry; `GET /v2/` is authenticated and versioned; `GET /v2`
//! redirects to `/v2/`.

use axum::Json;
use axum::extract::Request;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};
use shoal_types::ApiVersion;

use crate::context::RequestContext;

/// The base URL the client used, from the `Host` header.
pub fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("localhost");
    format!("http://{host}")
}

/// The versions body.
pub fn versions_document(base: &str) -> Value {
    json!({"versions": [{
        "id": "v2.0",
        "status": "CURRENT",
        "version": ApiVersion::MAX.to_string(),
        "min_version": ApiVersion::MIN.to_string(),
        "updated": "2015-08-27T11:33:21Z",
        "links": [
            {"rel": "describedby", "type": "text/html", "href": "http://docs.openstack.org/"},
            {"rel": "self", "href": format!("{base}/v2/")}
        ],
        "media-types": [{"base": "application/json", "type": "application/vnd.openstack.share+json;version=1"}]
    }]})
}

/// `GET /` — 300 Multiple Choices, no auth, no version headers.
pub async fn root(request: Request) -> Response {
    (
        StatusCode::MULTIPLE_CHOICES,
        Json(versions_document(&base_url(request.headers()))),
    )
        .into_response()
}

/// `GET /v2` — redirect to the canonical `/v2/`.
pub async fn redirect_v2() -> Response {
    let mut response = Redirect::to("/v2/").into_response();
    *response.status_mut() = StatusCode::FOUND;
    response
}

/// `GET /v2/` — the same document for an authenticated client.
pub async fn v2_root(_ctx: RequestContext, headers: HeaderMap) -> Response {
    (StatusCode::OK, Json(versions_document(&base_url(&headers)))).into_response()
}
