//! Project quota sets as the API shows and edits them (Manila's `api/v2/quota_sets.py` and
//! `quota.py::DbQuotaDriver`).
//!
//! What is persisted: per-project overrides (`quotas` rows) and usage counters
//! (`quota_usages`), both owned by [`crate::quotas`] and the store. What is derived: the
//! effective limit of each resource (the override, else the configured default) and the
//! "settable minimum" of an update (what is already used and reserved).
//!
//! Per-user and per-share-type quota sets ([`Scope`]) are shown, updated and reset with
//! Manila's rules: a scope's limit defaults to the project's, may not exceed it, and a
//! project limit may not go below the sum of its users' limits.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::quotas::Scope;
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

/// Limits and usage of a scope (`get_user_quotas` / `get_share_type_quotas` with usages).
pub async fn scope_quotas(
    core: &Core,
    project_id: &str,
    scope: Scope<'_>,
) -> CoreResult<BTreeMap<String, QuotaDetail>> {
    let limits = quotas::scope_limits(core, project_id, scope).await?;
    let usages = core.store.get_quota_usages(project_id).await?;
    Ok(limits
        .into_iter()
        .map(|(resource, limit)| {
            let usage = usages.get(&scope.key(&resource));
            let detail = QuotaDetail {
                limit,
                in_use: usage.map_or(0, |u| u.in_use),
                reserved: usage.map_or(0, |u| u.reserved),
            };
            (resource, detail)
        })
        .collect())
}

/// Limits of a scope.
pub async fn scope_limits(
    core: &Core,
    project_id: &str,
    scope: Scope<'_>,
) -> CoreResult<BTreeMap<String, i64>> {
    quotas::scope_limits(core, project_id, scope).await
}

/// Sum of the users' own limits of `resource` in the project (Manila's `remains`
/// arithmetic: a project limit may not go below it).
fn users_total(overrides: &BTreeMap<String, i64>, resource: &str) -> i64 {
    let prefix = format!("{resource}/user/");
    overrides
        .iter()
        .filter(|(k, _)| k.starts_with(&prefix))
        .map(|(_, v)| *v)
        .sum()
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
    update_quotas(core, project_id, Scope::Project, body).await
}

/// [`update_project_quotas`] for any scope. A user's or share type's limit ranges from its
/// own usage to the project's limit; `share_networks` cannot be set for a share type.
pub async fn update_quotas(
    core: &Core,
    project_id: &str,
    scope: Scope<'_>,
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
        if key == "share_networks" && matches!(scope, Scope::ShareType(_)) {
            return Err(CoreError::bad_request(
                "'share_networks' quota cannot be set for share type. It can be set only for project or user.",
            ));
        }
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
    // Second pass: limits against usage and the settable range.
    let current = scope_quotas(core, project_id, scope).await?;
    let project = project_limits(core, project_id).await?;
    let overrides = core.store.get_quota_overrides(project_id).await?;
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
        // `get_settable_quotas`: a scope ranges from its usage to the project's limit; the
        // project from the larger of its usage and its users' limits, unbounded above.
        let (minimum, maximum) = match scope {
            Scope::Project => (used.max(users_total(&overrides, key)), -1),
            _ => (used, project.get(key).copied().unwrap_or(-1)),
        };
        validate_quota_limit(limit, minimum, maximum, force)?;
        updates.insert(scope.key(key), limit);
    }
    if !updates.is_empty() {
        core.store
            .set_quota_overrides(project_id, &updates, core.now())
            .await?;
    }
    scope_limits(core, project_id, scope).await
}

/// Manila's `_validate_quota_limit` (-1 is unlimited).
fn validate_quota_limit(limit: i64, minimum: i64, maximum: i64, force: bool) -> CoreResult<()> {
    if limit < -1 {
        return Err(CoreError::bad_request("Quota limit must be -1 or greater."));
    }
    if limit < minimum && !force && (maximum != -1 || limit != -1) {
        return Err(CoreError::bad_request(format!(
            "Quota limit must be greater than {minimum}."
        )));
    }
    if maximum != -1 && limit > maximum && !force {
        return Err(CoreError::bad_request(format!(
            "Quota limit must be less than {maximum}."
        )));
    }
    Ok(())
}

/// Removes every override of the project, back to the defaults (`destroy_all_by_project`),
/// its users' and share types' included. Usage counters stay: they count real resources.
pub async fn reset_project_quotas(core: &Core, project_id: &str) -> CoreResult<()> {
    core.store.delete_quota_overrides(project_id).await?;
    Ok(())
}

/// Removes a user's or share type's overrides: its limits follow the project's again
/// (`destroy_all_by_project_and_user` / `..._and_share_type`).
pub async fn reset_scope_quotas(core: &Core, project_id: &str, scope: Scope<'_>) -> CoreResult<()> {
    if scope == Scope::Project {
        return reset_project_quotas(core, project_id).await;
    }
    let keys: Vec<String> = resources(core).iter().map(|r| scope.key(r)).collect();
    core.store
        .delete_quota_override_keys(project_id, &keys)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn quota_limit_ranges_follow_manila() {
        let err = |r: CoreResult<()>| r.unwrap_err().to_string();
        assert!(validate_quota_limit(5, 0, -1, false).is_ok());
        assert!(
            validate_quota_limit(-1, 3, -1, false).is_ok(),
            "unlimited project"
        );
        assert_eq!(
            err(validate_quota_limit(-2, 0, -1, false)),
            "Quota limit must be -1 or greater."
        );
        assert_eq!(
            err(validate_quota_limit(2, 3, -1, false)),
            "Quota limit must be greater than 3."
        );
        assert!(validate_quota_limit(2, 3, -1, true).is_ok(), "forced");
        assert_eq!(
            err(validate_quota_limit(11, 0, 10, false)),
            "Quota limit must be less than 10."
        );
        assert_eq!(
            err(validate_quota_limit(-1, 0, 10, false)),
            "Quota limit must be greater than 0.",
            "a user cannot be unlimited in a limited project"
        );
        assert!(validate_quota_limit(10, 0, 10, false).is_ok());
    }

    #[test]
    fn users_total_sums_user_rows_only() {
        let overrides = BTreeMap::from([
            ("shares".to_owned(), 10),
            ("shares/user/a".to_owned(), 3),
            ("shares/user/b".to_owned(), 4),
            ("gigabytes/user/a".to_owned(), 100),
            ("shares/share_type/t".to_owned(), 5),
        ]);
        assert_eq!(users_total(&overrides, "shares"), 7);
        assert_eq!(users_total(&overrides, "snapshots"), 0);
    }

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
