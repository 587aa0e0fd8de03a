//! Request plumbing that must happen before axum routes a request:
//! * the optional `/v2/{project_id}/...` segment (Manila's `ProjectMapper`): a segment made
//!   only of `[0-9a-f-]` is taken as a project id, stripped, and checked against the
//!   caller's project later (400 "Malformed request url" on mismatch);
//! * the request id `req-<uuid>` that every response carries;
//! * `Connection: close` on an answer given without reading the whole request body (413,
//!   a route miss, a refused token): the server then drops the connection, and a client
//!   told so opens a new one instead of sending its next request into a closed socket.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderValue, Uri, header};
use axum::response::{IntoResponse, Response};
use http_body_util::BodyExt;
use tower::{Layer, Service};

/// The project segment found in the URL, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlProject(pub String);

/// The request id, also sent back as `x-openstack-request-id`.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

fn is_project_segment(segment: &str) -> bool {
    !segment.is_empty()
        && segment
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'-')
}

/// Removes a project segment from `/v2/<project>/<rest>`; returns the new path and project.
pub fn strip_project(path: &str) -> Option<(String, String)> {
    let rest = path.strip_prefix("/v2/")?;
    let (segment, tail) = rest.split_once('/').unwrap_or((rest, ""));
    if !is_project_segment(segment) {
        return None;
    }
    Some((format!("/v2/{tail}"), segment.to_owned()))
}

/// Layer applying [`Plumbing`] around the router.
#[derive(Debug, Clone, Copy, Default)]
pub struct PlumbingLayer;

impl<S> Layer<S> for PlumbingLayer {
    type Service = Plumbing<S>;
    fn layer(&self, inner: S) -> Self::Service {
        Plumbing { inner }
    }
}

/// Service that rewrites project URLs and stamps request ids.
#[derive(Debug, Clone)]
pub struct Plumbing<S> {
    inner: S,
}

impl<S> Service<Request> for Plumbing<S>
where
    S: Service<Request, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn std::future::Future<Output = Result<Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request) -> Self::Future {
        let request_id = format!("req-{}", uuid::Uuid::new_v4());
        request
            .extensions_mut()
            .insert(RequestId(request_id.clone()));
        if holds_encoded_nul(request.uri()) {
            // No id, name or filter holds a NUL (see `body::NUL_REFUSED`), and PostgreSQL
            // could not even compare one: refuse it before it reaches a query.
            let mut response =
                crate::ApiError::bad_request(crate::body::NUL_REFUSED).into_response();
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response
                    .headers_mut()
                    .insert("x-openstack-request-id", value);
            }
            return Box::pin(async move { Ok(response) });
        }
        if let Some((path, project)) = strip_project(request.uri().path()) {
            let path_and_query = match request.uri().query() {
                Some(query) => format!("{path}?{query}"),
                None => path,
            };
            if let Ok(uri) = Uri::builder().path_and_query(path_and_query).build() {
                *request.uri_mut() = uri;
                request.extensions_mut().insert(UrlProject(project));
            }
        }
        // Count the body bytes the handler reads, to tell whether it read them all.
        let declared = request
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        let read = Arc::new(AtomicU64::new(0));
        if declared > 0 {
            let counter = read.clone();
            request = request.map(|body| {
                axum::body::Body::new(body.map_frame(move |frame| {
                    if let Some(data) = frame.data_ref() {
                        counter.fetch_add(data.len() as u64, Ordering::Relaxed);
                    }
                    frame
                }))
            });
        }
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            if read.load(Ordering::Relaxed) < declared {
                response
                    .headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            if let Ok(value) = HeaderValue::from_str(&request_id) {
                response
                    .headers_mut()
                    .insert("x-openstack-request-id", value.clone());
                response.headers_mut().insert("x-compute-request-id", value);
            }
            Ok(response)
        })
    }
}

/// Whether the path or query holds `%00`, a NUL once decoded.
fn holds_encoded_nul(uri: &Uri) -> bool {
    let has = |s: &str| s.as_bytes().windows(3).any(|w| w == b"%00");
    has(uri.path()) || uri.query().is_some_and(has)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_nuls_are_found_in_path_and_query() {
        let uri = |s: &str| s.parse::<Uri>().unwrap();
        assert!(holds_encoded_nul(&uri("/v2/shares/%00")));
        assert!(holds_encoded_nul(&uri("/v2/shares?name=a%00b")));
        assert!(!holds_encoded_nul(&uri("/v2/shares?name=%100")));
        assert!(!holds_encoded_nul(&uri("/v2/shares/0000")));
    }

    #[test]
    fn strips_hex_project_segments_only() {
        assert_eq!(
            strip_project("/v2/0123abcd-ef/types/x"),
            Some(("/v2/types/x".to_owned(), "0123abcd-ef".to_owned()))
        );
        assert_eq!(
            strip_project("/v2/abc"),
            Some(("/v2/".to_owned(), "abc".to_owned()))
        );
        assert_eq!(strip_project("/v2/types"), None);
        assert_eq!(strip_project("/v2/admin/types"), None);
        assert_eq!(strip_project("/v2/"), None);
        assert_eq!(strip_project("/v1/abc/types"), None);
    }
}
