//! Microversion negotiation for `/v2` (`manila/api/openstack/wsgi.py`): parses
//! `X-OpenStack-Manila-API-Version` and the experimental flag, refuses bad values (400/406)
//! and stamps the version headers on every answer the API layer produces, faults included.
//! Answers marked [`RawResponse`] (route misses) go out without them, as Manila's do.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shoal_types::{ApiVersion, VersionError};

use crate::error::ApiError;

/// Request header carrying the microversion.
pub const VERSION_HEADER: &str = "x-openstack-manila-api-version";
/// Request and response header of the experimental flag.
pub const EXPERIMENTAL_HEADER: &str = "x-openstack-manila-api-experimental";

/// The negotiated version of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Microversion {
    /// Effective version (2.0 when the header is absent).
    pub version: ApiVersion,
    /// Whether the request asked for experimental APIs.
    pub experimental: bool,
}

impl Microversion {
    /// True if the request may reach a method available in `[min, max]` (max `None` = open).
    pub fn matches(&self, min: ApiVersion, max: Option<ApiVersion>) -> bool {
        self.version >= min && max.is_none_or(|max| self.version <= max)
    }

    /// True if the request may reach an experimental method of `[min, max]`.
    pub fn matches_experimental(&self, min: ApiVersion, max: Option<ApiVersion>) -> bool {
        self.experimental && self.matches(min, max)
    }
}

/// Marker extension: this response did not come from the Manila resource layer.
#[derive(Debug, Clone, Copy)]
pub struct RawResponse;

/// oslo `bool_from_string` (non-strict): only these spellings are true.
pub fn bool_from_string(value: &str) -> bool {
    matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|v| v.to_str().unwrap_or("\u{fffd}"))
}

fn stamp(response: &mut Response, version: Option<&str>, experimental: bool) {
    let headers = response.headers_mut();
    if let Some(version) = version.and_then(|v| HeaderValue::from_str(v).ok()) {
        headers.insert(VERSION_HEADER, version);
    }
    headers.insert(
        axum::http::header::VARY,
        HeaderValue::from_static("X-OpenStack-Manila-API-Version"),
    );
    if experimental {
        headers.insert(EXPERIMENTAL_HEADER, HeaderValue::from_static("True"));
    }
}

/// Middleware for every `/v2` route.
pub async fn negotiate(mut request: Request, next: Next) -> Response {
    let experimental =
        header_str(request.headers(), EXPERIMENTAL_HEADER).is_some_and(bool_from_string);
    let requested = header_str(request.headers(), VERSION_HEADER).map(str::to_owned);
    let version = match requested.as_deref().map(ApiVersion::parse_supported) {
        None => ApiVersion::MIN,
        Some(Ok(version)) => version,
        Some(Err(err @ VersionError::InvalidFormat(_))) => {
            let mut response = ApiError::bad_request(err.to_string()).into_response();
            stamp(&mut response, None, experimental);
            return response;
        }
        Some(Err(err @ VersionError::NotSupported(_))) => {
            // Manila echoes the rejected version on a 406.
            let mut response =
                ApiError::new(StatusCode::NOT_ACCEPTABLE, err.to_string()).into_response();
            stamp(&mut response, requested.as_deref(), experimental);
            return response;
        }
    };
    request.extensions_mut().insert(Microversion {
        version,
        experimental,
    });
    let mut response = next.run(request).await;
    if response.extensions().get::<RawResponse>().is_none() {
        stamp(&mut response, Some(&version.to_string()), experimental);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oslo_bool_from_string() {
        for yes in ["true", "True", "1", "yes", "YES", "on", "t", "y"] {
            assert!(bool_from_string(yes), "{yes}");
        }
        for no in ["false", "0", "no", "", "2", "enabled", "truee"] {
            assert!(!bool_from_string(no), "{no}");
        }
    }

    #[test]
    fn experimental_matching() {
        let mv = |v: &str, experimental| Microversion {
            version: ApiVersion::parse(v).unwrap(),
            experimental,
        };
        let min = ApiVersion::new(2, 11);
        let max = Some(ApiVersion::new(2, 55));
        assert!(mv("2.11", true).matches_experimental(min, max));
        assert!(!mv("2.11", false).matches_experimental(min, max));
        assert!(!mv("2.10", true).matches_experimental(min, max));
        assert!(!mv("2.56", true).matches_experimental(min, max));
    }
}
