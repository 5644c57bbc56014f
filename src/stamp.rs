//! Release stamping: `{{KEY}}` templates in tags, labels, annotations, env
//! values and the image's `created` time, filled from git, the clock, status
//! files and the command line — but only when a build asks to be stamped.
//!
//! Unstamped builds take every value from the build file (or from fixed
//! placeholders), never from git, the clock or status files, so they stay
//! reproducible and cacheable. Stamping only ever changes the config, the
//! manifest and the tags: layers never see a stamp value.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;

use crate::error::{Error, Result};

/// Keys gantry provides itself.
pub const BUILTINS: [&str; 7] = [
    "BUILD_TIMESTAMP",
    "GIT_COMMIT",
    "GIT_SHORT_COMMIT",
    "GIT_BRANCH",
    "GIT_TAG",
    "GIT_DESCRIBE",
    "GIT_DIRTY",
];

/// What an unstamped build puts where a git built-in is used: visibly not a
/// real value, and a valid tag, so `repo:{{GIT_SHORT_COMMIT}}` still builds.
pub const UNSTAMPED_PLACEHOLDER: &str = "unstamped";

/// The largest value a `[stamp]` definition may expand to. Definitions
/// can refer to each other, so a few lines could otherwise ask for more
/// memory than any machine has (`K1 = "{{K0}}{{K0}}"` and so on).
pub const MAX_VALUE: usize = 64 * 1024;

/// The `[stamp]` table of a build file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StampSpec {
    /// `KEY = "template"`: keys built from other keys.
    pub defs: BTreeMap<String, String>,
    /// `[stamp.unstamped]`: the values used when not stamping.
    pub unstamped: BTreeMap<String, String>,
    /// Where each definition is written (`file:line:column`), for errors
    /// found when it is evaluated.
    pub locations: BTreeMap<String, String>,
}

/// Where stamp values come from in a stamped build, lowest precedence first
/// after the built-ins and the build file's definitions.
#[derive(Debug, Clone, Default)]
pub struct StampSources {
    /// Bazel-style status files: `KEY value` per line.
    pub status_files: Vec<PathBuf>,
    /// `KEY=VALUE` from the command line; they win over everything.
    pub vars: Vec<(String, String)>,
}

/// The values of one build. Literal values (built-ins, `[stamp.unstamped]`,
/// status files, variables) are known at once; definitions are checked
/// when the build starts (syntax, unknown keys, cycles) but evaluated only
/// when something the build writes uses them, once each.
#[derive(Debug)]
pub struct Stamp {
    /// The build asked to be stamped (values from git, the clock, status
    /// files and variables); false for a reproducible, unstamped build.
    pub stamped: bool,
    values: BTreeMap<String, String>,
    /// The definitions in force (not replaced by a literal value).
    defs: BTreeMap<String, String>,
    locations: BTreeMap<String, String>,
    evaluated: Mutex<BTreeMap<String, String>>,
    /// The source repository URL (credentials removed), for the standard
    /// annotation; empty when unstamped or unknown.
    pub source_url: String,
}

impl Stamp {
    /// Values for an unstamped build: `[stamp.unstamped]`, then definitions
    /// expanded over those, then fixed placeholders. `epoch` is the build's
    /// one timestamp (SOURCE_DATE_EPOCH or the default), so BUILD_TIMESTAMP
    /// is as reproducible as everything else.
    pub fn unstamped(spec: &StampSpec, epoch: u64) -> Result<Stamp> {
        let mut base: BTreeMap<String, String> = BUILTINS
            .iter()
            .map(|k| (k.to_string(), UNSTAMPED_PLACEHOLDER.to_string()))
            .collect();
        base.insert("BUILD_TIMESTAMP".into(), epoch.to_string());
        base.insert("GIT_DIRTY".into(), "false".into());
        for (k, v) in &spec.unstamped {
            if is_template(v) {
                return Err(Error::BuildFile {
                    location: format!("[stamp.unstamped] {k}"),
                    message: "unstamped values are literal, not templates".into(),
                });
            }
        }
        // An unstamped value replaces a definition of the same key.
        Stamp::new(false, base, spec.unstamped.clone(), spec, String::new())
    }

    /// Values for a stamped build: built-ins from git (run in `dir`) and the
    /// clock (or SOURCE_DATE_EPOCH), then definitions, status files and
    /// `--stamp-var`s, later ones winning.
    pub fn stamped(
        spec: &StampSpec,
        sources: &StampSources,
        dir: &Path,
        source_date_epoch: Option<u64>,
    ) -> Result<Stamp> {
        let now = source_date_epoch.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs())
        });
        let git = GitInfo::read(dir);
        let mut base = BTreeMap::new();
        base.insert("BUILD_TIMESTAMP".to_string(), now.to_string());
        base.insert("GIT_COMMIT".into(), git.commit);
        base.insert("GIT_SHORT_COMMIT".into(), git.short_commit);
        base.insert("GIT_BRANCH".into(), git.branch);
        base.insert("GIT_TAG".into(), git.tag);
        base.insert("GIT_DESCRIBE".into(), git.describe);
        base.insert("GIT_DIRTY".into(), git.dirty);

        let mut overrides = BTreeMap::new();
        for file in &sources.status_files {
            overrides.extend(read_status_file(file)?);
        }
        for (k, v) in &sources.vars {
            check_key(k).map_err(|m| Error::Usage(format!("--stamp-var {k}={v}: {m}")))?;
            overrides.insert(k.clone(), v.clone());
        }
        // A definition overridden by a status file or a variable is not used.
        Stamp::new(true, base, overrides, spec, git.remote_url)
    }

    /// Definitions win over `builtins`, and `winners` over definitions.
    fn new(
        stamped: bool,
        builtins: BTreeMap<String, String>,
        winners: BTreeMap<String, String>,
        spec: &StampSpec,
        source_url: String,
    ) -> Result<Stamp> {
        let defs: BTreeMap<String, String> = spec
            .defs
            .iter()
            .filter(|(k, _)| !winners.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut values = builtins;
        values.retain(|k, _| !defs.contains_key(k));
        values.extend(winners);
        check_defs(&defs, &values)?;
        Ok(Stamp {
            stamped,
            values,
            defs,
            locations: spec.locations.clone(),
            evaluated: Mutex::new(BTreeMap::new()),
            source_url,
        })
    }

    /// The value of `key`, evaluating its definition (and those it uses)
    /// the first time it is asked for; `None` for a key nothing defines.
    pub fn get(&self, key: &str) -> Result<Option<String>> {
        if !self.defs.contains_key(key) {
            return Ok(self.values.get(key).cloned());
        }
        let mut done = self.evaluated.lock().expect("stamp values");
        self.evaluate(key, &mut done)?;
        Ok(done.get(key).cloned())
    }

    /// Evaluates `key`'s definition after the definitions it uses,
    /// depth-first without recursion (definitions were checked to form no
    /// cycle).
    fn evaluate(&self, key: &str, done: &mut BTreeMap<String, String>) -> Result<()> {
        let mut stack = vec![(key.to_string(), false)];
        while let Some((k, deps_done)) = stack.pop() {
            if done.contains_key(&k) {
                continue;
            }
            let template = &self.defs[&k];
            let location = format!("[stamp] {k}");
            if !deps_done {
                stack.push((k.clone(), true));
                for r in template_keys(template, &location)? {
                    if self.defs.contains_key(&r) && !done.contains_key(&r) {
                        stack.push((r, false));
                    }
                }
                continue;
            }
            let too_big = || {
                let message = format!(
                    "[stamp] {k}: its value is more than {MAX_VALUE} bytes (64 KiB), \
                     the most a stamp value may hold"
                );
                match self.locations.get(&k) {
                    Some(at) => Error::BuildFile {
                        location: at.clone(),
                        message,
                    },
                    None => Error::Usage(message),
                }
            };
            let value = expand_with(
                template,
                &|r| Ok(done.get(r).or_else(|| self.values.get(r)).cloned()),
                &location,
                DEF_HINT,
                Some(&too_big),
            )?;
            done.insert(k, value);
        }
        Ok(())
    }

    /// Expands every `{{KEY}}` / `{{KEY|filter}}` in `template`. `location`
    /// names where the template is used, for errors.
    pub fn expand(&self, template: &str, location: &str) -> Result<String> {
        expand_with(template, &|k| self.get(k), location, &self.hint(), None)
    }

    /// Like [`Stamp::expand`], passing each substituted value through
    /// `escape` (the template's own text is left as written).
    pub fn expand_escaped(
        &self,
        template: &str,
        location: &str,
        escape: &dyn Fn(&str) -> String,
    ) -> Result<String> {
        expand_with(
            template,
            &|k| Ok(self.get(k)?.map(|v| escape(&v))),
            location,
            &self.hint(),
            None,
        )
    }

    fn hint(&self) -> String {
        let known: BTreeSet<&str> = self
            .values
            .keys()
            .chain(self.defs.keys())
            .map(String::as_str)
            .collect();
        let known: Vec<&str> = known.into_iter().collect();
        let mut h = format!("known keys: {}", known.join(", "));
        if !self.stamped {
            h.push_str(
                "; a key that only status files or --stamp-var provide needs a \
                 [stamp.unstamped] value for unstamped builds",
            );
        }
        h
    }
}

const DEF_HINT: &str =
    "a [stamp] definition may use built-in keys, status-file keys and other [stamp] keys";

/// Checks the definitions without evaluating any: each parses, uses only
/// keys that exist, and none depends on itself.
fn check_defs(defs: &BTreeMap<String, String>, values: &BTreeMap<String, String>) -> Result<()> {
    let mut uses: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (k, template) in defs {
        let location = format!("[stamp] {k}");
        let keys = template_keys(template, &location)?;
        if let Some(r) = keys
            .iter()
            .find(|r| !defs.contains_key(*r) && !values.contains_key(*r))
        {
            return Err(Error::BuildFile {
                location,
                message: format!("unknown stamp key {r:?} in {template:?} ({DEF_HINT})"),
            });
        }
        uses.insert(k, keys);
    }
    // 1: on the current path, 2: finished.
    let mut state: BTreeMap<&str, u8> = BTreeMap::new();
    for root in defs.keys() {
        if state.contains_key(root.as_str()) {
            continue;
        }
        state.insert(root, 1);
        let mut path: Vec<(&str, usize)> = vec![(root, 0)];
        while let Some(&(k, i)) = path.last() {
            let Some(r) = uses[k].get(i) else {
                state.insert(k, 2);
                path.pop();
                continue;
            };
            path.last_mut().expect("not empty").1 += 1;
            let Some((r, _)) = defs.get_key_value(r) else {
                continue;
            };
            match state.get(r.as_str()) {
                Some(1) => {
                    let from = path.iter().position(|(p, _)| *p == r).unwrap_or(0);
                    let mut names: Vec<&str> = path[from..].iter().map(|(p, _)| *p).collect();
                    names.push(r);
                    return Err(Error::BuildFile {
                        location: "[stamp]".into(),
                        message: format!("definitions form a cycle: {}", names.join(" -> ")),
                    });
                }
                Some(_) => {}
                None => {
                    state.insert(r, 1);
                    path.push((r, 0));
                }
            }
        }
    }
    Ok(())
}

/// The keys a template refers to, in the order written (repeats kept);
/// an error, naming `location`, when the template is malformed.
pub fn template_keys(template: &str, location: &str) -> Result<Vec<String>> {
    let mut keys = Vec::new();
    for part in parse(template, location)? {
        if let Part::Key { key, .. } = part {
            keys.push(key.to_string());
        }
    }
    Ok(keys)
}

/// Whether a string holds any template (a `{{`), malformed or not: a
/// cheap test that lets plain values skip expansion.
pub fn is_template(s: &str) -> bool {
    s.contains("{{")
}

enum Part<'a> {
    Text(&'a str),
    Key { key: &'a str, filters: Vec<&'a str> },
}

fn parse<'a>(template: &'a str, location: &str) -> Result<Vec<Part<'a>>> {
    let bad = |msg: String| Error::Usage(format!("{location}: template {template:?}: {msg}"));
    let mut parts = Vec::new();
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        if start > 0 {
            parts.push(Part::Text(&rest[..start]));
        }
        let after = &rest[start + 2..];
        let end = after
            .find("}}")
            .ok_or_else(|| bad("`{{` without a closing `}}`".into()))?;
        let inner = &after[..end];
        let mut pieces = inner.split('|').map(str::trim);
        let key = pieces.next().unwrap_or("");
        check_key(key).map_err(bad)?;
        let filters: Vec<&str> = pieces.collect();
        for f in &filters {
            if !FILTERS.contains(f) {
                return Err(bad(format!(
                    "unknown filter {f:?} (filters: {})",
                    FILTERS.join(", ")
                )));
            }
        }
        parts.push(Part::Key { key, filters });
        rest = &after[end + 2..];
    }
    if rest.contains("}}") {
        return Err(bad("`}}` without an opening `{{`".into()));
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest));
    }
    Ok(parts)
}

/// `tag` makes a value usable as an image tag; `lower` lowercases it (for
/// repository paths).
pub const FILTERS: [&str; 2] = ["tag", "lower"];

fn apply_filter(filter: &str, v: String) -> String {
    match filter {
        "lower" => v.to_lowercase(),
        "tag" => sanitize_tag(&v),
        _ => unreachable!("filters are checked when parsed"),
    }
}

/// Makes any string a valid tag (`[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`): every
/// other character becomes `-`, a leading `.` or `-` becomes `_`, and the
/// result is cut to 128 characters. `feature/login` becomes `feature-login`.
pub fn sanitize_tag(v: &str) -> String {
    let mut out: String = v
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                c
            } else {
                '-'
            }
        })
        .take(128)
        .collect();
    if out.starts_with(['.', '-']) {
        out.replace_range(..1, "_");
    }
    if out.is_empty() {
        out.push('_');
    }
    out
}

/// `too_big`, when given, is the error for an expansion longer than
/// [`MAX_VALUE`]; it is raised before the text is built, so no more than
/// that is ever held.
fn expand_with(
    template: &str,
    lookup: &dyn Fn(&str) -> Result<Option<String>>,
    location: &str,
    hint: &str,
    too_big: Option<&dyn Fn() -> Error>,
) -> Result<String> {
    let mut out = String::with_capacity(template.len().min(MAX_VALUE));
    let push = |out: &mut String, piece: &str| -> Result<()> {
        if let Some(too_big) = too_big {
            if out.len() + piece.len() > MAX_VALUE {
                return Err(too_big());
            }
        }
        out.push_str(piece);
        Ok(())
    };
    for part in parse(template, location)? {
        match part {
            Part::Text(t) => push(&mut out, t)?,
            Part::Key { key, filters } => {
                let mut v = lookup(key)?.ok_or_else(|| {
                    Error::Usage(format!(
                        "{location}: unknown stamp key {key:?} in {template:?} ({hint})"
                    ))
                })?;
                for f in filters {
                    v = apply_filter(f, v);
                }
                push(&mut out, &v)?;
            }
        }
    }
    Ok(out)
}

fn check_key(key: &str) -> std::result::Result<(), String> {
    let mut b = key.bytes();
    let ok = matches!(b.next(), Some(c) if c.is_ascii_uppercase() || c == b'_')
        && b.all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == b'_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "stamp key {key:?} must be upper-case letters, digits and '_' (e.g. VERSION)"
        ))
    }
}

/// Checks a `[stamp]` key name (upper-case letters, digits and `_`, not
/// starting with a digit), for the build-file parser; the error is the rule.
pub fn validate_key(key: &str) -> std::result::Result<(), String> {
    check_key(key)
}

/// Reads a status file as Bazel's `--workspace_status_command` writes it:
/// `KEY value` per line, the value being the rest of the line.
pub fn read_status_file(path: &Path) -> Result<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
    let mut out = BTreeMap::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        check_key(key).map_err(|m| Error::BuildFile {
            location: format!("{}:{}", path.display(), i + 1),
            message: format!("status line {line:?}: {m}"),
        })?;
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

/// Parses `KEY=VALUE` from the command line, splitting at the first `=`
/// (the value may hold more) and checking the key.
pub fn parse_var(s: &str) -> std::result::Result<(String, String), String> {
    let (k, v) = s
        .split_once('=')
        .ok_or_else(|| format!("{s:?} is not KEY=VALUE"))?;
    check_key(k)?;
    Ok((k.to_string(), v.to_string()))
}

#[derive(Debug, Default)]
struct GitInfo {
    commit: String,
    short_commit: String,
    branch: String,
    tag: String,
    describe: String,
    dirty: String,
    remote_url: String,
}

impl GitInfo {
    /// Outside a checkout (or without git) every value is empty: stamping a
    /// build from a source tarball is not an error.
    fn read(dir: &Path) -> GitInfo {
        let git = |args: &[&str]| -> String {
            Command::new("git")
                .arg("-C")
                .arg(dir)
                .args(args)
                .env("GIT_OPTIONAL_LOCKS", "0")
                .output()
                .ok()
                .filter(|o| o.status.success())
                .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
                .unwrap_or_default()
        };
        let commit = git(&["rev-parse", "HEAD"]);
        if commit.is_empty() {
            return GitInfo::default();
        }
        let dirty = if git(&["status", "--porcelain", "--untracked-files=no"]).is_empty() {
            "false"
        } else {
            "true"
        };
        GitInfo {
            short_commit: git(&["rev-parse", "--short=12", "HEAD"]),
            branch: git(&["symbolic-ref", "--short", "-q", "HEAD"]),
            tag: git(&["describe", "--tags", "--exact-match"]),
            describe: git(&["describe", "--tags", "--always", "--dirty"]),
            dirty: dirty.into(),
            remote_url: strip_userinfo(&git(&["remote", "get-url", "origin"])),
            commit,
        }
    }
}

/// Removes `user:password@` from a URL: remotes often embed a token, and it
/// must never reach an image.
pub fn strip_userinfo(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
        return format!("{scheme}://{host}{path}");
    }
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(defs: &[(&str, &str)], unstamped: &[(&str, &str)]) -> StampSpec {
        StampSpec {
            defs: defs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            unstamped: unstamped
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            locations: BTreeMap::new(),
        }
    }

    /// `K0 = "xxxxxxxx"`, `K1 = "{{K0}}{{K0}}"`, ... `K40`: 2^43 bytes if
    /// evaluated.
    fn doubling() -> StampSpec {
        let mut defs = vec![("K0".to_string(), "x".repeat(8))];
        for i in 1..=40 {
            defs.push((
                format!("K{i}"),
                format!("{{{{K{}}}}}{{{{K{}}}}}", i - 1, i - 1),
            ));
        }
        let mut s = StampSpec {
            defs: defs.into_iter().collect(),
            ..StampSpec::default()
        };
        s.locations
            .insert("K14".into(), "gantry.toml:16:1 (stamp.K14)".into());
        s
    }

    #[test]
    fn definitions_are_evaluated_only_when_used_and_are_bounded() {
        for stamped in [false, true] {
            let s = if stamped {
                Stamp::stamped(
                    &doubling(),
                    &StampSources::default(),
                    Path::new("/"),
                    Some(0),
                )
            } else {
                Stamp::unstamped(&doubling(), 0)
            }
            .unwrap();
            assert_eq!(s.get("K3").unwrap().map(|v| v.len()), Some(64));
            assert_eq!(s.expand("{{K13}}", "t").unwrap().len(), MAX_VALUE);
            // 8 << 14 bytes is 128 KiB.
            let e = s
                .expand("a{{K20}}", "image.a.labels.x")
                .unwrap_err()
                .to_string();
            assert!(
                e.contains("gantry.toml:16:1") && e.contains("[stamp] K14") && e.contains("65536"),
                "{e}"
            );
            let e = s.get("K40").unwrap_err().to_string();
            assert!(e.contains("K14"), "{e}");
        }
    }

    #[test]
    fn unstamped_values_come_from_the_build_file_only() {
        let s = Stamp::unstamped(
            &spec(
                &[
                    ("VERSION", "{{GIT_TAG}}"),
                    ("FULL", "v{{VERSION}}-{{GIT_SHORT_COMMIT}}"),
                ],
                &[("VERSION", "0.0.0-dev")],
            ),
            0,
        )
        .unwrap();
        assert_eq!(s.get("VERSION").unwrap().as_deref(), Some("0.0.0-dev"));
        assert_eq!(
            s.get("FULL").unwrap().as_deref(),
            Some("v0.0.0-dev-unstamped")
        );
        assert_eq!(s.get("BUILD_TIMESTAMP").unwrap().as_deref(), Some("0"));
        assert_eq!(s.expand("x:{{ GIT_COMMIT }}", "t").unwrap(), "x:unstamped");
    }

    #[test]
    fn later_sources_win() {
        let dir = tempfile::tempdir().unwrap();
        let status = dir.path().join("stable-status.txt");
        std::fs::write(&status, "VERSION 2.0.0\nSTABLE_USER alice smith\n\n").unwrap();
        let sources = StampSources {
            status_files: vec![status],
            vars: vec![("STABLE_USER".into(), "bob".into())],
        };
        let s = Stamp::stamped(
            &spec(
                &[
                    ("VERSION", "{{GIT_TAG}}"),
                    ("LABEL", "{{VERSION}}/{{STABLE_USER}}"),
                ],
                &[],
            ),
            &sources,
            dir.path(),
            Some(1_700_000_000),
        )
        .unwrap();
        assert_eq!(
            s.get("VERSION").unwrap().as_deref(),
            Some("2.0.0"),
            "status file beats definition"
        );
        assert_eq!(
            s.get("STABLE_USER").unwrap().as_deref(),
            Some("bob"),
            "--stamp-var beats status file"
        );
        assert_eq!(s.get("LABEL").unwrap().as_deref(), Some("2.0.0/bob"));
        assert_eq!(
            s.get("BUILD_TIMESTAMP").unwrap().as_deref(),
            Some("1700000000")
        );
        assert_eq!(
            s.get("GIT_COMMIT").unwrap().as_deref(),
            Some(""),
            "outside git: empty, not an error"
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_where_it_is_used() {
        let s = Stamp::unstamped(&StampSpec::default(), 0).unwrap();
        let e = s
            .expand("{{NOPE}}", "image.worker.tags[0]")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("image.worker.tags[0]") && e.contains("\"NOPE\""),
            "{e}"
        );
    }

    #[test]
    fn definition_cycles_are_errors() {
        let e = Stamp::unstamped(&spec(&[("A", "{{B}}"), ("B", "{{A}}")], &[]), 0)
            .unwrap_err()
            .to_string();
        assert!(e.contains("cycle"), "{e}");
    }

    #[test]
    fn malformed_templates_are_errors() {
        let s = Stamp::unstamped(&StampSpec::default(), 0).unwrap();
        for t in [
            "{{GIT_TAG",
            "x}}",
            "{{git_tag}}",
            "{{GIT_TAG|upper}}",
            "{{}}",
        ] {
            assert!(s.expand(t, "here").is_err(), "{t:?} accepted");
        }
    }

    #[test]
    fn tag_filter_makes_valid_tags() {
        assert_eq!(sanitize_tag("feature/login"), "feature-login");
        assert_eq!(sanitize_tag(".hidden"), "_hidden");
        assert_eq!(sanitize_tag(""), "_");
        assert_eq!(sanitize_tag(&"a".repeat(200)).len(), 128);
        let s = Stamp::stamped(
            &StampSpec::default(),
            &StampSources {
                status_files: vec![],
                vars: vec![("BRANCH".into(), "Feature/Ünïcode".into())],
            },
            Path::new("/"),
            Some(0),
        )
        .unwrap();
        assert_eq!(s.expand("{{BRANCH|tag}}", "t").unwrap(), "Feature--n-code");
        assert_eq!(
            s.expand("{{BRANCH|tag|lower}}", "t").unwrap(),
            "feature--n-code"
        );
    }

    #[test]
    fn credentials_are_stripped_from_remote_urls() {
        assert_eq!(
            strip_userinfo("https://user:ghp_secret@github.com/acme/repo.git"),
            "https://github.com/acme/repo.git"
        );
        assert_eq!(
            strip_userinfo("git@github.com:acme/repo.git"),
            "git@github.com:acme/repo.git"
        );
    }

    #[test]
    fn status_files_refuse_malformed_lines() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("s.txt");
        std::fs::write(&p, "GOOD 1\nbad key\n").unwrap();
        let e = read_status_file(&p).unwrap_err().to_string();
        assert!(e.contains("s.txt:2"), "{e}");
    }
}
