//! `ApiError`: the only place where a failure becomes an HTTP status and a Manila fault
//! body `{"<faultName>": {"code": N, "message": "..."}}` (`manila/api/openstack/wsgi.py::Fault`).
//! Version headers are added by the microversion middleware, not here.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use shoal_core::{CoreError, ErrorKind};

/// Manila's text for a 500; the real cause is logged, never shown.
pub const GENERIC_500: &str =
    "The server has either erred or is incapable of performing the requested operation.";
/// Manila's text for a routed-but-unavailable resource or a failed lookup.
pub const GENERIC_404: &str = "The resource could not be found.";
/// Text of a policy denial.
pub const POLICY_DENIED: &str = "Access was denied to this resource.";
/// webob's generic 400 text, used when a handler is called without a usable body.
pub const GENERIC_400: &str = "The server could not comply with the request since it is either malformed or otherwise incorrect.";

/// An error answer in Manila's fault envelope.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Client-visible message.
    pub message: String,
}

impl ApiError {
    /// Any status with a message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }
    /// 400 badRequest.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
    /// 403 forbidden.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, message)
    }
    /// 403 with the policy text.
    pub fn policy_denied() -> Self {
        Self::forbidden(POLICY_DENIED)
    }
    /// 404 itemNotFound.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, message)
    }
    /// 404 with Manila's generic text (route exists but not at this version, etc.).
    pub fn generic_not_found() -> Self {
        Self::not_found(GENERIC_404)
    }
    /// 409 conflictingRequest.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, message)
    }
    /// 422 computeFault (Manila's answer to some malformed create bodies).
    pub fn unprocessable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNPROCESSABLE_ENTITY, message)
    }
    /// 500 computeFault with the generic text.
    pub fn internal() -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, GENERIC_500)
    }
    /// 503 serviceUnavailable.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, message)
    }
}

/// Manila's fault name for a status (`wsgi.py::Fault._fault_names`); any other status is
/// a `computeFault`.
pub fn fault_name(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "badRequest",
        401 => "unauthorized",
        403 => "forbidden",
        404 => "itemNotFound",
        405 => "badMethod",
        409 => "conflictingRequest",
        413 => "overLimit",
        415 => "badMediaType",
        429 => "overLimit",
        501 => "notImplemented",
        503 => "serviceUnavailable",
        _ => "computeFault",
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let name = fault_name(self.status);
        let code = self.status.as_u16();
        let mut inner = json!({"code": code, "message": self.message});
        let over_limit = code == 413;
        if over_limit {
            inner["retryAfter"] = json!("0");
        }
        let mut response = (self.status, Json(json!({ name: inner }))).into_response();
        if over_limit {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("0"));
        }
        response
    }
}

impl From<CoreError> for ApiError {
    fn from(err: CoreError) -> Self {
        match err.kind() {
            ErrorKind::BadRequest => Self::bad_request(err.to_string()),
            ErrorKind::Forbidden => Self::forbidden(err.to_string()),
            ErrorKind::NotFound => Self::not_found(err.to_string()),
            ErrorKind::Conflict => Self::conflict(err.to_string()),
            ErrorKind::OverLimit => Self::new(StatusCode::PAYLOAD_TOO_LARGE, err.to_string()),
            ErrorKind::Unavailable => {
                tracing::error!(error = %err, "dependency unavailable: {err}");
                Self::unavailable("The service is temporarily unavailable.")
            }
            ErrorKind::Internal => {
                tracing::error!(error = ?err, "internal error: {err:#}");
                Self::internal()
            }
        }
    }
}

/// Result alias of handlers.
pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_names_follow_manila() {
        assert_eq!(fault_name(StatusCode::BAD_REQUEST), "badRequest");
        assert_eq!(fault_name(StatusCode::NOT_ACCEPTABLE), "computeFault");
        assert_eq!(fault_name(StatusCode::UNPROCESSABLE_ENTITY), "computeFault");
        assert_eq!(fault_name(StatusCode::CONFLICT), "conflictingRequest");
        assert_eq!(
            fault_name(StatusCode::SERVICE_UNAVAILABLE),
            "serviceUnavailable"
        );
    }
}
