//! The parsed form of a check string ([`Rule`]) and its canonical printing.
//!
//! Leaves keep the text of the check as written (`%(project_id)s` placeholders, quotes and
//! all) so that printing a parsed rule and parsing it again yields the same tree; the
//! meaning of that text is applied at evaluation time (`eval.rs`).

use std::fmt;

/// A parsed check string.
///
/// `And`/`Or` hold the operands in source order. The parser never produces them with
/// fewer than two operands; hand-built ones with zero or one operand still evaluate
/// sensibly (empty `And` is true, empty `Or` is false) and print as an equivalent rule.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Rule {
    /// `@` or the empty check string: always allowed.
    Always,
    /// `!`: never allowed.
    Never,
    /// `role:NAME`: the caller holds role `NAME` (case-insensitive). `NAME` may contain
    /// `%(key)s` placeholders filled from the target.
    Role(String),
    /// `rule:NAME`: the result of the named rule; false if there is no such rule.
    Rule(String),
    /// `key:match`, oslo's generic check. `key` names a credential attribute (`user_id`,
    /// `project_id`, `roles`, `is_admin`) or is a literal (`'member'`, `True`, `42`);
    /// `match_` is a literal or contains `%(key)s` placeholders filled from the target.
    Generic {
        /// Left of the first `:`, as written.
        key: String,
        /// Right of the first `:`, as written.
        match_: String,
    },
    /// `a and b and ...`: every operand allows.
    And(Vec<Rule>),
    /// `a or b or ...`: at least one operand allows.
    Or(Vec<Rule>),
    /// `not a`.
    Not(Box<Rule>),
}

impl Rule {
    /// Names this rule refers to through `rule:` checks, in source order, with repeats.
    pub fn references(&self) -> Vec<&str> {
        let mut out = Vec::new();
        self.collect_references(&mut out);
        out
    }

    fn collect_references<'a>(&'a self, out: &mut Vec<&'a str>) {
        match self {
            Rule::Rule(name) => out.push(name),
            Rule::And(rules) | Rule::Or(rules) => {
                for rule in rules {
                    rule.collect_references(out);
                }
            }
            Rule::Not(rule) => rule.collect_references(out),
            Rule::Always | Rule::Never | Rule::Role(_) | Rule::Generic { .. } => {}
        }
    }
}

/// Prints the canonical check string: `@`, `!`, `role:x`, `rule:x`, `key:match`,
/// `not x`, and every `and`/`or` group in parentheses (as oslo's `__str__` does), so
/// that grouping, and therefore the parsed tree, survives a round trip.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rule::Always => f.write_str("@"),
            Rule::Never => f.write_str("!"),
            Rule::Role(name) => write!(f, "role:{name}"),
            Rule::Rule(name) => write!(f, "rule:{name}"),
            Rule::Generic { key, match_ } => write!(f, "{key}:{match_}"),
            Rule::And(rules) => write_group(f, rules, "and", "@"),
            Rule::Or(rules) => write_group(f, rules, "or", "!"),
            Rule::Not(rule) => write!(f, "not {rule}"),
        }
    }
}

/// Writes `(a op b op c)`; a group of one is just its operand and an empty group is the
/// operator's identity (`@` for and, `!` for or), which evaluate the same.
fn write_group(f: &mut fmt::Formatter<'_>, rules: &[Rule], op: &str, empty: &str) -> fmt::Result {
    match rules {
        [] => f.write_str(empty),
        [only] => write!(f, "{only}"),
        [first, rest @ ..] => {
            write!(f, "({first}")?;
            for rule in rest {
                write!(f, " {op} {rule}")?;
            }
            f.write_str(")")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn role(name: &str) -> Rule {
        Rule::Role(name.into())
    }

    #[test]
    fn display_leaves() {
        assert_eq!(Rule::Always.to_string(), "@");
        assert_eq!(Rule::Never.to_string(), "!");
        assert_eq!(role("admin").to_string(), "role:admin");
        assert_eq!(Rule::Rule("default".into()).to_string(), "rule:default");
        let generic = Rule::Generic {
            key: "project_id".into(),
            match_: "%(project_id)s".into(),
        };
        assert_eq!(generic.to_string(), "project_id:%(project_id)s");
    }

    #[test]
    fn display_groups_are_parenthesised() {
        let rule = Rule::Or(vec![
            role("a"),
            Rule::And(vec![role("b"), Rule::Not(Box::new(role("c")))]),
        ]);
        assert_eq!(rule.to_string(), "(role:a or (role:b and not role:c))");
        let negated_group = Rule::Not(Box::new(Rule::And(vec![role("a"), role("b")])));
        assert_eq!(negated_group.to_string(), "not (role:a and role:b)");
    }

    #[test]
    fn display_degenerate_groups() {
        assert_eq!(Rule::And(vec![]).to_string(), "@");
        assert_eq!(Rule::Or(vec![]).to_string(), "!");
        assert_eq!(Rule::And(vec![role("x")]).to_string(), "role:x");
        assert_eq!(Rule::Or(vec![role("x")]).to_string(), "role:x");
    }

    #[test]
    fn references_in_order() {
        let rule = Rule::Or(vec![
            Rule::Rule("a".into()),
            Rule::And(vec![role("r"), Rule::Not(Box::new(Rule::Rule("b".into())))]),
            Rule::Rule("a".into()),
        ]);
        assert_eq!(rule.references(), vec!["a", "b", "a"]);
        assert!(Rule::Always.references().is_empty());
    }
}
