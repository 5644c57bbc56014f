//! The build file as written: the serde schema, strict about unknown keys.

use std::collections::BTreeMap;

use serde::Deserialize;
use toml::Spanned;

// ---------------------------------------------------------------------------
// The file as written.

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawFile {
    #[serde(default)]
    pub(super) image: BTreeMap<String, Spanned<RawImage>>,
    pub(super) stamp: Option<Spanned<RawStamp>>,
    #[serde(default)]
    pub(super) cache_from: Vec<Spanned<String>>,
}

/// `[stamp]`: every key but `unstamped` defines a stamp key.
#[derive(Debug, Deserialize)]
pub(super) struct RawStamp {
    #[serde(default)]
    pub(super) unstamped: BTreeMap<String, String>,
    #[serde(flatten)]
    pub(super) defs: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawImage {
    pub(super) base: Spanned<String>,
    pub(super) platform: Option<Spanned<String>>,
    pub(super) platforms: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    pub(super) overrides: BTreeMap<String, Spanned<RawOverride>>,
    pub(super) entrypoint: Option<Vec<String>>,
    pub(super) cmd: Option<Vec<String>>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    pub(super) user: Option<String>,
    pub(super) workdir: Option<String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) exposed_ports: Vec<Spanned<String>>,
    #[serde(default)]
    pub(super) volumes: Vec<Spanned<String>>,
    pub(super) stop_signal: Option<String>,
    pub(super) healthcheck: Option<Spanned<RawHealthcheck>>,
    pub(super) shell: Option<Spanned<Vec<String>>>,
    pub(super) onbuild: Option<Spanned<Vec<String>>>,
    pub(super) created: Option<Spanned<String>>,
    #[serde(default)]
    pub(super) tags: Vec<Spanned<String>>,
    pub(super) compression: Option<Spanned<String>>,
    pub(super) compression_level: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) layer: Vec<Spanned<RawLayer>>,
    #[serde(default)]
    pub(super) tests: Vec<Spanned<String>>,
    pub(super) sbom: Option<bool>,
    pub(super) accounts: Option<Spanned<RawAccounts>>,
}

/// `[image.NAME.accounts]`: users and groups added to the base's files.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAccounts {
    #[serde(default)]
    pub(super) groups: Vec<Spanned<RawGroup>>,
    #[serde(default)]
    pub(super) users: Vec<Spanned<RawUser>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawGroup {
    pub(super) name: String,
    pub(super) gid: Spanned<i64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub(super) name: String,
    pub(super) uid: Spanned<i64>,
    pub(super) gid: Spanned<i64>,
    pub(super) home: Option<String>,
    pub(super) shell: Option<String>,
    pub(super) gecos: Option<String>,
    #[serde(default)]
    pub(super) groups: Vec<String>,
    pub(super) create_home: Option<bool>,
    pub(super) home_mode: Option<toml::Value>,
}

/// `[image.NAME.overrides."os/arch"]`: what differs for one platform.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawOverride {
    pub(super) entrypoint: Option<Vec<String>>,
    pub(super) cmd: Option<Vec<String>>,
    #[serde(default)]
    pub(super) env: BTreeMap<String, String>,
    #[serde(default)]
    pub(super) labels: BTreeMap<String, String>,
    pub(super) healthcheck: Option<Spanned<RawHealthcheck>>,
    pub(super) shell: Option<Spanned<Vec<String>>>,
    pub(super) onbuild: Option<Spanned<Vec<String>>>,
}

/// `healthcheck = { test = [...], interval = "30s", ... }`: Docker's
/// HEALTHCHECK, durations as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawHealthcheck {
    pub(super) test: Spanned<Vec<String>>,
    pub(super) interval: Option<Spanned<String>>,
    pub(super) timeout: Option<Spanned<String>>,
    pub(super) start_period: Option<Spanned<String>>,
    pub(super) start_interval: Option<Spanned<String>>,
    pub(super) retries: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLayer {
    pub(super) name: Option<String>,
    pub(super) owner: Option<Spanned<String>>,
    pub(super) uname: Option<String>,
    pub(super) gname: Option<String>,
    pub(super) mtime: Option<Spanned<i64>>,
    pub(super) compression: Option<Spanned<String>>,
    pub(super) compression_level: Option<Spanned<i64>>,
    #[serde(default)]
    pub(super) files: Vec<Spanned<RawEntry>>,
}

/// One `files` element. A single struct rather than an untagged enum so that
/// a typo gets "unknown field `sorce`" instead of "did not match any variant".
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawEntry {
    pub(super) src: Option<String>,
    pub(super) dst: Option<String>,
    pub(super) dir: Option<String>,
    pub(super) symlink: Option<String>,
    pub(super) target: Option<String>,
    pub(super) mode: Option<toml::Value>,
    pub(super) dir_mode: Option<toml::Value>,
    pub(super) owner: Option<String>,
    pub(super) uname: Option<String>,
    pub(super) gname: Option<String>,
    #[serde(default)]
    pub(super) exclude: Vec<String>,
}
