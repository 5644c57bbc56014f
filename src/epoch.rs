//! The one timestamp of a build: SOURCE_DATE_EPOCH when set, else a fixed
//! constant. The wall clock never enters an unstamped image.

use crate::error::{Error, Result};

/// The time used when SOURCE_DATE_EPOCH is not set: the Unix epoch, as ko,
/// rules_oci and apko use, so images from different tools line up.
pub const DEFAULT_EPOCH: u64 = 0;

/// Reads SOURCE_DATE_EPOCH from the environment. Per the reproducible-builds
/// specification a malformed value is an error, never silently ignored.
pub fn source_date_epoch() -> Result<Option<u64>> {
    match std::env::var("SOURCE_DATE_EPOCH") {
        Ok(v) => parse(&v).map(Some),
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(std::env::VarError::NotUnicode(v)) => Err(Error::SourceDateEpoch {
            value: v.to_string_lossy().into_owned(),
            reason: "not valid UTF-8".into(),
        }),
    }
}

/// Reads a SOURCE_DATE_EPOCH value: decimal seconds since 1970-01-01 UTC,
/// digits only (no sign, no fraction, no white space), at most the last
/// second of year 9999, which is as far as tar and RFC 3339 can write.
pub fn parse(value: &str) -> Result<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::SourceDateEpoch {
            value: value.into(),
            reason: "must be a non-negative decimal number of seconds".into(),
        });
    }
    let secs: u64 = value.parse().map_err(|_| Error::SourceDateEpoch {
        value: value.into(),
        reason: "out of range".into(),
    })?;
    // Tar's octal mtime field and RFC 3339 both stop at year 9999.
    if secs > 253_402_300_799 {
        return Err(Error::SourceDateEpoch {
            value: value.into(),
            reason: "later than 9999-12-31T23:59:59Z".into(),
        });
    }
    Ok(secs)
}

/// Formats seconds since the epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Whether `s` is an RFC 3339 date-time (`2024-01-02T03:04:05Z`, with
/// optional fraction and a `Z` or `+HH:MM` offset).
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|x| x.iter().all(u8::is_ascii_digit));
    if b.len() < 20
        || !digits(0..4)
        || b[4] != b'-'
        || !digits(5..7)
        || b[7] != b'-'
        || !digits(8..10)
        || !(b[10] == b'T' || b[10] == b't')
        || !digits(11..13)
        || b[13] != b':'
        || !digits(14..16)
        || b[16] != b':'
        || !digits(17..19)
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest.as_bytes() {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit()),
        _ => false,
    }
}

// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn recognises_rfc3339() {
        for ok in [
            "2024-01-02T03:04:05Z",
            "2024-01-02T03:04:05.123+02:00",
            "1970-01-01t00:00:00z",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "2024-01-02",
            "2024-01-02 03:04:05Z",
            "2024-01-02T03:04:05",
            "2024-01-02T03:04:05.Z",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn malformed_epochs_are_errors() {
        for bad in [
            "",
            " 1",
            "1.5",
            "-1",
            "0x10",
            "1e9",
            "99999999999999999999999",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(parse("1700000000").unwrap(), 1_700_000_000);
    }
}
