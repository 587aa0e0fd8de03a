//! Share types: Manila's `share/share_types.py` plus the rules of the `types` and
//! `extra_specs` controllers that are not about HTTP.
//!
//! Persisted (through the store): the type row (name, description, public flag), its extra
//! specs as strings, and the projects a private type is shared with. Derived, never stored:
//! `required_extra_specs` (recomputed from the stored specs on every read, except on create
//! where Manila echoes the values as sent), visibility (public flag or access list), and
//! `is_default` (compared with `default_share_type` at view time).
//!
//! Validation copies Manila's semantics, including their accidents, because clients and
//! tempest compare the texts:
//!
//! * values are judged the way Python would see the decoded JSON: `str(value)` for
//!   non-strings ([`py_str`]) and oslo's `bool_from_string` ([`bool_from_string`]);
//! * a bad optional spec on type create always reads
//!   `"Invalid share type: Invalid extra_spec: %(reason)s."`, literally (Manila formats the
//!   unformatted template of the inner exception);
//! * a bad boolean spec on `POST .../extra_specs` is answered with webob's generic 400 text
//!   (Manila passes the reason as `detail`, which the fault body does not show), while the
//!   same value on `PUT .../extra_specs/{key}` shows the reason.
//!
//! Not implemented yet: the "in use" check of delete (shares do not exist yet) and the
//! `share_type` "in use by share group types" check.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use shoal_store::{NewShareType, ShareTypeFilter, ShareTypeRow, ShareTypeUpdate, StoreError};
use uuid::Uuid;

use crate::{Core, CoreError, CoreResult};

/// `driver_handles_share_servers`, the one required extra spec.
pub const DRIVER_HANDLES_SHARE_SERVERS: &str = "driver_handles_share_servers";
/// `snapshot_support`.
pub const SNAPSHOT_SUPPORT: &str = "snapshot_support";
/// `create_share_from_snapshot_support`.
pub const CREATE_SHARE_FROM_SNAPSHOT_SUPPORT: &str = "create_share_from_snapshot_support";
/// `revert_to_snapshot_support`.
pub const REVERT_TO_SNAPSHOT_SUPPORT: &str = "revert_to_snapshot_support";
/// `mount_snapshot_support`.
pub const MOUNT_SNAPSHOT_SUPPORT: &str = "mount_snapshot_support";
/// `mount_point_name_support`.
pub const MOUNT_POINT_NAME_SUPPORT: &str = "mount_point_name_support";
/// `snapshot_inherit_share_access_support` (inferred for tenants from 2.99 only).
pub const SNAPSHOT_INHERIT_SHARE_ACCESS_SUPPORT: &str = "snapshot_inherit_share_access_support";
/// `replication_type`: one of [`shoal_types::REPLICATION_TYPES`].
pub const REPLICATION_TYPE: &str = "replication_type";
/// `availability_zones`: comma-separated zone names.
pub const AVAILABILITY_ZONES: &str = "availability_zones";
/// `encryption_support`: `share` or `share_server`.
pub const ENCRYPTION_SUPPORT: &str = "encryption_support";
/// `provisioning:max_share_size`.
pub const PROVISIONING_MAX_SHARE_SIZE: &str = "provisioning:max_share_size";
/// `provisioning:min_share_size`.
pub const PROVISIONING_MIN_SHARE_SIZE: &str = "provisioning:min_share_size";
/// `provisioning:max_share_extend_size`.
pub const PROVISIONING_MAX_SHARE_EXTEND_SIZE: &str = "provisioning:max_share_extend_size";
/// `provisioning:mount_point_prefix`.
pub const PROVISIONING_MOUNT_POINT_PREFIX: &str = "provisioning:mount_point_prefix";
/// `default_qos_type`.
pub const DEFAULT_QOS_TYPE: &str = "default_qos_type";

/// Extra specs every type must carry (Manila `ExtraSpecs.REQUIRED`).
pub const REQUIRED_EXTRA_SPECS: [&str; 1] = [DRIVER_HANDLES_SHARE_SERVERS];

/// Standardised optional extra specs whose values are validated (`ExtraSpecs.OPTIONAL`).
pub const OPTIONAL_EXTRA_SPECS: [&str; 14] = [
    SNAPSHOT_SUPPORT,
    CREATE_SHARE_FROM_SNAPSHOT_SUPPORT,
    REVERT_TO_SNAPSHOT_SUPPORT,
    REPLICATION_TYPE,
    MOUNT_SNAPSHOT_SUPPORT,
    MOUNT_POINT_NAME_SUPPORT,
    SNAPSHOT_INHERIT_SHARE_ACCESS_SUPPORT,
    AVAILABILITY_ZONES,
    ENCRYPTION_SUPPORT,
    PROVISIONING_MAX_SHARE_SIZE,
    PROVISIONING_MIN_SHARE_SIZE,
    PROVISIONING_MAX_SHARE_EXTEND_SIZE,
    PROVISIONING_MOUNT_POINT_PREFIX,
    DEFAULT_QOS_TYPE,
];

/// Snapshot capabilities a non-admin sees as JSON `false` when a type does not set them
/// (from 2.24; `snapshot_inherit_share_access_support` joins at 2.99, see
/// [`SNAPSHOT_INHERIT_SHARE_ACCESS_SUPPORT`]).
pub const INFERRED_FALSE_EXTRA_SPECS: [&str; 4] = [
    SNAPSHOT_SUPPORT,
    CREATE_SHARE_FROM_SNAPSHOT_SUPPORT,
    REVERT_TO_SNAPSHOT_SUPPORT,
    MOUNT_SNAPSHOT_SUPPORT,
];

/// Manila's `encryption_support` values.
const ENCRYPTION_TYPES: [&str; 2] = ["share", "share_server"];

/// webob's generic 400 text, which Manila shows when it raises `HTTPBadRequest(detail)`.
pub const GENERIC_BAD_REQUEST: &str = "The server could not comply with the request since it is either malformed or otherwise incorrect.";
/// webob's generic 404 text.
pub const GENERIC_NOT_FOUND: &str = "The resource could not be found.";

/// Whether a non-admin may see `key` (`ExtraSpecs.TENANT_VISIBLE` = required + optional).
pub fn is_tenant_visible(key: &str) -> bool {
    REQUIRED_EXTRA_SPECS.contains(&key) || OPTIONAL_EXTRA_SPECS.contains(&key)
}

/// Who asks, as far as share type visibility goes: a non-admin sees public types and the
/// private types shared with its project (Manila's `_share_type_get_query`).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    /// The caller's project.
    pub project_id: &'a str,
    /// Manila's `context.is_admin`.
    pub is_admin: bool,
}

/// A share type as the views need it.
#[derive(Debug, Clone)]
pub struct ShareType {
    /// The stored type with its extra specs.
    pub row: ShareTypeRow,
    /// Manila's `required_extra_specs`: the values as sent on create (so a JSON `false` stays
    /// `false`), the stored strings afterwards; empty when the stored ones are invalid.
    pub required_extra_specs: Map<String, Value>,
}

impl ShareType {
    fn from_row(row: ShareTypeRow) -> Self {
        let required_extra_specs = stored_required_extra_specs(&row.extra_specs);
        Self {
            row,
            required_extra_specs,
        }
    }
}

// ---------------------------------------------------------------------------------------
// Python-compatible value handling
// ---------------------------------------------------------------------------------------

/// Python's `str()` of a JSON-decoded value, used where Manila formats or re-parses a value
/// (`"Invalid extra_spec: %(key)s: %(value)s"`, `bool_from_string` on non-strings).
pub fn py_str(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => py_repr(other),
    }
}

/// Python's `repr()` of a JSON-decoded value (strings quoted, containers recursive).
pub fn py_repr(value: &Value) -> String {
    match value {
        Value::Null => "None".to_owned(),
        Value::Bool(true) => "True".to_owned(),
        Value::Bool(false) => "False".to_owned(),
        Value::Number(n) => match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => i.to_string(),
            (None, Some(u), _) => u.to_string(),
            (None, None, Some(f)) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => {
                format!("{f:.1}")
            }
            _ => n.to_string(),
        },
        Value::String(s) => {
            if s.contains('\'') && !s.contains('"') {
                format!("\"{s}\"")
            } else {
                format!("'{}'", s.replace('\\', "\\\\").replace('\'', "\\'"))
            }
        }
        Value::Array(items) => {
            let inner: Vec<String> = items.iter().map(py_repr).collect();
            format!("[{}]", inner.join(", "))
        }
        Value::Object(map) => {
            let inner: Vec<String> = map
                .iter()
                .map(|(k, v)| format!("{}: {}", py_repr(&Value::String(k.clone())), py_repr(v)))
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// oslo's `strutils.bool_from_string`: a JSON bool is itself, anything else is `str()`-ed,
/// stripped and lowercased, then compared with `1 t true on y yes` / `0 f false off n no`.
/// `None` when the text is none of those.
pub fn bool_from_string(value: &Value) -> Option<bool> {
    if let Value::Bool(b) = value {
        return Some(*b);
    }
    let text = py_str(value).trim().to_lowercase();
    match text.as_str() {
        "1" | "t" | "true" | "on" | "y" | "yes" => Some(true),
        "0" | "f" | "false" | "off" | "n" | "no" => Some(false),
        _ => None,
    }
}

/// Manila's exception texts collapse a doubled final period (`ManilaException.__init__`).
fn manila_message(text: String) -> String {
    if text.ends_with("..") && !text.ends_with("...") {
        let mut text = text;
        text.pop();
        text
    } else {
        text
    }
}

/// Number of characters as Python's `len()` counts them.
fn py_len(s: &str) -> usize {
    s.chars().count()
}

// ---------------------------------------------------------------------------------------
// Extra spec validation (manila/share/share_types.py)
// ---------------------------------------------------------------------------------------

/// Why extra specs were refused, in the two forms Manila raises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpecError {
    /// `InvalidExtraSpec(reason)`; its text is [`SpecError::message`].
    Invalid(String),
    /// An `HTTPBadRequest` raised from inside validation (integer specs); shown verbatim.
    BadRequest(String),
}

impl SpecError {
    /// The text Manila shows when the exception itself reaches the client.
    pub fn message(&self) -> String {
        match self {
            SpecError::Invalid(reason) => invalid_extra_spec(reason),
            SpecError::BadRequest(message) => message.clone(),
        }
    }
}

/// `InvalidExtraSpec`'s text: `"Invalid extra_spec: %(reason)s."`.
fn invalid_extra_spec(reason: &str) -> String {
    manila_message(format!("Invalid extra_spec: {reason}."))
}

/// `parse_boolean_extra_spec`: a bool-like value, also in the `<is> True` form.
pub fn parse_boolean_extra_spec(key: &str, value: &Value) -> Result<bool, SpecError> {
    let text = py_str(value);
    let stripped = text.trim();
    let candidate = stripped
        .get(..4)
        .filter(|prefix| prefix.eq_ignore_ascii_case("<is>"))
        .map(|_| stripped[4..].trim_start())
        .filter(|rest| rest.eq_ignore_ascii_case("true") || rest.eq_ignore_ascii_case("false"))
        .map(str::to_owned)
        .unwrap_or_else(|| text.clone());
    bool_from_string(&Value::String(candidate.clone())).ok_or_else(|| {
        SpecError::Invalid(format!("Invalid boolean extra spec {key} : {candidate}"))
    })
}

/// `is_valid_required_extra_spec`: `None` when `key` is not required.
pub fn is_valid_required_extra_spec(key: &str, value: &Value) -> Option<bool> {
    if !REQUIRED_EXTRA_SPECS.contains(&key) {
        return None;
    }
    Some(key == DRIVER_HANDLES_SHARE_SERVERS && bool_from_string(value).is_some())
}

/// `get_valid_required_extra_specs`: the required specs of `specs` with their values as
/// given, or why they are missing or invalid.
pub fn get_valid_required_extra_specs(
    specs: &Map<String, Value>,
) -> Result<Map<String, Value>, SpecError> {
    let missing: Vec<&str> = REQUIRED_EXTRA_SPECS
        .iter()
        .copied()
        .filter(|k| !specs.contains_key(*k))
        .collect();
    if !missing.is_empty() {
        return Err(SpecError::Invalid(format!(
            "Required extra specs '{}' not specified.",
            missing.join(",")
        )));
    }
    let mut required = Map::new();
    for key in REQUIRED_EXTRA_SPECS {
        let value = specs
            .get(key)
            .cloned()
            .unwrap_or_else(|| Value::String(String::new()));
        if is_valid_required_extra_spec(key, &value) != Some(true) {
            return Err(SpecError::Invalid(format!(
                "Value of required extra_spec {key} is not valid"
            )));
        }
        required.insert(key.to_owned(), value);
    }
    Ok(required)
}

/// The `required_extra_specs` of a stored type; `{}` when they are invalid, as Manila logs
/// and moves on.
fn stored_required_extra_specs(specs: &BTreeMap<String, String>) -> Map<String, Value> {
    let as_json: Map<String, Value> = specs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    get_valid_required_extra_specs(&as_json).unwrap_or_default()
}

/// oslo's `validate_integer(value, "share_size", min_value=1)` as Manila's
/// `common.validate_integer` raises it (an `HTTPBadRequest`).
fn validate_share_size(value: &Value) -> Result<(), SpecError> {
    let text = py_str(value);
    let cleaned = text.trim();
    // Python's int() accepts a sign and single underscores between digits.
    let digits = cleaned.strip_prefix(['+', '-']).unwrap_or(cleaned);
    let well_formed = !digits.is_empty()
        && !digits.starts_with('_')
        && !digits.ends_with('_')
        && !digits.contains("__")
        && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
    if !well_formed {
        return Err(SpecError::BadRequest(
            "share_size must be an integer".to_owned(),
        ));
    }
    let negative = cleaned.starts_with('-');
    let all_zero = digits.chars().all(|c| c == '0' || c == '_');
    if negative || all_zero {
        return Err(SpecError::BadRequest("share_size must be >= 1".to_owned()));
    }
    Ok(())
}

/// `is_valid_csv`: every comma-separated item is non-blank.
fn is_valid_csv(value: &Value) -> bool {
    py_str(value).split(',').all(|item| !item.trim().is_empty())
}

/// `sanitize_csv`: items stripped, empty ones dropped.
pub fn sanitize_csv(text: &str) -> String {
    text.split(',')
        .filter(|item| !item.is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(",")
}

/// Manila's `is_valid_string(v, min_length, 256)`.
fn is_valid_string(value: &Value, min_length: usize) -> bool {
    value
        .as_str()
        .is_some_and(|s| (min_length..256).contains(&py_len(s)))
}

/// `is_valid_optional_extra_spec`: `Ok(None)` when `key` is not a standard optional spec,
/// `Ok(Some(valid))` otherwise; boolean specs that do not parse and integer specs raise
/// instead of answering `false`, as in Manila.
pub fn is_valid_optional_extra_spec(key: &str, value: &Value) -> Result<Option<bool>, SpecError> {
    let valid = match key {
        SNAPSHOT_SUPPORT
        | CREATE_SHARE_FROM_SNAPSHOT_SUPPORT
        | REVERT_TO_SNAPSHOT_SUPPORT
        | MOUNT_SNAPSHOT_SUPPORT
        | MOUNT_POINT_NAME_SUPPORT
        | SNAPSHOT_INHERIT_SHARE_ACCESS_SUPPORT => {
            parse_boolean_extra_spec(key, value)?;
            true
        }
        REPLICATION_TYPE => value
            .as_str()
            .is_some_and(|v| shoal_types::REPLICATION_TYPES.contains(&v)),
        AVAILABILITY_ZONES => is_valid_csv(value),
        ENCRYPTION_SUPPORT => value
            .as_str()
            .is_some_and(|v| ENCRYPTION_TYPES.contains(&v)),
        PROVISIONING_MOUNT_POINT_PREFIX | DEFAULT_QOS_TYPE => is_valid_string(value, 0),
        PROVISIONING_MAX_SHARE_SIZE
        | PROVISIONING_MIN_SHARE_SIZE
        | PROVISIONING_MAX_SHARE_EXTEND_SIZE => {
            validate_share_size(value)?;
            true
        }
        _ => return Ok(None),
    };
    Ok(Some(valid))
}

/// `get_valid_optional_extra_specs`: fails on the first standard optional spec whose value
/// is invalid.
pub fn get_valid_optional_extra_specs(specs: &Map<String, Value>) -> Result<(), SpecError> {
    for key in OPTIONAL_EXTRA_SPECS {
        let Some(value) = specs.get(key) else {
            continue;
        };
        if is_valid_optional_extra_spec(key, value)? == Some(false) {
            return Err(SpecError::Invalid(format!(
                "Value of optional extra_spec {key} is not valid."
            )));
        }
    }
    Ok(())
}

/// Manila's `VALID_KEY_NAME_REGEX` (`^[\w.\-:]+$`, Unicode word characters).
pub fn is_valid_key_name(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '-' | ':'))
}

/// Why `POST`/`PUT .../extra_specs` refused a body (`_verify_extra_specs`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyError {
    /// A pair failed the generic checks: `"Invalid extra_spec: %(key)s: %(value)s"`.
    Pair(String),
    /// Validation raised (see [`SpecError`]); the caller decides how it surfaces.
    Raised(SpecError),
}

/// The extra specs controller's `_verify_extra_specs(specs, verify_all_required=False)`:
/// keys and values are strings of 1–255 characters (values may be booleans), and required
/// and standard optional specs must be valid.
pub fn verify_extra_specs(specs: &Map<String, Value>) -> Result<(), VerifyError> {
    for (key, value) in specs {
        let key_json = Value::String(key.clone());
        let valid_key = is_valid_string(&key_json, 1);
        let valid_type = is_valid_string(value, 1) || value.is_boolean();
        let valid_required = is_valid_required_extra_spec(key, value) != Some(false);
        let valid_optional =
            is_valid_optional_extra_spec(key, value).map_err(VerifyError::Raised)? != Some(false);
        // Manila recurses into nested objects; shoal stores strings only, so a nested object is
        // refused like any other value of the wrong type.
        if !(valid_key && valid_type && valid_required && valid_optional) {
            return Err(VerifyError::Pair(format!(
                "Invalid extra_spec: {key}: {}",
                py_str(value)
            )));
        }
    }
    Ok(())
}

/// The text Manila stores for a spec value: booleans become `"True"`/`"False"`, numbers
/// their decimal form, strings stay as sent.
fn stored_value(value: &Value) -> String {
    py_str(value)
}

/// `sanitize_extra_specs` on a JSON map (in place): the zone list is normalised.
fn sanitize_extra_specs(specs: &mut Map<String, Value>) {
    if let Some(zones) = specs.get_mut(AVAILABILITY_ZONES) {
        *zones = Value::String(sanitize_csv(&py_str(zones)));
    }
}

/// The string map that goes to the store.
fn to_stored(specs: &Map<String, Value>) -> BTreeMap<String, String> {
    specs
        .iter()
        .map(|(k, v)| (k.clone(), stored_value(v)))
        .collect()
}

// ---------------------------------------------------------------------------------------
// Lookups
// ---------------------------------------------------------------------------------------

/// The type `id` if it exists and `caller` may see it. Ids that are not UUIDs simply match
/// nothing, as in Manila's database lookup.
async fn find_visible(
    core: &Core,
    caller: Caller<'_>,
    id: &str,
) -> CoreResult<Option<ShareTypeRow>> {
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Ok(None);
    };
    let row = match core.store.get_share_type(uuid).await {
        Ok(row) => row,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    if is_visible(core, caller, &row).await? {
        Ok(Some(row))
    } else {
        Ok(None)
    }
}

/// The type with this id or name if `caller` may see it (Manila's
/// `get_share_type_by_name_or_id`, used by share create).
pub async fn find_visible_by_name_or_id(
    core: &Core,
    caller: Caller<'_>,
    name_or_id: &str,
) -> CoreResult<Option<ShareTypeRow>> {
    if let Some(row) = find_visible(core, caller, name_or_id).await? {
        return Ok(Some(row));
    }
    let row = match core.store.get_share_type_by_name(name_or_id).await {
        Ok(row) => row,
        Err(StoreError::NotFound(_)) => return Ok(None),
        Err(other) => return Err(other.into()),
    };
    Ok(is_visible(core, caller, &row).await?.then_some(row))
}

/// Public types are visible to all; private ones to admins and the projects on their list.
async fn is_visible(core: &Core, caller: Caller<'_>, row: &ShareTypeRow) -> CoreResult<bool> {
    if caller.is_admin || row.is_public {
        return Ok(true);
    }
    let projects = core.store.list_share_type_access(row.id).await?;
    Ok(projects.iter().any(|p| p == caller.project_id))
}

/// Manila's `ShareTypeNotFound` text.
fn type_not_found(id: &str) -> CoreError {
    CoreError::not_found(format!("Share type {id} could not be found."))
}

/// The type or `ShareTypeNotFound` (the extra specs controller's `_check_type`).
async fn require_visible(core: &Core, caller: Caller<'_>, id: &str) -> CoreResult<ShareTypeRow> {
    find_visible(core, caller, id)
        .await?
        .ok_or_else(|| type_not_found(id))
}

// ---------------------------------------------------------------------------------------
// Share types
// ---------------------------------------------------------------------------------------

/// A validated `POST /v2/types` request (name, description and flag were checked by the API).
#[derive(Debug, Clone)]
pub struct CreateShareType {
    /// Unique name, 1–255 characters.
    pub name: String,
    /// Free text of at most 255 characters.
    pub description: Option<String>,
    /// Visible to every project when true.
    pub is_public: bool,
    /// Extra specs as sent (JSON values; validated here).
    pub extra_specs: Map<String, Value>,
    /// Below 2.24 Manila adds `snapshot_support: True` when the request leaves it out.
    pub default_snapshot_support: bool,
}

/// Creates a share type (`ShareTypesController._create` and `share_types.create`).
pub async fn create_share_type(core: &Core, req: CreateShareType) -> CoreResult<ShareType> {
    let mut specs = req.extra_specs;
    if req.default_snapshot_support && !specs.contains_key(SNAPSHOT_SUPPORT) {
        specs.insert(SNAPSHOT_SUPPORT.to_owned(), Value::Bool(true));
    }
    let required =
        get_valid_required_extra_specs(&specs).map_err(|e| CoreError::bad_request(e.message()))?;
    match get_valid_optional_extra_specs(&specs) {
        Ok(()) => {}
        // Manila wraps the inner exception's *template* into InvalidShareType.
        Err(SpecError::Invalid(_)) => {
            return Err(CoreError::bad_request(
                "Invalid share type: Invalid extra_spec: %(reason)s.",
            ));
        }
        Err(SpecError::BadRequest(message)) => return Err(CoreError::bad_request(message)),
    }
    // Manila would store these and fail in the database; shoal refuses them up front.
    for (key, value) in &specs {
        let storable = match value {
            Value::Bool(_) | Value::Number(_) => true,
            Value::String(s) => py_len(s) < 256,
            Value::Null | Value::Array(_) | Value::Object(_) => false,
        };
        if !storable || py_len(key) > 255 {
            return Err(CoreError::bad_request(format!(
                "Invalid extra_spec: {key}: {}",
                py_str(value)
            )));
        }
    }
    sanitize_extra_specs(&mut specs);
    let new = NewShareType {
        id: Uuid::new_v4(),
        name: req.name.clone(),
        description: req.description,
        is_public: req.is_public,
        extra_specs: to_stored(&specs),
        created_at: core.now(),
    };
    let row = core
        .store
        .insert_share_type(new)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => {
                CoreError::conflict(format!("Share Type {} already exists.", req.name))
            }
            other => other.into(),
        })?;
    tracing::info!(share_type.id = %row.id, "created share type {} ({})", row.id, row.name);
    Ok(ShareType {
        row,
        required_extra_specs: required,
    })
}

/// Query of `GET /v2/types`, as raw as it came.
#[derive(Debug, Clone, Default)]
pub struct ShareTypeQuery {
    /// `is_public`: `true` (default), `false` or `all`; honoured for admins only.
    pub is_public: Option<String>,
    /// `extra_specs`: a Python dict literal such as `{'replication_type': 'readable'}`.
    pub extra_specs: Option<String>,
    /// The `extra_specs` filter exists from 2.43.
    pub extra_specs_supported: bool,
}

/// Manila's `parse_is_public`: `Some(true)` when absent, `None` for `all`.
pub fn parse_is_public(value: Option<&str>) -> CoreResult<Option<bool>> {
    let Some(text) = value else {
        return Ok(Some(true));
    };
    if text.to_lowercase() == "all" {
        return Ok(None);
    }
    bool_from_string(&Value::String(text.to_owned()))
        .map(Some)
        .ok_or_else(|| CoreError::bad_request(format!("Invalid is_public filter [{text}]")))
}

/// Lists the types `caller` may see, ordered by name (`ShareTypesController._get_share_types`).
pub async fn list_share_types(
    core: &Core,
    caller: Caller<'_>,
    query: &ShareTypeQuery,
) -> CoreResult<Vec<ShareType>> {
    // Non-admins always get "public or shared with me", whatever they ask for.
    let is_public = if caller.is_admin {
        parse_is_public(query.is_public.as_deref())?
    } else {
        Some(true)
    };
    let raw_specs = query.extra_specs.as_deref().unwrap_or_default();
    if !raw_specs.is_empty() && !query.extra_specs_supported {
        return Err(CoreError::bad_request(
            "Filter by 'extra_specs' is not supported by this microversion. Use 2.43 or greater microversion to be able to use filter search by 'extra_specs.",
        ));
    }
    let filter_specs = if raw_specs.is_empty() {
        Vec::new()
    } else {
        parse_spec_filter(raw_specs)?
    };

    // Manila's `is_public=True` means "public, or shared with the caller's project".
    let filter = match is_public {
        Some(true) => ShareTypeFilter {
            visible_to_project: Some(caller.project_id.to_owned()),
            is_public: None,
        },
        Some(false) => ShareTypeFilter {
            visible_to_project: (!caller.is_admin).then(|| caller.project_id.to_owned()),
            is_public: Some(false),
        },
        None => ShareTypeFilter {
            visible_to_project: None,
            is_public: None,
        },
    };
    let rows = core.store.list_share_types(filter).await?;
    Ok(rows
        .into_iter()
        .filter(|row| matches_spec_filter(row, &filter_specs))
        .map(ShareType::from_row)
        .collect())
}

/// One `extra_specs` filter item: the wanted value, `None` when it was not a string (it then
/// never equals a stored string, as in Manila).
type SpecFilter = Vec<(String, Option<String>)>;

/// Parses the `extra_specs` filter, a Python dict literal (`ast.literal_eval` in Manila).
fn parse_spec_filter(raw: &str) -> CoreResult<SpecFilter> {
    let bad = || CoreError::bad_request(format!("Invalid extra_specs filter: {raw}"));
    let Some(Value::Object(map)) = parse_py_literal(raw) else {
        return Err(bad());
    };
    let mut filter = SpecFilter::new();
    for (key, value) in map {
        let mut wanted = value.as_str().map(str::to_owned);
        if key == AVAILABILITY_ZONES {
            wanted = wanted.map(|v| sanitize_csv(&v));
        }
        filter.push((key, wanted));
    }
    Ok(filter)
}

/// Whether a type passes the `extra_specs` filter. `availability_zones` matches types
/// without the spec and types listing every requested zone; every other key must be equal.
fn matches_spec_filter(row: &ShareTypeRow, filter: &SpecFilter) -> bool {
    filter.iter().all(|(key, wanted)| {
        let stored = row.extra_specs.get(key);
        if key == AVAILABILITY_ZONES {
            let Some(stored) = stored else { return true };
            let Some(wanted) = wanted else { return false };
            let have: Vec<&str> = stored.split(',').collect();
            return wanted.split(',').all(|zone| have.contains(&zone));
        }
        matches!((stored, wanted), (Some(s), Some(w)) if s == w)
    })
}

/// A small `ast.literal_eval` for the filter: dicts, lists, strings, numbers, `True`,
/// `False`, `None`. Returns `None` for anything else.
fn parse_py_literal(text: &str) -> Option<Value> {
    let mut parser = LiteralParser {
        chars: text.chars().collect(),
        pos: 0,
    };
    let value = parser.value()?;
    parser.skip_ws();
    (parser.pos == parser.chars.len()).then_some(value)
}

/// Cursor of [`parse_py_literal`].
struct LiteralParser {
    chars: Vec<char>,
    pos: usize,
}

impl LiteralParser {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.pos += 1;
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn value(&mut self) -> Option<Value> {
        self.skip_ws();
        match self.peek()? {
            '{' => self.dict(),
            '[' => self.list(),
            '\'' | '"' => self.string().map(Value::String),
            _ => self.word(),
        }
    }

    fn dict(&mut self) -> Option<Value> {
        self.pos += 1;
        let mut map = Map::new();
        loop {
            if self.eat('}') {
                return Some(Value::Object(map));
            }
            let Value::String(key) = self.value()? else {
                return None;
            };
            if !self.eat(':') {
                return None;
            }
            let value = self.value()?;
            map.insert(key, value);
            if !self.eat(',') {
                return self.eat('}').then_some(Value::Object(map));
            }
        }
    }

    fn list(&mut self) -> Option<Value> {
        self.pos += 1;
        let mut items = Vec::new();
        loop {
            if self.eat(']') {
                return Some(Value::Array(items));
            }
            items.push(self.value()?);
            if !self.eat(',') {
                return self.eat(']').then_some(Value::Array(items));
            }
        }
    }

    fn string(&mut self) -> Option<String> {
        let quote = self.peek()?;
        self.pos += 1;
        let mut out = String::new();
        loop {
            let c = self.peek()?;
            self.pos += 1;
            match c {
                c if c == quote => return Some(out),
                '\\' => {
                    let escaped = self.peek()?;
                    self.pos += 1;
                    out.push(match escaped {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        '0' => '\0',
                        other => other,
                    });
                }
                c => out.push(c),
            }
        }
    }

    fn word(&mut self) -> Option<Value> {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'))
        {
            self.pos += 1;
        }
        let word: String = self.chars[start..self.pos].iter().collect();
        match word.as_str() {
            "True" => Some(Value::Bool(true)),
            "False" => Some(Value::Bool(false)),
            "None" => Some(Value::Null),
            number => {
                let cleaned = number.replace('_', "");
                if let Ok(i) = cleaned.parse::<i64>() {
                    return Some(Value::from(i));
                }
                cleaned
                    .parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(Value::from)
            }
        }
    }
}

/// `GET /v2/types/{id}`: 404 "Share type not found." when missing or not visible.
pub async fn show_share_type(core: &Core, caller: Caller<'_>, id: &str) -> CoreResult<ShareType> {
    find_visible(core, caller, id)
        .await?
        .map(ShareType::from_row)
        .ok_or_else(|| CoreError::not_found("Share type not found."))
}

/// `GET /v2/types/default`: the type named by `default_share_type`, if set, existing,
/// visible to the caller and with valid required specs; otherwise 404.
pub async fn default_share_type(core: &Core, caller: Caller<'_>) -> CoreResult<ShareType> {
    let missing = || CoreError::not_found("Default share type not found");
    let Some(name) = core.config.api.default_share_type.as_deref() else {
        return Err(missing());
    };
    let row = match core.store.get_share_type_by_name(name).await {
        Ok(row) => row,
        Err(StoreError::NotFound(_)) => {
            tracing::warn!("default share type {name} is not found, check default_share_type");
            return Err(missing());
        }
        Err(other) => return Err(other.into()),
    };
    if !is_visible(core, caller, &row).await? {
        return Err(missing());
    }
    let as_json: Map<String, Value> = row
        .extra_specs
        .iter()
        .map(|(k, v)| (k.clone(), Value::String(v.clone())))
        .collect();
    let Ok(required_extra_specs) = get_valid_required_extra_specs(&as_json) else {
        tracing::warn!("default share type {name} has invalid required extra specs");
        return Err(missing());
    };
    Ok(ShareType {
        row,
        required_extra_specs,
    })
}

/// `DELETE /v2/types/{id}`; a type that shares still use is refused with 400.
pub async fn delete_share_type(core: &Core, caller: Caller<'_>, id: &str) -> CoreResult<()> {
    let row = find_visible(core, caller, id)
        .await?
        .ok_or_else(|| CoreError::not_found(GENERIC_NOT_FOUND))?;
    if core.store.count_shares_with_share_type(row.id).await? > 0 {
        return Err(CoreError::bad_request("Target share type is still in use."));
    }
    match core.store.delete_share_type(row.id).await {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => return Err(CoreError::not_found(GENERIC_NOT_FOUND)),
        Err(other) => return Err(other.into()),
    }
    tracing::info!(share_type.id = %row.id, "deleted share type {} ({})", row.id, row.name);
    Ok(())
}

/// A `PUT /v2/types/{id}` request (≥2.50) whose field types the API has checked.
#[derive(Debug, Clone, Default)]
pub struct UpdateShareType {
    /// New name; must not be blank, at most 255 characters.
    pub name: Option<String>,
    /// New description; `""` clears it.
    pub description: Option<String>,
    /// New visibility.
    pub is_public: Option<bool>,
}

/// Updates name, description and visibility (`ShareTypesController.update`).
pub async fn update_share_type(
    core: &Core,
    id: &str,
    req: UpdateShareType,
) -> CoreResult<ShareType> {
    if let Some(name) = &req.name {
        if name.trim().is_empty() {
            return Err(CoreError::bad_request("Share type name cannot be empty."));
        }
        if py_len(name) > 255 {
            return Err(CoreError::bad_request(
                "Share type name cannot be greater than 255 characters in length.",
            ));
        }
    }
    if req.description.as_deref().is_some_and(|d| py_len(d) > 255) {
        return Err(CoreError::bad_request(
            "Share type description cannot be greater than 255 characters in length.",
        ));
    }
    if req.name.is_none() && req.description.is_none() && req.is_public.is_none() {
        return Err(CoreError::bad_request(
            "Specify share type name, description, share_type_access:is_public or a combination thereof.",
        ));
    }
    // Manila's update is not visibility-filtered; its not-found error reaches the client
    // through the fault wrapper, hence the class-name prefix.
    let not_found = || {
        CoreError::not_found(format!(
            "ShareTypeNotFound: Share type {id} could not be found."
        ))
    };
    let Ok(uuid) = Uuid::parse_str(id) else {
        return Err(not_found());
    };
    let current = match core.store.get_share_type(uuid).await {
        Ok(row) => row,
        Err(StoreError::NotFound(_)) => return Err(not_found()),
        Err(other) => return Err(other.into()),
    };
    let name = req.name.filter(|n| !n.is_empty() && *n != current.name);
    let description = req
        .description
        .map(|d| if d.is_empty() { None } else { Some(d) });
    let update = ShareTypeUpdate {
        name: name.clone(),
        description,
        is_public: req.is_public,
    };
    let row = match core.store.update_share_type(uuid, update, core.now()).await {
        Ok(row) => row,
        Err(StoreError::NotFound(_)) => return Err(not_found()),
        Err(StoreError::Conflict(_)) => {
            let taken = name.unwrap_or_else(|| current.name.clone());
            return Err(CoreError::conflict(format!(
                "Share Type {taken} already exists."
            )));
        }
        Err(other) => return Err(other.into()),
    };
    tracing::info!(share_type.id = %row.id, "updated share type {} ({})", row.id, row.name);
    Ok(ShareType::from_row(row))
}

// ---------------------------------------------------------------------------------------
// Extra specs (manila/api/v2/share_types_extra_specs.py)
// ---------------------------------------------------------------------------------------

/// `GET /v2/types/{id}/extra_specs`.
pub async fn list_extra_specs(
    core: &Core,
    caller: Caller<'_>,
    id: &str,
) -> CoreResult<BTreeMap<String, String>> {
    Ok(require_visible(core, caller, id).await?.extra_specs)
}

/// `POST /v2/types/{id}/extra_specs`: adds or overwrites specs and returns them as sent
/// (with the zone list normalised), as Manila echoes its request body.
pub async fn set_extra_specs(
    core: &Core,
    caller: Caller<'_>,
    id: &str,
    mut specs: Map<String, Value>,
) -> CoreResult<Map<String, Value>> {
    let row = require_visible(core, caller, id).await?;
    match verify_extra_specs(&specs) {
        Ok(()) => {}
        Err(VerifyError::Pair(message)) => return Err(CoreError::bad_request(message)),
        // Manila raises HTTPBadRequest(e.msg): the reason lands in `detail`, unseen.
        Err(VerifyError::Raised(SpecError::Invalid(_))) => {
            return Err(CoreError::bad_request(GENERIC_BAD_REQUEST));
        }
        Err(VerifyError::Raised(SpecError::BadRequest(message))) => {
            return Err(CoreError::bad_request(message));
        }
    }
    if !specs.keys().all(|k| is_valid_key_name(k)) {
        return Err(CoreError::bad_request(
            "Key names can only contain alphanumeric characters, underscores, periods, colons and hyphens.",
        ));
    }
    sanitize_extra_specs(&mut specs);
    store_specs(core, row.id, id, &specs).await?;
    Ok(specs)
}

async fn store_specs(
    core: &Core,
    uuid: Uuid,
    id: &str,
    specs: &Map<String, Value>,
) -> CoreResult<()> {
    if specs.is_empty() {
        return Ok(());
    }
    core.store
        .set_share_type_extra_specs(uuid, &to_stored(specs))
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => type_not_found(id),
            other => other.into(),
        })?;
    tracing::info!(share_type.id = %uuid, "set extra specs of share type {uuid}");
    Ok(())
}

/// `GET /v2/types/{id}/extra_specs/{key}`: the stored value, generic 404 when unset.
pub async fn show_extra_spec(
    core: &Core,
    caller: Caller<'_>,
    id: &str,
    key: &str,
) -> CoreResult<String> {
    let row = require_visible(core, caller, id).await?;
    row.extra_specs
        .get(key)
        .cloned()
        .ok_or_else(|| CoreError::not_found(GENERIC_NOT_FOUND))
}

/// `PUT /v2/types/{id}/extra_specs/{key}` with body `{key: value}`; returns the stored body.
/// An empty `body` is Manila's "no body".
pub async fn update_extra_spec(
    core: &Core,
    caller: Caller<'_>,
    id: &str,
    key: &str,
    mut body: Map<String, Value>,
) -> CoreResult<Map<String, Value>> {
    if body.is_empty() {
        return Err(CoreError::bad_request("Request body empty"));
    }
    let row = require_visible(core, caller, id).await?;
    if !body.contains_key(key) {
        return Err(CoreError::bad_request("Request body and URI mismatch"));
    }
    if body.len() > 1 {
        return Err(CoreError::bad_request(
            "Request body contains too many items",
        ));
    }
    match verify_extra_specs(&body) {
        Ok(()) => {}
        Err(VerifyError::Pair(message)) => return Err(CoreError::bad_request(message)),
        Err(VerifyError::Raised(err)) => return Err(CoreError::bad_request(err.message())),
    }
    sanitize_extra_specs(&mut body);
    store_specs(core, row.id, id, &body).await?;
    Ok(body)
}

/// `DELETE /v2/types/{id}/extra_specs/{key}`. Required specs cannot be removed (403), nor
/// `snapshot_support` below 2.24 (`protect_snapshot_support`).
pub async fn delete_extra_spec(
    core: &Core,
    caller: Caller<'_>,
    id: &str,
    key: &str,
    protect_snapshot_support: bool,
) -> CoreResult<()> {
    let row = require_visible(core, caller, id).await?;
    if (protect_snapshot_support && key == SNAPSHOT_SUPPORT) || REQUIRED_EXTRA_SPECS.contains(&key)
    {
        return Err(CoreError::forbidden(format!(
            "Extra spec '{key}' can't be deleted."
        )));
    }
    match core.store.delete_share_type_extra_spec(row.id, key).await {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => {
            return Err(CoreError::not_found(format!(
                "Share Type {id} has no extra specs with key {key}."
            )));
        }
        Err(other) => return Err(other.into()),
    }
    tracing::info!(share_type.id = %row.id, "deleted extra spec {key} of share type {}", row.id);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Project access
// ---------------------------------------------------------------------------------------

/// oslo's `uuidutils.is_uuid_like`: after dropping `urn:`/`uuid:`, surrounding braces and
/// hyphens, exactly 32 hex digits.
pub fn is_uuid_like(value: &str) -> bool {
    let cleaned = value.replace("urn:", "").replace("uuid:", "");
    let cleaned = cleaned.trim_matches(['{', '}']).replace('-', "");
    cleaned.len() == 32 && cleaned.chars().all(|c| c.is_ascii_hexdigit())
}

/// The `project` of an access action body, which must look like a UUID.
pub fn parse_project_id(project: Option<&Value>) -> CoreResult<String> {
    match project {
        Some(Value::String(p)) if is_uuid_like(p) => Ok(p.clone()),
        other => Err(CoreError::bad_request(format!(
            "Bad project format: project is not in proper format ({})",
            other.map_or_else(|| "None".to_owned(), py_str)
        ))),
    }
}

/// The access list of a private type.
#[derive(Debug, Clone)]
pub struct ShareTypeAccess {
    /// The type's id as stored.
    pub share_type_id: Uuid,
    /// Projects the type is shared with, sorted.
    pub projects: Vec<String>,
}

/// `GET /v2/types/{id}/share_type_access`: projects a private type is shared with.
pub async fn list_share_type_access(
    core: &Core,
    caller: Caller<'_>,
    id: &str,
) -> CoreResult<ShareTypeAccess> {
    let row = find_visible(core, caller, id)
        .await?
        .ok_or_else(|| CoreError::not_found(format!("Share type {id} not found.")))?;
    if row.is_public {
        return Err(CoreError::not_found(
            "Access list not available for public share types.",
        ));
    }
    let projects = core
        .store
        .list_share_type_access(row.id)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => CoreError::not_found(format!("Share type {id} not found.")),
            other => other.into(),
        })?;
    Ok(ShareTypeAccess {
        share_type_id: row.id,
        projects,
    })
}

/// The private type behind an access change (`_verify_if_non_public_share_type`).
async fn require_private(core: &Core, caller: Caller<'_>, id: &str) -> CoreResult<ShareTypeRow> {
    let row = require_visible(core, caller, id).await?;
    if row.is_public {
        return Err(CoreError::conflict(
            "Type access modification is not applicable to public share type.",
        ));
    }
    Ok(row)
}

/// `addProjectAccess`: shares a private type with `project`.
pub async fn add_share_type_access(
    core: &Core,
    caller: Caller<'_>,
    id: &str,
    project: &str,
) -> CoreResult<()> {
    let row = require_private(core, caller, id).await?;
    core.store
        .add_share_type_access(row.id, project)
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => CoreError::conflict(format!(
                "Share type access for {id} / {project} combination already exists."
            )),
            StoreError::NotFound(_) => type_not_found(id),
            other => other.into(),
        })?;
    tracing::info!(share_type.id = %row.id, "granted project {project} access to share type {}", row.id);
    Ok(())
}

/// `removeProjectAccess`: stops sharing a private type with `project`.
pub async fn remove_share_type_access(
    core: &Core,
    caller: Caller<'_>,
    id: &str,
    project: &str,
) -> CoreResult<()> {
    let row = require_private(core, caller, id).await?;
    core.store
        .remove_share_type_access(row.id, project)
        .await
        .map_err(|e| match e {
            StoreError::NotFound(_) => CoreError::not_found(format!(
                "Share type access not found for {id} / {project} combination."
            )),
            other => other.into(),
        })?;
    tracing::info!(share_type.id = %row.id, "revoked project {project} access to share type {}", row.id);
    Ok(())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn specs(value: Value) -> Map<String, Value> {
        value
            .as_object()
            .cloned()
            .expect("test specs are an object")
    }

    #[test]
    fn py_str_matches_python() {
        assert_eq!(py_str(&json!(true)), "True");
        assert_eq!(py_str(&json!(null)), "None");
        assert_eq!(py_str(&json!(12)), "12");
        assert_eq!(py_str(&json!(1.0)), "1.0");
        assert_eq!(py_str(&json!(1.5)), "1.5");
        assert_eq!(py_str(&json!("x")), "x");
        assert_eq!(py_str(&json!(["a", 1, false])), "['a', 1, False]");
        assert_eq!(py_str(&json!({"k": "v"})), "{'k': 'v'}");
    }

    #[test]
    fn bool_from_string_follows_oslo() {
        for t in [
            json!(true),
            json!("True"),
            json!(" yes "),
            json!("1"),
            json!(1),
            json!("ON"),
            json!("t"),
        ] {
            assert_eq!(bool_from_string(&t), Some(true), "{t}");
        }
        for f in [
            json!(false),
            json!("False"),
            json!("no"),
            json!("0"),
            json!(0),
            json!("off"),
            json!("N"),
        ] {
            assert_eq!(bool_from_string(&f), Some(false), "{f}");
        }
        for x in [
            json!("maybe"),
            json!(2),
            json!(null),
            json!(""),
            json!([true]),
        ] {
            assert_eq!(bool_from_string(&x), None, "{x}");
        }
    }

    #[test]
    fn manila_message_collapses_double_period_only() {
        assert_eq!(manila_message("a..".into()), "a.");
        assert_eq!(manila_message("a.".into()), "a.");
        assert_eq!(manila_message("a...".into()), "a...");
    }

    #[test]
    fn required_spec_missing_or_invalid() {
        let err = get_valid_required_extra_specs(&Map::new()).unwrap_err();
        assert_eq!(
            err.message(),
            "Invalid extra_spec: Required extra specs 'driver_handles_share_servers' not specified."
        );
        let err = get_valid_required_extra_specs(&specs(
            json!({"driver_handles_share_servers": "maybe"}),
        ))
        .unwrap_err();
        assert_eq!(
            err.message(),
            "Invalid extra_spec: Value of required extra_spec driver_handles_share_servers is not valid."
        );
        let ok = get_valid_required_extra_specs(&specs(
            json!({"driver_handles_share_servers": false, "x": "y"}),
        ))
        .unwrap();
        assert_eq!(
            Value::Object(ok),
            json!({"driver_handles_share_servers": false})
        );
        // The `<is>` form is only for optional specs.
        assert!(
            get_valid_required_extra_specs(&specs(
                json!({"driver_handles_share_servers": "<is> True"})
            ))
            .is_err()
        );
    }

    #[test]
    fn boolean_optional_specs() {
        assert_eq!(
            parse_boolean_extra_spec("snapshot_support", &json!("<is> True")),
            Ok(true)
        );
        assert_eq!(
            parse_boolean_extra_spec("snapshot_support", &json!("<IS>false")),
            Ok(false)
        );
        assert_eq!(
            parse_boolean_extra_spec("snapshot_support", &json!(false)),
            Ok(false)
        );
        assert_eq!(
            parse_boolean_extra_spec("snapshot_support", &json!("maybe")),
            Err(SpecError::Invalid(
                "Invalid boolean extra spec snapshot_support : maybe".into()
            ))
        );
        for key in [
            SNAPSHOT_SUPPORT,
            CREATE_SHARE_FROM_SNAPSHOT_SUPPORT,
            REVERT_TO_SNAPSHOT_SUPPORT,
            MOUNT_SNAPSHOT_SUPPORT,
            MOUNT_POINT_NAME_SUPPORT,
            SNAPSHOT_INHERIT_SHARE_ACCESS_SUPPORT,
        ] {
            assert_eq!(
                is_valid_optional_extra_spec(key, &json!("True")),
                Ok(Some(true))
            );
            assert!(is_valid_optional_extra_spec(key, &json!("sometimes")).is_err());
        }
    }

    #[test]
    fn replication_type_values() {
        for ok in ["readable", "writable", "dr"] {
            assert_eq!(
                is_valid_optional_extra_spec(REPLICATION_TYPE, &json!(ok)),
                Ok(Some(true))
            );
        }
        for bad in [json!("foo"), json!("Readable"), json!(true), json!("")] {
            assert_eq!(
                is_valid_optional_extra_spec(REPLICATION_TYPE, &bad),
                Ok(Some(false)),
                "{bad}"
            );
        }
        let err =
            get_valid_optional_extra_specs(&specs(json!({"replication_type": "foo"}))).unwrap_err();
        assert_eq!(
            err,
            SpecError::Invalid(
                "Value of optional extra_spec replication_type is not valid.".into()
            )
        );
    }

    #[test]
    fn availability_zone_csv() {
        assert_eq!(
            is_valid_optional_extra_spec(AVAILABILITY_ZONES, &json!("az1, az2")),
            Ok(Some(true))
        );
        assert_eq!(
            is_valid_optional_extra_spec(AVAILABILITY_ZONES, &json!("az1,,az2")),
            Ok(Some(false))
        );
        assert_eq!(
            is_valid_optional_extra_spec(AVAILABILITY_ZONES, &json!("az1, ")),
            Ok(Some(false))
        );
        assert_eq!(sanitize_csv("az1, az2 ,az3"), "az1,az2,az3");
    }

    #[test]
    fn other_optional_specs() {
        assert_eq!(
            is_valid_optional_extra_spec(ENCRYPTION_SUPPORT, &json!("share")),
            Ok(Some(true))
        );
        assert_eq!(
            is_valid_optional_extra_spec(ENCRYPTION_SUPPORT, &json!("volume")),
            Ok(Some(false))
        );
        assert_eq!(
            is_valid_optional_extra_spec(DEFAULT_QOS_TYPE, &json!("")),
            Ok(Some(true))
        );
        assert_eq!(
            is_valid_optional_extra_spec(DEFAULT_QOS_TYPE, &json!(5)),
            Ok(Some(false))
        );
        assert_eq!(
            is_valid_optional_extra_spec(PROVISIONING_MIN_SHARE_SIZE, &json!("10")),
            Ok(Some(true))
        );
        assert_eq!(
            is_valid_optional_extra_spec(PROVISIONING_MIN_SHARE_SIZE, &json!(3)),
            Ok(Some(true))
        );
        assert_eq!(
            is_valid_optional_extra_spec(PROVISIONING_MAX_SHARE_SIZE, &json!("ten")),
            Err(SpecError::BadRequest(
                "share_size must be an integer".into()
            ))
        );
        assert_eq!(
            is_valid_optional_extra_spec(PROVISIONING_MAX_SHARE_SIZE, &json!("0")),
            Err(SpecError::BadRequest("share_size must be >= 1".into()))
        );
        assert_eq!(
            is_valid_optional_extra_spec(PROVISIONING_MAX_SHARE_SIZE, &json!(true)),
            Err(SpecError::BadRequest(
                "share_size must be an integer".into()
            ))
        );
        assert_eq!(
            is_valid_optional_extra_spec("vendor:thing", &json!("x")),
            Ok(None)
        );
    }

    #[test]
    fn key_names() {
        for ok in [
            "replication_type",
            "a.b-c:d",
            "capabilities:dedupe",
            "ümlaut",
        ] {
            assert!(is_valid_key_name(ok), "{ok}");
        }
        for bad in ["has space", "", "a/b", "a=b"] {
            assert!(!is_valid_key_name(bad), "{bad}");
        }
    }

    #[test]
    fn verify_extra_specs_rules() {
        assert_eq!(
            verify_extra_specs(&specs(json!({"replication_type": "readable", "x": true}))),
            Ok(())
        );
        assert_eq!(
            verify_extra_specs(&specs(json!({"replication_type": "bogus"}))),
            Err(VerifyError::Pair(
                "Invalid extra_spec: replication_type: bogus".into()
            ))
        );
        assert_eq!(
            verify_extra_specs(&specs(json!({"foo": ""}))),
            Err(VerifyError::Pair("Invalid extra_spec: foo: ".into()))
        );
        assert_eq!(
            verify_extra_specs(&specs(json!({"foo": 5}))),
            Err(VerifyError::Pair("Invalid extra_spec: foo: 5".into()))
        );
        let long = "x".repeat(256);
        assert!(matches!(
            verify_extra_specs(&specs(json!({"foo": long}))),
            Err(VerifyError::Pair(_))
        ));
        assert_eq!(
            verify_extra_specs(&specs(json!({"driver_handles_share_servers": "maybe"}))),
            Err(VerifyError::Pair(
                "Invalid extra_spec: driver_handles_share_servers: maybe".into()
            ))
        );
        assert!(matches!(
            verify_extra_specs(&specs(json!({"snapshot_support": "maybe"}))),
            Err(VerifyError::Raised(SpecError::Invalid(_)))
        ));
        assert!(matches!(
            verify_extra_specs(&specs(json!({"nested": {"a": "b"}}))),
            Err(VerifyError::Pair(_))
        ));
    }

    #[test]
    fn stored_values_are_python_strings() {
        let stored = to_stored(&specs(json!({"a": true, "b": false, "c": "x", "d": 3})));
        assert_eq!(stored["a"], "True");
        assert_eq!(stored["b"], "False");
        assert_eq!(stored["c"], "x");
        assert_eq!(stored["d"], "3");
    }

    #[test]
    fn is_public_filter() {
        assert_eq!(parse_is_public(None).unwrap(), Some(true));
        assert_eq!(parse_is_public(Some("ALL")).unwrap(), None);
        assert_eq!(parse_is_public(Some("false")).unwrap(), Some(false));
        assert_eq!(parse_is_public(Some("1")).unwrap(), Some(true));
        assert_eq!(
            parse_is_public(Some("x")).unwrap_err().to_string(),
            "Invalid is_public filter [x]"
        );
    }

    #[test]
    fn uuid_like() {
        assert!(is_uuid_like("2780fc88-526b-464a-a72c-ecb83f0e3929"));
        assert!(is_uuid_like("2780fc88526b464aa72cecb83f0e3929"));
        assert!(is_uuid_like("{2780FC88-526B-464A-A72C-ECB83F0E3929}"));
        assert!(is_uuid_like(
            "urn:uuid:2780fc88-526b-464a-a72c-ecb83f0e3929"
        ));
        assert!(!is_uuid_like("project-a"));
        assert!(!is_uuid_like("2780fc88-526b-464a-a72c-ecb83f0e392"));
        assert!(!is_uuid_like("+780fc88526b464aa72cecb83f0e3929"));
        assert_eq!(
            parse_project_id(Some(&json!(42))).unwrap_err().to_string(),
            "Bad project format: project is not in proper format (42)"
        );
        assert_eq!(
            parse_project_id(None).unwrap_err().to_string(),
            "Bad project format: project is not in proper format (None)"
        );
    }

    #[test]
    fn python_literal_filter() {
        assert_eq!(
            parse_py_literal("{'replication_type': 'readable', \"n\": 1, 'b': True, 'z': None}"),
            Some(json!({"replication_type": "readable", "n": 1, "b": true, "z": null}))
        );
        assert_eq!(parse_py_literal("{}"), Some(json!({})));
        assert_eq!(
            parse_py_literal("{'a': ['x', 2,]}"),
            Some(json!({"a": ["x", 2]}))
        );
        assert_eq!(parse_py_literal("{'a': 'b'"), None);
        assert_eq!(parse_py_literal("{'a': 'b'} x"), None);
        assert_eq!(parse_py_literal("import os"), None);
        assert!(parse_spec_filter("['a']").is_err());
    }

    #[test]
    fn spec_filter_matching() {
        let row = ShareTypeRow {
            id: Uuid::nil(),
            name: "t".into(),
            description: None,
            is_public: true,
            extra_specs: BTreeMap::from([
                ("replication_type".to_owned(), "readable".to_owned()),
                ("availability_zones".to_owned(), "az1,az2".to_owned()),
            ]),
            created_at: chrono::Utc::now(),
            updated_at: None,
        };
        let filter = |raw: &str| parse_spec_filter(raw).expect("valid filter");
        assert!(matches_spec_filter(
            &row,
            &filter("{'replication_type': 'readable'}")
        ));
        assert!(!matches_spec_filter(
            &row,
            &filter("{'replication_type': 'dr'}")
        ));
        assert!(!matches_spec_filter(
            &row,
            &filter("{'snapshot_support': 'True'}")
        ));
        assert!(matches_spec_filter(
            &row,
            &filter("{'availability_zones': 'az2, az1'}")
        ));
        assert!(!matches_spec_filter(
            &row,
            &filter("{'availability_zones': 'az3'}")
        ));
        let mut no_az = row.clone();
        no_az.extra_specs.remove("availability_zones");
        assert!(matches_spec_filter(
            &no_az,
            &filter("{'availability_zones': 'az3'}")
        ));
    }
}
