//! Stamp templates of an image's settings filled in: tags, `created`,
//! env, labels and annotations, and `${NAME}` in env values.

use std::collections::BTreeMap;

use crate::buildfile::{ImageSpec, Templated};
use crate::epoch;
use crate::error::{Error, Result};
use crate::reference::{mask_userinfo, Reference};
use crate::stamp::Stamp;

/// The image's settings with every stamp template filled in.
pub(super) struct Expanded {
    pub(super) created: String,
    /// The standard OCI annotations of a stamped build (empty otherwise).
    pub(super) standard_annotations: BTreeMap<String, String>,
    pub(super) env: BTreeMap<String, String>,
    pub(super) labels: BTreeMap<String, String>,
    pub(super) annotations: BTreeMap<String, String>,
    pub(super) tags: Vec<Reference>,
}

pub(super) fn expand_spec(spec: &ImageSpec, stamp: &Stamp) -> Result<Expanded> {
    let map = |what: &str, m: &BTreeMap<String, String>| -> Result<BTreeMap<String, String>> {
        m.iter()
            .map(|(k, v)| {
                let at = format!("{} (image.{}.{what}.{k:?})", spec.location, spec.name);
                let value = if what == "env" {
                    // Env values go through `${NAME}` expansion afterwards;
                    // a stamp value must arrive there as literal text.
                    stamp.expand_escaped(v, &at, &|s| s.replace('$', "$$"))?
                } else {
                    stamp.expand(v, &at)?
                };
                Ok((k.clone(), value))
            })
            .collect()
    };
    let created = match &spec.created {
        Some(t) => parse_created(&stamp.expand(&t.text, &t.location)?, &t.location)?,
        None => {
            let secs = stamp.get("BUILD_TIMESTAMP")?.unwrap_or_else(|| "0".into());
            parse_created(&secs, &spec.location)?
        }
    };
    let mut tags = Vec::new();
    for t in &spec.tags {
        tags.push(match &t.reference {
            Some(r) => r.clone(),
            None => expand_tag(stamp, &t.template)?,
        });
    }
    let mut values = Expanded {
        created,
        standard_annotations: BTreeMap::new(),
        env: map("env", &spec.env)?,
        labels: map("labels", &spec.labels)?,
        annotations: map("annotations", &spec.annotations)?,
        tags,
    };
    if stamp.stamped {
        values.standard_annotations = standard_annotations(stamp, &values)?;
    }
    Ok(values)
}

/// Expands a templated tag. The name and the tag part are expanded apart,
/// so a value can only ever fill the part it stands in: a branch named
/// `1234/fix` must not turn `app:{{GIT_BRANCH}}` into registry `app:1234`.
fn expand_tag(stamp: &Stamp, t: &Templated) -> Result<Reference> {
    let refuse = |text: &str, e: String| Error::BuildFile {
        location: t.location.clone(),
        message: if text == t.text {
            e
        } else {
            format!(
                "tag {:?} expands to {:?}, which is not a valid tag: {e} \
                 (`{{{{KEY|tag}}}}` makes any value a valid tag)",
                mask_userinfo(&t.text),
                mask_userinfo(text)
            )
        },
    };
    // The tag separator is the last `:` after the last `/`, outside templates.
    let split = tag_separator(&t.text);
    let text = match split {
        Some(i) => {
            let name = stamp.expand(&t.text[..i], &t.location)?;
            let tag = stamp.expand(&t.text[i + 1..], &t.location)?;
            let text = format!("{name}:{tag}");
            crate::reference::validate_tag(&tag).map_err(|e| refuse(&text, e))?;
            text
        }
        None => stamp.expand(&t.text, &t.location)?,
    };
    let r = Reference::parse_tagged(&text).map_err(|e| {
        if text == t.text {
            Error::declaration(&t.location, "not a valid tag", e)
        } else {
            Error::declaration(
                &t.location,
                format!(
                    "tag {:?} expands to {:?}, which is not a valid tag \
                     (`{{{{KEY|tag}}}}` makes any value a valid tag)",
                    mask_userinfo(&t.text),
                    mask_userinfo(&text)
                ),
                e,
            )
        }
    })?;
    if split.is_some() && r.tag.is_none() {
        return Err(refuse(&text, "the tag part is missing".into()));
    }
    Ok(r)
}

/// Byte offset of the `:` that separates name and tag in a (templated) tag
/// reference, ignoring anything inside `{{ }}`.
fn tag_separator(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut sep = None;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"{{") {
            depth += 1;
            i += 2;
            continue;
        }
        if b[i..].starts_with(b"}}") && depth > 0 {
            depth -= 1;
            i += 2;
            continue;
        }
        if depth == 0 {
            match b[i] {
                b'/' => sep = None,
                b':' => sep = Some(i),
                b'@' => return sep,
                _ => {}
            }
        }
        i += 1;
    }
    sep
}

/// `created` as written: seconds since 1970, or an RFC 3339 UTC time.
fn parse_created(text: &str, location: &str) -> Result<String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs = epoch::parse(text)
            .map_err(|e| Error::declaration(location, format!("created {text:?}"), e))?;
        return Ok(epoch::rfc3339(secs));
    }
    if epoch::is_rfc3339(text) {
        return Ok(text.to_string());
    }
    Err(Error::BuildFile {
        location: location.to_string(),
        message: format!(
            "created {text:?} must be seconds since 1970 or an RFC 3339 time like 2024-01-02T03:04:05Z"
        ),
    })
}

/// The OCI annotations a release image should carry, from the stamp; the
/// build file's own annotations win over these.
fn standard_annotations(stamp: &Stamp, values: &Expanded) -> Result<BTreeMap<String, String>> {
    let mut a = BTreeMap::new();
    let version = match stamp.get("VERSION")?.filter(|v| !v.is_empty()) {
        Some(v) => v,
        None => stamp.get("GIT_DESCRIBE")?.unwrap_or_default(),
    };
    let commit = stamp.get("GIT_COMMIT")?.unwrap_or_default();
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            a.insert(format!("org.opencontainers.image.{k}"), v.to_string());
        }
    };
    put("version", &version);
    put("revision", &commit);
    put("created", &values.created);
    let source = values
        .labels
        .get("org.opencontainers.image.source")
        .cloned()
        .unwrap_or_else(|| stamp.source_url.clone());
    put("source", &source);
    Ok(a)
}

/// Expands `${NAME}` from `env` (`K=V` items); an unset name expands to the
/// empty string, as in a Dockerfile. `$$` is a literal `$`.
pub fn expand(value: &str, env: &[String]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find_map(|e| e.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            .unwrap_or("")
            .to_string()
    };
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            match r.find('}') {
                Some(end) => {
                    out.push_str(&lookup(&r[..end]));
                    rest = &r[end + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_from_base_env_only() {
        let env = vec!["PATH=/usr/bin:/bin".to_string(), "A=1".to_string()];
        assert_eq!(expand("/app/bin:${PATH}", &env), "/app/bin:/usr/bin:/bin");
        assert_eq!(expand("${MISSING}x", &env), "x");
        assert_eq!(expand("$$A $A ${A", &env), "$A $A ${A");
    }
}
