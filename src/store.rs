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

    /// Checks every blob against its name: each must be a regular file whose
    /// content hashes to it. Returns one line per problem (none for a sound
    /// store); metadata records are caches that reads already check.
    pub fn verify(&self) -> Result<Vec<String>> {
        let dir = self.root.join("blobs/sha256");
        let mut problems = Vec::new();
        let mut names: Vec<_> = fs::read_dir(&dir)
            .at(&dir)?
            .map(|e| e.map(|e| e.path()))
            .collect::<io::Result<_>>()
            .at(&dir)?;
        names.sort();
        for path in names {
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            let Ok(digest) = format!("sha256:{name}").parse::<Digest>() else {
                problems.push(format!("{}: not a blob name", path.display()));
                continue;
            };
            if !path.is_file() {
                problems.push(format!("{}: not a regular file", path.display()));
                continue;
            }
            let mut sink = io::sink();
            if let Err(e) = self.open_blob(&digest).and_then(|mut r| {
                io::copy(&mut r, &mut sink).at(&path)?;
                Ok(())
            }) {
                problems.push(e.to_string());
            }
        }
        Ok(problems)
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
    fn verify_names_a_blob_that_does_not_hash_to_its_name() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (good, _) = store.put(b"good").unwrap();
        let (bad, _) = store.put(b"bad").unwrap();
        assert_eq!(store.verify().unwrap(), Vec::<String>::new());
        fs::write(store.blob_path(&bad), b"evil").unwrap();
        let problems = store.verify().unwrap();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains(&bad.hex()), "{problems:?}");
        assert!(!problems[0].contains(&good.hex()));
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
