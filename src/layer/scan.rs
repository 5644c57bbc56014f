//! Scanning a source directory: every entry below it with its metadata, and
//! a symlink's target, read on a few threads and returned in path order.
//!
//! A no-op rebuild does nothing but this for every input (the layer cache
//! compares each file's identity), so it is the whole cost of a rebuild that
//! finds nothing changed. The work is almost all system calls, which run in
//! parallel on several cores, so it is written to make as few as the kernel
//! allows: per directory an `open`, `getdents` into a 32 KiB buffer until it
//! is empty, and a `close` (std's `read_dir` adds an `fstat` and reads 32
//! entries at a time on some platforms); per regular file one `fstatat`
//! relative to its open directory. A directory's or symlink's type comes
//! from the listing, and only regular files are statted.

use std::ffi::{CStr, OsStr};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex};

use globset::GlobSet;
use rustix::fs::{AtFlags, FileType, Mode, OFlags};

use super::fileset::FileStat;

/// Threads at most; more gain nothing on the directory trees of a build.
const MAX_THREADS: usize = 4;

/// Bytes of directory entries read per `getdents`: a directory of a few
/// hundred entries is read in one call (plus the one that finds the end).
#[cfg(any(target_os = "linux", target_os = "android"))]
const LISTING_BUFFER: usize = 32 << 10;

/// One entry found below the scanned root.
#[derive(Debug)]
pub struct Scanned {
    /// The entry's full path; its path relative to the root is the tail
    /// from `rel_start` (one allocation serves both).
    pub path: PathBuf,
    rel_start: usize,
    /// What it is, with the metadata a layer needs of that kind.
    pub kind: Kind,
}

impl Scanned {
    /// The path relative to the scanned root.
    pub fn rel(&self) -> &Path {
        tail(&self.path, self.rel_start)
    }
}

/// `path` from byte `from` on.
fn tail(path: &Path, from: usize) -> &Path {
    Path::new(OsStr::from_bytes(&path.as_os_str().as_bytes()[from..]))
}

/// What a scanned entry is, as far as a layer cares.
#[derive(Debug)]
pub enum Kind {
    /// Nothing of a directory's own metadata goes into a layer, so none is
    /// read: its type comes from the directory listing.
    Dir,
    /// A symbolic link, never followed.
    Symlink {
        /// Its target as stored, relative or absolute.
        target: PathBuf,
    },
    /// Anything else, with its `st_mode` (type and permission bits) and
    /// identity: a regular file, or something a layer cannot hold (the
    /// caller says).
    Other {
        /// `st_mode` from `fstatat`, type bits included.
        mode: u32,
        /// The file's identity, for the layer cache.
        stat: FileStat,
    },
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
                let mut listing = Listing::default();
                while let Some(rel_dir) = queue.take() {
                    let mut subdirs = Vec::new();
                    if let Err(e) = read(
                        root,
                        &rel_dir,
                        exclude,
                        &mut listing,
                        &mut mine,
                        &mut subdirs,
                    ) {
                        errors.push(e);
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
    // Every path starts with the same root, so ordering full paths orders
    // relative ones; bytes, which is cheaper than comparing components and
    // as deterministic.
    found.sort_unstable_by(|a, b| {
        a.path
            .as_os_str()
            .as_bytes()
            .cmp(b.path.as_os_str().as_bytes())
    });
    Ok(found)
}

/// One directory's entries, appended to `out`; its subdirectories (relative
/// to the root) go to `subdirs`.
fn read(
    root: &Path,
    rel_dir: &Path,
    exclude: Option<&GlobSet>,
    listing: &mut Listing,
    out: &mut Vec<Scanned>,
    subdirs: &mut Vec<PathBuf>,
) -> std::result::Result<(), (PathBuf, io::Error)> {
    let dir = root.join(rel_dir);
    let fail = |path: &Path, e: rustix::io::Errno| (path.to_path_buf(), io::Error::from(e));
    let fd = rustix::fs::open(
        &dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| fail(&dir, e))?;
    listing.read(&fd).map_err(|e| fail(&dir, e))?;
    let root_len = root.as_os_str().len();
    for (name, file_type) in listing.entries() {
        let name = OsStr::from_bytes(name.to_bytes());
        let path = dir.join(name);
        // `join` adds a separator unless the root ends with one.
        let rel_start = root_len + usize::from(path.as_os_str().as_bytes()[root_len] == b'/');
        let rel = tail(&path, rel_start);
        if exclude.is_some_and(|ex| ex.is_match(rel)) {
            continue;
        }
        let stat = || rustix::fs::statat(&fd, name, AtFlags::SYMLINK_NOFOLLOW);
        // File systems without `d_type` in their listings say "unknown":
        // the stat tells, and is kept for a regular file.
        let (file_type, st) = match file_type {
            FileType::Unknown => {
                let st = stat().map_err(|e| fail(&path, e))?;
                (FileType::from_raw_mode(st.st_mode as _), Some(st))
            }
            t => (t, None),
        };
        let kind = match file_type {
            FileType::Directory => {
                subdirs.push(rel.to_path_buf());
                Kind::Dir
            }
            FileType::Symlink => {
                let target =
                    rustix::fs::readlinkat(&fd, name, Vec::new()).map_err(|e| fail(&path, e))?;
                Kind::Symlink {
                    target: PathBuf::from(OsStr::from_bytes(target.as_bytes())),
                }
            }
            _ => other(&match st {
                Some(st) => st,
                None => stat().map_err(|e| fail(&path, e))?,
            }),
        };
        out.push(Scanned {
            path,
            rel_start,
            kind,
        });
    }
    Ok(())
}

// The field types of `struct stat` differ between architectures.
#[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
fn other(st: &rustix::fs::Stat) -> Kind {
    Kind::Other {
        mode: st.st_mode as u32,
        stat: FileStat {
            dev: st.st_dev as u64,
            ino: st.st_ino as u64,
            size: st.st_size as u64,
            mtime_ns: i128::from(st.st_mtime as i64) * 1_000_000_000
                + i128::from(st.st_mtime_nsec as i64),
            ctime_ns: i128::from(st.st_ctime as i64) * 1_000_000_000
                + i128::from(st.st_ctime_nsec as i64),
        },
    }
}

/// A directory's names and listed types, in buffers kept by each thread
/// from one directory to the next.
#[derive(Default)]
struct Listing {
    names: Names,
    #[cfg(any(target_os = "linux", target_os = "android"))]
    raw: Vec<std::mem::MaybeUninit<u8>>,
}

#[derive(Default)]
struct Names {
    /// NUL-terminated names, one after another.
    bytes: Vec<u8>,
    types: Vec<FileType>,
}

impl Names {
    fn add(&mut self, name: &CStr, file_type: FileType) {
        if !matches!(name.to_bytes(), b"." | b"..") {
            self.bytes.extend_from_slice(name.to_bytes_with_nul());
            self.types.push(file_type);
        }
    }
}

impl Listing {
    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn read(&mut self, fd: &OwnedFd) -> rustix::io::Result<()> {
        self.clear();
        if self.raw.is_empty() {
            self.raw = vec![std::mem::MaybeUninit::uninit(); LISTING_BUFFER];
        }
        let mut dir = rustix::fs::RawDir::new(fd, &mut self.raw);
        while let Some(entry) = dir.next() {
            let entry = entry?;
            self.names.add(entry.file_name(), entry.file_type());
        }
        Ok(())
    }

    #[cfg(not(any(target_os = "linux", target_os = "android")))]
    fn read(&mut self, fd: &OwnedFd) -> rustix::io::Result<()> {
        self.clear();
        for entry in rustix::fs::Dir::read_from(fd)? {
            let entry = entry?;
            self.names.add(entry.file_name(), entry.file_type());
        }
        Ok(())
    }

    fn clear(&mut self) {
        self.names.bytes.clear();
        self.names.types.clear();
    }

    fn entries(&self) -> impl Iterator<Item = (&CStr, FileType)> + '_ {
        let mut rest = &self.names.bytes[..];
        self.names.types.iter().map(move |t| {
            let name = CStr::from_bytes_until_nul(rest).expect("names are NUL-terminated");
            rest = &rest[name.to_bytes_with_nul().len()..];
            (name, *t)
        })
    }
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
    use std::fs;

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
        let rels: Vec<String> = got.iter().map(|s| s.rel().display().to_string()).collect();
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
        let link = got.iter().find(|s| s.rel() == Path::new("link")).unwrap();
        assert!(matches!(&link.kind, Kind::Symlink { target } if target == Path::new("a.txt")));
        assert_eq!(link.path, d.path().join("link"));
        let dir = got.iter().find(|s| s.rel() == Path::new("a/c")).unwrap();
        assert!(matches!(dir.kind, Kind::Dir));
    }

    #[test]
    fn scan_stats_files_as_std_does() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("f");
        fs::write(&f, "12345").unwrap();
        let got = scan(d.path(), None).unwrap();
        let meta = fs::symlink_metadata(&f).unwrap();
        let Kind::Other { mode, stat } = &got[0].kind else {
            panic!("not a file: {:?}", got[0]);
        };
        assert_eq!(*mode, meta.mode());
        assert_eq!((stat.dev, stat.ino, stat.size), (meta.dev(), meta.ino(), 5));
        assert_eq!(
            stat.mtime_ns,
            i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec())
        );
        assert_eq!(
            stat.ctime_ns,
            i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec())
        );
    }

    #[test]
    fn scan_reads_a_directory_larger_than_one_listing_buffer() {
        let d = tempfile::tempdir().unwrap();
        // ~3,000 entries of 40-byte names is several buffers' worth.
        let names: Vec<String> = (0..3000).map(|i| format!("{i:0>40}")).collect();
        for n in &names {
            fs::write(d.path().join(n), "").unwrap();
        }
        let got = scan(d.path(), None).unwrap();
        let rels: Vec<String> = got.iter().map(|s| s.rel().display().to_string()).collect();
        assert_eq!(rels, names);
    }

    #[test]
    fn scan_of_a_root_with_a_trailing_slash_gives_the_same_relative_paths() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("x")).unwrap();
        fs::write(d.path().join("x/y"), "").unwrap();
        let root = PathBuf::from(format!("{}/", d.path().display()));
        let got = scan(&root, None).unwrap();
        let rels: Vec<&Path> = got.iter().map(|s| s.rel()).collect();
        assert_eq!(rels, [Path::new("x"), Path::new("x/y")]);
    }

    #[test]
    fn scan_reports_the_first_failure_in_path_order() {
        let d = tempfile::tempdir().unwrap();
        assert!(scan(&d.path().join("missing"), None).is_err());
    }
}
