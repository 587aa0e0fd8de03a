//! Request bodies the way Manila reads them: only `application/json` bodies count, an empty
//! or differently typed body is "no body", invalid JSON is 400 "Malformed request body", and
//! bodies above `max_request_body_size` are refused with 413 before they are parsed.

use axum::extract::{FromRequest, Request};
use axum::http::{StatusCode, header};
use serde_json::{Map, Value};

use crate::ApiState;
use crate::error::ApiError;

/// The parsed JSON body, or `None` when the request carried no readable body.
#[derive(Debug, Clone)]
pub struct JsonBody(pub Option<Value>);

fn is_json(request: &Request) -> bool {
    request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("application/json"))
}

impl FromRequest<ApiState> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &ApiState) -> Result<Self, Self::Rejection> {
        let limit = state.config.max_request_body_size;
        let json = is_json(&request);
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "Request is too large."))?;
        if !json || bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(JsonBody(None));
        }
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|_| ApiError::bad_request("Malformed request body"))?;
        if holds_nul(&value) {
            return Err(ApiError::bad_request(NUL_REFUSED));
        }
        Ok(JsonBody(Some(value)))
    }
}

/// PostgreSQL cannot store a NUL character in text, so shoal stores none on any engine and
/// refuses input holding one up front (instead of a database error mid-request).
pub const NUL_REFUSED: &str = "Invalid input: text may not contain NUL characters.";

/// Whether any key or string of `value` holds a NUL character.
fn holds_nul(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains('\0'),
        Value::Array(items) => items.iter().any(holds_nul),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains('\0') || holds_nul(v)),
        _ => false,
    }
}

impl JsonBody {
    /// `body[key]` when it is a JSON object (Manila's `is_valid_body`).
    pub fn object(&self, key: &str) -> Option<&Map<String, Value>> {
        self.0.as_ref()?.as_object()?.get(key)?.as_object()
    }

    /// Splits an action body into its single key and value, with Manila's errors for a
    /// missing body, several keys and unknown shapes (`wsgi.py::action_peek_json`).
    pub fn action(self) -> Result<(String, Value), ApiError> {
        let Some(body) = self.0 else {
            return Err(ApiError::bad_request("There is no such action: None"));
        };
        let Value::Object(map) = body else {
            return Err(ApiError::bad_request("Malformed request body"));
        };
        if map.len() != 1 {
            return Err(ApiError::bad_request("Malformed request body"));
        }
        Ok(map.into_iter().next().expect("map has exactly one entry"))
    }
}
