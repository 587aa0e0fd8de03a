//! The crate's error type: everything that can go wrong parsing a check string or loading
//! an override file. Evaluation itself never errors; it fails closed.

use std::path::PathBuf;

/// Errors from parsing check strings and loading policy overrides.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// A check string is not valid policy language.
    #[error("invalid check string {input:?}: {reason}")]
    Parse {
        /// The check string as given.
        input: String,
        /// What is wrong, naming the offending token and its byte offset where possible.
        reason: String,
    },

    /// An override file could not be read.
    #[error("cannot read policy file {}: {source}", path.display())]
    Io {
        /// The file that was being read.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },

    /// An override document is not a map of rule name to check string (bad YAML/JSON,
    /// a top level that is not a map, a rule whose value is not a string).
    #[error("invalid policy document: {0}")]
    Format(String),

    /// Some rules of an override document are invalid; none of the document was applied.
    #[error("{} invalid policy rule(s): {}", errors.len(), join_rule_errors(errors))]
    InvalidRules {
        /// One entry per invalid rule, in document order.
        errors: Vec<RuleError>,
    },

    /// [`crate::Enforcer::authorize`] was asked about a rule that is not registered
    /// (Manila raises `PolicyNotRegistered` here).
    #[error("policy rule {0:?} is not registered")]
    UnknownRule(String),
}

/// One invalid rule in an override document.
#[derive(Debug, thiserror::Error)]
#[error("{name:?}: {error}")]
pub struct RuleError {
    /// The rule name (the key in the document).
    pub name: String,
    /// Why its value was rejected: [`PolicyError::Parse`] or [`PolicyError::Format`].
    #[source]
    pub error: PolicyError,
}

impl PolicyError {
    /// The per-rule errors of an [`PolicyError::InvalidRules`], empty for other variants.
    /// Lets `shoal config check` list every bad rule without matching on variants.
    pub fn rule_errors(&self) -> &[RuleError] {
        match self {
            PolicyError::InvalidRules { errors } => errors,
            _ => &[],
        }
    }

    pub(crate) fn parse(input: &str, reason: impl Into<String>) -> Self {
        PolicyError::Parse {
            input: input.to_owned(),
            reason: reason.into(),
        }
    }
}

fn join_rule_errors(errors: &[RuleError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_rules_message_lists_every_rule() {
        let err = PolicyError::InvalidRules {
            errors: vec![
                RuleError {
                    name: "a".into(),
                    error: PolicyError::parse("(", "unbalanced"),
                },
                RuleError {
                    name: "b".into(),
                    error: PolicyError::Format("not a string".into()),
                },
            ],
        };
        let text = err.to_string();
        assert!(text.starts_with("2 invalid policy rule(s)"), "{text}");
        assert!(
            text.contains("\"a\": invalid check string \"(\": unbalanced"),
            "{text}"
        );
        assert!(
            text.contains("\"b\": invalid policy document: not a string"),
            "{text}"
        );
        assert_eq!(err.rule_errors().len(), 2);
        assert!(
            PolicyError::UnknownRule("x".into())
                .rule_errors()
                .is_empty()
        );
    }
}
