//! Manila's extra-spec operator language (`manila/scheduler/filters/extra_specs_ops.py`).
//!
//! A share type's extra spec value is either a plain value (`"readable"`, `"True"`) or an
//! operator followed by operands (`"<is> True"`, `">= 10"`, `"<or> nfs <or> cifs"`). One call
//! of [`matches()`] compares one reported capability value against one such requirement.
//! Both sides are lowercased first, so every comparison is case-insensitive.
//!
//! | operator | meaning |
//! | --- | --- |
//! | `=` | `float(cap) >= float(operand)` (yes: `=` means "at least") |
//! | `==` `!=` `>=` `<=` | numeric comparison via `float()` |
//! | `s==` `s!=` `s<` `s<=` `s>` `s>=` | string comparison (only a string capability can be ordered) |
//! | `<in>` | the operand is a substring of the capability |
//! | `<is>` | both sides read as booleans (`bool_from_string`) are the same |
//! | `<or>` | `<or> a <or> b ...`: the capability equals one of the words |
//! | none | a bool capability equals the spec read as a boolean; otherwise plain equality |
//!
//! Only the first operand word is used (`"= 10 20"` compares with 10). Where Manila raises
//! (`<or>` with no operand, ordering a number against a string, `<in>` on a number) the
//! requirement is simply not met here instead of failing the whole scheduling request.

use serde_json::Value;

use crate::pyval::{bool_from_str_strict, bool_from_value, float_from_str, float_from_value};

/// One of the operators of the table in the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    AtLeast,
    In,
    Is,
    NumEq,
    NumNe,
    NumGe,
    NumLe,
    StrEq,
    StrNe,
    StrLt,
    StrLe,
    StrGt,
    StrGe,
    Or,
}

impl Op {
    fn parse(word: &str) -> Option<Self> {
        Some(match word {
            "=" => Self::AtLeast,
            "<in>" => Self::In,
            "<is>" => Self::Is,
            "==" => Self::NumEq,
            "!=" => Self::NumNe,
            ">=" => Self::NumGe,
            "<=" => Self::NumLe,
            "s==" => Self::StrEq,
            "s!=" => Self::StrNe,
            "s<" => Self::StrLt,
            "s<=" => Self::StrLe,
            "s>" => Self::StrGt,
            "s>=" => Self::StrGe,
            "<or>" => Self::Or,
            _ => return None,
        })
    }
}

/// A capability value after Manila's normalisation: strings are lowercased.
enum Cap<'a> {
    Str(String),
    Other(&'a Value),
}

impl Cap<'_> {
    /// Python `==` between the capability and a (lowercased) string from the spec.
    fn eq_str(&self, word: &str) -> bool {
        match self {
            Cap::Str(s) => s == word,
            // int/float/bool/list/dict never compare equal to a str in Python.
            Cap::Other(_) => false,
        }
    }

    fn as_value(&self) -> Value {
        match self {
            Cap::Str(s) => Value::String(s.clone()),
            Cap::Other(v) => (*v).clone(),
        }
    }
}

/// Does the reported capability `value` satisfy the extra-spec requirement `req`?
///
/// This is Manila's `extra_specs_ops.match(value, req)`. `value` is one capability value
/// (callers iterate over list-valued capabilities and accept any element that matches).
pub fn matches(value: &Value, req: &str) -> bool {
    let cap = match value {
        Value::String(s) => Cap::Str(s.to_lowercase()),
        other => Cap::Other(other),
    };
    let req = req.to_lowercase();
    let words: Vec<&str> = req.split_whitespace().collect();
    let op = words.first().and_then(|w| Op::parse(w));

    let Some(op) = op else {
        // No operator: plain comparison with the whole (lowercased) requirement.
        return match value {
            // `value == bool_from_string(req, strict=False, default=req)`: a bool only equals
            // a requirement that reads as a boolean.
            Value::Bool(b) => bool_from_str_strict(&req) == Some(*b),
            _ => cap.eq_str(&req),
        };
    };

    if value.is_null() {
        return false;
    }

    let operands = &words[1..];
    if op == Op::Or {
        // `<or> v1 <or> v2 ...`: every other word is a candidate; the words between them
        // are skipped without being checked.
        return operands.iter().step_by(2).any(|w| cap.eq_str(w));
    }
    let Some(operand) = operands.first() else {
        return false;
    };
    compare(op, &cap, operand)
}

fn compare(op: Op, cap: &Cap<'_>, operand: &str) -> bool {
    let numeric = |f: fn(f64, f64) -> bool| -> bool {
        // `float()` of both sides; a ValueError means "no match".
        let left = match cap {
            Cap::Str(s) => float_from_str(s),
            Cap::Other(v) => float_from_value(v),
        };
        match (left, float_from_str(operand)) {
            (Some(l), Some(r)) => f(l, r),
            _ => false,
        }
    };
    let ordered = |f: fn(&str, &str) -> bool| -> bool {
        match cap {
            Cap::Str(s) => f(s, operand),
            // Python raises TypeError ordering a non-str against a str.
            Cap::Other(_) => false,
        }
    };
    match op {
        Op::AtLeast | Op::NumGe => numeric(|l, r| l >= r),
        Op::NumEq => numeric(|l, r| l == r),
        Op::NumNe => numeric(|l, r| l != r),
        Op::NumLe => numeric(|l, r| l <= r),
        Op::StrEq => cap.eq_str(operand),
        Op::StrNe => !cap.eq_str(operand),
        Op::StrLt => ordered(|l, r| l < r),
        Op::StrLe => ordered(|l, r| l <= r),
        Op::StrGt => ordered(|l, r| l > r),
        Op::StrGe => ordered(|l, r| l >= r),
        Op::In => match cap {
            Cap::Str(s) => s.contains(operand),
            // `y in x` on a number or bool raises TypeError; on a nested list it is
            // element equality.
            Cap::Other(Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(operand)),
            Cap::Other(_) => false,
        },
        Op::Is => {
            bool_from_value(&cap.as_value()) == bool_from_str_strict(operand).unwrap_or(false)
        }
        // Handled by the caller.
        Op::Or => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Every row was checked against Manila's own `extra_specs_ops.match` (with
    /// `oslo_utils.strutils` semantics) in a Python interpreter.
    #[test]
    fn operator_table() {
        let rows: &[(Value, &str, bool)] = &[
            // plain equality, case-insensitive
            (json!("Readable"), "readable", true),
            (json!("readable"), "READABLE", true),
            (json!("readable"), "dr", false),
            (json!("a b"), "a b", true),
            (json!(10), "10", false), // int == str is False in Python
            (json!(null), "none", false),
            (json!(""), "", true),
            // bool capability vs plain boolean-ish spec
            (json!(true), "True", true),
            (json!(true), "yes", true),
            (json!(false), "False", true),
            (json!(false), "True", false),
            (json!(true), "foo", false),
            // `=` is "at least"
            (json!(10), "= 10", true),
            (json!(10), "= 9.5", true),
            (json!(10), "= 11", false),
            (json!("10"), "= 5", true),
            (json!("abc"), "= 5", false),
            (json!(true), "= 1", true),
            (json!(10), "=", false),
            (json!(10), "= 5 100", true), // only the first operand counts
            // numeric operators
            (json!(10), "== 10.0", true),
            (json!(10), "== 11", false),
            (json!(10), "!= 11", true),
            (json!(10), "!= 10", false),
            (json!(10), ">= 10", true),
            (json!(10), ">= 11", false),
            (json!(10), "<= 10", true),
            (json!(10), "<= 9", false),
            (json!(null), ">= 1", false),
            (json!("x"), "!= 1", false),
            // string operators
            (json!("abc"), "s== ABC", true),
            (json!("abc"), "s== abd", false),
            (json!("abc"), "s!= abd", true),
            (json!("abc"), "s!= abc", false),
            (json!(5), "s!= 5", true),
            (json!(5), "s== 5", false),
            (json!("abc"), "s< abd", true),
            (json!("abd"), "s< abc", false),
            (json!("abc"), "s<= abc", true),
            (json!("abd"), "s<= abc", false),
            (json!("abd"), "s> abc", true),
            (json!("abc"), "s> abc", false),
            (json!("abc"), "s>= abc", true),
            (json!("abb"), "s>= abc", false),
            (json!(5), "s< 6", false),
            // <in>
            (json!("NFS_CIFS"), "<in> nfs", true),
            (json!("CEPHFS"), "<in> nfs", false),
            (json!("nfs"), "<in>", false),
            (json!(5), "<in> 5", false),
            // <is>
            (json!(true), "<is> True", true),
            (json!(true), "<is> False", false),
            (json!(false), "<is> False", true),
            (json!("true"), "<is> true", true),
            (json!("garbage"), "<is> False", true), // both read as False
            (json!(1), "<is> True", true),
            (json!(null), "<is> False", false),
            (json!(true), "<is>", false),
            // <or>
            (json!("nfs"), "<or> nfs <or> cifs", true),
            (json!("CIFS"), "<or> nfs <or> cifs", true),
            (json!("glusterfs"), "<or> nfs <or> cifs", false),
            (json!("x"), "<or> a b x", true), // the word after a candidate is skipped unchecked
            (json!("b"), "<or> a b x", false),
            (json!("nfs"), "<or>", false),
            (json!(true), "<or> true", false),
            // unknown operator-looking words are plain values
            (json!("<foo> x"), "<foo> x", true),
            (json!(5), "> 4", false),
        ];
        for (cap, req, expected) in rows {
            assert_eq!(matches(cap, req), *expected, "match({cap}, {req:?})");
        }
    }
}
