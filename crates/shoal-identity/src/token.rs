//! The token format: `sh1.<payload>.<mac>`, both parts URL-safe base64 without padding.
//! The payload is JSON naming the user, the project (absent for unscoped tokens), the
//! authentication methods, issue and expiry times and an audit id; the MAC is BLAKE3 in
//! keyed mode over `sh1.<payload>` with the deployment's signing key.
//!
//! Like Keystone's Fernet tokens, a token carries no roles and no catalog: those are looked
//! up when it is validated, so removing a role or disabling a user takes effect at once.
//! Unlike Fernet, the payload is signed but not encrypted: it holds only ids and times.
//! Revocation is by audit id (the `identity_revoked_tokens` table).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Prefix naming the format version, so a later format can be told apart.
const PREFIX: &str = "sh1";

/// Length of a signing key in bytes.
pub const KEY_LEN: usize = 32;

/// What a token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPayload {
    /// User id.
    #[serde(rename = "u")]
    pub user_id: String,
    /// Project the token is scoped to; `None` for an unscoped token.
    #[serde(rename = "p", default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// Authentication methods, Keystone's `methods` (`password`, `token`).
    #[serde(rename = "m")]
    pub methods: Vec<String>,
    /// Issue time, microseconds since the epoch.
    #[serde(rename = "i", with = "chrono::serde::ts_microseconds")]
    pub issued_at: DateTime<Utc>,
    /// Expiry time, microseconds since the epoch.
    #[serde(rename = "e", with = "chrono::serde::ts_microseconds")]
    pub expires_at: DateTime<Utc>,
    /// Keystone's audit ids: this token's own first, then the one it was made from (token
    /// method), so revoking the original also revokes what was derived from it.
    #[serde(rename = "a")]
    pub audit_ids: Vec<String>,
}

/// Why a string is not a token of this deployment.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not in the `sh1.<payload>.<mac>` shape, or the payload does not decode.
    #[error("malformed token")]
    Malformed,
    /// The MAC does not match: forged, altered, or signed with another key.
    #[error("bad token signature")]
    BadSignature,
}

/// Signs `payload` with `key`.
pub fn encode(payload: &TokenPayload, key: &[u8; KEY_LEN]) -> String {
    let json = serde_json::to_vec(payload).expect("a token payload always serialises");
    let signed = format!("{PREFIX}.{}", URL_SAFE_NO_PAD.encode(json));
    let mac = blake3::keyed_hash(key, signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(mac.as_bytes()))
}

/// Checks the signature of `token` and returns its payload. Expiry and revocation are the
/// caller's business.
pub fn decode(token: &str, key: &[u8; KEY_LEN]) -> Result<TokenPayload, TokenError> {
    let (signed, mac) = token.rsplit_once('.').ok_or(TokenError::Malformed)?;
    let payload = signed
        .strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_prefix('.'))
        .ok_or(TokenError::Malformed)?;
    let mac: [u8; 32] = URL_SAFE_NO_PAD
        .decode(mac)
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or(TokenError::Malformed)?;
    // blake3::Hash compares in constant time.
    if blake3::keyed_hash(key, signed.as_bytes()) != blake3::Hash::from(mac) {
        return Err(TokenError::BadSignature);
    }
    let json = URL_SAFE_NO_PAD
        .decode(payload)
        .map_err(|_| TokenError::Malformed)?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Malformed)
}

/// A new random audit id: 16 bytes, URL-safe base64 (22 characters), as Keystone's.
pub fn new_audit_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the OS provides randomness");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new random signing key, hex-encoded for the store.
pub fn new_key_hex() -> String {
    let mut bytes = [0u8; KEY_LEN];
    getrandom::getrandom(&mut bytes).expect("the OS provides randomness");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Parses a hex-encoded signing key.
pub fn key_from_hex(hex: &str) -> Option<[u8; KEY_LEN]> {
    if hex.len() != KEY_LEN * 2 || !hex.is_ascii() {
        return None;
    }
    let mut key = [0u8; KEY_LEN];
    for (i, byte) in key.iter_mut().enumerate() {
        *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok()?;
    }
    Some(key)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn payload() -> TokenPayload {
        TokenPayload {
            user_id: "u1".to_owned(),
            project_id: Some("p1".to_owned()),
            methods: vec!["password".to_owned()],
            issued_at: Utc.timestamp_micros(1_700_000_000_123_456).unwrap(),
            expires_at: Utc.timestamp_micros(1_700_003_600_123_456).unwrap(),
            audit_ids: vec![new_audit_id()],
        }
    }

    #[test]
    fn round_trips_with_its_key_only() {
        let key = key_from_hex(&new_key_hex()).expect("key");
        let other = key_from_hex(&new_key_hex()).expect("key");
        let payload = payload();
        let token = encode(&payload, &key);
        assert!(token.starts_with("sh1."));
        assert_eq!(decode(&token, &key), Ok(payload));
        assert_eq!(decode(&token, &other), Err(TokenError::BadSignature));
    }

    #[test]
    fn any_altered_character_is_refused() {
        let key = key_from_hex(&new_key_hex()).expect("key");
        let token = encode(&payload(), &key);
        for i in 0..token.len() {
            let mut bytes = token.clone().into_bytes();
            bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(bytes).expect("ascii");
            assert!(decode(&altered, &key).is_err(), "position {i} accepted");
        }
    }

    #[test]
    fn garbage_is_malformed() {
        let key = [7u8; KEY_LEN];
        for bad in ["", "sh1", "sh1..", "admin:admin", "sh2.e30.AAAA", "sh1.e30"] {
            assert!(decode(bad, &key).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn keys_round_trip_through_hex() {
        let hex = new_key_hex();
        let key = key_from_hex(&hex).expect("key");
        let back: String = key.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, back);
        assert!(key_from_hex("zz").is_none());
    }
}
