//! The route table the router is built from. axum's [`Router`] cannot list its routes, so
//! every route is registered through [`Routes`], which records `(method, path)` and adds the
//! handler to the router in the same call. [`crate::route_table`] returns the record of the
//! very code that builds [`crate::service`], so a test iterating it (the cross-tenant matrix
//! in `tests/api/tenant_matrix.rs`) sees every route, including ones added later.
//!
//! Nothing is persisted; the table is derived from the builder each time it is asked for.

use axum::Router;
use axum::handler::Handler;
use axum::routing::{MethodRouter, delete, get, head, patch, post, put};
use http::Method;

/// One routed method of one path, in axum's path syntax (`/v2/shares/{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Route {
    /// The method routed. `GET` also answers `HEAD` (axum's default) unless a `HEAD` route
    /// of its own is listed.
    pub method: Method,
    /// The path template as given to axum.
    pub path: &'static str,
}

impl std::fmt::Display for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.method, self.path)
    }
}

/// A [`Router`] under construction together with the list of what it routes. Adding two
/// methods of one path separately is fine: axum merges the method routers of one path.
#[must_use]
pub struct Routes<S> {
    router: Router<S>,
    table: Vec<Route>,
}

impl<S: Clone + Send + Sync + 'static> Default for Routes<S> {
    fn default() -> Self {
        Self::new()
    }
}

impl<S: Clone + Send + Sync + 'static> Routes<S> {
    /// An empty router and table.
    pub fn new() -> Self {
        Self {
            router: Router::new(),
            table: Vec::new(),
        }
    }

    fn on(mut self, method: Method, path: &'static str, method_router: MethodRouter<S>) -> Self {
        self.table.push(Route { method, path });
        self.router = self.router.route(path, method_router);
        self
    }

    /// Routes `GET path` (and `HEAD`, unless routed separately) to `handler`.
    pub fn get<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on(Method::GET, path, get(handler))
    }

    /// Routes `HEAD path` to `handler`.
    pub fn head<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on(Method::HEAD, path, head(handler))
    }

    /// Routes `POST path` to `handler`.
    pub fn post<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on(Method::POST, path, post(handler))
    }

    /// Routes `PUT path` to `handler`.
    pub fn put<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on(Method::PUT, path, put(handler))
    }

    /// Routes `DELETE path` to `handler`.
    pub fn delete<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on(Method::DELETE, path, delete(handler))
    }

    /// Routes `PATCH path` to `handler`.
    pub fn patch<H: Handler<T, S>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.on(Method::PATCH, path, patch(handler))
    }

    /// A catch-all answering every method of the paths matching `path` (a `{*rest}`
    /// wildcard) that no route serves. It is a fallback, not a route, so it has no entry in
    /// the table.
    pub fn catch_all<H: Handler<T, S>, T: 'static>(
        mut self,
        path: &'static str,
        handler: H,
    ) -> Self {
        self.router = self.router.route(path, axum::routing::any(handler));
        self
    }

    /// Adds the routes of `other`.
    pub fn merge(mut self, other: Routes<S>) -> Self {
        self.router = self.router.merge(other.router);
        self.table.extend(other.table);
        self
    }

    /// The routes recorded so far.
    pub fn table(&self) -> &[Route] {
        &self.table
    }

    /// The router and the list of its routes.
    pub fn into_parts(self) -> (Router<S>, Vec<Route>) {
        (self.router, self.table)
    }

    /// The router alone.
    pub fn into_router(self) -> Router<S> {
        self.router
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_each_method_and_merges_method_routers_of_one_path() {
        let routes: Routes<()> = Routes::new()
            .get("/a", || async { "get" })
            .post("/a", || async { "post" })
            .merge(Routes::new().delete("/a/{id}", || async { "delete" }));
        let table: Vec<String> = routes.table().iter().map(ToString::to_string).collect();
        assert_eq!(table, ["GET /a", "POST /a", "DELETE /a/{id}"]);
        // Builds without axum's overlapping-route panic.
        let _router = routes.into_router();
    }
}
