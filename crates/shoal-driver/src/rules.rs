//! Access-rule checks shared by the drivers, following Manila's generic API checks
//! (`manila/api/common.py::validate_access`): the API already applies them, but a driver must
//! not trust that every rule it is handed went through this API version's checks (rules
//! created by older versions, rules edited in the database).

use std::net::IpAddr;

use crate::AccessRule;

/// Checks `rule`'s level and, for `ip` and `user`, its target. Other types are left to the
/// caller's policy. Returns the reason a rule is invalid.
pub(crate) fn validate_rule(rule: &AccessRule) -> Result<(), String> {
    if !matches!(rule.access_level.as_str(), "rw" | "ro") {
        return Err(format!("invalid share access level: {}", rule.access_level));
    }
    match rule.access_type.as_str() {
        "ip" => validate_ip(&rule.access_to),
        "user" => validate_username(&rule.access_to),
        _ => Ok(()),
    }
}

/// An IPv4 or IPv6 address, or a network in CIDR notation without host bits set (Python's
/// `ipaddress.ip_network`, strict, which Manila uses).
pub(crate) fn validate_ip(access_to: &str) -> Result<(), String> {
    let (addr, prefix) = match access_to.split_once('/') {
        Some((addr, prefix)) => (addr, Some(prefix)),
        None => (access_to, None),
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("{access_to:?} is not a valid IP address or network"))?;
    let bits: u32 = if addr.is_ipv4() { 32 } else { 128 };
    let Some(prefix) = prefix else { return Ok(()) };
    let prefix: u32 = prefix
        .parse()
        .ok()
        .filter(|p| *p <= bits && prefix.bytes().all(|b| b.is_ascii_digit()))
        .ok_or_else(|| format!("{access_to:?} has an invalid prefix length"))?;
    let host_bits = match addr {
        IpAddr::V4(v4) => u128::from(u32::from(v4)) & host_mask(32, prefix),
        IpAddr::V6(v6) => u128::from(v6) & host_mask(128, prefix),
    };
    if host_bits != 0 {
        return Err(format!("{access_to:?} has host bits set"));
    }
    Ok(())
}

/// Mask of the host part of a `bits`-wide address with a `prefix`-long network part.
fn host_mask(bits: u32, prefix: u32) -> u128 {
    let host = bits - prefix;
    if host == 0 {
        0
    } else {
        u128::MAX >> (128 - host)
    }
}

/// Manila's user or group name rules: 4 to 255 characters, none of `"/\[]:;|=,+*?<>` after
/// the first, and not only periods, spaces or `|`.
pub(crate) fn validate_username(name: &str) -> Result<(), String> {
    // Manila's `[\s|\.]+$`: a name made only of these is refused.
    if !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_whitespace() || c == '.' || c == '|')
    {
        return Err(
            "invalid user or group name, cannot consist solely of periods or spaces".to_owned(),
        );
    }
    const FORBIDDEN: &[char] = &[
        '"', '/', '\\', '[', ']', ':', ';', '|', '=', ',', '+', '*', '?', '<', '>',
    ];
    let mut chars = name.chars();
    // Manila's regex starts with `.`, which admits any first character except a newline.
    let first_ok = chars.next().is_some_and(|c| c != '\n');
    let count = name.chars().count();
    if !first_ok || !(4..=255).contains(&count) || chars.any(|c| FORBIDDEN.contains(&c)) {
        return Err("invalid user or group name: it must be 4-255 characters and exclude the special characters \
                    \"/\\[]:;|=,+*?<>"
            .to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_addresses_and_networks() {
        for ok in [
            "10.0.0.1",
            "10.0.0.0/24",
            "0.0.0.0/0",
            "10.0.0.1/32",
            "2001:db8::/32",
            "::1",
            "fe80::1/128",
        ] {
            assert!(validate_ip(ok).is_ok(), "{ok}");
        }
        for bad in [
            "10.0.0.1/24",
            "10.0.0.0/33",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "10.0.0",
            "256.0.0.1",
            "host.example.com",
            "2001:db8::1/32",
            "::/129",
            "",
            " 10.0.0.1",
        ] {
            assert!(validate_ip(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn user_names() {
        for ok in [
            "alice",
            "DOMAIN-group_1",
            "user name",
            "a.b.c.d",
            &"x".repeat(255),
        ] {
            assert!(validate_username(ok).is_ok(), "{ok}");
        }
        for bad in [
            "abc",
            "domain\\group",
            "....",
            "    ",
            "a/bcd",
            "ab:cd",
            "ab*cd",
            "\nabcd",
            &"x".repeat(256),
        ] {
            assert!(validate_username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn levels() {
        let rule = |level: &str| AccessRule {
            id: "r".into(),
            access_type: "ip".into(),
            access_to: "10.0.0.1".into(),
            access_level: level.into(),
        };
        assert!(validate_rule(&rule("rw")).is_ok());
        assert!(validate_rule(&rule("ro")).is_ok());
        assert!(validate_rule(&rule("rx")).is_err());
    }
}
