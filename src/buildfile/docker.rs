//! Docker's config fields that only Docker's runtime reads: `healthcheck`,
//! `shell`, `onbuild`. Durations are checked here, where their declaration
//! is known, so a typo is an error at its line rather than a config Docker
//! later refuses.

use toml::Spanned;

use super::raw::RawHealthcheck;
use super::validate::Cx;
use crate::error::Result;

/// A declared `healthcheck`, as Docker's `Healthcheck` object holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Healthcheck {
    /// `["NONE"]` (disables an inherited check), `["CMD", prog, args...]` or
    /// `["CMD-SHELL", command]`.
    pub test: Vec<String>,
    /// Time between checks, in nanoseconds (Docker's `time.Duration`).
    pub interval: Option<u64>,
    /// How long one check may run, in nanoseconds.
    pub timeout: Option<u64>,
    /// Start-up time during which failures do not count, in nanoseconds.
    pub start_period: Option<u64>,
    /// Time between checks during the start period, in nanoseconds.
    pub start_interval: Option<u64>,
    /// Consecutive failures that make the container unhealthy.
    pub retries: Option<u32>,
}

impl Healthcheck {
    /// The object as Docker writes it: PascalCase keys, durations as
    /// integer nanoseconds, unset values left out (Go's `omitempty`).
    pub fn to_json(&self) -> serde_json::Value {
        let mut m = serde_json::Map::new();
        m.insert("Test".into(), serde_json::json!(self.test));
        for (key, value) in [
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
            ("Retries", self.retries.map(u64::from)),
        ] {
            if let Some(v) = value.filter(|v| *v != 0) {
                m.insert(key.into(), serde_json::json!(v));
            }
        }
        serde_json::Value::Object(m)
    }
}

/// The units Go's `time.ParseDuration` accepts, in nanoseconds.
const UNITS: [(&str, u64); 7] = [
    ("ns", 1),
    ("us", 1_000),
    ("µs", 1_000),
    ("ms", 1_000_000),
    ("s", 1_000_000_000),
    ("m", 60_000_000_000),
    ("h", 3_600_000_000_000),
];

/// `"30s"`, `"1m30s"`, `"500ms"`, `"1.5s"` → nanoseconds. A number without
/// a unit is refused: Docker's own flags would read `30` as nanoseconds,
/// which is never what was meant.
pub fn parse_duration(text: &str) -> std::result::Result<u64, String> {
    let bad = |why: &str| {
        format!(
            "duration {text:?} {why} (expected numbers with units ns, us, ms, s, m, h, \
             such as \"30s\", \"1m30s\" or \"500ms\")"
        )
    };
    if text.is_empty() {
        return Err(bad("is empty"));
    }
    let mut rest = text;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let digits = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(digits);
        let (whole, frac) = number.split_once('.').unwrap_or((number, ""));
        if whole.is_empty() && frac.is_empty() || frac.contains('.') {
            return Err(bad("has a malformed number"));
        }
        let Some((unit, scale)) = UNITS
            .iter()
            .filter(|(u, _)| after.starts_with(u))
            .max_by_key(|(u, _)| u.len())
        else {
            return Err(bad("needs a unit after each number"));
        };
        let whole: u128 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| bad("is too long"))?
        };
        let mut part = whole.checked_mul(u128::from(*scale));
        // Digits of the fraction beyond the unit's nanoseconds are dropped,
        // as Go does.
        let mut place = u128::from(*scale);
        for d in frac.bytes() {
            place /= 10;
            part = part.map(|p| p + u128::from(d - b'0') * place);
        }
        total = part
            .and_then(|p| total.checked_add(p))
            .ok_or_else(|| bad("is too long"))?;
        rest = &after[unit.len()..];
    }
    u64::try_from(total)
        .ok()
        .filter(|t| *t <= i64::MAX as u64)
        .ok_or_else(|| bad("is too long"))
}

impl Cx<'_> {
    /// `healthcheck`, checked: a known test form, durations of at least a
    /// millisecond (Docker refuses shorter ones when a container starts),
    /// and nothing but the test beside `NONE`.
    pub(super) fn healthcheck(
        &self,
        path: &str,
        raw: &Spanned<RawHealthcheck>,
    ) -> Result<Healthcheck> {
        let path = format!("{path}.healthcheck");
        let h = raw.get_ref();
        let test_loc = self.loc(h.test.span(), &format!("{path}.test"));
        let test = h.test.get_ref().clone();
        match test.first().map(String::as_str) {
            Some("NONE") if test.len() == 1 => {
                let others = [&h.interval, &h.timeout, &h.start_period, &h.start_interval];
                if others.iter().any(|o| o.is_some()) || h.retries.is_some() {
                    return Err(self.err(
                        &self.loc(raw.span(), &path),
                        "`test = [\"NONE\"]` disables the check; it takes no other settings",
                    ));
                }
            }
            Some("CMD") if test.len() >= 2 => {}
            Some("CMD-SHELL") if test.len() == 2 => {}
            _ => {
                return Err(self.err(
                    &test_loc,
                    "`test` must be [\"NONE\"], [\"CMD\", program, args...] or \
                     [\"CMD-SHELL\", command]",
                ))
            }
        }
        let duration = |d: &Option<Spanned<String>>, key: &str| -> Result<Option<u64>> {
            let Some(d) = d else { return Ok(None) };
            let loc = self.loc(d.span(), &format!("{path}.{key}"));
            let ns = parse_duration(d.get_ref()).map_err(|m| self.err(&loc, m))?;
            if ns < 1_000_000 {
                return Err(self.err(
                    &loc,
                    format!("{key} {:?} must be at least 1ms", d.get_ref()),
                ));
            }
            Ok(Some(ns))
        };
        let retries = match &h.retries {
            Some(r) => {
                let v = *r.get_ref();
                let loc = self.loc(r.span(), &format!("{path}.retries"));
                Some(
                    u32::try_from(v)
                        .ok()
                        .filter(|v| *v <= i32::MAX as u32)
                        .ok_or_else(|| {
                            self.err(&loc, format!("retries {v} must be a count, 0 or more"))
                        })?,
                )
            }
            None => None,
        };
        Ok(Healthcheck {
            test,
            interval: duration(&h.interval, "interval")?,
            timeout: duration(&h.timeout, "timeout")?,
            start_period: duration(&h.start_period, "start_period")?,
            start_interval: duration(&h.start_interval, "start_interval")?,
            retries,
        })
    }

    /// `onbuild`: Dockerfile instructions, each refused where Docker would
    /// refuse it as a trigger.
    pub(super) fn onbuild(
        &self,
        path: &str,
        raw: Option<&Spanned<Vec<String>>>,
    ) -> Result<Option<Vec<String>>> {
        let Some(raw) = raw else { return Ok(None) };
        for trigger in raw.get_ref() {
            let word = trigger.split_whitespace().next().unwrap_or_default();
            let why = match word.to_ascii_uppercase().as_str() {
                "" => "is empty",
                "ONBUILD" | "FROM" | "MAINTAINER" => {
                    "is an instruction Docker refuses as a trigger"
                }
                _ => continue,
            };
            return Err(self.err(
                &self.loc(raw.span(), &format!("{path}.onbuild")),
                format!("trigger {trigger:?} {why}"),
            ));
        }
        Ok(Some(raw.get_ref().clone()))
    }

    /// `shell`: a program and its first arguments, never empty.
    pub(super) fn shell(
        &self,
        path: &str,
        raw: Option<&Spanned<Vec<String>>>,
    ) -> Result<Option<Vec<String>>> {
        let Some(raw) = raw else { return Ok(None) };
        if raw.get_ref().is_empty() {
            return Err(self.err(
                &self.loc(raw.span(), &format!("{path}.shell")),
                "`shell` is empty; give the program and its flags, such as [\"/bin/sh\", \"-c\"]",
            ));
        }
        Ok(Some(raw.get_ref().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::parse_duration;

    #[test]
    fn durations_are_nanoseconds_as_docker_writes_them() {
        assert_eq!(parse_duration("30s"), Ok(30_000_000_000));
        assert_eq!(parse_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(parse_duration("500ms"), Ok(500_000_000));
        assert_eq!(parse_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000_000_000));
        assert_eq!(parse_duration("10us"), Ok(10_000));
        assert_eq!(parse_duration(".5m"), Ok(30_000_000_000));
    }

    #[test]
    fn malformed_durations_are_refused() {
        for bad in [
            "",
            "30",
            "s",
            "1x",
            "1..5s",
            "1m30",
            "-1s",
            "99999999999999h",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad:?} accepted");
        }
    }
}
