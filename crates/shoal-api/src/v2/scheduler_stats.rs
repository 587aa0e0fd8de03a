//! `GET /v2/scheduler-stats/pools[/detail]`, Manila's `scheduler_stats.py`: the pools the
//! scheduler knows, with the capabilities the share role last reported. Admin only by
//! default. `name`, `host`, `backend` and `pool` filter as regular expressions matched at the
//! start (Manila's `re.match`); from 2.23 `share_type=<name or id>` keeps the pools whose
//! capabilities satisfy the type's extra specs. Any other query key matches no pool, as in
//! Manila.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use serde_json::{Value, json};
use shoal_core::pools::PoolQuery;

use crate::ApiState;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::Routes;

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get("/v2/scheduler-stats/pools", list_pools)
        .get("/v2/scheduler-stats/pools/detail", list_pools_detail)
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
    // Manila hands every query key to `_passes_filters`: a key that names no pool field
    // fails every pool. `share_type` is consumed from 2.23 (400 for an unknown type).
    let mut query = PoolQuery::default();
    for (key, value) in &params {
        match key.as_str() {
            "name" => query.name = Some(value.clone()),
            "host" => query.host = Some(value.clone()),
            "backend" => query.backend = Some(value.clone()),
            "pool" => query.pool = Some(value.clone()),
            "share_type" if ctx.at_least(2, 23) => {
                if value.is_empty() {
                    continue;
                }
                let specs = shoal_core::pools::share_type_specs(&state.core, value)
                    .await?
                    .ok_or_else(|| {
                        ApiError::bad_request(format!("Share type {value} not found."))
                    })?;
                query.capabilities = specs;
            }
            // A raw `capabilities` string cannot be matched (Manila fails with a 500);
            // shoal ignores it.
            "capabilities" => {}
            _ => query.unknown_keys = true,
        }
    }
    let pools = shoal_core::pools::list_pools(&state.core, &query).await?;
    let items: Vec<Value> = pools
        .into_iter()
        .map(|p| {
            let mut item = json!({"name": p.name, "host": shoal_core::pools::host_name(&p),
                "backend": p.backend, "pool": p.pool});
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
