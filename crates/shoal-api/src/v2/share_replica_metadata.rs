//! Replica metadata (≥2.95, never experimental): Manila's `MetadataController` as mixed
//! into `v2/share_replicas.py` (spec replication.md §5.9). Metadata is stored per replica,
//! independent of the share's.
//!
//! Order of checks, as Manila's: version (404), the endpoint's policy against the caller's
//! project (403), the body and its keys and values (400), then the replica lookup (404
//! "Share_replica not found.") followed by `share_replica:show` against the replica's
//! owner: a refusal hides a private share's replica (404) and forbids changing a public
//! one's (403). Deliberate difference: a `metadata` value that is not an object is a 400
//! where Manila fails with a 500.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use shoal_core::share_replicas::{self, ReplicaWithMetadata};
use shoal_core::shares::{self as core_shares, MALFORMED_BODY};

use super::share_replicas::requester;
use crate::ApiState;
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult, GENERIC_400};
use crate::routes::Routes;

/// The metadata endpoints exist from this version.
const METADATA_SINCE: (u32, u32) = (2, 95);
/// Manila's text for an invisible replica (`'%s not found.' % resource_name.capitalize()`).
pub const REPLICA_NOT_FOUND: &str = "Share_replica not found.";
/// Manila's text for an unknown key (the exception escapes to the outer fault wrapper,
/// which prefixes the class name).
pub const ITEM_NOT_FOUND: &str = "MetadataItemNotFound: Metadata item is not found.";

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get(
            "/v2/share-replicas/{id}/metadata",
            list_share_replica_metadata,
        )
        .post(
            "/v2/share-replicas/{id}/metadata",
            create_share_replica_metadata,
        )
        .put(
            "/v2/share-replicas/{id}/metadata",
            replace_share_replica_metadata,
        )
        .get(
            "/v2/share-replicas/{id}/metadata/{key}",
            show_share_replica_metadata_item,
        )
        .post(
            "/v2/share-replicas/{id}/metadata/{key}",
            update_share_replica_metadata_item,
        )
        .delete(
            "/v2/share-replicas/{id}/metadata/{key}",
            delete_share_replica_metadata_item,
        )
}

/// Version and endpoint policy, the first two checks of every call.
fn gate(state: &ApiState, ctx: &RequestContext, rule: &str) -> ApiResult<()> {
    ctx.require_version(METADATA_SINCE, None)?;
    ctx.authorize(state, rule)
}

/// `MetadataController._get_resource` for replicas: the replica (with its metadata) if the
/// caller may see it; `share_replica:show` is then evaluated against the owning project.
async fn load_replica(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    for_modification: bool,
) -> ApiResult<ReplicaWithMetadata> {
    let replica = share_replicas::get_replica_for_metadata(&state.core, requester(ctx), id).await?;
    let share_id = replica.replica.share_id.to_string();
    let share = core_shares::find_share(&state.core, &share_id)
        .await?
        .ok_or_else(|| ApiError::not_found(REPLICA_NOT_FOUND))?;
    let allowed = ctx
        .authorize_target(state, "share_replica:show", &share.row.project_id)
        .is_ok();
    match (allowed, share.row.is_public, for_modification) {
        (true, _, _) | (false, true, false) => Ok(replica),
        (false, false, _) => Err(ApiError::not_found(REPLICA_NOT_FOUND)),
        (false, true, true) => Err(ApiError::forbidden(
            "Policy doesn't allow share_replica:show to be performed.",
        )),
    }
}

/// The validated `metadata` object of a collection body. `null` counts as empty (Manila's
/// `check_metadata_properties(None)`); a body without the key is "Malformed request body".
fn metadata_body(body: &JsonBody) -> ApiResult<BTreeMap<String, String>> {
    let empty = Map::new();
    let metadata = match body.0.as_ref().and_then(|b| b.as_object()?.get("metadata")) {
        Some(Value::Object(map)) => map,
        Some(Value::Null) => &empty,
        _ => return Err(ApiError::bad_request(MALFORMED_BODY)),
    };
    Ok(core_shares::validate_metadata(metadata)?)
}

/// `GET /v2/share-replicas/{id}/metadata` → `{"metadata": {...}}`.
pub async fn list_share_replica_metadata(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    gate(&state, &ctx, "share_replica:get_metadata")?;
    let replica = load_replica(&state, &ctx, &id, false).await?;
    Ok(Json(json!({ "metadata": replica.metadata })))
}

/// `GET /v2/share-replicas/{id}/metadata/{key}` → `{"meta": {key: value}}`.
pub async fn show_share_replica_metadata_item(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    gate(&state, &ctx, "share_replica:get_metadata")?;
    let replica = load_replica(&state, &ctx, &id, false).await?;
    let value = replica
        .metadata
        .get(&key)
        .cloned()
        .ok_or_else(|| ApiError::not_found(ITEM_NOT_FOUND))?;
    let mut item = Map::new();
    item.insert(key, Value::String(value));
    Ok(Json(json!({ "meta": item })))
}

/// `POST /v2/share-replicas/{id}/metadata`: adds or overwrites the keys sent and keeps the
/// others; answers the keys sent.
pub async fn create_share_replica_metadata(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    set_metadata(&state, &ctx, &id, &body, false).await
}

/// `PUT /v2/share-replicas/{id}/metadata`: the metadata becomes exactly the keys sent
/// (`null` clears it and answers `{}`).
pub async fn replace_share_replica_metadata(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    set_metadata(&state, &ctx, &id, &body, true).await
}

/// POST (merge) and PUT (`replace_all`) of the whole metadata: the answer is the keys sent.
async fn set_metadata(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    body: &JsonBody,
    replace_all: bool,
) -> ApiResult<Json<Value>> {
    gate(state, ctx, "share_replica:update_metadata")?;
    let metadata = metadata_body(body)?;
    let replica = load_replica(state, ctx, id, true).await?;
    let result =
        share_replicas::set_replica_metadata(&state.core, &replica.replica, &metadata, replace_all)
            .await?;
    Ok(Json(json!({ "metadata": result })))
}

/// `POST /v2/share-replicas/{id}/metadata/{key}` with `{"metadata": {key: value}}`: sets
/// that one key and answers it.
pub async fn update_share_replica_metadata_item(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, key)): Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    gate(&state, &ctx, "share_replica:update_metadata")?;
    let item = match body.0.as_ref().and_then(|b| b.as_object()?.get("metadata")) {
        Some(Value::Object(map)) => core_shares::validate_metadata(map)?,
        // Manila tests `key in None` and fails with webob's bare 400.
        Some(Value::Null) => return Err(ApiError::bad_request(GENERIC_400)),
        _ => return Err(ApiError::bad_request(MALFORMED_BODY)),
    };
    if !item.contains_key(&key) {
        return Err(ApiError::bad_request("Request body and URI mismatch"));
    }
    if item.len() > 1 {
        return Err(ApiError::bad_request(
            "Request body contains too many items",
        ));
    }
    let replica = load_replica(&state, &ctx, &id, true).await?;
    share_replicas::set_replica_metadata(&state.core, &replica.replica, &item, false).await?;
    Ok(Json(json!({ "metadata": item })))
}

/// `DELETE /v2/share-replicas/{id}/metadata/{key}` → **200** with an empty body.
pub async fn delete_share_replica_metadata_item(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    gate(&state, &ctx, "share_replica:delete_metadata")?;
    let replica = load_replica(&state, &ctx, &id, true).await?;
    // Manila reads the item before deleting it; the core's own 404 covers a concurrent delete.
    if !replica.metadata.contains_key(&key) {
        return Err(ApiError::not_found(ITEM_NOT_FOUND));
    }
    share_replicas::delete_replica_metadata_key(&state.core, &replica.replica, &key).await?;
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_bodies() {
        let body = |v: Value| JsonBody(Some(v));
        assert_eq!(
            metadata_body(&body(json!({"metadata": {"a": "1"}}))).unwrap(),
            BTreeMap::from([("a".to_owned(), "1".to_owned())])
        );
        assert!(
            metadata_body(&body(json!({"metadata": null})))
                .unwrap()
                .is_empty()
        );
        for bad in [
            json!({}),
            json!({"meta": {}}),
            json!({"metadata": ["a"]}),
            json!({"metadata": "a"}),
            json!([]),
        ] {
            let err = metadata_body(&body(bad.clone())).unwrap_err();
            assert_eq!(err.message, MALFORMED_BODY, "{bad}");
        }
        assert_eq!(
            metadata_body(&JsonBody(None)).unwrap_err().message,
            MALFORMED_BODY
        );
        let err = metadata_body(&body(json!({"metadata": {"a": ""}}))).unwrap_err();
        assert_eq!(err.message, "Metadata property value is blank.");
    }
}
