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
        if let Ok(meta) = fs::symlink_metadata(&dest) {
            let refuse = |why: &str| {
                Err(Error::io(
                    &dest,
                    io::Error::new(io::ErrorKind::AlreadyExists, why.to_string()),
                ))
            };
            if !meta.is_dir() {
                return refuse("exists and is not a directory; remove it or choose another path");
            }
            let empty = fs::read_dir(&dest).at(&dest)?.next().is_none();
            if !empty && !replaceable(&dest) {
                return refuse(
                    "exists and is not an earlier output of this kind;                      remove it or choose another path",
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
    pub fn commit(mut self) -> Result<()> {
        let temp = self.temp.take().expect("commit once").keep();
        let aside = if self.dest.exists() {
            let aside = self.dest.with_file_name(format!(
                ".gantry-old-{}-{}",
                std::process::id(),
                self.dest
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            fs::rename(&self.dest, &aside).at(&self.dest)?;
            Some(aside)
        } else {
            None
        };
        if let Err(e) = fs::rename(&temp, &self.dest) {
            if let Some(aside) = &aside {
                let _ = fs::rename(aside, &self.dest);
            }
            let _ = fs::remove_dir_all(&temp);
            return Err(Error::io(&self.dest, e));
        }
        if let Some(aside) = aside {
            fs::remove_dir_all(&aside).at(&aside)?;
        }
        Ok(())
    }
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
