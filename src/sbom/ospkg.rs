//! Installed OS packages, from the package databases a base image carries:
//! Debian's `/var/lib/dpkg/status` (and the one-file-per-package
//! `/var/lib/dpkg/status.d/` distroless writes instead), Alpine's and
//! Wolfi's `/lib/apk/db/installed`, and the distribution they belong to
//! from `/etc/os-release`.
//!
//! The parsers take the files' bytes (read through
//! [`crate::rootfs::RootFs::read_files`], at most [`MAX_DB_SIZE`] each) and
//! never fail: an entry that is not a well-formed installed package is
//! skipped and counted in [`Parsed::skipped`], so a damaged database costs
//! the SBOM those entries, not the build.

use super::purl;

/// Debian's database of package states.
pub const DPKG_STATUS: &str = "/var/lib/dpkg/status";
/// The directory of one status file per package that distroless images
/// have instead of [`DPKG_STATUS`].
pub const DPKG_STATUS_D: &str = "/var/lib/dpkg/status.d";
/// Alpine's and Wolfi's database of installed packages.
pub const APK_INSTALLED: &str = "/lib/apk/db/installed";
/// The distribution's identification.
pub const OS_RELEASE: &str = "/etc/os-release";
/// Where [`OS_RELEASE`] points on most systems, read when it is missing.
pub const OS_RELEASE_FALLBACK: &str = "/usr/lib/os-release";
/// The largest database file read: Debian's status for a full desktop is
/// a few MiB, so this leaves room without letting a base make gantry hold
/// an unbounded file.
pub const MAX_DB_SIZE: u64 = 64 << 20;
/// The most packages one database yields; entries past it are skipped.
pub const MAX_PACKAGES: usize = 100_000;
/// The longest name, version, architecture or license kept; an entry with a
/// longer one is skipped.
const MAX_FIELD: usize = 1024;

/// Which package manager a package belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    /// dpkg: Debian, Ubuntu, distroless.
    Deb,
    /// apk: Alpine, Wolfi.
    Apk,
}

impl Ecosystem {
    /// The purl type.
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Deb => "deb",
            Ecosystem::Apk => "apk",
        }
    }

    /// The purl namespace when `/etc/os-release` names no distribution.
    pub fn default_vendor(self) -> &'static str {
        match self {
            Ecosystem::Deb => "debian",
            Ecosystem::Apk => "alpine",
        }
    }
}

/// One installed package.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct OsPackage {
    /// The database it was read from.
    pub ecosystem: Ecosystem,
    /// The binary package's name.
    pub name: String,
    /// Its version, as the package manager writes it.
    pub version: String,
    /// Its architecture (`amd64`, `x86_64`, `all`, `noarch`), when given.
    pub arch: Option<String>,
    /// The source package it was built from (dpkg `Source`, apk `o:`),
    /// when it differs from `name`.
    pub source: Option<String>,
    /// The source package's version, when dpkg gives one that differs.
    pub source_version: Option<String>,
    /// The license as the database declares it (apk `L:`); dpkg has none.
    pub license: Option<String>,
}

impl OsPackage {
    /// The package's purl: `pkg:deb/VENDOR/NAME@VERSION?arch=…&distro=…` or
    /// `pkg:apk/VENDOR/NAME@VERSION?arch=…&distro=…`, the vendor and distro
    /// from `os` (`debian`, `debian-12`) when it names them.
    pub fn purl(&self, os: &OsRelease) -> String {
        let vendor = os
            .id
            .as_deref()
            .unwrap_or(self.ecosystem.default_vendor())
            .to_ascii_lowercase();
        let distro = os.distro();
        purl::build(
            self.ecosystem.purl_type(),
            Some(&vendor),
            &self.name.to_ascii_lowercase(),
            Some(&self.version),
            &[
                ("arch", self.arch.as_deref()),
                ("distro", distro.as_deref()),
            ],
        )
    }
}

/// What one database gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// The installed packages, in database order.
    pub packages: Vec<OsPackage>,
    /// Entries that were not a well-formed package: missing or malformed
    /// name or version, over the size bounds, or past [`MAX_PACKAGES`].
    /// Packages that are known but not installed are not counted.
    pub skipped: usize,
}

impl Parsed {
    /// Adds what another database file gave (each `status.d` file).
    pub fn extend(&mut self, other: Parsed) {
        for p in other.packages {
            self.push(p);
        }
        self.skipped += other.skipped;
    }

    fn push(&mut self, p: OsPackage) {
        if self.packages.len() < MAX_PACKAGES {
            self.packages.push(p);
        } else {
            self.skipped += 1;
        }
    }
}

/// The distribution, from `/etc/os-release`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OsRelease {
    /// `ID`: `debian`, `ubuntu`, `alpine`, `wolfi`.
    pub id: Option<String>,
    /// `VERSION_ID`: `12`, `3.20.3`.
    pub version_id: Option<String>,
    /// `PRETTY_NAME`, for people.
    pub pretty_name: Option<String>,
}

impl OsRelease {
    /// The purl `distro` qualifier: `ID-VERSION_ID` (`debian-12`), or the
    /// ID alone when there is no version (Debian testing, Wolfi).
    pub fn distro(&self) -> Option<String> {
        let id = self.id.as_deref()?;
        Some(match &self.version_id {
            Some(v) => format!("{id}-{v}"),
            None => id.to_string(),
        })
    }
}

/// Reads an os-release file: `KEY=value` lines, values optionally in single
/// or double quotes with backslash escapes. Unknown keys and malformed
/// lines are ignored, as systemd's reader does.
pub fn parse_os_release(bytes: &[u8]) -> OsRelease {
    let text = String::from_utf8_lossy(bounded(bytes));
    let mut out = OsRelease::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((key, raw)) = line.split_once('=') else {
            continue;
        };
        let Some(value) = unquote(raw.trim()) else {
            continue;
        };
        if value.is_empty() || value.len() > MAX_FIELD || !value.bytes().all(is_printable) {
            continue;
        }
        match key.trim() {
            "ID" if is_token(&value) => out.id = Some(value.to_ascii_lowercase()),
            "VERSION_ID" if is_token(&value) => out.version_id = Some(value),
            "PRETTY_NAME" => out.pretty_name = Some(value),
            _ => {}
        }
    }
    out
}

fn unquote(raw: &str) -> Option<String> {
    let quote = match raw.chars().next() {
        Some(q @ ('"' | '\'')) => q,
        _ => return Some(raw.to_string()),
    };
    let inner = raw.strip_prefix(quote)?.strip_suffix(quote)?;
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' if quote == '"' => out.push(chars.next()?),
            c if c == quote => return None,
            c => out.push(c),
        }
    }
    Some(out)
}

/// Reads Debian's `/var/lib/dpkg/status`: only packages whose `Status` is
/// installed and not in error (`install ok installed`, or `hold ok
/// installed` for a held one) are kept; removed, half-installed and
/// config-files-only ones are left out without counting as skipped.
pub fn parse_dpkg_status(bytes: &[u8]) -> Parsed {
    parse_dpkg(bytes, true)
}

/// Reads one file of distroless's `/var/lib/dpkg/status.d/`: stanzas as in
/// the status file, which have no `Status` field because only installed
/// packages are written there. A `Status` that is there is honoured.
pub fn parse_dpkg_status_d(bytes: &[u8]) -> Parsed {
    parse_dpkg(bytes, false)
}

/// Whether a file name in [`DPKG_STATUS_D`] is a package's status rather
/// than the checksum list distroless writes beside it.
pub fn is_status_d_entry(file_name: &str) -> bool {
    !file_name.is_empty() && !file_name.starts_with('.') && !file_name.ends_with(".md5sums")
}

fn parse_dpkg(bytes: &[u8], require_status: bool) -> Parsed {
    let mut out = Parsed::default();
    for stanza in stanzas(bounded(bytes)) {
        let mut fields = DpkgFields::default();
        for (key, value) in deb822_fields(&stanza) {
            let slot = match key {
                "Package" => &mut fields.package,
                "Version" => &mut fields.version,
                "Architecture" => &mut fields.arch,
                "Source" => &mut fields.source,
                "Status" => &mut fields.status,
                _ => continue,
            };
            *slot = Some(value);
        }
        if fields.package.is_none() && fields.version.is_none() && fields.status.is_none() {
            // Not a package stanza at all (a comment, stray text): counted,
            // so damage shows.
            out.skipped += 1;
            continue;
        }
        match &fields.status {
            Some(s) if !is_installed(s) => continue,
            None if require_status => {
                out.skipped += 1;
                continue;
            }
            _ => {}
        }
        match fields.into_package() {
            Some(p) => out.push(p),
            None => out.skipped += 1,
        }
    }
    out
}

#[derive(Default)]
struct DpkgFields {
    package: Option<String>,
    version: Option<String>,
    arch: Option<String>,
    source: Option<String>,
    status: Option<String>,
}

impl DpkgFields {
    fn into_package(self) -> Option<OsPackage> {
        let name = self.package.filter(|n| is_deb_name(n))?;
        let version = self.version.filter(|v| is_deb_version(v))?;
        let arch = match self.arch {
            Some(a) if is_token(&a) => Some(a),
            Some(_) => return None,
            None => None,
        };
        // `Source: name` or `Source: name (version)` when the binary
        // package's version differs from its source's.
        let (source, source_version) = match self.source {
            None => (None, None),
            Some(s) => {
                let (sname, sver) = match s.split_once(' ') {
                    Some((n, rest)) => {
                        let v = rest.trim().strip_prefix('(')?.strip_suffix(')')?.trim();
                        (n.to_string(), Some(v.to_string()))
                    }
                    None => (s.clone(), None),
                };
                if !is_deb_name(&sname) || sver.as_deref().is_some_and(|v| !is_deb_version(v)) {
                    return None;
                }
                let sver = sver.filter(|v| *v != version);
                let sname = Some(sname).filter(|n| *n != name || sver.is_some());
                (sname, sver)
            }
        };
        Some(OsPackage {
            ecosystem: Ecosystem::Deb,
            name,
            version,
            arch,
            source,
            source_version,
            license: None,
        })
    }
}

/// The `Status` field's three words are want, error flag and state.
fn is_installed(status: &str) -> bool {
    let words: Vec<&str> = status.split_whitespace().collect();
    matches!(words.as_slice(), ["install" | "hold", "ok", "installed"])
}

/// Reads Alpine's and Wolfi's `/lib/apk/db/installed`: a stanza of
/// `X:value` lines per package (`P` name, `V` version, `A` architecture,
/// `L` license, `o` origin). Every stanza there is an installed package.
pub fn parse_apk_installed(bytes: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    for stanza in stanzas(bounded(bytes)) {
        let (mut name, mut version, mut arch, mut license, mut origin) =
            (None, None, None, None, None);
        let mut malformed = false;
        for line in stanza.split(|&b| b == b'\n') {
            let Some((&key, rest)) = line.split_first() else {
                continue;
            };
            let slot = match key {
                b'P' => &mut name,
                b'V' => &mut version,
                b'A' => &mut arch,
                b'L' => &mut license,
                b'o' => &mut origin,
                _ => continue,
            };
            match rest
                .strip_prefix(b":")
                .and_then(|v| std::str::from_utf8(v).ok())
            {
                Some(v) if v.len() <= MAX_FIELD => *slot = Some(v.trim().to_string()),
                _ => malformed = true,
            }
        }
        let name = name.filter(|n: &String| is_token(n));
        let version = version.filter(|v: &String| is_token(v));
        let arch_ok = arch.as_deref().is_none_or(is_token);
        let license_ok = license
            .as_deref()
            .is_none_or(|l| l.bytes().all(is_printable));
        let origin_ok = origin.as_deref().is_none_or(is_token);
        match (name, version) {
            (Some(name), Some(version)) if !malformed && arch_ok && license_ok && origin_ok => {
                let source = origin.filter(|o| *o != name);
                out.push(OsPackage {
                    ecosystem: Ecosystem::Apk,
                    name,
                    version,
                    arch: arch.filter(|a| !a.is_empty()),
                    source,
                    source_version: None,
                    license: license.filter(|l| !l.is_empty()),
                });
            }
            _ => out.skipped += 1,
        }
    }
    out
}

/// Database files over [`MAX_DB_SIZE`] are read up to it; the entry cut in
/// two there is then malformed and skipped, or its fields cut short.
fn bounded(bytes: &[u8]) -> &[u8] {
    &bytes[..bytes.len().min(MAX_DB_SIZE as usize)]
}

/// The blank-line separated stanzas of a deb822 or apk database, without
/// the empty ones. `\r\n` line ends are read as `\n`.
fn stanzas(bytes: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
    let mut rest = bytes;
    std::iter::from_fn(move || loop {
        if rest.is_empty() {
            return None;
        }
        let mut end = rest.len();
        let mut next = rest.len();
        let mut line_start = 0;
        while line_start < rest.len() {
            let line_end = rest[line_start..]
                .iter()
                .position(|&b| b == b'\n')
                .map_or(rest.len(), |p| line_start + p);
            let line = &rest[line_start..line_end];
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                end = line_start;
                next = (line_end + 1).min(rest.len());
                break;
            }
            line_start = line_end + 1;
        }
        let stanza: Vec<u8> = rest[..end.min(rest.len())]
            .iter()
            .copied()
            .filter(|&b| b != b'\r')
            .collect();
        rest = &rest[next..];
        if !stanza.is_empty() {
            return Some(stanza);
        }
    })
}

/// The `Key: value` fields of a deb822 stanza; continuation lines (which
/// start with white space) belong to the field before and are dropped, as
/// none of the fields read here has any. A field that is not UTF-8 or has
/// no colon is left out, which makes its stanza fail validation if it was
/// one that mattered.
fn deb822_fields(stanza: &[u8]) -> impl Iterator<Item = (&str, String)> + '_ {
    stanza.split(|&b| b == b'\n').filter_map(|line| {
        if line.first().is_some_and(|b| b.is_ascii_whitespace()) {
            return None;
        }
        let line = std::str::from_utf8(line).ok()?;
        let (key, value) = line.split_once(':')?;
        let value = value.trim();
        (value.len() <= MAX_FIELD).then(|| (key.trim(), value.to_string()))
    })
}

/// Debian policy: lowercase letters, digits, `+ - .`, at least two
/// characters, starting with a letter or digit.
fn is_deb_name(s: &str) -> bool {
    s.len() >= 2
        && s.bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
}

/// Debian policy: `[epoch:]upstream[-revision]`, letters, digits and
/// `. + ~ - :`, starting with a digit (the epoch's or the upstream's).
fn is_deb_version(s: &str) -> bool {
    s.bytes().next().is_some_and(|b| b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".+~-:".contains(&b))
}

/// Non-empty printable ASCII without white space: what names, versions and
/// architectures are made of.
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_FIELD && s.bytes().all(|b| b.is_ascii_graphic())
}

fn is_printable(b: u8) -> bool {
    b == b' ' || b.is_ascii_graphic() || b >= 0x80
}

#[cfg(test)]
mod tests;
