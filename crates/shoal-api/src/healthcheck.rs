//! `GET /healthcheck` and `HEAD /healthcheck`, as Manila serves them through oslo.middleware's
//! healthcheck app (`[app:healthcheck]` in Manila's `api-paste.ini`): a probe for load
//! balancers, outside authentication, microversion negotiation and the fault envelope.
//!
//! Nothing is stored; every answer is derived on the spot from two checks:
//! * `database`: the store answers `ping()` within [`DATABASE_PING_TIMEOUT`] (a hung
//!   database is a 503, not a hung probe);
//! * `shutdown`: the node has not begun shutting down ([`crate::ApiState::shutdown`]).
//!
//! All pass: 200 `text/plain` `OK`. One fails: 503 with the failing reasons, one a line.
//! `HEAD` gets no body, and 204 rather than 200 when healthy (as oslo answers it). Like oslo's `detailed` mode, but only for a
//! caller with a valid admin token (the `context_is_admin` policy, any auth strategy) who
//! prefers `application/json`, the answer is JSON naming each check, whether it passed,
//! its reason and the cause of a failure, plus the node's host name and roles. Everybody
//! else, including a caller with no token or a bad one, gets the plain form: the probe
//! never answers 401.

use std::fmt::Display;
use std::future::Future;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use crate::ApiState;
use crate::auth;
use crate::context;

/// Where the probe is served (oslo's default `path`).
pub const PATH: &str = "/healthcheck";

/// How long the database may take to answer the probe's ping before the node is reported
/// unhealthy.
pub const DATABASE_PING_TIMEOUT: Duration = Duration::from_secs(2);

/// Content type of the plain form, as webob sends oslo's text responses.
const TEXT_PLAIN: &str = "text/plain; charset=UTF-8";

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckResult {
    /// Which check (`database`, `shutdown`).
    pub name: &'static str,
    /// Whether it passed.
    pub passed: bool,
    /// `OK`, or the short reason the plain form shows.
    pub reason: String,
    /// The cause of a failure (admins only: a database error may name internals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<String>,
}

impl CheckResult {
    fn passed(name: &'static str) -> Self {
        Self {
            name,
            passed: true,
            reason: "OK".to_owned(),
            details: None,
        }
    }

    fn failed(name: &'static str, reason: &str, details: Option<String>) -> Self {
        Self {
            name,
            passed: false,
            reason: reason.to_owned(),
            details,
        }
    }
}

/// The `database` check over any ping, bounded by `timeout`.
async fn check_database<F, E>(ping: F, timeout: Duration) -> CheckResult
where
    F: Future<Output = Result<(), E>>,
    E: Display,
{
    let details = match tokio::time::timeout(timeout, ping).await {
        Ok(Ok(())) => return CheckResult::passed("database"),
        Ok(Err(err)) => err.to_string(),
        Err(_) => format!("no answer within {timeout:?}"),
    };
    tracing::warn!(error = %details, "healthcheck: database unreachable: {details}");
    CheckResult::failed("database", "database unreachable", Some(details))
}

/// Runs every check, in a fixed order.
async fn run_checks(state: &ApiState) -> Vec<CheckResult> {
    let database = check_database(state.core.store.ping(), DATABASE_PING_TIMEOUT).await;
    let shutdown = if state.shutdown.is_cancelled() {
        CheckResult::failed("shutdown", "shutting down", None)
    } else {
        CheckResult::passed("shutdown")
    };
    vec![database, shutdown]
}

/// The q-value `accept` gives `offer` (`type/subtype`): that of the most specific matching
/// media range, 0 when none matches.
fn quality(accept: &str, offer: &str) -> f32 {
    let offer_type = offer.split('/').next().unwrap_or(offer);
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let specificity = match media.split_once('/') {
            Some(("*", "*")) => 0,
            Some((t, "*")) if t == offer_type => 1,
            _ if media == offer => 2,
            _ => continue,
        };
        let q = parts
            .find_map(|p| p.trim().strip_prefix("q="))
            .and_then(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

/// Whether the caller prefers JSON over the plain (and HTML) forms; ties go to text/plain,
/// as oslo's offer order does.
fn prefers_json(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let json = quality(accept, "application/json");
    json > 0.0 && json > quality(accept, "text/plain") && json > quality(accept, "text/html")
}

/// Whether the request carries a valid token of an admin. Any failure (no token, a bad
/// one, identity unavailable) only means "not an admin": the probe stays anonymous.
pub(crate) async fn caller_is_admin(state: &ApiState, headers: &HeaderMap) -> bool {
    let Some(token) = auth::request_token(headers) else {
        return false;
    };
    match auth::identify(&state.auth, token).await {
        Ok(identity) => context::credentials(&state.policy, &identity).is_admin,
        Err(_) => false,
    }
}

/// `GET /healthcheck`, and `HEAD` (axum drops the body).
pub async fn healthcheck(
    State(state): State<ApiState>,
    method: Method,
    headers: HeaderMap,
) -> Response {
    let checks = run_checks(&state).await;
    let healthy = checks.iter().all(|c| c.passed);
    // oslo answers a healthy HEAD with 204 (`HEAD_HEALTHY_TO_STATUS_CODES`).
    let status = match (healthy, method == Method::HEAD) {
        (true, false) => StatusCode::OK,
        (true, true) => StatusCode::NO_CONTENT,
        (false, _) => StatusCode::SERVICE_UNAVAILABLE,
    };
    // The token is only looked at when details are asked for, so polling stays cheap.
    if method != Method::HEAD && prefers_json(&headers) && caller_is_admin(&state, &headers).await {
        let config = &state.core.config;
        let body = json!({
            "detailed": true,
            "healthy": healthy,
            "hostname": config.host,
            "roles": config.roles,
            "checks": checks,
        });
        return (status, Json(body)).into_response();
    }
    let body = if healthy {
        "OK".to_owned()
    } else {
        let failing: Vec<&str> = checks
            .iter()
            .filter(|c| !c.passed)
            .map(|c| c.reason.as_str())
            .collect();
        failing.join("\n")
    };
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static(TEXT_PLAIN))],
        body,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hung_database_fails_the_check_after_the_timeout() {
        let hung = std::future::pending::<Result<(), String>>();
        let result = check_database(hung, Duration::from_millis(20)).await;
        assert!(!result.passed);
        assert_eq!(result.reason, "database unreachable");
        assert_eq!(result.details.as_deref(), Some("no answer within 20ms"));
    }

    #[tokio::test]
    async fn a_failed_ping_fails_the_check_with_its_cause() {
        let down = async { Err::<(), _>("pool closed") };
        let result = check_database(down, Duration::from_secs(1)).await;
        assert!(!result.passed);
        assert_eq!(result.details.as_deref(), Some("pool closed"));
        let up = async { Ok::<(), String>(()) };
        assert_eq!(
            check_database(up, Duration::from_secs(1)).await,
            CheckResult::passed("database")
        );
    }

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn json_is_chosen_only_when_preferred() {
        assert!(prefers_json(&accept("application/json")));
        assert!(prefers_json(&accept("text/plain;q=0.5, application/json")));
        assert!(prefers_json(&accept("application/*")));
        assert!(!prefers_json(&HeaderMap::new()));
        assert!(!prefers_json(&accept("*/*")));
        assert!(!prefers_json(&accept("text/plain, application/json")));
        assert!(!prefers_json(&accept("application/json;q=0")));
        assert!(!prefers_json(&accept("text/html")));
        assert!(!prefers_json(&accept("application/json;q=0.5, */*")));
    }
}
