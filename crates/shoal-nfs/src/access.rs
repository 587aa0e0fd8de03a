//! Client access rules: which peer address may use an export, and at which level.
//!
//! Owns the parsing of Manila `ip` access rules (`access_to` is an address or a CIDR
//! network, `access_level` is `rw` or `ro`) and the one function that turns the rules of an
//! export plus the peer address into the effective level of a call. Nothing here is
//! persisted: the driver hands the rules over with every export and every rule change.

use std::net::IpAddr;

/// What a client may do on an export.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum AccessLevel {
    /// Read only: every modifying call is refused with `NFS3ERR_ROFS`.
    ReadOnly,
    /// Read and write.
    ReadWrite,
}

/// One `ip` access rule: the clients of `network/prefix_len` get `level`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientRule {
    /// The network (or single address); host bits beyond the prefix are ignored.
    pub network: IpAddr,
    /// Prefix length: 0..=32 for IPv4, 0..=128 for IPv6.
    pub prefix_len: u8,
    /// The level the matching clients get.
    pub level: AccessLevel,
}

impl ClientRule {
    /// Parses Manila's `access_to` ("10.0.0.1", "10.0.0.0/24", "fd00::/64", "::1") and
    /// `access_level` ("rw" or "ro").
    pub fn parse(access_to: &str, access_level: &str) -> Result<ClientRule, String> {
        let level = match access_level {
            "rw" => AccessLevel::ReadWrite,
            "ro" => AccessLevel::ReadOnly,
            other => {
                return Err(format!(
                    "unknown access level {other:?} (expected rw or ro)"
                ));
            }
        };
        let (addr, prefix) = match access_to.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (access_to, None),
        };
        let network: IpAddr = addr
            .trim()
            .parse()
            .map_err(|_| format!("{access_to:?} is not an IP address or network"))?;
        // An IPv4-mapped IPv6 rule means the IPv4 address: compare like with like.
        let network = network.to_canonical();
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix_len = match prefix {
            None => max,
            Some(prefix) => match prefix.trim().parse::<u8>() {
                Ok(len) if len <= max => len,
                _ => return Err(format!("{access_to:?} has an invalid prefix length")),
            },
        };
        Ok(ClientRule {
            network,
            prefix_len,
            level,
        })
    }

    /// Whether `client` is in this rule's network. An IPv4-mapped IPv6 peer (a dual-stack
    /// listener's view of an IPv4 client) matches IPv4 rules.
    pub fn matches(&self, client: IpAddr) -> bool {
        match (self.network.to_canonical(), client.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = mask_v4(self.prefix_len);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = mask_v6(self.prefix_len);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

/// The network mask of an IPv4 prefix (a prefix beyond 32 counts as 32).
fn mask_v4(prefix: u8) -> u32 {
    match u32::from(prefix) {
        0 => 0,
        p => u32::MAX << (32 - p.min(32)),
    }
}

/// The network mask of an IPv6 prefix (a prefix beyond 128 counts as 128).
fn mask_v6(prefix: u8) -> u128 {
    match u32::from(prefix) {
        0 => 0,
        p => u128::MAX << (128 - p.min(128)),
    }
}

/// The effective level of `client` on an export: the highest level among the matching rules
/// (rw beats ro), capped to read-only for a read-only export. `None`: no rule matches.
pub(crate) fn effective_level(
    rules: &[ClientRule],
    read_only: bool,
    client: IpAddr,
) -> Option<AccessLevel> {
    let level = rules
        .iter()
        .filter(|rule| rule.matches(client))
        .map(|rule| rule.level)
        .max()?;
    Some(if read_only {
        AccessLevel::ReadOnly
    } else {
        level
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_addresses_networks_and_levels() {
        let rule = ClientRule::parse("10.0.0.1", "rw").unwrap();
        assert_eq!(rule.prefix_len, 32);
        assert_eq!(rule.level, AccessLevel::ReadWrite);
        let rule = ClientRule::parse("10.0.0.0/24", "ro").unwrap();
        assert_eq!(rule.prefix_len, 24);
        assert_eq!(rule.level, AccessLevel::ReadOnly);
        let rule = ClientRule::parse("fd00::/64", "rw").unwrap();
        assert_eq!(rule.prefix_len, 64);
        assert_eq!(ClientRule::parse("::1", "ro").unwrap().prefix_len, 128);
        assert_eq!(ClientRule::parse("0.0.0.0/0", "ro").unwrap().prefix_len, 0);
        for (to, level) in [
            ("10.0.0.1", "rx"),
            ("10.0.0.300", "rw"),
            ("10.0.0.0/33", "rw"),
            ("fd00::/129", "rw"),
            ("host.example", "rw"),
            ("10.0.0.0/", "rw"),
        ] {
            assert!(ClientRule::parse(to, level).is_err(), "{to} {level}");
        }
    }

    #[test]
    fn matches_by_prefix_and_family() {
        let net = ClientRule::parse("10.0.0.0/24", "rw").unwrap();
        assert!(net.matches(ip("10.0.0.77")));
        assert!(!net.matches(ip("10.0.1.1")));
        assert!(!net.matches(ip("fd00::1")));
        // a dual-stack listener reports IPv4 clients as ::ffff:a.b.c.d
        assert!(net.matches(ip("::ffff:10.0.0.5")));
        let host = ClientRule::parse("127.0.0.1", "ro").unwrap();
        assert!(host.matches(ip("127.0.0.1")));
        assert!(!host.matches(ip("127.0.0.2")));
        let all = ClientRule::parse("0.0.0.0/0", "ro").unwrap();
        assert!(all.matches(ip("192.168.1.1")));
        assert!(!all.matches(ip("::1")));
        let v6 = ClientRule::parse("fd00:1::/32", "rw").unwrap();
        assert!(v6.matches(ip("fd00:1:ffff::1")));
        assert!(!v6.matches(ip("fd01::1")));
        let all6 = ClientRule::parse("::/0", "rw").unwrap();
        assert!(all6.matches(ip("fe80::1")));
    }

    #[test]
    fn highest_matching_level_wins_and_read_only_caps_it() {
        let rules = vec![
            ClientRule::parse("10.0.0.0/8", "ro").unwrap(),
            ClientRule::parse("10.1.0.0/16", "rw").unwrap(),
        ];
        assert_eq!(
            effective_level(&rules, false, ip("10.1.2.3")),
            Some(AccessLevel::ReadWrite)
        );
        assert_eq!(
            effective_level(&rules, false, ip("10.2.2.3")),
            Some(AccessLevel::ReadOnly)
        );
        assert_eq!(
            effective_level(&rules, true, ip("10.1.2.3")),
            Some(AccessLevel::ReadOnly)
        );
        assert_eq!(effective_level(&rules, false, ip("11.0.0.1")), None);
        assert_eq!(effective_level(&[], false, ip("10.0.0.1")), None);
    }
}
