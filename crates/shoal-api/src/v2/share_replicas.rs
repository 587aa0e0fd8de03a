//! `GET /v2/share-replicas`, `/detail` and `/{id}` (Manila's `share_replicas.py`, views in
//! `views/share_replicas.py`): experimental from 2.11, generally available from 2.56. The
//! write side (create, delete, promote, resync and the admin actions) arrives with the
//! replication work; until then other methods on these paths answer itemNotFound, as
//! Manila does for a routed path without a matching method.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use shoal_core::share_replicas::{self, Requester};
use shoal_store::ShareInstanceRow;
use shoal_types::time::{manila_timestamp, manila_timestamp_opt};

use crate::ApiState;
use crate::context::RequestContext;
use crate::error::ApiResult;
use crate::pagination::{limit_offset, limited};

/// Experimental from this version…
const EXPERIMENTAL_SINCE: (u32, u32) = (2, 11);
/// …and without the experimental header from this one.
const GA_SINCE: (u32, u32) = (2, 56);

/// Routes of this resource.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v2/share-replicas", get(list_share_replicas))
        .route("/v2/share-replicas/detail", get(list_share_replicas_detail))
        .route("/v2/share-replicas/{id}", get(show_share_replica))
}

fn requester(ctx: &RequestContext) -> Requester<'_> {
    Requester {
        project_id: ctx.project_id(),
        is_admin: ctx.is_admin,
    }
}

/// Summary item (§4.1), the same for everyone at every version.
fn summary(replica: &ShareInstanceRow) -> Value {
    json!({
        "id": replica.id,
        "share_id": replica.share_id,
        "status": replica.status,
        "replica_state": replica.replica_state,
    })
}

/// Detail item (§4.2): admin-only fields and version-gated ones.
fn detail(ctx: &RequestContext, replica: &ShareInstanceRow) -> Value {
    let mut item = json!({
        "id": replica.id,
        "share_id": replica.share_id,
        "availability_zone": replica.availability_zone,
        "created_at": manila_timestamp(replica.created_at),
        "status": replica.status,
        "share_network_id": replica.share_network_id,
        "replica_state": replica.replica_state,
        "updated_at": manila_timestamp_opt(replica.updated_at),
    });
    if ctx.is_admin {
        item["share_server_id"] = json!(replica.share_server_id);
        item["host"] = json!(replica.host);
        if ctx.at_least(2, 30) {
            item["cast_rules_to_readonly"] = json!(replica.cast_rules_to_readonly);
        }
    }
    if ctx.at_least(2, 95) {
        // Replica metadata endpoints are not served yet, so no replica can carry any.
        item["metadata"] = json!({});
    }
    item
}

async fn list(
    state: &ApiState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    view: fn(&RequestContext, &ShareInstanceRow) -> Value,
    path: &str,
) -> ApiResult<Json<Value>> {
    ctx.require_experimental(EXPERIMENTAL_SINCE, GA_SINCE)?;
    ctx.authorize(state, "share_replica:get_all")?;
    let (limit, offset) = limit_offset(
        params.get("limit").map(String::as_str),
        params.get("offset").map(String::as_str),
    )?;
    let replicas = share_replicas::list_replicas(
        &state.core,
        requester(ctx),
        params.get("share_id").map(String::as_str),
    )
    .await?;
    let replicas = limited(replicas, limit, offset, state.config.max_limit);
    let items: Vec<Value> = replicas.iter().map(|r| view(ctx, r)).collect();
    let mut body = json!({ "share_replicas": items });
    // Manila adds a "next" link when a limit was asked for and exactly that many came back.
    if let (Some(limit), Some(last)) = (limit, replicas.last())
        && limit > 0
        && usize::try_from(limit).is_ok_and(|l| l == replicas.len())
    {
        let base = crate::versions::base_url(headers);
        let mut query = format!("limit={limit}&marker={}", last.id);
        if let Some(share_id) = params.get("share_id") {
            query.push_str(&format!("&share_id={share_id}"));
        }
        body["share_replica_links"] =
            json!([{"rel": "next", "href": format!("{base}/v2/{path}?{query}")}]);
    }
    Ok(Json(body))
}

/// `GET /v2/share-replicas`.
pub async fn list_share_replicas(
    State(state): State<ApiState>,
    ctx: RequestContext,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    list(
        &state,
        &ctx,
        &headers,
        &params,
        |_, r| summary(r),
        "share-replicas",
    )
    .await
}

/// `GET /v2/share-replicas/detail`.
pub async fn list_share_replicas_detail(
    State(state): State<ApiState>,
    ctx: RequestContext,
    headers: HeaderMap,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    list(
        &state,
        &ctx,
        &headers,
        &params,
        detail,
        "share-replicas/detail",
    )
    .await
}

/// `GET /v2/share-replicas/{id}`.
pub async fn show_share_replica(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_experimental(EXPERIMENTAL_SINCE, GA_SINCE)?;
    ctx.authorize(&state, "share_replica:show")?;
    let replica = share_replicas::get_replica(&state.core, requester(&ctx), &id).await?;
    Ok(Json(json!({ "share_replica": detail(&ctx, &replica) })))
}
