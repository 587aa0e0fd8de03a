//! The check-string parser: tokenizing as oslo.policy's `_parser.py` does, then a
//! recursive-descent parse with oslo's precedence (`not` binds tighter than `and`, which
//! binds tighter than `or`).
//!
//! Tokenizing follows oslo exactly: the string is split on whitespace; leading `(` and
//! trailing `)` are peeled off each word (so `%(project_id)s` inside a check survives);
//! `and`/`or`/`not` are keywords in any case; every other word is one check `kind:match`
//! split at its first `:`. Where oslo would log a problem and fail closed (a word that is
//! not a check, unbalanced parentheses, a dangling operator, a whitespace-only string) we
//! return [`PolicyError::Parse`] instead, so configuration mistakes surface at load time.

use crate::error::PolicyError;
use crate::eval::{Expand, expand_template, literal_key};
use crate::rule::Rule;

/// How deeply parentheses and `not`s may nest. Real policies nest two or three levels;
/// the cap keeps recursion (here and in evaluation/printing) far from the stack limit
/// whatever the input.
pub const MAX_NESTING: usize = 64;

/// Parses a check string into a [`Rule`].
///
/// The empty string is [`Rule::Always`], as in oslo. Never panics; any input that is not
/// valid policy language yields [`PolicyError::Parse`] naming the problem.
pub fn parse(rule: &str) -> Result<Rule, PolicyError> {
    if rule.is_empty() {
        return Ok(Rule::Always);
    }
    let tokens = tokenize(rule).map_err(|reason| PolicyError::parse(rule, reason))?;
    if tokens.is_empty() {
        // oslo: only the exactly-empty string means "always"; a blank one fails to parse.
        return Err(PolicyError::parse(rule, "contains only whitespace"));
    }
    let mut parser = Parser {
        tokens: tokens.into_iter().peekable(),
        depth: 0,
    };
    let result = parser
        .parse_or()
        .and_then(|parsed| match parser.tokens.next() {
            None => Ok(parsed),
            Some(Spanned {
                tok: Tok::RParen,
                at,
            }) => Err(format!("unbalanced `)` at byte {at}")),
            Some(extra) => Err(format!(
                "unexpected {} at byte {} (missing `and`/`or`?)",
                extra.tok.describe(),
                extra.at
            )),
        });
    result.map_err(|reason| PolicyError::parse(rule, reason))
}

/// Parses one check word (`kind:match`, `@` or `!`), the leaves of the grammar.
fn parse_check(word: &str, at: usize) -> Result<Rule, String> {
    match word {
        "@" => return Ok(Rule::Always),
        "!" => return Ok(Rule::Never),
        _ => {}
    }
    let Some((kind, match_)) = word.split_once(':') else {
        return Err(format!(
            "`{word}` at byte {at} is not a check (expected `kind:match`, `@` or `!`)"
        ));
    };
    if kind.is_empty() {
        return Err(format!("`{word}` at byte {at} has nothing before the `:`"));
    }
    if match_.is_empty() {
        return Err(format!("`{word}` at byte {at} has nothing after the `:`"));
    }
    match kind {
        "rule" => Ok(Rule::Rule(match_.to_owned())),
        "role" => {
            validate_template(match_, word, at)?;
            Ok(Rule::Role(match_.to_owned()))
        }
        // oslo's HttpCheck POSTs the request to a remote server; shoal has no such hook,
        // and treating it as a generic check would silently change its meaning.
        "http" | "https" => Err(format!(
            "`{word}` at byte {at}: remote {kind} checks are not supported"
        )),
        _ => {
            let quote = kind.chars().next().filter(|c| *c == '\'' || *c == '"');
            if quote.is_some() && literal_key(kind).is_none() {
                // oslo hands this to Python's literal_eval, which raises at enforce time.
                return Err(format!(
                    "`{word}` at byte {at}: `{kind}` is not a well-formed quoted literal"
                ));
            }
            if literal_key(kind).is_none() && !kind.chars().all(is_attribute_char) {
                // A key like `!x` or `%(x` is a Python syntax error in oslo's
                // literal_eval, which raises at enforce time; a credential attribute path
                // is made of name characters, dots and dashes.
                return Err(format!(
                    "`{word}` at byte {at}: `{kind}` is neither a literal nor a credential \
                     attribute name"
                ));
            }
            validate_template(match_, word, at)?;
            Ok(Rule::Generic {
                key: kind.to_owned(),
                match_: match_.to_owned(),
            })
        }
    }
}

/// Characters of a credential attribute path such as `project_id` or `user.enabled`.
fn is_attribute_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Rejects matches that Python's `%` formatting would choke on at enforce time.
fn validate_template(template: &str, word: &str, at: usize) -> Result<(), String> {
    match expand_template(template, |_| Some("")) {
        Expand::Done(_) | Expand::Missing => Ok(()),
        Expand::Invalid(why) => Err(format!("`{word}` at byte {at}: {why}")),
    }
}

#[derive(Debug)]
enum Tok {
    LParen,
    RParen,
    And,
    Or,
    Not,
    Check(Rule),
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::And => "`and`".into(),
            Tok::Or => "`or`".into(),
            Tok::Not => "`not`".into(),
            Tok::Check(rule) => format!("check `{rule}`"),
        }
    }
}

/// A token and the byte offset of the word it came from, for error messages.
#[derive(Debug)]
struct Spanned {
    tok: Tok,
    at: usize,
}

fn tokenize(input: &str) -> Result<Vec<Spanned>, String> {
    let mut out = Vec::new();
    for word in input.split_whitespace() {
        // `word` borrows from `input`, so the pointer difference is its byte offset.
        let at = word.as_ptr() as usize - input.as_ptr() as usize;
        let rest = word.trim_start_matches('(');
        for _ in 0..word.len() - rest.len() {
            out.push(Spanned {
                tok: Tok::LParen,
                at,
            });
        }
        let clean = rest.trim_end_matches(')');
        let trailing = rest.len() - clean.len();
        if !clean.is_empty() {
            let tok = if clean.eq_ignore_ascii_case("and") {
                Tok::And
            } else if clean.eq_ignore_ascii_case("or") {
                Tok::Or
            } else if clean.eq_ignore_ascii_case("not") {
                Tok::Not
            } else if is_quoted(clean) {
                // oslo makes this a string token that no grammar rule consumes, so the
                // whole rule fails to parse.
                return Err(format!("quoted string {clean} at byte {at} is not a check"));
            } else {
                Tok::Check(parse_check(clean, at)?)
            };
            out.push(Spanned { tok, at });
        }
        for _ in 0..trailing {
            out.push(Spanned {
                tok: Tok::RParen,
                at,
            });
        }
    }
    Ok(out)
}

/// `'...'` or `"..."` (at least the two quotes).
pub(crate) fn is_quoted(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() >= 2 && matches!(bytes[0], b'\'' | b'"') && bytes.last() == Some(&bytes[0])
}

struct Parser {
    tokens: std::iter::Peekable<std::vec::IntoIter<Spanned>>,
    depth: usize,
}

impl Parser {
    /// `or_expr := and_expr ("or" and_expr)*`
    fn parse_or(&mut self) -> Result<Rule, String> {
        let mut operands = vec![self.parse_and()?];
        while self.eat(|t| matches!(t, Tok::Or)) {
            operands.push(self.parse_and()?);
        }
        Ok(collapse(operands, Rule::Or))
    }

    /// `and_expr := unary ("and" unary)*`
    fn parse_and(&mut self) -> Result<Rule, String> {
        let mut operands = vec![self.parse_unary()?];
        while self.eat(|t| matches!(t, Tok::And)) {
            operands.push(self.parse_unary()?);
        }
        Ok(collapse(operands, Rule::And))
    }

    /// `unary := "not" unary | "(" or_expr ")" | check`
    fn parse_unary(&mut self) -> Result<Rule, String> {
        let Some(Spanned { tok, at }) = self.tokens.next() else {
            return Err("unexpected end of rule (expected a check, `(` or `not`)".into());
        };
        match tok {
            Tok::Check(rule) => Ok(rule),
            Tok::Not => {
                self.enter(at)?;
                let inner = self.parse_unary()?;
                self.depth -= 1;
                Ok(Rule::Not(Box::new(inner)))
            }
            Tok::LParen => {
                self.enter(at)?;
                let inner = self.parse_or()?;
                if !self.eat(|t| matches!(t, Tok::RParen)) {
                    return Err(match self.tokens.peek() {
                        None => format!("unclosed `(` at byte {at}"),
                        Some(next) => format!(
                            "expected `)` for the `(` at byte {at}, found {} at byte {}",
                            next.tok.describe(),
                            next.at
                        ),
                    });
                }
                self.depth -= 1;
                Ok(inner)
            }
            other => Err(format!(
                "unexpected {} at byte {at} (expected a check, `(` or `not`)",
                other.describe()
            )),
        }
    }

    fn enter(&mut self, at: usize) -> Result<(), String> {
        self.depth += 1;
        if self.depth > MAX_NESTING {
            return Err(format!(
                "nested more than {MAX_NESTING} levels deep at byte {at}"
            ));
        }
        Ok(())
    }

    fn eat(&mut self, want: impl Fn(&Tok) -> bool) -> bool {
        self.tokens.next_if(|s| want(&s.tok)).is_some()
    }
}

fn collapse(mut operands: Vec<Rule>, group: fn(Vec<Rule>) -> Rule) -> Rule {
    if operands.len() == 1 {
        operands.pop().unwrap_or(Rule::Always)
    } else {
        group(operands)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn role(name: &str) -> Rule {
        Rule::Role(name.into())
    }
    fn rref(name: &str) -> Rule {
        Rule::Rule(name.into())
    }
    fn generic(key: &str, match_: &str) -> Rule {
        Rule::Generic {
            key: key.into(),
            match_: match_.into(),
        }
    }
    fn not(rule: Rule) -> Rule {
        Rule::Not(Box::new(rule))
    }
    fn and(rules: Vec<Rule>) -> Rule {
        Rule::And(rules)
    }
    fn or(rules: Vec<Rule>) -> Rule {
        Rule::Or(rules)
    }
    fn ok(input: &str) -> Rule {
        match parse(input) {
            Ok(rule) => rule,
            Err(err) => panic!("{input:?} should parse: {err}"),
        }
    }
    fn reason(input: &str) -> String {
        match parse(input) {
            Ok(rule) => panic!("{input:?} should not parse, got {rule:?}"),
            Err(PolicyError::Parse {
                input: echoed,
                reason,
            }) => {
                assert_eq!(echoed, input, "error echoes the input");
                reason
            }
            Err(other) => panic!("{input:?}: wrong error kind {other:?}"),
        }
    }

    #[test]
    fn special_checks() {
        let cases: &[(&str, Rule)] = &[
            ("", Rule::Always),
            ("@", Rule::Always),
            ("!", Rule::Never),
            ("  @  ", Rule::Always),
            ("(!)", Rule::Never),
            ("not @", not(Rule::Always)),
            ("not !", not(Rule::Never)),
        ];
        for (input, want) in cases {
            assert_eq!(&ok(input), want, "{input:?}");
        }
    }

    #[test]
    fn checks_of_each_kind() {
        let cases: &[(&str, Rule)] = &[
            ("role:admin", role("admin")),
            ("role:Admin", role("Admin")),
            ("role:compute:admin", role("compute:admin")),
            ("role:%(role_name)s", role("%(role_name)s")),
            ("rule:context_is_admin", rref("context_is_admin")),
            ("rule:project-member", rref("project-member")),
            (
                "rule:scheduler_stats:pools:index",
                rref("scheduler_stats:pools:index"),
            ),
            (
                "project_id:%(project_id)s",
                generic("project_id", "%(project_id)s"),
            ),
            ("is_admin:True", generic("is_admin", "True")),
            ("user_id:'abc'", generic("user_id", "'abc'")),
            ("user_id:\"abc\"", generic("user_id", "\"abc\"")),
            ("user_id:abc", generic("user_id", "abc")),
            (
                "'member':%(role.name)s",
                generic("'member'", "%(role.name)s"),
            ),
            (
                "\"member\":%(role.name)s",
                generic("\"member\"", "%(role.name)s"),
            ),
            ("True:%(user.enabled)s", generic("True", "%(user.enabled)s")),
            (
                "project_id:pre-%(a)s-%(b)s%%",
                generic("project_id", "pre-%(a)s-%(b)s%%"),
            ),
            ("user_id:a(b)c", generic("user_id", "a(b)c")),
        ];
        for (input, want) in cases {
            assert_eq!(&ok(input), want, "{input:?}");
        }
    }

    #[test]
    fn operators_and_precedence() {
        let (a, b, c, d) = (role("a"), role("b"), role("c"), role("d"));
        let cases: Vec<(&str, Rule)> = vec![
            ("role:a and role:b", and(vec![a.clone(), b.clone()])),
            ("role:a or role:b", or(vec![a.clone(), b.clone()])),
            ("not role:a", not(a.clone())),
            (
                "role:a and role:b and role:c",
                and(vec![a.clone(), b.clone(), c.clone()]),
            ),
            (
                "role:a or role:b or role:c",
                or(vec![a.clone(), b.clone(), c.clone()]),
            ),
            // and binds tighter than or, on either side
            (
                "role:a or role:b and role:c",
                or(vec![a.clone(), and(vec![b.clone(), c.clone()])]),
            ),
            (
                "role:a and role:b or role:c",
                or(vec![and(vec![a.clone(), b.clone()]), c.clone()]),
            ),
            (
                "role:a and role:b or role:c and role:d",
                or(vec![
                    and(vec![a.clone(), b.clone()]),
                    and(vec![c.clone(), d.clone()]),
                ]),
            ),
            (
                "role:a or role:b and role:c and role:d",
                or(vec![a.clone(), and(vec![b.clone(), c.clone(), d.clone()])]),
            ),
            // not binds tightest
            (
                "not role:a and role:b",
                and(vec![not(a.clone()), b.clone()]),
            ),
            ("not role:a or role:b", or(vec![not(a.clone()), b.clone()])),
            (
                "role:a and not role:b",
                and(vec![a.clone(), not(b.clone())]),
            ),
            ("not not role:a", not(not(a.clone()))),
            ("not not not role:a", not(not(not(a.clone())))),
            (
                "not (role:a or role:b)",
                not(or(vec![a.clone(), b.clone()])),
            ),
            // parentheses override precedence and keep their grouping
            (
                "(role:a or role:b) and role:c",
                and(vec![or(vec![a.clone(), b.clone()]), c.clone()]),
            ),
            (
                "role:a and (role:b or role:c)",
                and(vec![a.clone(), or(vec![b.clone(), c.clone()])]),
            ),
            (
                "(role:a and role:b) and role:c",
                and(vec![and(vec![a.clone(), b.clone()]), c.clone()]),
            ),
            ("((((role:a))))", a.clone()),
            (
                "((role:a or (role:b and (not role:c))) or role:d)",
                or(vec![
                    or(vec![a.clone(), and(vec![b.clone(), not(c.clone())])]),
                    d.clone(),
                ]),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(ok(input), want, "{input:?}");
        }
    }

    #[test]
    fn keywords_are_case_insensitive() {
        let want = or(vec![and(vec![role("a"), not(role("b"))]), role("c")]);
        for input in [
            "role:a AND NOT role:b OR role:c",
            "role:a And Not role:b Or role:c",
            "role:a aNd nOt role:b oR role:c",
        ] {
            assert_eq!(ok(input), want, "{input:?}");
        }
    }

    #[test]
    fn whitespace_oddities() {
        let want = or(vec![role("a"), role("b")]);
        for input in [
            "role:a or role:b",
            "  role:a   or\trole:b  ",
            "\nrole:a\n\tor\r\nrole:b\n",
            "(role:a) or (role:b)",
            "( role:a ) or ( role:b )",
            "(role:a or role:b)",
            "((role:a) or (role:b))",
            "role:a\u{a0}or\u{2003}role:b",
        ] {
            assert_eq!(ok(input), want, "{input:?}");
        }
        // Words split only on whitespace, so oslo reads this as ONE role check whose
        // name is `a)or(role:b` inside two pairs of parentheses.
        assert_eq!(ok("((role:a)or(role:b))"), role("a)or(role:b"));
        // Manila's persona composition, exactly as base.py builds it.
        assert_eq!(
            ok("(rule:context_is_admin) or (rule:project-member)"),
            or(vec![rref("context_is_admin"), rref("project-member")])
        );
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let cases: &[(&str, &str)] = &[
            ("(", "unexpected end"),
            (")", "unexpected `)`"),
            ("()", "unexpected `)`"),
            ("(role:a", "unclosed `(`"),
            ("role:a)", "unbalanced `)`"),
            ("(role:a))", "unbalanced `)`"),
            ("((role:a)", "unclosed `(`"),
            ("role:", "nothing after the `:`"),
            ("rule:", "nothing after the `:`"),
            ("project_id:", "nothing after the `:`"),
            (":x", "nothing before the `:`"),
            (":", "nothing before the `:`"),
            ("and", "unexpected `and`"),
            ("or", "unexpected `or`"),
            ("not", "unexpected end"),
            ("role:a and", "unexpected end"),
            ("role:a or", "unexpected end"),
            ("and role:a", "unexpected `and`"),
            ("role:a and or role:b", "unexpected `or`"),
            ("role:a role:b", "unexpected check `role:b`"),
            ("role:a not role:b", "unexpected `not`"),
            ("(role:a) (role:b)", "unexpected `(`"),
            // oslo only peels parentheses off the ends of a word, so `not(role` is
            // taken as a generic check's key (and the final `)` has no partner).
            (
                "not(role:a)",
                "neither a literal nor a credential attribute",
            ),
            ("admin", "is not a check"),
            ("role:a and admin", "is not a check"),
            ("@@", "is not a check"),
            ("'quoted'", "is not a check"),
            ("\"quoted\"", "is not a check"),
            ("('quoted')", "is not a check"),
            ("'member:x", "not a well-formed quoted literal"),
            ("'a'b':x", "not a well-formed quoted literal"),
            ("!x:y", "neither a literal nor a credential attribute"),
            ("a%(b:x", "neither a literal nor a credential attribute"),
            ("not(role:x", "neither a literal nor a credential attribute"),
            ("role:%(x)d", "placeholder"),
            ("role:100%", "placeholder"),
            ("project_id:%(project_id", "placeholder"),
            ("project_id:%s", "placeholder"),
            ("http:http://example.test/check", "not supported"),
            ("https://x", "not supported"),
            (" ", "only whitespace"),
            ("\t\n", "only whitespace"),
        ];
        for (input, want) in cases {
            let reason = reason(input);
            assert!(
                reason.contains(want),
                "{input:?}: reason {reason:?} should mention {want:?}"
            );
        }
    }

    #[test]
    fn error_names_the_position() {
        let why = reason("role:a and and role:b");
        assert!(why.contains("byte 11"), "{why}");
        let why = reason("role:a and (role:b or nope)");
        assert!(why.contains("`nope` at byte 22"), "{why}");
    }

    #[test]
    fn nesting_limit_is_an_error_not_a_stack_overflow() {
        let just_ok = format!(
            "{}role:a{}",
            "(".repeat(MAX_NESTING),
            ")".repeat(MAX_NESTING)
        );
        assert_eq!(ok(&just_ok), role("a"));
        let too_deep = format!(
            "{}role:a{}",
            "(".repeat(MAX_NESTING + 1),
            ")".repeat(MAX_NESTING + 1)
        );
        assert!(reason(&too_deep).contains("nested more than"));
        let huge = format!("{}role:a{}", "( ".repeat(100_000), " )".repeat(100_000));
        assert!(parse(&huge).is_err());
        let nots = format!("{}role:a", "not ".repeat(100_000));
        assert!(parse(&nots).is_err());
        let mixed = "not (".repeat(50_000);
        assert!(parse(&mixed).is_err());
    }

    #[test]
    fn display_round_trips_examples() {
        for input in [
            "",
            "@",
            "!",
            "role:a or role:b and role:c",
            "not (role:a or role:b) and not not rule:x",
            "(rule:context_is_admin) or (rule:project-member)",
            "is_admin:True or project_id:%(project_id)s and user_id:%(user_id)s",
            "'member':%(role.name)s and user_id:'u'",
            "((role:a and role:b) and role:c) or (role:d or role:e)",
        ] {
            let first = ok(input);
            let printed = first.to_string();
            assert_eq!(ok(&printed), first, "{input:?} printed as {printed:?}");
        }
        assert_eq!(
            ok("role:a or role:b and role:c").to_string(),
            "(role:a or (role:b and role:c))"
        );
    }

    /// Words and separators of the policy language, valid and not, for building inputs
    /// that exercise the parser much harder than random characters do.
    fn grammar_word() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("(".to_owned()),
            Just(")".to_owned()),
            Just("and".to_owned()),
            Just("OR".to_owned()),
            Just("or".to_owned()),
            Just("not".to_owned()),
            Just("Not".to_owned()),
            Just("@".to_owned()),
            Just("!".to_owned()),
            Just("role:admin".to_owned()),
            Just("role:member".to_owned()),
            Just("role:%(r)s".to_owned()),
            Just("rule:a".to_owned()),
            Just("rule:b".to_owned()),
            Just("project_id:%(project_id)s".to_owned()),
            Just("is_admin:True".to_owned()),
            Just("'member':%(role.name)s".to_owned()),
            Just("user_id:'x'".to_owned()),
            Just("role:".to_owned()),
            Just(":".to_owned()),
            Just("'q'".to_owned()),
            Just("%(".to_owned()),
            Just("bare".to_owned()),
            "[a-z_]{1,6}:[a-z%()_']{1,8}",
        ]
    }

    fn grammar_sentence() -> impl Strategy<Value = String> {
        let sep = prop_oneof![Just(" "), Just(""), Just("  "), Just("\t"), Just("\n"),];
        proptest::collection::vec((grammar_word(), sep), 0..24).prop_map(|parts| {
            parts
                .into_iter()
                .map(|(word, sep)| format!("{word}{sep}"))
                .collect()
        })
    }

    /// Well-formed rule trees: leaves that parse, groups of at least two operands.
    pub(crate) fn arb_rule() -> impl Strategy<Value = Rule> {
        let name = "[a-z][a-z0-9_:-]{0,10}";
        // Generic keys, minus the kinds that parse as something else.
        let key = || {
            "[a-z_]{1,10}".prop_filter("reserved check kind", |k| {
                !matches!(k.as_str(), "role" | "rule" | "http" | "https")
            })
        };
        let leaf = prop_oneof![
            Just(Rule::Always),
            Just(Rule::Never),
            name.prop_map(Rule::Role),
            "%\\([a-z_.]{1,8}\\)s".prop_map(Rule::Role),
            name.prop_map(Rule::Rule),
            (key(), "[A-Za-z0-9_-]{1,8}").prop_map(|(key, match_)| Rule::Generic { key, match_ }),
            (key(), "[a-z_.]{1,8}").prop_map(|(key, name)| Rule::Generic {
                key,
                match_: format!("%({name})s"),
            }),
            ("'[a-z]{0,6}'", "[a-z_]{1,8}").prop_map(|(key, name)| Rule::Generic {
                key,
                match_: format!("%({name})s"),
            }),
        ];
        leaf.prop_recursive(6, 48, 4, |inner| {
            prop_oneof![
                inner.clone().prop_map(|r| Rule::Not(Box::new(r))),
                proptest::collection::vec(inner.clone(), 2..4).prop_map(Rule::And),
                proptest::collection::vec(inner, 2..4).prop_map(Rule::Or),
            ]
        })
    }

    /// One level of nesting: `not` or a parenthesis.
    #[derive(Debug, Clone, Copy)]
    enum Nest {
        Not,
        Paren,
    }

    /// `role:a` inside these levels, outermost first, spelled with or without spaces.
    fn nested_rule(levels: &[Nest], spaced: bool) -> String {
        let mut out = String::new();
        for level in levels {
            out.push_str(match (level, spaced) {
                (Nest::Not, _) => "not ",
                (Nest::Paren, true) => "( ",
                (Nest::Paren, false) => "(",
            });
        }
        out.push_str("role:a");
        for level in levels.iter().rev() {
            if let Nest::Paren = level {
                out.push_str(if spaced { " )" } else { ")" });
            }
        }
        out
    }

    fn nest() -> impl Strategy<Value = Nest> {
        prop_oneof![Just(Nest::Not), Just(Nest::Paren)]
    }

    proptest! {
        // A fixed count keeps each property well under a second in a debug build.
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn parse_never_panics_on_arbitrary_strings(input in any::<String>()) {
            let _ = parse(&input);
        }

        #[test]
        fn parse_never_panics_on_long_sentences(
            words in proptest::collection::vec((grammar_word(), any::<bool>()), 0..600),
        ) {
            let input: String = words
                .into_iter()
                .map(|(word, space)| if space { format!("{word} ") } else { word })
                .collect();
            if let Ok(rule) = parse(&input) {
                prop_assert_eq!(parse(&rule.to_string()).ok(), Some(rule));
            }
        }

        #[test]
        fn nesting_up_to_the_limit_parses_and_beyond_it_is_refused(
            levels in proptest::collection::vec(nest(), 0..=MAX_NESTING + 24),
            spaced in any::<bool>(),
        ) {
            let input = nested_rule(&levels, spaced);
            match parse(&input) {
                Ok(rule) => {
                    prop_assert!(levels.len() <= MAX_NESTING, "{} levels accepted", levels.len());
                    // The printed form of a deep rule parses back to the same tree.
                    prop_assert_eq!(parse(&rule.to_string()).ok(), Some(rule));
                }
                Err(err) => {
                    prop_assert!(levels.len() > MAX_NESTING, "{} levels: {err}", levels.len());
                    prop_assert!(err.to_string().contains("nested more than"), "{err}");
                }
            }
        }

        #[test]
        fn very_deep_nesting_is_an_error_not_a_stack_overflow(
            depth in MAX_NESTING + 1..40_000usize,
            pattern in proptest::collection::vec(nest(), 1..8),
            spaced in any::<bool>(),
        ) {
            let levels: Vec<Nest> = pattern.iter().copied().cycle().take(depth).collect();
            let input = nested_rule(&levels, spaced);
            prop_assert!(parse(&input).is_err());
            // Unclosed, too: the parser gives up at the limit, not at the end.
            let unclosed = "( not ".repeat(depth / 2);
            prop_assert!(parse(&unclosed).is_err());
        }

        #[test]
        fn parse_never_panics_on_policy_like_strings(input in "[ ()a-z:%'\"@!\t.A-Z]{0,64}") {
            let _ = parse(&input);
        }

        #[test]
        fn grammar_sentences_parse_or_error_and_round_trip(input in grammar_sentence()) {
            if let Ok(rule) = parse(&input) {
                let printed = rule.to_string();
                let reparsed = parse(&printed);
                prop_assert!(reparsed.is_ok(), "{input:?} -> {printed:?}: {reparsed:?}");
                prop_assert_eq!(reparsed.ok(), Some(rule.clone()));
                // and printing is a fixed point
                prop_assert_eq!(parse(&printed).map(|r| r.to_string()).ok(), Some(printed));
            }
        }

        #[test]
        fn printed_trees_parse_back_identically(rule in arb_rule()) {
            let printed = rule.to_string();
            let reparsed = parse(&printed);
            prop_assert!(reparsed.is_ok(), "{printed:?}: {reparsed:?}");
            prop_assert_eq!(reparsed.ok(), Some(rule));
        }
    }
}
