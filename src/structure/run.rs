//! The checks of every test kind that reads the image itself (config and
//! file system), with container-structure-test's semantics and wording.

use std::time::Instant;

use super::config::{FileContentTest, FileExistenceTest, LicenseTest, MetadataTest};
use super::image::{mode_string, stat, ImageUnderTest};
use super::report::{TestKind, TestResult};
use crate::config::ContainerConfig;
use crate::error::Result;
use crate::rootfs::Kind;

/// Where Debian packages keep their copyright files.
pub const DEBIAN_DOC: &str = "/usr/share/doc";

/// Packages whose licence file is passed whatever it says, as
/// container-structure-test does.
const LICENSE_ALLOWED: &[&str] = &["libgnutls30"];

/// Words that fail a licence file that holds them (upper-cased).
const LICENSE_REFUSED: &[&str] = &["AGPL", "WTFPL"];

/// `$VAR` and `${VAR}` in `s` replaced from `env`, as Go's `os.Expand`
/// does (an unknown variable is empty, a lone `$` at the end stays).
pub fn expand(s: &str, env: &[(String, String)]) -> String {
    let lookup = |k: &str| {
        env.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let b = s.as_bytes();
    let mut out = String::new();
    let mut i = 0;
    let mut start = 0;
    while i < b.len() {
        if b[i] == b'$' && i + 1 < b.len() {
            out.push_str(&s[start..i]);
            let (name, width) = shell_name(&s[i + 1..]);
            if name.is_empty() && width == 0 {
                out.push('$');
            } else if !name.is_empty() {
                out.push_str(&lookup(name));
            }
            i += 1 + width;
            start = i;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[start..]);
    out
}

fn shell_name(s: &str) -> (&str, usize) {
    let b = s.as_bytes();
    let special = |c: u8| b"*#$@!?-".contains(&c) || c.is_ascii_digit();
    if b[0] == b'{' {
        if b.len() > 2 && special(b[1]) && b[2] == b'}' {
            return (&s[1..2], 3);
        }
        return match s[1..].find('}') {
            Some(0) => ("", 2),
            Some(n) => (&s[1..1 + n], n + 2),
            None => ("", 1),
        };
    }
    if special(b[0]) {
        return (&s[..1], 1);
    }
    let n = b
        .iter()
        .take_while(|c| c.is_ascii_alphanumeric() || **c == b'_')
        .count();
    (&s[..n], n)
}

/// Words in a variable's name that mark its value as a secret.
const SECRET_WORDS: &[&str] = &[
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "TOKEN",
    "KEY",
    "CREDENTIAL",
    "AUTH",
];

/// An environment value as a failure shows it: masked when the variable's
/// name says it holds a secret, since reports end up in CI logs.
fn shown<'v>(key: &str, value: &'v str) -> &'v str {
    let upper = key.to_uppercase();
    if SECRET_WORDS.iter().any(|w| upper.contains(w)) {
        "***"
    } else {
        value
    }
}

/// Go's `%v` of a list of strings.
fn go_list(v: &[String]) -> String {
    format!("[{}]", v.join(" "))
}

/// Whether a metadata test asks anything (an empty one is not run).
pub fn metadata_is_empty(t: &MetadataTest) -> bool {
    t.env_vars.is_empty()
        && t.unbound_env_vars.is_empty()
        && t.exposed_ports.is_empty()
        && t.unexposed_ports.is_empty()
        && t.entrypoint.is_none()
        && t.cmd.is_none()
        && t.workdir.is_empty()
        && t.user.is_empty()
        && t.volumes.is_empty()
        && t.unmounted_volumes.is_empty()
        && t.labels.is_empty()
}

/// Checks the image config against `t`.
pub fn metadata(t: &MetadataTest, image: &ImageUnderTest<'_>) -> TestResult {
    let started = Instant::now();
    let mut r = TestResult::new(TestKind::Metadata, "");
    let c = &image.config;
    let env = image.env();
    let find = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v);
    for want in &t.env_vars {
        match find(&want.key) {
            Some(v) if want.matches(v) => {}
            Some(v) => r.fail(format!(
                "env var {} value {} does not match expected value: {}",
                want.key,
                shown(&want.key, v),
                want.value
            )),
            None => r.fail(format!("variable {} not found in image env", want.key)),
        }
    }
    for not in &t.unbound_env_vars {
        if find(&not.key).is_some() {
            r.fail(format!(
                "env variable {} should not be present in image metadata",
                not.key
            ));
        }
    }
    let labels = c.labels.clone().unwrap_or_default();
    for want in &t.labels {
        match labels.get(&want.key) {
            Some(v) if want.matches(v) => {}
            Some(v) => r.fail(format!(
                "label {} value {v} does not match expected value: {}",
                want.key, want.value
            )),
            None => r.fail(format!("label {} not found in image metadata", want.key)),
        }
    }
    let actual_cmd = c.cmd.clone().unwrap_or_default();
    if let Some(cmd) = &t.cmd {
        if *cmd != actual_cmd {
            r.fail(format!(
                "Image Cmd {} does not match expected Cmd: {}",
                go_list(&actual_cmd),
                go_list(cmd)
            ));
        }
    }
    let actual_ep = c.entrypoint.clone().unwrap_or_default();
    if let Some(ep) = &t.entrypoint {
        if *ep != actual_ep {
            r.fail(format!(
                "Image entrypoint {} does not match expected entrypoint: {}",
                go_list(&actual_ep),
                go_list(ep)
            ));
        }
    }
    let workdir = c.working_dir.clone().unwrap_or_default();
    if !t.workdir.is_empty() && t.workdir != workdir {
        r.fail(format!(
            "Image workdir {workdir} does not match config workdir: {}",
            t.workdir
        ));
    }
    let user = c.user.clone().unwrap_or_default();
    if !t.user.is_empty() && t.user != user {
        r.fail(format!(
            "Image user {user} does not match config user: {}",
            t.user
        ));
    }
    ports_and_volumes(t, c, &mut r);
    r.duration = started.elapsed();
    r
}

/// The `exposedPorts`, `unexposedPorts`, `volumes` and `unmountedVolumes`
/// checks of a metadata test.
fn ports_and_volumes(t: &MetadataTest, c: &ContainerConfig, r: &mut TestResult) {
    // container-structure-test compares ports without their protocol.
    let ports: Vec<&str> = c
        .exposed_ports
        .iter()
        .flatten()
        .map(|(p, _)| p.split('/').next().unwrap_or(p))
        .collect();
    for p in &t.exposed_ports {
        if !ports.contains(&p.as_str()) {
            r.fail(format!("Port {p} not found in config"));
        }
    }
    for p in &t.unexposed_ports {
        if ports.contains(&p.as_str()) {
            r.fail(format!("Port {p} should not be exposed"));
        }
    }
    let volumes: Vec<&String> = c.volumes.iter().flatten().map(|(v, _)| v).collect();
    for v in &t.volumes {
        if !volumes.contains(&v) {
            r.fail(format!("Volume {v} not found in config"));
        }
    }
    for v in &t.unmounted_volumes {
        if volumes.contains(&v) {
            r.fail(format!("Volume {v} should not be mounted"));
        }
    }
}

/// Checks that a path exists (or not) with the mode and owners asked for.
pub fn file_existence(t: &FileExistenceTest, image: &ImageUnderTest<'_>) -> TestResult {
    let started = Instant::now();
    let mut r = TestResult::new(TestKind::FileExistence, &t.name);
    let path = expand(&t.path, &image.env());
    let node = image.lstat(&path);
    match (node, t.should_exist) {
        (None, true) => r.fail(format!(
            "Error examining file in container: File {path} not found in image"
        )),
        (Some(_), false) => r.fail(format!("File {} should not exist but does", t.path)),
        _ => {}
    }
    if let Some(node) = node {
        let (kind, mode, uid, gid) = stat(node);
        let shown = mode_string(kind, mode);
        if let Some(p) = &t.permissions {
            if shown != *p {
                r.fail(format!(
                    "{} has incorrect permissions. Expected: {p}, Actual: {shown}",
                    t.path
                ));
            }
        }
        if let Some(who) = t.is_executable_by {
            if mode & who.mask() == 0 {
                r.fail(format!(
                    "{} has incorrect executable bit. Expected to be executable by {}, Actual: {shown}",
                    t.path,
                    who.name()
                ));
            }
        }
        // -1 is container-structure-test's "not asked".
        if let Some(want) = t.uid.filter(|u| *u != -1) {
            if want != uid as i64 {
                r.fail(format!(
                    "{} has incorrect user ownership. Expected: {want}, Actual: {uid}",
                    t.path
                ));
            }
        }
        if let Some(want) = t.gid.filter(|g| *g != -1) {
            if want != gid as i64 {
                r.fail(format!(
                    "{} has incorrect group ownership. Expected: {want}, Actual: {gid}",
                    t.path
                ));
            }
        }
    }
    r.duration = started.elapsed();
    r
}

/// Checks a file's contents against the patterns. The failures name the
/// pattern and where it matched, never the file's bytes.
pub fn file_content(t: &FileContentTest, image: &ImageUnderTest<'_>) -> Result<TestResult> {
    let started = Instant::now();
    let mut r = TestResult::new(TestKind::FileContent, &t.name);
    match image.read(&t.path)? {
        Err(why) => r.fail(format!("Failed to open {}. Error: {why}", t.path)),
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            for p in &t.expected_contents {
                if !p.is_match(&text) {
                    r.fail(format!(
                        "Expected string '{}' not found in {} ({} bytes)",
                        p.as_str(),
                        t.path,
                        bytes.len()
                    ));
                }
            }
            for p in &t.excluded_contents {
                if let Some(at) = p.find_line(&text) {
                    r.fail(format!(
                        "Excluded string '{}' found in {} at line {at}",
                        p.as_str(),
                        t.path
                    ));
                }
            }
        }
    }
    r.duration = started.elapsed();
    Ok(r)
}

/// Checks licence files for refused licences: with `debian`, every
/// package directory under [`DEBIAN_DOC`] must have a `copyright` file.
pub fn license(t: &LicenseTest, image: &ImageUnderTest<'_>) -> Result<TestResult> {
    let started = Instant::now();
    let mut r = TestResult::new(TestKind::License, "");
    let mut files: Vec<String> = Vec::new();
    if t.debian {
        match image.fs.resolve(DEBIAN_DOC) {
            Some(dir) if dir.entry.kind == Kind::Dir => {
                let prefix = format!("{}/", dir.entry.path);
                let packages: Vec<String> = image
                    .fs
                    .iter()
                    .filter(|n| n.entry.kind == Kind::Dir)
                    .filter_map(|n| n.entry.path.strip_prefix(&prefix))
                    .filter(|rest| !rest.contains('/'))
                    .map(str::to_string)
                    .collect();
                for p in packages {
                    if LICENSE_ALLOWED.contains(&p.as_str()) {
                        continue;
                    }
                    let file = format!("{DEBIAN_DOC}/{p}/copyright");
                    if image.lstat(&file).is_none() {
                        r.fail(format!(
                            "Error reading license file for {p}: File {file} not found in image"
                        ));
                    }
                    files.push(file);
                }
            }
            _ => r.fail(format!(
                "Error reading directory: {DEBIAN_DOC} is not a directory of the image"
            )),
        }
    }
    files.extend(t.files.iter().cloned());
    for file in &files {
        match image.read(file)? {
            Err(why) => r.fail(format!("Error reading license file for {file}: {why}")),
            Ok(bytes) => {
                let upper = String::from_utf8_lossy(&bytes).to_uppercase();
                for word in LICENSE_REFUSED {
                    if upper.contains(word) {
                        r.fail(format!(
                            "Invalid license for {file}, license contains {word}"
                        ));
                    }
                }
            }
        }
    }
    r.duration = started.elapsed();
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Vec<(String, String)> {
        vec![("HOME".into(), "/root".into()), ("A_1".into(), "x".into())]
    }

    #[test]
    fn secret_looking_env_values_are_masked() {
        assert_eq!(shown("DB_PASSWORD", "hunter2"), "***");
        assert_eq!(shown("api_token", "abc"), "***");
        assert_eq!(shown("APP_MODE", "production"), "production");
    }

    #[test]
    fn paths_expand_as_go_os_expand() {
        assert_eq!(expand("$HOME/.profile", &env()), "/root/.profile");
        assert_eq!(expand("${HOME}x", &env()), "/rootx");
        assert_eq!(expand("/a/$A_1/$NOPE/b", &env()), "/a/x//b");
        assert_eq!(expand("/a$", &env()), "/a$");
        assert_eq!(expand("/a/${}/b", &env()), "/a//b");
        assert_eq!(expand("/a/$/b", &env()), "/a/$/b");
    }
}
