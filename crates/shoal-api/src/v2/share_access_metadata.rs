//! Access rule metadata (≥2.45; Manila's `share_access_metadata.py`):
//! `PUT /v2/share-access-rules/{access_id}/metadata` adds or overwrites keys and keeps the
//! others, answering 200 with the keys sent; `DELETE .../metadata/{key}` answers 200 with
//! an empty body. Reading is through the rule itself (`GET /v2/share-access-rules/{id}`
//! and the list, whose `metadata` filter matches these keys).
//!
//! Order of checks, as Manila's: version (404), the endpoint's policy
//! `share_access_metadata:update|delete` against the caller's project (403), the body's
//! shape (PUT: webob's bare 400 unless `metadata` is an object), then the rule as
//! `share_api.access_get` looks it up: policy `share:access_get` (403 "Policy doesn't allow
//! share:access_get to be performed."), the rule (404 "Resource could not be found.") and
//! its share (a private share of another project the caller may not `share:get`: the same
//! 404), and only then the keys and values (400) or the key to delete (404 "Share access
//! rule metadata does not exist.").
//!
//! Deliberate difference: Manila 23.0.1 looks the share up without `for_modification`, so a
//! member of another project may change the metadata of a rule on a *public* share. Here
//! that is 403 "Policy doesn't allow share:get to be performed.", as for `allow_access`
//! and `deny_access` on such a share.

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use shoal_core::share_access::{self as core_access, METADATA_RULE_NOT_FOUND};
use shoal_store::AccessRuleRow;

use super::share_access::visible_share;
use crate::ApiState;
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult, GENERIC_400};
use crate::routes::Routes;

/// The endpoints exist from this version (`@wsgi.Controller.api_version('2.45')`).
const METADATA_SINCE: (u32, u32) = (2, 45);

/// Routes of this resource. Other methods on these paths answer `itemNotFound` (the
/// router's method fallback).
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .put(
            "/v2/share-access-rules/{id}/metadata",
            update_access_rule_metadata,
        )
        .delete(
            "/v2/share-access-rules/{id}/metadata/{key}",
            delete_access_rule_metadata_key,
        )
}

/// Version and endpoint policy, the first two checks of both calls.
fn gate(state: &ApiState, ctx: &RequestContext, rule: &str) -> ApiResult<()> {
    ctx.require_version(METADATA_SINCE, None)?;
    ctx.authorize(state, rule)
}

/// `_assert_access_exists`: the rule, if the caller may see it and change its share.
async fn load_rule(state: &ApiState, ctx: &RequestContext, id: &str) -> ApiResult<AccessRuleRow> {
    // `share_api.access_get` checks this policy itself; its refusal names the rule.
    ctx.authorize(state, "share:access_get").map_err(|_| {
        ApiError::forbidden("Policy doesn't allow share:access_get to be performed.")
    })?;
    let not_found = || ApiError::not_found(METADATA_RULE_NOT_FOUND);
    let rule = core_access::find_rule(&state.core, id)
        .await?
        .ok_or_else(not_found)?;
    visible_share(state, ctx, &rule.share_id.to_string(), true)
        .await?
        .ok_or_else(not_found)?;
    Ok(rule)
}

/// `PUT /v2/share-access-rules/{id}/metadata` `{"metadata": {...}}` → 200
/// `{"metadata": <the keys sent>}`; keys not sent are kept.
pub async fn update_access_rule_metadata(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    gate(&state, &ctx, "share_access_metadata:update")?;
    // `is_valid_body(body, 'metadata')`: a body with a `metadata` object.
    let metadata = body
        .object("metadata")
        .ok_or_else(|| ApiError::bad_request(GENERIC_400))?;
    let rule = load_rule(&state, &ctx, &id).await?;
    let sent = core_access::validate_metadata_update(metadata)?;
    core_access::set_access_rule_metadata(&state.core, &rule, &sent).await?;
    // Manila answers with what was sent, not with the resulting set.
    Ok(Json(json!({ "metadata": sent })))
}

/// `DELETE /v2/share-access-rules/{id}/metadata/{key}` → **200** with an empty body.
pub async fn delete_access_rule_metadata_key(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    gate(&state, &ctx, "share_access_metadata:delete")?;
    let rule = load_rule(&state, &ctx, &id).await?;
    core_access::delete_access_rule_metadata_key(&state.core, &rule, &key).await?;
    Ok(StatusCode::OK.into_response())
}
