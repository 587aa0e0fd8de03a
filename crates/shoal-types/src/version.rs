//! Manila API microversions (`X-OpenStack-Manila-API-Version`).
//!
//! Manila parses the header with the regex `^([1-9]\d*)\.([1-9]\d*|0)$` and accepts versions
//! between [`ApiVersion::MIN`] and [`ApiVersion::MAX`]; anything malformed is a 400 and anything
//! well-formed but out of range is a 406 (`manila/api/openstack/api_version_request.py`).

use std::fmt;

/// A Manila API microversion such as `2.56`. Ordered by (major, minor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ApiVersion {
    /// Major number; only 2 is served.
    pub major: u32,
    /// Minor number.
    pub minor: u32,
}

/// Why a version header was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VersionError {
    /// Not of the form `MajorNum.MinorNum` (Manila answers 400).
    #[error("API Version String {0} is of invalid format. Must be of format MajorNum.MinorNum.")]
    InvalidFormat(String),
    /// Well-formed but outside the served range (Manila answers 406). Carries the version
    /// as requested: a well-formed number may be too large for [`ApiVersion`] (Manila's
    /// Python ints have no limit, so `2.4294967296` is out of range there, not malformed).
    #[error(
        "Version {0} is not supported by the API. Minimum is {min} and maximum is {max}.",
        min = ApiVersion::MIN,
        max = ApiVersion::MAX
    )]
    NotSupported(String),
}

impl ApiVersion {
    /// Lowest version served; also the version of a request without the header.
    pub const MIN: ApiVersion = ApiVersion::new(2, 0);
    /// Highest version served (Manila 23 / master).
    pub const MAX: ApiVersion = ApiVersion::new(2, 99);
    /// Share replicas leave the experimental API at this version.
    pub const REPLICATION_GA: ApiVersion = ApiVersion::new(2, 56);

    /// Builds a version from its parts.
    pub const fn new(major: u32, minor: u32) -> Self {
        Self { major, minor }
    }

    /// Parses a header value without range checking. Follows Manila's regex exactly: no
    /// leading zeros (except a lone `0` minor), no sign, no whitespace, no `latest`.
    /// A number too large for `u32` is refused as malformed here; [`Self::parse_supported`]
    /// reports it as out of range, as Manila does.
    pub fn parse(text: &str) -> Result<Self, VersionError> {
        let invalid = || VersionError::InvalidFormat(text.to_owned());
        let (major, minor) = Self::well_formed(text).ok_or_else(invalid)?;
        let major = major.parse().map_err(|_| invalid())?;
        let minor = minor.parse().map_err(|_| invalid())?;
        Ok(Self::new(major, minor))
    }

    /// The major and minor digits when `text` matches Manila's regex.
    fn well_formed(text: &str) -> Option<(&str, &str)> {
        let (major, minor) = text.split_once('.')?;
        let number = |part: &str, zero_ok: bool| {
            let digits_only = !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
            let leading_zero = part.len() > 1 && part.starts_with('0');
            let is_zero = part == "0";
            digits_only && !leading_zero && (zero_ok || !is_zero)
        };
        (number(major, false) && number(minor, true)).then_some((major, minor))
    }

    /// Parses and checks the served range: the full header rule of Manila.
    pub fn parse_supported(text: &str) -> Result<Self, VersionError> {
        let not_supported = || VersionError::NotSupported(text.to_owned());
        if Self::well_formed(text).is_none() {
            return Err(VersionError::InvalidFormat(text.to_owned()));
        }
        // Well-formed digits that overflow u32 are far above the maximum.
        let version = Self::parse(text).map_err(|_| not_supported())?;
        if version < Self::MIN || version > Self::MAX {
            return Err(not_supported());
        }
        Ok(version)
    }

    /// True when this version is at least `major.minor`.
    pub fn at_least(self, major: u32, minor: u32) -> bool {
        self >= Self::new(major, minor)
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_valid_versions() {
        assert_eq!(ApiVersion::parse("2.0"), Ok(ApiVersion::new(2, 0)));
        assert_eq!(ApiVersion::parse("2.56"), Ok(ApiVersion::new(2, 56)));
        assert_eq!(ApiVersion::parse("2.100"), Ok(ApiVersion::new(2, 100)));
        assert_eq!(ApiVersion::parse("10.10"), Ok(ApiVersion::new(10, 10)));
    }

    #[test]
    fn rejects_malformed_versions() {
        for bad in [
            "latest", "2", "v2.1", "2.05", "02.1", "0.1", "2.", ".5", "2.5.1", " 2.5", "2.5 ",
            "+2.5", "2.-1", "", "2.1a", "２.1",
        ] {
            assert_eq!(
                ApiVersion::parse(bad),
                Err(VersionError::InvalidFormat(bad.to_owned())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn range_check_gives_manila_message() {
        let err = ApiVersion::parse_supported("2.100").unwrap_err();
        assert_eq!(
            err.to_string(),
            "Version 2.100 is not supported by the API. Minimum is 2.0 and maximum is 2.99."
        );
        assert!(matches!(
            ApiVersion::parse_supported("1.0"),
            Err(VersionError::NotSupported(_))
        ));
        assert!(matches!(
            ApiVersion::parse_supported("3.0"),
            Err(VersionError::NotSupported(_))
        ));
        assert_eq!(
            ApiVersion::parse_supported("latest")
                .unwrap_err()
                .to_string(),
            "API Version String latest is of invalid format. Must be of format MajorNum.MinorNum."
        );
    }

    #[test]
    fn test_reproduce_huge_version_is_out_of_range_not_malformed() {
        // Found by the microversion proptest: Manila reads `2.4294967296` with Python ints,
        // so it is well-formed and out of range (406), not malformed (400).
        for huge in [
            "2.4294967296",
            "99999999999999999999.1",
            "2.99999999999999999999",
        ] {
            assert_eq!(
                ApiVersion::parse_supported(huge),
                Err(VersionError::NotSupported(huge.to_owned())),
                "{huge}"
            );
        }
        assert_eq!(
            ApiVersion::parse_supported("2.4294967296")
                .unwrap_err()
                .to_string(),
            "Version 2.4294967296 is not supported by the API. Minimum is 2.0 and maximum is 2.99."
        );
    }

    #[test]
    fn ordering_is_numeric() {
        assert!(ApiVersion::new(2, 9) < ApiVersion::new(2, 10));
        assert!(ApiVersion::new(2, 56).at_least(2, 11));
        assert!(!ApiVersion::new(2, 10).at_least(2, 11));
    }
}
