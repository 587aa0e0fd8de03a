//! Manila renders timestamps as naive UTC with microseconds and no zone suffix
//! (`2015-09-18T10:25:24.533287`); this module is the one place that format lives.

use chrono::{DateTime, SecondsFormat, Utc};

/// Formats a UTC instant the way Manila's views do.
pub fn manila_timestamp(at: DateTime<Utc>) -> String {
    at.naive_utc().format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// Formats an optional instant; `None` stays `None` (rendered as JSON `null`).
pub fn manila_timestamp_opt(at: Option<DateTime<Utc>>) -> Option<String> {
    at.map(manila_timestamp)
}

/// RFC 3339 with a `Z`, as Keystone and the versions document use.
pub fn iso8601_z(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn renders_microseconds_without_zone() {
        let at = Utc.with_ymd_and_hms(2026, 1, 1, 10, 0, 0).unwrap();
        assert_eq!(manila_timestamp(at), "2026-01-01T10:00:00.000000");
        assert_eq!(iso8601_z(at), "2026-01-01T10:00:00Z");
    }
}
