//! `GET /v2/scheduler-stats/pools[/detail]`, Manila's `scheduler_stats.py`: the pools the
//! scheduler knows, with the capabilities the share role last reported. Admin only by
//! default. From 2.23 `share_type=<name or id>` keeps the pools matching the type's specs.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use shoal_core::pools::PoolQuery;

use crate::ApiState;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult};

/// Routes of this resource.
pub fn router() -> Router<ApiState> {
    Router::new()
        .route("/v2/scheduler-stats/pools", get(list_pools))
        .route("/v2/scheduler-stats/pools/detail", get(list_pools_detail))
}

async fn pools(
    state: &ApiState,
    ctx: &RequestContext,
    params: HashMap<String, String>,
    detail: bool,
) -> ApiResult<Json<Value>> {
    ctx.authorize(
        state,
        if detail {
            "scheduler_stats:pools:detail"
        } else {
            "scheduler_stats:pools:index"
        },
    )?;
    let mut query = PoolQuery {
        host: params.get("host").cloned(),
        backend: params.get("backend").cloned(),
        pool: params.get("pool").cloned(),
        capabilities: Vec::new(),
    };
    if ctx.at_least(2, 23)
        && let Some(wanted) = params.get("share_type").filter(|t| !t.is_empty())
    {
        let specs = shoal_core::pools::share_type_specs(&state.core, wanted)
            .await?
            .ok_or_else(|| ApiError::bad_request(format!("Share type {wanted} not found.")))?;
        query.capabilities = specs;
    }
    let pools = shoal_core::pools::list_pools(&state.core, &query).await?;
    let items: Vec<Value> = pools
        .into_iter()
        .map(|p| {
            let mut item =
                json!({"name": p.name, "host": p.host, "backend": p.backend, "pool": p.pool});
            if detail {
                item["capabilities"] = p.capabilities;
            }
            item
        })
        .collect();
    Ok(Json(json!({ "pools": items })))
}

/// `GET /v2/scheduler-stats/pools`.
pub async fn list_pools(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    pools(&state, &ctx, params, false).await
}

/// `GET /v2/scheduler-stats/pools/detail`.
pub async fn list_pools_detail(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    pools(&state, &ctx, params, true).await
}
