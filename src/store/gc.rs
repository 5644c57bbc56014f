//! Keeping the store bounded: `gantry gc` removes blobs and records not
//! used for a while, what killed runs left in `tmp/`, and blobs moved aside
//! as damaged.
//!
//! "Used" is the mtime: every blob and record a build or push uses is
//! touched (at most once per [`TOUCH_AFTER`]). A running process may be
//! about to use something it touched up to [`TOUCH_AFTER`] before it
//! started, so nothing touched since then is removed while it runs. Each
//! process that opens the store registers in `users/` (a file it holds an
//! `flock` on, its mtime the start), under the shared `lock`; `gc` holds
//! that lock exclusively while it works, so no process starts meanwhile.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{Store, BLOB_TEMP, RECORD_TEMP, TOUCH_AFTER};
use crate::error::{IoContext, Result};
use crate::fsutil::{self, Freed};

pub(super) const USERS: &str = "users";
pub(super) const CORRUPT: &str = "corrupt";
const LOCK: &str = "lock";
const NEW_USER: &str = ".new-";

/// A process's registration as a user of the store.
#[derive(Debug)]
pub(super) struct User {
    /// Open and locked for as long as the process uses the store.
    _file: File,
    path: PathBuf,
}

impl Drop for User {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

fn lock_file(root: &Path) -> Result<File> {
    let path = root.join(LOCK);
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .at(&path)
}

/// Registers this process as a user of the store at `root`; waits while a
/// `gc` runs.
pub(super) fn register(root: &Path) -> Result<User> {
    use rustix::fs::{flock, FlockOperation};
    let lock = lock_file(root)?;
    let lock_path = root.join(LOCK);
    flock(&lock, FlockOperation::LockShared)
        .map_err(std::io::Error::from)
        .at(&lock_path)?;
    let dir = root.join(USERS);
    // Locked under a temporary name and renamed, so that no one ever sees
    // a registration that is not locked yet.
    let temp = fsutil::locked_temp_file(&dir, NEW_USER, None).at(&dir)?;
    let path = dir.join(format!("{}-{:016x}", std::process::id(), fastrand::u64(..)));
    let file = temp.persist(&path).map_err(|e| e.error).at(&path)?;
    drop(lock);
    Ok(User { _file: file, path })
}

/// What `gc` keeps, and whether it removes anything.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Blobs and records not used for this long are removed.
    pub keep: Duration,
    /// Count what would be removed, remove nothing.
    pub dry_run: bool,
}

/// What `gc` removed (or would remove, in a dry run).
#[derive(Debug, Default, Clone, Serialize)]
pub struct GcReport {
    /// Nothing was removed; the figures are what would have been.
    pub dry_run: bool,
    /// Blobs not used within the keep time.
    pub blobs: Freed,
    /// Metadata records not used within the keep time.
    pub records: Freed,
    /// Temporaries whose writer is gone.
    pub temporaries: Freed,
    /// Blobs moved aside as damaged.
    pub corrupt: Freed,
    /// Other processes using the store while `gc` ran; what they may use
    /// was kept.
    pub running: u64,
}

impl GcReport {
    /// Everything removed, of every kind.
    pub fn total(&self) -> Freed {
        let mut t = Freed::default();
        for f in [self.blobs, self.records, self.temporaries, self.corrupt] {
            t.add(f);
        }
        t
    }
}

/// Prunes the store (see the module documentation).
pub fn gc(store: &Store, opts: &GcOptions) -> Result<GcReport> {
    use rustix::fs::{flock, FlockOperation};
    let root = store.root();
    let lock = lock_file(root)?;
    flock(&lock, FlockOperation::LockExclusive)
        .map_err(std::io::Error::from)
        .at(root.join(LOCK))?;
    let mut report = GcReport {
        dry_run: opts.dry_run,
        ..Default::default()
    };
    let now = SystemTime::now();
    let mut cutoff = now.checked_sub(opts.keep).unwrap_or(SystemTime::UNIX_EPOCH);

    let mine = store.shared.user.as_ref().map(|u| u.path.clone());
    let users = root.join(USERS);
    for entry in fs::read_dir(&users).at(&users)?.flatten() {
        let path = entry.path();
        if Some(&path) == mine.as_ref() || entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(f) = File::open(&path) else { continue };
        if fsutil::try_lock(&f).unwrap_or(false) {
            // Its process is gone.
            if !opts.dry_run {
                let _ = fs::remove_file(&path);
            }
            continue;
        }
        report.running += 1;
        if let Ok(started) = f.metadata().and_then(|m| m.modified()) {
            let guard = started
                .checked_sub(TOUCH_AFTER + Duration::from_secs(60))
                .unwrap_or(SystemTime::UNIX_EPOCH);
            cutoff = cutoff.min(guard);
        }
    }

    let temps = |dir: &Path, prefixes: &[&str]| fsutil::reclaim_stale(dir, prefixes, opts.dry_run);
    // Opening the store reclaimed some already, dry run or not: removing
    // what no running writer holds is always safe.
    report.temporaries.add(store.shared.reclaimed);
    report
        .temporaries
        .add(temps(&root.join("tmp"), &[BLOB_TEMP, RECORD_TEMP]));
    report.temporaries.add(temps(&users, &[NEW_USER]));

    report.corrupt = remove_older(&root.join(CORRUPT), now, opts.dry_run);
    report.blobs = remove_older(&root.join("blobs/sha256"), cutoff, opts.dry_run);
    let meta = root.join("meta");
    for kind in fs::read_dir(&meta).at(&meta)?.flatten() {
        let dir = kind.path();
        if dir.is_dir() {
            // Records were once written through temporaries beside them.
            report.temporaries.add(temps(&dir, &[fsutil::TEMP_PREFIX]));
            report.records.add(remove_older(&dir, cutoff, opts.dry_run));
        }
    }
    drop(lock);
    Ok(report)
}

/// Removes the regular files in `dir` last modified before `cutoff`,
/// temporaries aside.
fn remove_older(dir: &Path, cutoff: SystemTime, dry_run: bool) -> Freed {
    let mut freed = Freed::default();
    let Ok(entries) = fs::read_dir(dir) else {
        return freed;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let Ok(m) = entry.metadata() else { continue };
        if !m.is_file() || m.modified().map_or(true, |t| t >= cutoff) {
            continue;
        }
        if dry_run || fs::remove_file(entry.path()).is_ok() {
            freed.add(Freed {
                count: 1,
                bytes: m.len(),
            });
        }
    }
    freed
}
