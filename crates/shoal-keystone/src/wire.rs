//! Keystone v3 token documents as they appear on the wire.
//!
//! These serde types describe the body of `POST /v3/auth/tokens` (201) and
//! `GET /v3/auth/tokens` (200): `{"token": {...}}`. The validator reads them;
//! the stand-in writes them. Unknown fields (catalog, audit ids, ...) are
//! ignored when reading.

use chrono::{DateTime, NaiveDateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// `{"token": {...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct TokenDocument {
    pub token: Token,
}

/// The `token` object.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Token {
    #[serde(default)]
    pub methods: Vec<String>,
    pub user: User,
    pub expires_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub audit_ids: Vec<String>,
    /// Absent for unscoped and domain-scoped tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<Project>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_domain: Option<bool>,
    /// Absent for unscoped tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<Role>>,
}

/// `token.user`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct User {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub domain: Option<Domain>,
}

/// A domain reference (`token.user.domain`, `token.project.domain`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Domain {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// `token.project`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Project {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub domain: Option<Domain>,
}

/// An entry of `token.roles`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Role {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
}

/// Parses a Keystone timestamp. Keystone writes
/// `2015-08-27T09:49:58.000000Z`; an offset-less form is read as UTC.
pub(crate) fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(at.with_timezone(&Utc));
    }
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

/// Formats a timestamp the way Keystone does (microseconds, `Z`).
#[cfg_attr(not(feature = "standin"), allow(dead_code))]
pub(crate) fn format_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn timestamps_round_trip_in_keystone_format() {
        let at = Utc.with_ymd_and_hms(2015, 8, 27, 9, 49, 58).single();
        let Some(at) = at else {
            panic!("valid date");
        };
        let text = format_timestamp(at);
        assert_eq!(text, "2015-08-27T09:49:58.000000Z");
        assert_eq!(parse_timestamp(&text), Some(at));
    }

    #[test]
    fn offsetless_and_offset_timestamps_parse() {
        let z = parse_timestamp("2015-08-27T09:49:58.123456Z");
        assert!(z.is_some());
        assert_eq!(parse_timestamp("2015-08-27T09:49:58.123456"), z);
        assert_eq!(parse_timestamp("2015-08-27T11:49:58.123456+02:00"), z);
        assert_eq!(parse_timestamp("yesterday"), None);
    }
}
