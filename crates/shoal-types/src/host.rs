//! Pool references in Manila's `host@backend#pool` form. The scheduler writes them into a
//! share instance's `host`; the share node that owns `host@backend` carries out the work.

use std::fmt;
use std::str::FromStr;

/// A parsed `host@backend#pool` string.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostRef {
    /// The share node's host name.
    pub host: String,
    /// The back-end section name on that host.
    pub backend: String,
    /// The pool within the back end.
    pub pool: String,
}

/// Why a host string could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pool reference {0:?}: expected host@backend#pool")]
pub struct HostRefError(pub String);

impl HostRef {
    /// Builds a reference from its parts.
    pub fn new(
        host: impl Into<String>,
        backend: impl Into<String>,
        pool: impl Into<String>,
    ) -> Self {
        Self {
            host: host.into(),
            backend: backend.into(),
            pool: pool.into(),
        }
    }

    /// `host@backend`, the name of the share service that owns the pool.
    pub fn service_host(&self) -> String {
        format!("{}@{}", self.host, self.backend)
    }
}

impl fmt::Display for HostRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}#{}", self.host, self.backend, self.pool)
    }
}

/// True for characters allowed in each part: the names end up in log lines, URLs and, for
/// the local back end, nowhere near paths, but a strict alphabet keeps surprises out.
fn valid_part(part: &str) -> bool {
    !part.is_empty()
        && part.len() <= 255
        && part
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

impl FromStr for HostRef {
    type Err = HostRefError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let err = || HostRefError(text.to_owned());
        let (host, rest) = text.split_once('@').ok_or_else(err)?;
        let (backend, pool) = rest.split_once('#').ok_or_else(err)?;
        if ![host, backend, pool].iter().all(|p| valid_part(p)) {
            return Err(err());
        }
        Ok(Self::new(host, backend, pool))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let h: HostRef = "node1@local1#pool_a".parse().unwrap();
        assert_eq!(h, HostRef::new("node1", "local1", "pool_a"));
        assert_eq!(h.to_string(), "node1@local1#pool_a");
        assert_eq!(h.service_host(), "node1@local1");
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "", "a@b", "a#b", "@b#c", "a@#c", "a@b#", "a@b#c/d", "a b@c#d", "a@b#../x",
        ] {
            assert!(bad.parse::<HostRef>().is_err(), "{bad:?}");
        }
    }
}
