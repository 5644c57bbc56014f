//! The local content-addressed store: `blobs/sha256/<hex>` plus small
//! metadata records. Blobs are written to a temp file while being hashed,
//! synced, and renamed into place, so a reader never sees a partial blob and
//! concurrent writers of the same content cannot corrupt each other. Reads
//! are verified, and a blob found not to match its name is moved aside to
//! `corrupt/` (see [`Repair`]) so that the next attempt rebuilds or fetches
//! it again.
//!
//! Every blob and record a process uses has its mtime brought up to date
//! (at most once an hour), which is what `gantry gc` ([`gc`]) prunes by.

pub mod gc;
mod remote;

use std::any::Any;
use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{de::DeserializeOwned, Serialize};

use crate::digest::{Digest, Hasher, VerifyingReader};
use crate::error::{Error, IoContext, Result};
use crate::fsutil;

/// Environment variable naming the store directory.
pub const STORE_ENV: &str = "GANTRY_STORE";

/// Name prefixes of the store's temporaries in `tmp/`.
const BLOB_TEMP: &str = "blob-";
const RECORD_TEMP: &str = "record-";

/// A blob or record used is touched when its mtime is older than this:
/// often enough for `--keep-days`, rarely enough to cost nothing.
pub const TOUCH_AFTER: Duration = Duration::from_secs(3600);

/// A handle on the store at one root; clones share what the process found
/// damaged ([`Store::repairs`]) and its registration as a user of the store.
#[derive(Debug, Clone)]
pub struct Store {
    root: PathBuf,
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    repairs: Mutex<Vec<Repair>>,
    /// This process's registration as a user of the store, which `gc`
    /// respects; removed when the last clone of the store is dropped.
    user: Option<gc::User>,
    /// What opening the store reclaimed of killed runs' temporaries.
    reclaimed: fsutil::Freed,
    /// Records this process wrote, as values, so it need not read back
    /// and parse a large one it wrote moments before.
    memo: Memo,
}

/// A kept value, of whatever type its record kind keeps.
type Kept = Arc<dyn Any + Send + Sync>;

/// Values kept beside records of their kind and key, for this process.
#[derive(Default)]
struct Memo(Mutex<HashMap<(&'static str, String), Kept>>);

impl std::fmt::Debug for Memo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Memo")
    }
}

/// A store blob found not to match its name, and moved aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Repair {
    /// The blob's name.
    pub digest: Digest,
    /// What was wrong with it.
    pub problem: String,
    /// Where it was moved (under the store's `corrupt/`).
    pub moved_to: PathBuf,
}

/// A kind of metadata record: the type it holds, kept under `meta/KIND/`.
/// Naming the kind with the type keeps one kind from being read as
/// another, and its directory written in one place.
pub trait Record: Serialize + DeserializeOwned {
    /// The directory of `meta/` records of this kind are kept in.
    const KIND: &'static str;
    /// The record serializes canonically as it is (no maps, fields in the
    /// byte order of their names), so large ones skip the round trip
    /// through `serde_json::Value` that sorts keys.
    const CANONICAL: bool = false;
}

/// What the store holds under a digest, against a descriptor's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presence {
    /// A blob of the descriptor's size.
    Present,
    /// Nothing (or something damaged, now moved aside).
    Absent,
    /// A sound blob (its content hashes to its name) of this other size:
    /// the descriptor is wrong.
    OtherSize(u64),
}

impl Store {
    /// Opens (creating if needed) the store at `root`, and removes what
    /// killed runs left in its `tmp/`.
    pub fn open(root: impl Into<PathBuf>) -> Result<Store> {
        let root = root.into();
        for sub in ["blobs/sha256", "tmp", "meta", gc::USERS] {
            let p = root.join(sub);
            fs::create_dir_all(&p).at(&p)?;
        }
        let user = gc::register(&root)?;
        let reclaimed = fsutil::reclaim_stale(&root.join("tmp"), &[BLOB_TEMP, RECORD_TEMP], false);
        Ok(Store {
            root,
            shared: Arc::new(Shared {
                repairs: Mutex::new(Vec::new()),
                user: Some(user),
                reclaimed,
                memo: Memo::default(),
            }),
        })
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

    /// The store's directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the blob `digest` is (or would be) stored.
    pub fn blob_path(&self, digest: &Digest) -> PathBuf {
        self.root.join("blobs/sha256").join(digest.hex())
    }

    /// Whether a blob named `digest` is stored (its size and content not
    /// checked: see [`Store::lookup`]).
    pub fn has(&self, digest: &Digest) -> bool {
        let path = self.blob_path(digest);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => {
                touch(&path, &m);
                true
            }
            _ => false,
        }
    }

    /// Size of a stored blob, if present.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        let path = self.blob_path(digest);
        let m = fs::metadata(&path).ok().filter(|m| m.is_file())?;
        touch(&path, &m);
        Some(m.len())
    }

    /// Whether the store holds `digest` as a blob of `size` bytes. A blob
    /// of another size is either damaged or proves the descriptor wrong;
    /// its content decides: a damaged one is moved aside (and is then
    /// absent), a sound one is [`Presence::OtherSize`].
    pub fn lookup(&self, digest: &Digest, size: u64) -> Result<Presence> {
        let path = self.blob_path(digest);
        let Some(m) = fs::metadata(&path).ok().filter(|m| m.is_file()) else {
            return Ok(Presence::Absent);
        };
        if m.len() == size {
            touch(&path, &m);
            return Ok(Presence::Present);
        }
        if check_blob(&path, digest).is_ok() {
            return Ok(Presence::OtherSize(m.len()));
        }
        self.quarantine(
            digest,
            format!("{} bytes that do not hash to its name", m.len()),
            None,
        );
        Ok(Presence::Absent)
    }

    /// The error for a descriptor that gives a sound blob the wrong size.
    pub fn size_error(digest: &Digest, claimed: u64, actual: u64) -> Error {
        Error::Mismatch {
            what: format!("blob {digest}"),
            expected: format!("{claimed} bytes, as its descriptor says"),
            actual: format!(
                "{actual} bytes (its content hashes to its digest, so the descriptor is wrong)"
            ),
        }
    }

    /// Opens a blob for reading; the reader fails at EOF if the content does
    /// not hash to `digest`, and then moves the blob aside.
    pub fn open_blob(&self, digest: &Digest) -> Result<BlobReader> {
        let path = self.blob_path(digest);
        let file = File::open(&path).at(&path)?;
        let meta = file.metadata().at(&path)?;
        touch_file(&file, &meta);
        let what = format!("store blob {}", path.display());
        Ok(BlobReader {
            inner: VerifyingReader::new(file, *digest, Some(meta.len()), what),
            store: self.clone(),
            digest: *digest,
            id: file_id(&meta),
            flagged: false,
        })
    }

    /// Reads a whole (small) blob, verified.
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        self.open_blob(digest)?
            .read_to_end(&mut out)
            .at(self.blob_path(digest))?;
        Ok(out)
    }

    /// Stores `bytes`. A blob already there is compared with them (they are
    /// small: configs, manifests, indexes) and replaced if it differs.
    pub fn put(&self, bytes: &[u8]) -> Result<(Digest, u64)> {
        let digest = Digest::of(bytes);
        let path = self.blob_path(&digest);
        if let Ok(m) = fs::metadata(&path) {
            let problem = if m.len() != bytes.len() as u64 {
                Some(format!("{} bytes, expected {}", m.len(), bytes.len()))
            } else if fs::read(&path).is_ok_and(|have| have == bytes) {
                touch(&path, &m);
                None
            } else {
                Some("its content does not hash to its name".to_string())
            };
            match problem {
                None => return Ok((digest, bytes.len() as u64)),
                Some(p) => self.quarantine(&digest, p, Some(file_id(&m))),
            }
        }
        let mut w = self.writer()?;
        w.write_all(bytes).at(self.root.join("tmp"))?;
        w.commit()?;
        Ok((digest, bytes.len() as u64))
    }

    /// A writer for a new blob; its digest is known once written.
    pub fn writer(&self) -> Result<BlobWriter> {
        self.new_writer(Naming::Hashed(Hasher::new()))
    }

    /// A writer for a blob read through a [`VerifyingReader`] checking it
    /// against `digest` (and its size): what it writes is not hashed a
    /// second time, and it is committed as `digest`. Commit only once the
    /// reader reached its end, which is when it has checked the digest.
    pub fn writer_verified_by(&self, digest: Digest) -> Result<BlobWriter> {
        self.new_writer(Naming::Verified(digest))
    }

    fn new_writer(&self, naming: Naming) -> Result<BlobWriter> {
        let dir = self.root.join("tmp");
        let temp = fsutil::locked_temp_file(&dir, BLOB_TEMP, None).at(&dir)?;
        Ok(BlobWriter {
            file: BufWriter::with_capacity(256 * 1024, temp),
            naming,
            written: 0,
            store: self.clone(),
        })
    }

    /// Copies a stream into the store, checking it against `expected` and
    /// `size`. A descriptor whose size is not the content's is refused the
    /// same way whether or not the store already has the blob.
    pub fn put_verified(&self, src: &mut dyn Read, expected: &Digest, size: u64) -> Result<()> {
        match self.lookup(expected, size)? {
            Presence::Present => return Ok(()),
            Presence::OtherSize(n) => return Err(Store::size_error(expected, size, n)),
            Presence::Absent => {}
        }
        let mut w = self.writer_verified_by(*expected)?;
        // Verified by digest alone, so that content of another size is
        // told apart from other content (the sources are local files).
        let mut src = VerifyingReader::new(src, *expected, None, format!("blob {expected}"));
        io::copy(&mut src, &mut w).map_err(|e| Error::Mismatch {
            what: format!("blob {expected}"),
            expected: format!("{size} bytes hashing to {expected}"),
            actual: e.to_string(),
        })?;
        if w.written() != size {
            return Err(Store::size_error(expected, size, w.written()));
        }
        w.commit()?;
        Ok(())
    }

    /// Checks every blob against its name: each must be a regular file whose
    /// content hashes to it. Returns one line per problem (none for a sound
    /// store); metadata records are caches that reads already check. Nothing
    /// is moved.
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
            if let Err(e) = check_blob(&path, &digest) {
                problems.push(e.to_string());
            }
        }
        Ok(problems)
    }

    /// Every blob moved aside by this process so far, oldest first.
    pub fn repairs(&self) -> Vec<Repair> {
        self.shared.repairs.lock().expect("repairs").clone()
    }

    /// Moves a blob found damaged out of the way, so that it is rebuilt or
    /// fetched again, and records the repair. `opened` is the file that was
    /// found damaged: if another process replaced it meanwhile, the
    /// replacement is put back.
    fn quarantine(&self, digest: &Digest, problem: String, opened: Option<(u64, u64)>) {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let dir = self.root.join(gc::CORRUPT);
        if fs::create_dir_all(&dir).is_err() {
            return;
        }
        let path = self.blob_path(digest);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let aside = dir.join(format!("{}-{}-{n}", digest.hex(), std::process::id()));
        if fs::rename(&path, &aside).is_err() {
            // Gone already: another process moved it.
            return;
        }
        if let Some(id) = opened {
            if fs::metadata(&aside).map(|m| file_id(&m)).ok() != Some(id) {
                let _ = fs::rename(&aside, &path);
                return;
            }
        }
        self.shared.repairs.lock().expect("repairs").push(Repair {
            digest: *digest,
            problem,
            moved_to: aside,
        });
    }

    fn meta_path(&self, kind: &str, key: &str) -> PathBuf {
        self.root
            .join("meta")
            .join(kind)
            .join(format!("{key}.json"))
    }

    /// The record of kind `R` under `key`, if there is a readable one.
    pub fn record<R: Record>(&self, key: &str) -> Option<R> {
        self.get_meta(R::KIND, key)
    }

    /// Writes the record of kind `R` under `key`, atomically.
    pub fn put_record<R: Record>(&self, key: &str, value: &R) -> Result<()> {
        if R::CANONICAL {
            let bytes =
                serde_json::to_vec(value).expect("in-memory JSON serialisation cannot fail");
            return self.put_meta_bytes(R::KIND, key, &bytes);
        }
        self.put_meta(R::KIND, key, value)
    }

    /// Keeps `value`, the record of kind `R` under `key` this process just
    /// wrote, for [`Store::recall`] in this process.
    pub fn remember<R: Record, T: Any + Send + Sync>(&self, key: &str, value: Arc<T>) {
        let mut memo = self.shared.memo.0.lock().unwrap_or_else(|e| e.into_inner());
        memo.insert((R::KIND, key.to_string()), value);
    }

    /// What [`Store::remember`] kept of the record of kind `R` under `key`.
    pub fn recall<R: Record, T: Any + Send + Sync>(&self, key: &str) -> Option<Arc<T>> {
        let memo = self.shared.memo.0.lock().unwrap_or_else(|e| e.into_inner());
        let value = memo.get(&(R::KIND, key.to_string()))?.clone();
        value.downcast().ok()
    }

    /// Reads a metadata record; a missing or unreadable record is `None`,
    /// because records are only ever caches of what blobs already prove.
    pub fn get_meta<T: DeserializeOwned>(&self, kind: &str, key: &str) -> Option<T> {
        let mut f = File::open(self.meta_path(kind, key)).ok()?;
        if let Ok(m) = f.metadata() {
            touch_file(&f, &m);
        }
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// Writes a record atomically. Its temp file is in `tmp/`, where a
    /// killed run's leftovers are reclaimed, not beside the records.
    pub fn put_meta<T: Serialize>(&self, kind: &str, key: &str, value: &T) -> Result<()> {
        self.put_meta_bytes(kind, key, &crate::json::canonical(value))
    }

    fn put_meta_bytes(&self, kind: &str, key: &str, bytes: &[u8]) -> Result<()> {
        let path = self.meta_path(kind, key);
        let dir = path.parent().expect("meta path has a parent");
        fs::create_dir_all(dir).at(dir)?;
        let tmp = self.root.join("tmp");
        let mut temp = fsutil::locked_temp_file(&tmp, RECORD_TEMP, None).at(&tmp)?;
        temp.write_all(bytes).at(&path)?;
        temp.as_file().sync_all().at(&path)?;
        temp.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }
}

/// A blob being read from the store, verified; a blob that turns out not
/// to match its name is moved aside (see [`Store::repairs`]).
pub struct BlobReader {
    inner: VerifyingReader<File>,
    store: Store,
    digest: Digest,
    id: (u64, u64),
    flagged: bool,
}

impl Read for BlobReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            if e.kind() == io::ErrorKind::InvalidData && !self.flagged {
                self.flagged = true;
                self.store.quarantine(
                    &self.digest,
                    "its content does not hash to its name".into(),
                    Some(self.id),
                );
            }
        })
    }
}

/// A blob being written: hashed as it goes (unless a reader checks it),
/// synced and renamed into place on commit, removed if dropped.
pub struct BlobWriter {
    file: BufWriter<tempfile::NamedTempFile>,
    naming: Naming,
    written: u64,
    store: Store,
}

/// How a written blob gets its name.
enum Naming {
    /// From the hash of what was written.
    Hashed(Hasher),
    /// Given: the bytes came through a reader that checked them.
    Verified(Digest),
}

impl BlobWriter {
    /// The bytes written so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// Makes what was written the blob named by its digest, and returns
    /// that digest and the size.
    pub fn commit(self) -> Result<(Digest, u64)> {
        let digest = match self.naming {
            Naming::Hashed(h) => h.finish().0,
            Naming::Verified(d) => d,
        };
        self.store.place(self.file, digest, self.written)
    }
}

impl Store {
    fn place(
        &self,
        buf: BufWriter<tempfile::NamedTempFile>,
        digest: Digest,
        size: u64,
    ) -> Result<(Digest, u64)> {
        let tmp_dir = self.root.join("tmp");
        let temp = buf
            .into_inner()
            .map_err(|e| Error::io(&tmp_dir, e.into_error()))?;
        let dest = self.blob_path(&digest);
        if let Ok(m) = fs::metadata(&dest) {
            if m.is_file() && m.len() == size {
                // Same digest, same bytes: another build (or process) won
                // the race.
                touch(&dest, &m);
                return Ok((digest, size));
            }
            // A blob of the wrong size under this name (a crash before
            // blobs were synced) is never trusted.
            self.quarantine(
                &digest,
                format!("{} bytes, expected {size}", m.len()),
                Some(file_id(&m)),
            );
        }
        // Synced before the rename, so that after a crash the name never
        // stands for less than the whole content.
        temp.as_file().sync_all().at(&dest)?;
        temp.persist(&dest).map_err(|e| Error::io(&dest, e.error))?;
        if let Some(dir) = dest.parent() {
            File::open(dir).and_then(|d| d.sync_all()).at(dir)?;
        }
        Ok((digest, size))
    }
}

impl Write for BlobWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.file.write(buf)?;
        if let Naming::Hashed(h) = &mut self.naming {
            h.update(&buf[..n]);
        }
        self.written += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

/// Hashes a blob file and compares it with its name, moving nothing.
fn check_blob(path: &Path, digest: &Digest) -> Result<()> {
    let file = File::open(path).at(path)?;
    let size = file.metadata().at(path)?.len();
    let what = format!("store blob {}", path.display());
    let mut r = VerifyingReader::new(file, *digest, Some(size), what);
    io::copy(&mut r, &mut io::sink()).at(path)?;
    Ok(())
}

fn file_id(m: &fs::Metadata) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    (m.dev(), m.ino())
}

fn needs_touch(m: &fs::Metadata) -> bool {
    m.modified()
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_some_and(|age| age > TOUCH_AFTER)
}

/// Marks a blob or record as used now (see [`TOUCH_AFTER`]); a store that
/// cannot be written keeps its times.
fn touch(path: &Path, m: &fs::Metadata) {
    if needs_touch(m) {
        if let Ok(f) = File::open(path) {
            let _ = f.set_modified(SystemTime::now());
        }
    }
}

fn touch_file(f: &File, m: &fs::Metadata) {
    if needs_touch(m) {
        let _ = f.set_modified(SystemTime::now());
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

    #[test]
    fn commit_replaces_an_existing_blob_of_the_wrong_size() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let digest = Digest::of(b"whole content");
        // What a crash before the blob was synced can leave.
        fs::write(store.blob_path(&digest), b"").unwrap();
        let mut w = store.writer().unwrap();
        w.write_all(b"whole content").unwrap();
        w.commit().unwrap();
        assert_eq!(store.read(&digest).unwrap(), b"whole content");
        let repairs = store.repairs();
        assert_eq!(repairs.len(), 1);
        assert_eq!(repairs[0].problem, "0 bytes, expected 13");
        assert!(repairs[0].moved_to.starts_with(dir.path().join("corrupt")));
    }

    #[test]
    fn a_verified_read_moves_a_damaged_blob_aside() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (d, _) = store.put(b"hello").unwrap();
        fs::write(store.blob_path(&d), b"hellO").unwrap();
        assert!(store.read(&d).is_err());
        assert!(!store.has(&d), "moved aside");
        assert_eq!(store.repairs()[0].digest, d);
        store.put(b"hello").unwrap();
        assert_eq!(store.verify().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn lookup_tells_a_wrong_descriptor_from_a_damaged_blob() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (d, n) = store.put(b"sound").unwrap();
        assert_eq!(store.lookup(&d, n).unwrap(), Presence::Present);
        assert_eq!(store.lookup(&d, n + 1).unwrap(), Presence::OtherSize(n));
        assert!(store.repairs().is_empty(), "a sound blob stays");
        fs::write(store.blob_path(&d), b"damaged").unwrap();
        assert_eq!(store.lookup(&d, n).unwrap(), Presence::Absent);
        assert_eq!(store.repairs().len(), 1);
    }

    #[test]
    fn records_are_written_without_leaving_temporaries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .put_meta("kind", "key", &serde_json::json!({"a": 1}))
            .unwrap();
        let v: serde_json::Value = store.get_meta("kind", "key").unwrap();
        assert_eq!(v["a"], 1);
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(
            fs::read_dir(dir.path().join("meta/kind")).unwrap().count(),
            1
        );
    }
}
