//! Evaluation of a [`Rule`] tree against credentials and a target, with oslo.policy's
//! `_checks.py` semantics, plus the two pieces of Python behaviour those semantics lean
//! on: `%(name)s` substitution from the target and `ast.literal_eval` of generic-check
//! keys.
//!
//! Evaluation never fails and never panics: anything it cannot make sense of is false,
//! and a `rule:` cycle or an over-deep `rule:` chain denies the whole request (even under
//! a `not`), because a policy that cannot be evaluated must not grant access.

use std::collections::BTreeMap;

use crate::parser::is_quoted;
use crate::rule::Rule;
use crate::{Credentials, Target};

/// How many `rule:` references may be followed in one chain. Manila's defaults need
/// three; a longer chain is almost certainly a mistake in an override file, and the cap
/// bounds recursion. Exceeding it denies, like a cycle.
pub const MAX_RULE_DEPTH: usize = 32;

/// Evaluates `rule` against the named-rule table `rules`. `entry` is the name `rule` was
/// looked up under, if any, so a rule that refers to itself is caught at once.
pub(crate) fn evaluate(
    rules: &BTreeMap<String, Rule>,
    entry: Option<&str>,
    rule: &Rule,
    target: &Target,
    creds: &Credentials,
) -> bool {
    let mut eval = Evaluator {
        rules,
        target,
        creds,
        stack: entry.into_iter().collect(),
    };
    // An abort (cycle or depth) is a deny.
    eval.eval(rule).unwrap_or(false)
}

/// Why an evaluation was abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Abort {
    Cycle,
    TooDeep,
}

struct Evaluator<'a> {
    rules: &'a BTreeMap<String, Rule>,
    target: &'a Target,
    creds: &'a Credentials,
    /// Names of the rules being evaluated, outermost first.
    stack: Vec<&'a str>,
}

impl<'a> Evaluator<'a> {
    fn eval(&mut self, rule: &'a Rule) -> Result<bool, Abort> {
        Ok(match rule {
            Rule::Always => true,
            Rule::Never => false,
            Rule::Role(template) => match expand_template(template, |k| self.lookup(k)) {
                Expand::Done(role) => self.creds.roles.iter().any(|r| eq_ignore_case(r, &role)),
                Expand::Missing | Expand::Invalid(_) => false,
            },
            Rule::Rule(name) => return self.eval_named(name),
            Rule::Generic { key, match_ } => self.generic(key, match_),
            Rule::And(rules) => {
                for rule in rules {
                    if !self.eval(rule)? {
                        return Ok(false);
                    }
                }
                true
            }
            Rule::Or(rules) => {
                for rule in rules {
                    if self.eval(rule)? {
                        return Ok(true);
                    }
                }
                false
            }
            Rule::Not(rule) => !self.eval(rule)?,
        })
    }

    fn eval_named(&mut self, name: &str) -> Result<bool, Abort> {
        let Some((name, rule)) = self.rules.get_key_value(name) else {
            // oslo would fall back to the `default` rule here; a typo in a rule name
            // must not quietly grant project owners access, so it is false.
            return Ok(false);
        };
        if self.stack.contains(&name.as_str()) {
            return Err(Abort::Cycle);
        }
        if self.stack.len() >= MAX_RULE_DEPTH {
            return Err(Abort::TooDeep);
        }
        self.stack.push(name);
        let result = self.eval(rule);
        self.stack.pop();
        result
    }

    fn lookup(&self, key: &str) -> Option<&'a str> {
        self.target.get(key).map(String::as_str)
    }

    /// oslo's `GenericCheck`: substitute the target into the match, then compare it with
    /// the literal key or with the named credential attribute.
    fn generic(&self, key: &str, match_: &str) -> bool {
        let Expand::Done(value) = expand_template(match_, |k| self.lookup(k)) else {
            return false;
        };
        // A fully quoted match is a literal: `user_id:'abc'` compares with `abc`. (oslo
        // would compare with `'abc'`, quotes included, which can never be intended.)
        let value = if is_quoted(match_) {
            value
                .get(1..value.len().saturating_sub(1))
                .unwrap_or(&value)
        } else {
            &value
        };
        match literal_key(key) {
            Some(literal) => literal == value,
            None => self.credential_matches(key, value),
        }
    }

    /// Compares `value` with the credential attribute `key` as Python's `str()` prints it.
    /// Unknown attributes (including dotted paths, which need nested credentials that
    /// shoal does not have) never match.
    fn credential_matches(&self, key: &str, value: &str) -> bool {
        match key {
            "user_id" => self.creds.user_id == value,
            "project_id" => self.creds.project_id == value,
            "is_admin" => value == if self.creds.is_admin { "True" } else { "False" },
            // oslo walks into lists: any element equal to the value matches.
            "roles" => self.creds.roles.iter().any(|role| role == value),
            _ => false,
        }
    }
}

/// Python's `str.lower()` equality, without allocating.
pub(crate) fn eq_ignore_case(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// The result of substituting a target into a match template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Expand {
    /// Every placeholder was filled.
    Done(String),
    /// A placeholder named a key the target lacks (oslo: `KeyError`, check is false).
    Missing,
    /// The template is not `%`-format text oslo could use.
    Invalid(String),
}

/// Python's `template % target` for the forms policy files use: `%(name)s` is replaced by
/// the looked-up value and `%%` by `%`. Other conversions (`%(x)d`, `%s`, widths) are
/// [`Expand::Invalid`]: in oslo they raise or print nonsense. As in Python, the name runs
/// to the matching `)`, so it may itself contain balanced parentheses.
pub(crate) fn expand_template<'t>(
    template: &str,
    mut lookup: impl FnMut(&str) -> Option<&'t str>,
) -> Expand {
    let mut out = String::with_capacity(template.len());
    let mut missing = false;
    let mut rest = template;
    while let Some(pos) = rest.find('%') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('%') {
            out.push('%');
            rest = tail;
            continue;
        }
        let Some(inner) = after.strip_prefix('(') else {
            return Expand::Invalid(
                "`%` must start a `%(name)s` placeholder or be doubled as `%%`".into(),
            );
        };
        let mut depth = 1usize;
        let mut close = None;
        for (i, c) in inner.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = Some(i);
                        break;
                    }
                }
                _ => {}
            }
        }
        let Some(close) = close else {
            return Expand::Invalid("unclosed `%(` placeholder".into());
        };
        let name = &inner[..close];
        let Some(tail) = inner[close + 1..].strip_prefix('s') else {
            return Expand::Invalid(format!(
                "placeholder `%({name})` must end in `s` (only `%(name)s` is supported)"
            ));
        };
        match lookup(name) {
            Some(value) => out.push_str(value),
            // Keep scanning: a later malformed placeholder must still be reported.
            None => missing = true,
        }
        rest = tail;
    }
    out.push_str(rest);
    if missing {
        Expand::Missing
    } else {
        Expand::Done(out)
    }
}

/// The string oslo compares with when a generic check's key is a Python literal (its
/// `ast.literal_eval` succeeds): `'text'`/`"text"` give `text`, `True`/`False`/`None`
/// themselves, and integers their decimal form. `None` means "not a literal": the key
/// names a credential attribute. Quoted keys with backslashes or inner quotes are
/// rejected (the parser reports them) rather than emulating Python's escapes.
pub(crate) fn literal_key(key: &str) -> Option<String> {
    if let Some(quote) = key.chars().next().filter(|c| *c == '\'' || *c == '"') {
        let inner = key.strip_prefix(quote)?.strip_suffix(quote)?;
        if inner.contains(quote) || inner.contains('\\') {
            return None;
        }
        return Some(inner.to_owned());
    }
    if matches!(key, "True" | "False" | "None") {
        return Some(key.to_owned());
    }
    let (negative, digits) = match key.as_bytes().first() {
        Some(b'-') => (true, &key[1..]),
        Some(b'+') => (false, &key[1..]),
        _ => (false, key),
    };
    let is_int = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    if !is_int {
        return None;
    }
    Some(if negative && digits != "0" {
        format!("-{digits}")
    } else {
        digits.to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;

    fn creds(user: &str, project: &str, roles: &[&str], is_admin: bool) -> Credentials {
        Credentials {
            user_id: user.into(),
            project_id: project.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            is_admin,
        }
    }

    fn target(pairs: &[(&str, &str)]) -> Target {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn rules(pairs: &[(&str, &str)]) -> BTreeMap<String, Rule> {
        pairs
            .iter()
            .map(|(name, text)| {
                let rule = parse(text).unwrap_or_else(|e| panic!("{name}: {e}"));
                ((*name).to_owned(), rule)
            })
            .collect()
    }

    /// Evaluates an ad-hoc check string with no named rules.
    fn check(text: &str, target: &Target, creds: &Credentials) -> bool {
        let rule = parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        evaluate(&BTreeMap::new(), None, &rule, target, creds)
    }

    fn check_with(
        table: &BTreeMap<String, Rule>,
        name: &str,
        target: &Target,
        creds: &Credentials,
    ) -> bool {
        let rule = Rule::Rule(name.to_owned());
        evaluate(table, None, &rule, target, creds)
    }

    #[test]
    fn literals_and_operators() {
        let c = creds("u", "p", &["member"], false);
        let t = target(&[]);
        let cases: &[(&str, bool)] = &[
            ("", true),
            ("@", true),
            ("!", false),
            ("not @", false),
            ("not !", true),
            ("@ and !", false),
            ("@ or !", true),
            ("! or ! or @", true),
            ("@ and @ and !", false),
            ("! or @ and !", false),
            ("! and ! or @", true),
            ("not ! and not !", true),
            ("not (@ and !)", true),
            ("not not @", true),
        ];
        for (text, want) in cases {
            assert_eq!(check(text, &t, &c), *want, "{text:?}");
        }
    }

    #[test]
    fn role_checks_ignore_case_and_substitute() {
        let c = creds("u", "p", &["Member", "ReAdEr"], false);
        let t = target(&[("wanted", "READER")]);
        assert!(check("role:member", &t, &c));
        assert!(check("role:MEMBER", &t, &c));
        assert!(check("role:reader", &t, &c));
        assert!(!check("role:admin", &t, &c));
        assert!(
            check("role:%(wanted)s", &t, &c),
            "placeholder then lower-case compare"
        );
        assert!(
            !check("role:%(absent)s", &t, &c),
            "missing target key is false"
        );
        assert!(!check("role:mem", &t, &c), "whole-name match only");
    }

    #[test]
    fn generic_checks_read_credentials() {
        let c = creds("u1", "p1", &["member", "Reader"], true);
        let t = target(&[("project_id", "p1"), ("user_id", "u1"), ("other", "p2")]);
        let cases: &[(&str, bool)] = &[
            ("project_id:%(project_id)s", true),
            ("project_id:%(other)s", false),
            ("project_id:%(missing)s", false),
            ("user_id:%(user_id)s", true),
            ("user_id:u1", true),
            ("user_id:'u1'", true),
            ("user_id:\"u1\"", true),
            ("user_id:U1", false),
            ("is_admin:True", true),
            ("is_admin:true", false),
            ("is_admin:False", false),
            ("roles:member", true),
            ("roles:Reader", true),
            ("roles:reader", false),
            ("tenant:p1", false),
            ("system_scope:all", false),
            ("roles.name:member", false),
            ("project_id:p%(missing)s", false),
        ];
        for (text, want) in cases {
            assert_eq!(check(text, &t, &c), *want, "{text:?}");
        }
        let plain = creds("u1", "p1", &[], false);
        assert!(check("is_admin:False", &t, &plain));
        assert!(!check("is_admin:True", &t, &plain));
    }

    #[test]
    fn literal_on_the_left() {
        let c = creds("u", "p", &[], false);
        let t = target(&[
            ("role.name", "member"),
            ("user.enabled", "True"),
            ("n", "42"),
            ("neg", "-7"),
            ("none", "None"),
        ]);
        let cases: &[(&str, bool)] = &[
            ("'member':%(role.name)s", true),
            ("\"member\":%(role.name)s", true),
            ("'admin':%(role.name)s", false),
            ("'member':%(absent)s", false),
            ("True:%(user.enabled)s", true),
            ("False:%(user.enabled)s", false),
            ("42:%(n)s", true),
            ("+42:%(n)s", true),
            ("-7:%(neg)s", true),
            ("None:%(none)s", true),
            ("'':%(empty)s", false),
            ("'%%':x", false),
        ];
        for (text, want) in cases {
            assert_eq!(check(text, &t, &c), *want, "{text:?}");
        }
        let with_empty = target(&[("empty", "")]);
        assert!(check("'':%(empty)s", &with_empty, &c));
    }

    #[test]
    fn template_expansion() {
        let t = target(&[("a", "x"), ("b(c)", "y"), ("", "blank")]);
        let look = |k: &str| t.get(k).map(String::as_str);
        assert_eq!(expand_template("plain", look), Expand::Done("plain".into()));
        assert_eq!(expand_template("%(a)s", look), Expand::Done("x".into()));
        assert_eq!(
            expand_template("pre-%(a)s-%(a)s%%", look),
            Expand::Done("pre-x-x%".into())
        );
        assert_eq!(expand_template("%(b(c))s", look), Expand::Done("y".into()));
        assert_eq!(expand_template("%()s", look), Expand::Done("blank".into()));
        assert_eq!(expand_template("%(zz)s", look), Expand::Missing);
        for bad in [
            "%", "a%", "%s", "%(a)d", "%(a)", "%(a", "%(a)5s", "%(zz)s%q",
        ] {
            assert!(
                matches!(expand_template(bad, look), Expand::Invalid(_)),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn literal_keys() {
        let cases: &[(&str, Option<&str>)] = &[
            ("'member'", Some("member")),
            ("\"member\"", Some("member")),
            ("''", Some("")),
            ("True", Some("True")),
            ("False", Some("False")),
            ("None", Some("None")),
            ("0", Some("0")),
            ("-0", Some("0")),
            ("+5", Some("5")),
            ("-12", Some("-12")),
            ("007", None),
            ("1.5", None),
            ("true", None),
            ("project_id", None),
            ("'a'b'", None),
            ("'a\\'", None),
            ("'open", None),
            ("'mixed\"", None),
            ("-", None),
        ];
        for (key, want) in cases {
            assert_eq!(literal_key(key).as_deref(), *want, "{key:?}");
        }
    }

    #[test]
    fn personas_like_manila() {
        let table = rules(&[
            ("context_is_admin", "role:admin"),
            (
                "project-member",
                "role:member and project_id:%(project_id)s",
            ),
            (
                "project-reader",
                "role:reader and project_id:%(project_id)s",
            ),
            (
                "member_rule",
                "(rule:context_is_admin) or (rule:project-member)",
            ),
            (
                "reader_rule",
                "(rule:context_is_admin) or (rule:project-reader)",
            ),
            ("admin_rule", "rule:context_is_admin"),
        ]);
        let own = target(&[("project_id", "p1")]);
        let other = target(&[("project_id", "p2")]);
        let admin_elsewhere = creds("a", "admin-project", &["admin"], true);
        let member = creds("m", "p1", &["member", "reader"], false);
        let reader = creds("r", "p1", &["reader"], false);
        let nobody = creds("n", "p1", &[], false);

        for t in [&own, &other] {
            for name in ["member_rule", "reader_rule", "admin_rule"] {
                assert!(check_with(&table, name, t, &admin_elsewhere), "{name}");
            }
        }
        assert!(check_with(&table, "member_rule", &own, &member));
        assert!(check_with(&table, "reader_rule", &own, &member));
        assert!(!check_with(&table, "admin_rule", &own, &member));
        assert!(!check_with(&table, "member_rule", &other, &member));
        assert!(!check_with(&table, "reader_rule", &other, &member));

        assert!(!check_with(&table, "member_rule", &own, &reader));
        assert!(check_with(&table, "reader_rule", &own, &reader));
        assert!(!check_with(&table, "reader_rule", &other, &reader));

        for name in ["member_rule", "reader_rule", "admin_rule"] {
            assert!(!check_with(&table, name, &own, &nobody), "{name}");
        }
        // The project comparison needs the target to say whose resource it is.
        assert!(!check_with(&table, "member_rule", &target(&[]), &member));
    }

    #[test]
    fn rule_chains_and_unknown_names() {
        let table = rules(&[
            ("a", "rule:b"),
            ("b", "rule:c"),
            ("c", "role:x"),
            ("dangling", "rule:nope"),
            ("negated_dangling", "not rule:nope"),
        ]);
        let t = target(&[]);
        let x = creds("u", "p", &["x"], false);
        let y = creds("u", "p", &["y"], false);
        assert!(check_with(&table, "a", &t, &x));
        assert!(!check_with(&table, "a", &t, &y));
        assert!(!check_with(&table, "dangling", &t, &x));
        assert!(
            check_with(&table, "negated_dangling", &t, &x),
            "unknown is plain false"
        );
        assert!(!check_with(&table, "not-registered", &t, &x));
    }

    #[test]
    fn cycles_deny_even_under_not() {
        let table = rules(&[
            ("self", "rule:self"),
            ("ping", "rule:pong"),
            ("pong", "rule:ping"),
            ("not_self", "not rule:not_self"),
            ("not_ping", "not rule:pong2"),
            ("pong2", "not rule:not_ping"),
            ("or_first", "@ or rule:self"),
            ("or_last", "rule:self or @"),
            ("uses_cycle", "role:x and rule:ping"),
            (
                "diamond",
                "rule:leaf and rule:leaf and (rule:leaf or rule:leaf)",
            ),
            ("leaf", "role:x"),
        ]);
        let t = target(&[]);
        let x = creds("u", "p", &["x"], false);
        for name in [
            "self",
            "ping",
            "pong",
            "not_self",
            "not_ping",
            "pong2",
            "or_last",
            "uses_cycle",
        ] {
            assert!(!check_with(&table, name, &t, &x), "{name}");
        }
        // A cycle that evaluation never reaches does not matter (short-circuit).
        assert!(check_with(&table, "or_first", &t, &x));
        // Re-using a rule on several branches is not a cycle.
        assert!(check_with(&table, "diamond", &t, &x));
    }

    #[test]
    fn chain_depth_is_capped() {
        let chain = |len: usize| -> BTreeMap<String, Rule> {
            let mut table = BTreeMap::new();
            for i in 0..len {
                table.insert(format!("r{i}"), Rule::Rule(format!("r{}", i + 1)));
            }
            table.insert(format!("r{len}"), Rule::Always);
            table
        };
        let t = target(&[]);
        let c = creds("u", "p", &[], false);
        // r0 -> r1 -> ... -> rN: following N+1 references in total.
        assert!(check_with(&chain(MAX_RULE_DEPTH - 1), "r0", &t, &c));
        assert!(!check_with(&chain(MAX_RULE_DEPTH), "r0", &t, &c));
        assert!(!check_with(&chain(5_000), "r0", &t, &c));
    }

    #[test]
    fn eq_ignore_case_is_unicode_aware() {
        assert!(eq_ignore_case("ÄDMIN", "ädmin"));
        assert!(eq_ignore_case("", ""));
        assert!(!eq_ignore_case("a", "ab"));
    }
}
