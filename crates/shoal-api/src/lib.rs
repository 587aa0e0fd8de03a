//! The Manila v2 HTTP edge of shoal. It owns authentication, microversion negotiation,
//! policy enforcement, request bodies, Manila's fault envelope and the JSON views; all
//! behaviour lives in `shoal-core`, and no SQL is written here.
//!
//! Layering of a `/v2` request, outermost first: request id and project-segment rewrite
//! ([`routing`]), tracing, panic catcher, authentication ([`auth`]), microversion
//! ([`microversion`]), then the resource handlers in [`v2`]. With the built-in identity,
//! `/identity` ([`identity`]) sits beside `/v2`, outside authentication, and so does
//! `/healthcheck` ([`healthcheck`]), which load balancers poll without a token.

pub mod auth;
pub mod body;
pub mod context;
pub mod error;
pub mod healthcheck;
pub mod identity;
pub mod microversion;
pub mod pagination;
pub mod routes;
pub mod routing;
pub mod v2;
pub mod versions;

use std::sync::Arc;

use axum::Router;
use axum::extract::FromRef;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use shoal_core::Core;
use shoal_core::config::ApiConfig;
use shoal_policy::Enforcer;
use tokio_util::sync::CancellationToken;
use tower::Layer;

pub use auth::Authenticator;
pub use error::{ApiError, ApiResult};
pub use routes::{Route, Routes};

/// Shared state of every handler.
#[derive(Clone)]
pub struct ApiState {
    /// The service layer.
    pub core: Arc<Core>,
    /// Policy engine with Manila's defaults and the operator's overrides.
    pub policy: Arc<Enforcer>,
    /// Authentication strategy.
    pub auth: Authenticator,
    /// API settings.
    pub config: Arc<ApiConfig>,
    /// The node's shutdown signal (the server's `CancellationToken`): once it fires,
    /// `/healthcheck` answers 503 so load balancers stop sending requests here.
    pub shutdown: CancellationToken,
}

impl FromRef<ApiState> for Authenticator {
    fn from_ref(state: &ApiState) -> Self {
        state.auth.clone()
    }
}

/// Manila's route-miss answer: webob's plain 404, outside the fault envelope and without
/// version headers.
pub async fn route_not_found() -> Response {
    let body = serde_json::json!({
        "message": "The resource could not be found.<br /><br />\n\n\n",
        "code": "404 Not Found",
        "title": "Not Found"
    });
    let mut response = (StatusCode::NOT_FOUND, axum::Json(body)).into_response();
    response.extensions_mut().insert(microversion::RawResponse);
    response
}

/// A routed path called with a method it lacks: Manila answers itemNotFound.
async fn method_not_found() -> ApiError {
    ApiError::generic_not_found()
}

/// A panic in a handler becomes Manila's generic 500, never a dropped connection.
fn panic_to_fault(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("handler panicked");
    ApiError::internal().into_response()
}

/// The routes outside authentication: `/` (public versions), `/v2` (redirect) and
/// `/healthcheck`.
fn public_routes() -> Routes<ApiState> {
    Routes::new()
        .get("/", versions::root)
        .get("/v2", versions::redirect_v2)
        .get(healthcheck::PATH, healthcheck::healthcheck)
}

/// Every route [`service`] can serve, recorded by the same code that builds it: the public
/// routes, the `/v2` API and the built-in identity's `/identity` routes (mounted only when
/// `auth_strategy = "builtin"`). Paths use axum's syntax (`/v2/shares/{id}`).
pub fn route_table() -> Vec<Route> {
    let mut table = public_routes().table().to_vec();
    table.extend_from_slice(v2::router().table());
    table.extend_from_slice(identity::routes().table());
    table
}

/// Builds the complete HTTP service: `/` (public versions), `/healthcheck` (public, with
/// details for admins), `/v2` (authenticated API).
pub fn service(state: ApiState) -> routing::Plumbing<Router> {
    // Everything but the public routes goes through authentication first, as in
    // Manila's paste pipeline; a route miss under it is webob's raw 404.
    let v2 = v2::router()
        .into_router()
        .method_not_allowed_fallback(method_not_found)
        .fallback(route_not_found)
        .layer(axum::middleware::from_fn(microversion::negotiate))
        .layer(axum::middleware::from_fn_with_state(
            state.auth.clone(),
            auth::authenticate,
        ))
        .with_state(state.clone());
    let mut router = public_routes().into_router();
    if let Authenticator::Builtin(service) = &state.auth {
        router = router.merge(identity::router(identity::IdentityApi {
            service: service.clone(),
            max_body: state.config.max_request_body_size,
        }));
    }
    let router = router
        .fallback_service(v2)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(panic_to_fault))
        .layer(
            tower_http::trace::TraceLayer::new_for_http().make_span_with(|request: &axum::extract::Request| {
                let request_id = request
                    .extensions()
                    .get::<routing::RequestId>()
                    .map(|r| r.0.clone())
                    .unwrap_or_default();
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id)
            }),
        )
        .with_state(state);
    routing::PlumbingLayer.layer(router)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn route_table_lists_each_route_once() {
        let table = route_table();
        let unique: HashSet<&Route> = table.iter().collect();
        assert_eq!(unique.len(), table.len(), "a route is recorded twice");
        for expected in [
            "GET /",
            "GET /healthcheck",
            "GET /v2/shares/{id}",
            "POST /v2/shares/{id}/action",
        ] {
            assert!(
                table.iter().any(|r| r.to_string() == expected),
                "{expected} missing from the route table"
            );
        }
    }
}
