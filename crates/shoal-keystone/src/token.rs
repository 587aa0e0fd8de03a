//! What a validated token says about its bearer ([`TokenInfo`]), and the
//! rules that turn a Keystone token document into one.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::wire;

/// The identity behind a valid, project-scoped Keystone token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// `token.user.id`.
    pub user_id: String,
    /// `token.user.name`.
    pub user_name: String,
    /// `token.project.id`; Manila needs a project, so this is never empty.
    pub project_id: String,
    /// `token.project.name`.
    pub project_name: String,
    /// `token.user.domain.id`: the domain of the user.
    pub domain_id: Option<String>,
    /// `token.project.domain.id`: the domain of the project.
    pub project_domain_id: Option<String>,
    /// `token.roles[].name`, in Keystone's order.
    pub roles: Vec<String>,
    /// `token.expires_at`.
    pub expires_at: DateTime<Utc>,
}

impl TokenInfo {
    /// Whether the token carries `role`. Compared case-insensitively, as
    /// oslo.policy's `role:` check does.
    pub fn has_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r.eq_ignore_ascii_case(role))
    }
}

/// Why a token document does not yield a [`TokenInfo`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Rejection {
    /// The token is no good for Manila: expired, or not project-scoped.
    Invalid(&'static str),
    /// The document itself is broken: Keystone's fault, not the user's.
    Malformed(&'static str),
}

/// Applies Manila's rules to a token document Keystone vouched for.
pub(crate) fn token_info(token: wire::Token, now: DateTime<Utc>) -> Result<TokenInfo, Rejection> {
    let expires_at = wire::parse_timestamp(&token.expires_at)
        .ok_or(Rejection::Malformed("unreadable token.expires_at"))?;
    if expires_at <= now {
        return Err(Rejection::Invalid("token has expired"));
    }
    let project = token
        .project
        .ok_or(Rejection::Invalid("token is not project-scoped"))?;
    if project.id.is_empty() {
        return Err(Rejection::Invalid("token is not project-scoped"));
    }
    if token.user.id.is_empty() {
        return Err(Rejection::Malformed("empty token.user.id"));
    }
    Ok(TokenInfo {
        user_id: token.user.id,
        user_name: token.user.name,
        project_id: project.id,
        project_name: project.name,
        domain_id: token.user.domain.and_then(|d| d.id),
        project_domain_id: project.domain.and_then(|d| d.id),
        roles: token
            .roles
            .unwrap_or_default()
            .into_iter()
            .map(|r| r.name)
            .collect(),
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    /// Shaped after the Keystone v3 api-ref "validate and show information
    /// for token" response (trimmed catalog).
    const SAMPLE: &str = r#"{
        "token": {
            "methods": ["token"],
            "expires_at": "2015-11-05T22:00:11.000000Z",
            "user": {
                "domain": {"id": "default", "name": "Default"},
                "id": "10a2e6e717a245d9acad3e5f97aeca3d",
                "name": "admin",
                "password_expires_at": null
            },
            "audit_ids": ["mAjXQhiYRyKwkB4qygdLVg"],
            "issued_at": "2015-11-05T21:00:33.819948Z",
            "project": {
                "domain": {"id": "default", "name": "Default"},
                "id": "a6944d763bf64ee6a275f1263fae0352",
                "name": "admin"
            },
            "is_domain": false,
            "roles": [
                {"id": "51cc68287d524c759f47c811e6463340", "name": "admin"},
                {"id": "9fe2ff9ee4384b1894a90878d3e92bab", "name": "member"}
            ],
            "catalog": [{"endpoints": [], "type": "identity", "id": "x", "name": "keystone"}]
        }
    }"#;

    fn sample() -> wire::Token {
        match serde_json::from_str::<wire::TokenDocument>(SAMPLE) {
            Ok(doc) => doc.token,
            Err(e) => panic!("sample does not parse: {e}"),
        }
    }

    fn before_expiry() -> DateTime<Utc> {
        wire::parse_timestamp("2015-11-05T21:30:00Z").unwrap_or_default()
    }

    #[test]
    fn keystone_document_yields_token_info() {
        let info = token_info(sample(), before_expiry());
        let Ok(info) = info else {
            panic!("rejected: {info:?}");
        };
        assert_eq!(info.user_id, "10a2e6e717a245d9acad3e5f97aeca3d");
        assert_eq!(info.user_name, "admin");
        assert_eq!(info.project_id, "a6944d763bf64ee6a275f1263fae0352");
        assert_eq!(info.project_name, "admin");
        assert_eq!(info.domain_id.as_deref(), Some("default"));
        assert_eq!(info.project_domain_id.as_deref(), Some("default"));
        assert_eq!(info.roles, ["admin", "member"]);
        assert!(info.has_role("ADMIN"));
        assert!(!info.has_role("reader"));
        assert_eq!(
            wire::format_timestamp(info.expires_at),
            "2015-11-05T22:00:11.000000Z"
        );
    }

    #[test]
    fn expired_token_is_invalid_even_if_keystone_vouched() {
        let after = before_expiry() + TimeDelta::hours(1);
        assert_eq!(
            token_info(sample(), after),
            Err(Rejection::Invalid("token has expired"))
        );
    }

    #[test]
    fn unscoped_token_is_invalid() {
        let mut token = sample();
        token.project = None;
        token.roles = None;
        assert_eq!(
            token_info(token, before_expiry()),
            Err(Rejection::Invalid("token is not project-scoped"))
        );
    }

    #[test]
    fn unreadable_expiry_is_keystones_fault() {
        let mut token = sample();
        token.expires_at = "soon".to_owned();
        assert!(matches!(
            token_info(token, before_expiry()),
            Err(Rejection::Malformed(_))
        ));
    }
}
