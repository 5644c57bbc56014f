//! The machine-readable report of a build (`gantry build --json`).
//!
//! Its shape is an interface for scripts and CI, documented in
//! `docs/buildfile.md` ("The build report"): field names are snake_case and
//! stable, and every field is always present.

use serde::Serialize;

use super::BuiltImage;
use crate::digest::Digest;
use crate::store::Repair;

/// The whole report: the images built and the store's repairs.
#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// Every image built, bases first.
    pub images: Vec<ImageEntry<'a>>,
    /// Store blobs found not to match their names during the build, moved
    /// aside and built or fetched again.
    pub repaired: Vec<RepairEntry<'a>>,
}

/// A store blob moved aside ([`Repair`]).
#[derive(Debug, Serialize)]
pub struct RepairEntry<'a> {
    /// The blob's name.
    pub digest: &'a Digest,
    /// What was wrong with it.
    pub problem: &'a str,
    /// Where it was moved, under the store's `corrupt/`.
    pub moved_to: String,
}

/// One image of the build file, as built.
#[derive(Debug, Serialize)]
pub struct ImageEntry<'a> {
    /// The image's name in the build file.
    pub name: &'a str,
    /// The manifest digest, or the index digest of a multi-platform image.
    pub digest: &'a Digest,
    /// The media type of that manifest or index.
    pub media_type: &'a str,
    /// Full references the image is tagged with.
    pub tags: &'a [String],
    /// Per platform built, in the build file's order.
    pub platforms: Vec<PlatformEntry<'a>>,
}

/// One platform of an image ([`super::PlatformReport`]).
#[derive(Debug, Serialize)]
pub struct PlatformEntry<'a> {
    /// `os/arch[/variant]`.
    pub platform: &'a str,
    /// The digest of the platform's manifest.
    pub manifest_digest: &'a Digest,
    /// The digest of the platform's config.
    pub config_digest: &'a Digest,
    /// When config and manifest assembly began, in ms since the build
    /// started.
    pub started_ms: u64,
    /// When it was done, in ms since the build started.
    pub finished_ms: u64,
    /// The image's own layers, in order.
    pub layers: Vec<LayerEntry<'a>>,
}

/// One layer of a platform ([`super::LayerReport`]).
#[derive(Debug, Serialize)]
pub struct LayerEntry<'a> {
    /// The layer's name in the build file.
    pub name: &'a str,
    /// The digest of the compressed blob.
    pub digest: &'a Digest,
    /// The digest of the uncompressed tar stream.
    pub diff_id: &'a Digest,
    /// The compressed blob's size in bytes.
    pub size: u64,
    /// `"rebuilt"` (laid down and compressed in this build), `"reused"`
    /// (an identical layer was in the store; nothing was compressed) or
    /// `"cached"` (an identical layer was found through a cache source;
    /// nothing was compressed).
    pub status: &'static str,
    /// For `"cached"`, the cache source (a registry reference) it was
    /// found through; `null` otherwise.
    pub cached_from: Option<&'a str>,
    /// When laying it down began, in ms since the build started.
    pub started_ms: u64,
    /// When it was done, in ms since the build started.
    pub finished_ms: u64,
}

impl<'a> Report<'a> {
    /// The report of `built`, with the repairs the store made meanwhile.
    pub fn of(built: &'a [BuiltImage], repairs: &'a [Repair]) -> Report<'a> {
        Report {
            images: built.iter().map(ImageEntry::of).collect(),
            repaired: repairs
                .iter()
                .map(|r| RepairEntry {
                    digest: &r.digest,
                    problem: &r.problem,
                    moved_to: r.moved_to.display().to_string(),
                })
                .collect(),
        }
    }
}

impl<'a> ImageEntry<'a> {
    fn of(b: &'a BuiltImage) -> ImageEntry<'a> {
        ImageEntry {
            name: &b.name,
            digest: b.result.digest(),
            media_type: b.result.media_type(),
            tags: b.result.tags(),
            platforms: b
                .platforms
                .iter()
                .map(|p| PlatformEntry {
                    platform: &p.platform,
                    manifest_digest: &p.manifest_digest,
                    config_digest: &p.config_digest,
                    started_ms: p.started_ms,
                    finished_ms: p.finished_ms,
                    layers: p
                        .layers
                        .iter()
                        .map(|l| LayerEntry {
                            name: &l.name,
                            digest: &l.digest,
                            diff_id: &l.diff_id,
                            size: l.size,
                            status: l.status(),
                            cached_from: l.cached_from.as_deref(),
                            started_ms: l.started_ms,
                            finished_ms: l.finished_ms,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
