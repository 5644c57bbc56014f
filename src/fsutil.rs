//! Atomic output: everything gantry writes appears whole or not at all.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// A file written under a temporary name beside its destination and renamed
/// into place by [`AtomicFile::commit`]. Dropped without commit, it vanishes.
pub struct AtomicFile {
    temp: tempfile::NamedTempFile,
    dest: PathBuf,
}

impl AtomicFile {
    pub fn create(dest: &Path) -> Result<AtomicFile> {
        let dir = parent_dir(dest);
        let temp = file_builder().tempfile_in(&dir).at(&dir)?;
        Ok(AtomicFile {
            temp,
            dest: dest.to_path_buf(),
        })
    }

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
        let temp = dir_builder().tempdir_in(&dir).at(&dir)?;
        Ok(AtomicDir {
            temp: Some(temp),
            dest,
        })
    }

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

fn file_builder() -> tempfile::Builder<'static, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(".gantry-tmp-");
    // Temp files are created 0600; outputs should look like anything else the
    // user creates, so ask for the usual modes and let the umask apply.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(fs::Permissions::from_mode(0o666));
    }
    b
}

fn dir_builder() -> tempfile::Builder<'static, 'static> {
    let mut b = tempfile::Builder::new();
    b.prefix(".gantry-tmp-");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        b.permissions(fs::Permissions::from_mode(0o777));
    }
    b
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
}
