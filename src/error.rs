//! The one error type of the library. Every variant names the thing at fault
//! (a file, a declaration, a reference) so the CLI can print it as is.

use std::io;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file-system operation failed; the path is always kept.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The build file is malformed or asks for something impossible.
    /// `location` is `file[:line[:column]]`, `what` the declaration at fault.
    #[error("{location}: {message}")]
    BuildFile { location: String, message: String },

    /// A file set declaration cannot be laid down as a layer.
    #[error("image {image:?}, layer {layer:?}: {message}")]
    Layer {
        image: String,
        layer: String,
        message: String,
    },

    /// Shown with any `user:password@` in `reference` masked.
    #[error(
        "invalid reference {:?}: {reason}",
        crate::redact::mask_userinfo(reference)
    )]
    InvalidReference { reference: String, reason: String },

    #[error("invalid SOURCE_DATE_EPOCH {value:?}: {reason}")]
    SourceDateEpoch { value: String, reason: String },

    /// Content did not match the digest or size that named it.
    #[error("{what}: expected {expected}, got {actual}")]
    Mismatch {
        what: String,
        expected: String,
        actual: String,
    },

    /// An image source (layout, archive) is not what it claims to be.
    #[error("{source_name}: {message}")]
    Format {
        source_name: String,
        message: String,
    },

    /// A registry refused or failed a request. `code` and `message` are the
    /// registry's own (from its `errors` body) when it sent them; nothing
    /// here ever holds a credential or a token.
    #[error("registry {registry}: {reference}: {}", describe_registry_error(*status, code.as_deref(), message))]
    Registry {
        registry: String,
        reference: String,
        status: Option<u16>,
        code: Option<String>,
        message: String,
    },

    /// Offline mode was asked for and something is not in the store.
    #[error("offline: {0}")]
    Offline(String),

    /// `gantry.lock` is missing, unreadable or does not match the build file.
    #[error("{}: {message}", path.display())]
    Lock { path: PathBuf, message: String },

    /// A push failed. Blobs go up before any tag is put, so `tagged` (what
    /// was tagged before the failure) is empty unless a manifest failed.
    #[error("{failed}; {}", describe_tagged(tagged))]
    Push {
        failed: Box<Error>,
        tagged: Vec<String>,
    },

    /// The request itself does not make sense (bad flag combination, unknown image).
    #[error("{0}")]
    Usage(String),
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn format(source_name: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Format {
            source_name: source_name.into(),
            message: message.into(),
        }
    }
}

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

fn describe_tagged(tagged: &[String]) -> String {
    if tagged.is_empty() {
        "nothing was tagged".to_string()
    } else {
        format!("only these were tagged: {}", tagged.join(", "))
    }
}

/// Attach a path to an `io::Result`, the way `fs-err` does, without a wrapper type.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
