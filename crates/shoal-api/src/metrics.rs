//! Prometheus metrics at `GET /metrics` on the API listener, unauthenticated (like
//! `/healthcheck`: scrapers carry no token) unless `[api] metrics = false`.
//!
//! Two kinds of series are served together:
//! * this process's counters and histograms, recorded through the `metrics` facade by every
//!   crate (HTTP requests here; operations, syncs, NFS, the replication transport and
//!   identity where they happen) into one process-wide recorder installed by [`install`];
//! * the deployment's state read from the database at each scrape (operations by kind and
//!   state, pools, replica lag and last sync), recorded into a recorder of its own that lives
//!   for that scrape only, so a deleted replica or pool disappears instead of lingering.
//!   Every node serves the same values for these; aggregate them with `max`, not `sum`.
//!
//! Labels never carry tenant data: no project ids, share names or raw paths. HTTP requests
//! are labelled by route template (`/v2/shares/{id}`). The per-replica series are labelled
//! with the replica's id, an object of a project, so they are only in the answer to a
//! scrape that carries an admin token (`context_is_admin`); everyone else gets the replica
//! series aggregated over all replicas (count by state, the largest lag).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use shoal_core::Core;
use shoal_core::metrics::seconds_between;

use crate::ApiState;

/// Where the metrics are served.
pub const PATH: &str = "/metrics";

/// Buckets of every `*_seconds` histogram: from a fast API call to a long sync.
const SECONDS_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// The Prometheus text format's content type.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

const GIB: f64 = (1u64 << 30) as f64;

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

fn builder() -> PrometheusBuilder {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), SECONDS_BUCKETS)
        .expect("the bucket list is not empty")
}

/// Installs the process-wide recorder (once; later calls return the same handle) and
/// describes every series. Call it before serving, so nothing recorded early is lost.
/// `None` when another recorder was installed first (then `/metrics` answers 503).
pub fn install() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = builder().build_recorder();
            let handle = recorder.handle();
            if let Err(err) = metrics::set_global_recorder(recorder) {
                tracing::warn!("metrics are not served: {err}");
                return None;
            }
            describe();
            shoal_core::metrics::describe();
            // Without a scrape, histogram samples would pile up; fold them regularly.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".to_owned())
                .spawn(move || {
                    loop {
                        std::thread::sleep(UPKEEP_INTERVAL);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(err) = spawned {
                tracing::warn!("metrics upkeep thread not started: {err}");
            }
            Some(handle)
        })
        .as_ref()
}

fn describe() {
    metrics::describe_counter!(
        "shoal_http_requests_total",
        "HTTP requests answered, by method, route template and status code"
    );
    metrics::describe_histogram!(
        "shoal_http_request_duration_seconds",
        metrics::Unit::Seconds,
        "Time to answer an HTTP request, by method and route template"
    );
    metrics::describe_counter!(
        "shoal_auth_refusals_total",
        "API requests refused by authentication (401), by reason"
    );
}

/// The route template a request matched, carried from inside the router (where axum knows
/// it) out to [`track_http`].
#[derive(Debug, Clone)]
struct MatchedRoute(String);

/// Route layer: hands the matched route template to [`track_http`] through the response.
pub async fn note_route(request: Request, next: Next) -> Response {
    let matched = request
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str().to_owned());
    let mut response = next.run(request).await;
    if let Some(route) = matched {
        response.extensions_mut().insert(MatchedRoute(route));
    }
    response
}

/// Counts and times every request by method, route template and status. A request that
/// matched no route is labelled `unmatched`, never with its path.
pub async fn track_http(request: Request, next: Next) -> Response {
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let route = response
        .extensions()
        .get::<MatchedRoute>()
        .map_or_else(|| "unmatched".to_owned(), |r| r.0.clone());
    let status = response.status().as_u16().to_string();
    histogram!("shoal_http_request_duration_seconds", "method" => method, "route" => route.clone())
        .record(started.elapsed().as_secs_f64());
    counter!("shoal_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    response
}

/// Any method a client invents would be a new series; those are counted as `other`.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// `GET /metrics`.
pub async fn serve(State(state): State<ApiState>, headers: HeaderMap) -> Response {
    if !state.config.metrics {
        return crate::route_not_found().await;
    }
    let Some(handle) = install() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed\n",
        )
            .into_response();
    };
    let per_replica = crate::healthcheck::caller_is_admin(&state, &headers).await;
    let mut body = handle.render();
    body.push_str(&deployment_state(&state.core, per_replica).await);
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response()
}

/// The database's view of the deployment, rendered from a recorder that lives for this
/// scrape only. A database error gives `shoal_metrics_database_up 0` and nothing else.
/// Series labelled with replica ids only when `per_replica` (an admin asked).
async fn deployment_state(core: &Core, per_replica: bool) -> String {
    let read = async {
        let operations = core.store.count_operations_by_kind().await?;
        let pools = core.store.list_pools().await?;
        let allocated = core.store.allocated_gb_by_pool().await?;
        let replicas = core.store.list_replica_sync_status().await?;
        Ok::<_, shoal_store::StoreError>((operations, pools, allocated, replicas))
    };
    let read = tokio::time::timeout(Duration::from_secs(10), read).await;
    let recorder = builder().build_recorder();
    let now = core.now();
    metrics::with_local_recorder(&recorder, || {
        let Ok(Ok((operations, pools, allocated, replicas))) = read else {
            gauge!("shoal_metrics_database_up").set(0.0);
            return;
        };
        gauge!("shoal_metrics_database_up").set(1.0);
        for op in operations {
            gauge!("shoal_operations", "kind" => op.kind, "state" => op.state.as_str())
                .set(op.count as f64);
        }
        for pool in pools {
            let capability = |key: &str| pool.capabilities.get(key).and_then(|v| v.as_f64());
            let labels = [
                ("pool", pool.name.clone()),
                ("backend", pool.backend.clone()),
                ("availability_zone", pool.availability_zone.clone()),
            ];
            if let Some(total) = capability("total_capacity_gb") {
                gauge!("shoal_pool_capacity_total_bytes", &labels).set(total * GIB);
            }
            if let Some(free) = capability("free_capacity_gb") {
                gauge!("shoal_pool_capacity_free_bytes", &labels).set(free * GIB);
            }
            let allocated_gb = allocated.get(&pool.name).copied().unwrap_or(0);
            gauge!("shoal_pool_allocated_bytes", &labels).set(allocated_gb as f64 * GIB);
            let age = seconds_between(pool.updated_at, now);
            gauge!("shoal_pool_report_age_seconds", &labels).set(age);
        }
        let lag_of = |r: &shoal_store::ReplicaSyncStatus| {
            r.last_clean_source_point
                .map(|point| seconds_between(point, now))
        };
        let mut by_state: std::collections::BTreeMap<String, u64> = Default::default();
        for replica in &replicas {
            *by_state.entry(replica.replica_state.clone()).or_default() += 1;
        }
        let max_lag = replicas.iter().filter_map(lag_of).reduce(f64::max);
        for (replica_state, count) in by_state {
            gauge!("shoal_replicas", "replica_state" => replica_state).set(count as f64);
        }
        if let Some(lag) = max_lag {
            gauge!("shoal_replica_lag_max_seconds").set(lag);
        }
        for replica in replicas.into_iter().filter(|_| per_replica) {
            let id = replica.instance_id.to_string();
            gauge!("shoal_replica_info", "replica_id" => id.clone(), "replica_state" => replica.replica_state.clone())
                .set(1.0);
            if let Some(lag) = lag_of(&replica) {
                gauge!("shoal_replica_lag_seconds", "replica_id" => id.clone()).set(lag);
            }
            if let Some(last) = replica.latest {
                let took = seconds_between(last.started_at, last.finished_at);
                gauge!("shoal_replica_last_sync_duration_seconds", "replica_id" => id.clone())
                    .set(took);
                gauge!("shoal_replica_last_sync_bytes", "replica_id" => id.clone())
                    .set(last.bytes_transferred as f64);
                gauge!("shoal_replica_last_sync_files", "replica_id" => id.clone())
                    .set(last.files_transferred as f64);
                gauge!("shoal_replica_last_sync_wire_bytes", "replica_id" => id.clone())
                    .set(last.wire_bytes as f64);
                gauge!("shoal_replica_last_sync_clean", "replica_id" => id)
                    .set(f64::from(u8::from(last.outcome == "clean")));
            }
        }
        describe_deployment_state();
    });
    recorder.handle().render()
}

fn describe_deployment_state() {
    use metrics::{Unit, describe_gauge};
    describe_gauge!(
        "shoal_metrics_database_up",
        "1 when this scrape could read the deployment's state from the database"
    );
    describe_gauge!(
        "shoal_operations",
        "Durable operations in the database, by kind and state"
    );
    describe_gauge!(
        "shoal_pool_capacity_total_bytes",
        Unit::Bytes,
        "Pool size as its back end last reported it"
    );
    describe_gauge!(
        "shoal_pool_capacity_free_bytes",
        Unit::Bytes,
        "Free space of a pool as its back end last reported it"
    );
    describe_gauge!(
        "shoal_pool_allocated_bytes",
        Unit::Bytes,
        "Sum of the sizes of the share instances placed on a pool"
    );
    describe_gauge!(
        "shoal_pool_report_age_seconds",
        Unit::Seconds,
        "Time since a pool's back end last reported"
    );
    describe_gauge!("shoal_replicas", "Non-active replicas, by replica_state");
    describe_gauge!(
        "shoal_replica_lag_max_seconds",
        Unit::Seconds,
        "The largest lag of any non-active replica that had a clean sync"
    );
    describe_gauge!(
        "shoal_replica_info",
        "1 for every non-active replica, with its replica_state (admin scrapes only)"
    );
    describe_gauge!(
        "shoal_replica_lag_seconds",
        Unit::Seconds,
        "Now minus the source point of a replica's newest clean sync (admin scrapes only)"
    );
    describe_gauge!(
        "shoal_replica_last_sync_duration_seconds",
        Unit::Seconds,
        "Duration of a replica's newest sync"
    );
    describe_gauge!(
        "shoal_replica_last_sync_bytes",
        Unit::Bytes,
        "File bytes a replica's newest sync wrote"
    );
    describe_gauge!(
        "shoal_replica_last_sync_files",
        "Entries a replica's newest sync wrote"
    );
    describe_gauge!(
        "shoal_replica_last_sync_wire_bytes",
        Unit::Bytes,
        "Bytes a replica's newest sync received from the active's node"
    );
    describe_gauge!(
        "shoal_replica_last_sync_clean",
        "1 when a replica's newest sync was clean"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invented_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(
            method_label(&Method::from_bytes(b"BREW").expect("token")),
            "other"
        );
    }
}
