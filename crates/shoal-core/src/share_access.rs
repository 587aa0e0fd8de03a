//! Access rules of shares (Manila's `share/api.py::allow_access/deny_access`,
//! `api/common.py::validate_access` and `db/sqlalchemy/models.py`).
//!
//! What is persisted: a rule on the share (type, target, level, key, metadata) plus one
//! mapping per share instance carrying that instance's state (`queued_to_apply` →
//! `applying` → `active`/`error`, `queued_to_deny` → `denying` → removed). The API writes
//! the rule, its mappings and one `update_access` operation per placed instance in a single
//! store transaction; the share workers do the rest.
//!
//! What is derived, never stored:
//! * a rule's `state`: the worst mapping state ([`aggregate_rule_state`], Manila's
//!   `ShareAccessMapping.state`), so the rule is `active` only once every instance
//!   (replicas included) applied it;
//! * a share's `access_rules_status`: the worst `access_rules_status` over its `available`
//!   instances ([`access_rules_status`], Manila's `Share.access_rules_status`).
//!
//! Validation copies Manila's texts, including the messages of Python's `ipaddress`
//! module for `ip` rules, because clients and tempest compare them.

use std::collections::BTreeMap;
use std::net::Ipv6Addr;

use serde_json::{Map, Value, json};
use shoal_store::{AccessRuleRow, NewAccessRule, ShareInstanceRow, StoreError};
use uuid::Uuid;

use crate::share_types::py_str;
use crate::shares::Share;
use crate::{Core, CoreError, CoreResult, ops};

/// Rule states from worst to best (`get_aggregated_access_rules_state`).
pub const RULE_STATE_ORDER: [&str; 8] = [
    "error",
    "denying",
    "queued_to_deny",
    "queued_to_update",
    "queued_to_apply",
    "updating",
    "applying",
    "active",
];

/// Access levels a rule may have.
pub const ACCESS_LEVELS: [&str; 2] = ["rw", "ro"];

/// Instance statuses during which no rule may be added or removed
/// (`INVALID_SHARE_INSTANCE_STATUSES_FOR_ACCESS_RULE_UPDATES`, the transitional statuses).
pub const INVALID_INSTANCE_STATUSES: &[&str] = &[
    "creating",
    "deleting",
    "manage_starting",
    "unmanage_starting",
    "extending",
    "shrinking",
    "migrating",
    "migrating_to",
    "restoring",
    "reverting",
    "server_migrating",
    "server_migrating_to",
    "backup_restoring",
    "backup_creating",
    "ensuring",
];

/// 400 of an allow refused by the instance precondition.
pub const ALLOW_INVALID_INSTANCE: &str = "New access rules cannot be applied while the share or any of its replicas or migration copies lacks a valid host or is in an invalid state.";
/// 400 of a deny refused by the instance precondition.
pub const DENY_INVALID_INSTANCE: &str = "Access rules cannot be denied while the share, any of its replicas or migration copies lacks a valid host or is in an invalid state.";
/// 400 of an allow below 2.28 while some instance has errored rules.
pub const ALLOW_ERRORED_RULES: &str = "Access rules cannot be added while the share or any of its replicas or migration copies has its access_rules_status set to error. Deny any rules in error state and try again.";

/// webob's generic 400 text, for bodies Manila would choke on with a `TypeError`.
const MALFORMED: &str = "The server could not comply with the request since it is either malformed or otherwise incorrect.";

/// Reads one rule; `None` when the id is not a UUID or the rule does not exist.
pub async fn find_rule(core: &Core, access_id: &str) -> CoreResult<Option<AccessRuleRow>> {
    let Ok(id) = Uuid::parse_str(access_id) else {
        return Ok(None);
    };
    match core.store.get_access_rule(id).await {
        Ok(rule) => Ok(Some(rule)),
        Err(StoreError::NotFound(_)) => Ok(None),
        Err(err) => Err(err.into()),
    }
}

// ---------------------------------------------------------------------------------------
// Derived states
// ---------------------------------------------------------------------------------------

/// The worst of some mapping states (`None` without mappings). States outside
/// [`RULE_STATE_ORDER`] rank after `active`.
pub fn aggregate_rule_state<'a>(states: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let rank = |s: &str| {
        RULE_STATE_ORDER
            .iter()
            .position(|o| *o == s)
            .unwrap_or(RULE_STATE_ORDER.len())
    };
    // `min_by_key` keeps the first of equal ranks, like Python's stable `sorted(...)[0]`.
    states.into_iter().min_by_key(|s| rank(s))
}

/// A rule's state as the API shows it from 2.28 on (Manila's `ShareAccessMapping.state`).
pub fn rule_state(rule: &AccessRuleRow) -> Option<&str> {
    aggregate_rule_state(rule.instance_states.values().map(String::as_str))
}

/// A share's `access_rules_status`: `active` < `syncing` < `error`, worst over the
/// instances whose status is `available` (Manila's `get_access_rules_status`).
pub fn access_rules_status(instances: &[ShareInstanceRow]) -> &'static str {
    let priority = |s: &str| match s {
        "active" => Some(0),
        "syncing" => Some(1),
        "error" => Some(2),
        _ => None,
    };
    let mut worst = ("active", 0);
    for instance in instances.iter().filter(|i| i.status == "available") {
        let Some(p) = priority(&instance.access_rules_status) else {
            continue;
        };
        if p > worst.1 {
            worst = match p {
                1 => ("syncing", 1),
                _ => ("error", 2),
            };
        }
    }
    worst.0
}

/// The `state` shown below 2.28: the share's `access_rules_status`, `syncing` shown as
/// `new` (`translate_transitional_statuses`).
pub fn legacy_rule_state(instances: &[ShareInstanceRow]) -> &'static str {
    match access_rules_status(instances) {
        "syncing" => "new",
        other => other,
    }
}

/// Manila's `_any_invalid_share_instance`: an instance without host, in a transitional
/// status, or (unless `allow_error`) in `error`.
pub fn any_invalid_instance(instances: &[ShareInstanceRow], allow_error: bool) -> bool {
    instances.iter().any(|i| {
        i.host.is_empty()
            || INVALID_INSTANCE_STATUSES.contains(&i.status.as_str())
            || (!allow_error && i.status == "error")
    })
}

// ---------------------------------------------------------------------------------------
// Validation (manila/api/common.py)
// ---------------------------------------------------------------------------------------

/// Python's `repr()` of a string (quote choice and escapes as CPython prints them).
fn py_repr_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let code = u32::from(c);
                if code < 0x100 {
                    out.push_str(&format!("\\x{code:02x}"));
                } else {
                    out.push_str(&format!("\\u{code:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Python's `str.isspace()` for one character (what `\s` and `strip()` use).
fn py_isspace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Outcome of parsing one address family.
enum NetError {
    /// `AddressValueError`/`NetmaskValueError`: `ip_network` tries the next family.
    Parse(String),
    /// A valid network with host bits set: a plain `ValueError`, reported as is.
    HostBits(String),
}

/// Parses one IPv4 octet the way `IPv4Address._parse_octet` does.
fn parse_octet(octet: &str) -> Result<u32, String> {
    if octet.is_empty() {
        return Err("Empty octet not permitted".to_owned());
    }
    if !octet.chars().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "Only decimal digits permitted in {}",
            py_repr_str(octet)
        ));
    }
    if octet.len() > 3 {
        return Err(format!(
            "At most 3 characters permitted in {}",
            py_repr_str(octet)
        ));
    }
    if octet != "0" && octet.starts_with('0') {
        return Err(format!(
            "Leading zeros are not permitted in {}",
            py_repr_str(octet)
        ));
    }
    let value: u32 = octet.parse().map_err(|_| "invalid octet".to_owned())?;
    if value > 255 {
        return Err(format!("Octet {value} (> 255) not permitted"));
    }
    Ok(value)
}

/// `IPv4Address._ip_int_from_string`.
fn parse_ipv4(text: &str) -> Result<u32, String> {
    if text.is_empty() {
        return Err("Address cannot be empty".to_owned());
    }
    let octets: Vec<&str> = text.split('.').collect();
    if octets.len() != 4 {
        return Err(format!("Expected 4 octets in {}", py_repr_str(text)));
    }
    let mut value = 0u32;
    for octet in octets {
        let parsed = parse_octet(octet).map_err(|e| format!("{e} in {}", py_repr_str(text)))?;
        value = (value << 8) | parsed;
    }
    Ok(value)
}

/// A prefix length written as decimal digits (`_prefix_from_prefix_string`).
fn prefix_from_digits(text: &str, max: u32) -> Option<u32> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    // Long runs of digits (leading zeros included) are still a number to Python.
    let trimmed = text.trim_start_matches('0');
    if trimmed.len() > 3 {
        return None;
    }
    let value: u32 = if trimmed.is_empty() {
        0
    } else {
        trimmed.parse().ok()?
    };
    (value <= max).then_some(value)
}

/// The prefix length of a contiguous netmask (`_prefix_from_ip_int`).
fn prefix_from_mask(mask: u32) -> Option<u32> {
    let ones = mask.leading_ones();
    (mask.checked_shl(ones).unwrap_or(0) == 0).then_some(ones)
}

/// An IPv4 netmask: prefix length, dotted netmask or dotted hostmask (`_make_netmask`).
fn parse_ipv4_netmask(text: &str) -> Result<u32, String> {
    let invalid = || format!("{} is not a valid netmask", py_repr_str(text));
    if let Some(prefix) = prefix_from_digits(text, 32) {
        return Ok(prefix);
    }
    let mask = parse_ipv4(text).map_err(|_| invalid())?;
    prefix_from_mask(mask)
        .or_else(|| prefix_from_mask(!mask))
        .ok_or_else(invalid)
}

fn ipv4_text(value: u32) -> String {
    let [a, b, c, d] = value.to_be_bytes();
    format!("{a}.{b}.{c}.{d}")
}

/// `IPv4Network(text)` (strict): the network as `(address, prefix)`.
fn parse_ipv4_network(text: &str) -> Result<(u32, u32), NetError> {
    let parts: Vec<&str> = text.split('/').collect();
    if parts.len() > 2 {
        return Err(NetError::Parse(format!(
            "Only one '/' permitted in {}",
            py_repr_str(text)
        )));
    }
    let address = parse_ipv4(parts[0]).map_err(NetError::Parse)?;
    let prefix = match parts.get(1) {
        None => 32,
        Some(mask) => parse_ipv4_netmask(mask).map_err(NetError::Parse)?,
    };
    let netmask = u32::MAX.checked_shl(32 - prefix).unwrap_or(0);
    if address & netmask != address {
        return Err(NetError::HostBits(format!(
            "{}/{prefix} has host bits set",
            ipv4_text(address)
        )));
    }
    Ok((address, prefix))
}

/// Python's compressed IPv6 text (`_compress_hextets`): lowercase, no leading zeros, the
/// leftmost longest run of two or more zero groups as `::`.
fn ipv6_text(address: Ipv6Addr) -> String {
    let groups = address.segments();
    let (mut best_start, mut best_len) = (0usize, 0usize);
    let mut run_start = 0usize;
    let mut run_len = 0usize;
    for (i, g) in groups.iter().enumerate() {
        if *g == 0 {
            if run_len == 0 {
                run_start = i;
            }
            run_len += 1;
            if run_len > best_len {
                best_start = run_start;
                best_len = run_len;
            }
        } else {
            run_len = 0;
        }
    }
    let hex = |gs: &[u16]| {
        gs.iter()
            .map(|g| format!("{g:x}"))
            .collect::<Vec<_>>()
            .join(":")
    };
    if best_len > 1 {
        let head = hex(&groups[..best_start]);
        let tail = hex(&groups[best_start + best_len..]);
        format!("{head}::{tail}")
    } else {
        hex(&groups)
    }
}

/// `IPv6Network(text)` (strict): `(address, scope, prefix)`.
fn parse_ipv6_network(text: &str) -> Result<(Ipv6Addr, Option<String>, u32), NetError> {
    let parse_error = || NetError::Parse(String::new());
    let parts: Vec<&str> = text.split('/').collect();
    if parts.len() > 2 {
        return Err(parse_error());
    }
    let (address, scope) = match parts[0].split_once('%') {
        None => (parts[0], None),
        Some((_, scope)) if scope.is_empty() || scope.contains('%') => return Err(parse_error()),
        Some((address, scope)) => (address, Some(scope.to_owned())),
    };
    let address: Ipv6Addr = address.parse().map_err(|_| parse_error())?;
    let prefix = match parts.get(1) {
        None => 128,
        Some(mask) => prefix_from_digits(mask, 128).ok_or_else(parse_error)?,
    };
    let bits = u128::from(address);
    let netmask = u128::MAX.checked_shl(128 - prefix).unwrap_or(0);
    if bits & netmask != bits {
        let scope_text = scope
            .as_deref()
            .map(|s| format!("%{s}"))
            .unwrap_or_default();
        return Err(NetError::HostBits(format!(
            "{}{scope_text}/{prefix} has host bits set",
            ipv6_text(address)
        )));
    }
    Ok((address, scope, prefix))
}

/// A parsed `ip` rule target, comparable the way `ipaddress` networks compare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IpNetwork {
    /// Address and prefix length.
    V4(u32, u32),
    /// Address, scope id and prefix length.
    V6(Ipv6Addr, Option<String>, u32),
}

/// `ipaddress.ip_network(text)` with Python's error texts.
pub fn parse_ip_network(text: &str) -> Result<IpNetwork, String> {
    match parse_ipv4_network(text) {
        Ok((address, prefix)) => return Ok(IpNetwork::V4(address, prefix)),
        Err(NetError::HostBits(message)) => return Err(message),
        Err(NetError::Parse(_)) => {}
    }
    match parse_ipv6_network(text) {
        Ok((address, scope, prefix)) => Ok(IpNetwork::V6(address, scope, prefix)),
        Err(NetError::HostBits(message)) => Err(message),
        Err(NetError::Parse(_)) => Err(format!(
            "{} does not appear to be an IPv4 or IPv6 network",
            py_repr_str(text)
        )),
    }
}

/// `validate_ip`: `IPv4Network` below 2.38, `ip_network` (IPv4 or IPv6) from 2.38.
pub fn validate_ip(text: &str, enable_ipv6: bool) -> CoreResult<()> {
    let result = if enable_ipv6 {
        parse_ip_network(text).map(|_| ())
    } else {
        parse_ipv4_network(text).map(|_| ()).map_err(|e| match e {
            NetError::Parse(m) | NetError::HostBits(m) => m,
        })
    };
    result.map_err(CoreError::bad_request)
}

/// `validate_username`: 4–255 characters (the first one free), none of `"/\[]:;|=,+*?<>`
/// after the first, and not only periods, spaces or bars.
pub fn validate_username(name: &str) -> CoreResult<()> {
    if !name.is_empty() && name.chars().all(|c| py_isspace(c) || c == '|' || c == '.') {
        return Err(CoreError::bad_request(
            "Invalid user or group name,cannot consist solely of periods or spaces.",
        ));
    }
    let chars: Vec<char> = name.chars().collect();
    let forbidden = |c: &char| "\"/\\[]:;|=,+*?<>".contains(*c);
    // `.[^…]{3,254}$`: `.` is anything but a newline, `$` also matches before a final
    // newline (which the negated class accepts too).
    let valid = match chars.split_first() {
        Some((first, rest)) if *first != '\n' && !rest.iter().any(forbidden) => {
            let len = rest.len();
            (3..=254).contains(&len) || (len == 255 && rest.last() == Some(&'\n'))
        }
        _ => false,
    };
    if valid {
        Ok(())
    } else {
        Err(CoreError::bad_request(
            "Invalid user or group name. Must be 4-255 characters and consist of alphanumeric characters and exclude special characters \"/\\[]:;|=,+*?<>",
        ))
    }
}

/// `validate_common_name` (on the stripped target): 1–64 characters.
pub fn validate_common_name(name: &str) -> CoreResult<()> {
    let len = name.trim_matches(py_isspace).chars().count();
    if (1..=64).contains(&len) {
        Ok(())
    } else {
        Err(CoreError::bad_request(
            "Invalid CN (common name). Must be 1-64 chars long.",
        ))
    }
}

/// `validate_cephx_id`: not empty, ASCII printable, no periods.
pub fn validate_cephx_id(id: &str) -> CoreResult<()> {
    if id.is_empty() {
        return Err(CoreError::bad_request("Ceph IDs may not be empty."));
    }
    // Python's `string.printable`: ASCII graphic characters plus the six whitespace ones.
    let printable = |c: char| c.is_ascii_graphic() || " \t\n\r\x0b\x0c".contains(c);
    if !id.chars().all(printable) {
        return Err(CoreError::bad_request(
            "Ceph IDs must consist of ASCII printable characters.",
        ));
    }
    if id.contains('.') {
        return Err(CoreError::bad_request("Ceph IDs may not contain periods."));
    }
    Ok(())
}

/// Manila's `validate_access` over JSON values: returns the rule's type and target as
/// strings. A target of the wrong JSON type is refused where Python would fail on it.
pub fn validate_access(
    access_type: &Value,
    access_to: &Value,
    enable_ceph: bool,
    enable_ipv6: bool,
) -> CoreResult<(String, String)> {
    let kind = access_type.as_str().unwrap_or_default();
    match (kind, access_to) {
        // `validate_ip` formats the value with `str()` first.
        ("ip", to) => {
            let text = py_str(to);
            validate_ip(&text, enable_ipv6)?;
            Ok(("ip".to_owned(), text))
        }
        ("user", Value::String(to)) => {
            validate_username(to)?;
            Ok(("user".to_owned(), to.clone()))
        }
        ("cert", Value::String(to)) => {
            validate_common_name(to)?;
            Ok(("cert".to_owned(), to.clone()))
        }
        ("cephx", to) if enable_ceph => match to {
            Value::String(to) => {
                validate_cephx_id(to)?;
                Ok(("cephx".to_owned(), to.clone()))
            }
            // `if not cephx_id` catches every falsy value first.
            to if !truthy(to) => Err(CoreError::bad_request("Ceph IDs may not be empty.")),
            _ => Err(CoreError::bad_request(MALFORMED)),
        },
        ("user" | "cert", _) => Err(CoreError::bad_request(MALFORMED)),
        _ if enable_ceph => Err(CoreError::bad_request(
            "Only 'ip', 'user', 'cert' or 'cephx' access types are supported.",
        )),
        _ => Err(CoreError::bad_request(
            "Only 'ip', 'user' or 'cert' access types are supported.",
        )),
    }
}

/// Python truthiness of a JSON value.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

/// The access level of an allow request: absent or null is `rw`.
pub fn validate_access_level(level: Option<&Value>) -> CoreResult<String> {
    match level {
        None | Some(Value::Null) => Ok("rw".to_owned()),
        Some(Value::String(l)) if ACCESS_LEVELS.contains(&l.as_str()) => Ok(l.clone()),
        Some(other) => Err(CoreError::bad_request(format!(
            "Invalid access rule: Invalid share access level: {}.",
            py_str(other)
        ))),
    }
}

/// `check_metadata_properties`: keys 1–255 characters, values 1–1023 characters.
pub fn validate_metadata(metadata: Option<&Value>) -> CoreResult<BTreeMap<String, String>> {
    let map = match metadata {
        None => return Ok(BTreeMap::new()),
        Some(value) if !truthy(value) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(_) => return Err(CoreError::bad_request("Invalid metadata.")),
    };
    let mut out = BTreeMap::new();
    for (key, value) in map {
        if key.is_empty() {
            return Err(CoreError::bad_request("Metadata property key is blank."));
        }
        if key.chars().count() > 255 {
            return Err(CoreError::bad_request(
                "Metadata property key is greater than 255 characters.",
            ));
        }
        if !truthy(value) {
            return Err(CoreError::bad_request("Metadata property value is blank."));
        }
        // `len()` of a number or `True` raises `TypeError`: webob's bare 400.
        let Value::String(text) = value else {
            return Err(CoreError::bad_request(MALFORMED));
        };
        if text.chars().count() > 1023 {
            return Err(CoreError::bad_request(
                "Metadata property value is greater than 1023 characters.",
            ));
        }
        out.insert(key.clone(), text.clone());
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Allow, deny, list
// ---------------------------------------------------------------------------------------

/// An allow request as the API received it, with the microversion's switches.
#[derive(Debug, Clone, Copy)]
pub struct AllowAccess<'a> {
    /// `access_type` of the body (missing: the API refuses before calling).
    pub access_type: &'a Value,
    /// `access_to` of the body.
    pub access_to: &'a Value,
    /// `access_level`, `rw` when absent.
    pub access_level: Option<&'a Value>,
    /// `metadata` (≥2.45; the API passes `None` below).
    pub metadata: Option<&'a Value>,
    /// `cephx` rules are allowed (≥2.13).
    pub enable_ceph: bool,
    /// IPv6 networks are allowed (≥2.38).
    pub enable_ipv6: bool,
    /// Instances with errored rules do not block (≥2.28).
    pub allow_on_error_status: bool,
    /// Instances in `error` do not block (≥2.74).
    pub allow_on_error_state: bool,
}

/// Whether the share already has a rule for this type and target, among rules that still
/// have instance mappings (`_check_for_existing_access`): `ip` targets compare as networks
/// (`10.0.0.1` equals `10.0.0.1/32`), other types literally.
fn rule_exists(rules: &[AccessRuleRow], access_type: &str, access_to: &str) -> bool {
    rules.iter().any(|r| {
        r.access_type == access_type
            && !r.instance_states.is_empty()
            && same_access_to(access_type, &r.access_to, access_to)
    })
}

/// Whether an existing rule's `access_to` names the same target as a requested one
/// (Manila's `_check_for_existing_access`, shared by share and snapshot rules): `ip`
/// targets compare as networks, so `1.2.3.4` and `1.2.3.4/32` are the same rule; other
/// types compare as text.
pub fn same_access_to(access_type: &str, existing: &str, wanted: &str) -> bool {
    if access_type != "ip" {
        return existing == wanted;
    }
    // Manila narrows the candidates with `startswith(address)` before comparing networks.
    let address = wanted.split('/').next().unwrap_or_default();
    if !existing.starts_with(address) {
        return false;
    }
    match (parse_ip_network(existing), parse_ip_network(wanted)) {
        (Ok(existing), Ok(wanted)) => existing == wanted,
        _ => false,
    }
}

fn access_exists(access_type: &str, access_to: &str) -> CoreError {
    CoreError::bad_request(format!("Share access {access_type}:{access_to} exists."))
}

/// Adds a rule to a share and queues it on every instance (Manila's controller
/// `_allow_access` from the errored-rules check on, then `share_api.allow_access`).
pub async fn allow_access(
    core: &Core,
    share: &Share,
    req: AllowAccess<'_>,
) -> CoreResult<AccessRuleRow> {
    if !req.allow_on_error_status
        && share
            .instances
            .iter()
            .any(|i| i.access_rules_status == "error")
    {
        return Err(CoreError::bad_request(ALLOW_ERRORED_RULES));
    }
    let (access_type, access_to) = validate_access(
        req.access_type,
        req.access_to,
        req.enable_ceph,
        req.enable_ipv6,
    )?;
    let access_level = validate_access_level(req.access_level)?;
    let metadata = validate_metadata(req.metadata)?;
    let rules = core.store.list_access_rules(share.row.id).await?;
    if rule_exists(&rules, &access_type, &access_to) {
        return Err(access_exists(&access_type, &access_to));
    }
    if any_invalid_instance(&share.instances, req.allow_on_error_state) {
        return Err(CoreError::bad_request(ALLOW_INVALID_INSTANCE));
    }
    let now = core.now();
    let operations = share
        .instances
        .iter()
        .filter_map(|i| ops::for_instance_host(ops::UPDATE_ACCESS, i.id, &i.host, json!({}), now))
        .collect();
    let new = NewAccessRule {
        id: Uuid::new_v4(),
        share_id: share.row.id,
        access_type: access_type.clone(),
        access_to: access_to.clone(),
        access_level,
        access_key: None,
        metadata,
        instance_ids: share.instances.iter().map(|i| i.id).collect(),
        operations,
        now,
    };
    let rule = match core.store.insert_access_rule(new).await {
        Ok(rule) => rule,
        // A concurrent allow of the same rule won the unique constraint.
        Err(StoreError::Conflict(_)) => return Err(access_exists(&access_type, &access_to)),
        Err(StoreError::NotFound(_)) => {
            return Err(CoreError::not_found(
                "NotFound: Resource could not be found.",
            ));
        }
        Err(err) => return Err(err.into()),
    };
    tracing::info!(
        share.id = %share.row.id,
        access.id = %rule.id,
        "allowed {access_type} access to {access_to} on share {}",
        share.row.id
    );
    core.wake_workers();
    Ok(rule)
}

/// Starts removing `rule` from every instance of `share` (Manila's `share_api.deny_access`):
/// every mapping goes to `queued_to_deny` and each mapped, placed instance gets an
/// `update_access` operation. A rule without any mapping is removed at once.
pub async fn deny_access(
    core: &Core,
    share: &Share,
    rule: &AccessRuleRow,
    allow_on_error_state: bool,
) -> CoreResult<()> {
    if any_invalid_instance(&share.instances, allow_on_error_state) {
        return Err(CoreError::bad_request(DENY_INVALID_INSTANCE));
    }
    if rule.instance_states.is_empty() {
        // An orphaned rule: no worker will ever see it, so drop it here (Manila does too).
        match core
            .store
            .remove_instance_access(rule.id, Uuid::nil())
            .await
        {
            Ok(_) | Err(StoreError::NotFound(_)) => return Ok(()),
            Err(err) => return Err(err.into()),
        }
    }
    let now = core.now();
    let operations = share
        .instances
        .iter()
        .filter(|i| rule.instance_states.contains_key(&i.id))
        .filter_map(|i| ops::for_instance_host(ops::UPDATE_ACCESS, i.id, &i.host, json!({}), now))
        .collect();
    match core
        .store
        .mark_access_rule_for_deny(rule.id, operations, now)
        .await
    {
        Ok(_) => {}
        // Already gone (a concurrent deny finished): nothing left to do.
        Err(StoreError::NotFound(_)) => return Ok(()),
        Err(err) => return Err(err.into()),
    }
    tracing::info!(
        share.id = %share.row.id,
        access.id = %rule.id,
        "denying access rule {} on share {}",
        rule.id,
        share.row.id
    );
    core.wake_workers();
    Ok(())
}

/// 400 of a level update while an instance cannot take it (`InvalidShare`).
pub const UPDATE_INVALID_INSTANCE: &str = "Access rules cannot be updated while the share, any of its replicas or migration copies lacks a valid host or is in an invalid state.";

/// Changes the level of `rule` (Manila's `share_api.update_access`, 2.88): the rule's
/// mappings go to `queued_to_update` and every placed instance gets an `update_access`
/// operation, in one transaction; the share workers re-apply the rule with its new level.
/// The caller has already answered a request for the level the rule has.
pub async fn update_access_level(
    core: &Core,
    share: &Share,
    rule: &AccessRuleRow,
    access_level: &str,
) -> CoreResult<AccessRuleRow> {
    if any_invalid_instance(&share.instances, true) {
        return Err(CoreError::bad_request(UPDATE_INVALID_INSTANCE));
    }
    let now = core.now();
    let operations = share
        .instances
        .iter()
        .filter(|i| rule.instance_states.contains_key(&i.id))
        .filter_map(|i| ops::for_instance_host(ops::UPDATE_ACCESS, i.id, &i.host, json!({}), now))
        .collect();
    let updated = match core
        .store
        .update_access_rule_level(rule.id, access_level, operations, now)
        .await
    {
        Ok(updated) => updated,
        Err(StoreError::NotFound(_)) => {
            return Err(CoreError::not_found(format!(
                "Share access rule {} not found.",
                rule.id
            )));
        }
        Err(err) => return Err(err.into()),
    };
    tracing::info!(
        share.id = %share.row.id,
        access.id = %rule.id,
        "access rule {} of share {} set to {access_level}",
        rule.id,
        share.row.id
    );
    core.wake_workers();
    Ok(updated)
}

// ---------------------------------------------------------------------------------------
// Rule metadata (2.45+, `api/v2/share_access_metadata.py`)
// ---------------------------------------------------------------------------------------

/// 404 of the metadata API for a rule that does not exist or whose share the caller may
/// not see: `share_api.access_get` raises a bare `exception.NotFound`.
pub const METADATA_RULE_NOT_FOUND: &str = "Resource could not be found.";
/// 404 of a metadata key the rule does not have (`ShareAccessMetadataNotFound`, whose
/// text names neither the key nor the rule).
pub const METADATA_KEY_NOT_FOUND: &str = "Share access rule metadata does not exist.";
/// 400 of a blank key or value in a metadata update (`InvalidMetadata`).
pub const INVALID_METADATA: &str = "Invalid metadata.";
/// 400 of a key over 255 or a value over 1023 characters in a metadata update
/// (`InvalidMetadataSize`).
pub const INVALID_METADATA_SIZE: &str = "Invalid metadata size.";

/// Validates the `metadata` object of `PUT /v2/share-access-rules/{id}/metadata`.
/// Manila runs `check_metadata_properties` but `update_share_access_metadata` re-raises
/// its errors without their texts, so the answers are the exceptions' default messages:
/// a blank key or value (Python-falsy: `""`, `null`, `false`, `0`, `[]`, `{}`) is
/// [`INVALID_METADATA`], a key over 255 or a value over 1023 characters is
/// [`INVALID_METADATA_SIZE`]. A number or `true` makes Python's `len()` raise `TypeError`,
/// which Manila answers with webob's bare 400. Deliberate difference: a non-empty list or
/// object within the length limit reaches Manila's database and fails there (500); it is
/// the same bare 400 here.
pub fn validate_metadata_update(
    metadata: &Map<String, Value>,
) -> CoreResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (key, value) in metadata {
        if key.is_empty() {
            return Err(CoreError::bad_request(INVALID_METADATA));
        }
        if key.chars().count() > 255 {
            return Err(CoreError::bad_request(INVALID_METADATA_SIZE));
        }
        if !truthy(value) {
            return Err(CoreError::bad_request(INVALID_METADATA));
        }
        let text = match value {
            Value::String(text) => text,
            Value::Array(items) if items.len() > 1023 => {
                return Err(CoreError::bad_request(INVALID_METADATA_SIZE));
            }
            Value::Object(items) if items.len() > 1023 => {
                return Err(CoreError::bad_request(INVALID_METADATA_SIZE));
            }
            _ => return Err(CoreError::bad_request(MALFORMED)),
        };
        if text.chars().count() > 1023 {
            return Err(CoreError::bad_request(INVALID_METADATA_SIZE));
        }
        out.insert(key.clone(), text.clone());
    }
    Ok(out)
}

/// Adds or overwrites `metadata` (already validated) on `rule` and keeps its other keys
/// (`share_access_metadata_update`); returns every key the rule has afterwards. The API
/// answers with the keys sent, as Manila does.
pub async fn set_access_rule_metadata(
    core: &Core,
    rule: &AccessRuleRow,
    metadata: &BTreeMap<String, String>,
) -> CoreResult<BTreeMap<String, String>> {
    match core.store.set_access_rule_metadata(rule.id, metadata).await {
        Ok(all) => {
            tracing::info!(
                access.id = %rule.id,
                "set metadata keys {:?} of access rule {}",
                metadata.keys().collect::<Vec<_>>(),
                rule.id
            );
            Ok(all)
        }
        // Denied and removed since the caller read it.
        Err(StoreError::NotFound(_)) => Err(CoreError::not_found(METADATA_RULE_NOT_FOUND)),
        Err(err) => Err(err.into()),
    }
}

/// Removes one metadata key of `rule` (`share_access_metadata_delete`): 404
/// [`METADATA_KEY_NOT_FOUND`] when the rule does not have it.
pub async fn delete_access_rule_metadata_key(
    core: &Core,
    rule: &AccessRuleRow,
    key: &str,
) -> CoreResult<()> {
    if !rule.metadata.contains_key(key) {
        return Err(CoreError::not_found(METADATA_KEY_NOT_FOUND));
    }
    match core
        .store
        .delete_access_rule_metadata_key(rule.id, key)
        .await
    {
        Ok(()) => {
            tracing::info!(
                access.id = %rule.id,
                "deleted metadata key {key:?} of access rule {}",
                rule.id
            );
            Ok(())
        }
        // A concurrent call removed the key, or the whole rule.
        Err(StoreError::NotFound(_)) => match find_rule(core, &rule.id.to_string()).await? {
            Some(_) => Err(CoreError::not_found(METADATA_KEY_NOT_FOUND)),
            None => Err(CoreError::not_found(METADATA_RULE_NOT_FOUND)),
        },
        Err(err) => Err(err.into()),
    }
}

/// Filters of a rule list (`share_access_get_all_for_share`): exact matches on the
/// columns, and every metadata pair present on the rule.
#[derive(Debug, Clone, Default)]
pub struct RuleFilter {
    /// Exact rule id.
    pub id: Option<String>,
    /// Exact type.
    pub access_type: Option<String>,
    /// Exact target.
    pub access_to: Option<String>,
    /// Exact level.
    pub access_level: Option<String>,
    /// Exact key.
    pub access_key: Option<String>,
    /// Metadata pairs the rule must carry.
    pub metadata: BTreeMap<String, String>,
}

impl RuleFilter {
    fn matches(&self, rule: &AccessRuleRow) -> bool {
        let eq = |want: &Option<String>, have: Option<&str>| {
            want.as_deref().is_none_or(|w| have == Some(w))
        };
        let id = rule.id.to_string();
        eq(&self.id, Some(&id))
            && eq(&self.access_type, Some(&rule.access_type))
            && eq(&self.access_to, Some(&rule.access_to))
            && eq(&self.access_level, Some(&rule.access_level))
            && eq(&self.access_key, rule.access_key.as_deref())
            && self
                .metadata
                .iter()
                .all(|(k, v)| rule.metadata.get(k) == Some(v))
    }
}

/// The share's rules that still have instance mappings, filtered.
pub async fn list_access_rules(
    core: &Core,
    share: &Share,
    filter: &RuleFilter,
) -> CoreResult<Vec<AccessRuleRow>> {
    let rules = core.store.list_access_rules(share.row.id).await?;
    Ok(rules
        .into_iter()
        .filter(|r| !r.instance_states.is_empty() && filter.matches(r))
        .collect())
}

/// Validates the ≥2.82 list filters (`_validate_search_opts`).
pub fn validate_search_opts(
    access_type: Option<&str>,
    access_to: Option<&str>,
    access_level: Option<&str>,
) -> CoreResult<()> {
    let access_type = access_type.filter(|t| !t.is_empty());
    let access_to = access_to.filter(|t| !t.is_empty());
    if let Some(kind) = access_type
        && !["ip", "user", "cert", "cephx"].contains(&kind)
    {
        return Err(CoreError::bad_request(format!(
            "Invalid or unsupported share access type: {kind}."
        )));
    }
    if access_to.is_some() && access_type.is_none() {
        // Manila's `InvalidInput` text, whose doubled final period Manila collapses.
        return Err(CoreError::bad_request(
            "Invalid input received: 'access_type' parameter must be provided when specifying 'access_to'.",
        ));
    }
    if let (Some(kind), Some(to)) = (access_type, access_to) {
        validate_access(
            &Value::String(kind.to_owned()),
            &Value::String(to.to_owned()),
            true,
            true,
        )?;
    }
    if let Some(level) = access_level.filter(|l| !l.is_empty())
        && !ACCESS_LEVELS.contains(&level)
    {
        return Err(CoreError::bad_request(format!(
            "Invalid or unsupported share access level: {level}."
        )));
    }
    Ok(())
}

/// Parses the `metadata` list filter, a Python dict literal of strings
/// (`ast.literal_eval`); anything else is 400.
pub fn parse_metadata_filter(raw: &str) -> CoreResult<BTreeMap<String, String>> {
    let bad = || CoreError::bad_request(format!("Invalid metadata filter: {raw}"));
    let Some(Value::Object(map)) = parse_flat_dict(raw) else {
        return Err(bad());
    };
    Ok(map.into_iter().map(|(k, v)| (k, py_str(&v))).collect())
}

/// A flat Python dict literal: string keys, scalar values (strings, numbers, `True`,
/// `False`, `None`).
fn parse_flat_dict(text: &str) -> Option<Value> {
    let chars: Vec<char> = text.chars().collect();
    let mut pos = 0usize;
    let skip_ws = |pos: &mut usize| {
        while chars.get(*pos).is_some_and(|c| c.is_whitespace()) {
            *pos += 1;
        }
    };
    let string = |pos: &mut usize| -> Option<String> {
        let quote = *chars.get(*pos)?;
        if quote != '\'' && quote != '"' {
            return None;
        }
        *pos += 1;
        let mut out = String::new();
        loop {
            let c = *chars.get(*pos)?;
            *pos += 1;
            match c {
                c if c == quote => return Some(out),
                '\\' => {
                    let e = *chars.get(*pos)?;
                    *pos += 1;
                    out.push(match e {
                        'n' => '\n',
                        't' => '\t',
                        'r' => '\r',
                        other => other,
                    });
                }
                c => out.push(c),
            }
        }
    };
    skip_ws(&mut pos);
    if chars.get(pos) != Some(&'{') {
        return None;
    }
    pos += 1;
    let mut map = Map::new();
    loop {
        skip_ws(&mut pos);
        if chars.get(pos) == Some(&'}') {
            pos += 1;
            break;
        }
        let key = string(&mut pos)?;
        skip_ws(&mut pos);
        if chars.get(pos) != Some(&':') {
            return None;
        }
        pos += 1;
        skip_ws(&mut pos);
        let value = if matches!(chars.get(pos), Some('\'' | '"')) {
            Value::String(string(&mut pos)?)
        } else {
            let start = pos;
            while chars
                .get(pos)
                .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | '.' | '+' | '-'))
            {
                pos += 1;
            }
            let word: String = chars[start..pos].iter().collect();
            match word.as_str() {
                "True" => Value::Bool(true),
                "False" => Value::Bool(false),
                "None" => Value::Null,
                number => {
                    if let Ok(i) = number.parse::<i64>() {
                        Value::from(i)
                    } else {
                        Value::from(number.parse::<f64>().ok().filter(|f| f.is_finite())?)
                    }
                }
            }
        };
        map.insert(key, value);
        skip_ws(&mut pos);
        match chars.get(pos) {
            Some(',') => pos += 1,
            Some('}') => {
                pos += 1;
                break;
            }
            _ => return None,
        }
    }
    skip_ws(&mut pos);
    (pos == chars.len()).then_some(Value::Object(map))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip_error(text: &str, v6: bool) -> String {
        validate_ip(text, v6).unwrap_err().to_string()
    }

    #[test]
    fn ipv4_messages_match_python() {
        // Texts produced by CPython 3.11's ipaddress.IPv4Network.
        assert_eq!(
            ip_error("10.0.0.1/24", false),
            "10.0.0.1/24 has host bits set"
        );
        assert_eq!(ip_error("abc", false), "Expected 4 octets in 'abc'");
        assert_eq!(
            ip_error("10.0.0.256", false),
            "Octet 256 (> 255) not permitted in '10.0.0.256'"
        );
        assert_eq!(
            ip_error("10.0.0.0/33", false),
            "'33' is not a valid netmask"
        );
        assert_eq!(
            ip_error("2001:db8::1/64", false),
            "Expected 4 octets in '2001:db8::1'"
        );
        assert_eq!(
            ip_error("1.2.3.4/0.0.0.255", false),
            "1.2.3.4/24 has host bits set"
        );
        assert_eq!(
            ip_error("1.2.3.4/1.2.3.4", false),
            "'1.2.3.4' is not a valid netmask"
        );
        assert_eq!(ip_error("", false), "Address cannot be empty");
        assert_eq!(
            ip_error("01.2.3.4", false),
            "Leading zeros are not permitted in '01' in '01.2.3.4'"
        );
        assert_eq!(
            ip_error("1/2/3", false),
            "Only one '/' permitted in '1/2/3'"
        );
        assert_eq!(ip_error("1.2.3.4/x", false), "'x' is not a valid netmask");
        assert_eq!(
            ip_error("1.2.3.a", false),
            "Only decimal digits permitted in 'a' in '1.2.3.a'"
        );
        assert_eq!(
            ip_error("1..3.4", false),
            "Empty octet not permitted in '1..3.4'"
        );
        assert_eq!(
            ip_error("1.2.3.1234", false),
            "At most 3 characters permitted in '1234' in '1.2.3.1234'"
        );
        validate_ip("10.0.0.0/255.255.255.0", false).unwrap();
        validate_ip("10.0.0.0/24", false).unwrap();
        validate_ip("10.0.0.7", false).unwrap();
        validate_ip("0.0.0.0/0", false).unwrap();
    }

    #[test]
    fn ip_network_messages_match_python() {
        assert_eq!(
            ip_error("abc", true),
            "'abc' does not appear to be an IPv4 or IPv6 network"
        );
        assert_eq!(
            ip_error("10.0.0.1/24", true),
            "10.0.0.1/24 has host bits set"
        );
        assert_eq!(
            ip_error("2001:db8::1/64", true),
            "2001:db8::1/64 has host bits set"
        );
        assert_eq!(
            ip_error("::1/129", true),
            "'::1/129' does not appear to be an IPv4 or IPv6 network"
        );
        assert_eq!(
            ip_error("fe80::1%eth0/64", true),
            "fe80::1%eth0/64 has host bits set"
        );
        assert_eq!(
            ip_error("2001:0DB8:0:0:1:0:0:1/64", true),
            "2001:db8::1:0:0:1/64 has host bits set"
        );
        validate_ip("2001:db8::/64", true).unwrap();
        validate_ip("::1", true).unwrap();
        validate_ip("10.0.0.0/8", true).unwrap();
    }

    #[test]
    fn usernames_follow_manila_regexes() {
        // The first character is not checked against the forbidden set.
        for ok in ["alice", "abcd", "/bcd", "x y z"] {
            validate_username(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        let solely = "Invalid user or group name,cannot consist solely of periods or spaces.";
        for bad in ["....", "   ", ". |"] {
            assert_eq!(validate_username(bad).unwrap_err().to_string(), solely);
        }
        for bad in ["abc", "", "ab/cd", "user:x", &"a".repeat(256)] {
            assert!(
                validate_username(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("Invalid user or group name. Must be 4-255"),
                "{bad}"
            );
        }
        validate_username(&"a".repeat(255)).unwrap();
    }

    #[test]
    fn cert_and_cephx() {
        validate_common_name("  client.example.com ").unwrap();
        assert!(validate_common_name("   ").is_err());
        assert!(validate_common_name(&"x".repeat(65)).is_err());
        validate_cephx_id("alice").unwrap();
        assert_eq!(
            validate_cephx_id("client.alice").unwrap_err().to_string(),
            "Ceph IDs may not contain periods."
        );
        assert_eq!(
            validate_cephx_id("é").unwrap_err().to_string(),
            "Ceph IDs must consist of ASCII printable characters."
        );
    }

    #[test]
    fn access_types_depend_on_version() {
        let err = |t: Value, ceph| {
            validate_access(&t, &json!("x"), ceph, false)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(json!("cephx"), false),
            "Only 'ip', 'user' or 'cert' access types are supported."
        );
        assert_eq!(
            err(json!("nope"), true),
            "Only 'ip', 'user', 'cert' or 'cephx' access types are supported."
        );
        assert_eq!(
            validate_access(&json!("ip"), &json!(10), true, false)
                .unwrap_err()
                .to_string(),
            "Expected 4 octets in '10'"
        );
        assert_eq!(
            validate_access(&json!("ip"), &json!("10.1.0.0/16"), true, true).unwrap(),
            ("ip".to_owned(), "10.1.0.0/16".to_owned())
        );
    }

    #[test]
    fn levels_and_metadata() {
        assert_eq!(validate_access_level(None).unwrap(), "rw");
        assert_eq!(validate_access_level(Some(&json!("ro"))).unwrap(), "ro");
        assert_eq!(
            validate_access_level(Some(&json!("rx")))
                .unwrap_err()
                .to_string(),
            "Invalid access rule: Invalid share access level: rx."
        );
        assert_eq!(
            validate_metadata(Some(&json!({"k": ""})))
                .unwrap_err()
                .to_string(),
            "Metadata property value is blank."
        );
        assert_eq!(
            validate_metadata(Some(&json!({"": "v"})))
                .unwrap_err()
                .to_string(),
            "Metadata property key is blank."
        );
        assert_eq!(
            validate_metadata(Some(&json!({"k": "v"}))).unwrap(),
            BTreeMap::from([("k".to_owned(), "v".to_owned())])
        );
    }

    #[test]
    fn metadata_update_uses_the_exceptions_default_texts() {
        let check = |v: Value| {
            let Value::Object(map) = v else {
                panic!("object expected")
            };
            validate_metadata_update(&map).map_err(|e| e.to_string())
        };
        assert_eq!(check(json!({})).unwrap(), BTreeMap::new());
        assert_eq!(
            check(json!({"k": "v", "ü": "✓"})).unwrap(),
            BTreeMap::from([
                ("k".to_owned(), "v".to_owned()),
                ("ü".to_owned(), "✓".to_owned())
            ])
        );
        // Limits count characters, not bytes.
        let key = "é".repeat(255);
        let value = "é".repeat(1023);
        assert!(check(json!({key.clone(): value.clone()})).is_ok());
        for (body, text) in [
            (json!({"": "v"}), INVALID_METADATA),
            (json!({"k": ""}), INVALID_METADATA),
            (json!({"k": null}), INVALID_METADATA),
            (json!({"k": false}), INVALID_METADATA),
            (json!({"k": 0}), INVALID_METADATA),
            (json!({"k": []}), INVALID_METADATA),
            (json!({"k": {}}), INVALID_METADATA),
            (json!({format!("{key}é"): "v"}), INVALID_METADATA_SIZE),
            (json!({"k": format!("{value}é")}), INVALID_METADATA_SIZE),
            (json!({"k": vec![1; 1024]}), INVALID_METADATA_SIZE),
            (json!({"k": 1}), MALFORMED),
            (json!({"k": 1.5}), MALFORMED),
            (json!({"k": true}), MALFORMED),
            (json!({"k": ["a"]}), MALFORMED),
            (json!({"k": {"a": "b"}}), MALFORMED),
        ] {
            assert_eq!(check(body.clone()).unwrap_err(), text, "{body}");
        }
        // At creation the specific texts stay; a number is the same bare 400.
        assert_eq!(
            validate_metadata(Some(&json!({"k": 1})))
                .unwrap_err()
                .to_string(),
            MALFORMED
        );
    }

    fn rule(kind: &str, to: &str, states: &[&str]) -> AccessRuleRow {
        AccessRuleRow {
            id: Uuid::new_v4(),
            share_id: Uuid::nil(),
            access_type: kind.to_owned(),
            access_to: to.to_owned(),
            access_level: "rw".to_owned(),
            access_key: None,
            metadata: BTreeMap::new(),
            created_at: chrono::Utc::now(),
            updated_at: None,
            instance_states: states
                .iter()
                .map(|s| (Uuid::new_v4(), (*s).to_owned()))
                .collect(),
        }
    }

    #[test]
    fn duplicates_compare_networks() {
        let rules = [
            rule("ip", "10.0.0.1", &["active"]),
            rule("user", "alice", &["active"]),
        ];
        assert!(rule_exists(&rules, "ip", "10.0.0.1/32"));
        assert!(!rule_exists(&rules, "ip", "10.0.0.0/24"));
        assert!(rule_exists(&rules, "user", "alice"));
        assert!(!rule_exists(&rules, "user", "bob"));
        // Rules without mappings do not count.
        assert!(!rule_exists(&[rule("user", "alice", &[])], "user", "alice"));
    }

    #[test]
    fn alternate_notations_are_the_same_target() {
        for (a, b) in [
            ("1.2.3.4", "1.2.3.4/32"),
            ("fd8c:b029:bba6:ac54::1", "fd8c:b029:bba6:ac54::1/128"),
        ] {
            assert!(same_access_to("ip", a, b));
            assert!(same_access_to("ip", b, a));
            assert!(same_access_to("ip", a, a));
        }
        assert!(!same_access_to("ip", "1.2.3.0/24", "1.2.3.4"));
        assert!(!same_access_to("ip", "1.2.3.4", "1.2.3.0/24"));
        assert!(!same_access_to("ip", "1.2.3.4", "1.2.3.40"));
        assert!(!same_access_to("user", "alice", "Alice"));
        assert!(same_access_to("user", "alice", "alice"));
    }

    #[test]
    fn rule_state_is_the_worst_mapping() {
        assert_eq!(
            rule_state(&rule("ip", "1.1.1.1", &["active", "queued_to_apply"])),
            Some("queued_to_apply")
        );
        assert_eq!(
            rule_state(&rule("ip", "1.1.1.1", &["applying", "error", "denying"])),
            Some("error")
        );
        assert_eq!(
            rule_state(&rule("ip", "1.1.1.1", &["active"])),
            Some("active")
        );
        assert_eq!(rule_state(&rule("ip", "1.1.1.1", &[])), None);
    }

    fn instance(status: &str, rules: &str, host: &str) -> ShareInstanceRow {
        ShareInstanceRow {
            id: Uuid::new_v4(),
            share_id: Uuid::nil(),
            status: status.to_owned(),
            replica_state: None,
            host: host.to_owned(),
            availability_zone: None,
            share_type_id: None,
            share_network_id: None,
            share_server_id: None,
            cast_rules_to_readonly: false,
            access_rules_status: rules.to_owned(),
            progress: None,
            created_at: chrono::Utc::now(),
            updated_at: None,
            scheduled_at: None,
            launched_at: None,
            terminated_at: None,
            replica_epoch: 0,
        }
    }

    #[test]
    fn share_status_counts_available_instances_only() {
        let h = "h@b#p";
        assert_eq!(access_rules_status(&[]), "active");
        assert_eq!(
            access_rules_status(&[
                instance("available", "syncing", h),
                instance("creating", "error", h)
            ]),
            "syncing"
        );
        assert_eq!(
            access_rules_status(&[
                instance("available", "error", h),
                instance("available", "syncing", h)
            ]),
            "error"
        );
        assert_eq!(
            legacy_rule_state(&[instance("available", "syncing", h)]),
            "new"
        );
    }

    #[test]
    fn instance_precondition() {
        let ok = instance("available", "active", "h@b#p");
        assert!(!any_invalid_instance(std::slice::from_ref(&ok), false));
        assert!(any_invalid_instance(
            &[ok.clone(), instance("creating", "active", "h@b#p")],
            true
        ));
        assert!(any_invalid_instance(
            &[instance("available", "active", "")],
            true
        ));
        assert!(any_invalid_instance(
            &[instance("error", "active", "h@b#p")],
            false
        ));
        assert!(!any_invalid_instance(
            &[instance("error", "active", "h@b#p")],
            true
        ));
        assert!(!any_invalid_instance(
            &[instance("replication_change", "active", "h@b#p")],
            false
        ));
    }

    #[test]
    fn metadata_filter_literal() {
        assert_eq!(
            parse_metadata_filter("{'k': 'v', \"n\": 1}").unwrap(),
            BTreeMap::from([
                ("k".to_owned(), "v".to_owned()),
                ("n".to_owned(), "1".to_owned())
            ])
        );
        assert!(parse_metadata_filter("{'k': }").is_err());
        assert!(parse_metadata_filter("['k']").is_err());
        assert_eq!(parse_metadata_filter(" {} ").unwrap(), BTreeMap::new());
    }

    #[test]
    fn search_opts() {
        validate_search_opts(Some("ip"), Some("10.0.0.0/8"), Some("ro")).unwrap();
        assert_eq!(
            validate_search_opts(Some("xx"), None, None)
                .unwrap_err()
                .to_string(),
            "Invalid or unsupported share access type: xx."
        );
        assert_eq!(
            validate_search_opts(None, Some("x"), None)
                .unwrap_err()
                .to_string(),
            "Invalid input received: 'access_type' parameter must be provided when specifying 'access_to'."
        );
        assert_eq!(
            validate_search_opts(None, None, Some("rx"))
                .unwrap_err()
                .to_string(),
            "Invalid or unsupported share access level: rx."
        );
    }
}
