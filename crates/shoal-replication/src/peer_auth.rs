//! Authentication of node-to-node replication requests with the cluster secret.
//!
//! Every share node holds the same cluster secret. A request from one node to another's
//! replication endpoint carries the sender's node name, a timestamp, a random nonce and a
//! MAC over all of these, the method, the path and the body's hash. The MAC is BLAKE3 in
//! keyed mode (the engine already hashes with BLAKE3) under a key derived from the secret
//! for this one purpose, so the secret itself is never used as a key elsewhere by accident.
//!
//! The receiver refuses a request without the headers, with a MAC that does not verify (a
//! wrong secret, or anything signed changed on the way), with a timestamp outside the
//! allowed clock skew, or with a nonce it has already accepted within that window (a
//! replay). Nonces are remembered only for as long as their timestamp is acceptable, so the
//! memory this takes is bounded by the request rate times the window.

use std::collections::HashMap;
use std::sync::Mutex;

/// Domain-separation context of the key derivation.
const KEY_CONTEXT: &str = "shoal 2026-12 replication peer request MAC v1";
/// First line of every signed message; a new message format gets a new tag.
const MESSAGE_TAG: &str = "shoal-replication-v1";
/// Derivation input of the response MAC key (kept apart from the request key).
const RESPONSE_TAG: &str = "shoal-replication-response-v1";

/// The key derived from the cluster secret.
#[derive(Clone)]
pub struct ClusterKey([u8; 32]);

impl std::fmt::Debug for ClusterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ClusterKey(..)")
    }
}

impl ClusterKey {
    /// Derives the request-signing key from the cluster secret's bytes.
    pub fn derive(secret: &[u8]) -> Self {
        Self(blake3::derive_key(KEY_CONTEXT, secret))
    }

    /// The MAC of a response to the request with `nonce`: a keyed hash, under a key of its
    /// own, that the answering node feeds with what it sends and the requester with what it
    /// receives. Binding it to the nonce makes an old response useless for a new request.
    pub fn response_mac(&self, nonce: &str) -> blake3::Hasher {
        let key = blake3::keyed_hash(&self.0, RESPONSE_TAG.as_bytes());
        let mut hasher = blake3::Hasher::new_keyed(key.as_bytes());
        hasher.update(nonce.as_bytes());
        hasher.update(b"\n");
        hasher
    }
}

/// What a signed request carries besides its method, path and body (sent as headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestSignature {
    /// Name of the sending node.
    pub node: String,
    /// Seconds since the UNIX epoch when the request was signed.
    pub timestamp: i64,
    /// Random, unique per request.
    pub nonce: String,
    /// Hex MAC over everything above, the method, the path and the body's hash.
    pub mac: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerAuthError {
    /// The request carries no signature.
    #[error("the request is not signed")]
    Missing,
    /// The MAC does not verify: another secret, or a signed part was changed.
    #[error("the request signature does not verify")]
    BadSignature,
    /// The timestamp is outside the allowed clock skew.
    #[error("the request timestamp {timestamp} is more than {max_skew} s from now ({now})")]
    Stale {
        /// The request's timestamp.
        timestamp: i64,
        /// The receiver's clock.
        now: i64,
        /// The allowed skew in seconds.
        max_skew: i64,
    },
    /// This nonce was already accepted: the request is a replay.
    #[error("the request was already received (nonce {0})")]
    Replayed(String),
}

fn message(
    key: &ClusterKey,
    node: &str,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp: i64,
    nonce: &str,
) -> blake3::Hash {
    let body_hash = blake3::hash(body);
    let text = format!(
        "{MESSAGE_TAG}\n{node}\n{}\n{path}\n{timestamp}\n{nonce}\n{}",
        method.to_ascii_uppercase(),
        body_hash.to_hex()
    );
    blake3::keyed_hash(&key.0, text.as_bytes())
}

/// Signs a request with a fresh nonce, at `timestamp` (seconds since the UNIX epoch).
pub fn sign(
    key: &ClusterKey,
    node: &str,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp: i64,
) -> RequestSignature {
    let nonce = uuid::Uuid::new_v4().simple().to_string();
    let mac = message(key, node, method, path, body, timestamp, &nonce);
    RequestSignature {
        node: node.to_owned(),
        timestamp,
        nonce,
        mac: mac.to_hex().to_string(),
    }
}

/// Checks signed requests and remembers accepted nonces to refuse replays.
#[derive(Debug)]
pub struct Verifier {
    key: ClusterKey,
    max_skew: i64,
    /// Accepted nonces and the time after which their timestamp is stale anyway.
    seen: Mutex<HashMap<String, i64>>,
}

impl Verifier {
    /// A verifier accepting timestamps within `max_skew_secs` of the receiver's clock.
    pub fn new(key: ClusterKey, max_skew_secs: i64) -> Self {
        Self {
            key,
            max_skew: max_skew_secs.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Verifies a request received at `now` (seconds since the UNIX epoch). The MAC is
    /// checked before the nonce is remembered, so unsigned traffic cannot fill the cache.
    pub fn verify(
        &self,
        signature: Option<&RequestSignature>,
        method: &str,
        path: &str,
        body: &[u8],
        now: i64,
    ) -> Result<(), PeerAuthError> {
        let sig = signature.ok_or(PeerAuthError::Missing)?;
        let claimed = blake3::Hash::from_hex(&sig.mac).map_err(|_| PeerAuthError::BadSignature)?;
        let expected = message(
            &self.key,
            &sig.node,
            method,
            path,
            body,
            sig.timestamp,
            &sig.nonce,
        );
        // blake3::Hash compares in constant time.
        if claimed != expected {
            return Err(PeerAuthError::BadSignature);
        }
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.retain(|_, expires| *expires >= now);
        if (now - sig.timestamp).abs() > self.max_skew {
            return Err(PeerAuthError::Stale {
                timestamp: sig.timestamp,
                now,
                max_skew: self.max_skew,
            });
        }
        if seen.contains_key(&sig.nonce) {
            return Err(PeerAuthError::Replayed(sig.nonce.clone()));
        }
        seen.insert(sig.nonce.clone(), sig.timestamp + self.max_skew);
        Ok(())
    }

    /// How many nonces are remembered (for tests and metrics).
    pub fn remembered(&self) -> usize {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000;
    const PATH: &str = "/replication/v1/instances/abc/manifest";

    fn verifier() -> Verifier {
        Verifier::new(ClusterKey::derive(b"the cluster secret"), 300)
    }

    fn signed(secret: &[u8], body: &[u8], at: i64) -> RequestSignature {
        sign(&ClusterKey::derive(secret), "n1", "GET", PATH, body, at)
    }

    #[test]
    fn a_signed_request_is_accepted_once() {
        let v = verifier();
        let sig = signed(b"the cluster secret", b"body", NOW);
        assert_eq!(v.verify(Some(&sig), "GET", PATH, b"body", NOW + 2), Ok(()));
        assert_eq!(
            v.verify(Some(&sig), "GET", PATH, b"body", NOW + 3),
            Err(PeerAuthError::Replayed(sig.nonce.clone()))
        );
        // A second request from the same node has its own nonce.
        let again = signed(b"the cluster secret", b"body", NOW);
        assert_ne!(again.nonce, sig.nonce);
        assert_eq!(v.verify(Some(&again), "GET", PATH, b"body", NOW), Ok(()));
    }

    #[test]
    fn an_unsigned_request_is_refused() {
        assert_eq!(
            verifier().verify(None, "GET", PATH, b"", NOW),
            Err(PeerAuthError::Missing)
        );
    }

    #[test]
    fn another_secret_is_refused_and_not_remembered() {
        let v = verifier();
        let sig = signed(b"another secret", b"", NOW);
        assert_eq!(
            v.verify(Some(&sig), "GET", PATH, b"", NOW),
            Err(PeerAuthError::BadSignature)
        );
        assert_eq!(v.remembered(), 0);
    }

    #[test]
    fn any_change_to_a_signed_part_is_refused() {
        let v = verifier();
        let sig = signed(b"the cluster secret", b"body", NOW);
        let refused = Err(PeerAuthError::BadSignature);
        assert_eq!(v.verify(Some(&sig), "GET", PATH, b"bodY", NOW), refused);
        assert_eq!(v.verify(Some(&sig), "PUT", PATH, b"body", NOW), refused);
        assert_eq!(
            v.verify(
                Some(&sig),
                "GET",
                "/replication/v1/instances/abd/manifest",
                b"body",
                NOW
            ),
            refused
        );
        for tamper in [
            RequestSignature {
                node: "n2".into(),
                ..sig.clone()
            },
            RequestSignature {
                timestamp: NOW + 1,
                ..sig.clone()
            },
            RequestSignature {
                nonce: "0".repeat(32),
                ..sig.clone()
            },
            RequestSignature {
                mac: "not hex".into(),
                ..sig.clone()
            },
        ] {
            assert_eq!(v.verify(Some(&tamper), "GET", PATH, b"body", NOW), refused);
        }
        // The untouched request still verifies.
        assert_eq!(v.verify(Some(&sig), "GET", PATH, b"body", NOW), Ok(()));
    }

    #[test]
    fn timestamps_outside_the_skew_are_refused_so_old_requests_cannot_be_replayed() {
        let v = verifier();
        let sig = signed(b"the cluster secret", b"", NOW);
        assert_eq!(v.verify(Some(&sig), "GET", PATH, b"", NOW), Ok(()));
        // Once its nonce is forgotten, its timestamp is already stale.
        assert!(matches!(
            v.verify(Some(&sig), "GET", PATH, b"", NOW + 301),
            Err(PeerAuthError::Stale { .. })
        ));
        assert_eq!(v.remembered(), 0);
        let future = signed(b"the cluster secret", b"", NOW + 301);
        assert!(matches!(
            v.verify(Some(&future), "GET", PATH, b"", NOW),
            Err(PeerAuthError::Stale { .. })
        ));
    }
}
