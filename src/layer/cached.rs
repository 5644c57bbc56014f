//! Layers another machine already compressed: what a layer asks of a build
//! cache before compressing, so that a fresh store rebuilds an unchanged
//! layer by hashing its tar stream instead of compressing it.
//!
//! The lookup is by (diff_id, recipe): the recipe ([`super::compress::recipe`])
//! names everything besides the tar stream that decides the compressed
//! bytes, so a blob found under the pair is the blob a cold build would
//! write. The registries themselves are asked elsewhere (`crate::cache`);
//! here is only what a layer needs of them.

use std::fmt::Debug;

use crate::digest::Digest;
use crate::image::BlobLocation;
use crate::progress::Reporter;
use crate::store::Store;

/// A blob found for a layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CacheHit {
    /// The compressed blob's digest.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// The layer media type its manifest gave it.
    pub media_type: String,
    /// Where its bytes are now: in the store (downloaded and verified, for
    /// a sink that copies bytes) or in the registry repository it was
    /// found in (for a push, which mounts or copies it from there).
    pub location: BlobLocation,
    /// The cache source it was found through, for the report.
    pub from: String,
}

/// Cores of the build's budget that no other work is waiting for, which a
/// layer takes when it compresses or checks a download, and gives back.
pub trait SpareCores: Sync {
    /// Takes up to `max`; returns how many were taken (maybe none).
    fn take(&self, max: usize) -> usize;
    /// Gives back what [`take`](Self::take) returned.
    fn give_back(&self, n: usize);
    /// Runs `f` with the layer's `tokens` lent to work waiting to start,
    /// and returns once they are the layer's again.
    fn aside(&self, tokens: usize, f: &mut dyn FnMut());
}

/// A build cache a layer consults on a store miss.
pub trait LayerCache: Send + Sync + Debug {
    /// Whether a lookup for `recipe` could find anything; answered without
    /// waiting (true while the sources are still being asked), so that a
    /// layer no source can hold is compressed without hashing first.
    fn may_have(&self, recipe: &str) -> bool;

    /// The blob of the layer whose tar stream hashes to `diff_id`,
    /// compressed by `recipe`, made usable for this build; `None` when no
    /// source has it or it failed verification (reported as a warning), and
    /// the layer is compressed as usual. Waits for the sources' answers;
    /// checking a download may use up to `threads` threads (the layer's).
    fn find(
        &self,
        diff_id: &Digest,
        recipe: &str,
        threads: usize,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Option<CacheHit>;
}
