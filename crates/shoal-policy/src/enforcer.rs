//! The [`Enforcer`]: the table of named rules (Manila's defaults plus operator overrides)
//! and the entry points the API layer calls to authorize a request.
//!
//! Override documents use Manila's `policy.yaml` format, a flat map of rule name to check
//! string, in YAML or JSON. Loading is all-or-nothing: if any rule in a document is
//! invalid, nothing from it is applied and every bad rule is reported.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use crate::defaults::MANILA_DEFAULTS;
use crate::error::{PolicyError, RuleError};
use crate::eval::evaluate;
use crate::parser::parse;
use crate::rule::Rule;
use crate::{Credentials, Target};

/// A set of named policy rules and the means to evaluate them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Enforcer {
    /// Sorted so listings and diagnostics are deterministic.
    rules: BTreeMap<String, Rule>,
}

/// A problem in an otherwise loadable rule set, found by [`Enforcer::validate`]. These do
/// not stop evaluation (both deny), but almost always mean a typo in an override file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyIssue {
    /// `rule` contains `rule:{missing}` and no rule of that name exists, so that check is
    /// always false.
    UnknownReference {
        /// The rule containing the reference.
        rule: String,
        /// The name it refers to.
        missing: String,
    },
    /// These rules refer to each other in a loop (`rules[0]` → `rules[1]` → … →
    /// `rules[0]`); evaluating any path that reaches the loop denies.
    Cycle {
        /// The rules on the loop, in reference order.
        rules: Vec<String>,
    },
}

impl std::fmt::Display for PolicyIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PolicyIssue::UnknownReference { rule, missing } => {
                write!(f, "rule {rule:?} refers to undefined rule {missing:?}")
            }
            PolicyIssue::Cycle { rules } => {
                write!(f, "rules refer to each other in a cycle: ")?;
                for name in rules {
                    write!(f, "{name} -> ")?;
                }
                match rules.first() {
                    Some(first) => write!(f, "{first}"),
                    None => Ok(()),
                }
            }
        }
    }
}

impl Enforcer {
    /// An enforcer with no rules: every [`Enforcer::enforce`] is false.
    pub fn new() -> Self {
        Self::default()
    }

    /// An enforcer holding every Manila default rule of [`crate::defaults`].
    pub fn with_manila_defaults() -> Self {
        let rules = MANILA_DEFAULTS
            .iter()
            .flat_map(|group| group.rules)
            .map(|default| {
                let rule = parse(default.check_str)
                    .expect("shipped Manila default rules parse (checked by tests)");
                (default.name.to_owned(), rule)
            })
            .collect();
        Self { rules }
    }

    /// Adds or replaces one rule from its check string.
    pub fn set_rule(&mut self, name: &str, check_str: &str) -> Result<(), PolicyError> {
        let rule = parse(check_str)?;
        self.rules.insert(name.to_owned(), rule);
        Ok(())
    }

    /// Removes a rule, returning it. Checks referring to it become false.
    pub fn remove_rule(&mut self, name: &str) -> Option<Rule> {
        self.rules.remove(name)
    }

    /// Applies an override file. `.json` files are read as JSON, `.yaml`/`.yml` as YAML,
    /// anything else by content (see [`Enforcer::load_overrides_str`]).
    pub fn load_overrides_file(&mut self, path: &Path) -> Result<(), PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Io {
            path: path.to_owned(),
            source,
        })?;
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        let entries = match extension.as_deref() {
            Some("json") => parse_json(&text)?,
            Some("yaml" | "yml") => parse_yaml(&text)?,
            _ => parse_document(&text)?,
        };
        self.apply(entries)
    }

    /// Applies an override document: a map of rule name to check string, in YAML or JSON
    /// (tried as JSON first when it looks like a JSON object, else YAML). Named rules
    /// replace defaults, new names are added, an empty or null value means "always
    /// allow" (as in oslo). All-or-nothing: any invalid rule fails the whole document
    /// with [`PolicyError::InvalidRules`] listing each one.
    pub fn load_overrides_str(&mut self, text: &str) -> Result<(), PolicyError> {
        let entries = parse_document(text)?;
        self.apply(entries)
    }

    fn apply(&mut self, entries: Vec<(String, Result<String, String>)>) -> Result<(), PolicyError> {
        let mut parsed = Vec::with_capacity(entries.len());
        let mut errors = Vec::new();
        for (name, value) in entries {
            let result = value
                .map_err(PolicyError::Format)
                .and_then(|check_str| parse(&check_str));
            match result {
                Ok(rule) => parsed.push((name, rule)),
                Err(error) => errors.push(RuleError { name, error }),
            }
        }
        if !errors.is_empty() {
            return Err(PolicyError::InvalidRules { errors });
        }
        self.rules.extend(parsed);
        Ok(())
    }

    /// Whether `creds` may perform `rule_name` on `target`. Unknown rule names, cycles and
    /// anything else that cannot be evaluated are false.
    pub fn enforce(&self, rule_name: &str, target: &Target, creds: &Credentials) -> bool {
        match self.rules.get_key_value(rule_name) {
            Some((name, rule)) => evaluate(&self.rules, Some(name), rule, target, creds),
            None => false,
        }
    }

    /// Like [`Enforcer::enforce`], but an unregistered rule name is an error
    /// ([`PolicyError::UnknownRule`]), as Manila's `policy.authorize` raises
    /// `PolicyNotRegistered`, so API code cannot silently check a misspelt rule.
    pub fn authorize(
        &self,
        rule_name: &str,
        target: &Target,
        creds: &Credentials,
    ) -> Result<bool, PolicyError> {
        if !self.rules.contains_key(rule_name) {
            return Err(PolicyError::UnknownRule(rule_name.to_owned()));
        }
        Ok(self.enforce(rule_name, target, creds))
    }

    /// Evaluates an ad-hoc rule against this enforcer's named rules (for its `rule:`
    /// checks).
    pub fn check(&self, rule: &Rule, target: &Target, creds: &Credentials) -> bool {
        evaluate(&self.rules, None, rule, target, creds)
    }

    /// Manila's `policy.check_is_admin`: `context_is_admin` evaluated with the caller's own
    /// project and user as the target. The API layer uses this to set
    /// [`Credentials::is_admin`].
    pub fn is_admin(&self, creds: &Credentials) -> bool {
        self.enforce("context_is_admin", &creds.default_target(), creds)
    }

    /// The parsed rule registered under `name`.
    pub fn rule(&self, name: &str) -> Option<&Rule> {
        self.rules.get(name)
    }

    /// Every registered rule name, sorted.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.keys().map(String::as_str)
    }

    /// Number of registered rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether no rules are registered.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Finds references to undefined rules and reference cycles, for `shoal config check`.
    /// Sorted: unknown references by rule name first, then each cycle once.
    pub fn validate(&self) -> Vec<PolicyIssue> {
        let mut issues = Vec::new();
        for (name, rule) in &self.rules {
            let mut seen = HashSet::new();
            for missing in rule.references() {
                if !self.rules.contains_key(missing) && seen.insert(missing) {
                    issues.push(PolicyIssue::UnknownReference {
                        rule: name.clone(),
                        missing: missing.to_owned(),
                    });
                }
            }
        }
        issues.extend(
            self.cycles()
                .into_iter()
                .map(|rules| PolicyIssue::Cycle { rules }),
        );
        issues
    }

    /// The reference cycles a depth-first search meets (at least one for every group of
    /// rules that loop), each reported once, starting from its smallest name. Iterative,
    /// so a long chain in an override file cannot overflow the stack.
    fn cycles(&self) -> Vec<Vec<String>> {
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum State {
            Unvisited,
            OnPath,
            Done,
        }
        let names: Vec<&str> = self.rules.keys().map(String::as_str).collect();
        let index: HashMap<&str, usize> = names.iter().enumerate().map(|(i, n)| (*n, i)).collect();
        let edges: Vec<Vec<usize>> = self
            .rules
            .values()
            .map(|rule| {
                let mut out: Vec<usize> = rule
                    .references()
                    .into_iter()
                    .filter_map(|r| index.get(r).copied())
                    .collect();
                out.sort_unstable();
                out.dedup();
                out
            })
            .collect();

        let mut state = vec![State::Unvisited; names.len()];
        let mut found: Vec<Vec<String>> = Vec::new();
        for start in 0..names.len() {
            if state[start] != State::Unvisited {
                continue;
            }
            // (node, next edge to try); `path` mirrors the nodes on the stack.
            let mut stack: Vec<(usize, usize)> = vec![(start, 0)];
            let mut path: Vec<usize> = vec![start];
            state[start] = State::OnPath;
            while let Some(top) = stack.last_mut() {
                let node = top.0;
                if let Some(&child) = edges[node].get(top.1) {
                    top.1 += 1;
                    match state[child] {
                        State::Unvisited => {
                            state[child] = State::OnPath;
                            stack.push((child, 0));
                            path.push(child);
                        }
                        State::OnPath => {
                            let from = path.iter().position(|n| *n == child).unwrap_or(0);
                            found.push(rotate_to_min(&path[from..], &names));
                        }
                        State::Done => {}
                    }
                } else {
                    state[node] = State::Done;
                    stack.pop();
                    path.pop();
                }
            }
        }
        found.sort();
        found.dedup();
        found
    }
}

/// The cycle's names, rotated so the smallest comes first (a canonical form for dedup).
fn rotate_to_min(cycle: &[usize], names: &[&str]) -> Vec<String> {
    let min_at = cycle
        .iter()
        .enumerate()
        .min_by_key(|(_, n)| names[**n])
        .map_or(0, |(i, _)| i);
    cycle[min_at..]
        .iter()
        .chain(&cycle[..min_at])
        .map(|n| names[*n].to_owned())
        .collect()
}

/// One document entry: the rule name and its check string, or why the value is unusable.
type Entry = (String, Result<String, String>);

fn parse_document(text: &str) -> Result<Vec<Entry>, PolicyError> {
    if text.trim_start().starts_with('{') {
        // JSON is (nearly) YAML, but a YAML parser chokes on some valid JSON (tabs), and a
        // YAML flow map is not JSON; so try JSON and fall back.
        match parse_json(text) {
            Ok(entries) => Ok(entries),
            Err(json_err) => parse_yaml(text).map_err(|yaml_err| {
                PolicyError::Format(format!("neither JSON ({json_err}) nor YAML ({yaml_err})"))
            }),
        }
    } else {
        parse_yaml(text)
    }
}

fn parse_json(text: &str) -> Result<Vec<Entry>, PolicyError> {
    use serde_json::Value;
    let doc: Value = serde_json::from_str(text)
        .map_err(|e| PolicyError::Format(format!("not valid JSON: {e}")))?;
    let map = match doc {
        Value::Object(map) => map,
        Value::Null => return Ok(Vec::new()),
        other => return Err(not_a_map(json_kind(&other))),
    };
    Ok(map
        .into_iter()
        .map(|(name, value)| {
            let check = match value {
                Value::String(s) => Ok(s),
                Value::Null => Ok(String::new()),
                other => Err(not_a_string(json_kind(&other))),
            };
            (name, check)
        })
        .collect())
}

fn parse_yaml(text: &str) -> Result<Vec<Entry>, PolicyError> {
    use serde_yaml::Value;
    let doc: Value = serde_yaml::from_str(text)
        .map_err(|e| PolicyError::Format(format!("not valid YAML: {e}")))?;
    let map = match doc {
        Value::Mapping(map) => map,
        Value::Null => return Ok(Vec::new()),
        other => return Err(not_a_map(yaml_kind(&other))),
    };
    map.into_iter()
        .map(|(key, value)| {
            let Value::String(name) = key else {
                return Err(PolicyError::Format(format!(
                    "rule names must be strings, found {}",
                    yaml_kind(&key)
                )));
            };
            let check = match value {
                Value::String(s) => Ok(s),
                Value::Null => Ok(String::new()),
                other => Err(not_a_string(yaml_kind(&other))),
            };
            Ok((name, check))
        })
        .collect()
}

fn not_a_map(found: &str) -> PolicyError {
    PolicyError::Format(format!(
        "expected a map of rule name to check string, found {found}"
    ))
}

fn not_a_string(found: &str) -> String {
    // The legacy list-of-lists rule syntax lands here too; it has been obsolete since
    // before Manila adopted policy-in-code, so it is reported rather than supported.
    format!("a rule's value must be a check string, found {found}")
}

fn json_kind(value: &serde_json::Value) -> &'static str {
    use serde_json::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a map",
    }
}

fn yaml_kind(value: &serde_yaml::Value) -> &'static str {
    use serde_yaml::Value;
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::defaults;
    use proptest::prelude::*;
    use std::io::Write;

    fn creds(user: &str, project: &str, roles: &[&str]) -> Credentials {
        Credentials {
            user_id: user.into(),
            project_id: project.into(),
            roles: roles.iter().map(|r| (*r).to_owned()).collect(),
            is_admin: false,
        }
    }

    fn project(id: &str) -> Target {
        Target::from([("project_id".to_owned(), id.to_owned())])
    }

    fn check_str(enforcer: &Enforcer, name: &str) -> Option<String> {
        enforcer.rule(name).map(ToString::to_string)
    }

    #[test]
    fn defaults_are_all_registered() {
        let enforcer = Enforcer::with_manila_defaults();
        assert_eq!(enforcer.len(), defaults::all().count());
        assert!(!enforcer.is_empty());
        for default in defaults::all() {
            let rule = enforcer.rule(default.name);
            assert_eq!(
                rule,
                parse(default.check_str).ok().as_ref(),
                "{}",
                default.name
            );
        }
        let names: Vec<&str> = enforcer.rule_names().collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "rule_names is sorted");
    }

    #[test]
    fn empty_enforcer_denies_everything() {
        let enforcer = Enforcer::new();
        assert!(enforcer.is_empty());
        let admin = creds("u", "p", &["admin"]);
        assert!(!enforcer.enforce("share:create", &project("p"), &admin));
        assert!(!enforcer.is_admin(&admin));
    }

    #[test]
    fn is_admin_evaluates_context_is_admin() {
        let mut enforcer = Enforcer::with_manila_defaults();
        assert!(enforcer.is_admin(&creds("u", "p", &["admin"])));
        assert!(enforcer.is_admin(&creds("u", "p", &["Admin"])));
        assert!(!enforcer.is_admin(&creds("u", "p", &["member", "reader"])));
        // Operators may tie admin to a project; the default target is the caller's own.
        enforcer
            .set_rule(
                "context_is_admin",
                "role:admin and project_id:admin-project",
            )
            .expect("valid rule");
        assert!(enforcer.is_admin(&creds("u", "admin-project", &["admin"])));
        assert!(!enforcer.is_admin(&creds("u", "other", &["admin"])));
    }

    #[test]
    fn authorize_rejects_unregistered_rules() {
        let enforcer = Enforcer::with_manila_defaults();
        let member = creds("u", "p", &["member"]);
        assert!(matches!(
            enforcer.authorize("share:create", &project("p"), &member),
            Ok(true)
        ));
        assert!(matches!(
            enforcer.authorize("share:force_delete", &project("p"), &member),
            Ok(false)
        ));
        match enforcer.authorize("share:crate", &project("p"), &member) {
            Err(PolicyError::UnknownRule(name)) => assert_eq!(name, "share:crate"),
            other => panic!("expected UnknownRule, got {other:?}"),
        }
        assert!(!enforcer.enforce("share:crate", &project("p"), &member));
    }

    #[test]
    fn check_uses_named_rules() {
        let enforcer = Enforcer::with_manila_defaults();
        let rule = parse("rule:project-member and not role:admin").expect("valid");
        assert!(enforcer.check(&rule, &project("p"), &creds("u", "p", &["member"])));
        assert!(!enforcer.check(&rule, &project("p"), &creds("u", "p", &["member", "admin"])));
        assert!(!enforcer.check(&rule, &project("q"), &creds("u", "p", &["member"])));
    }

    const YAML_OVERRIDES: &str = r#"
# Operators' policy.yaml, as oslopolicy-sample-generator writes it.
"share:create": "role:admin"
share:get: "rule:context_is_admin or rule:project-member"
# new names are added
"custom:thing": "role:custom"
"share:get_all": ""
"share:delete":
'share:extend': '@'
"share:shrink": "!"
"#;

    #[test]
    fn yaml_overrides_replace_and_add() {
        let mut enforcer = Enforcer::with_manila_defaults();
        let before = enforcer.len();
        enforcer
            .load_overrides_str(YAML_OVERRIDES)
            .expect("valid overrides");
        assert_eq!(enforcer.len(), before + 1, "one new rule");
        assert_eq!(
            check_str(&enforcer, "share:create").as_deref(),
            Some("role:admin")
        );
        assert_eq!(
            check_str(&enforcer, "share:get").as_deref(),
            Some("(rule:context_is_admin or rule:project-member)")
        );
        assert_eq!(
            check_str(&enforcer, "custom:thing").as_deref(),
            Some("role:custom")
        );
        // empty and null values mean "always"
        assert_eq!(enforcer.rule("share:get_all"), Some(&Rule::Always));
        assert_eq!(enforcer.rule("share:delete"), Some(&Rule::Always));
        assert_eq!(enforcer.rule("share:extend"), Some(&Rule::Always));
        assert_eq!(enforcer.rule("share:shrink"), Some(&Rule::Never));
        // untouched defaults stay
        assert_eq!(
            check_str(&enforcer, "share:update").as_deref(),
            Some("(rule:context_is_admin or rule:project-member)")
        );

        let member = creds("u", "p", &["member", "reader"]);
        let stranger = creds("s", "elsewhere", &[]);
        assert!(!enforcer.enforce("share:create", &project("p"), &member));
        assert!(enforcer.enforce("share:get", &project("p"), &member));
        assert!(enforcer.enforce("share:get_all", &project("p"), &stranger));
        assert!(enforcer.enforce("share:delete", &project("p"), &stranger));
        assert!(!enforcer.enforce("share:shrink", &project("p"), &creds("a", "p", &["admin"])));
        assert!(enforcer.enforce("custom:thing", &project("p"), &creds("u", "p", &["CUSTOM"])));
    }

    #[test]
    fn json_overrides() {
        let mut enforcer = Enforcer::with_manila_defaults();
        let json = "{\n\t\"share:create\": \"role:admin\",\n\t\"context_is_admin\": \"role:cloud-admin\",\n\t\"share:get\": null,\n\t\"new\": \"\"\n}\n";
        enforcer
            .load_overrides_str(json)
            .expect("valid JSON overrides");
        assert_eq!(
            check_str(&enforcer, "share:create").as_deref(),
            Some("role:admin")
        );
        assert_eq!(enforcer.rule("share:get"), Some(&Rule::Always));
        assert_eq!(enforcer.rule("new"), Some(&Rule::Always));
        // Overriding a persona re-targets every rule built on it.
        let old_admin = creds("a", "x", &["admin"]);
        let new_admin = creds("a", "x", &["cloud-admin"]);
        assert!(!enforcer.is_admin(&old_admin));
        assert!(enforcer.is_admin(&new_admin));
        for name in [
            "share:force_delete",
            "share_replica:resync",
            "service:index",
        ] {
            assert!(!enforcer.enforce(name, &project("p"), &old_admin), "{name}");
            assert!(enforcer.enforce(name, &project("p"), &new_admin), "{name}");
        }
    }

    #[test]
    fn yaml_flow_map_and_empty_documents() {
        let mut enforcer = Enforcer::new();
        enforcer
            .load_overrides_str("{a: 'role:x', b: rule:a}")
            .expect("YAML flow map");
        assert_eq!(enforcer.rule("b"), Some(&Rule::Rule("a".into())));
        for empty in ["", "   \n", "# only a comment\n", "~", "null", "{}"] {
            let mut e = Enforcer::with_manila_defaults();
            e.load_overrides_str(empty)
                .unwrap_or_else(|err| panic!("{empty:?}: {err}"));
            assert_eq!(e, Enforcer::with_manila_defaults(), "{empty:?}");
        }
    }

    #[test]
    fn invalid_rules_are_all_reported_and_nothing_is_applied() {
        let mut enforcer = Enforcer::with_manila_defaults();
        let pristine = enforcer.clone();
        let doc = r#"
"share:create": "role:admin"
"share:get": "role:admin and"
"share:delete": "(rule:x"
"share:update": 42
"share:extend": ["role:admin"]
"share:shrink": "role:"
"#;
        let err = enforcer.load_overrides_str(doc).expect_err("invalid rules");
        let names: Vec<&str> = err.rule_errors().iter().map(|e| e.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "share:get",
                "share:delete",
                "share:update",
                "share:extend",
                "share:shrink"
            ]
        );
        let kinds: Vec<bool> = err
            .rule_errors()
            .iter()
            .map(|e| matches!(e.error, PolicyError::Parse { .. }))
            .collect();
        assert_eq!(kinds, [true, true, false, false, true]);
        assert_eq!(enforcer, pristine, "all-or-nothing");
        let text = err.to_string();
        assert!(text.contains("5 invalid policy rule(s)"), "{text}");
        assert!(text.contains("found a number"), "{text}");
        assert!(text.contains("found a list"), "{text}");
    }

    #[test]
    fn malformed_documents() {
        let cases: &[(&str, &str)] = &[
            ("- a\n- b\n", "found a list"),
            ("just text", "found a string"),
            ("[\"a\"]", "found a list"),
            ("{\"a\": \"role:x\"", "neither JSON"),
            ("a: [unclosed\n", "not valid YAML"),
            ("1: role:x\n", "rule names must be strings"),
            ("a: x\na: y\n", "not valid YAML"),
        ];
        for (doc, want) in cases {
            let mut enforcer = Enforcer::new();
            match enforcer.load_overrides_str(doc) {
                Err(PolicyError::Format(message)) => {
                    assert!(message.contains(want), "{doc:?}: {message}");
                }
                other => panic!("{doc:?}: expected a format error, got {other:?}"),
            }
            assert!(enforcer.is_empty(), "{doc:?}");
        }
    }

    #[test]
    fn override_files_on_disk() {
        let dir = tempfile::tempdir().expect("temp dir");
        let write = |name: &str, text: &str| {
            let path = dir.path().join(name);
            let mut file = std::fs::File::create(&path).expect("create");
            file.write_all(text.as_bytes()).expect("write");
            path
        };

        let yaml = write("policy.yaml", YAML_OVERRIDES);
        let mut enforcer = Enforcer::with_manila_defaults();
        enforcer.load_overrides_file(&yaml).expect("yaml file");
        assert_eq!(
            check_str(&enforcer, "share:create").as_deref(),
            Some("role:admin")
        );

        let json = write("policy.JSON", "{\"share:create\": \"rule:project-member\"}");
        enforcer.load_overrides_file(&json).expect("json file");
        assert_eq!(
            check_str(&enforcer, "share:create").as_deref(),
            Some("rule:project-member")
        );

        // No extension: sniffed from the content.
        let sniffed = write("policy", "share:create: '!'\n");
        enforcer
            .load_overrides_file(&sniffed)
            .expect("sniffed file");
        assert_eq!(enforcer.rule("share:create"), Some(&Rule::Never));

        // A .json file must be JSON, even though this is valid YAML.
        let yaml_in_json = write("bad.json", "share:create: '@'\n");
        assert!(matches!(
            enforcer.load_overrides_file(&yaml_in_json),
            Err(PolicyError::Format(_))
        ));

        let invalid = write("invalid.yml", "share:create: 'role:a or'\n");
        let err = enforcer
            .load_overrides_file(&invalid)
            .expect_err("invalid rule");
        assert_eq!(err.rule_errors().len(), 1);
        assert_eq!(
            enforcer.rule("share:create"),
            Some(&Rule::Never),
            "unchanged"
        );

        let missing = dir.path().join("missing.yaml");
        match enforcer.load_overrides_file(&missing) {
            Err(PolicyError::Io { path, source }) => {
                assert_eq!(path, missing);
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
            }
            other => panic!("expected an IO error, got {other:?}"),
        }
    }

    #[test]
    fn set_and_remove_rules() {
        let mut enforcer = Enforcer::with_manila_defaults();
        assert!(matches!(
            enforcer.set_rule("x", "role:a and"),
            Err(PolicyError::Parse { .. })
        ));
        assert!(enforcer.rule("x").is_none());
        enforcer.set_rule("x", "").expect("empty is always");
        assert_eq!(enforcer.rule("x"), Some(&Rule::Always));
        let member = creds("u", "p", &["member"]);
        assert!(enforcer.enforce("share:create", &project("p"), &member));
        assert!(enforcer.remove_rule("project-member").is_some());
        assert!(!enforcer.enforce("share:create", &project("p"), &member));
        assert!(enforcer.remove_rule("project-member").is_none());
    }

    #[test]
    fn cycles_from_overrides_deny() {
        let mut enforcer = Enforcer::with_manila_defaults();
        enforcer
            .load_overrides_str("context_is_admin: 'rule:admin_api or rule:context_is_admin'\nadmin_api: 'not rule:context_is_admin'\n")
            .expect("cycles parse fine");
        let admin = creds("a", "p", &["admin"]);
        assert!(!enforcer.is_admin(&admin));
        assert!(!enforcer.enforce("share:force_delete", &project("p"), &admin));
        // Rules that never reach the cycle are unaffected.
        let member = creds("u", "p", &["member"]);
        assert!(
            !enforcer.enforce("share:create", &project("p"), &member),
            "admin branch aborts first"
        );
        assert!(enforcer.enforce("project-member", &project("p"), &member));
    }

    #[test]
    fn validate_reports_dangling_references_and_cycles() {
        let mut enforcer = Enforcer::new();
        enforcer
            .load_overrides_str(
                "a: rule:b\nb: rule:c or rule:missing or rule:missing\nc: rule:a\n\
                 self: not rule:self\nok: rule:a\nx: rule:y and rule:nowhere\ny: rule:x\n",
            )
            .expect("parses");
        let issues = enforcer.validate();
        assert_eq!(
            issues,
            vec![
                PolicyIssue::UnknownReference {
                    rule: "b".into(),
                    missing: "missing".into()
                },
                PolicyIssue::UnknownReference {
                    rule: "x".into(),
                    missing: "nowhere".into()
                },
                PolicyIssue::Cycle {
                    rules: vec!["a".into(), "b".into(), "c".into()]
                },
                PolicyIssue::Cycle {
                    rules: vec!["self".into()]
                },
                PolicyIssue::Cycle {
                    rules: vec!["x".into(), "y".into()]
                },
            ]
        );
        assert_eq!(
            issues[2].to_string(),
            "rules refer to each other in a cycle: a -> b -> c -> a"
        );
        assert_eq!(
            issues[0].to_string(),
            "rule \"b\" refers to undefined rule \"missing\""
        );
    }

    #[test]
    fn validate_copes_with_long_chains() {
        let mut enforcer = Enforcer::new();
        let doc: String = (0..20_000)
            .map(|i| format!("r{i}: rule:r{}\n", i + 1))
            .collect();
        enforcer.load_overrides_str(&doc).expect("parses");
        let issues = enforcer.validate();
        assert_eq!(
            issues,
            vec![PolicyIssue::UnknownReference {
                rule: "r19999".into(),
                missing: "r20000".into()
            }]
        );
        assert!(!enforcer.enforce("r0", &Target::new(), &Credentials::default()));
    }

    fn arb_check_str() -> impl Strategy<Value = String> {
        let word = prop_oneof![
            Just("rule:r0"),
            Just("rule:r1"),
            Just("rule:r2"),
            Just("rule:r3"),
            Just("rule:nope"),
            Just("role:admin"),
            Just("role:%(role)s"),
            Just("project_id:%(project_id)s"),
            Just("user_id:%(user_id)s"),
            Just("is_admin:True"),
            Just("'x':%(x)s"),
            Just("@"),
            Just("!"),
            Just("and"),
            Just("or"),
            Just("not"),
            Just("("),
            Just(")"),
        ];
        proptest::collection::vec(word, 0..12).prop_map(|words| words.join(" "))
    }

    fn arb_map(keys: &'static [&'static str]) -> impl Strategy<Value = Target> {
        proptest::collection::hash_map(
            proptest::sample::select(keys).prop_map(str::to_owned),
            prop_oneof![Just("p".to_owned()), Just("admin".to_owned()), ".{0,4}"],
            0..4,
        )
    }

    proptest! {
        #[test]
        fn enforce_never_panics(
            bodies in proptest::collection::vec(arb_check_str(), 4),
            target in arb_map(&["project_id", "user_id", "role", "x"]),
            roles in proptest::collection::vec(prop_oneof![Just("admin".to_owned()), ".{0,4}"], 0..3),
            project in prop_oneof![Just("p".to_owned()), ".{0,3}"],
            is_admin in any::<bool>(),
            entry in 0usize..5,
        ) {
            let mut enforcer = Enforcer::new();
            for (i, body) in bodies.iter().enumerate() {
                // Unparsable bodies are simply not registered.
                let _ = enforcer.set_rule(&format!("r{i}"), body);
            }
            let creds = Credentials { user_id: "u".into(), project_id: project, roles, is_admin };
            let name = format!("r{entry}");
            let allowed = enforcer.enforce(&name, &target, &creds);
            // Determinism, and consistency with the ad-hoc entry point.
            prop_assert_eq!(allowed, enforcer.enforce(&name, &target, &creds));
            if enforcer.rule(&name).is_none() {
                prop_assert!(!allowed);
            }
            let _ = enforcer.validate();
            let _ = enforcer.is_admin(&creds);
        }

        #[test]
        fn defaults_never_panic(
            index in 0usize..219,
            target in arb_map(&["project_id", "user_id"]),
            roles in proptest::collection::vec(prop_oneof![Just("admin".to_owned()), Just("member".to_owned()), Just("reader".to_owned()), Just("service".to_owned())], 0..3),
        ) {
            let enforcer = Enforcer::with_manila_defaults();
            // The API rules, i.e. all but base.py's persona building blocks.
            let name = defaults::MANILA_DEFAULTS
                .iter()
                .filter(|group| group.module != "base")
                .flat_map(|group| group.rules)
                .nth(index)
                .map(|d| d.name)
                .expect("219 API defaults");
            let creds = Credentials { user_id: "u".into(), project_id: "p".into(), roles: roles.clone(), is_admin: false };
            let allowed = enforcer.enforce(name, &target, &creds);
            // Nothing in Manila's defaults lets a caller without roles act on someone
            // else's resource, and admins can do everything.
            if roles.iter().any(|r| r == "admin") {
                prop_assert!(allowed, "{} denied an admin", name);
            }
            if roles.is_empty() && target.get("project_id").map(String::as_str) != Some("p") {
                prop_assert!(!allowed, "{} allowed a role-less stranger", name);
            }
        }

        #[test]
        fn override_documents_never_panic(doc in ".{0,200}") {
            let mut enforcer = Enforcer::with_manila_defaults();
            let _ = enforcer.load_overrides_str(&doc);
        }

        #[test]
        fn yaml_round_trip_of_every_rule(index in 0usize..230) {
            // Printing a rule into a policy file and loading it back changes nothing.
            let enforcer = Enforcer::with_manila_defaults();
            let default = defaults::all().nth(index).expect("index in range");
            let printed = enforcer.rule(default.name).map(ToString::to_string).unwrap_or_default();
            let doc = format!("{:?}: {:?}\n", default.name, printed);
            let mut reloaded = Enforcer::with_manila_defaults();
            reloaded.load_overrides_str(&doc).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(reloaded, enforcer);
        }
    }
}
