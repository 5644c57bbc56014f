//! Scanning a source directory: every entry below it with its metadata, and
//! a symlink's target, read on a few threads and returned in path order.
//!
//! A no-op rebuild does nothing but this for every input (the layer cache
//! compares each file's identity), so it is the whole cost of a rebuild that
//! finds nothing changed. The work is almost all system calls (`getdents`,
//! `statx`), which run in parallel on several cores. Entries are examined
//! through their open directory (`DirEntry::metadata` is a `statx` relative
//! to it), not by full path.

use std::ffi::OsString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use globset::GlobSet;

/// Threads at most; more gain nothing on the directory trees of a build.
const MAX_THREADS: usize = 4;

#[derive(Debug)]
pub struct Scanned {
    /// Relative to the root.
    pub rel: PathBuf,
    pub path: PathBuf,
    pub kind: Kind,
}

#[derive(Debug)]
pub enum Kind {
    /// Nothing of a directory's own metadata goes into a layer, so none is
    /// read: its type comes from the directory listing.
    Dir,
    Symlink {
        target: PathBuf,
    },
    /// A regular file, or something a layer cannot hold (the caller says).
    Other(fs::Metadata),
}

/// Every entry below `root` (not `root` itself) that `exclude` does not
/// match, sorted by the bytes of its path; an excluded directory is not
/// entered. On failure, the path and error of the first failure in that
/// order, so the error reported does not depend on thread timing.
pub fn scan(
    root: &Path,
    exclude: Option<&GlobSet>,
) -> std::result::Result<Vec<Scanned>, (PathBuf, io::Error)> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS);
    let queue = Queue {
        state: Mutex::new((vec![PathBuf::new()], 0)),
        ready: Condvar::new(),
    };
    let found = Mutex::new(Vec::new());
    let failed = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| {
                // Results stay with the thread until it is done, so the
                // threads share nothing but the queue.
                let (mut mine, mut errors) = (Vec::new(), Vec::new());
                while let Some(rel_dir) = queue.take() {
                    let mut subdirs = Vec::new();
                    match read(root, &rel_dir, exclude, &mut subdirs) {
                        Ok(items) => mine.extend(items),
                        Err(e) => errors.push(e),
                    }
                    queue.done(subdirs);
                }
                found.lock().expect("found lock").extend(mine);
                failed.lock().expect("failed lock").extend(errors);
            });
        }
    });
    let mut failed = failed.into_inner().expect("failed lock");
    failed.sort_by(|a, b| a.0.as_os_str().as_bytes().cmp(b.0.as_os_str().as_bytes()));
    if let Some(first) = failed.into_iter().next() {
        return Err(first);
    }
    let mut found = found.into_inner().expect("found lock");
    // Byte order, which is cheaper than comparing path components and as
    // deterministic.
    found.sort_unstable_by(|a, b| {
        a.rel
            .as_os_str()
            .as_bytes()
            .cmp(b.rel.as_os_str().as_bytes())
    });
    Ok(found)
}

/// One directory's entries; its subdirectories go to `subdirs`.
fn read(
    root: &Path,
    rel_dir: &Path,
    exclude: Option<&GlobSet>,
    subdirs: &mut Vec<PathBuf>,
) -> std::result::Result<Vec<Scanned>, (PathBuf, io::Error)> {
    let dir = root.join(rel_dir);
    let entries: Vec<(OsString, fs::DirEntry)> = fs::read_dir(&dir)
        .and_then(|rd| rd.map(|e| e.map(|e| (e.file_name(), e))).collect())
        .map_err(|e| (dir.clone(), e))?;
    let mut out = Vec::with_capacity(entries.len());
    for (name, entry) in entries {
        let rel = rel_dir.join(&name);
        if exclude.is_some_and(|ex| ex.is_match(&rel)) {
            continue;
        }
        let path = entry.path();
        // The listing's type (d_type) costs no system call; std stats the
        // entry only where the file system does not provide it.
        let file_type = entry.file_type().map_err(|e| (path.clone(), e))?;
        let kind = if file_type.is_dir() {
            subdirs.push(rel.clone());
            Kind::Dir
        } else if file_type.is_symlink() {
            Kind::Symlink {
                target: fs::read_link(&path).map_err(|e| (path.clone(), e))?,
            }
        } else {
            Kind::Other(entry.metadata().map_err(|e| (path.clone(), e))?)
        };
        out.push(Scanned { rel, path, kind });
    }
    Ok(out)
}

/// Directories still to read, and how many are being read: the scan ends
/// when both are zero.
struct Queue {
    state: Mutex<(Vec<PathBuf>, usize)>,
    ready: Condvar,
}

impl Queue {
    fn take(&self) -> Option<PathBuf> {
        let mut st = self.state.lock().expect("queue lock");
        loop {
            if let Some(d) = st.0.pop() {
                st.1 += 1;
                return Some(d);
            }
            if st.1 == 0 {
                return None;
            }
            st = self.ready.wait(st).expect("queue lock");
        }
    }

    fn done(&self, subdirs: Vec<PathBuf>) {
        let mut st = self.state.lock().expect("queue lock");
        let new_work = !subdirs.is_empty();
        st.0.extend(subdirs);
        st.1 -= 1;
        // Waiters need waking only for new work, or to learn it is over.
        if new_work || (st.0.is_empty() && st.1 == 0) {
            self.ready.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scan_returns_every_entry_in_path_order_and_skips_excluded_directories() {
        let d = tempfile::tempdir().unwrap();
        for p in ["b/x.txt", "a/c/y.txt", "a/z.txt", "skip/inner.txt", "a.txt"] {
            let f = d.path().join(p);
            fs::create_dir_all(f.parent().unwrap()).unwrap();
            fs::write(f, p).unwrap();
        }
        std::os::unix::fs::symlink("a.txt", d.path().join("link")).unwrap();
        let mut ex = globset::GlobSetBuilder::new();
        ex.add(globset::Glob::new("skip").unwrap());
        let ex = ex.build().unwrap();
        let got = scan(d.path(), Some(&ex)).unwrap();
        let rels: Vec<String> = got.iter().map(|s| s.rel.display().to_string()).collect();
        assert_eq!(
            rels,
            [
                "a",
                "a.txt",
                "a/c",
                "a/c/y.txt",
                "a/z.txt",
                "b",
                "b/x.txt",
                "link"
            ]
        );
        let link = got.iter().find(|s| s.rel == Path::new("link")).unwrap();
        assert!(matches!(&link.kind, Kind::Symlink { target } if target == Path::new("a.txt")));
        let dir = got.iter().find(|s| s.rel == Path::new("a/c")).unwrap();
        assert!(matches!(dir.kind, Kind::Dir));
    }

    #[test]
    fn scan_reports_the_first_failure_in_path_order() {
        let d = tempfile::tempdir().unwrap();
        assert!(scan(&d.path().join("missing"), None).is_err());
    }
}
