//! container-structure-test configs (schemaVersion 2.0.0), parsed as that
//! tool reads them: unknown keys are refused, and so is anything that
//! could only make a test fail for a reason other than the image (a regex
//! that does not compile, an `isExecutableBy` no one is), each with the
//! file and line it is at.

use std::fmt;
use std::path::Path;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use crate::error::{Error, Result};

/// The one schema version read.
pub const SCHEMA_VERSION: &str = "2.0.0";

/// One config file, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestConfig {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: String,
    /// Set in every command test's container.
    #[serde(default, deserialize_with = "nullable")]
    pub global_env_vars: Vec<EnvVar>,
    /// Commands run in a container of the image.
    #[serde(default, deserialize_with = "nullable")]
    pub command_tests: Vec<CommandTest>,
    /// Paths that must (or must not) exist, with their mode and owners.
    #[serde(default, deserialize_with = "nullable")]
    pub file_existence_tests: Vec<FileExistenceTest>,
    /// Files whose contents must (or must not) match patterns.
    #[serde(default, deserialize_with = "nullable")]
    pub file_content_tests: Vec<FileContentTest>,
    /// What the image config must say.
    #[serde(default)]
    pub metadata_test: Option<MetadataTest>,
    /// Licence files that must not name a refused licence.
    #[serde(default, deserialize_with = "nullable")]
    pub license_tests: Vec<LicenseTest>,
    /// How command tests' containers are started.
    #[serde(default)]
    pub container_run_options: Option<ContainerRunOptions>,
}

/// A `key`/`value` pair of the environment, the value a pattern when
/// `isRegex` is set.
#[derive(Debug, Clone)]
pub struct EnvVar {
    /// The variable's name.
    pub key: String,
    /// The value expected (or set, in command tests).
    pub value: String,
    /// The value as a pattern, when `isRegex` is set.
    pub pattern: Option<Pattern>,
}

/// A label's `key`/`value`, the value a pattern when `isRegex` is set.
pub type Label = EnvVar;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawPair {
    key: String,
    #[serde(default)]
    value: String,
    #[serde(default)]
    is_regex: bool,
}

impl<'de> Deserialize<'de> for EnvVar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let raw = RawPair::deserialize(d)?;
        if raw.key.is_empty() {
            return Err(de::Error::custom("`key` cannot be empty"));
        }
        let pattern = if raw.is_regex {
            Some(Pattern::new(&raw.value).map_err(de::Error::custom)?)
        } else {
            None
        };
        Ok(EnvVar {
            key: raw.key,
            value: raw.value,
            pattern,
        })
    }
}

impl EnvVar {
    /// Whether `actual` is the value asked for (or matches its pattern).
    pub fn matches(&self, actual: &str) -> bool {
        match &self.pattern {
            Some(p) => p.is_match(actual),
            None => self.value == actual,
        }
    }
}

/// A regular expression in Go's RE2 syntax, matched anywhere in the text
/// as Go's `MatchString` does.
#[derive(Clone)]
pub struct Pattern {
    source: String,
    regex: regex::Regex,
}

impl Pattern {
    /// Compiles `source`; the error names the pattern and what is wrong.
    pub fn new(source: &str) -> std::result::Result<Pattern, String> {
        regex::Regex::new(source)
            .map(|regex| Pattern {
                source: source.to_string(),
                regex,
            })
            .map_err(|e| {
                let why = match e {
                    regex::Error::Syntax(s) => s.lines().last().unwrap_or_default().to_string(),
                    other => other.to_string(),
                };
                format!("invalid regular expression {source:?}: {why}")
            })
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the pattern matches somewhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.regex.is_match(text)
    }

    /// The line (from 1) of `text` where the first match starts.
    pub fn find_line(&self, text: &str) -> Option<usize> {
        let m = self.regex.find(text)?;
        Some(text[..m.start()].matches('\n').count() + 1)
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Pattern({:?})", self.source)
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Pattern::new(&s).map_err(de::Error::custom)
    }
}

/// `metadataTest`: what the image config must and must not say.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MetadataTest {
    /// Variables that must be set, to these values.
    #[serde(default, deserialize_with = "nullable")]
    pub env_vars: Vec<EnvVar>,
    /// Variables that must not be set (only `key` counts).
    #[serde(default, deserialize_with = "nullable")]
    pub unbound_env_vars: Vec<EnvVar>,
    /// `PORT/proto` entries that must be exposed.
    #[serde(default, deserialize_with = "nullable")]
    pub exposed_ports: Vec<String>,
    /// `PORT/proto` entries that must not be exposed.
    #[serde(default, deserialize_with = "nullable")]
    pub unexposed_ports: Vec<String>,
    /// The whole entrypoint, when given (`[]` means none).
    #[serde(default)]
    pub entrypoint: Option<Vec<String>>,
    /// The whole cmd, when given (`[]` means none).
    #[serde(default)]
    pub cmd: Option<Vec<String>>,
    /// The working directory, when not empty.
    #[serde(default)]
    pub workdir: String,
    /// Volumes that must be declared.
    #[serde(default, deserialize_with = "nullable")]
    pub volumes: Vec<String>,
    /// Volumes that must not be declared.
    #[serde(default, deserialize_with = "nullable")]
    pub unmounted_volumes: Vec<String>,
    /// Labels that must be set, to these values.
    #[serde(default, deserialize_with = "nullable")]
    pub labels: Vec<Label>,
    /// The user, when not empty.
    #[serde(default)]
    pub user: String,
}

/// Who `isExecutableBy` asks about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutableBy {
    /// Any of owner, group, other.
    Any,
    /// The owner (`0100`).
    Owner,
    /// The group (`0010`).
    Group,
    /// Everyone else (`0001`).
    Other,
}

impl ExecutableBy {
    /// The mode bits that answer the question.
    pub fn mask(self) -> u32 {
        match self {
            ExecutableBy::Any => 0o111,
            ExecutableBy::Owner => 0o100,
            ExecutableBy::Group => 0o010,
            ExecutableBy::Other => 0o001,
        }
    }

    /// The word as written in configs.
    pub fn name(self) -> &'static str {
        match self {
            ExecutableBy::Any => "any",
            ExecutableBy::Owner => "owner",
            ExecutableBy::Group => "group",
            ExecutableBy::Other => "other",
        }
    }
}

/// A `fileExistenceTests` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileExistenceTest {
    /// The test's name, shown in reports.
    pub name: String,
    /// The path in the image (`$VAR` expanded from the image's env).
    pub path: String,
    /// Whether the path must exist (the default) or must not.
    #[serde(default = "yes")]
    pub should_exist: bool,
    /// The mode as Go prints it (`-rwxr-xr-x`), when given.
    #[serde(default)]
    pub permissions: Option<String>,
    /// The owner's uid, when given.
    #[serde(default)]
    pub uid: Option<i64>,
    /// The group's gid, when given.
    #[serde(default)]
    pub gid: Option<i64>,
    /// Whose execute bit must be set, when given.
    #[serde(default)]
    pub is_executable_by: Option<ExecutableBy>,
}

fn yes() -> bool {
    true
}

/// A `fileContentTests` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct FileContentTest {
    /// The test's name, shown in reports.
    pub name: String,
    /// The file in the image (symlinks followed).
    pub path: String,
    /// Patterns that must each match somewhere in the file.
    #[serde(default, deserialize_with = "nullable")]
    pub expected_contents: Vec<Pattern>,
    /// Patterns none of which may match.
    #[serde(default, deserialize_with = "nullable")]
    pub excluded_contents: Vec<Pattern>,
}

/// A `licenseTests` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LicenseTest {
    /// Check every package's `/usr/share/doc/PKG/copyright`.
    #[serde(default)]
    pub debian: bool,
    /// Further licence files to check.
    #[serde(default, deserialize_with = "nullable")]
    pub files: Vec<String>,
}

/// A `commandTests` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommandTest {
    /// The test's name, shown in reports.
    pub name: String,
    /// Commands run (and committed) before the test's command.
    #[serde(default, deserialize_with = "nullable")]
    pub setup: Vec<Vec<String>>,
    /// Commands run after it.
    #[serde(default, deserialize_with = "nullable")]
    pub teardown: Vec<Vec<String>>,
    /// Variables set for the command.
    #[serde(default, deserialize_with = "nullable")]
    pub env_vars: Vec<EnvVar>,
    /// The exit status expected (0 by default).
    #[serde(default)]
    pub exit_code: i32,
    /// The program run.
    pub command: String,
    /// Its arguments.
    #[serde(default, deserialize_with = "nullable")]
    pub args: Vec<String>,
    /// Patterns that must match standard output.
    #[serde(default, deserialize_with = "nullable")]
    pub expected_output: Vec<Pattern>,
    /// Patterns that must not match standard output.
    #[serde(default, deserialize_with = "nullable")]
    pub excluded_output: Vec<Pattern>,
    /// Patterns that must match standard error.
    #[serde(default, deserialize_with = "nullable")]
    pub expected_error: Vec<Pattern>,
    /// Patterns that must not match standard error.
    #[serde(default, deserialize_with = "nullable")]
    pub excluded_error: Vec<Pattern>,
}

/// `containerRunOptions`: how command tests' containers start.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContainerRunOptions {
    /// `--user`.
    #[serde(default)]
    pub user: String,
    /// `--privileged`.
    #[serde(default)]
    pub privileged: bool,
    /// `--tty`.
    #[serde(default)]
    pub allocate_tty: bool,
    /// `--env` entries (`NAME=value`, or `NAME` to pass the caller's).
    #[serde(default, deserialize_with = "nullable")]
    pub env_vars: Vec<String>,
    /// `--env-file`.
    #[serde(default)]
    pub env_file: String,
    /// `--cap-add` entries.
    #[serde(default, deserialize_with = "nullable")]
    pub capabilities: Vec<String>,
    /// `--volume` entries.
    #[serde(default, deserialize_with = "nullable")]
    pub bind_mounts: Vec<String>,
}

/// A key written with no value (`envVars:`) means none, as in Go.
fn nullable<'de, D, T>(d: D) -> std::result::Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(d)?.unwrap_or_default())
}

/// A config read from a file, with the name it is reported under.
#[derive(Debug, Clone)]
pub struct LoadedConfig {
    /// The file as given.
    pub path: String,
    /// Its tests.
    pub config: TestConfig,
}

/// Reads and checks the config at `path`.
pub fn load(path: &Path) -> Result<LoadedConfig> {
    let text = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let name = path.display().to_string();
    let config = parse(&text, &name)?;
    Ok(LoadedConfig { path: name, config })
}

/// Parses a config; `name` is the file errors are reported against.
pub fn parse(text: &[u8], name: &str) -> Result<TestConfig> {
    let config: TestConfig = serde_yaml::from_slice(text).map_err(|e| yaml_error(&e, name))?;
    if config.schema_version != SCHEMA_VERSION {
        return Err(Error::format(
            name,
            format!(
                "schemaVersion {:?} is not supported (only {SCHEMA_VERSION:?})",
                config.schema_version
            ),
        ));
    }
    let names = config
        .file_existence_tests
        .iter()
        .map(|t| (&t.name, &t.path))
        .chain(config.file_content_tests.iter().map(|t| (&t.name, &t.path)));
    for (test, path) in names {
        if test.is_empty() {
            return Err(Error::format(name, "every test needs a non-empty `name`"));
        }
        if path.is_empty() {
            return Err(Error::format(name, format!("test {test:?} needs a `path`")));
        }
    }
    for t in &config.command_tests {
        if t.name.is_empty() || t.command.is_empty() {
            return Err(Error::format(
                name,
                "every command test needs a non-empty `name` and `command`",
            ));
        }
    }
    for t in &config.file_existence_tests {
        if let Some(p) = &t.permissions {
            if !valid_mode_string(p) {
                return Err(Error::format(
                    name,
                    format!(
                        "test {:?}: permissions {p:?} are not a mode as Go prints one \
                         (such as -rwxr-xr-x or drwxr-xr-x)",
                        t.name
                    ),
                ));
            }
        }
    }
    Ok(config)
}

/// Whether `s` could be what Go's `FileMode.String` prints: type letters
/// (or `-`) then nine `rwx-` places.
fn valid_mode_string(s: &str) -> bool {
    let Some(perm) = s.get(s.len().saturating_sub(9)..) else {
        return false;
    };
    let kind = &s[..s.len() - perm.len()];
    perm.len() == 9
        && perm
            .chars()
            .zip("rwxrwxrwx".chars())
            .all(|(c, want)| c == want || c == '-')
        && (kind == "-" || (!kind.is_empty() && kind.chars().all(|c| "dalTLDpSugct?".contains(c))))
}

/// serde_yaml's message with its location, without the value it quotes
/// for a value of the wrong type (configs may sit beside secrets).
fn yaml_error(e: &serde_yaml::Error, name: &str) -> Error {
    let text = e.to_string();
    let message = match text.split_once(" at line ") {
        Some((m, _)) => m.to_string(),
        None => text.clone(),
    };
    let wrong = ["invalid type", "invalid value"]
        .iter()
        .find_map(|w| message.find(w));
    let message = match wrong {
        Some(i) => {
            let expected = message
                .rsplit_once(", expected ")
                .map(|(_, x)| format!(" (expected {x})"))
                .unwrap_or_default();
            format!("{}a value of the wrong type{expected}", &message[..i])
        }
        None => message,
    };
    let at = match e.location() {
        Some(l) => format!("{name}:{}:{}", l.line(), l.column()),
        None => name.to_string(),
    };
    Error::format(at, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        parse(text.as_bytes(), "t.yaml").unwrap_err().to_string()
    }

    #[test]
    fn unknown_keys_are_refused_with_their_line() {
        let e = err(
            "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: a\n    path: /a\n    owner: 1\n",
        );
        assert!(e.starts_with("t.yaml:5:"), "{e}");
        assert!(e.contains("unknown field `owner`"), "{e}");
    }

    #[test]
    fn bad_regexes_are_refused_with_their_line() {
        let e = err("schemaVersion: 2.0.0\nfileContentTests:\n  - name: a\n    path: /a\n    expectedContents: ['a(']\n");
        assert!(e.starts_with("t.yaml:5:"), "{e}");
        assert!(e.contains("invalid regular expression \"a(\""), "{e}");
    }

    #[test]
    fn env_regexes_are_checked_only_when_is_regex() {
        parse(
            b"schemaVersion: 2.0.0\nmetadataTest:\n  envVars:\n    - key: A\n      value: 'a('\n",
            "t",
        )
        .unwrap();
        let e = err("schemaVersion: 2.0.0\nmetadataTest:\n  envVars:\n    - key: A\n      value: 'a('\n      isRegex: true\n");
        assert!(e.contains("t.yaml:4:"), "{e}");
    }

    #[test]
    fn wrong_types_do_not_quote_the_value() {
        let e = err("schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: a\n    path: /a\n    uid: hunter2\n");
        assert!(!e.contains("hunter2"), "{e}");
        assert!(e.starts_with("t.yaml:5:"), "{e}");
    }

    #[test]
    fn other_schema_versions_are_refused() {
        assert!(err("schemaVersion: 1.0.0\n").contains("not supported"));
    }

    #[test]
    fn go_mode_strings_are_recognised() {
        for ok in [
            "-rwxr-xr-x",
            "drwxr-xr-x",
            "Lrwxrwxrwx",
            "urwxr-xr-x",
            "dtrwxrwxrwx",
            "Dcrw-rw-rw-",
        ] {
            assert!(valid_mode_string(ok), "{ok}");
        }
        for bad in ["rwxr-xr-x", "0755", "-rwxr-xr-xx", "xrwxr-xr-x", ""] {
            assert!(!valid_mode_string(bad), "{bad}");
        }
    }

    #[test]
    fn file_existence_defaults_as_cst() {
        let c = parse(
            b"schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: a\n    path: /a\n",
            "t",
        )
        .unwrap();
        let t = &c.file_existence_tests[0];
        assert!(t.should_exist && t.uid.is_none() && t.gid.is_none());
    }
}
