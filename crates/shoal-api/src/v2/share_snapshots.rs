//! Share snapshots: Manila's `v2/share_snapshots.py` (list, detail, show, create, update,
//! delete, the `reset_status`/`force_delete`/`unmanage`/`allow_access`/`deny_access`
//! actions, `manage`, the access list and snapshot metadata), with the views of
//! `views/share_snapshots.py`; `share_snapshot_export_locations.py`; and the admin
//! `share_snapshot_instances.py` with its export locations.
//!
//! Each handler checks, in Manila's order: the microversion (404), the policy against the
//! caller's project, the body, then the snapshot (404 for another project's, as Manila's
//! project-scoped lookup), and hands over to [`shoal_core::snapshots`].

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use shoal_core::share_types::py_str;
use shoal_core::shares as core_shares;
use shoal_core::snapshots::{self, CreateSnapshot, ManageSnapshot, Snapshot};
use shoal_store::{SnapshotInstanceRow, SnapshotUpdate, StoreError};
use shoal_types::time::{manila_timestamp, manila_timestamp_opt};
use uuid::Uuid;

use super::shares::LinkBase;
use crate::ApiState;
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult};
use crate::pagination::{limit_offset, limited};
use crate::routes::Routes;

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get("/v2/snapshots", list_snapshots)
        .post("/v2/snapshots", create_snapshot)
        .get("/v2/snapshots/detail", list_snapshots_detail)
        .post("/v2/snapshots/manage", manage_snapshot)
        .get("/v2/snapshots/{id}", show_snapshot)
        .put("/v2/snapshots/{id}", update_snapshot)
        .delete("/v2/snapshots/{id}", delete_snapshot)
        .post("/v2/snapshots/{id}/action", snapshot_action)
        .get("/v2/snapshots/{id}/access-list", access_list)
        .get("/v2/snapshots/{id}/export-locations", list_export_locations)
        .get(
            "/v2/snapshots/{id}/export-locations/{el}",
            show_export_location,
        )
        .get("/v2/snapshots/{id}/metadata", list_metadata)
        .post("/v2/snapshots/{id}/metadata", create_metadata)
        .put("/v2/snapshots/{id}/metadata", replace_metadata)
        .get("/v2/snapshots/{id}/metadata/{key}", show_metadata_item)
        .put("/v2/snapshots/{id}/metadata/{key}", update_metadata_item)
        .post("/v2/snapshots/{id}/metadata/{key}", update_metadata_item)
        .delete("/v2/snapshots/{id}/metadata/{key}", delete_metadata_item)
        .get("/v2/snapshot-instances", list_instances)
        .get("/v2/snapshot-instances/detail", list_instances_detail)
        .get("/v2/snapshot-instances/{id}", show_instance)
        .post("/v2/snapshot-instances/{id}/action", instance_action)
        .get(
            "/v2/snapshot-instances/{id}/export-locations",
            list_instance_export_locations,
        )
        .get(
            "/v2/snapshot-instances/{id}/export-locations/{el}",
            show_instance_export_location,
        )
}

/// Manage, unmanage and `provider_location` in views from here.
const MANAGE_SINCE: (u32, u32) = (2, 12);
/// `user_id` and `project_id` in views from here.
const IDS_SINCE: (u32, u32) = (2, 17);
/// Snapshot instances from here.
const INSTANCES_SINCE: (u32, u32) = (2, 19);
/// Revert from here.
pub const REVERT_SINCE: (u32, u32) = (2, 27);
/// Mountable snapshots (access rules, export locations) from here.
const MOUNTABLE_SINCE: (u32, u32) = (2, 32);
/// Snapshot metadata from here.
const METADATA_SINCE: (u32, u32) = (2, 73);

/// The snapshot `id` if the caller may see it (its project's, or any for admins), else
/// Manila's `ShareSnapshotNotFound` 404.
pub async fn load_snapshot(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
) -> ApiResult<Snapshot> {
    snapshots::find_snapshot(&state.core, id)
        .await?
        .filter(|s| ctx.is_admin || s.row.project_id == ctx.project_id())
        .ok_or_else(|| ApiError::from(snapshots::not_found(id)))
}

// ---------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------

fn summary(links: &LinkBase, snapshot: &Snapshot) -> Value {
    json!({
        "id": snapshot.row.id,
        "name": snapshot.row.name,
        "links": links.links("snapshots", &snapshot.row.id.to_string()),
    })
}

fn detail(ctx: &RequestContext, links: &LinkBase, snapshot: &Snapshot) -> Value {
    let row = &snapshot.row;
    let mut item = json!({
        "id": row.id,
        "share_id": row.share_id,
        "share_size": row.share_size,
        "created_at": manila_timestamp(row.created_at),
        "status": snapshot.status(),
        "name": row.name,
        "description": row.description,
        "size": row.size_gb,
        "share_proto": row.share_proto,
        "links": links.links("snapshots", &row.id.to_string()),
    });
    if ctx.at_least(MANAGE_SINCE.0, MANAGE_SINCE.1) && ctx.is_admin {
        item["provider_location"] = json!(snapshot.provider_location());
    }
    if ctx.at_least(IDS_SINCE.0, IDS_SINCE.1) {
        item["user_id"] = json!(row.user_id);
        item["project_id"] = json!(row.project_id);
    }
    if ctx.at_least(METADATA_SINCE.0, METADATA_SINCE.1) {
        item["metadata"] = json!(row.metadata);
    }
    item
}

fn detail_body(ctx: &RequestContext, links: &LinkBase, snapshot: &Snapshot) -> Value {
    json!({ "snapshot": detail(ctx, links, snapshot) })
}

// ---------------------------------------------------------------------------------------
// List
// ---------------------------------------------------------------------------------------

/// Manila's non-admin search options (`_get_snapshots_search_options`), by query name.
const USER_FILTERS: [&str; 8] = [
    "name",
    "status",
    "share_id",
    "size",
    "name~",
    "description~",
    "description",
    "metadata",
];

/// The value a snapshot is sorted by; `None` for an unknown key.
fn sort_value(snapshot: &Snapshot, key: &str) -> Option<(i64, String)> {
    let row = &snapshot.row;
    let text = |v: Option<&str>| (0, v.unwrap_or_default().to_owned());
    Some(match key {
        "created_at" => (row.created_at.timestamp_micros(), String::new()),
        "updated_at" => (
            row.updated_at.map_or(i64::MIN, |t| t.timestamp_micros()),
            String::new(),
        ),
        "id" => text(Some(&row.id.to_string())),
        "name" | "display_name" => text(row.name.as_deref()),
        "description" | "display_description" => text(row.description.as_deref()),
        "status" => text(Some(snapshot.status())),
        "size" => (row.size_gb, String::new()),
        "share_size" => (row.share_size, String::new()),
        "share_id" => text(Some(&row.share_id.to_string())),
        "share_proto" => text(Some(&row.share_proto)),
        "project_id" => text(Some(&row.project_id)),
        "user_id" => text(Some(&row.user_id)),
        "progress" => text(snapshot.progress()),
        _ => return None,
    })
}

fn matches(snapshot: &Snapshot, key: &str, value: &str) -> ApiResult<bool> {
    let row = &snapshot.row;
    let contains = |field: Option<&str>| {
        field.is_some_and(|f| f.to_lowercase().contains(&value.to_lowercase()))
    };
    Ok(match key {
        "name" => row.name.as_deref() == Some(value),
        "description" => row.description.as_deref() == Some(value),
        "name~" => contains(row.name.as_deref()),
        "description~" => contains(row.description.as_deref()),
        "status" => snapshot.status() == value,
        "share_id" => row.share_id.to_string() == value,
        "size" => row.size_gb.to_string() == value,
        "project_id" => row.project_id == value,
        "user_id" => row.user_id == value,
        "metadata" => {
            let wanted = core_shares::parse_dict_literal(value)
                .ok_or_else(|| ApiError::bad_request("Invalid value for metadata filter."))?;
            wanted
                .iter()
                .all(|(k, v)| row.metadata.get(k).is_some_and(|m| m == v))
        }
        _ => true,
    })
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum ListView {
    Summary,
    Detail,
}

async fn list(
    state: &ApiState,
    ctx: &RequestContext,
    links: &LinkBase,
    params: &HashMap<String, String>,
    view: ListView,
) -> ApiResult<Json<Value>> {
    ctx.authorize(state, "share_snapshot:get_all_snapshots")?;
    let (limit, offset) = limit_offset(
        params.get("limit").map(String::as_str),
        params.get("offset").map(String::as_str),
    )?;
    let all_tenants = params
        .get("all_tenants")
        .is_some_and(|v| core_shares_bool(v))
        && ctx
            .authorize(state, "share_snapshot:list_all_projects")
            .is_ok();
    let project = if all_tenants {
        None
    } else {
        Some(ctx.project_id())
    };
    let mut found = snapshots::list_snapshots(&state.core, project, None).await?;
    for (key, value) in params {
        let key = key.as_str();
        let allowed = if ctx.is_admin {
            USER_FILTERS.contains(&key) || matches!(key, "project_id" | "user_id")
        } else {
            USER_FILTERS.contains(&key)
        };
        if !allowed {
            continue;
        }
        // Before 2.36 the inexact filters and `description` do not exist; metadata only
        // from 2.73.
        if matches!(key, "name~" | "description~" | "description") && !ctx.at_least(2, 36) {
            continue;
        }
        if key == "metadata" && !ctx.at_least(METADATA_SINCE.0, METADATA_SINCE.1) {
            continue;
        }
        let mut kept = Vec::with_capacity(found.len());
        for snapshot in found {
            if matches(&snapshot, key, value)? {
                kept.push(snapshot);
            }
        }
        found = kept;
    }
    let sort_key = params.get("sort_key").map_or("created_at", String::as_str);
    let sort_dir = params.get("sort_dir").map_or("desc", String::as_str);
    if !matches!(sort_dir, "asc" | "desc") {
        return Err(ApiError::bad_request(format!(
            "Invalid input received: Wrong sorting data provided: sort key is '{sort_key}' and sort direction is '{sort_dir}'."
        )));
    }
    if found
        .first()
        .is_some_and(|s| sort_value(s, sort_key).is_none())
        || sort_value_known(sort_key).is_none()
    {
        return Err(ApiError::bad_request(format!(
            "Invalid input received: Wrong sorting key provided - '{sort_key}'."
        )));
    }
    found.sort_by(|a, b| {
        let ordering = sort_value(a, sort_key).cmp(&sort_value(b, sort_key));
        let ordering = ordering.then_with(|| a.row.id.cmp(&b.row.id));
        if sort_dir == "desc" {
            ordering.reverse()
        } else {
            ordering
        }
    });
    let count = found.len();
    let page = limited(found, limit, offset, state.config.max_limit);
    let items: Vec<Value> = page
        .iter()
        .map(|s| match view {
            ListView::Summary => summary(links, s),
            ListView::Detail => detail(ctx, links, s),
        })
        .collect();
    let mut body = json!({ "snapshots": items });
    if ctx.at_least(2, 79)
        && params
            .get("with_count")
            .is_some_and(|v| core_shares_bool(v))
    {
        body["count"] = json!(count);
    }
    Ok(Json(body))
}

/// Whether `key` is a sort key at all (checked even when the list is empty).
fn sort_value_known(key: &str) -> Option<()> {
    matches!(
        key,
        "created_at"
            | "updated_at"
            | "id"
            | "name"
            | "display_name"
            | "description"
            | "display_description"
            | "status"
            | "size"
            | "share_size"
            | "share_id"
            | "share_proto"
            | "project_id"
            | "user_id"
            | "progress"
    )
    .then_some(())
}

/// oslo `bool_from_string` (lenient) of a query value.
fn core_shares_bool(value: &str) -> bool {
    matches!(
        value.trim().to_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

/// `GET /v2/snapshots`.
pub async fn list_snapshots(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    list(&state, &ctx, &links, &params, ListView::Summary).await
}

/// `GET /v2/snapshots/detail`.
pub async fn list_snapshots_detail(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    list(&state, &ctx, &links, &params, ListView::Detail).await
}

/// `GET /v2/snapshots/{id}`.
pub async fn show_snapshot(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share_snapshot:get_snapshot")?;
    let snapshot = load_snapshot(&state, &ctx, &id).await?;
    Ok(Json(detail_body(&ctx, &links, &snapshot)))
}

// ---------------------------------------------------------------------------------------
// Create, update, delete
// ---------------------------------------------------------------------------------------

/// Name or description of a body: `name` (checked as `name`) wins over `display_name`.
fn display_field(
    fields: &Map<String, Value>,
    short: &str,
    long: &str,
) -> ApiResult<Option<String>> {
    let value = match fields.get(short) {
        Some(v) => Some(v),
        None => fields.get(long),
    };
    let text = match value {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(py_str(other)),
    };
    let checked_as = if fields.contains_key(short) {
        short
    } else {
        long
    };
    core_shares::check_display_field_length(text.as_deref(), checked_as)?;
    Ok(text)
}

/// `POST /v2/snapshots` → 202 with the new snapshot.
pub async fn create_snapshot(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    body: JsonBody,
) -> ApiResult<Response> {
    // Manila's `create` has no `@authorize`: the share is looked up first (another
    // project's is 404 to everyone there) and `share:create_snapshot` is checked on it below.
    let fields = body
        .object("snapshot")
        .cloned()
        .ok_or_else(|| ApiError::unprocessable("Unable to process the contained instructions"))?;
    let share_id = fields.get("share_id").map(py_str).unwrap_or_default();
    let share = core_shares::find_visible_share(&state.core, &share_id, |row| {
        ctx.authorize_target(&state, "share:get", &row.project_id)
            .is_ok()
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("Share {share_id} could not be found.")))?;
    if !share.capability(shoal_core::share_types::SNAPSHOT_SUPPORT) {
        return Err(ApiError::unprocessable(format!(
            "Snapshots cannot be created for share '{share_id}' since it does not have that capability."
        )));
    }
    let name = display_field(&fields, "name", "display_name")?;
    let description = display_field(&fields, "description", "display_description")?;
    let metadata = if ctx.at_least(METADATA_SINCE.0, METADATA_SINCE.1) {
        snapshots::validate_metadata(fields.get("metadata"))?
    } else {
        Default::default()
    };
    ctx.authorize_target(&state, "share:create_snapshot", &share.row.project_id)?;
    let request = CreateSnapshot {
        project_id: ctx.project_id().to_owned(),
        user_id: ctx.identity.user_id.clone(),
        name,
        description,
        metadata,
    };
    let snapshot = snapshots::create_snapshot(&state.core, &share, request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(detail_body(&ctx, &links, &snapshot)),
    )
        .into_response())
}

/// `PUT /v2/snapshots/{id}`: Manila's `valid_update_keys` are `display_name` and
/// `display_description` only (other keys, `name` included, are ignored).
pub async fn update_snapshot(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share:snapshot_update")?;
    let fields = body
        .object("snapshot")
        .cloned()
        .ok_or_else(|| ApiError::unprocessable("Unable to process the contained instructions"))?;
    let field = |key: &str| -> ApiResult<Option<Option<String>>> {
        let Some(value) = fields.get(key) else {
            return Ok(None);
        };
        let text = match value {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => Some(py_str(other)),
        };
        core_shares::check_display_field_length(text.as_deref(), key)?;
        Ok(Some(text))
    };
    let update = SnapshotUpdate {
        name: field("display_name")?,
        description: field("display_description")?,
        size_gb: None,
    };
    let snapshot = load_snapshot(&state, &ctx, &id).await?;
    let updated = snapshots::update_snapshot(&state.core, &snapshot, update).await?;
    Ok(Json(detail_body(&ctx, &links, &updated)))
}

/// `DELETE /v2/snapshots/{id}` → 202.
pub async fn delete_snapshot(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.authorize(&state, "share:delete_snapshot")?;
    let snapshot = load_snapshot(&state, &ctx, &id).await?;
    snapshots::delete_snapshot(&state.core, &snapshot, false).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------

/// `POST /v2/snapshots/{id}/action`: `os-` prefixed admin actions below 2.7, plain from
/// 2.7; `unmanage` from 2.12; `allow_access`/`deny_access` from 2.32.
pub async fn snapshot_action(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let (action, value) = body.action()?;
    let legacy = !ctx.at_least(2, 7);
    let admin_action = match action.strip_prefix("os-") {
        Some(name) if legacy => Some(name),
        None if !legacy => Some(action.as_str()),
        _ => None,
    };
    match (admin_action, action.as_str()) {
        (Some("reset_status"), _) => reset_status(&state, &ctx, &id, &value).await,
        (Some("force_delete"), _) => force_delete(&state, &ctx, &id).await,
        (_, "unmanage") => {
            ctx.require_version(MANAGE_SINCE, None)?;
            unmanage(&state, &ctx, &id).await
        }
        (_, "allow_access") => {
            ctx.require_version(MOUNTABLE_SINCE, None)?;
            allow_access(&state, &ctx, &id, &value).await
        }
        (_, "deny_access") => {
            ctx.require_version(MOUNTABLE_SINCE, None)?;
            deny_access(&state, &ctx, &id, &value).await
        }
        _ => Err(ApiError::bad_request(format!(
            "There is no such action: {action}"
        ))),
    }
}

/// `AdminActionsMixin.validate_update` of `status`.
fn reset_status_value<'a>(value: &'a Value, allowed: &[&str]) -> ApiResult<&'a str> {
    let Some(given) = value.as_object().and_then(|v| v.get("status")) else {
        return Err(ApiError::bad_request("Must specify 'status'"));
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

async fn reset_status(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    value: &Value,
) -> ApiResult<Response> {
    ctx.authorize(state, "share_snapshot:reset_status")?;
    let status = reset_status_value(value, &snapshots::RESET_STATUSES)?;
    let snapshot = load_snapshot(state, ctx, id).await?;
    snapshots::reset_status(&state.core, &snapshot, status).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn force_delete(state: &ApiState, ctx: &RequestContext, id: &str) -> ApiResult<Response> {
    ctx.authorize(state, "share_snapshot:force_delete")?;
    let snapshot = load_snapshot(state, ctx, id).await?;
    snapshots::delete_snapshot(&state.core, &snapshot, true).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn unmanage(state: &ApiState, ctx: &RequestContext, id: &str) -> ApiResult<Response> {
    ctx.authorize(state, "share_snapshot:unmanage_snapshot")?;
    let snapshot = load_snapshot(state, ctx, id).await?;
    let share = core_shares::find_share(&state.core, &snapshot.row.share_id.to_string())
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Share {} could not be found.",
                snapshot.row.share_id
            ))
        })?;
    snapshots::unmanage_snapshot(&state.core, &share, &snapshot).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// Manila's `_validate_parameters` (400 flavour for the access actions).
fn required_text<'a>(
    fields: &'a Map<String, Value>,
    key: &str,
    status: StatusCode,
) -> ApiResult<&'a str> {
    let fail = |msg: String| Err(ApiError::new(status, msg));
    match fields.get(key) {
        None => fail(format!("Required parameter {key} not found.")),
        Some(Value::String(s)) if !s.is_empty() => Ok(s),
        Some(Value::String(_) | Value::Null | Value::Bool(false)) => {
            fail(format!("Required parameter {key} is empty."))
        }
        Some(_) => fail(format!("Parameter {key} must be a string.")),
    }
}

/// 400 unless the snapshot's share can mount snapshots.
async fn check_mountable(state: &ApiState, snapshot: &Snapshot) -> ApiResult<()> {
    let share = core_shares::find_share(&state.core, &snapshot.row.share_id.to_string())
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Share {} could not be found.",
                snapshot.row.share_id
            ))
        })?;
    if !share.capability(shoal_core::share_types::MOUNT_SNAPSHOT_SUPPORT) {
        return Err(ApiError::bad_request(format!(
            "Cannot control access to the snapshot {} since the parent share {} does not support mounting its snapshots.",
            snapshot.row.id, share.row.id
        )));
    }
    Ok(())
}

/// 400 when the snapshot's share makes its snapshots inherit the share's rules (Manila's
/// `_check_snapshot_inherit_share_access_support`, for allow and deny).
async fn check_not_inherited(state: &ApiState, snapshot: &Snapshot) -> ApiResult<()> {
    let share = core_shares::find_share(&state.core, &snapshot.row.share_id.to_string())
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "Share {} could not be found.",
                snapshot.row.share_id
            ))
        })?;
    if share.capability(shoal_core::share_types::SNAPSHOT_INHERIT_SHARE_ACCESS_SUPPORT) {
        return Err(ApiError::bad_request(format!(
            "Cannot modify access rules for the snapshot {} since the parent share {} has snapshot_inherit_share_access_support enabled. Snapshot access rules are inherited from the base share.",
            snapshot.row.id, share.row.id
        )));
    }
    Ok(())
}

fn access_view(rule: &shoal_store::SnapshotAccessRuleRow) -> Value {
    json!({
        "id": rule.id,
        "access_type": rule.access_type,
        "access_to": rule.access_to,
        "state": snapshots::access_state(rule),
    })
}

async fn allow_access(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    value: &Value,
) -> ApiResult<Response> {
    ctx.authorize(state, "share_snapshot:allow_access")?;
    let Some(fields) = value.as_object() else {
        return Err(ApiError::bad_request(
            "Access data not found in request body.",
        ));
    };
    let access_type = required_text(fields, "access_type", StatusCode::BAD_REQUEST)?;
    let access_to = required_text(fields, "access_to", StatusCode::BAD_REQUEST)?;
    // Snapshots take no cephx rules (Manila calls `validate_access` without enable_ceph).
    shoal_core::share_access::validate_access(
        &Value::String(access_type.to_owned()),
        &Value::String(access_to.to_owned()),
        false,
        ctx.at_least(2, 38),
    )?;
    let snapshot = load_snapshot(state, ctx, id).await?;
    check_mountable(state, &snapshot).await?;
    check_not_inherited(state, &snapshot).await?;
    let rule = snapshots::allow_access(&state.core, &snapshot, access_type, access_to).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "snapshot_access": access_view(&rule) })),
    )
        .into_response())
}

async fn deny_access(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    value: &Value,
) -> ApiResult<Response> {
    ctx.authorize(state, "share_snapshot:deny_access")?;
    let Some(fields) = value.as_object() else {
        return Err(ApiError::bad_request(
            "Access data not found in request body.",
        ));
    };
    let access_id = required_text(fields, "access_id", StatusCode::BAD_REQUEST)?;
    let snapshot = load_snapshot(state, ctx, id).await?;
    check_mountable(state, &snapshot).await?;
    check_not_inherited(state, &snapshot).await?;
    snapshots::deny_access(&state.core, &snapshot, access_id).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /v2/snapshots/{id}/access-list` (2.32+).
pub async fn access_list(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(MOUNTABLE_SINCE, None)?;
    ctx.authorize(&state, "share_snapshot:access_list")?;
    let snapshot = load_snapshot(&state, &ctx, &id).await?;
    check_mountable(&state, &snapshot).await?;
    let rules = state
        .core
        .store
        .list_snapshot_access_rules(snapshot.row.id)
        .await
        .map_err(shoal_core::CoreError::from)?;
    let items: Vec<Value> = rules.iter().map(access_view).collect();
    Ok(Json(json!({ "snapshot_access_list": items })))
}

/// `POST /v2/snapshots/manage` (2.12+, admin) → 202.
pub async fn manage_snapshot(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    body: JsonBody,
) -> ApiResult<Response> {
    ctx.require_version(MANAGE_SINCE, None)?;
    ctx.authorize(&state, "share_snapshot:manage_snapshot")?;
    let fields = body
        .object("snapshot")
        .cloned()
        .ok_or_else(|| ApiError::unprocessable("Snapshot entity not found in request body."))?;
    let share_id = required_text(&fields, "share_id", StatusCode::UNPROCESSABLE_ENTITY)?.to_owned();
    let provider_location = required_text(
        &fields,
        "provider_location",
        StatusCode::UNPROCESSABLE_ENTITY,
    )?
    .to_owned();
    let text = |k: &str| fields.get(k).and_then(Value::as_str).map(str::to_owned);
    let name = text("display_name").or_else(|| text("name"));
    let description = text("display_description").or_else(|| text("description"));
    let metadata = if ctx.at_least(METADATA_SINCE.0, METADATA_SINCE.1) {
        snapshots::validate_metadata(fields.get("metadata"))?
    } else {
        Default::default()
    };
    let driver_options = match fields.get("driver_options") {
        Some(Value::Object(map)) => map.iter().map(|(k, v)| (k.clone(), py_str(v))).collect(),
        _ => Default::default(),
    };
    let share = core_shares::find_share(&state.core, &share_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("Share {share_id} could not be found.")))?;
    let request = ManageSnapshot {
        create: CreateSnapshot {
            project_id: share.row.project_id.clone(),
            user_id: ctx.identity.user_id.clone(),
            name,
            description,
            metadata,
        },
        provider_location,
        driver_options,
    };
    let snapshot = snapshots::manage_snapshot(&state.core, &share, request).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(detail_body(&ctx, &links, &snapshot)),
    )
        .into_response())
}

// ---------------------------------------------------------------------------------------
// Export locations (2.32+)
// ---------------------------------------------------------------------------------------

/// Manila's `views/share_snapshot_export_locations.py`: admins also get the instance id and
/// the admin-only flag; the single-item view (`detail`) adds the timestamps.
fn export_location_view(
    ctx: &RequestContext,
    links: &LinkBase,
    location: &shoal_store::SnapshotExportLocationRow,
    detail: bool,
) -> Value {
    let mut item = json!({
        "id": location.id,
        "path": location.path,
        "links": links.links("share_snapshot_export_locations", &location.id.to_string()),
    });
    if ctx.is_admin {
        item["share_snapshot_instance_id"] = json!(location.snapshot_instance_id);
        item["is_admin_only"] = json!(location.is_admin_only);
    }
    if detail {
        item["created_at"] = json!(manila_timestamp(location.created_at));
        item["updated_at"] = json!(manila_timestamp_opt(location.updated_at));
    }
    item
}

/// Export locations of a snapshot: those of its `available` instances on the active
/// replica (or all instances), without admin-only ones for non-admins (Manila's
/// `ShareSnapshot.export_locations`).
async fn snapshot_locations(
    state: &ApiState,
    ctx: &RequestContext,
    snapshot: &Snapshot,
) -> ApiResult<Vec<shoal_store::SnapshotExportLocationRow>> {
    let mut out = Vec::new();
    let active = snapshot.instance().map(|i| i.id);
    for instance in &snapshot.row.instances {
        if instance.status != snapshots::STATUS_AVAILABLE
            || (snapshot.row.instances.len() > 1 && Some(instance.id) != active)
        {
            continue;
        }
        let locations = state
            .core
            .store
            .list_snapshot_export_locations(instance.id)
            .await
            .map_err(shoal_core::CoreError::from)?;
        out.extend(
            locations
                .into_iter()
                .filter(|l| ctx.is_admin || !l.is_admin_only),
        );
    }
    Ok(out)
}

/// `GET /v2/snapshots/{id}/export-locations`.
pub async fn list_export_locations(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(MOUNTABLE_SINCE, None)?;
    ctx.authorize(&state, "share_snapshot_export_location:index")?;
    let snapshot = load_snapshot(&state, &ctx, &id).await?;
    let items: Vec<Value> = snapshot_locations(&state, &ctx, &snapshot)
        .await?
        .iter()
        .map(|l| export_location_view(&ctx, &links, l, false))
        .collect();
    Ok(Json(json!({ "share_snapshot_export_locations": items })))
}

/// `GET /v2/snapshots/{id}/export-locations/{el}`.
pub async fn show_export_location(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    Path((id, el)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(MOUNTABLE_SINCE, None)?;
    ctx.authorize(&state, "share_snapshot_export_location:show")?;
    let snapshot = load_snapshot(&state, &ctx, &id).await?;
    let location = snapshot_locations(&state, &ctx, &snapshot)
        .await?
        .into_iter()
        .find(|l| l.id.to_string() == el)
        .ok_or_else(|| ApiError::not_found(format!("Export location {el} could not be found.")))?;
    Ok(Json(
        json!({ "share_snapshot_export_location": export_location_view(&ctx, &links, &location, true) }),
    ))
}

// ---------------------------------------------------------------------------------------
// Metadata (2.73+)
// ---------------------------------------------------------------------------------------

fn metadata_object(body: &JsonBody, key: &str, null_ok: bool) -> ApiResult<Map<String, Value>> {
    match body.0.as_ref().and_then(|b| b.get(key)) {
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(Value::Null) if null_ok => Ok(Map::new()),
        _ => Err(ApiError::bad_request(core_shares::MALFORMED_BODY)),
    }
}

async fn set_metadata(
    state: &ApiState,
    snapshot: &Snapshot,
    metadata: &Map<String, Value>,
    replace_all: bool,
) -> ApiResult<std::collections::BTreeMap<String, String>> {
    let valid = core_shares::validate_metadata(metadata)?;
    match state
        .core
        .store
        .set_snapshot_metadata(snapshot.row.id, &valid, replace_all, state.core.now())
        .await
    {
        Ok(result) => Ok(result),
        Err(StoreError::NotFound(_)) => {
            Err(snapshots::not_found(&snapshot.row.id.to_string()).into())
        }
        Err(err) => Err(shoal_core::CoreError::from(err).into()),
    }
}

/// `GET /v2/snapshots/{id}/metadata`.
pub async fn list_metadata(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(METADATA_SINCE, None)?;
    ctx.authorize(&state, "share_snapshot:get_metadata")?;
    let snapshot = load_snapshot(&state, &ctx, &id).await?;
    Ok(Json(json!({ "metadata": snapshot.row.metadata })))
}

/// `GET /v2/snapshots/{id}/metadata/{key}`.
pub async fn show_metadata_item(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(METADATA_SINCE, None)?;
    ctx.authorize(&state, "share_snapshot:get_metadata")?;
    let snapshot = load_snapshot(&state, &ctx, &id).await?;
    let value =
        snapshot.row.metadata.get(&key).ok_or_else(|| {
            ApiError::not_found("MetadataItemNotFound: Metadata item is not found.")
        })?;
    Ok(Json(json!({ "meta": { key: value } })))
}

/// `POST /v2/snapshots/{id}/metadata`: upserts the keys sent.
pub async fn create_metadata(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    write_metadata(&state, &ctx, &id, &body, false).await
}

/// `PUT /v2/snapshots/{id}/metadata`: the metadata becomes exactly the keys sent.
pub async fn replace_metadata(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    write_metadata(&state, &ctx, &id, &body, true).await
}

/// The `POST` (upsert) and `PUT` (`replace`) of a snapshot's whole metadata.
async fn write_metadata(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    body: &JsonBody,
    replace: bool,
) -> ApiResult<Json<Value>> {
    ctx.require_version(METADATA_SINCE, None)?;
    ctx.authorize(state, "share_snapshot:update_metadata")?;
    let metadata = metadata_object(body, "metadata", replace)?;
    let snapshot = load_snapshot(state, ctx, id).await?;
    let result = set_metadata(state, &snapshot, &metadata, replace).await?;
    Ok(Json(json!({ "metadata": result })))
}

/// `PUT`/`POST /v2/snapshots/{id}/metadata/{key}` with `{"meta": {key: value}}`.
pub async fn update_metadata_item(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, key)): Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.require_version(METADATA_SINCE, None)?;
    ctx.authorize(&state, "share_snapshot:update_metadata")?;
    let item = body
        .object("meta")
        .or_else(|| body.object("metadata"))
        .cloned()
        .ok_or_else(|| ApiError::bad_request(core_shares::MALFORMED_BODY))?;
    if !item.contains_key(&key) {
        return Err(ApiError::bad_request("Request body and URI mismatch"));
    }
    if item.len() > 1 {
        return Err(ApiError::bad_request(
            "Request body contains too many items",
        ));
    }
    let snapshot = load_snapshot(&state, &ctx, &id).await?;
    set_metadata(&state, &snapshot, &item, false).await?;
    Ok(Json(json!({ "meta": item })))
}

/// `DELETE /v2/snapshots/{id}/metadata/{key}` → 200.
pub async fn delete_metadata_item(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    ctx.require_version(METADATA_SINCE, None)?;
    ctx.authorize(&state, "share_snapshot:delete_metadata")?;
    let snapshot = load_snapshot(&state, &ctx, &id).await?;
    match state
        .core
        .store
        .delete_snapshot_metadata_key(snapshot.row.id, &key)
        .await
    {
        Ok(()) => Ok(StatusCode::OK.into_response()),
        Err(StoreError::NotFound(_)) => Err(ApiError::not_found(
            "MetadataItemNotFound: Metadata item is not found.",
        )),
        Err(err) => Err(shoal_core::CoreError::from(err).into()),
    }
}

// ---------------------------------------------------------------------------------------
// Snapshot instances (admin, 2.19+)
// ---------------------------------------------------------------------------------------

fn instance_summary(instance: &SnapshotInstanceRow) -> Value {
    json!({
        "id": instance.id,
        "snapshot_id": instance.snapshot_id,
        "status": instance.status,
    })
}

fn instance_detail(instance: &SnapshotInstanceRow, share_id: Option<Uuid>) -> Value {
    json!({
        "id": instance.id,
        "snapshot_id": instance.snapshot_id,
        "created_at": manila_timestamp(instance.created_at),
        "updated_at": manila_timestamp_opt(instance.updated_at),
        "status": instance.status,
        "share_id": share_id,
        "share_instance_id": instance.share_instance_id,
        "progress": instance.progress,
        "provider_location": instance.provider_location,
    })
}

async fn instances(
    state: &ApiState,
    params: &HashMap<String, String>,
) -> ApiResult<Vec<(SnapshotInstanceRow, Option<Uuid>)>> {
    let snapshot_id = match params.get("snapshot_id") {
        Some(id) => match Uuid::parse_str(id) {
            Ok(id) => Some(id),
            // No instance can belong to it.
            Err(_) => return Ok(Vec::new()),
        },
        None => None,
    };
    let rows = state
        .core
        .store
        .list_snapshot_instances(shoal_store::SnapshotInstanceFilter {
            snapshot_id,
            share_instance_id: None,
        })
        .await
        .map_err(shoal_core::CoreError::from)?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let share_id = state
            .core
            .store
            .get_share_instance(row.share_instance_id)
            .await
            .ok()
            .map(|s| s.share_id);
        out.push((row, share_id));
    }
    Ok(out)
}

/// `GET /v2/snapshot-instances`.
pub async fn list_instances(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(INSTANCES_SINCE, None)?;
    ctx.authorize(&state, "share_snapshot_instance:index")?;
    let items: Vec<Value> = instances(&state, &params)
        .await?
        .iter()
        .map(|(i, _)| instance_summary(i))
        .collect();
    Ok(Json(json!({ "snapshot_instances": items })))
}

/// `GET /v2/snapshot-instances/detail`.
pub async fn list_instances_detail(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(INSTANCES_SINCE, None)?;
    ctx.authorize(&state, "share_snapshot_instance:detail")?;
    let items: Vec<Value> = instances(&state, &params)
        .await?
        .iter()
        .map(|(i, s)| instance_detail(i, *s))
        .collect();
    Ok(Json(json!({ "snapshot_instances": items })))
}

async fn load_instance(state: &ApiState, id: &str) -> ApiResult<SnapshotInstanceRow> {
    let missing = || ApiError::not_found(format!("Snapshot instance {id} could not be found."));
    let uuid = Uuid::parse_str(id).map_err(|_| missing())?;
    match state.core.store.get_snapshot_instance(uuid).await {
        Ok(row) => Ok(row),
        Err(StoreError::NotFound(_)) => Err(missing()),
        Err(err) => Err(shoal_core::CoreError::from(err).into()),
    }
}

/// `GET /v2/snapshot-instances/{id}`.
pub async fn show_instance(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(INSTANCES_SINCE, None)?;
    ctx.authorize(&state, "share_snapshot_instance:show")?;
    let instance = load_instance(&state, &id).await?;
    let share_id = state
        .core
        .store
        .get_share_instance(instance.share_instance_id)
        .await
        .ok()
        .map(|s| s.share_id);
    Ok(Json(
        json!({ "snapshot_instance": instance_detail(&instance, share_id) }),
    ))
}

/// `POST /v2/snapshot-instances/{id}/action` with `reset_status` → 202.
pub async fn instance_action(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    ctx.require_version(INSTANCES_SINCE, None)?;
    let (action, value) = body.action()?;
    if action != "reset_status" {
        return Err(ApiError::bad_request(format!(
            "There is no such action: {action}"
        )));
    }
    ctx.authorize(&state, "share_snapshot_instance:reset_status")?;
    let status = reset_status_value(&value, &snapshots::RESET_STATUSES)?;
    let instance = load_instance(&state, &id).await?;
    snapshots::reset_instance_status(&state.core, &instance, status).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `GET /v2/snapshot-instances/{id}/export-locations` (admin, 2.32+).
pub async fn list_instance_export_locations(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(MOUNTABLE_SINCE, None)?;
    ctx.authorize(&state, "share_snapshot_instance_export_location:index")?;
    let instance = load_instance(&state, &id).await?;
    let locations = state
        .core
        .store
        .list_snapshot_export_locations(instance.id)
        .await
        .map_err(shoal_core::CoreError::from)?;
    let items: Vec<Value> = locations
        .iter()
        .map(|l| export_location_view(&ctx, &links, l, false))
        .collect();
    Ok(Json(json!({ "share_snapshot_export_locations": items })))
}

/// `GET /v2/snapshot-instances/{id}/export-locations/{el}` (admin, 2.32+).
pub async fn show_instance_export_location(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    Path((id, el)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.require_version(MOUNTABLE_SINCE, None)?;
    ctx.authorize(&state, "share_snapshot_instance_export_location:show")?;
    let instance = load_instance(&state, &id).await?;
    let location = state
        .core
        .store
        .list_snapshot_export_locations(instance.id)
        .await
        .map_err(shoal_core::CoreError::from)?
        .into_iter()
        .find(|l| l.id.to_string() == el)
        .ok_or_else(|| ApiError::not_found(format!("Export location {el} could not be found.")))?;
    Ok(Json(
        json!({ "share_snapshot_export_location": export_location_view(&ctx, &links, &location, true) }),
    ))
}

/// `revert` on a share (2.27+): `{"revert": {"snapshot_id": ...}}` → 202.
pub async fn revert(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    value: &Value,
) -> ApiResult<Response> {
    ctx.require_version(REVERT_SINCE, None)?;
    ctx.authorize(state, "share:revert_to_snapshot")?;
    let snapshot_id = value
        .as_object()
        .and_then(|v| v.get("snapshot_id"))
        .map(py_str)
        .ok_or_else(|| ApiError::bad_request("Malformed request body"))?;
    let share = core_shares::find_visible_share(&state.core, id, |row| {
        ctx.authorize_target(state, "share:get", &row.project_id)
            .is_ok()
    })
    .await?
    .ok_or_else(|| ApiError::not_found(format!("Share {id} could not be found.")))?;
    // Manila's `_revert` turns ShareSnapshotNotFound into a 400 with the same text.
    let snapshot = load_snapshot(state, ctx, &snapshot_id)
        .await
        .map_err(|err| match err.status {
            StatusCode::NOT_FOUND => ApiError::bad_request(err.message),
            _ => err,
        })?;
    snapshots::revert_to_snapshot(&state.core, &share, &snapshot).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}
