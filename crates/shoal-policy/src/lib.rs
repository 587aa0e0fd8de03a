//! An oslo.policy-compatible policy engine carrying OpenStack Manila's default rules.
//!
//! This crate owns three things:
//!
//! * the check-string language (`role:admin and project_id:%(project_id)s`), parsed by
//!   [`parse`] into a [`Rule`] tree that prints back ([`std::fmt::Display`]) as a canonical
//!   check string;
//! * evaluation of rules against [`Credentials`] (who asks) and a [`Target`] (what is acted
//!   on), with oslo.policy's semantics, through the [`Enforcer`];
//! * Manila's default rules ([`defaults`]) and loading of operator overrides from the same
//!   YAML/JSON policy files Manila reads.
//!
//! It does no IO besides reading an override file when asked, and never panics on input.
//!
//! ```
//! use shoal_policy::{Credentials, Enforcer, Target};
//!
//! let mut enforcer = Enforcer::with_manila_defaults();
//! enforcer.load_overrides_str("\"share:create\": \"rule:context_is_admin\"\n")?;
//!
//! let member = Credentials {
//!     user_id: "u1".into(),
//!     project_id: "p1".into(),
//!     roles: vec!["member".into(), "reader".into()],
//!     is_admin: false,
//! };
//! let share = Target::from([("project_id".to_owned(), "p1".to_owned())]);
//! assert!(enforcer.enforce("share:get", &share, &member));
//! assert!(!enforcer.enforce("share:create", &share, &member)); // overridden
//! assert!(!enforcer.is_admin(&member));
//! # Ok::<(), shoal_policy::PolicyError>(())
//! ```
//!
//! Deliberate differences from oslo.policy, all in the fail-closed direction or to surface
//! misconfiguration early:
//!
//! * a check string that oslo would log and turn into "always false", or that would make
//!   oslo raise at enforce time (an unparsable key or `%` template), is an error here
//!   ([`parse`] returns [`PolicyError::Parse`]; loading such an override fails); so are
//!   checks with nothing before or after the `:` (`role:`), which oslo accepts but which
//!   can never match anything useful;
//! * a fully quoted match is a literal: `user_id:'abc'` compares with `abc` (oslo compares
//!   with `'abc'`, quotes included);
//! * `rule:NAME` with an unknown `NAME` is false (oslo falls back to the `default` rule);
//! * a `rule:` cycle, or a `rule:` chain deeper than [`MAX_RULE_DEPTH`], denies the whole
//!   request instead of raising a recursion error;
//! * HTTP checks (`http:`/`https:`) are not supported and fail to parse.

pub mod defaults;
mod enforcer;
mod error;
mod eval;
mod parser;
mod rule;

pub use enforcer::{Enforcer, PolicyIssue};
pub use error::{PolicyError, RuleError};
pub use eval::MAX_RULE_DEPTH;
pub use parser::{MAX_NESTING, parse};
pub use rule::Rule;

/// Attributes of the object an action is performed on, e.g. `{"project_id": ..,
/// "user_id": ..}`; `%(name)s` in a check string is replaced by `target[name]`, and a
/// check naming an absent key is false.
pub type Target = std::collections::HashMap<String, String>;

/// Who is asking. Built by the API layer from the auth middleware.
///
/// In generic checks (`key:value`) these are visible as `user_id`, `project_id`, `roles`
/// (matches if any role equals the value) and `is_admin` (`"True"` or `"False"`, the way
/// Python prints a bool, so `is_admin:True` works as in oslo).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Credentials {
    /// Keystone user id.
    pub user_id: String,
    /// Keystone project (tenant) id the token is scoped to.
    pub project_id: String,
    /// Role names on that project; `role:` checks compare them case-insensitively.
    pub roles: Vec<String>,
    /// Manila's `context.is_admin`, normally the result of [`Enforcer::is_admin`].
    pub is_admin: bool,
}

impl Credentials {
    /// Manila's `policy.default_target(context)`: the caller's own project and user. Used
    /// when an action has no natural target (and by [`Enforcer::is_admin`]).
    pub fn default_target(&self) -> Target {
        Target::from([
            ("project_id".to_owned(), self.project_id.clone()),
            ("user_id".to_owned(), self.user_id.clone()),
        ])
    }

    /// Whether the caller holds `role`, compared case-insensitively as `role:` checks do.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles
            .iter()
            .any(|held| eval::eq_ignore_case(held, role))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_target_is_own_project_and_user() {
        let creds = Credentials {
            user_id: "u1".into(),
            project_id: "p1".into(),
            roles: vec![],
            is_admin: false,
        };
        let target = creds.default_target();
        assert_eq!(target.len(), 2);
        assert_eq!(target["project_id"], "p1");
        assert_eq!(target["user_id"], "u1");
    }

    #[test]
    fn has_role_ignores_case() {
        let creds = Credentials {
            roles: vec!["Member".into(), "ÄDMIN".into()],
            ..Credentials::default()
        };
        assert!(creds.has_role("member"));
        assert!(creds.has_role("MEMBER"));
        assert!(creds.has_role("ädmin"));
        assert!(!creds.has_role("reader"));
    }
}
