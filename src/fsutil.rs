//! Atomic output: everything gantry writes appears whole or not at all, and
//! what a killed run left half-written is reclaimed by the next one.
//!
//! Every temporary gantry creates is named `<prefix><pid>-<random>` and holds
//! an exclusive `flock` for as long as its writer works on it. The kernel
//! drops the lock when the writer exits, however it exits, so a temporary
//! whose lock is free and whose process is gone is stale and can be removed
//! ([`reclaim_stale`]).

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, IoContext, Result};

/// The prefix of the temporaries written beside outputs.
pub const TEMP_PREFIX: &str = ".gantry-tmp-";

/// The prefix of an earlier output moved aside while its replacement is
/// renamed into place.
const ASIDE_PREFIX: &str = ".gantry-old-";

/// A temporary older than this whose lock is free is stale even if a
/// process of its pid runs: that pid has been reused.
const STALE_AFTER: Duration = Duration::from_secs(3600);

/// Takes an exclusive lock on `file` without waiting; `Ok(false)` when
/// another open file holds it.
pub fn try_lock(file: &File) -> io::Result<bool> {
    use rustix::fs::{flock, FlockOperation};
    match flock(file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// A temporary file in `dir` named `<prefix><pid>-<random>`, locked while
/// it is open (see the module documentation).
pub fn locked_temp_file(
    dir: &Path,
    prefix: &str,
    mode: Option<u32>,
) -> io::Result<tempfile::NamedTempFile> {
    let prefix = format!("{prefix}{}-", std::process::id());
    let mut b = tempfile::Builder::new();
    b.prefix(&prefix);
    #[cfg(unix)]
    if let Some(mode) = mode {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(fs::Permissions::from_mode(mode));
    }
    let temp = b.tempfile_in(dir)?;
    try_lock(temp.as_file())?;
    Ok(temp)
}

/// What reclaiming or pruning removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct Freed {
    /// Entries removed, a directory counting once (in a dry run, those
    /// that would be).
    pub count: u64,
    /// Their size in bytes: file lengths, a directory's summed over its
    /// contents.
    pub bytes: u64,
}

impl Freed {
    /// Adds another pass's figures to these.
    pub fn add(&mut self, other: Freed) {
        self.count += other.count;
        self.bytes += other.bytes;
    }
}

/// Removes the temporaries in `dir` (those named with one of `prefixes`, and
/// moved-aside outputs) that no running writer holds: their lock is free and
/// their process is gone. `dry_run` only counts them.
pub fn reclaim_stale(dir: &Path, prefixes: &[&str], dry_run: bool) -> Freed {
    let mut freed = Freed::default();
    let Ok(entries) = fs::read_dir(dir) else {
        return freed;
    };
    let me = std::process::id();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let (rest, locked) = if let Some(rest) = name.strip_prefix(ASIDE_PREFIX) {
            // Asides are old outputs, never locked: only the pid tells.
            (rest, false)
        } else if let Some(rest) = prefixes.iter().find_map(|p| name.strip_prefix(p)) {
            (rest, true)
        } else {
            continue;
        };
        let pid = rest
            .split_once('-')
            .and_then(|(pid, _)| pid.parse::<u32>().ok());
        if pid == Some(me) {
            continue;
        }
        let path = entry.path();
        let Ok(meta) = fs::symlink_metadata(&path) else {
            continue;
        };
        let old = meta
            .modified()
            .ok()
            .and_then(|m| SystemTime::now().duration_since(m).ok())
            .is_some_and(|age| age > STALE_AFTER);
        // Held for the removal, so a writer cannot be in it meanwhile.
        let _lock = if locked {
            let Ok(f) = File::open(&path) else { continue };
            if !matches!(try_lock(&f), Ok(true)) {
                continue;
            }
            Some(f)
        } else {
            None
        };
        // A free lock and a live pid: the writer may be between creating
        // the file and locking it. Without a pid (an older name), only age.
        let gone = match pid {
            Some(pid) => !process_alive(pid) || old,
            None => old,
        };
        if !gone {
            continue;
        }
        let bytes = tree_size(&path, &meta);
        if !dry_run {
            let removed = if meta.is_dir() {
                fs::remove_dir_all(&path)
            } else {
                fs::remove_file(&path)
            };
            if removed.is_err() {
                continue;
            }
        }
        freed.add(Freed { count: 1, bytes });
    }
    freed
}

/// Whether a process with this pid runs (in this pid namespace).
pub fn process_alive(pid: u32) -> bool {
    Path::new("/proc").join(pid.to_string()).exists() || !Path::new("/proc/self").exists()
    // no procfs: assume it runs
}

fn tree_size(path: &Path, meta: &fs::Metadata) -> u64 {
    if !meta.is_dir() {
        return meta.len();
    }
    let Ok(entries) = fs::read_dir(path) else {
        return 0;
    };
    entries
        .flatten()
        .filter_map(|e| {
            let p = e.path();
            fs::symlink_metadata(&p).ok().map(|m| tree_size(&p, &m))
        })
        .sum()
}

/// Reclaims what killed runs left beside `dest`.
fn reclaim_beside(dest: &Path) {
    reclaim_stale(&parent_dir(dest), &[TEMP_PREFIX], false);
}

/// A file written under a temporary name beside its destination and renamed
/// into place by [`AtomicFile::commit`]. Dropped without commit, it vanishes.
pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    /// Opens a temporary beside `dest` (in its directory, so the rename
    /// cannot cross file systems), first reclaiming stale ones a killed run
    /// left there. `dest` is not touched until [`AtomicFile::commit`].
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let dir = parent_dir(dest);
        reclaim_beside(dest);
        // Temp files are created 0600; outputs should look like anything
        // else the user creates, so ask for the usual mode and let the
        // umask apply.
        let temp = locked_temp_file(&dir, TEMP_PREFIX, Some(0o666)).at(&dir)?;
        Ok(AtomicFile {
            temp,
            dest: dest.to_path_buf(),
        })
    }

    /// Flushes and syncs the bytes to disk, then renames the file over
    /// `dest`, so a reader sees the old file or the whole new one.
    pub fn commit(mut self) -> Result<()> {
        self.temp.flush().at(&self.dest)?;
        self.temp.as_file().sync_all().at(&self.dest)?;
        self.temp
            .persist(&self.dest)
            .map_err(|e| Error::io(&self.dest, e.error))?;
        Ok(())
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.temp.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.temp.flush()
    }
}

/// Writes `bytes` to `dest` atomically.
pub fn write_atomic(dest: &Path, bytes: &[u8]) -> Result<()> {
    let mut f = AtomicFile::create(dest)?;
    f.write_all(bytes).at(dest)?;
    f.commit()
}

/// A directory built under a temporary name beside its destination and
/// swapped into place by [`AtomicDir::commit`]; dropped without commit, it is
/// removed, so a failed run never leaves a half-written layout behind.
pub struct AtomicDir {
    temp: Option<tempfile::TempDir>,
    /// The temp directory, open and locked while it is written.
    _lock: File,
    dest: PathBuf,
}

impl AtomicDir {
    /// Prepares to write `dest`. An existing `dest` is replaced only if it is
    /// an empty directory or `replaceable` says it may be (e.g. it is an
    /// earlier output of the same kind): a mistyped `-o src/` must never
    /// delete a user's directory, and a regular file is never replaced by one.
    pub fn create(dest: &Path, replaceable: impl Fn(&Path) -> bool) -> Result<AtomicDir> {
        let dest = dest.components().collect::<PathBuf>();
        let refuse = |why: &str| {
            Err(Error::io(
                &dest,
                io::Error::new(io::ErrorKind::AlreadyExists, why.to_string()),
            ))
        };
        // Another process committing the same destination can move it aside
        // in the middle of this check; only a directory that stayed the same
        // directory throughout is refused.
        for _ in 0..64 {
            let Ok(meta) = fs::symlink_metadata(&dest) else {
                break;
            };
            if !meta.is_dir() {
                return refuse("exists and is not a directory; remove it or choose another path");
            }
            let empty = match fs::read_dir(&dest) {
                Ok(mut entries) => entries.next().is_none(),
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::io(&dest, e)),
            };
            if empty || replaceable(&dest) {
                break;
            }
            if same_file(&meta, &fs::symlink_metadata(&dest).ok()) {
                return refuse(
                    "exists and is not an earlier output of this kind; \
                     remove it or choose another path",
                );
            }
        }
        let dir = parent_dir(&dest);
        reclaim_beside(&dest);
        let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
        let temp = dir_builder(&prefix).tempdir_in(&dir).at(&dir)?;
        let lock = File::open(temp.path()).at(temp.path())?;
        try_lock(&lock).at(temp.path())?;
        Ok(AtomicDir {
            temp: Some(temp),
            _lock: lock,
            dest,
        })
    }

    /// The temporary directory to write into; `dest` itself appears only
    /// on [`AtomicDir::commit`].
    pub fn path(&self) -> &Path {
        self.temp.as_ref().expect("not yet committed").path()
    }

    /// Replaces `dest` with the new directory. An existing destination is
    /// moved aside first and removed only once the new one is in place.
    ///
    /// Another process may commit the same destination at the same moment:
    /// whichever renames into place last wins, and neither fails, because a
    /// directory that appears between moving the old one aside and renaming
    /// the new one in is moved aside in turn.
    pub fn commit(self) -> Result<()> {
        self.commit_racing(|| {})
    }

    /// [`AtomicDir::commit`], calling `between` where another process's
    /// commit could interleave (tests race through it).
    fn commit_racing(mut self, mut between: impl FnMut()) -> Result<()> {
        let temp = self.temp.take().expect("commit once").keep();
        let mut asides = Vec::new();
        let mut attempt = 0;
        let result = loop {
            attempt += 1;
            if self.dest.exists() {
                let aside = self.dest.with_file_name(format!(
                    ".gantry-old-{}-{attempt}-{}",
                    std::process::id(),
                    self.dest
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default()
                ));
                match fs::rename(&self.dest, &aside) {
                    Ok(()) => asides.push(aside),
                    // Moved aside by another process in the meantime.
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => break Err(Error::io(&self.dest, e)),
                }
            }
            between();
            match fs::rename(&temp, &self.dest) {
                Ok(()) => break Ok(()),
                Err(_) if attempt < 8 && self.dest.exists() => continue,
                Err(e) => break Err(Error::io(&self.dest, e)),
            }
        };
        if let Err(e) = result {
            // Put back what was there, if nothing took its place.
            if let Some(first) = asides.first() {
                if fs::rename(first, &self.dest).is_err() && self.dest.exists() {
                    // Another process's output replaced it after all.
                    let _ = fs::remove_dir_all(first);
                }
            }
            for a in asides.iter().skip(1) {
                let _ = fs::remove_dir_all(a);
            }
            let _ = fs::remove_dir_all(&temp);
            return Err(e);
        }
        for a in &asides {
            fs::remove_dir_all(a).at(a)?;
        }
        Ok(())
    }
}

fn same_file(a: &fs::Metadata, b: &Option<fs::Metadata>) -> bool {
    use std::os::unix::fs::MetadataExt;
    b.as_ref()
        .is_some_and(|b| a.dev() == b.dev() && a.ino() == b.ino())
}

fn parent_dir(dest: &Path) -> PathBuf {
    match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn dir_builder(prefix: &str) -> tempfile::Builder<'_, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(prefix);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(fs::Permissions::from_mode(0o777));
    }
    b
}

/// Reads until `buf` is full or the reader ends; returns the bytes read.
pub fn read_up_to(r: &mut dyn std::io::Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_directory_committed_by_another_process_meanwhile_is_replaced_not_an_error() {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        fs::create_dir(&dest).unwrap();
        fs::write(dest.join("old"), "old").unwrap();
        let dir = AtomicDir::create(&dest, |_| true).unwrap();
        fs::write(dir.path().join("mine"), "mine").unwrap();
        let mut raced = false;
        dir.commit_racing(|| {
            // The other process's rename lands between ours.
            if !raced {
                raced = true;
                fs::create_dir(&dest).unwrap();
                fs::write(dest.join("theirs"), "theirs").unwrap();
            }
        })
        .unwrap();
        let names: Vec<String> = fs::read_dir(&dest)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["mine"]);
        let left: Vec<_> = fs::read_dir(root.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "nothing but the output is left beside it");
    }

    #[test]
    fn only_temporaries_whose_writer_is_gone_are_reclaimed() {
        let dir = tempfile::tempdir().unwrap();
        // No process has this pid (pids stop at 2^22).
        let dead = dir.path().join(".gantry-tmp-4194399-aaaa");
        fs::write(&dead, b"12345").unwrap();
        let held = dir.path().join(".gantry-tmp-4194399-bbbb");
        fs::write(&held, b"x").unwrap();
        let lock = File::open(&held).unwrap();
        assert!(try_lock(&lock).unwrap());
        let aside = dir.path().join(".gantry-old-4194399-1-out");
        fs::create_dir(&aside).unwrap();
        fs::write(aside.join("f"), b"123").unwrap();
        let other = dir.path().join("user-file");
        fs::write(&other, b"mine").unwrap();
        let live = locked_temp_file(dir.path(), TEMP_PREFIX, None).unwrap();

        let freed = reclaim_stale(dir.path(), &[TEMP_PREFIX], true);
        assert_eq!(freed, Freed { count: 2, bytes: 8 });
        assert!(dead.exists(), "a dry run removes nothing");
        let freed = reclaim_stale(dir.path(), &[TEMP_PREFIX], false);
        assert_eq!(freed, Freed { count: 2, bytes: 8 });
        assert!(!dead.exists() && !aside.exists());
        assert!(held.exists(), "its writer holds the lock");
        assert!(other.exists() && live.path().exists());
    }
}
