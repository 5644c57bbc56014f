//! Reproducible layers: a declared file set becomes a sorted list of entries
//! ([`fileset`]), written as a tar stream ([`tar`]) and compressed
//! ([`compress`]) into the store in one pass.
//!
//! The same file set is never compressed twice: a layer's recipe (entries,
//! metadata, compression) together with each source file's identity (device,
//! inode, size, mtime, ctime) keys a record of the finished layer. When any
//! identity has changed, the tar stream is hashed without compression first,
//! and a layer with that diff_id and compression already in the store is
//! reused.

pub mod compress;
pub mod fileset;
pub mod tar;

use std::fs::File;
use std::io::{self, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Hasher, HashingWriter};
use crate::error::{Error, Result};
use crate::image::LayerDesc;
use crate::progress::{Event, Reporter};
use crate::store::Store;
use compress::{CompressOptions, Encoder};
use fileset::Entry;
use tar::{EntryKind, TarWriter};

/// Bumped whenever the tar or compression output for the same inputs
/// changes, so stale cache records are never trusted.
const FORMAT_VERSION: u32 = 1;

/// Report progress every this many bytes.
const PROGRESS_STEP: u64 = 8 << 20;

pub struct LayerJob<'a> {
    pub image: &'a str,
    pub name: &'a str,
    pub entries: &'a [Entry],
    pub compress: CompressOptions,
}

/// The result of building a layer.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    pub desc: LayerDesc,
    /// An identical layer was already in the store; nothing was compressed.
    pub reused: bool,
}

#[derive(Serialize, Deserialize)]
struct Record {
    desc: LayerDesc,
}

/// Lays down a layer into the store.
pub fn build(store: &Store, job: &LayerJob<'_>, reporter: &dyn Reporter) -> Result<BuiltLayer> {
    let total: u64 = job
        .entries
        .iter()
        .map(|e| match e.header.kind {
            EntryKind::File { size } => size,
            _ => 0,
        })
        .sum();
    reporter.report(Event::LayerStarted {
        image: job.image,
        layer: job.name,
        bytes: total,
    });

    let recipe = recipe_key(job);
    let comp_key = format!(
        "{:?}-{}-v{FORMAT_VERSION}",
        job.compress.compression, job.compress.level
    )
    .to_lowercase();

    let reuse = |desc: LayerDesc| {
        reporter.report(Event::LayerFinished {
            image: job.image,
            layer: job.name,
            digest: &desc.digest,
            size: desc.size,
            reused: true,
        });
        BuiltLayer { desc, reused: true }
    };

    // 1. Nothing changed since the last build of this recipe: no reading.
    if let Some(rec) = store.get_meta::<Record>("layers-by-recipe", &recipe.hex()) {
        if store.size(&rec.desc.digest) == Some(rec.desc.size) {
            return Ok(reuse(rec.desc));
        }
    }

    // 2. Some file's identity changed: hash the tar stream to learn the
    //    diff_id, and reuse a layer with that content if the store has one.
    let diff_id = {
        let mut sink = HashingWriter::new(io::sink());
        write_tar(job, &mut sink, None)?;
        sink.finish().1
    };
    let by_content = format!("{}-{comp_key}", diff_id.hex());
    if let Some(rec) = store.get_meta::<Record>("layers-by-content", &by_content) {
        if store.size(&rec.desc.digest) == Some(rec.desc.size) {
            if !racy(job) {
                store.put_meta("layers-by-recipe", &recipe.hex(), &rec)?;
            }
            return Ok(reuse(rec.desc));
        }
    }

    // 3. New content: tar, hash and compress in one pass.
    let blob = store.writer()?;
    let encoder = Encoder::new(job.compress, blob).map_err(|e| io_err(job, e))?;
    let mut tar_out = HashingWriter::new(encoder);
    write_tar(job, &mut tar_out, Some((reporter, job)))?;
    let (encoder, second_diff_id, _) = tar_out.finish();
    let blob = encoder.finish().map_err(|e| io_err(job, e))?;
    if second_diff_id != diff_id {
        return Err(Error::Layer {
            image: job.image.into(),
            layer: job.name.into(),
            message: "input files changed while the layer was being built".into(),
        });
    }
    let (digest, size) = blob.commit()?;
    let desc = LayerDesc {
        media_type: job.compress.compression.media_type().to_string(),
        digest,
        size,
        diff_id,
    };
    let rec = Record { desc: desc.clone() };
    store.put_meta("layers-by-content", &by_content, &rec)?;
    if !racy(job) {
        store.put_meta("layers-by-recipe", &recipe.hex(), &rec)?;
    }
    reporter.report(Event::LayerFinished {
        image: job.image,
        layer: job.name,
        digest: &desc.digest,
        size: desc.size,
        reused: false,
    });
    Ok(BuiltLayer {
        desc,
        reused: false,
    })
}

fn io_err(job: &LayerJob<'_>, e: io::Error) -> Error {
    Error::Layer {
        image: job.image.into(),
        layer: job.name.into(),
        message: e.to_string(),
    }
}

/// A digest of everything that decides the layer's bytes, plus the identity
/// of each source file.
fn recipe_key(job: &LayerJob<'_>) -> Digest {
    let mut h = Hasher::new();
    h.update(format!("gantry-layer-v{FORMAT_VERSION}\0").as_bytes());
    // Thread count changes speed, never bytes, so it is not part of the key.
    h.update(format!("{:?}\0{}\0", job.compress.compression, job.compress.level).as_bytes());
    for e in job.entries {
        h.update(format!("{:?}\0{:?}\0{:?}\0", e.header, e.source, e.stat).as_bytes());
    }
    h.finish().0
}

/// A file changed within the last moments could change again within the
/// same timestamp tick without its identity changing (git's "racily clean"
/// problem); such a recipe is not recorded, so the next build hashes it.
fn racy(job: &LayerJob<'_>) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos() as i128;
    let margin = 2_000_000_000i128;
    job.entries
        .iter()
        .filter_map(|e| e.stat)
        .any(|s| s.mtime_ns >= now - margin || s.ctime_ns >= now - margin)
}

fn write_tar<W: Write>(
    job: &LayerJob<'_>,
    out: W,
    progress: Option<(&dyn Reporter, &LayerJob<'_>)>,
) -> Result<W> {
    let mut tar = TarWriter::new(out);
    let mut done = 0u64;
    let mut next_report = PROGRESS_STEP;
    for e in job.entries {
        match (&e.header.kind, &e.source) {
            (EntryKind::File { size }, Some(src)) => {
                let mut f = File::open(src).map_err(|err| Error::io(src, err))?;
                tar.append(&e.header, &mut f)
                    .map_err(|err| Error::io(src, err))?;
                done += size;
                if let Some((r, j)) = progress {
                    if done >= next_report {
                        r.report(Event::LayerProgress {
                            image: j.image,
                            layer: j.name,
                            done,
                        });
                        next_report = done + PROGRESS_STEP;
                    }
                }
            }
            _ => tar
                .append(&e.header, &mut io::empty())
                .map_err(|err| io_err(job, err))?,
        }
    }
    tar.finish().map_err(|err| io_err(job, err))
}
