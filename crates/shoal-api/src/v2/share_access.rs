//! Access rule actions of `POST /v2/shares/{id}/action` (Manila's `shares.py`
//! `_allow_access`, `_deny_access`, `_access_list`) and the access rule views
//! (`views/share_accesses.py`), shared with [`super::share_access_rules`].
//!
//! The shares action dispatcher owns the action keys (`os-allow_access` below 2.7,
//! `allow_access` from 2.7, ...) and hands the value under the key to [`allow_access`],
//! [`deny_access`] or [`access_list`]. Each checks policy first, then looks the share up as
//! Manila's `share_api.get` does, then hands over to [`shoal_core::share_access`].
//!
//! Views by microversion: `access_key` from 2.21, `created_at`/`updated_at` from 2.33,
//! `metadata` from 2.45; below 2.28 a rule's `state` is the share's `access_rules_status`
//! (`syncing` shown as `new`), from 2.28 the rule's own aggregate state.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use shoal_core::share_access::{self as core_access, AllowAccess, RuleFilter};
use shoal_core::share_types::py_str;
use shoal_core::shares::{self as core_shares, Share};
use shoal_store::{AccessRuleRow, ShareInstanceRow};
use shoal_types::time::{manila_timestamp, manila_timestamp_opt};

use crate::ApiState;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult, GENERIC_400};

/// The 404 of an action on a share that does not exist or is not visible: Manila's bare
/// `exception.NotFound` escaping the controller (`FaultWrapper` prefixes the class name).
pub const SHARE_NOT_FOUND_IN_ACTION: &str = "NotFound: Resource could not be found.";
/// The 404 of a deny naming an unknown rule or a rule of another share.
pub const RULE_NOT_FOUND_IN_DENY: &str = "Resource could not be found.";

/// Looks a share up the way Manila's `share_api.get` does: `Ok(None)` when it does not
/// exist or is another project's private share the caller may not `share:get`. With
/// `for_modification` ([23.0.1] `get(..., for_modification=True)`), a public share the
/// caller may not `share:get` is 403 rather than readable.
pub async fn visible_share(
    state: &ApiState,
    ctx: &RequestContext,
    share_id: &str,
    for_modification: bool,
) -> ApiResult<Option<Share>> {
    let Some(share) = core_shares::find_share(&state.core, share_id).await? else {
        return Ok(None);
    };
    if ctx
        .authorize_target(state, "share:get", &share.row.project_id)
        .is_ok()
    {
        return Ok(Some(share));
    }
    match (share.row.is_public, for_modification) {
        (false, _) => Ok(None),
        (true, false) => Ok(Some(share)),
        (true, true) => Err(ApiError::forbidden(
            "Policy doesn't allow share:get to be performed.",
        )),
    }
}

/// The `state` of a rule at the request's version.
fn shown_state(
    ctx: &RequestContext,
    rule: &AccessRuleRow,
    instances: &[ShareInstanceRow],
) -> Value {
    if ctx.at_least(2, 28) {
        json!(core_access::rule_state(rule))
    } else {
        json!(core_access::legacy_rule_state(instances))
    }
}

/// One rule (`ViewBuilder.view` with `share_id`, `summary_view` without).
pub fn access_view(
    ctx: &RequestContext,
    rule: &AccessRuleRow,
    instances: &[ShareInstanceRow],
    with_share_id: bool,
) -> Value {
    let mut view = Map::new();
    view.insert("id".to_owned(), json!(rule.id));
    if with_share_id {
        view.insert("share_id".to_owned(), json!(rule.share_id));
    }
    view.insert("access_level".to_owned(), json!(rule.access_level));
    view.insert("access_to".to_owned(), json!(rule.access_to));
    view.insert("access_type".to_owned(), json!(rule.access_type));
    view.insert("state".to_owned(), shown_state(ctx, rule, instances));
    if ctx.at_least(2, 21) {
        view.insert("access_key".to_owned(), json!(rule.access_key));
    }
    if ctx.at_least(2, 33) {
        view.insert(
            "created_at".to_owned(),
            json!(manila_timestamp(rule.created_at)),
        );
        view.insert(
            "updated_at".to_owned(),
            json!(manila_timestamp_opt(rule.updated_at)),
        );
    }
    if ctx.at_least(2, 45) {
        view.insert("metadata".to_owned(), json!(rule.metadata));
    }
    Value::Object(view)
}

/// `{"access_list": [summary, ...]}`.
pub fn access_list_view(
    ctx: &RequestContext,
    rules: &[AccessRuleRow],
    instances: &[ShareInstanceRow],
) -> Value {
    let items: Vec<Value> = rules
        .iter()
        .map(|rule| access_view(ctx, rule, instances, false))
        .collect();
    json!({"access_list": items})
}

fn action_body(body: Value) -> ApiResult<Map<String, Value>> {
    match body {
        Value::Object(map) => Ok(map),
        _ => Err(ApiError::bad_request(GENERIC_400)),
    }
}

fn truthy(value: Option<&Value>) -> bool {
    value.is_some_and(core_access::truthy)
}

/// `allow_access` (`os-allow_access` below 2.7) → 200 `{"access": {...}}`.
pub async fn allow_access(
    state: &ApiState,
    ctx: &RequestContext,
    share_id: &str,
    body: Value,
) -> ApiResult<Response> {
    ctx.authorize(state, "share:allow_access")?;
    let data = action_body(body)?;
    let share = visible_share(state, ctx, share_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found(SHARE_NOT_FOUND_IN_ACTION))?;
    if share.row.is_soft_deleted {
        return Err(ApiError::forbidden(format!(
            "Cannot allow access for share '{share_id}' since it has been soft deleted."
        )));
    }
    if ctx.at_least(2, 82) {
        let locking = truthy(data.get("lock_visibility")) || truthy(data.get("lock_deletion"));
        if !locking && truthy(data.get("lock_reason")) {
            return Err(ApiError::bad_request(
                "Lock reason can only be specified when locking the visibility or the deletion of an access rule.",
            ));
        }
        if locking {
            // Resource locks do not exist in shoal; a lock silently not placed would let
            // the rule be seen or deleted against the caller's intent.
            return Err(ApiError::bad_request(
                "Access rule locks are not supported by this service.",
            ));
        }
    }
    let (Some(access_type), Some(access_to)) = (data.get("access_type"), data.get("access_to"))
    else {
        return Err(ApiError::bad_request(GENERIC_400));
    };
    let request = AllowAccess {
        access_type,
        access_to,
        access_level: data.get("access_level"),
        metadata: if ctx.at_least(2, 45) {
            data.get("metadata")
        } else {
            None
        },
        enable_ceph: ctx.at_least(2, 13),
        enable_ipv6: ctx.at_least(2, 38),
        allow_on_error_status: ctx.at_least(2, 28),
        allow_on_error_state: ctx.at_least(2, 74),
    };
    let rule = core_access::allow_access(&state.core, &share, request).await?;
    // Below 2.28 the view shows the share's status, which the allow just changed.
    let instances = if ctx.at_least(2, 28) {
        share.instances
    } else {
        state
            .core
            .store
            .list_share_instances(share.row.id)
            .await
            .map_err(shoal_core::CoreError::from)?
    };
    let view = access_view(ctx, &rule, &instances, true);
    Ok(Json(json!({"access": view})).into_response())
}

/// `deny_access` (`os-deny_access` below 2.7) `{"access_id": ...}` → 202.
pub async fn deny_access(
    state: &ApiState,
    ctx: &RequestContext,
    share_id: &str,
    body: Value,
) -> ApiResult<Response> {
    ctx.authorize(state, "share:deny_access")?;
    let data = action_body(body)?;
    let access_id = data
        .get("access_id")
        .map(py_str)
        .ok_or_else(|| ApiError::bad_request(GENERIC_400))?;
    // No resource locks exist, so `unrestrict` (≥2.82) has nothing to lift.
    let share = visible_share(state, ctx, share_id, true)
        .await?
        .ok_or_else(|| ApiError::not_found(SHARE_NOT_FOUND_IN_ACTION))?;
    if share.row.is_soft_deleted {
        return Err(ApiError::forbidden(format!(
            "Cannot deny access for share '{share_id}' since it has been soft deleted."
        )));
    }
    ctx.authorize(state, "share:access_get")?;
    let rule = core_access::find_rule(&state.core, &access_id)
        .await?
        .filter(|rule| rule.share_id == share.row.id)
        .ok_or_else(|| ApiError::not_found(RULE_NOT_FOUND_IN_DENY))?;
    core_access::deny_access(&state.core, &share, &rule, ctx.at_least(2, 74)).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `access_list` (2.7–2.44; `os-access_list` below 2.7) → 200 `{"access_list": [...]}`.
/// Gone from 2.45 (`GET /v2/share-access-rules`).
pub async fn access_list(
    state: &ApiState,
    ctx: &RequestContext,
    share_id: &str,
    _body: Value,
) -> ApiResult<Response> {
    ctx.require_version((2, 0), Some((2, 44)))?;
    let share = visible_share(state, ctx, share_id, false)
        .await?
        .ok_or_else(|| ApiError::not_found(SHARE_NOT_FOUND_IN_ACTION))?;
    ctx.authorize(state, "share:access_get_all")?;
    let rules = core_access::list_access_rules(&state.core, &share, &RuleFilter::default()).await?;
    Ok(Json(access_list_view(ctx, &rules, &share.instances)).into_response())
}
