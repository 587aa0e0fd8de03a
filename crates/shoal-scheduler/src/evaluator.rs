//! The expression language of back-end `filter_function` / `goodness_function` options
//! (`manila/scheduler/evaluator/evaluator.py`), used by [`crate::DriverFilter`] and
//! [`crate::GoodnessWeigher`].
//!
//! An operator may configure a back end with, for example,
//! `filter_function = "share.size < 100 and stats.free_capacity_gb > 10"`; the driver
//! reports the string among its capabilities and the scheduler evaluates it per pool.
//! Variables are `<dict>.<key>` (letters and `_` only) looked up in `share`, `stats`,
//! `capabilities` and `extra`. Operators, loosest first: `,` (argument lists), `or`/`OR`/
//! `||`, `and`/`AND`/`&&`, `?:`, comparisons (chained as in Python: `1 < x < 3`), `not`/
//! `NOT`/`!`, `+ -`, `* /`, unary `+ -`, `^` (right associative), then `abs`, `max`, `min`.
//! Values follow Python: a variable is read with `int()` first (so `10.7` becomes `10` and
//! `true` becomes `1`), then `float()`, else it is a string; `/` always divides as floats.
//!
//! Differences from Manila, all where Manila misbehaves: `a and b and c` (and `or`) use
//! every operand, where Manila's evaluator silently drops the third and later ones; string
//! and list arithmetic (Python's `'ab' * 2`) is an error rather than repetition.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use serde_json::Value;

use crate::pyval;

/// Why an expression could not be evaluated; the caller treats it as "fails the host" or
/// "goodness 0", as Manila does.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot evaluate expression: {0}")]
pub struct EvalError(String);

fn err<T>(msg: impl Into<String>) -> Result<T, EvalError> {
    Err(EvalError(msg.into()))
}

/// A value during evaluation (a Python object of one of the types the evaluator meets).
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// `int` (and `bool` promoted by arithmetic).
    Int(i64),
    /// `float`.
    Float(f64),
    /// `bool`, from comparisons and `not`.
    Bool(bool),
    /// `str`.
    Str(String),
    /// A comma list (function arguments).
    List(Vec<PyValue>),
}

impl PyValue {
    /// Python truthiness.
    pub fn truthy(&self) -> bool {
        match self {
            Self::Int(i) => *i != 0,
            Self::Float(f) => *f != 0.0,
            Self::Bool(b) => *b,
            Self::Str(s) => !s.is_empty(),
            Self::List(l) => !l.is_empty(),
        }
    }

    /// The value as a number, for bool/int/float.
    fn number(&self) -> Option<Num> {
        match self {
            Self::Int(i) => Some(Num::Int(*i)),
            Self::Bool(b) => Some(Num::Int(i64::from(*b))),
            Self::Float(f) => Some(Num::Float(*f)),
            Self::Str(_) | Self::List(_) => None,
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Num {
    Int(i64),
    Float(f64),
}

impl Num {
    #[expect(
        clippy::cast_precision_loss,
        reason = "Python promotes int to float the same way"
    )]
    fn as_f64(self) -> f64 {
        match self {
            Self::Int(i) => i as f64,
            Self::Float(f) => f,
        }
    }

    fn into_value(self) -> PyValue {
        match self {
            Self::Int(i) => PyValue::Int(i),
            Self::Float(f) => PyValue::Float(f),
        }
    }
}

/// The variables an expression can read: `share.*`, `stats.*`, `capabilities.*`, `extra.*`.
pub type Variables = BTreeMap<&'static str, serde_json::Map<String, Value>>;

/// Parses and evaluates `expression` against `vars`.
pub fn evaluate(expression: &str, vars: &Variables) -> Result<PyValue, EvalError> {
    let tokens = tokenize(expression)?;
    let mut parser = Parser {
        tokens,
        pos: 0,
        vars,
    };
    let value = parser.comma()?;
    if parser.pos != parser.tokens.len() {
        return err(format!("unexpected token at {}", parser.pos));
    }
    Ok(value)
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Int(String),
    Real(String),
    Word(String),
    Quoted(String),
    Op(&'static str),
}

const OPERATORS: [&str; 21] = [
    "<=", ">=", "!=", "==", "<>", "&&", "||", "<", ">", "!", "+", "-", "*", "/", "^", "?", ":",
    ",", "(", ")", "=",
];

fn tokenize(input: &str) -> Result<Vec<Token>, EvalError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while chars.get(i).is_some_and(char::is_ascii_digit) {
                i += 1;
            }
            let is_real =
                chars.get(i) == Some(&'.') && chars.get(i + 1).is_some_and(char::is_ascii_digit);
            if is_real {
                i += 1;
                while chars.get(i).is_some_and(char::is_ascii_digit) {
                    i += 1;
                }
            }
            let text: String = chars[start..i].iter().collect();
            tokens.push(if is_real {
                Token::Real(text)
            } else {
                Token::Int(text)
            });
        } else if c.is_ascii_alphabetic() || c == '_' || c == '.' {
            let start = i;
            while chars
                .get(i)
                .is_some_and(|c| c.is_ascii_alphabetic() || *c == '_' || *c == '.')
            {
                i += 1;
            }
            tokens.push(Token::Word(chars[start..i].iter().collect()));
        } else if c == '"' || c == '\'' {
            let mut text = String::new();
            i += 1;
            loop {
                match chars.get(i) {
                    None => return err("unterminated string"),
                    Some('\\') => {
                        if let Some(next) = chars.get(i + 1) {
                            text.push(*next);
                        }
                        i += 2;
                    }
                    Some(q) if *q == c => {
                        i += 1;
                        break;
                    }
                    Some(other) => {
                        text.push(*other);
                        i += 1;
                    }
                }
            }
            tokens.push(Token::Quoted(text));
        } else {
            let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
            let Some(op) = OPERATORS.iter().find(|op| rest.starts_with(**op)) else {
                return err(format!("unexpected character {c:?}"));
            };
            if *op == "=" {
                return err("'=' is not an operator (use '==')");
            }
            tokens.push(Token::Op(op));
            i += op.len();
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    vars: &'a Variables,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    /// Consumes the next token if it is one of the operators (or keyword words) given.
    fn eat(&mut self, ops: &[&str]) -> Option<String> {
        let text = match self.peek()? {
            Token::Op(op) => (*op).to_owned(),
            Token::Word(w) => w.clone(),
            _ => return None,
        };
        if ops.contains(&text.as_str()) {
            self.pos += 1;
            Some(text)
        } else {
            None
        }
    }

    fn expect(&mut self, op: &str) -> Result<(), EvalError> {
        self.eat(&[op])
            .map(|_| ())
            .ok_or_else(|| EvalError(format!("expected {op:?}")))
    }

    fn comma(&mut self) -> Result<PyValue, EvalError> {
        let first = self.or()?;
        if self.eat(&[","]).is_none() {
            return Ok(first);
        }
        let mut items = vec![first];
        match self.comma()? {
            PyValue::List(rest) => items.extend(rest),
            other => items.push(other),
        }
        Ok(PyValue::List(items))
    }

    fn or(&mut self) -> Result<PyValue, EvalError> {
        let mut left = self.and()?;
        while self.eat(&["or", "OR", "||"]).is_some() {
            let right = self.and()?;
            // Python `left or right`, both sides evaluated.
            left = if left.truthy() { left } else { right };
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<PyValue, EvalError> {
        let mut left = self.ternary()?;
        while self.eat(&["and", "AND", "&&"]).is_some() {
            let right = self.ternary()?;
            left = if left.truthy() { right } else { left };
        }
        Ok(left)
    }

    fn ternary(&mut self) -> Result<PyValue, EvalError> {
        let mut value = self.comparison()?;
        while self.eat(&["?"]).is_some() {
            let if_true = self.comparison()?;
            self.expect(":")?;
            let if_false = self.comparison()?;
            value = if value.truthy() { if_true } else { if_false };
        }
        Ok(value)
    }

    fn comparison(&mut self) -> Result<PyValue, EvalError> {
        let first = self.not()?;
        let mut left = first.clone();
        let mut result = None;
        while let Some(op) = self.eat(&["<", "<=", ">", ">=", "!=", "==", "<>"]) {
            let right = self.not()?;
            // Python chains `a < b < c` as `a < b and b < c` (every operand is evaluated
            // here, as in Manila's evaluator).
            let holds = compare(&op, &left, &right)?;
            result = Some(result.unwrap_or(true) && holds);
            left = right;
        }
        Ok(result.map_or(first, PyValue::Bool))
    }

    fn not(&mut self) -> Result<PyValue, EvalError> {
        if self.eat(&["not", "NOT", "!"]).is_some() {
            return Ok(PyValue::Bool(!self.not()?.truthy()));
        }
        self.additive()
    }

    fn additive(&mut self) -> Result<PyValue, EvalError> {
        let mut left = self.multiplicative()?;
        while let Some(op) = self.eat(&["+", "-"]) {
            let right = self.multiplicative()?;
            left = arithmetic(&op, &left, &right)?;
        }
        Ok(left)
    }

    fn multiplicative(&mut self) -> Result<PyValue, EvalError> {
        let mut left = self.sign()?;
        while let Some(op) = self.eat(&["*", "/"]) {
            let right = self.sign()?;
            left = arithmetic(&op, &left, &right)?;
        }
        Ok(left)
    }

    fn sign(&mut self) -> Result<PyValue, EvalError> {
        if let Some(op) = self.eat(&["+", "-"]) {
            let value = self.sign()?;
            let factor = if op == "-" { -1 } else { 1 };
            return arithmetic("*", &PyValue::Int(factor), &value);
        }
        self.power()
    }

    fn power(&mut self) -> Result<PyValue, EvalError> {
        let base = self.function()?;
        if self.eat(&["^"]).is_none() {
            return Ok(base);
        }
        let exponent = self.power()?;
        power(&base, &exponent)
    }

    fn function(&mut self) -> Result<PyValue, EvalError> {
        if let Some(name) = self.eat(&["abs", "max", "min"]) {
            let args = self.function()?;
            return call(&name, args);
        }
        self.atom()
    }

    fn atom(&mut self) -> Result<PyValue, EvalError> {
        let Some(token) = self.peek().cloned() else {
            return err("unexpected end of expression");
        };
        self.pos += 1;
        match token {
            Token::Op("(") => {
                let value = self.comma()?;
                self.expect(")")?;
                Ok(value)
            }
            Token::Int(text) => text
                .parse::<i64>()
                .map(PyValue::Int)
                .or_else(|_| err("integer too large")),
            Token::Real(text) => text
                .parse::<f64>()
                .map(PyValue::Float)
                .or_else(|_| err("bad number")),
            Token::Quoted(text) => Ok(PyValue::Str(text.replace(['"', '\''], ""))),
            Token::Word(word) => self.word(&word),
            Token::Op(op) => err(format!("unexpected {op:?}")),
        }
    }

    /// A bare word: a `dict.key` variable, or else a constant (`inf`, or a string).
    fn word(&self, word: &str) -> Result<PyValue, EvalError> {
        if matches!(
            word,
            "and" | "AND" | "or" | "OR" | "not" | "NOT" | "abs" | "max" | "min"
        ) {
            return err(format!("unexpected {word:?}"));
        }
        let is_variable = word.split_once('.').is_some_and(|(dict, key)| {
            let ident =
                |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
            ident(dict) && ident(key)
        });
        if !is_variable {
            return Ok(match pyval::float_from_str(word) {
                Some(f) => PyValue::Float(f),
                None => PyValue::Str(word.replace(['"', '\''], "")),
            });
        }
        let (dict, key) = word.split_once('.').unwrap_or((word, ""));
        let Some(value) = self.vars.get(dict).and_then(|d| d.get(key)) else {
            return err(format!("unknown variable {word}"));
        };
        from_variable(value)
    }
}

/// A variable's value as Manila's `EvalConstant` reads it: `int()` first, then `float()`,
/// else the string without quote characters.
fn from_variable(value: &Value) -> Result<PyValue, EvalError> {
    match value {
        Value::Bool(b) => Ok(PyValue::Int(i64::from(*b))),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(PyValue::Int(i))
            } else {
                // int(float) truncates toward zero.
                let f = n.as_f64().unwrap_or(f64::NAN);
                let truncated = f.trunc();
                if truncated.is_finite() && truncated.abs() < 9.0e18 {
                    #[expect(clippy::cast_possible_truncation, reason = "range checked")]
                    Ok(PyValue::Int(truncated as i64))
                } else {
                    err("number out of range")
                }
            }
        }
        Value::String(s) => {
            let trimmed = s.trim();
            let int_text = trimmed.replace('_', "");
            if !int_text.is_empty()
                && !trimmed.starts_with('_')
                && !trimmed.ends_with('_')
                && let Ok(i) = int_text.parse::<i64>()
            {
                return Ok(PyValue::Int(i));
            }
            Ok(match pyval::float_from_str(s) {
                Some(f) => PyValue::Float(f),
                None => PyValue::Str(s.replace(['"', '\''], "")),
            })
        }
        // int(None), int([..]), int({..}) raise TypeError.
        Value::Null | Value::Array(_) | Value::Object(_) => err("variable is not a scalar"),
    }
}

fn compare(op: &str, left: &PyValue, right: &PyValue) -> Result<bool, EvalError> {
    let ordering = match (left.number(), right.number(), left, right) {
        (Some(l), Some(r), _, _) => l.as_f64().partial_cmp(&r.as_f64()),
        (_, _, PyValue::Str(l), PyValue::Str(r)) => Some(l.cmp(r)),
        _ => None,
    };
    let equal = match ordering {
        Some(o) => o == Ordering::Equal,
        // Different types never compare equal in Python (NaN never equals anything).
        None => left == right && !matches!(left, PyValue::Float(f) if f.is_nan()),
    };
    match op {
        "==" => Ok(equal),
        "!=" | "<>" => Ok(!equal),
        _ => {
            let Some(ordering) = ordering else {
                // NaN orders as false; mixed types raise TypeError in Python.
                let nan = |v: &PyValue| matches!(v.number(), Some(n) if n.as_f64().is_nan());
                return if nan(left) || nan(right) {
                    Ok(false)
                } else {
                    err("values cannot be ordered")
                };
            };
            Ok(match op {
                "<" => ordering == Ordering::Less,
                "<=" => ordering != Ordering::Greater,
                ">" => ordering == Ordering::Greater,
                _ => ordering != Ordering::Less,
            })
        }
    }
}

fn arithmetic(op: &str, left: &PyValue, right: &PyValue) -> Result<PyValue, EvalError> {
    if op == "+"
        && let (PyValue::Str(l), PyValue::Str(r)) = (left, right)
    {
        return Ok(PyValue::Str(format!("{l}{r}")));
    }
    if op == "/" {
        // `prod /= float(value)`: the divisor goes through float(), strings included.
        let divisor = match right {
            PyValue::Str(s) => pyval::float_from_str(s),
            other => other.number().map(Num::as_f64),
        };
        let (Some(l), Some(r)) = (left.number(), divisor) else {
            return err("unsupported operands for /");
        };
        if r == 0.0 {
            return err("division by zero");
        }
        return Ok(PyValue::Float(l.as_f64() / r));
    }
    let (Some(l), Some(r)) = (left.number(), right.number()) else {
        return err(format!("unsupported operands for {op}"));
    };
    let result = match (l, r) {
        (Num::Int(a), Num::Int(b)) => {
            let checked = match op {
                "+" => a.checked_add(b),
                "-" => a.checked_sub(b),
                _ => a.checked_mul(b),
            };
            Num::Int(checked.ok_or_else(|| EvalError("integer overflow".to_owned()))?)
        }
        (a, b) => {
            let (a, b) = (a.as_f64(), b.as_f64());
            Num::Float(match op {
                "+" => a + b,
                "-" => a - b,
                _ => a * b,
            })
        }
    };
    Ok(result.into_value())
}

fn power(base: &PyValue, exponent: &PyValue) -> Result<PyValue, EvalError> {
    let (Some(b), Some(e)) = (base.number(), exponent.number()) else {
        return err("unsupported operands for ^");
    };
    if let (Num::Int(b), Num::Int(e)) = (b, e)
        && let Ok(e) = u32::try_from(e)
    {
        return b
            .checked_pow(e)
            .map(PyValue::Int)
            .ok_or_else(|| EvalError("integer overflow".to_owned()));
    }
    let (b, e) = (b.as_f64(), e.as_f64());
    if b == 0.0 && e < 0.0 {
        return err("zero to a negative power");
    }
    let result = b.powf(e);
    if result.is_nan() && !b.is_nan() && !e.is_nan() {
        return err("complex result"); // Python would return a complex number
    }
    Ok(PyValue::Float(result))
}

fn call(name: &str, args: PyValue) -> Result<PyValue, EvalError> {
    match (name, args) {
        ("abs", arg) => match arg.number() {
            Some(Num::Int(i)) => i
                .checked_abs()
                .map(PyValue::Int)
                .ok_or_else(|| EvalError("integer overflow".to_owned())),
            Some(Num::Float(f)) => Ok(PyValue::Float(f.abs())),
            None => err("abs() needs a number"),
        },
        (_, PyValue::List(items)) => {
            let mut best: Option<PyValue> = None;
            for item in items {
                best = Some(match best {
                    None => item,
                    Some(current) => {
                        // Python keeps the first of equal items.
                        let replace = if name == "max" {
                            compare(">", &item, &current)?
                        } else {
                            compare("<", &item, &current)?
                        };
                        if replace { item } else { current }
                    }
                });
            }
            best.ok_or_else(|| EvalError("empty argument list".to_owned()))
        }
        _ => err(format!("{name}() needs several arguments")),
    }
}

/// The variables Manila passes to `filter_function`/`goodness_function` for one pool:
/// `share` (the request: `size`, `share_proto`, `availability_zone`), `stats` (the pool's
/// capabilities plus `host` and the derived `thin_provisioning`,
/// `max_over_subscription_ratio`, `provisioned_capacity_gb`), `capabilities` (as
/// reported) and `extra` (the share type's extra specs after Manila's rewriting).
pub(crate) fn scheduler_variables(
    pool: &crate::PoolState,
    req: &crate::ScheduleRequest,
) -> Variables {
    let mut share = serde_json::Map::new();
    share.insert("size".to_owned(), Value::from(req.size_gb));
    share.insert(
        "share_proto".to_owned(),
        Value::from(req.share_proto.clone()),
    );
    share.insert(
        "availability_zone".to_owned(),
        req.availability_zone
            .clone()
            .map_or(Value::Null, Value::from),
    );
    let mut stats = pool.capabilities.clone();
    stats.insert("host".to_owned(), Value::from(pool.name.clone()));
    stats.insert(
        "thin_provisioning".to_owned(),
        Value::from(pool.thin_provisioning()),
    );
    stats.insert(
        "max_over_subscription_ratio".to_owned(),
        serde_json::Number::from_f64(pool.max_over_subscription_ratio())
            .map_or(Value::Null, Value::Number),
    );
    stats.insert(
        "provisioned_capacity_gb".to_owned(),
        pool.provisioned_capacity_gb()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::Null, Value::Number),
    );
    let extra = req
        .effective_extra_specs()
        .into_iter()
        .map(|(k, v)| (k, Value::from(v)))
        .collect();
    Variables::from([
        ("share", share),
        ("stats", stats),
        ("capabilities", pool.capabilities.clone()),
        ("extra", extra),
    ])
}

/// The function string a pool reports under `key` (`filter_function`,
/// `goodness_function`), if any. Manila applies `str()` to any non-null value.
pub(crate) fn reported_function(pool: &crate::PoolState, key: &str) -> Option<String> {
    match pool.capability(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn vars() -> Variables {
        let map = |v: Value| v.as_object().cloned().unwrap_or_default();
        Variables::from([
            ("share", map(json!({"size": 5, "share_proto": "NFS"}))),
            (
                "stats",
                map(json!({"free_capacity_gb": 10.7, "host": "h@b#p", "total": "100"})),
            ),
            ("capabilities", map(json!({"thin": true, "n": null}))),
            ("extra", map(json!({"tier": "gold"}))),
        ])
    }

    fn eval(expr: &str) -> Result<PyValue, EvalError> {
        evaluate(expr, &vars())
    }

    /// The cases of Manila's `test_evaluator.py`, plus variables from the scheduler's dicts.
    #[test]
    fn manila_evaluator_cases() {
        use PyValue::{Bool, Float, Int, Str};
        let rows: &[(&str, PyValue)] = &[
            ("1+1", Int(2)),
            ("2+3+4", Int(9)),
            ("5*6", Int(30)),
            ("22/11", Float(2.0)),
            ("109-71", Int(38)),
            ("872 - 453 + 44 / 22 * 4 + 66", Float(493.0)),
            ("1.5 + 1.0", Float(2.5)),
            ("1.5 + 1", Float(2.5)),
            ("8.5 / 2", Float(4.25)),
            ("10/4+0.75    + 2", Float(5.25)),
            ("-2", Int(-2)),
            ("-2+1", Int(-1)),
            ("5+-2", Int(3)),
            ("2^3", Int(8)),
            ("-2 ^ 3", Int(-8)),
            ("-2 ^ 2", Int(-4)),
            ("2 ^ 3 ^ 2", Int(512)),
            ("2.5 ^ 3", Float(15.625)),
            ("4 ^ 1.5", Float(8.0)),
            ("abs(-5)", Int(5)),
            ("abs(2)", Int(2)),
            ("min(1, 100)", Int(1)),
            ("max(1, 100)", Int(100)),
            ("max(1, 2, 100)", Int(100)),
            ("min (4, 2)", Int(2)),
            ("(1)", Int(1)),
            ("(-1)", Int(-1)),
            ("(1+2) * 5", Int(15)),
            ("(1+2)*(3-1)/((1+(2-1)))", Float(3.0)),
            ("((1.0 / 0.5) * (2)) *(-2)", Float(-8.0)),
            ("1 < 2", Bool(true)),
            ("2 != 1", Bool(true)),
            ("2 <> 1", Bool(true)),
            ("2 == 1", Bool(false)),
            ("1 == 1.0", Bool(true)),
            ("1 < 2 < 3", Bool(true)),
            ("1 < 3 < 2", Bool(false)),
            ("(1 == 1) == !(1 == 2)", Bool(true)),
            ("(1 == 1) AND (2 == 2)", Bool(true)),
            ("(1 == 1) && (5 == 2)", Bool(false)),
            ("(1 == 1) OR (5 == 2)", Bool(true)),
            ("(5 == 1) || (5 == 2)", Bool(false)),
            ("(1 == 1) AND NOT (2 == 2)", Bool(false)),
            ("(1 == 1) AND not (2 == 2)", Bool(false)),
            ("(1 == 1) AND !(2 == 2)", Bool(false)),
            ("(1 == 1) OR NOT (2 == 2) AND (5 == 5)", Bool(true)),
            ("(1 < 2) ? 5 : 10", Int(5)),
            ("(1 > 2) ? 5 : 10", Int(10)),
            ("1 and 0 and 1", Int(0)),
            ("0 or 3", Int(3)),
            // variables
            ("share.size + 1", Int(6)),
            ("share.size < 10 and stats.free_capacity_gb > 9", Bool(true)),
            ("stats.free_capacity_gb > 10", Bool(false)), // 10.7 reads as 10
            ("stats.free_capacity_gb", Int(10)),          // int() truncates
            ("stats.total / 4", Float(25.0)),
            ("capabilities.thin", Int(1)),
            ("stats.host == 'h@b#p'", Bool(true)),
            ("extra.tier == \"gold\"", Bool(true)),
            ("share.share_proto != 'CIFS'", Bool(true)),
            ("10 / '4'", Float(2.5)),
            ("foo", Str("foo".to_owned())),
        ];
        for (expr, expected) in rows {
            assert_eq!(eval(expr).as_ref(), Ok(expected), "{expr}");
        }
    }

    #[test]
    fn errors() {
        for expr in [
            "1/*1",
            "7 / 0",
            "stats.missing + 1",
            "nope.size",
            "capabilities.n",
            "'a' < 1",
            "abs('x')",
            "max(3)",
            "1 +",
            "(1",
            "share.size = 5",
            "(-8) ^ 0.5",
            "9223372036854775807 + 1",
            "",
        ] {
            assert!(eval(expr).is_err(), "{expr} should fail: {:?}", eval(expr));
        }
    }
}
