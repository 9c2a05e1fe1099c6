//! Times on the JSON wire are RFC 3339 (PROTOCOL.md §12.5.5): written in UTC with a `Z` and
//! whole seconds, read with any offset and with a fraction of a second dropped.

use crate::types::Timestamp;
use ::time::OffsetDateTime;
use ::time::format_description::well_known::Rfc3339;

/// The earliest and latest instants RFC 3339 can write (years 0000 and 9999).
const EARLIEST: &str = "0000-01-01T00:00:00Z";
const LATEST: &str = "9999-12-31T23:59:59Z";

/// `time` as RFC 3339 UTC. A time outside years 0–9999 (settable only through the bincode
/// wire) is written as the nearest one RFC 3339 can express.
pub fn format(time: Timestamp) -> String {
    let formatted = OffsetDateTime::from_unix_timestamp(time.unix())
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok());
    match formatted {
        Some(text) => text,
        None if time.unix() < 0 => EARLIEST.to_owned(),
        None => LATEST.to_owned(),
    }
}

/// Parses an RFC 3339 time; `None` when `text` is not one.
pub fn parse(text: &str) -> Option<Timestamp> {
    let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
    Some(Timestamp::from_unix(parsed.unix_timestamp()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_in_utc_with_whole_seconds() {
        let t = Timestamp::from_unix(1_900_000_000);
        assert_eq!(format(t), "2030-03-17T17:46:40Z");
        assert_eq!(parse("2030-03-17T17:46:40Z"), Some(t));
        assert_eq!(parse("2030-03-17T19:46:40+02:00"), Some(t));
        assert_eq!(parse("2030-03-17T17:46:40.999Z"), Some(t));
        assert_eq!(format(Timestamp::from_unix(0)), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn out_of_range_times_are_clamped_and_garbage_is_refused() {
        assert_eq!(format(Timestamp::from_unix(i64::MAX)), LATEST);
        assert_eq!(format(Timestamp::from_unix(i64::MIN)), EARLIEST);
        for bad in [
            "",
            "2030-03-17",
            "1900000000",
            "2030-03-17 17:46:40",
            "tomorrow",
        ] {
            assert_eq!(parse(bad), None, "{bad:?}");
        }
    }
}
