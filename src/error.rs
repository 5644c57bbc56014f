//! The one error type of the library. Every variant names the thing at fault
//! (a file, a declaration, a reference) so the CLI can print it as is; a
//! variant that failed because something else did keeps that failure as its
//! [`source`](std::error::Error::source), so the whole chain can be shown
//! one cause a line.

use std::fmt;
use std::io;
use std::path::PathBuf;

/// The library's result: [`Error`] unless said otherwise.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A nested failure kept as the source of an [`Error`]: an I/O, HTTP or
/// parse error of another crate, or a gantry [`Error`] itself.
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything that can go wrong in gantry, by what is at fault.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed; the path is always kept.
    #[error("{}", path.display())]
    Io {
        /// The file or directory the operation was on.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: io::Error,
    },

    /// The build file is malformed or asks for something impossible.
    /// `location` is `file[:line[:column]]`, `what` the declaration at fault.
    #[error("{location}: {message}")]
    BuildFile {
        /// `file[:line[:column]]` of the declaration at fault.
        location: String,
        /// What is wrong with it.
        message: String,
    },

    /// A key the build file does not know; the keys it knows there are
    /// kept so that the nearest can be suggested.
    #[error("{location}: {message}")]
    UnknownKey {
        /// `file:line:column` of the key.
        location: String,
        /// The parser's message, naming the key and the keys expected.
        message: String,
        /// The key as written.
        key: String,
        /// The keys allowed where it is.
        known: Vec<String>,
    },

    /// A declaration of the build file cannot be honoured because of the
    /// nested failure (its base cannot be read, its value does not parse).
    #[error("{location}: {message}")]
    Declaration {
        /// `file[:line[:column]]` of the declaration.
        location: String,
        /// What was being done with it.
        message: String,
        /// Why that failed.
        #[source]
        source: Cause,
    },

    /// A file set declaration cannot be laid down as a layer.
    #[error("image {image:?}, layer {layer:?}: {message}")]
    Layer {
        /// The image declaring the layer.
        image: String,
        /// The layer's name or position.
        layer: String,
        /// What is wrong.
        message: String,
        /// The failure behind it, when there is one.
        #[source]
        cause: Option<Cause>,
    },

    /// Shown with any `user:password@` in `reference` masked.
    #[error(
        "invalid reference {:?}: {reason}",
        crate::redact::mask_userinfo(reference)
    )]
    InvalidReference {
        /// The reference as given; never shown unmasked.
        reference: String,
        /// Which rule of the reference grammar it breaks.
        reason: String,
    },

    /// `SOURCE_DATE_EPOCH` (or a `created` value) is not a time gantry can use.
    #[error("invalid SOURCE_DATE_EPOCH {value:?}: {reason}")]
    SourceDateEpoch {
        /// The value as given.
        value: String,
        /// Why it is refused.
        reason: String,
    },

    /// Content did not match the digest or size that named it.
    #[error("{what}: expected {expected}, got {actual}")]
    Mismatch {
        /// The blob, file or field that was checked.
        what: String,
        /// The digest or size that named it.
        expected: String,
        /// What it turned out to be.
        actual: String,
    },

    /// An image source (layout, archive) is not what it claims to be.
    #[error("{source_name}: {message}")]
    Format {
        /// The file, archive member or blob at fault.
        source_name: String,
        /// What it was expected to be.
        message: String,
        /// The parser's complaint, when there is one; never one that
        /// quotes the input (see [`JsonError`]).
        #[source]
        cause: Option<Cause>,
    },

    /// A registry refused or failed a request. `code` and `message` are the
    /// registry's own (from its `errors` body) when it sent them; nothing
    /// here ever holds a credential or a token.
    #[error("registry {registry}: {reference}: {}", describe_registry_error(*status, code.as_deref(), message))]
    Registry {
        /// `host[:port]` of the registry.
        registry: String,
        /// The repository, reference or request the failure is about.
        reference: String,
        /// The HTTP status, when an answer came.
        status: Option<u16>,
        /// The registry's error code (`MANIFEST_UNKNOWN`...), when it sent one.
        code: Option<String>,
        /// The registry's message, or gantry's account of the failure.
        message: String,
        /// The failure behind it (a credential helper that cannot be run...).
        #[source]
        cause: Option<Cause>,
    },

    /// An HTTPS request to a registry got an answer that is not TLS: most
    /// likely the registry speaks plain HTTP.
    #[error("registry {registry}: TLS: {url}: the answer is not TLS")]
    NotTls {
        /// `host[:port]` of the registry.
        registry: String,
        /// The URL asked for, without its query.
        url: String,
        /// The HTTP client's error, without the URL.
        #[source]
        source: Cause,
    },

    /// A registry's TLS certificate does not verify against the trusted
    /// roots; never a reason to fall back to plain HTTP.
    #[error("registry {registry}: TLS: {url}: the certificate does not verify")]
    Certificate {
        /// `host[:port]` of the registry.
        registry: String,
        /// The URL asked for, without its query.
        url: String,
        /// The HTTP client's error, without the URL.
        #[source]
        source: Cause,
    },

    /// Offline mode was asked for and something is not in the store.
    #[error("offline: {0}")]
    Offline(String),

    /// `gantry.lock` is missing, unreadable or does not match the build file.
    #[error("{}: {message}", path.display())]
    Lock {
        /// The lock file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },

    /// A push failed. Blobs go up before any tag is put, so `tagged` (what
    /// was tagged before the failure) is empty unless a manifest failed.
    #[error("push failed: {}", describe_tagged(tagged))]
    Push {
        /// The failure that stopped the push.
        #[source]
        failed: Box<Error>,
        /// The references tagged before it.
        tagged: Vec<String>,
    },

    /// A docker tarball holds one platform and the image has several, none
    /// of which was chosen.
    #[error("{}", describe_needs_platform(image, platforms, host.as_deref()))]
    NeedsPlatform {
        /// The multi-platform image.
        image: String,
        /// The platforms it is built for.
        platforms: Vec<String>,
        /// This machine's platform, when it was tried and is not among them.
        host: Option<String>,
    },

    /// Something gantry needs from the machine cannot be had (a thread, a
    /// TLS set-up).
    #[error("{what}")]
    Environment {
        /// What gantry was setting up.
        what: String,
        /// Why it could not.
        #[source]
        source: Cause,
    },

    /// gantry broke one of its own invariants, or a library caller passed
    /// values the API rules out: a bug, not bad input.
    #[error("internal error: {message}")]
    Internal {
        /// The invariant that does not hold.
        message: String,
        /// The failure that revealed it, when there is one.
        #[source]
        cause: Option<Cause>,
    },

    /// The request itself does not make sense (bad flag combination, unknown image).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    /// An I/O failure on `path`.
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// `source_name` is not what it should be.
    pub fn format(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Format {
            source_name: source_name.into(),
            message: message.into(),
            cause: None,
        }
    }

    /// `source_name` is not what it should be, as `cause` found.
    pub fn format_because(
        source_name: impl Into<String>,
        message: impl Into<String>,
        cause: impl Into<Cause>,
    ) -> Self {
        Error::Format {
            source_name: source_name.into(),
            message: message.into(),
            cause: Some(cause.into()),
        }
    }

    /// A broken invariant.
    pub fn internal(message: impl Into<String>) -> Self {
        Error::Internal {
            message: message.into(),
            cause: None,
        }
    }

    /// A broken invariant, revealed by `cause`.
    pub fn internal_because(message: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Error::Internal {
            message: message.into(),
            cause: Some(cause.into()),
        }
    }

    /// Setting up `what` failed for `cause`.
    pub fn environment(what: impl Into<String>, cause: impl Into<Cause>) -> Self {
        Error::Environment {
            what: what.into(),
            source: cause.into(),
        }
    }

    /// The declaration at `location` failed: `message` says doing what,
    /// `cause` why.
    pub fn declaration(
        location: impl Into<String>,
        message: impl Into<String>,
        cause: impl Into<Cause>,
    ) -> Self {
        Error::Declaration {
            location: location.into(),
            message: message.into(),
            source: cause.into(),
        }
    }

    /// This error and then each of its causes, outermost first.
    pub fn chain(&self) -> impl Iterator<Item = &(dyn std::error::Error + 'static)> {
        let first: &(dyn std::error::Error + 'static) = self;
        std::iter::successors(Some(first), |e| e.source())
    }

    /// The whole chain on one line, `top: cause: cause`, for a log or a
    /// test that does not care where the message is split.
    pub fn display_chain(&self) -> String {
        let parts: Vec<String> = self.chain().map(|e| e.to_string()).collect();
        parts.join(": ")
    }

    /// What the user could do about this error, when gantry can tell: of
    /// this error or, failing that, of the first of its causes that has
    /// one.
    pub fn hint(&self) -> Option<String> {
        self.chain()
            .filter_map(|e| e.downcast_ref::<Error>())
            .find_map(Error::own_hint)
    }

    fn own_hint(&self) -> Option<String> {
        match self {
            Error::NotTls { registry, .. } => Some(format!(
                "the registry may speak plain HTTP: pass --insecure-registry {registry}"
            )),
            Error::Certificate { .. } => {
                Some("trust its CA with --ca-cert FILE or SSL_CERT_FILE".into())
            }
            Error::NeedsPlatform { platforms, .. } => Some(format!(
                "choose one with --platform: {}",
                platforms.join(", ")
            )),
            Error::UnknownKey { key, known, .. } => {
                nearest(key, known).map(|k| format!("did you mean {k:?}?"))
            }
            _ => None,
        }
    }
}

/// The known key nearest to `key`, when one is near enough to be a typo:
/// at most a third of its letters (and at least one) edited.
fn nearest<'a>(key: &str, known: &'a [String]) -> Option<&'a str> {
    let most = (key.chars().count() / 3).max(1);
    known
        .iter()
        .map(|k| (edit_distance(key, k), k))
        .filter(|(d, _)| *d <= most)
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance, counting a swap of two neighbours as one edit
/// (the commonest typo: `entrypiont`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Rows i-2, i-1 and i of the table.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 1..=a.len() {
        let mut row = vec![i; b.len() + 1];
        for j in 1..=b.len() {
            let change = usize::from(a[i - 1] != b[j - 1]);
            row[j] = (prev[j] + 1).min(row[j - 1] + 1).min(prev[j - 1] + change);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                row[j] = row[j].min(before[j - 2] + 1);
            }
        }
        before = std::mem::replace(&mut prev, row);
    }
    prev[b.len()]
}

/// An `io::Error` of `kind` that says `what` and keeps `source` as its
/// cause, for failures that must travel as `io::Error` (through `Read` and
/// `Write`) without losing what they wrap.
pub fn io_because(
    kind: io::ErrorKind,
    what: impl Into<String>,
    source: impl Into<Cause>,
) -> io::Error {
    io::Error::new(
        kind,
        Because {
            what: what.into(),
            source: source.into(),
        },
    )
}

/// What [`io_because`] wraps: `io::Error` shows its payload and hands on
/// the payload's source.
#[derive(Debug)]
struct Because {
    what: String,
    source: Cause,
}

impl fmt::Display for Because {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.what)
    }
}

impl std::error::Error for Because {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// A JSON document's parse error, shown without quoting the document:
/// see [`json_problem`]. Use it as the cause of an [`Error`] in place of
/// the `serde_json::Error`, whose own message may quote a value.
#[derive(Debug)]
pub struct JsonError(serde_json::Error);

impl From<serde_json::Error> for JsonError {
    fn from(e: serde_json::Error) -> Self {
        JsonError(e)
    }
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&json_problem(&self.0))
    }
}

// No source: serde_json's own chain would show its unredacted message.
impl std::error::Error for JsonError {}

/// What is wrong with a JSON document, without quoting it: serde_json's
/// message for a value of the wrong type quotes the value (`invalid type:
/// string "hunter2"`), and documents read from disk may hold secrets. Its
/// syntax errors name only what was expected, and where.
pub fn json_problem(e: &serde_json::Error) -> String {
    match e.classify() {
        serde_json::error::Category::Data if !e.to_string().starts_with("missing field") => {
            format!(
                "a value of the wrong type or form at line {} column {}",
                e.line(),
                e.column()
            )
        }
        _ => e.to_string(),
    }
}

fn describe_registry_error(status: Option<u16>, code: Option<&str>, message: &str) -> String {
    let mut out = String::new();
    if let Some(s) = status {
        out.push_str(&format!("HTTP {s}"));
    }
    if let Some(c) = code {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(c);
    }
    if !message.is_empty() {
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(message);
    }
    out
}

fn describe_needs_platform(image: &str, platforms: &[String], host: Option<&str>) -> String {
    let all = platforms.join(", ");
    match host {
        Some(host) => format!(
            "image {image:?} is built for {all}, not for this machine ({host}); \
             a docker tarball holds one platform"
        ),
        None => {
            format!(
                "image {image:?} is multi-platform ({all}); a docker tarball holds one platform"
            )
        }
    }
}

fn describe_tagged(tagged: &[String]) -> String {
    if tagged.is_empty() {
        "nothing was tagged".to_string()
    } else {
        format!("only these were tagged: {}", tagged.join(", "))
    }
}

/// Attach a path to an `io::Result`, the way `fs-err` does, without a wrapper type.
pub trait IoContext<T> {
    /// The result, its error (if any) an [`Error::Io`] on `path`.
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(keys: &[&str]) -> Vec<String> {
        keys.iter().map(|k| k.to_string()).collect()
    }

    #[test]
    fn a_swapped_pair_of_letters_is_one_edit() {
        assert_eq!(edit_distance("entrypiont", "entrypoint"), 1);
        assert_eq!(edit_distance("sorce", "source"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn the_nearest_key_is_suggested_only_when_near() {
        let keys = known(&["entrypoint", "cmd", "env", "platform", "platforms"]);
        assert_eq!(nearest("entrypiont", &keys), Some("entrypoint"));
        assert_eq!(nearest("platfrom", &keys), Some("platform"));
        assert_eq!(nearest("zzzzzz", &keys), None);
        assert_eq!(nearest("x", &keys), None);
    }

    #[test]
    fn a_hint_is_found_on_a_cause() {
        let inner = Error::UnknownKey {
            location: "f:1:1".into(),
            message: "unknown field `cmdd`".into(),
            key: "cmdd".into(),
            known: known(&["cmd"]),
        };
        let outer = Error::declaration("f:1", "image \"a\": base", inner);
        assert_eq!(outer.hint().as_deref(), Some("did you mean \"cmd\"?"));
        assert_eq!(
            outer.display_chain(),
            "f:1: image \"a\": base: f:1:1: unknown field `cmdd`"
        );
    }
}
