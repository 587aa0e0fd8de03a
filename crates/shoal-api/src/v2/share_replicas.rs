//! Share replicas: Manila's `v2/share_replicas.py` (list, detail, show, create, delete and
//! the replica actions) with the views of `views/share_replicas.py`, experimental from 2.11
//! and generally available from 2.56 (spec replication.md §2–§5). Replica export locations
//! and replica metadata live in [`super::share_replica_export_locations`] and
//! [`super::share_replica_metadata`].
//!
//! Each handler checks, in Manila's order: the microversion (404), the endpoint's policy
//! against the caller's own project (403, before any lookup), the body, and then hands
//! over to [`shoal_core::share_replicas`], which owns lookups and business rules. One
//! deliberate exception comes from Manila itself: `POST /v2/share-replicas` without a
//! readable body fails in the WSGI layer (400) before the policy decorator runs.
//!
//! Also here: `GET /v2/share-replicas/{id}/replication-history`, a shoal extension (admin
//! only) that lists the sync records the replication workers keep per replica.

use std::collections::{BTreeMap, HashMap};

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use shoal_core::share_replicas::{
    self, ActionOutcome, CreateReplica, ReplicaWithMetadata, Requester,
};
use shoal_core::share_types::py_str;
use shoal_core::shares::RESET_STATUSES;
use shoal_store::{ReplicationRecord, ShareInstanceRow};
use shoal_types::time::{manila_timestamp, manila_timestamp_opt};
use uuid::Uuid;

use crate::ApiState;
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult, GENERIC_400};
use crate::pagination::{limit_offset, limited};
use crate::routes::Routes;

/// Experimental from this version…
pub const EXPERIMENTAL_SINCE: (u32, u32) = (2, 11);
/// …and without the experimental header from this one.
pub const GA_SINCE: (u32, u32) = (2, 56);
/// Replica views carry `metadata` from this version.
const METADATA_SINCE: (u32, u32) = (2, 95);
/// Manila's 422 text for a create body without a `share_replica` object.
pub const NO_REPLICA_IN_BODY: &str = "Body does not contain 'share_replica' information.";
/// Values `reset_replica_state` accepts (`AdminActionsMixin.valid_statuses`).
pub const RESET_REPLICA_STATES: [&str; 4] = ["active", "in_sync", "out_of_sync", "error"];
/// Records the replication history answers when no `limit` is given.
pub const REPLICATION_HISTORY_LIMIT_DEFAULT: usize = 50;

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get("/v2/share-replicas", list_share_replicas)
        .post("/v2/share-replicas", create_share_replica)
        // `detail` is a collection route in Manila; a DELETE on it reaches the member
        // route with that literal id.
        .get("/v2/share-replicas/detail", list_share_replicas_detail)
        .delete("/v2/share-replicas/detail", |s, c| {
            delete_share_replica(s, c, Path("detail".to_owned()))
        })
        .get("/v2/share-replicas/{id}", show_share_replica)
        .delete("/v2/share-replicas/{id}", delete_share_replica)
        .post("/v2/share-replicas/{id}/action", share_replica_action)
        .get(
            "/v2/share-replicas/{id}/replication-history",
            show_replication_history,
        )
}

/// The caller as the core sees it.
pub fn requester(ctx: &RequestContext) -> Requester<'_> {
    Requester {
        project_id: ctx.project_id(),
        is_admin: ctx.is_admin,
    }
}

/// Python truthiness of a JSON value (Manila's `if not share_id`).
fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
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

/// Detail item (§4.2): admin-only fields and version-gated ones. `metadata` is the
/// replica's metadata, shown from 2.95 (`{}` when the replica has none).
fn detail(
    ctx: &RequestContext,
    replica: &ShareInstanceRow,
    metadata: Option<&BTreeMap<String, String>>,
) -> Value {
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
    if ctx.at_least(METADATA_SINCE.0, METADATA_SINCE.1) {
        item["metadata"] = metadata.map_or_else(|| json!({}), |m| json!(m));
    }
    item
}

/// `{"share_replica": <detail>}` of a replica the core answered with its metadata.
fn replica_body(ctx: &RequestContext, replica: &ReplicaWithMetadata) -> Value {
    json!({ "share_replica": detail(ctx, &replica.replica, Some(&replica.metadata)) })
}

/// Metadata of `replicas` for detail views: one core call per response, and none below
/// 2.95 where views do not show it.
async fn metadata_for(
    state: &ApiState,
    ctx: &RequestContext,
    replicas: &[ShareInstanceRow],
) -> ApiResult<BTreeMap<Uuid, BTreeMap<String, String>>> {
    if !ctx.at_least(METADATA_SINCE.0, METADATA_SINCE.1) || replicas.is_empty() {
        return Ok(BTreeMap::new());
    }
    Ok(share_replicas::replica_metadata_of(&state.core, replicas).await?)
}

/// Which view a list uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ListView {
    Summary,
    Detail,
}

async fn list(
    state: &ApiState,
    ctx: &RequestContext,
    headers: &HeaderMap,
    params: &HashMap<String, String>,
    view: ListView,
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
    let items: Vec<Value> = match view {
        ListView::Summary => replicas.iter().map(summary).collect(),
        ListView::Detail => {
            let metadata = metadata_for(state, ctx, &replicas).await?;
            replicas
                .iter()
                .map(|r| detail(ctx, r, metadata.get(&r.id)))
                .collect()
        }
    };
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
        ListView::Summary,
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
        ListView::Detail,
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
    let metadata = metadata_for(&state, &ctx, std::slice::from_ref(&replica)).await?;
    Ok(Json(
        json!({ "share_replica": detail(&ctx, &replica, metadata.get(&replica.id)) }),
    ))
}

// ---------------------------------------------------------------------------------------
// Create and delete
// ---------------------------------------------------------------------------------------

/// `POST /v2/share-replicas` → 202 `{"share_replica": <detail>}` (spec §5.1).
pub async fn create_share_replica(
    State(state): State<ApiState>,
    ctx: RequestContext,
    body: JsonBody,
) -> ApiResult<Response> {
    ctx.require_experimental(EXPERIMENTAL_SINCE, GA_SINCE)?;
    // Manila's `create(req, body)` is called without `body` and fails with webob's generic
    // 400 before its policy decorator runs.
    let Some(body) = body.0 else {
        return Err(ApiError::bad_request(GENERIC_400));
    };
    ctx.authorize(&state, "share_replica:create")?;
    let request = create_request(&ctx, &body)?;
    let created = share_replicas::create_replica(&state.core, requester(&ctx), request).await?;
    Ok((StatusCode::ACCEPTED, Json(replica_body(&ctx, &created))).into_response())
}

/// The core's create request from the body: 422 without a `share_replica` object, 400
/// without a `share_id`; keys the microversion does not know are dropped here (below
/// 2.72 `share_network_id` is passed on, the core refuses a truthy one after the share
/// lookup, as Manila does).
fn create_request(ctx: &RequestContext, body: &Value) -> ApiResult<CreateReplica> {
    let fields: &Map<String, Value> = body
        .as_object()
        .and_then(|b| b.get("share_replica"))
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::unprocessable(NO_REPLICA_IN_BODY))?;
    let share_id = match fields.get("share_id") {
        Some(value) if truthy(value) => py_str(value),
        _ => {
            return Err(ApiError::bad_request(
                "Must provide Share ID to add replica.",
            ));
        }
    };
    // Manila only ever tests the zone for truthiness, so `""` means "none asked".
    let availability_zone = fields
        .get("availability_zone")
        .filter(|v| truthy(v))
        .map(py_str);
    Ok(CreateReplica {
        share_id,
        availability_zone,
        share_network_id: fields.get("share_network_id").cloned(),
        share_network_supported: ctx.at_least(2, 72),
        scheduler_hints: fields
            .get("scheduler_hints")
            .filter(|_| ctx.at_least(2, 67))
            .cloned(),
        metadata: fields
            .get("metadata")
            .filter(|_| ctx.at_least(METADATA_SINCE.0, METADATA_SINCE.1))
            .cloned(),
    })
}

/// `DELETE /v2/share-replicas/{id}` → 202 with an empty body (spec §5.4).
pub async fn delete_share_replica(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.require_experimental(EXPERIMENTAL_SINCE, GA_SINCE)?;
    ctx.authorize(&state, "share_replica:delete")?;
    share_replicas::delete_replica(&state.core, requester(&ctx), &id, false).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------

/// The replica actions (`wsgi.action` names of the controller).
pub const ACTIONS: [&str; 5] = [
    "promote",
    "resync",
    "reset_status",
    "reset_replica_state",
    "force_delete",
];

/// `POST /v2/share-replicas/{id}/action`: exactly one of [`ACTIONS`]. As in Manila the
/// body is split and the action looked up before the method's version is matched, so an
/// unknown action is a 400 at every version. No `os-` prefixed keys exist here.
pub async fn share_replica_action(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let (action, value) = body.action()?;
    if !ACTIONS.contains(&action.as_str()) {
        return Err(ApiError::bad_request(format!(
            "There is no such action: {action}"
        )));
    }
    ctx.require_experimental(EXPERIMENTAL_SINCE, GA_SINCE)?;
    match action.as_str() {
        "promote" => promote(&state, &ctx, &id, &value).await,
        "resync" => resync(&state, &ctx, &id).await,
        "reset_status" => reset_status(&state, &ctx, &id, &value).await,
        "reset_replica_state" => reset_replica_state(&state, &ctx, &id, &value).await,
        _ => force_delete(&state, &ctx, &id).await,
    }
}

/// 200 with an empty body for a no-op, 202 otherwise (with the re-read replica when the
/// core gives one back).
fn outcome_response(ctx: &RequestContext, outcome: ActionOutcome) -> Response {
    match outcome {
        ActionOutcome::NoOp => StatusCode::OK.into_response(),
        ActionOutcome::Accepted(None) => StatusCode::ACCEPTED.into_response(),
        ActionOutcome::Accepted(Some(replica)) => {
            (StatusCode::ACCEPTED, Json(replica_body(ctx, &replica))).into_response()
        }
    }
}

/// `promote` (spec §5.5): `quiesce_wait_time` is read only from 2.75; the core validates it.
async fn promote(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    value: &Value,
) -> ApiResult<Response> {
    ctx.authorize(state, "share_replica:promote")?;
    let quiesce_wait_time = value
        .as_object()
        .and_then(|v| v.get("quiesce_wait_time"))
        .filter(|_| ctx.at_least(2, 75))
        .cloned();
    let outcome =
        share_replicas::promote_replica(&state.core, requester(ctx), id, quiesce_wait_time).await?;
    Ok(outcome_response(ctx, outcome))
}

/// `resync` (admin, spec §5.6): 200 for an active replica, else 202; both without a body.
async fn resync(state: &ApiState, ctx: &RequestContext, id: &str) -> ApiResult<Response> {
    ctx.authorize(state, "share_replica:resync")?;
    let outcome = share_replicas::resync_replica(&state.core, requester(ctx), id).await?;
    Ok(match outcome {
        ActionOutcome::NoOp => StatusCode::OK.into_response(),
        ActionOutcome::Accepted(_) => StatusCode::ACCEPTED.into_response(),
    })
}

/// `AdminActionsMixin.validate_update`: `value[attr]` must exist (400 "Must specify
/// '<attr>'") and be one of `allowed` (400 "Invalid state. Valid states: ...").
pub(crate) fn validated_state<'a>(
    value: &'a Value,
    attr: &str,
    allowed: &[&str],
) -> ApiResult<&'a str> {
    let Some(given) = value.as_object().and_then(|v| v.get(attr)) else {
        return Err(ApiError::bad_request(format!("Must specify '{attr}'")));
    };
    given
        .as_str()
        .filter(|s| allowed.contains(s))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid state. Valid states: {}.",
                allowed.join(", ")
            ))
        })
}

/// `reset_status` (admin) `{"status": "<s>"}` → 202 (spec §5.7).
async fn reset_status(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    value: &Value,
) -> ApiResult<Response> {
    ctx.authorize(state, "share_replica:reset_status")?;
    let status = validated_state(value, "status", &RESET_STATUSES)?;
    share_replicas::reset_replica_status(&state.core, requester(ctx), id, status).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `reset_replica_state` (admin) `{"replica_state": "<s>"}` → 202. Manila stacks the
/// `reset_replica_state` decorator on the shared reset helper, which checks `reset_status`
/// too, so both rules must pass.
async fn reset_replica_state(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    value: &Value,
) -> ApiResult<Response> {
    ctx.authorize(state, "share_replica:reset_replica_state")?;
    ctx.authorize(state, "share_replica:reset_status")?;
    let replica_state = validated_state(value, "replica_state", &RESET_REPLICA_STATES)?;
    share_replicas::reset_replica_state(&state.core, requester(ctx), id, replica_state).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `force_delete` (admin) → 202: delete whatever the status.
async fn force_delete(state: &ApiState, ctx: &RequestContext, id: &str) -> ApiResult<Response> {
    ctx.authorize(state, "share_replica:force_delete")?;
    share_replicas::delete_replica(&state.core, requester(ctx), id, true).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---------------------------------------------------------------------------------------
// Replication history (shoal extension)
// ---------------------------------------------------------------------------------------

/// One sync record.
fn history_item(record: &ReplicationRecord) -> Value {
    json!({
        "id": record.id,
        "share_instance_id": record.share_instance_id,
        "source_instance_id": record.source_instance_id,
        "trigger": record.trigger,
        "started_at": manila_timestamp(record.started_at),
        "finished_at": manila_timestamp(record.finished_at),
        "source_point": manila_timestamp_opt(record.source_point),
        "version": record.version,
        "files_total": record.files_total,
        "bytes_total": record.bytes_total,
        "files_transferred": record.files_transferred,
        "bytes_transferred": record.bytes_transferred,
        "wire_bytes": record.wire_bytes,
        "files_deleted": record.files_deleted,
        "outcome": record.outcome,
        "detail": record.detail,
    })
}

/// `GET /v2/share-replicas/{id}/replication-history[?limit=N]` (admin): the replica's
/// sync records, newest first; `limit` defaults to
/// [`REPLICATION_HISTORY_LIMIT_DEFAULT`] and is capped at `max_limit`. Reachable exactly
/// when a replica show is.
pub async fn show_replication_history(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    ctx.require_experimental(EXPERIMENTAL_SINCE, GA_SINCE)?;
    ctx.authorize(&state, "share_replica:replication_history")?;
    let (limit, _) = limit_offset(params.get("limit").map(String::as_str), None)?;
    let limit = limit
        .filter(|l| *l > 0)
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(REPLICATION_HISTORY_LIMIT_DEFAULT)
        .min(state.config.max_limit);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let records =
        share_replicas::replication_history(&state.core, requester(&ctx), &id, limit).await?;
    let items: Vec<Value> = records.iter().map(history_item).collect();
    Ok(Json(json!({ "replication_history": items })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validated_state_follows_manila_texts() {
        let ok = json!({"status": "error"});
        assert_eq!(
            validated_state(&ok, "status", &RESET_STATUSES).ok(),
            Some("error")
        );
        for missing in [json!(null), json!({}), json!("error"), json!([1])] {
            let err = validated_state(&missing, "status", &RESET_STATUSES).unwrap_err();
            assert_eq!(err.message, "Must specify 'status'");
        }
        let err = validated_state(
            &json!({"replica_state": "available"}),
            "replica_state",
            &RESET_REPLICA_STATES,
        )
        .unwrap_err();
        assert_eq!(
            err.message,
            "Invalid state. Valid states: active, in_sync, out_of_sync, error."
        );
        let err = validated_state(&json!({"status": 5}), "status", &RESET_STATUSES).unwrap_err();
        assert!(err.message.starts_with("Invalid state. Valid states: "));
    }

    #[test]
    fn python_truthiness() {
        for falsy in [
            json!(null),
            json!(""),
            json!(0),
            json!(false),
            json!([]),
            json!({}),
        ] {
            assert!(!truthy(&falsy), "{falsy}");
        }
        for truthy_value in [
            json!("x"),
            json!(1),
            json!(true),
            json!([0]),
            json!({"a": 1}),
        ] {
            assert!(truthy(&truthy_value), "{truthy_value}");
        }
    }
}
