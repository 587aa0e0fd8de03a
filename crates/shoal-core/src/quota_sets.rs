//! Project quota sets as the API shows and edits them (Manila's `api/v2/quota_sets.py` and
//! `quota.py::DbQuotaDriver`).
//!
//! What is persisted: per-project overrides (`quotas` rows) and usage counters
//! (`quota_usages`), both owned by [`crate::quotas`] and the store. What is derived: the
//! effective limit of each resource (the override, else the configured default) and the
//! "settable minimum" of an update (what is already used and reserved).
//!
//! Only project-level quotas exist in shoal: Manila's per-user and per-share-type quotas
//! are refused by the API rather than silently applied to the whole project.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::share_types::{bool_from_string, py_str};
use crate::{Core, CoreError, CoreResult, quotas};

/// Body keys of an update that are not quota resources (`NON_QUOTA_KEYS`).
pub const NON_QUOTA_KEYS: [&str; 4] = ["tenant_id", "id", "force", "share_type"];

/// One resource of a detailed quota set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaDetail {
    /// Effective hard limit (-1 = unlimited).
    pub limit: i64,
    /// Committed usage.
    pub in_use: i64,
    /// Usage held by pending reservations.
    pub reserved: i64,
}

/// Every quota resource in Manila's order.
pub fn resources(core: &Core) -> Vec<&'static str> {
    core.config
        .quota
        .defaults()
        .into_iter()
        .map(|(r, _)| r)
        .collect()
}

/// The configured defaults (`QUOTAS.get_defaults`).
pub fn defaults(core: &Core) -> BTreeMap<String, i64> {
    core.config
        .quota
        .defaults()
        .into_iter()
        .map(|(r, v)| (r.to_owned(), v))
        .collect()
}

/// Effective limits and usage of every resource of a project (`get_project_quotas` with
/// usages). Resources never charged show zero usage.
pub async fn project_quotas(
    core: &Core,
    project_id: &str,
) -> CoreResult<BTreeMap<String, QuotaDetail>> {
    let limits = quotas::effective_limits(core, project_id).await?;
    let usages = core.store.get_quota_usages(project_id).await?;
    Ok(limits
        .into_iter()
        .map(|(resource, limit)| {
            let usage = usages.get(&resource);
            let detail = QuotaDetail {
                limit,
                in_use: usage.map_or(0, |u| u.in_use),
                reserved: usage.map_or(0, |u| u.reserved),
            };
            (resource, detail)
        })
        .collect())
}

/// Effective limits only.
pub async fn project_limits(core: &Core, project_id: &str) -> CoreResult<BTreeMap<String, i64>> {
    quotas::effective_limits(core, project_id).await
}

/// Python's `int()` of a JSON value: booleans are 0/1, floats are truncated, strings are
/// decimal integers with optional sign, surrounding whitespace and `_` between digits.
pub fn py_int(value: &Value) -> Option<i64> {
    match value {
        Value::Bool(b) => Some(i64::from(*b)),
        Value::Number(n) => n.as_i64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && f.abs() < 9.0e18)
                .map(|f| f.trunc() as i64)
        }),
        Value::String(s) => {
            let s = s.trim();
            let (negative, digits) = match s.strip_prefix('-') {
                Some(rest) => (true, rest),
                None => (false, s.strip_prefix('+').unwrap_or(s)),
            };
            let well_formed = !digits.is_empty()
                && !digits.starts_with('_')
                && !digits.ends_with('_')
                && !digits.contains("__")
                && digits.chars().all(|c| c.is_ascii_digit() || c == '_');
            if !well_formed {
                return None;
            }
            let magnitude: i64 = digits.replace('_', "").parse().ok()?;
            Some(if negative { -magnitude } else { magnitude })
        }
        _ => None,
    }
}

/// Python truthiness of a JSON value.
fn truthy(value: &Value) -> bool {
    crate::share_access::truthy(value)
}

fn not_integer(value: &Value, key: &str) -> CoreError {
    CoreError::bad_request(format!(
        "Quota '{}' for {key} should be integer.",
        py_str(value)
    ))
}

/// Applies a `PUT /v2/quota-sets/{project}` body (the object under `quota_set`) to the
/// project, as Manila's `_update` does from the "at least one field" check on, and returns
/// the new effective limits. Everything is validated before anything is written, so a
/// refused update changes nothing (Manila writes key by key).
pub async fn update_project_quotas(
    core: &Core,
    project_id: &str,
    body: &Map<String, Value>,
) -> CoreResult<BTreeMap<String, i64>> {
    let resources = resources(core);
    let supplied = resources
        .iter()
        .any(|r| body.get(*r).is_some_and(|v| !v.is_null()));
    if !supplied {
        return Err(CoreError::bad_request(
            "Must supply at least one quota field to update.",
        ));
    }
    // First pass: unknown keys, `force`, integer syntax of truthy values.
    let mut bad_keys = Vec::new();
    let mut force = false;
    for (key, value) in body {
        if !resources.contains(&key.as_str()) && !NON_QUOTA_KEYS.contains(&key.as_str()) {
            bad_keys.push(key.as_str());
        } else if key == "force" {
            force = bool_from_string(value).unwrap_or(false);
        } else if !NON_QUOTA_KEYS.contains(&key.as_str())
            && truthy(value)
            && py_int(value).is_none()
        {
            return Err(not_integer(value, key));
        }
    }
    if !bad_keys.is_empty() {
        return Err(CoreError::bad_request(format!(
            "Bad key(s) {} in quota_set.",
            bad_keys.join(",")
        )));
    }
    // Second pass: limits against usage.
    let current = project_quotas(core, project_id).await?;
    let mut updates = BTreeMap::new();
    for (key, value) in body {
        // Manila skips `None`, `""`, `[]` and `{}`, but not `0` or `false` (`false == 0`).
        let skipped = match value {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            Value::Array(a) => a.is_empty(),
            Value::Object(o) => o.is_empty(),
            _ => false,
        };
        if NON_QUOTA_KEYS.contains(&key.as_str()) || skipped {
            continue;
        }
        let limit = py_int(value).ok_or_else(|| not_integer(value, key))?;
        let detail = current.get(key).copied().unwrap_or(QuotaDetail {
            limit: -1,
            in_use: 0,
            reserved: 0,
        });
        let used = detail.in_use + detail.reserved;
        if !force && limit >= 0 && detail.limit >= 0 && used > limit {
            return Err(CoreError::bad_request(format!(
                "Quota value {limit} for {key} is smaller than already used and reserved {used}."
            )));
        }
        // `_validate_quota_limit` with the project-level range: minimum = used, no maximum.
        if limit < -1 {
            return Err(CoreError::bad_request("Quota limit must be -1 or greater."));
        }
        let minimum = used.max(0);
        if limit < minimum && !force && limit != -1 {
            return Err(CoreError::bad_request(format!(
                "Quota limit must be greater than {minimum}."
            )));
        }
        updates.insert(key.clone(), limit);
    }
    if !updates.is_empty() {
        core.store
            .set_quota_overrides(project_id, &updates, core.now())
            .await?;
    }
    project_limits(core, project_id).await
}

/// Removes every override of the project, back to the defaults (`destroy_all_by_project`).
pub async fn reset_project_quotas(core: &Core, project_id: &str) -> CoreResult<()> {
    core.store.delete_quota_overrides(project_id).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn python_int_conversion() {
        assert_eq!(py_int(&json!(5)), Some(5));
        assert_eq!(py_int(&json!("-1")), Some(-1));
        assert_eq!(py_int(&json!(" 10 ")), Some(10));
        assert_eq!(py_int(&json!("1_000")), Some(1000));
        assert_eq!(py_int(&json!(5.9)), Some(5));
        assert_eq!(py_int(&json!(true)), Some(1));
        assert_eq!(py_int(&json!(false)), Some(0));
        assert_eq!(py_int(&json!("5.0")), None);
        assert_eq!(py_int(&json!("abc")), None);
        assert_eq!(py_int(&json!("1__0")), None);
        assert_eq!(py_int(&json!([1])), None);
        assert_eq!(py_int(&json!(null)), None);
    }
}
