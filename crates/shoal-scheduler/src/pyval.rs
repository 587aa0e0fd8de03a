//! Python value semantics that Manila's scheduler relies on implicitly.
//!
//! Manila compares capability values (decoded JSON: `str`, `bool`, `int`, `float`, `None`,
//! lists, dicts) with Python operators and converts them with `float()` and
//! `oslo_utils.strutils.bool_from_string()`. The helpers here reproduce exactly those
//! conversions on [`serde_json::Value`], so the filters can read like Manila's without
//! dragging Python's dynamic typing through every call site. Nothing here is persisted.

use serde_json::Value;

/// Strings `oslo_utils.strutils.bool_from_string` accepts as true (after strip + lowercase).
const TRUE_STRINGS: [&str; 6] = ["1", "t", "true", "on", "y", "yes"];
/// Strings `oslo_utils.strutils.bool_from_string` accepts as false (after strip + lowercase).
const FALSE_STRINGS: [&str; 6] = ["0", "f", "false", "off", "n", "no"];

/// `strutils.bool_from_string(s, strict=True)` on a string: `None` where oslo would raise.
pub(crate) fn bool_from_str_strict(s: &str) -> Option<bool> {
    let lowered = s.trim().to_lowercase();
    if TRUE_STRINGS.contains(&lowered.as_str()) {
        Some(true)
    } else if FALSE_STRINGS.contains(&lowered.as_str()) {
        Some(false)
    } else {
        None
    }
}

/// `strutils.bool_from_string(value)` (not strict, default `False`) on a decoded JSON value.
///
/// A bool is returned as is; anything else goes through `str()` first, so the integer `1`
/// is true but the float `1.0` (`"1.0"`) is not.
pub(crate) fn bool_from_value(value: &Value) -> bool {
    match value {
        Value::Bool(b) => *b,
        Value::String(s) => bool_from_str_strict(s).unwrap_or(false),
        Value::Number(n) if n.is_i64() || n.is_u64() => {
            bool_from_str_strict(&n.to_string()).unwrap_or(false)
        }
        // `str(None)` is "None", `str(1.0)` is "1.0", lists and dicts print with brackets:
        // none of them is in either list, so the default (False) applies.
        _ => false,
    }
}

/// Python's `float(s)` for a string: surrounding whitespace, a sign, `inf`/`infinity`/`nan`
/// (any case) and `_` between digits are accepted; `None` where Python raises `ValueError`.
pub(crate) fn float_from_str(s: &str) -> Option<f64> {
    let trimmed = s.trim();
    if trimmed.is_empty() {
        return None;
    }
    let cleaned = if trimmed.contains('_') {
        // PEP 515: an underscore is allowed only between two digits.
        let chars: Vec<char> = trimmed.chars().collect();
        for (i, c) in chars.iter().enumerate() {
            if *c == '_' {
                let before = i.checked_sub(1).and_then(|j| chars.get(j));
                let after = chars.get(i + 1);
                let digit = |c: Option<&char>| c.is_some_and(|c| c.is_ascii_digit());
                if !digit(before) || !digit(after) {
                    return None;
                }
            }
        }
        trimmed.replace('_', "")
    } else {
        trimmed.to_owned()
    };
    // Rust accepts the same grammar as Python here (including "inf", "infinity", "nan" in
    // any case) apart from the underscores handled above.
    cleaned.parse::<f64>().ok()
}

/// Python's `float(value)` on a decoded JSON value; `None` where Python raises
/// (`ValueError` for bad strings, `TypeError` for `None`, lists and dicts).
pub(crate) fn float_from_value(value: &Value) -> Option<f64> {
    match value {
        Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
        Value::Number(n) => n.as_f64(),
        Value::String(s) => float_from_str(s),
        Value::Null | Value::Array(_) | Value::Object(_) => None,
    }
}

/// A finite number read from a capability that should be numeric. Drivers report numbers,
/// but numeric strings are accepted as Python's `float()` would; anything else is `None`.
pub(crate) fn number(value: Option<&Value>) -> Option<f64> {
    let value = value?;
    if matches!(value, Value::Bool(_)) {
        // A bool where a quantity is expected is a driver bug, not the number 1.
        return None;
    }
    float_from_value(value).filter(|f| f.is_finite())
}

/// Python truthiness of a decoded JSON value (`bool(value)`).
pub(crate) fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bool_from_string_matches_oslo() {
        for (input, expected) in [
            (json!(true), true),
            (json!(false), false),
            (json!("True"), true),
            (json!(" yes "), true),
            (json!("on"), true),
            (json!("1"), true),
            (json!("0"), false),
            (json!("garbage"), false),
            (json!(1), true),
            (json!(0), false),
            (json!(2), false),
            (json!(1.0), false),
            (json!(null), false),
        ] {
            assert_eq!(bool_from_value(&input), expected, "{input}");
        }
        assert_eq!(bool_from_str_strict("maybe"), None);
        assert_eq!(bool_from_str_strict("FALSE"), Some(false));
    }

    #[test]
    fn float_matches_python() {
        assert_eq!(float_from_str(" 1_000.5 "), Some(1000.5));
        assert_eq!(float_from_str("1__0"), None);
        assert_eq!(float_from_str("_1"), None);
        assert_eq!(float_from_str("1e3"), Some(1000.0));
        assert_eq!(float_from_str("-inf"), Some(f64::NEG_INFINITY));
        assert_eq!(float_from_str("Infinity"), Some(f64::INFINITY));
        assert!(float_from_str("nan").is_some_and(f64::is_nan));
        assert_eq!(float_from_str("infinite"), None);
        assert_eq!(float_from_str(""), None);
        assert_eq!(float_from_str("abc"), None);
        assert_eq!(float_from_value(&json!(true)), Some(1.0));
        assert_eq!(float_from_value(&json!(null)), None);
        assert_eq!(number(Some(&json!("12.5"))), Some(12.5));
        assert_eq!(number(Some(&json!("inf"))), None);
        assert_eq!(number(Some(&json!(true))), None);
    }

    #[test]
    fn truthiness_matches_python() {
        assert!(!truthy(&json!(null)));
        assert!(!truthy(&json!(0)));
        assert!(!truthy(&json!("")));
        assert!(!truthy(&json!([])));
        assert!(truthy(&json!("False")));
        assert!(truthy(&json!(0.5)));
    }
}
