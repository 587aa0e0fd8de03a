//! `/v2/share-access-rules` (≥2.45; Manila's `share_accesses.py`): the list of a share's
//! rules and one rule. Policy `share_access_rule:index|get` first, then Manila's
//! `share:access_get_all|access_get` inside the lookups.
//!
//! `PUT /v2/share-access-rules/{id}` (≥2.88) changes a rule's level: the rule's mappings
//! go to `queued_to_update` and the share workers re-apply it with the new level.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde_json::{Value, json};
use shoal_core::share_access::{self as core_access, RuleFilter};
use shoal_core::share_types::py_str;

use super::share_access::{access_list_view, access_view, visible_share};
use crate::ApiState;
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult, GENERIC_400};
use crate::routes::Routes;

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get("/v2/share-access-rules", list_access_rules)
        // Routed by Manila (`collection={"detail": "GET"}`), but without a handler.
        .get("/v2/share-access-rules/detail", || async {
            ApiError::generic_not_found()
        })
        .get("/v2/share-access-rules/{id}", show_access_rule)
        .put("/v2/share-access-rules/{id}", update_access_rule)
}

/// The last value of a query parameter (repeated keys keep the last one).
fn last<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// `GET /v2/share-access-rules?share_id=<id>` → `{"access_list": [...]}`.
pub async fn list_access_rules(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 45), None)?;
    ctx.authorize(&state, "share_access_rule:index")?;
    let Some(share_id) = last(&pairs, "share_id") else {
        return Err(ApiError::bad_request(
            "The field 'share_id' has to be specified.",
        ));
    };
    let metadata = match last(&pairs, "metadata") {
        Some(raw) => core_access::parse_metadata_filter(raw)?,
        None => Default::default(),
    };
    if ctx.at_least(2, 82) {
        core_access::validate_search_opts(
            last(&pairs, "access_type"),
            last(&pairs, "access_to"),
            last(&pairs, "access_level"),
        )?;
    }
    let share = visible_share(&state, &ctx, share_id, false)
        .await?
        .ok_or_else(|| ApiError::bad_request(format!("Share {share_id} not found.")))?;
    ctx.authorize(&state, "share:access_get_all")?;
    // Manila passes every query parameter to `exact_filter`, which keeps the legal ones.
    let owned = |key: &str| last(&pairs, key).map(str::to_owned);
    let filter = RuleFilter {
        id: owned("id"),
        access_type: owned("access_type"),
        access_to: owned("access_to"),
        access_level: owned("access_level"),
        access_key: owned("access_key"),
        metadata,
    };
    let rules = core_access::list_access_rules(&state.core, &share, &filter).await?;
    Ok(Json(access_list_view(&ctx, &rules, &share.instances)))
}

/// `GET /v2/share-access-rules/{id}` → `{"access": {...}}` (with `share_id`).
pub async fn show_access_rule(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 45), None)?;
    ctx.authorize(&state, "share_access_rule:get")?;
    ctx.authorize(&state, "share:access_get")?;
    let not_found = || ApiError::not_found(format!("Share access rule {id} not found."));
    let rule = core_access::find_rule(&state.core, &id)
        .await?
        .ok_or_else(not_found)?;
    let share = visible_share(&state, &ctx, &rule.share_id.to_string(), false)
        .await?
        .ok_or_else(not_found)?;
    Ok(Json(
        json!({"access": access_view(&ctx, &rule, &share.instances, true)}),
    ))
}

/// `PUT /v2/share-access-rules/{id}` (≥2.88) `{"update_access": {"access_level": "ro"}}`
/// → 200 `{"access": {...}}`. Manila's order: policy `share_access_rule:update`, the body
/// (webob's bare 400 without an `update_access` object), the level (400), the rule (404),
/// then an unchanged level answers at once; otherwise the rule goes back through the
/// update_access pipeline with its new level.
pub async fn update_access_rule(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 88), None)?;
    ctx.authorize(&state, "share_access_rule:update")?;
    let Some(fields) = body
        .0
        .as_ref()
        .and_then(Value::as_object)
        .and_then(|b| b.get("update_access"))
        .and_then(Value::as_object)
    else {
        return Err(ApiError::bad_request(GENERIC_400));
    };
    let access_level = match fields.get("access_level") {
        Some(level) if core_access::truthy(level) => level,
        _ => {
            return Err(ApiError::bad_request(
                "Invalid input. Missing 'access_level' in update request.",
            ));
        }
    };
    let Some(access_level) = access_level
        .as_str()
        .filter(|l| core_access::ACCESS_LEVELS.contains(l))
    else {
        return Err(ApiError::bad_request(format!(
            "Invalid or unsupported share access level: {}.",
            py_str(access_level)
        )));
    };
    // `share_api.access_get`: its policy, the rule, the share it belongs to.
    ctx.authorize(&state, "share:access_get")?;
    let not_found = || ApiError::not_found(format!("Share access rule {id} not found."));
    let rule = core_access::find_rule(&state.core, &id)
        .await?
        .ok_or_else(not_found)?;
    let share = visible_share(&state, &ctx, &rule.share_id.to_string(), false)
        .await?
        .ok_or_else(not_found)?;
    let rule = if rule.access_level == access_level {
        rule
    } else {
        core_access::update_access_level(&state.core, &share, &rule, access_level).await?
    };
    Ok(Json(
        json!({"access": access_view(&ctx, &rule, &share.instances, true)}),
    ))
}
