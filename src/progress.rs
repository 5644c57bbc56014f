//! Progress reporting. The library never prints: long operations tell a
//! [`Reporter`] what they are doing and the CLI decides how to show it.
//!
//! Events borrow from the code that reports them, so a reporter that keeps
//! anything copies it. Throughout, `image` is an image's name in the build
//! file (followed by its platform, `name (linux/arm64)`, in a multi-platform
//! build), `layer` a layer's name within it, `reference` an image reference
//! as the user gave or it was resolved, and sizes are in bytes.

use crate::digest::Digest;
use serde::Serialize;

/// One thing a library operation did or is doing. Events of one layer,
/// download or upload arrive in order (started, progress, finished); those
/// of different ones interleave, since they run in parallel. `*Progress`
/// events are sent at intervals, not for every read.
#[derive(Debug, Clone, Copy)]
pub enum Event<'a> {
    /// A layer is being laid down; `bytes` is the uncompressed input size.
    LayerStarted {
        /// The image the layer belongs to.
        image: &'a str,
        /// The layer's name in the build file.
        layer: &'a str,
        /// The file content the layer reads, before tar framing and compression.
        bytes: u64,
    },
    /// `done` uncompressed bytes of the layer have been processed so far.
    LayerProgress {
        /// The image the layer belongs to.
        image: &'a str,
        /// The layer's name in the build file.
        layer: &'a str,
        /// Bytes of file content read so far; at most `LayerStarted`'s `bytes`.
        done: u64,
    },
    /// The layer is in the store, or, when `cached_from` says so, found in a
    /// registry. `reused` is true when an identical layer was already in the
    /// store and nothing was compressed.
    LayerFinished {
        /// The image the layer belongs to.
        image: &'a str,
        /// The layer's name in the build file.
        layer: &'a str,
        /// The digest of the compressed blob, as the manifest names it.
        digest: &'a Digest,
        /// The compressed blob's size.
        size: u64,
        /// An identical layer was already in the store; nothing was compressed.
        reused: bool,
        /// An identical layer was found through this cache source (a
        /// registry reference); nothing was compressed.
        cached_from: Option<&'a str>,
    },
    /// An image's manifest (or, for a multi-platform image, its index) is in
    /// the store; sent once per image named in the build file.
    ImageBuilt {
        /// The image's name in the build file.
        image: &'a str,
        /// The digest of its manifest or index.
        digest: &'a Digest,
    },
    /// An output file or directory was written in full and renamed into place.
    OutputWritten {
        /// The image's name in the build file, or the reference pulled.
        image: &'a str,
        /// The output's path, as given.
        path: &'a str,
    },
    /// A tag or digest reference was resolved in a registry.
    BaseResolved {
        /// The reference, fully qualified.
        reference: &'a str,
        /// The digest of the manifest or index it names.
        digest: &'a Digest,
    },
    /// A blob is being downloaded from a registry; `size` from its descriptor.
    DownloadStarted {
        /// The image the blob is fetched for, as error messages name it.
        reference: &'a str,
        /// The blob being fetched.
        digest: &'a Digest,
        /// The size its descriptor gives, which the download must match.
        size: u64,
    },
    /// `done` bytes of a download have been received so far; a download that
    /// starts over after a lost connection counts from 0 again.
    DownloadProgress {
        /// The blob being fetched, as in `DownloadStarted`.
        digest: &'a Digest,
        /// Bytes received in the current attempt.
        done: u64,
    },
    /// The blob was verified against its digest and is now in the store.
    DownloadFinished {
        /// The image the blob was fetched for.
        reference: &'a str,
        /// The blob fetched.
        digest: &'a Digest,
        /// Its size.
        size: u64,
    },
    /// A blob is going to `target` (`registry/repository`), mounted or
    /// uploaded; blobs the repository has already are not started.
    PushStarted {
        /// `registry/repository` the blob goes to.
        target: &'a str,
        /// The blob.
        digest: &'a Digest,
        /// Its size.
        size: u64,
    },
    /// `done` bytes of the current upload attempt have been sent.
    PushProgress {
        /// `registry/repository` the blob goes to.
        target: &'a str,
        /// The blob.
        digest: &'a Digest,
        /// Bytes sent in the current attempt; a retry counts from 0 again.
        done: u64,
    },
    /// The blob is in `target`; `from` is the repository it was mounted from.
    PushFinished {
        /// `registry/repository` the blob is now in.
        target: &'a str,
        /// The blob.
        digest: &'a Digest,
        /// Its size.
        size: u64,
        /// Whether it was already there, mounted or uploaded.
        action: BlobAction,
        /// `registry/repository` it was mounted from (same registry);
        /// `None` unless `action` is [`BlobAction::Mounted`].
        from: Option<&'a str>,
    },
    /// A tag points at the manifest; `unchanged` when it already did.
    ManifestPushed {
        /// `registry/repository:tag`, fully qualified.
        reference: &'a str,
        /// The manifest or index the tag now names.
        digest: &'a Digest,
        /// The tag named this digest before the push; nothing was sent.
        unchanged: bool,
    },
    /// A store blob did not match its name and was moved aside
    /// (`moved_to`); what needs it is built or fetched again.
    BlobRepaired {
        /// The digest the blob is stored under (not what its bytes hash to).
        digest: &'a Digest,
        /// What was wrong with it (its size, or content that does not hash
        /// to its name).
        problem: &'a str,
        /// The path it was moved to, kept for inspection.
        moved_to: &'a str,
    },
    /// A docker tarball holds one platform of a multi-platform image (it
    /// holds single images only): said, as the tarball may hold less than
    /// the build made.
    TarballPlatform {
        /// The image's name in the build file.
        image: &'a str,
        /// The platform the tarball holds: this machine's.
        platform: &'a str,
        /// Every platform built, comma-separated, in index order.
        built: &'a str,
    },
    /// An archive is being streamed to a container engine's load API.
    LoadStarted {
        /// The engine's address and how it was found.
        engine: &'a str,
        /// Layer files the archive holds: those of chains the engine lacks.
        layers: usize,
        /// Distinct layers of the images loaded.
        of: usize,
        /// Bytes of the layer files it holds (the archive is a little more).
        bytes: u64,
    },
    /// `sent` bytes of the archive have gone to the engine so far.
    LoadProgress {
        /// As in `LoadStarted`.
        engine: &'a str,
        /// Archive bytes sent in this attempt.
        sent: u64,
    },
    /// The archive was sent and the engine answered (`ok`), or the
    /// attempt failed.
    LoadFinished {
        /// As in `LoadStarted`.
        engine: &'a str,
        /// Archive bytes sent in this attempt.
        sent: u64,
        /// The engine took the archive.
        ok: bool,
    },
    /// Something the user should know that does not stop the operation: a
    /// retry and its delay, an image not pushed for want of tags.
    Warning {
        /// One line, already free of secrets.
        message: &'a str,
    },
}

/// Where the library sends its [`Event`]s. Called from worker threads, in
/// parallel, so implementations synchronise themselves; a call should
/// return quickly, since the work that reported waits for it.
pub trait Reporter: Send + Sync {
    /// Receives one event; the borrows in it last only for the call.
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
    /// Its bytes were sent (also when the registry refused a mount).
    Uploaded,
}

impl BlobAction {
    /// The lowercase word reports and JSON output use: `skipped`,
    /// `mounted` or `uploaded`.
    pub fn as_str(self) -> &'static str {
        match self {
            BlobAction::Skipped => "skipped",
            BlobAction::Mounted => "mounted",
            BlobAction::Uploaded => "uploaded",
        }
    }
}
