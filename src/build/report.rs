//! The machine-readable report of a build (`gantry build --json`).
//!
//! Its shape is an interface for scripts and CI, documented in
//! `docs/buildfile.md` ("The build report"): field names are snake_case and
//! stable, and every field is always present.

use serde::Serialize;

use super::BuiltImage;
use crate::digest::Digest;
use crate::store::Repair;

#[derive(Debug, Serialize)]
pub struct Report<'a> {
    /// Every image built, bases first.
    pub images: Vec<ImageEntry<'a>>,
    /// Store blobs found not to match their names during the build, moved
    /// aside and built or fetched again.
    pub repaired: Vec<RepairEntry<'a>>,
}

#[derive(Debug, Serialize)]
pub struct RepairEntry<'a> {
    pub digest: &'a Digest,
    pub problem: &'a str,
    pub moved_to: String,
}

#[derive(Debug, Serialize)]
pub struct ImageEntry<'a> {
    pub name: &'a str,
    /// The manifest digest, or the index digest of a multi-platform image.
    pub digest: &'a Digest,
    pub media_type: &'a str,
    pub tags: &'a [String],
    pub platforms: Vec<PlatformEntry<'a>>,
}

#[derive(Debug, Serialize)]
pub struct PlatformEntry<'a> {
    pub platform: &'a str,
    pub manifest_digest: &'a Digest,
    pub config_digest: &'a Digest,
    pub started_ms: u64,
    pub finished_ms: u64,
    pub layers: Vec<LayerEntry<'a>>,
}

#[derive(Debug, Serialize)]
pub struct LayerEntry<'a> {
    pub name: &'a str,
    pub digest: &'a Digest,
    pub diff_id: &'a Digest,
    pub size: u64,
    /// `"rebuilt"` (laid down and compressed in this build) or `"reused"`
    /// (an identical layer was in the store; nothing was compressed).
    pub status: &'static str,
    pub started_ms: u64,
    pub finished_ms: u64,
}

impl<'a> Report<'a> {
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
                            status: if l.reused { "reused" } else { "rebuilt" },
                            started_ms: l.started_ms,
                            finished_ms: l.finished_ms,
                        })
                        .collect(),
                })
                .collect(),
        }
    }
}
