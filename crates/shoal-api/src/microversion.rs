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

    /// Properties of the header rule (issue 13, item 7): any header value gets an answer
    /// (never a panic), valid `2.N` round-trips, and well-formed versions outside the served
    /// range get Manila's 406 text whatever their size.
    mod props {
        use axum::Router;
        use axum::body::Body;
        use axum::routing::get;
        use proptest::prelude::*;
        use tower::ServiceExt;

        use super::*;

        /// `/v2/x` behind [`negotiate`], answering the negotiated version.
        fn app() -> Router {
            Router::new()
                .route(
                    "/v2/x",
                    get(|request: Request| async move {
                        let mv = request.extensions().get::<Microversion>().copied();
                        mv.map(|mv| mv.version.to_string()).unwrap_or_default()
                    }),
                )
                .layer(axum::middleware::from_fn(negotiate))
        }

        /// Sends `GET /v2/x` with these raw version/experimental header bytes (values the
        /// `http` crate refuses to carry are skipped by the caller).
        fn call(version: Option<HeaderValue>, experimental: Option<HeaderValue>) -> Response {
            let mut request = Request::builder().uri("/v2/x");
            if let Some(v) = version {
                request = request.header(VERSION_HEADER, v);
            }
            if let Some(e) = experimental {
                request = request.header(EXPERIMENTAL_HEADER, e);
            }
            let request = request.body(Body::empty()).expect("request");
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
                .block_on(app().oneshot(request))
                .expect("infallible")
        }

        fn well_formed() -> impl Strategy<Value = (String, String)> {
            let major = prop_oneof!["[1-9][0-9]{0,24}", Just("2".to_owned())];
            let minor = prop_oneof!["0", "[1-9][0-9]{0,24}", "[1-9][0-9]?"];
            (major, minor)
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(512))]

            #[test]
            fn any_text_parses_or_errors_and_ok_is_canonical(text in any::<String>()) {
                if let Ok(version) = ApiVersion::parse_supported(&text) {
                    prop_assert_eq!(version.to_string(), text);
                    prop_assert!(version >= ApiVersion::MIN && version <= ApiVersion::MAX);
                }
            }

            #[test]
            fn header_shaped_text_parses_or_errors(text in "[0-9.+ -]{0,24}") {
                match ApiVersion::parse_supported(&text) {
                    Ok(version) => prop_assert_eq!(version.to_string(), text),
                    Err(VersionError::InvalidFormat(echo) | VersionError::NotSupported(echo)) => {
                        prop_assert_eq!(echo, text)
                    }
                }
            }

            #[test]
            fn valid_versions_round_trip(minor in 0u32..=99) {
                let text = format!("2.{minor}");
                prop_assert_eq!(ApiVersion::parse_supported(&text), Ok(ApiVersion::new(2, minor)));
                prop_assert_eq!(ApiVersion::new(2, minor).to_string(), text);
            }

            #[test]
            fn well_formed_outside_the_range_is_not_supported((major, minor) in well_formed()) {
                let text = format!("{major}.{minor}");
                let in_range = major == "2" && minor.len() <= 2;
                match ApiVersion::parse_supported(&text) {
                    Ok(version) => {
                        prop_assert!(in_range, "{text} accepted");
                        prop_assert_eq!(version.to_string(), text);
                    }
                    Err(err) => {
                        prop_assert!(!in_range, "{text} refused: {err}");
                        prop_assert_eq!(
                            err.to_string(),
                            format!(
                                "Version {text} is not supported by the API. Minimum is 2.0 \
                                 and maximum is 2.99."
                            )
                        );
                    }
                }
            }

            #[test]
            fn any_header_bytes_get_an_answer(
                version in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
                experimental in proptest::option::of(proptest::collection::vec(any::<u8>(), 0..12)),
            ) {
                let version = version.and_then(|v| HeaderValue::from_bytes(&v).ok());
                let experimental = experimental.and_then(|v| HeaderValue::from_bytes(&v).ok());
                let text = version.as_ref().map(|v| v.to_str().map(str::to_owned));
                let response = call(version, experimental);
                let status = response.status();
                let expected = match &text {
                    None => StatusCode::OK,
                    Some(Err(_)) => StatusCode::BAD_REQUEST,
                    Some(Ok(text)) => match ApiVersion::parse_supported(text) {
                        Ok(_) => StatusCode::OK,
                        Err(VersionError::InvalidFormat(_)) => StatusCode::BAD_REQUEST,
                        Err(VersionError::NotSupported(_)) => StatusCode::NOT_ACCEPTABLE,
                    },
                };
                prop_assert_eq!(status, expected, "{:?}", text);
                prop_assert!(response.headers().contains_key(axum::http::header::VARY));
            }
        }

        #[test]
        fn test_reproduce_huge_version_answers_406_with_the_version_echoed() {
            let response = call(Some(HeaderValue::from_static("2.4294967296")), None);
            assert_eq!(response.status(), StatusCode::NOT_ACCEPTABLE);
            assert_eq!(
                response
                    .headers()
                    .get(VERSION_HEADER)
                    .map(HeaderValue::as_bytes),
                Some(&b"2.4294967296"[..])
            );
        }
    }
}
