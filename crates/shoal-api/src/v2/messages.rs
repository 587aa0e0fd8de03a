//! User messages (≥2.37; Manila's `api/v2/messages.py` and `views/messages.py`):
//! `GET /v2/messages`, `GET /v2/messages/{id}`, `DELETE /v2/messages/{id}` (204).
//!
//! Non-admins see their own project's messages only; another project's message is 404.
//! Filters: `request_id`, `resource_type` (may repeat), `resource_id`, `action_id`,
//! `detail_id`, `message_level`, and from 2.52 `created_since`/`created_before`; order by
//! `sort_key` (default `created_at`) and `sort_dir` (`desc` unless anything else is given);
//! paging by `limit`/`offset`, with a `messages_links` next link when a page is exactly `limit` long.

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde_json::{Value, json};
use shoal_core::messages::{self as core_messages, Caller, MessageQuery, SortDir};
use shoal_store::MessageRow;
use shoal_types::time::manila_timestamp;

use crate::ApiState;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult};
use crate::routes::Routes;
use crate::versions::base_url;

/// Manila's `osapi_max_limit`: the largest page.
const MAX_LIMIT: usize = 1000;
/// Manila's `DB_MAX_INT`, the largest accepted `offset`.
const DB_MAX_INT: usize = 0x7FFF_FFFF;

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get("/v2/messages", list_messages)
        .get("/v2/messages/{id}", show_message)
        .delete("/v2/messages/{id}", delete_message)
}

fn caller(ctx: &RequestContext) -> Caller<'_> {
    Caller {
        project_id: ctx.project_id(),
        is_admin: ctx.is_admin,
    }
}

/// One message (`ViewBuilder.detail`); links use the caller's project, as Manila's do.
fn message_view(base: &str, ctx: &RequestContext, message: &MessageRow) -> Value {
    let project = ctx.project_id();
    json!({
        "id": message.id,
        "project_id": message.project_id,
        "action_id": message.action_id,
        "detail_id": message.detail_id,
        "message_level": message.message_level,
        "created_at": manila_timestamp(message.created_at),
        "expires_at": manila_timestamp(message.expires_at),
        "request_id": message.request_id,
        "links": [
            {"rel": "self", "href": format!("{base}/v2/{project}/messages/{}", message.id)},
            {"rel": "bookmark", "href": format!("{base}/{project}/messages/{}", message.id)},
        ],
        "resource_type": message.resource_type,
        "resource_id": message.resource_id,
        "user_message": core_messages::user_message(&message.action_id, &message.detail_id),
    })
}

/// Python's `repr()` of a query value in schema errors (plain strings only).
fn quoted(value: &str) -> String {
    if value.contains('\'') && !value.contains('"') {
        format!("\"{value}\"")
    } else {
        format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
    }
}

/// A `non_negative_integer` query parameter (`^[0-9]*$`, at least one character).
fn non_negative(name: &str, value: &str) -> ApiResult<usize> {
    let invalid = |reason: String| {
        ApiError::bad_request(format!(
            "Invalid input for query parameters {name}. Value: {value}. {reason}"
        ))
    };
    if value.is_empty() {
        return Err(invalid(format!("{} is too short", quoted(value))));
    }
    if !value.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(format!(
            "{} does not match '^[0-9]*$'",
            quoted(value)
        )));
    }
    // All digits: only an overflow can fail, and that is past every bound anyway.
    Ok(value.parse::<usize>().unwrap_or(usize::MAX))
}

/// An ISO 8601 instant: RFC 3339, or a naive date-time (UTC), or a date.
fn parse_isotime(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            return Some(at.and_utc());
        }
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|at| at.and_utc())
}

fn last<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

/// Builds the store query from the request's parameters.
fn message_query(ctx: &RequestContext, pairs: &[(String, String)]) -> ApiResult<MessageQuery> {
    let owned = |key: &str| last(pairs, key).map(str::to_owned);
    let mut query = MessageQuery {
        request_id: owned("request_id"),
        resource_types: pairs
            .iter()
            .filter(|(k, _)| k == "resource_type")
            .map(|(_, v)| v.clone())
            .collect(),
        resource_id: owned("resource_id"),
        action_id: owned("action_id"),
        detail_id: owned("detail_id"),
        message_level: owned("message_level"),
        sort_key: owned("sort_key"),
        sort_dir: match last(pairs, "sort_dir") {
            None | Some("desc") => SortDir::Desc,
            Some(_) => SortDir::Asc,
        },
        ..MessageQuery::default()
    };
    if let Some(limit) = last(pairs, "limit") {
        query.limit = Some(non_negative("limit", limit)?.min(MAX_LIMIT));
    }
    if let Some(offset) = last(pairs, "offset") {
        let offset = non_negative("offset", offset)?;
        if offset > DB_MAX_INT {
            return Err(ApiError::bad_request(format!(
                "offset must be <= {DB_MAX_INT}"
            )));
        }
        query.offset = offset;
    }
    if ctx.at_least(2, 52) {
        for key in ["created_since", "created_before"] {
            let Some(raw) = last(pairs, key) else {
                continue;
            };
            let at = parse_isotime(raw).ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid input for query parameters {key}. Value: {raw}. {} is not a 'date-time'",
                    quoted(raw)
                ))
            })?;
            if key == "created_since" {
                query.created_since = Some(at);
            } else {
                query.created_before = Some(at);
            }
        }
    }
    Ok(query)
}

/// Percent-encodes a query component.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `GET /v2/messages` → `{"messages": [...]}` (plus `messages_links` on a full page).
pub async fn list_messages(
    State(state): State<ApiState>,
    ctx: RequestContext,
    headers: HeaderMap,
    Query(pairs): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 37), None)?;
    ctx.authorize(&state, "message:get_all")?;
    let query = message_query(&ctx, &pairs)?;
    let messages = core_messages::list_messages(&state.core, caller(&ctx), &query).await?;
    let base = base_url(&headers);
    let items: Vec<Value> = messages
        .iter()
        .map(|m| message_view(&base, &ctx, m))
        .collect();
    let mut body = json!({"messages": items});
    // `_get_collection_links`: a next link when a nonzero `limit` was asked for and the
    // page is exactly that long.
    let asked = last(&pairs, "limit").and_then(|l| l.parse::<usize>().ok());
    if let Some(last_message) = messages.last()
        && asked.is_some_and(|limit| limit != 0 && limit == messages.len())
    {
        let mut params: Vec<String> = pairs
            .iter()
            .filter(|(k, _)| k != "marker")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        params.push(format!("marker={}", last_message.id));
        let href = format!(
            "{base}/v2/{}/messages?{}",
            ctx.project_id(),
            params.join("&")
        );
        body["messages_links"] = json!([{"rel": "next", "href": href}]);
    }
    Ok(Json(body))
}

/// `GET /v2/messages/{id}` → `{"message": {...}}`.
pub async fn show_message(
    State(state): State<ApiState>,
    ctx: RequestContext,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.require_version((2, 37), None)?;
    ctx.authorize(&state, "message:get")?;
    let message = core_messages::get_message(&state.core, caller(&ctx), &id).await?;
    Ok(Json(
        json!({"message": message_view(&base_url(&headers), &ctx, &message)}),
    ))
}

/// `DELETE /v2/messages/{id}` → 204.
pub async fn delete_message(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.require_version((2, 37), None)?;
    ctx.authorize(&state, "message:delete")?;
    core_messages::delete_message(&state.core, caller(&ctx), &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
