//! Reading a layer's source files into its tar stream, and making sure each
//! file read is the file that was planned.
//!
//! A file rewritten in place while it is read, at the same size, passes the
//! tar writer's length checks and gives bytes of neither version. So once a
//! file is read, its identity (device, inode, size, mtime, ctime) is taken
//! again from the open descriptor, one `fstat`, and compared with the one
//! the layer was planned with (the scan's). Any write to the file since the
//! scan changes its ctime, and Linux (since 6.13, on ext4, xfs, btrfs and
//! tmpfs) gives a write that follows a look at the ctime a later one, even
//! within one clock tick. On a change the whole pass starts again, now
//! expecting the identity just seen, at most [`ATTEMPTS`] times; then the
//! layer fails, naming the file. Nothing of a discarded pass is kept: its
//! output is dropped, and a store writer dropped removes its file.

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::files::{self, Hashing};
use super::fileset::{self, Entry, FileStat};
use super::tar::{EntryKind, TarWriter};
use super::{io_err, LayerJob, PROGRESS_STEP};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::progress::{Event, Reporter};
use crate::sbom::spdx::LayerFile;

/// Passes over a layer's files before a file that keeps changing fails it.
pub(super) const ATTEMPTS: usize = 3;

/// File timestamps come from a clock that may advance only once a tick (up
/// to 10 ms at the lowest kernel HZ) and lag the system clock by up to one:
/// this much past a timestamp, a new write is sure to get a later one.
const TIMESTAMP_TICK_NS: i128 = 20_000_000;

/// Where a layer's file contents come from. Builds read the file system
/// ([`Fs`]); tests read through one that also writes, to tear a read
/// deterministically.
pub(super) trait Sources {
    type File: Read;
    fn open(&self, path: &Path) -> io::Result<Self::File>;
    /// The identity of an open file, in the form the scan records it.
    fn identity(&self, file: &Self::File) -> io::Result<FileStat>;
}

/// The real file system, what every build reads through.
pub(super) struct Fs;

impl Sources for Fs {
    type File = File;

    fn open(&self, path: &Path) -> io::Result<File> {
        File::open(path)
    }

    fn identity(&self, file: &File) -> io::Result<FileStat> {
        file.metadata().map(|m| fileset::file_stat(&m))
    }
}

/// How a pass over the files ended: with the whole stream written, or at
/// the first file whose identity is not the one expected.
enum Pass<W> {
    Whole(Written<W>),
    Changed { index: usize, now: FileStat },
}

/// A layer's tar stream, written whole.
pub(super) struct Written<W> {
    /// Where it went.
    pub out: W,
    /// Its SHA-256.
    pub diff_id: Digest,
    /// Whether a file had changed since the entries were planned: then
    /// their identities no longer describe the content, and must not key
    /// a cache record.
    pub changed: bool,
    /// Every regular file with its checksums, taken as it was read, in tar
    /// order; none when the job takes no checksums.
    pub files: Vec<LayerFile>,
}

/// Writes the tar stream of `entries` into an output made by `start`, and
/// again into a new one whenever a file changed while it was read.
/// `entries` hold the identities expected; one seen on a repeat replaces
/// the planned one, so that a later pass over the same entries expects it
/// too.
pub(super) fn write_tar<S: Sources, W: Write>(
    job: &LayerJob<'_>,
    sources: &S,
    entries: &mut Cow<'_, [Entry]>,
    progress: Option<&dyn Reporter>,
    mut start: impl FnMut() -> Result<W>,
) -> Result<Written<W>> {
    let mut changed = false;
    let mut attempt = 1;
    loop {
        let out = Hashing::new(start()?, job.checksums);
        let (index, now) = match write_entries(job, sources, entries, out, progress)? {
            Pass::Whole(written) => return Ok(Written { changed, ..written }),
            Pass::Changed { index, now } => (index, now),
        };
        let entry = &entries[index];
        // The tar header holds the planned size: a file of another size
        // needs a new plan, not another read.
        let resized = matches!(entry.header.kind, EntryKind::File { size } if size != now.size);
        if resized || attempt == ATTEMPTS {
            let path = entry
                .source
                .as_deref()
                .unwrap_or(Path::new(&entry.header.path));
            let times = if attempt == 1 {
                "while it was being read".to_string()
            } else {
                format!("each of the {attempt} times it was read")
            };
            return Err(Error::Layer {
                image: job.image.into(),
                layer: job.name.into(),
                message: format!(
                    "{}: the file changed {times}; nothing was stored (build again once it \
                     stops changing)",
                    path.display()
                ),
                cause: None,
            });
        }
        entries.to_mut()[index].stat = Some(now);
        changed = true;
        attempt += 1;
        wait_past(&now);
    }
}

/// Before the next pass: lets the clock leave the timestamp tick of `seen`,
/// so that on a kernel with coarse timestamps a write during the next read
/// cannot carry the timestamp now expected.
fn wait_past(seen: &FileStat) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128);
    let wait = seen.ctime_ns.max(seen.mtime_ns) + TIMESTAMP_TICK_NS - now;
    // A timestamp in the future (a clock set back, a file touched ahead)
    // costs one tick, not the distance to it.
    let wait = wait.min(TIMESTAMP_TICK_NS);
    if wait > 0 {
        std::thread::sleep(Duration::from_nanos(wait as u64));
    }
}

/// The tar stream of `entries` into `out`; stops at the first file whose
/// identity is not the one planned, with its index and the identity seen.
fn write_entries<S: Sources, W: Write>(
    job: &LayerJob<'_>,
    sources: &S,
    entries: &[Entry],
    out: Hashing<W>,
    progress: Option<&dyn Reporter>,
) -> Result<Pass<W>> {
    let mut tar = TarWriter::new(out);
    // Every regular file's path, in the order its sums are taken.
    let mut paths = Vec::new();
    let mut done = 0u64;
    let mut next_report = PROGRESS_STEP;
    for (index, e) in entries.iter().enumerate() {
        match (&e.header.kind, &e.source) {
            (EntryKind::File { size }, Some(src)) => {
                let mut f = sources.open(src).map_err(|err| Error::io(src, err))?;
                tar.append(&e.header, &mut f)
                    .map_err(|err| Error::io(src, err))?;
                let now = sources.identity(&f).map_err(|err| Error::io(src, err))?;
                if e.stat.is_some_and(|planned| planned != now) {
                    return Ok(Pass::Changed { index, now });
                }
                paths.push(&e.header.path);
                done += size;
                if let Some(r) = progress {
                    if done >= next_report {
                        r.report(Event::LayerProgress {
                            image: job.image,
                            layer: job.name,
                            done,
                        });
                        next_report = done + PROGRESS_STEP;
                    }
                }
            }
            (kind, _) => {
                tar.append(&e.header, &mut io::empty())
                    .map_err(|err| io_err(job, err))?;
                if matches!(kind, EntryKind::File { .. }) {
                    paths.push(&e.header.path);
                }
            }
        }
    }
    let (out, diff_id, sums) = tar.finish().map_err(|err| io_err(job, err))?.finish();
    Ok(Pass::Whole(Written {
        out,
        diff_id,
        changed: false,
        files: paths
            .iter()
            .zip(&sums)
            .map(|(path, s)| files::layer_file(path, s))
            .collect(),
    }))
}

#[cfg(test)]
#[path = "source_tests.rs"]
mod tests;
