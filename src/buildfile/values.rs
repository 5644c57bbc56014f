//! Parsers for the small values a build file holds: modes, owners, paths,
//! ports and names. Each returns the rule broken, for the caller to locate.

use super::Owner;

pub(super) fn valid_image_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b))
}

/// `"0755"`, `"755"` or `"4755"`: octal digits as a string, so that TOML's
/// decimal integers (`mode = 755`) cannot silently mean 0o1363.
pub fn parse_mode(v: &toml::Value, key: &str) -> std::result::Result<u32, String> {
    let s = match v {
        toml::Value::String(s) => s,
        other => {
            return Err(format!(
                "malformed {key} {other}: write it as a string of octal digits, e.g. \"0755\""
            ))
        }
    };
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| (b'0'..=b'7').contains(&b)) {
        return Err(format!(
            "malformed {key} {s:?}: expected up to four octal digits, e.g. \"0755\""
        ));
    }
    let m = u32::from_str_radix(s, 8).expect("checked octal digits");
    if m > 0o7777 {
        return Err(format!("malformed {key} {s:?}: larger than 07777"));
    }
    Ok(m)
}

pub(super) fn parse_owner(s: &str) -> std::result::Result<(u64, u64), String> {
    let bad = || format!("owner {s:?} must be numeric \"UID:GID\" (names go in `uname`/`gname`)");
    let (u, g) = s.split_once(':').ok_or_else(bad)?;
    let num = |x: &str| -> std::result::Result<u64, String> {
        if x.is_empty() || !x.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        // Linux ids are 32-bit; tar can hold more, but nothing could use it.
        x.parse::<u32>().map(u64::from).map_err(|_| bad())
    };
    Ok((num(u)?, num(g)?))
}

pub(super) fn check_owner_names(o: &Owner) -> std::result::Result<(), String> {
    for (k, v) in [("uname", &o.uname), ("gname", &o.gname)] {
        if v.bytes().any(|b| b == 0 || b == b'\n') {
            return Err(format!("{k} {v:?} must not contain NUL or newline"));
        }
    }
    Ok(())
}

/// Normalises a destination to an absolute path without `.`/`..`/duplicate
/// slashes or a trailing slash (`""` is the root). Relative destinations are
/// taken from `/`. A path that climbs above `/` is refused: it would let a
/// layer write outside the image's root.
pub fn normalize_dst(dst: &str) -> std::result::Result<String, String> {
    if dst.is_empty() {
        return Err("destination path is empty".into());
    }
    if dst.bytes().any(|b| b == 0) {
        return Err(format!("destination {dst:?} contains a NUL byte"));
    }
    let mut parts: Vec<&str> = Vec::new();
    for c in dst.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.pop().is_none() {
                    return Err(format!("destination {dst:?} escapes the image root `/`"));
                }
            }
            c => parts.push(c),
        }
    }
    Ok(parts.join("/"))
}

/// `"8080"` → `"8080/tcp"`; protocol must be tcp, udp or sctp.
pub(super) fn normalize_port(p: &str) -> std::result::Result<String, String> {
    let (num, proto) = p.split_once('/').unwrap_or((p, "tcp"));
    let n: u32 = num
        .parse()
        .map_err(|_| format!("exposed port {p:?} must be PORT[/tcp|udp|sctp]"))?;
    if !(1..=65535).contains(&n) || num.starts_with('0') {
        return Err(format!("exposed port {p:?}: port must be 1 to 65535"));
    }
    if !["tcp", "udp", "sctp"].contains(&proto) {
        return Err(format!(
            "exposed port {p:?}: protocol must be tcp, udp or sctp"
        ));
    }
    Ok(format!("{n}/{proto}"))
}
