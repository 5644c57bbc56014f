//! The local content-addressed store: `blobs/sha256/<hex>` plus small
//! metadata records. Blobs are written to a temp file while being hashed and
//! renamed into place, so a reader never sees a partial blob and concurrent
//! writers of the same content cannot corrupt each other. Reads are verified.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Serialize};

use crate::digest::{Digest, HashingWriter, VerifyingReader};
use crate::error::{Error, IoContext, Result};
use crate::fsutil;

/// Environment variable naming the store directory.
pub const STORE_ENV: &str = "GANTRY_STORE";

#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
}

impl Store {
    /// Opens (creating if needed) the store at `root`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        for sub in ["blobs/sha256", "tmp", "meta"] {
            let p = root.join(sub);
            fs::create_dir_all(&p).at(&p)?;
        }
        Ok(Store { root })
    }

    /// `$GANTRY_STORE`, else `$XDG_CACHE_HOME/gantry`, else `~/.cache/gantry`.
    pub fn default_root() -> PathBuf {
        if let Some(p) = std::env::var_os(STORE_ENV).filter(|p| !p.is_empty()) {
            return PathBuf::from(p);
        }
        dirs::cache_dir()
            .unwrap_or_else(|| std::env::temp_dir().join("gantry-cache"))
            .join("gantry")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    pub fn has(&self, digest: &Digest) -> bool {
        self.blob_path(digest).is_file()
    }

    /// Size of a stored blob, if present.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.blob_path(digest)).ok().map(|m| m.len())
    }

    /// Opens a blob for reading; the reader fails at EOF if the content does
    /// not hash to `digest`.
    pub fn open_blob(&self, digest: &Digest) -> Result<VerifyingReader<File>> {
        let path = self.blob_path(digest);
        let file = File::open(&path).at(&path)?;
        let size = file.metadata().at(&path)?.len();
        Ok(VerifyingReader::new(
            file,
            *digest,
            Some(size),
            format!("store blob {}", path.display()),
        ))
    }

    /// Reads a whole (small) blob, verified.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut out)
            .at(self.blob_path(digest))?;
        Ok(out)
    }

    pub fn put(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let digest = Digest::of(bytes);
        if !self.has(&digest) {
            let mut w = self.writer()?;
            w.write_all(bytes).at(self.root.join("tmp"))?;
            w.commit()?;
        }
        Ok((digest, bytes.len() as u64))
    }

    /// A writer for a new blob; its digest is known once written.
    pub fn writer(&self) -> Result<BlobWriter> {
        let dir = self.root.join("tmp");
        let temp = tempfile::Builder::new()
            .prefix("blob-")
            .tempfile_in(&dir)
            .at(&dir)?;
        Ok(BlobWriter {
            inner: HashingWriter::new(BufWriter::with_capacity(256 * 1024, temp)),
            store: self.clone(),
        })
    }

    /// Copies a stream into the store, checking it against `expected`.
    pub fn put_verified(&self, src: &mut dyn Read, expected: &Digest, size: u64) -> Result<()> {
        if self.has(expected) {
            return Ok(());
        }
        let mut w = self.writer()?;
        let mut src = VerifyingReader::new(src, *expected, Some(size), format!("blob {expected}"));
        io::copy(&mut src, &mut w).map_err(|e| Error::Mismatch {
            what: format!("blob {expected}"),
            expected: format!("{size} bytes hashing to {expected}"),
            actual: e.to_string(),
        })?;
        w.commit()?;
        Ok(())
    }

    fn meta_path(&self, kind: &str, key: &str) -> PathBuf {
        self.root
            .join("meta")
            .join(kind)
            .join(format!("{key}.json"))
    }

    /// Reads a metadata record; a missing or unreadable record is `None`,
    /// because records are only ever caches of what blobs already prove.
    pub fn get_meta<T: DeserializeOwned>(&self, kind: &str, key: &str) -> Option<T> {
        let bytes = fs::read(self.meta_path(kind, key)).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    pub fn put_meta<T: Serialize>(&self, kind: &str, key: &str, value: &T) -> Result<()> {
        let path = self.meta_path(kind, key);
        let dir = path.parent().expect("meta path has a parent");
        fs::create_dir_all(dir).at(dir)?;
        fsutil::write_atomic(&path, &crate::json::canonical(value))
    }
}

/// A blob being written: hashed as it goes, renamed into place on commit,
/// removed if dropped.
pub struct BlobWriter {
    inner: HashingWriter<BufWriter<tempfile::NamedTempFile>>,
    store: Store,
}

impl BlobWriter {
    pub fn written(&self) -> u64 {
        self.inner.written()
    }

    pub fn commit(self) -> Result<(Digest, u64)> {
        let (buf, digest, size) = self.inner.finish();
        let tmp_dir = self.store.root.join("tmp");
        let temp = buf
            .into_inner()
            .map_err(|e| Error::io(&tmp_dir, e.into_error()))?;
        let dest = self.store.blob_path(&digest);
        if dest.is_file() {
            // Same digest, same bytes: another build (or process) won the race.
            return Ok((digest, size));
        }
        temp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn put_then_read_is_verified() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (d, n) = store.put(b"hello").unwrap();
        assert_eq!(n, 5);
        assert_eq!(store.read(&d).unwrap(), b"hello");
        fs::write(store.blob_path(&d), b"hellO").unwrap();
        assert!(
            store.read(&d).is_err(),
            "a corrupted blob must not read back"
        );
    }

    #[test]
    fn dropped_writer_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        {
            let mut w = store.writer().unwrap();
            w.write_all(b"partial").unwrap();
        }
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(
            fs::read_dir(dir.path().join("blobs/sha256"))
                .unwrap()
                .count(),
            0
        );
    }
}
