//! Progress reporting. The library never prints: long operations tell a
//! [`Reporter`] what they are doing and the CLI decides how to show it.

use crate::digest::Digest;
use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A layer is being laid down; `bytes` is the uncompressed input size.
    LayerStarted {
        image: &'a str,
        layer: &'a str,
        bytes: u64,
    },
    /// `done` uncompressed bytes of the layer have been processed so far.
    LayerProgress {
        image: &'a str,
        layer: &'a str,
        done: u64,
    },
    /// The layer is in the store. `reused` is true when an identical layer was
    /// already there and nothing was compressed.
    LayerFinished {
        image: &'a str,
        layer: &'a str,
        digest: &'a Digest,
        size: u64,
        reused: bool,
    },
    ImageBuilt {
        image: &'a str,
        digest: &'a Digest,
    },
    OutputWritten {
        image: &'a str,
        path: &'a str,
    },
    /// A tag or digest reference was resolved in a registry.
    BaseResolved {
        reference: &'a str,
        digest: &'a Digest,
    },
    /// A blob is being downloaded from a registry; `size` from its descriptor.
    DownloadStarted {
        reference: &'a str,
        digest: &'a Digest,
        size: u64,
    },
    DownloadProgress {
        digest: &'a Digest,
        done: u64,
    },
    DownloadFinished {
        reference: &'a str,
        digest: &'a Digest,
        size: u64,
    },
    /// A blob is going to `target` (`registry/repository`), mounted or
    /// uploaded; blobs the repository has already are not started.
    PushStarted {
        target: &'a str,
        digest: &'a Digest,
        size: u64,
    },
    /// `done` bytes of the current upload attempt have been sent.
    PushProgress {
        target: &'a str,
        digest: &'a Digest,
        done: u64,
    },
    /// The blob is in `target`; `from` is the repository it was mounted from.
    PushFinished {
        target: &'a str,
        digest: &'a Digest,
        size: u64,
        action: BlobAction,
        from: Option<&'a str>,
    },
    /// A tag points at the manifest; `unchanged` when it already did.
    ManifestPushed {
        reference: &'a str,
        digest: &'a Digest,
        unchanged: bool,
    },
    /// A store blob did not match its name and was moved aside
    /// (`moved_to`); what needs it is built or fetched again.
    BlobRepaired {
        digest: &'a Digest,
        problem: &'a str,
        moved_to: &'a str,
    },
    Warning {
        message: &'a str,
    },
}

pub trait Reporter: Send + Sync {
    fn report(&self, event: Event<'_>);
}

/// A reporter that drops every event, for library users and tests.
pub struct Silent;

impl Reporter for Silent {
    fn report(&self, _: Event<'_>) {}
}

/// What a push did with one blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlobAction {
    /// The repository had it: only the `HEAD` was sent.
    Skipped,
    /// Linked from another repository of the registry; no bytes sent.
    Mounted,
    Uploaded,
}

impl BlobAction {
    pub fn as_str(self) -> &'static str {
        match self {
            BlobAction::Skipped => "skipped",
            BlobAction::Mounted => "mounted",
            BlobAction::Uploaded => "uploaded",
        }
    }
}
