//! Secrets kept out of messages: the password of a `user:password@`
//! prefix in text given as a reference. A leaf module, so the error type
//! can mask what it displays without depending on the reference parser.

use std::borrow::Cow;

/// `s` with the password of a `user:password@` prefix (or a lone
/// `token@`) replaced by `***`. Every message that quotes text given as a
/// reference goes through this (`Error::InvalidReference` does it when
/// displayed), so a password pasted into `-t`, `base` or `pull` never reaches
/// a terminal or a CI log.
pub fn mask_userinfo(s: &str) -> Cow<'_, str> {
    let Some((start, at)) = userinfo_end(s) else {
        return Cow::Borrowed(s);
    };
    let user = match s[start..at].split_once(':') {
        Some((user, _)) => format!("{user}:"),
        None => String::new(),
    };
    Cow::Owned(format!("{}{user}***{}", &s[..start], &s[at..]))
}

/// Where the credentials of a `[scheme://]user[:password]@host...` prefix
/// start and end (the byte offset of the `@`). The `@` of a digest
/// (`name@sha256:...`) is not one; of several other `@`s the last counts,
/// so a password holding `@` is masked whole.
pub(crate) fn userinfo_end(s: &str) -> Option<(usize, usize)> {
    let start = match s.find("://") {
        Some(i) if !s[..i].contains(['/', '@']) => i + 3,
        _ => 0,
    };
    let at = s[start..]
        .match_indices('@')
        .map(|(i, _)| start + i)
        .rfind(|&i| !looks_like_digest(&s[i + 1..]))?;
    let info = &s[start..at];
    let user = info.split_once(':').map_or(info, |(u, _)| u);
    // `path/x@...` is a (bad) path, not a user name; and a lone word before
    // an `@` is a token only when a host follows (`x@` is a bad digest).
    let host_follows = s[at + 1..].contains(['.', '/']);
    if user.contains('/') || (!info.contains(':') && !host_follows) {
        return None;
    }
    Some((start, at))
}

/// `algorithm:encoded` with no `/`, where `encoded` is not a port number
/// (so `host:5000` is a host, `sha256:abc` or `sha256:000…0` a digest,
/// valid or not).
fn looks_like_digest(s: &str) -> bool {
    match s.split_once(':') {
        Some((alg, enc)) => {
            !s.contains('/')
                && !alg.is_empty()
                && alg
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+._-".contains(&b))
                && !enc.is_empty()
                && !is_port(enc)
        }
        None => false,
    }
}

fn is_port(s: &str) -> bool {
    s.len() <= 5 && s.bytes().all(|b| b.is_ascii_digit())
}
