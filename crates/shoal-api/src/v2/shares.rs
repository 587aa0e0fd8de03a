//! Shares: Manila's `v2/shares.py` (create, list, show, update, delete, the share actions
//! and share metadata) and `views/shares.py`.
//!
//! Every handler checks the context policy first (Manila's `@authorize`), then the body's
//! shape, then looks the share up the way `share_api.get` does (another project's private
//! share is invisible unless `share:get` allows it), then checks the policies Manila
//! evaluates against the share itself, and hands over to [`shoal_core::shares`].
//!
//! Views follow the microversion table of api-basics §6.3; `host` and `share_server_id`
//! are added for `context_is_host_admin`. The instance-derived fields come from the
//! instance the share shows ([`shoal_core::shares::select_instance`]).
//!
//! Deliberate differences from Manila, each where Manila answers 500 or loops: malformed
//! bodies and query values are 400s; `marker` is honoured on lists (Manila ignores it,
//! so following its own `shares_links` never ends); `PUT .../metadata` with `null` clears
//! the metadata (as the api-ref documents); `POST`/`PUT .../metadata/{key}` read the item
//! from `metadata` or `meta`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use shoal_core::share_types::{self as core_types, bool_from_string, py_repr, py_str};
use shoal_core::shares::{
    self as core_shares, CreateShare, Extend, RESET_STATUSES, Share, ShareFilters, ShareListQuery,
    TASK_STATE_STATUSES,
};
use shoal_store::ShareUpdate;
use shoal_types::time::manila_timestamp;

use crate::ApiState;
use crate::body::JsonBody;
use crate::context::RequestContext;
use crate::error::{ApiError, ApiResult, GENERIC_400, GENERIC_404};
use crate::routes::Routes;
use crate::routing::UrlProject;

/// webob's 422 text, Manila's answer to a create or update body without a `share` object.
pub const UNPROCESSABLE: &str = "Unable to process the contained instructions";
/// Metadata keys only admins may set (Manila's `admin_only_metadata` default: the affinity
/// scheduler hints).
pub const ADMIN_ONLY_METADATA_KEYS: [&str; 2] =
    ["__affinity_same_host", "__affinity_different_host"];
/// Search options non-admins may use (`_get_share_search_options`), after renaming.
const NON_ADMIN_SEARCH_OPTIONS: [&str; 24] = [
    "display_name",
    "status",
    "share_server_id",
    "volume_type_id",
    "share_type_id",
    "snapshot_id",
    "host",
    "share_network_id",
    "is_public",
    "metadata",
    "extra_specs",
    "share_group_id",
    "share_group_snapshot_id",
    "export_location_id",
    "export_location_path",
    "display_name~",
    "display_description~",
    "display_description",
    "limit",
    "offset",
    "is_soft_deleted",
    "mount_point_name",
    "availability_zone",
    "encryption_key_ref",
];

/// Routes of this resource.
pub fn router() -> Routes<ApiState> {
    Routes::new()
        .get("/v2/shares", list_shares)
        .post("/v2/shares", create_share)
        // `detail` is a collection route in Manila; other methods on it reach the member
        // routes with that literal id.
        .get("/v2/shares/detail", list_shares_detail)
        .put("/v2/shares/detail", |s, c, l, b| {
            update_share(s, c, Path("detail".to_owned()), l, b)
        })
        .delete("/v2/shares/detail", |s, c| {
            delete_share(s, c, Path("detail".to_owned()))
        })
        .get("/v2/shares/{id}", show_share)
        .put("/v2/shares/{id}", update_share)
        .delete("/v2/shares/{id}", delete_share)
        .post("/v2/shares/{id}/action", share_action)
        .get("/v2/shares/{id}/metadata", list_share_metadata)
        .post("/v2/shares/{id}/metadata", create_share_metadata)
        .put("/v2/shares/{id}/metadata", replace_share_metadata)
        .get("/v2/shares/{id}/metadata/{key}", show_share_metadata_item)
        .post("/v2/shares/{id}/metadata/{key}", update_share_metadata_item)
        .put("/v2/shares/{id}/metadata/{key}", update_share_metadata_item)
        .delete("/v2/shares/{id}/metadata/{key}", delete_share_metadata_item)
}

// ---------------------------------------------------------------------------------------
// Links
// ---------------------------------------------------------------------------------------

/// Where the links of a view point: the base URL the client used, and the project segment
/// when the request URL carried one (Manila puts it in links only then).
#[derive(Debug, Clone)]
pub struct LinkBase {
    /// `http://host:port`.
    pub base: String,
    /// The URL's project segment, if any.
    pub project: Option<String>,
}

impl LinkBase {
    fn project_segment(&self) -> String {
        self.project
            .as_deref()
            .map(|p| format!("{p}/"))
            .unwrap_or_default()
    }

    /// `self` and `bookmark` links of an item of `collection`.
    pub fn links(&self, collection: &str, id: &str) -> Value {
        let p = self.project_segment();
        json!([
            {"rel": "self", "href": format!("{}/v2/{p}{collection}/{id}", self.base)},
            {"rel": "bookmark", "href": format!("{}/{p}{collection}/{id}", self.base)},
        ])
    }

    /// The `next` link of a page: the request's query with `marker` set to `last_id`.
    pub fn next(&self, collection: &str, query: &[(String, String)], last_id: &str) -> String {
        let mut pairs: Vec<(String, String)> = query
            .iter()
            .filter(|(k, _)| k != "marker")
            .cloned()
            .collect();
        pairs.push(("marker".to_owned(), last_id.to_owned()));
        let encoded: Vec<String> = pairs
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!(
            "{}/v2/{}{collection}?{}",
            self.base,
            self.project_segment(),
            encoded.join("&")
        )
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

impl<S: Send + Sync> FromRequestParts<S> for LinkBase {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self {
            base: crate::versions::base_url(&parts.headers),
            project: parts
                .extensions
                .get::<UrlProject>()
                .map(|UrlProject(p)| p.clone()),
        })
    }
}

// ---------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------

/// Export paths shown below 2.9 (`export_location`, `export_locations`).
type LegacyPaths = (Option<String>, Vec<String>);

/// Whether the caller gets `host` and `share_server_id` (`context_is_host_admin`).
pub(crate) fn is_host_admin(state: &ApiState, ctx: &RequestContext) -> bool {
    ctx.authorize(state, "context_is_host_admin").is_ok()
}

/// The share detail view at the request's microversion (`ViewBuilder.detail`).
fn detail_view(
    ctx: &RequestContext,
    host_admin: bool,
    links: &LinkBase,
    share: &Share,
    legacy: Option<&LegacyPaths>,
) -> Value {
    let row = &share.row;
    let instance = share.instance();
    let type_id = instance.and_then(|i| i.share_type_id);
    let type_name = share.share_type.as_ref().map(|t| t.name.clone());
    // Below 2.6 both keys carry the type's name (its id when the type is gone).
    let type_label = type_name
        .clone()
        .map(Value::String)
        .unwrap_or_else(|| json!(type_id));
    // Manila has no size until the driver told it (null while managing, 0 after a failed
    // manage); shoal keeps a placeholder in the row.
    let size = match instance.map(|i| i.status.as_str()) {
        Some(shoal_core::share_lifecycle::STATUS_MANAGE_STARTING) => Value::Null,
        Some(shoal_core::share_lifecycle::STATUS_MANAGE_ERROR) => json!(0),
        _ => json!(row.size_gb),
    };
    let mut view = json!({
        "id": row.id,
        "size": size,
        "availability_zone": instance.and_then(|i| i.availability_zone.clone()),
        "created_at": manila_timestamp(row.created_at),
        "status": instance.map(|i| i.status.clone()),
        "name": row.name,
        "description": row.description,
        "project_id": row.project_id,
        "snapshot_id": row.snapshot_id,
        "share_network_id": instance.and_then(|i| i.share_network_id),
        "share_proto": row.share_proto,
        "metadata": row.metadata,
        "share_type": type_label,
        "volume_type": type_label,
        "links": links.links("shares", &row.id.to_string()),
        "is_public": row.is_public,
    });
    if !ctx.at_least(2, 9) {
        let (first, paths) = legacy.cloned().unwrap_or_default();
        view["export_location"] = json!(first);
        view["export_locations"] = json!(paths);
    }
    if ctx.at_least(2, 2) {
        view["snapshot_support"] = json!(share.capability(core_types::SNAPSHOT_SUPPORT));
    }
    if ctx.at_least(2, 5) {
        view["task_state"] = json!(row.task_state);
    }
    if ctx.at_least(2, 6) {
        view["share_type"] = json!(type_id);
        view["share_type_name"] = json!(type_name);
    }
    if ctx.at_least(2, 10) {
        let status = share.access_rules_status();
        let shown = if !ctx.at_least(2, 28) && status == "syncing" {
            "out_of_sync"
        } else {
            status
        };
        view["access_rules_status"] = json!(shown);
    }
    if ctx.at_least(2, 11) {
        view["replication_type"] = json!(row.replication_type);
        view["has_replicas"] = json!(share.has_replicas());
    }
    if ctx.at_least(2, 16) {
        view["user_id"] = json!(row.user_id);
    }
    if ctx.at_least(2, 24) {
        view["create_share_from_snapshot_support"] =
            json!(share.capability(core_types::CREATE_SHARE_FROM_SNAPSHOT_SUPPORT));
    }
    if ctx.at_least(2, 27) {
        view["revert_to_snapshot_support"] =
            json!(share.capability(core_types::REVERT_TO_SNAPSHOT_SUPPORT));
    }
    if ctx.at_least(2, 31) {
        view["share_group_id"] = json!(row.share_group_id);
        view["source_share_group_snapshot_member_id"] = Value::Null;
    }
    if ctx.at_least(2, 32) {
        view["mount_snapshot_support"] =
            json!(share.capability(core_types::MOUNT_SNAPSHOT_SUPPORT));
    }
    if ctx.at_least(2, 54) {
        view["progress"] = json!(instance.and_then(|i| i.progress.clone()));
    } else if view["status"] == core_shares::STATUS_CREATING_FROM_SNAPSHOT {
        view["status"] = json!(core_shares::STATUS_CREATING);
    }
    if ctx.at_least(2, 69) {
        view["is_soft_deleted"] = json!(row.is_soft_deleted);
        view["scheduled_to_be_deleted_at"] =
            json!(row.scheduled_to_be_deleted_at.map(manila_timestamp));
    }
    if ctx.at_least(2, 80) {
        view["source_backup_id"] = Value::Null;
    }
    if ctx.at_least(2, 90) {
        view["encryption_key_ref"] = Value::Null;
    }
    if ctx.at_least(2, 99) {
        view["snapshot_inherit_share_access_support"] =
            json!(share.capability(core_types::SNAPSHOT_INHERIT_SHARE_ACCESS_SUPPORT));
    }
    if host_admin {
        view["share_server_id"] = json!(instance.and_then(|i| i.share_server_id));
        view["host"] = json!(instance.map(|i| i.host.clone()));
    }
    view
}

/// The summary view of a list item.
fn summary_view(links: &LinkBase, share: &Share) -> Value {
    json!({
        "id": share.row.id,
        "name": share.row.name,
        "links": links.links("shares", &share.row.id.to_string()),
    })
}

/// The paths of the pre-2.9 views, read only when the version shows them.
async fn legacy_paths(
    state: &ApiState,
    ctx: &RequestContext,
    share: &Share,
) -> ApiResult<Option<LegacyPaths>> {
    if ctx.at_least(2, 9) {
        return Ok(None);
    }
    Ok(Some(
        core_shares::legacy_export_paths(&state.core, share).await?,
    ))
}

/// `{"share": <detail>}`.
pub(crate) async fn share_response(
    state: &ApiState,
    ctx: &RequestContext,
    links: &LinkBase,
    share: &Share,
) -> ApiResult<Json<Value>> {
    let legacy = legacy_paths(state, ctx, share).await?;
    let view = detail_view(
        ctx,
        is_host_admin(state, ctx),
        links,
        share,
        legacy.as_ref(),
    );
    Ok(Json(json!({ "share": view })))
}

// ---------------------------------------------------------------------------------------
// Lookups and policies
// ---------------------------------------------------------------------------------------

/// A policy refused against the share itself (`PolicyNotAuthorized` escaping Manila's
/// controller).
pub(crate) fn policy_not_allowed(rule: &str) -> ApiError {
    ApiError::forbidden(format!("Policy doesn't allow {rule} to be performed."))
}

/// Enforces `rule` with the share's project as target.
pub(crate) fn authorize_share(
    state: &ApiState,
    ctx: &RequestContext,
    rule: &str,
    share: &Share,
) -> ApiResult<()> {
    ctx.authorize_target(state, rule, &share.row.project_id)
        .map_err(|_| policy_not_allowed(rule))
}

/// Manila's `share_api.get`: the share if it exists and is public or allowed by
/// `share:get` for its project; otherwise 404 with `not_found`.
pub(crate) async fn load_share(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    not_found: &str,
) -> ApiResult<Share> {
    core_shares::find_visible_share(&state.core, id, |row| {
        ctx.authorize_target(state, "share:get", &row.project_id)
            .is_ok()
    })
    .await?
    .ok_or_else(|| ApiError::not_found(not_found))
}

/// oslo's strict `bool_from_string` error text.
fn unrecognized_bool(value: &Value) -> String {
    format!(
        "Unrecognized value '{}', acceptable values are: '0', '1', 'f', 'false', 'n', 'no', 'off', 'on', 't', 'true', 'y', 'yes'",
        py_str(value)
    )
}

/// `common.validate_public_share_policy`: parses `is_public` and refuses `true` unless
/// `rule` allows it.
pub(crate) fn public_share_policy(
    state: &ApiState,
    ctx: &RequestContext,
    value: &Value,
    rule: &str,
) -> ApiResult<bool> {
    let is_public =
        bool_from_string(value).ok_or_else(|| ApiError::bad_request(unrecognized_bool(value)))?;
    if is_public && ctx.authorize(state, rule).is_err() {
        return Err(ApiError::forbidden(
            "User is not authorized to set 'is_public' to True in the request.",
        ));
    }
    Ok(is_public)
}

/// Python truthiness of a JSON value.
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

/// An optional text field: absent or falsy is `None`, a string is itself, anything else
/// is a malformed body.
fn optional_text(fields: &Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    match fields.get(key) {
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        Some(value) if truthy(value) => Err(ApiError::bad_request(GENERIC_400)),
        _ => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------
// Create, show, list, update, delete
// ---------------------------------------------------------------------------------------

/// `POST /v2/shares` → **200** with the new share (`creating`).
pub async fn create_share(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    // From 2.65 the body is checked before the policy.
    if ctx.at_least(2, 65) && body.object("share").is_none() {
        return Err(ApiError::unprocessable(UNPROCESSABLE));
    }
    ctx.authorize(&state, "share:create")?;
    let fields = body
        .object("share")
        .ok_or_else(|| ApiError::unprocessable(UNPROCESSABLE))?;
    let is_public = match fields.get("is_public") {
        None => false,
        Some(value) => public_share_policy(&state, &ctx, value, "share:create_public_share")?,
    };
    let name = match optional_text(fields, "name")? {
        Some(name) => {
            core_shares::check_display_field_length(Some(&name), "name")?;
            Some(name)
        }
        None => optional_text(fields, "display_name")?,
    };
    let description = match optional_text(fields, "description")? {
        Some(description) => {
            core_shares::check_display_field_length(Some(&description), "description")?;
            Some(description)
        }
        None => optional_text(fields, "display_description")?,
    };
    core_shares::check_display_field_length(name.as_deref(), "display_name")?;
    core_shares::check_display_field_length(description.as_deref(), "display_description")?;
    if fields.contains_key("share_type") && fields.contains_key("volume_type") {
        return Err(ApiError::bad_request(
            "Cannot specify both share_type and volume_type",
        ));
    }
    let share_type = match optional_text(fields, "share_type")? {
        Some(t) => Some(t),
        None if !fields.contains_key("share_type") => optional_text(fields, "volume_type")?,
        None => None,
    };
    let request = CreateShare {
        project_id: ctx.project_id().to_owned(),
        user_id: ctx.identity.user_id.clone(),
        is_admin: ctx.is_admin,
        share_proto: fields.get("share_proto").cloned(),
        size: fields.get("size").cloned(),
        name,
        description,
        share_type,
        availability_zone: optional_text(fields, "availability_zone")?,
        metadata: fields.get("metadata").cloned(),
        share_network_id: optional_text(fields, "share_network_id")?,
        snapshot_id: optional_text(fields, "snapshot_id")?,
        share_group_id: if ctx.at_least(2, 31) {
            optional_text(fields, "share_group_id")?
        } else {
            None
        },
        is_public,
        check_availability_zones_extra_spec: ctx.at_least(2, 48),
        check_create_share_from_snapshot_support: ctx.at_least(2, 24),
        encryption_key_ref: if ctx.at_least(2, 90) {
            optional_text(fields, "encryption_key_ref")?
        } else {
            None
        },
        scheduler_hints: scheduler_hints(&ctx, fields),
    };
    let share = core_shares::create_share(&state.core, request).await?;
    share_response(&state, &ctx, &links, &share).await
}

/// `scheduler_hints` of a create body: read from 2.65; below 2.67 Manila pops `only_host`
/// from them before anything looks at them.
fn scheduler_hints(ctx: &RequestContext, fields: &Map<String, Value>) -> Option<Value> {
    if !ctx.at_least(2, 65) {
        return None;
    }
    let mut hints = fields.get("scheduler_hints").cloned()?;
    if !ctx.at_least(2, 67)
        && let Some(map) = hints.as_object_mut()
    {
        map.remove("only_host");
    }
    Some(hints)
}

/// `GET /v2/shares/{id}`.
pub async fn show_share(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    links: LinkBase,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share:get")?;
    let share = load_share(&state, &ctx, &id, GENERIC_404).await?;
    share_response(&state, &ctx, &links, &share).await
}

/// `GET /v2/shares`: summaries.
pub async fn list_shares(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    list(state, ctx, links, params, false).await
}

/// `GET /v2/shares/detail`: details.
pub async fn list_shares_detail(
    State(state): State<ApiState>,
    ctx: RequestContext,
    links: LinkBase,
    Query(params): Query<Vec<(String, String)>>,
) -> ApiResult<Json<Value>> {
    list(state, ctx, links, params, true).await
}

/// A strict boolean query parameter (`utils.get_bool_from_api_params`).
fn bool_param(key: &str, value: &str) -> ApiResult<bool> {
    bool_from_string(&Value::String(value.to_owned())).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid value {value} for {key}. Expecting a boolean."
        ))
    })
}

/// Turns the query into a [`ShareListQuery`] the way `_get_shares` and `share_api.get_all`
/// prepare their search options.
fn list_query(
    state: &ApiState,
    ctx: &RequestContext,
    params: &[(String, String)],
    detail: bool,
) -> ApiResult<ShareListQuery> {
    // Later duplicates win, as `dict.update(req.GET)`.
    let mut opts: BTreeMap<String, String> = params.iter().cloned().collect();
    let mut drop_below = |keys: &[&str], major: u32, minor: u32| {
        if !ctx.at_least(major, minor) {
            for key in keys {
                opts.remove(*key);
            }
        }
    };
    drop_below(&["export_location_id", "export_location_path"], 2, 35);
    drop_below(&["name~", "description~", "description"], 2, 36);
    if !detail {
        // Only the summary list ignores `with_count` below 2.42 (Manila's quirk).
        drop_below(&["with_count"], 2, 42);
    }
    drop_below(&["is_soft_deleted"], 2, 69);
    drop_below(&["encryption_key_ref"], 2, 90);
    drop_below(&["availability_zone"], 2, 97);

    // common._validate_pagination_query
    let (limit, offset) = crate::pagination::limit_offset(
        opts.get("limit").map(String::as_str),
        opts.get("offset").map(String::as_str),
    )?;
    let sort_key = opts
        .remove("sort_key")
        .unwrap_or_else(|| "created_at".to_owned());
    let sort_dir = opts.remove("sort_dir").unwrap_or_else(|| "desc".to_owned());
    let with_count = match opts.remove("with_count") {
        Some(v) => bool_param("with_count", &v)?,
        None => false,
    };
    let is_soft_deleted = match opts.get("is_soft_deleted") {
        Some(v) => Some(bool_param("is_soft_deleted", v)?),
        None => None,
    };
    for (from, to) in [
        ("name", "display_name"),
        ("description", "display_description"),
        ("name~", "display_name~"),
        ("description~", "display_description~"),
    ] {
        if let Some(v) = opts.remove(from) {
            opts.insert(to.to_owned(), v);
        }
    }
    // Taken before the non-admin filter: shoal honours markers for everyone.
    let marker = opts.remove("marker");
    if !ctx.is_admin {
        opts.retain(|k, _| NON_ADMIN_SEARCH_OPTIONS.contains(&k.as_str()));
    }
    let dict = |key: &str, what: &str| -> ApiResult<Option<BTreeMap<String, String>>> {
        match opts.get(key) {
            None => Ok(None),
            Some(text) => core_shares::parse_dict_literal(text)
                .map(Some)
                .ok_or_else(|| {
                    ApiError::bad_request(format!(
                        "Invalid input received: Wrong {what} filter provided: {text}."
                    ))
                }),
        }
    };
    let metadata = dict("metadata", "metadata")?;
    let extra_specs = dict("extra_specs", "extra specs")?;
    if extra_specs.is_some() {
        ctx.authorize(state, "share_types_extra_spec:index")
            .map_err(|_| policy_not_allowed("share_types_extra_spec:index"))?;
    }
    if sort_key.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Invalid input received: Wrong sort_key filter provided: '{sort_key}'."
        )));
    }
    if sort_dir.is_empty() {
        return Err(ApiError::bad_request(format!(
            "Invalid input received: Wrong sort_dir filter provided: '{sort_dir}'."
        )));
    }
    let include_public = match opts.get("is_public") {
        None => false,
        Some(v) => bool_from_string(&Value::String(v.clone()))
            .ok_or_else(|| ApiError::bad_request(unrecognized_bool(&json!(v))))?,
    };
    // `utils.is_all_tenants`: an empty value also asks for every project.
    let all_tenants = match opts.get("all_tenants") {
        None => false,
        Some(v) if v.is_empty() => true,
        Some(v) => bool_from_string(&Value::String(v.clone()))
            .ok_or_else(|| ApiError::bad_request(unrecognized_bool(&json!(v))))?,
    };
    let all_projects = all_tenants && ctx.authorize(state, "share:list_all_projects").is_ok();
    if opts.contains_key("host") {
        ctx.authorize(state, "share:list_by_host")
            .map_err(|_| policy_not_allowed("share:list_by_host"))?;
    }
    if opts.contains_key("share_server_id") {
        ctx.authorize(state, "share:list_by_share_server_id")
            .map_err(|_| policy_not_allowed("share:list_by_share_server_id"))?;
    }
    let text = |key: &str| opts.get(key).cloned();
    let filters = ShareFilters {
        name: text("display_name"),
        name_like: text("display_name~"),
        description: text("display_description"),
        description_like: text("display_description~"),
        status: text("status"),
        share_type_id: text("share_type_id"),
        snapshot_id: text("snapshot_id"),
        share_network_id: text("share_network_id"),
        share_server_id: text("share_server_id"),
        host: text("host"),
        project_id: text("project_id"),
        share_group_id: text("share_group_id"),
        metadata,
        extra_specs,
        export_location_id: text("export_location_id"),
        export_location_path: text("export_location_path"),
        availability_zone: text("availability_zone"),
        is_soft_deleted,
    };
    Ok(ShareListQuery {
        project_id: ctx.project_id().to_owned(),
        all_projects,
        include_public,
        filters,
        sort_key,
        sort_dir,
        limit: limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
        offset: usize::try_from(offset).unwrap_or(usize::MAX),
        marker,
        with_count,
    })
}

/// Shared body of the two list endpoints.
async fn list(
    state: ApiState,
    ctx: RequestContext,
    links: LinkBase,
    params: Vec<(String, String)>,
    detail: bool,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share:get_all")?;
    let query = list_query(&state, &ctx, &params, detail)?;
    let page = core_shares::list_shares(&state.core, &query).await?;
    let host_admin = is_host_admin(&state, &ctx);
    let mut items = Vec::with_capacity(page.shares.len());
    for share in &page.shares {
        items.push(if detail {
            let legacy = legacy_paths(&state, &ctx, share).await?;
            detail_view(&ctx, host_admin, &links, share, legacy.as_ref())
        } else {
            summary_view(&links, share)
        });
    }
    let mut answer = json!({ "shares": items });
    if let Some(count) = page.count {
        answer["count"] = json!(count);
    }
    // `_get_collection_links`: a full page (as many as `limit`) gets a `next` link.
    if let (Some(limit), Some(last)) = (query.limit, page.shares.last())
        && limit > 0
        && limit == page.shares.len()
    {
        answer["shares_links"] = json!([{
            "rel": "next",
            "href": links.next("shares", &params, &last.row.id.to_string()),
        }]);
    }
    Ok(Json(answer))
}

/// `PUT /v2/shares/{id}`: `display_name`, `display_description`, `is_public`.
pub async fn update_share(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    links: LinkBase,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share:update")?;
    let fields = body
        .object("share")
        .ok_or_else(|| ApiError::unprocessable(UNPROCESSABLE))?;
    let text = |key: &str| -> ApiResult<Option<Option<String>>> {
        match fields.get(key) {
            None => Ok(None),
            Some(Value::Null) => Ok(Some(None)),
            Some(Value::String(s)) => Ok(Some(Some(s.clone()))),
            Some(_) => Err(ApiError::bad_request(GENERIC_400)),
        }
    };
    let name = text("display_name")?;
    let description = text("display_description")?;
    core_shares::check_display_field_length(name.clone().flatten().as_deref(), "display_name")?;
    core_shares::check_display_field_length(
        description.clone().flatten().as_deref(),
        "display_description",
    )?;
    let share = load_share(&state, &ctx, &id, GENERIC_404).await?;
    if share.row.is_soft_deleted {
        return Err(ApiError::forbidden(format!(
            "Share '{}' cannot be updated, since it has been soft deleted.",
            share.row.id
        )));
    }
    let is_public = match fields.get("is_public") {
        None => None,
        Some(value) => Some(public_share_policy(
            &state,
            &ctx,
            value,
            "share:set_public_share",
        )?),
    };
    authorize_share(&state, &ctx, "share:update", &share)?;
    let update = ShareUpdate {
        name,
        description,
        is_public,
        ..Default::default()
    };
    let updated = core_shares::update_share(&state.core, &share, update).await?;
    share_response(&state, &ctx, &links, &updated).await
}

/// `DELETE /v2/shares/{id}` → 202.
pub async fn delete_share(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    ctx.authorize(&state, "share:delete")?;
    let share = load_share(&state, &ctx, &id, GENERIC_404).await?;
    authorize_share(&state, &ctx, "share:delete", &share)?;
    core_shares::delete_share(&state.core, &share, false).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---------------------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------------------

/// `POST /v2/shares/{id}/action`: one action per body; keys carry an `os-` prefix below
/// 2.7 and none from 2.7, as in Manila.
pub async fn share_action(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Response> {
    let (action, value) = body.action()?;
    if action == "reset_task_state" {
        // Added at 2.22, after the `os-` prefixes were gone: one name at every version, and
        // a version the method lacks is a 404 as for any versioned method.
        return reset_task_state(&state, &ctx, &id, value).await;
    }
    if super::share_migration::is_migration_action(&action) {
        return super::share_migration::migration_action(&state, &ctx, &id, &action, value).await;
    }
    let legacy = !ctx.at_least(2, 7);
    let name = match action.strip_prefix("os-") {
        Some(name) if legacy => name,
        None if !legacy => action.as_str(),
        _ => "",
    };
    match name {
        "reset_status" => reset_status(&state, &ctx, &id, value).await,
        "force_delete" => force_delete(&state, &ctx, &id).await,
        "extend" => extend(&state, &ctx, &id, value).await,
        "shrink" => shrink(&state, &ctx, &id, value).await,
        "allow_access" => super::share_access::allow_access(&state, &ctx, &id, value).await,
        "deny_access" => super::share_access::deny_access(&state, &ctx, &id, value).await,
        "access_list" => super::share_access::access_list(&state, &ctx, &id, value).await,
        "unmanage" if !legacy => super::share_lifecycle::unmanage_action(&state, &ctx, &id).await,
        "soft_delete" if !legacy => super::share_lifecycle::soft_delete(&state, &ctx, &id).await,
        "restore" if !legacy => super::share_lifecycle::restore(&state, &ctx, &id).await,
        "revert" => super::share_snapshots::revert(&state, &ctx, &id, &value).await,
        _ => Err(ApiError::bad_request(format!(
            "There is no such action: {action}"
        ))),
    }
}

/// `reset_status` (admin) `{"status": "<s>"}` → 202.
async fn reset_status(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    value: Value,
) -> ApiResult<Response> {
    ctx.authorize(state, "share:reset_status")?;
    let share = load_share(state, ctx, id, GENERIC_404).await?;
    if share.row.is_soft_deleted {
        return Err(ApiError::forbidden(format!(
            "status cannot be reset for share '{id}' since it has been soft deleted."
        )));
    }
    let Some(status) = value.as_object().and_then(|v| v.get("status")) else {
        return Err(ApiError::bad_request("Must specify 'status'"));
    };
    let status = status
        .as_str()
        .filter(|s| RESET_STATUSES.contains(s))
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "Invalid state. Valid states: {}.",
                RESET_STATUSES.join(", ")
            ))
        })?;
    // Manila re-raises this refusal as a bare 403, whose text is webob's default.
    ctx.authorize_target(state, "share:reset_status", &share.row.project_id)?;
    core_shares::reset_share_status(&state.core, &share, status).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `force_delete` (admin) → 202: delete whatever the status.
async fn force_delete(state: &ApiState, ctx: &RequestContext, id: &str) -> ApiResult<Response> {
    ctx.authorize(state, "share:force_delete")?;
    let share = load_share(state, ctx, id, GENERIC_404).await?;
    authorize_share(state, ctx, "share:force_delete", &share)?;
    authorize_share(state, ctx, "share:delete", &share)?;
    core_shares::delete_share(&state.core, &share, true).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `reset_task_state` (admin; 2.22–2.95 with the experimental flag, then GA from 2.96)
/// `{"task_state": "<task state>" | null}` → 202. `openstack share set` sends it on every
/// call, with `null` unless `--task-state` is given, so the plain rename needs it.
///
/// Manila's order: the method's version, policy `share:reset_task_state`, the request
/// schema, the share (`ShareNotFound`), policy `share:reset_status` (the shared
/// `_reset_status` is itself authorized), the `task_state` key, and `share:reset_status`
/// against the share.
async fn reset_task_state(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    value: Value,
) -> ApiResult<Response> {
    ctx.require_experimental((2, 22), (2, 96))?;
    ctx.authorize(state, "share:reset_task_state")?;
    let Some(fields) = value.as_object() else {
        return Err(schema_error(
            "reset_task_state",
            &value,
            &format!("{} is not of type 'object'", py_repr(&value)),
        ));
    };
    // The schema knows both the legacy `os-task_state` and `task_state`, in that order.
    for key in ["os-task_state", "task_state"] {
        if let Some(task_state) = fields.get(key) {
            validate_task_state(key, task_state)?;
        }
    }
    let share = load_share(
        state,
        ctx,
        id,
        &format!("ShareNotFound: Share {id} could not be found."),
    )
    .await?;
    if share.row.is_soft_deleted {
        return Err(ApiError::forbidden(format!(
            "task state cannot be reset for share '{id}' since it has been soft deleted."
        )));
    }
    ctx.authorize(state, "share:reset_status")?;
    let Some(task_state) = fields.get("task_state") else {
        return Err(ApiError::bad_request("Must specify 'task_state'"));
    };
    // As for reset_status, Manila re-raises this refusal as a bare 403.
    ctx.authorize_target(state, "share:reset_status", &share.row.project_id)?;
    core_shares::reset_share_task_state(
        &state.core,
        &share,
        task_state.as_str().map(str::to_owned),
    )
    .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// A `task_state` value of the `reset_task_state` schema: a known task state or null.
fn validate_task_state(key: &str, value: &Value) -> ApiResult<()> {
    match value {
        Value::Null => Ok(()),
        Value::String(s) if TASK_STATE_STATUSES.contains(&s.as_str()) => Ok(()),
        Value::String(_) => {
            let mut allowed: Vec<String> = TASK_STATE_STATUSES
                .iter()
                .map(|s| py_repr(&Value::String((*s).to_owned())))
                .collect();
            allowed.push("None".to_owned());
            Err(schema_error(
                key,
                value,
                &format!("{} is not one of [{}]", py_repr(value), allowed.join(", ")),
            ))
        }
        other => Err(schema_error(
            key,
            other,
            &format!("{} is not of type 'string', 'null'", py_repr(other)),
        )),
    }
}

/// Manila's request-schema refusal of one body field (`manila/api/validation/validators.py`).
fn schema_error(field: &str, value: &Value, message: &str) -> ApiError {
    ApiError::bad_request(format!(
        "Invalid input for field/attribute {field}. Value: {}. {message}",
        py_str(value)
    ))
}

/// `new_size` of an extend or shrink body.
fn new_size(value: &Value) -> ApiResult<i64> {
    value
        .as_object()
        .and_then(|v| v.get("new_size"))
        .and_then(core_shares::parse_size)
        .ok_or_else(|| ApiError::bad_request("New share size must be specified as an integer."))
}

/// `extend` `{"new_size": n}` (≥2.64 also `force`) → 202.
async fn extend(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    value: Value,
) -> ApiResult<Response> {
    let size = new_size(&value)?;
    ctx.authorize(state, "share:extend")?;
    let share = load_share(state, ctx, id, core_shares::RESOURCE_NOT_FOUND).await?;
    if share.row.is_soft_deleted {
        return Err(ApiError::forbidden(format!(
            "Cannot extend share '{id}' since it has been soft deleted."
        )));
    }
    let force = match value.get("force") {
        Some(flag) if ctx.at_least(2, 64) => bool_from_string(flag).ok_or_else(|| {
            ApiError::bad_request(format!("Invalid boolean force : {}", py_str(flag)))
        })?,
        _ => false,
    };
    authorize_share(
        state,
        ctx,
        if force {
            "share:force_extend"
        } else {
            "share:extend"
        },
        &share,
    )?;
    let beyond_max_share_size = ctx
        .authorize_target(
            state,
            "share:extend_beyond_max_share_size_spec",
            &share.row.project_id,
        )
        .is_ok();
    let request = Extend {
        new_size: size,
        force,
        beyond_max_share_size,
    };
    core_shares::extend_share(&state.core, &share, request).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// `shrink` `{"new_size": n}` → 202.
async fn shrink(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    value: Value,
) -> ApiResult<Response> {
    let size = new_size(&value)?;
    ctx.authorize(state, "share:shrink")?;
    let share = load_share(state, ctx, id, core_shares::RESOURCE_NOT_FOUND).await?;
    if share.row.is_soft_deleted {
        return Err(ApiError::forbidden(format!(
            "Cannot shrink share '{id}' since it has been soft deleted."
        )));
    }
    core_shares::shrink_share(&state.core, &share, size).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

// ---------------------------------------------------------------------------------------
// Metadata
// ---------------------------------------------------------------------------------------

/// `MetadataController._get_resource` for shares: 404 "Share not found." when invisible;
/// with `for_modification`, another project's public share is 403.
async fn metadata_share(
    state: &ApiState,
    ctx: &RequestContext,
    id: &str,
    for_modification: bool,
) -> ApiResult<Share> {
    let share = core_shares::find_share(&state.core, id)
        .await?
        .ok_or_else(|| ApiError::not_found("Share not found."))?;
    let allowed = ctx
        .authorize_target(state, "share:get", &share.row.project_id)
        .is_ok();
    match (allowed, share.row.is_public, for_modification) {
        (true, _, _) | (false, true, false) => Ok(share),
        (false, false, _) => Err(ApiError::not_found("Share not found.")),
        (false, true, true) => Err(policy_not_allowed("share:get")),
    }
}

/// Refuses admin-only keys unless `share:update_admin_only_metadata` allows them; returns
/// whether the caller may touch them.
fn check_admin_only_keys<'a>(
    state: &ApiState,
    ctx: &RequestContext,
    mut keys: impl Iterator<Item = &'a String>,
) -> ApiResult<bool> {
    let may = ctx
        .authorize(state, "share:update_admin_only_metadata")
        .is_ok();
    if !may && keys.any(|k| ADMIN_ONLY_METADATA_KEYS.contains(&k.as_str())) {
        return Err(ApiError::forbidden(
            "Cannot set or update admin only metadata.",
        ));
    }
    Ok(may)
}

/// The `metadata` object of a metadata body; `null` counts as empty when `null_ok`.
fn metadata_object(body: &JsonBody, null_ok: bool) -> ApiResult<Map<String, Value>> {
    match body.0.as_ref().and_then(|b| b.get("metadata")) {
        Some(Value::Object(map)) => Ok(map.clone()),
        Some(Value::Null) if null_ok => Ok(Map::new()),
        _ => Err(ApiError::bad_request(core_shares::MALFORMED_BODY)),
    }
}

/// `GET /v2/shares/{id}/metadata`.
pub async fn list_share_metadata(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share:get_share_metadata")?;
    let share = metadata_share(&state, &ctx, &id, false).await?;
    Ok(Json(json!({ "metadata": share.row.metadata })))
}

/// `GET /v2/shares/{id}/metadata/{key}` → `{"meta": {key: value}}`.
pub async fn show_share_metadata_item(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share:get_share_metadata")?;
    let share = metadata_share(&state, &ctx, &id, false).await?;
    let value = core_shares::share_metadata_item(&share, &key)?;
    let mut item = Map::new();
    item.insert(key, Value::String(value));
    Ok(Json(json!({ "meta": item })))
}

/// `POST /v2/shares/{id}/metadata`: adds or overwrites the keys sent, keeps the others;
/// answers the share's whole metadata.
pub async fn create_share_metadata(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share:update_share_metadata")?;
    let metadata = metadata_object(&body, false)?;
    check_admin_only_keys(&state, &ctx, metadata.keys())?;
    core_shares::validate_metadata(&metadata)?;
    let share = metadata_share(&state, &ctx, &id, true).await?;
    let result = core_shares::set_share_metadata(&state.core, &share, &metadata, false).await?;
    Ok(Json(json!({ "metadata": result })))
}

/// `PUT /v2/shares/{id}/metadata`: the metadata becomes exactly the keys sent (admin-only
/// keys are kept for callers who may not change them).
pub async fn replace_share_metadata(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path(id): Path<String>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share:update_share_metadata")?;
    let mut metadata = metadata_object(&body, true)?;
    let may_touch_admin_keys = check_admin_only_keys(&state, &ctx, metadata.keys())?;
    core_shares::validate_metadata(&metadata)?;
    let share = metadata_share(&state, &ctx, &id, true).await?;
    if !may_touch_admin_keys {
        for key in ADMIN_ONLY_METADATA_KEYS {
            if let Some(value) = share.row.metadata.get(key) {
                metadata.insert(key.to_owned(), Value::String(value.clone()));
            }
        }
    }
    let result = core_shares::set_share_metadata(&state.core, &share, &metadata, true).await?;
    Ok(Json(json!({ "metadata": result })))
}

/// `POST` (or `PUT`) `/v2/shares/{id}/metadata/{key}` with `{"metadata": {key: value}}`
/// (or `{"meta": ...}`): sets one key; answers that item.
pub async fn update_share_metadata_item(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, key)): Path<(String, String)>,
    body: JsonBody,
) -> ApiResult<Json<Value>> {
    ctx.authorize(&state, "share:update_share_metadata")?;
    let item = body
        .object("metadata")
        .or_else(|| body.object("meta"))
        .cloned()
        .ok_or_else(|| ApiError::bad_request(core_shares::MALFORMED_BODY))?;
    check_admin_only_keys(&state, &ctx, item.keys())?;
    core_shares::validate_metadata(&item)?;
    if !item.contains_key(&key) {
        return Err(ApiError::bad_request("Request body and URI mismatch"));
    }
    if item.len() > 1 {
        return Err(ApiError::bad_request(
            "Request body contains too many items",
        ));
    }
    let share = metadata_share(&state, &ctx, &id, true).await?;
    core_shares::set_share_metadata(&state.core, &share, &item, false).await?;
    Ok(Json(json!({ "metadata": item })))
}

/// `DELETE /v2/shares/{id}/metadata/{key}` → **200** with an empty body.
pub async fn delete_share_metadata_item(
    State(state): State<ApiState>,
    ctx: RequestContext,
    Path((id, key)): Path<(String, String)>,
) -> ApiResult<Response> {
    ctx.authorize(&state, "share:delete_share_metadata")?;
    if ADMIN_ONLY_METADATA_KEYS.contains(&key.as_str()) {
        ctx.authorize(&state, "share:update_admin_only_metadata")
            .map_err(|_| policy_not_allowed("share:update_admin_only_metadata"))?;
    }
    let share = metadata_share(&state, &ctx, &id, true).await?;
    core_shares::delete_share_metadata_key(&state.core, &share, &key).await?;
    Ok(StatusCode::OK.into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_with_and_without_project() {
        let plain = LinkBase {
            base: "http://h:1".to_owned(),
            project: None,
        };
        assert_eq!(
            plain.links("shares", "x"),
            json!([
                {"rel": "self", "href": "http://h:1/v2/shares/x"},
                {"rel": "bookmark", "href": "http://h:1/shares/x"},
            ])
        );
        let scoped = LinkBase {
            base: "http://h:1".to_owned(),
            project: Some("abc".to_owned()),
        };
        assert_eq!(
            scoped.links("shares", "x")[0]["href"],
            "http://h:1/v2/abc/shares/x"
        );
        let query = vec![
            ("limit".to_owned(), "1".to_owned()),
            ("marker".to_owned(), "old".to_owned()),
            ("name~".to_owned(), "a b".to_owned()),
        ];
        assert_eq!(
            plain.next("shares", &query, "new"),
            "http://h:1/v2/shares?limit=1&name~=a%20b&marker=new"
        );
    }

    #[test]
    fn python_int_of_query_values() {
        use crate::pagination::py_int;
        assert_eq!(py_int(" 5 "), Some(5));
        assert_eq!(py_int("-1"), Some(-1));
        assert_eq!(py_int("x"), None);
    }
}
