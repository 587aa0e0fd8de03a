//! Password hashing: argon2id in the PHC string format (`$argon2id$v=19$m=...`), with the
//! crate's default cost (OWASP's recommendation). Hashing takes tens of milliseconds on
//! purpose, so callers on the async runtime go through [`hash_blocking`] and
//! [`verify_blocking`], which move the work to the blocking pool.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

/// Hashes `password` with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    getrandom::getrandom(&mut salt).map_err(|e| format!("no randomness for a salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| format!("encoding a salt: {e}"))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| format!("hashing a password: {e}"))
}

/// True when `password` matches the PHC string `hash`. A malformed hash never matches.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// True when `hash` parses as an argon2 PHC string.
pub fn is_phc_hash(hash: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| parsed.algorithm.as_str().starts_with("argon2"))
}

/// [`hash_password`] on the blocking pool.
pub async fn hash_blocking(password: String) -> Result<String, String> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|e| format!("password hashing task failed: {e}"))?
}

/// [`verify_password`] on the blocking pool.
pub async fn verify_blocking(hash: String, password: String) -> bool {
    tokio::task::spawn_blocking(move || verify_password(&hash, &password))
        .await
        .unwrap_or(false)
}

/// A random password for the first admin: 24 characters of URL-safe base64 (144 bits).
pub fn generate_password() -> Result<String, String> {
    use base64::Engine as _;
    let mut bytes = [0u8; 18];
    getrandom::getrandom(&mut bytes).map_err(|e| format!("no randomness for a password: {e}"))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_verifies_only_its_password() {
        let hash = hash_password("correct horse").expect("hash");
        assert!(hash.starts_with("$argon2id$"));
        assert!(is_phc_hash(&hash));
        assert!(verify_password(&hash, "correct horse"));
        assert!(!verify_password(&hash, "correct hors"));
        assert_ne!(
            hash,
            hash_password("correct horse").expect("hash"),
            "salted"
        );
    }

    #[test]
    fn malformed_hashes_never_match() {
        assert!(!verify_password("", ""));
        assert!(!verify_password("plain", "plain"));
        assert!(!is_phc_hash("$2b$12$abcdefghijklmnopqrstuv"));
    }

    #[test]
    fn generated_passwords_differ() {
        let a = generate_password().expect("password");
        assert_eq!(a.len(), 24);
        assert_ne!(a, generate_password().expect("password"));
    }
}
