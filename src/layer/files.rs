//! The regular files of a layer gantry wrote, with their SHA-256 and SHA-1,
//! as an SBOM lists them.
//!
//! Both checksums are taken while a file's bytes pass into the tar stream
//! ([`Summing`]), in whichever pass reads the file, so a layer costs no
//! second read. The list is kept as a store record keyed by the layer's
//! diff_id: a layer reused from the store without reading still has it.
//! A store written before the record existed lacks it; then the list is
//! read back from the layer blob in the store, once, and recorded.

use std::io::{self, Read};
use std::sync::mpsc::{sync_channel, SyncSender};

use serde::{Deserialize, Serialize};
use sha1::{Digest as _, Sha1};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::image::LayerDesc;
use crate::media::Compression;
use crate::rootfs;
use crate::sbom::spdx::LayerFile;
use crate::store::{self, Store};

/// Where the checksums of a pass's files are taken: on the reading
/// thread, or, for a layer task that holds more than one core, on a
/// thread of their own fed the bytes as they are read, so that hashing
/// runs beside the reading and compressing instead of lengthening them.
pub(super) struct Collector {
    tx: Option<SyncSender<Msg>>,
    files: Vec<LayerFile>,
    /// Take no checksums: no SBOM is wanted.
    off: bool,
}

/// How a pass takes its files' checksums.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Not at all: no SBOM is wanted, and hashing every file twice more
    /// would cost what a cache hit saves.
    Off,
    /// On the reading thread.
    Here,
    /// On a thread of their own.
    Threaded,
}

/// What the hashing thread is sent: a file's next bytes, or its end.
enum Msg {
    Bytes(Vec<u8>),
    End(String),
}

/// Queued pieces before the reader waits for the hashing thread: bounds
/// the memory held to this many reads of the tar writer's buffer.
const QUEUE: usize = 16;

/// Runs `body` with a collector of file checksums (threaded or not), and
/// returns what it returned with every file [`Collector::close`]d, in
/// order. A file opened but not closed (the pass stopped at it) is left
/// out.
pub(super) fn collecting<T>(
    mode: Mode,
    body: impl FnOnce(&mut Collector) -> T,
) -> (T, Vec<LayerFile>) {
    if mode != Mode::Threaded {
        let mut c = Collector {
            tx: None,
            files: Vec::new(),
            off: mode == Mode::Off,
        };
        let out = body(&mut c);
        return (out, c.files);
    }
    let (tx, rx) = sync_channel::<Msg>(QUEUE);
    std::thread::scope(|s| {
        let worker = s.spawn(move || {
            let mut files = Vec::new();
            let mut sums = Sums::default();
            for msg in rx {
                match msg {
                    Msg::Bytes(b) => sums.update(&b),
                    Msg::End(path) => files.push(std::mem::take(&mut sums).finish(path)),
                }
            }
            files
        });
        let mut c = Collector {
            tx: Some(tx),
            files: Vec::new(),
            off: false,
        };
        let out = body(&mut c);
        drop(c);
        let files = worker
            .join()
            .unwrap_or_else(|p| std::panic::resume_unwind(p));
        (out, files)
    })
}

impl Collector {
    /// `inner`, hashed as it is read.
    pub(super) fn open<R: Read>(&self, inner: R) -> Summing<R> {
        Summing {
            inner,
            sums: match &self.tx {
                _ if self.off => Either::Off,
                Some(tx) => Either::Sent(tx.clone()),
                None => Either::Here(Sums::default()),
            },
        }
    }

    /// The file read through `s` is the one at `path`.
    pub(super) fn close<R>(&mut self, s: Summing<R>, path: &str) {
        match s.sums {
            Either::Here(sums) => self.files.push(sums.finish(path.to_string())),
            // The worker is gone only if it panicked, which `collecting`
            // passes on.
            Either::Sent(tx) => drop(tx.send(Msg::End(path.to_string()))),
            Either::Off => {}
        }
    }
}

/// Both checksums of one file, as far as it was read.
#[derive(Default)]
struct Sums {
    sha256: Hasher,
    sha1: Sha1,
}

impl Sums {
    fn update(&mut self, b: &[u8]) {
        self.sha256.update(b);
        self.sha1.update(b);
    }

    fn finish(self, path: String) -> LayerFile {
        LayerFile {
            path,
            sha256: self.sha256.finish().0,
            sha1: Some(self.sha1.finalize().into()),
        }
    }
}

enum Either {
    Here(Sums),
    Sent(SyncSender<Msg>),
    Off,
}

/// A file's contents as read into the tar stream, hashed on the way.
pub(super) struct Summing<R> {
    inner: R,
    sums: Either,
}

impl<R> Summing<R> {
    /// The open file back, to look at its identity after the read.
    pub(super) fn get_ref(&self) -> &R {
        &self.inner
    }
}

impl<R: Read> Read for Summing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        match &mut self.sums {
            Either::Here(sums) => sums.update(&buf[..n]),
            Either::Sent(tx) if n > 0 => tx
                .send(Msg::Bytes(buf[..n].to_vec()))
                .map_err(|_| io::Error::other("the hashing thread stopped"))?,
            Either::Sent(_) | Either::Off => {}
        }
        Ok(n)
    }
}

/// A layer's regular files in tar order: path, SHA-256 hex, SHA-1 hex.
#[derive(Serialize, Deserialize)]
struct Files {
    files: Vec<(String, String, String)>,
}

impl store::Record for Files {
    const KIND: &'static str = "layer-files";
}

/// Records the file list of the layer whose diff_id is `diff_id`.
pub(super) fn record(store: &Store, diff_id: &Digest, files: &[LayerFile]) -> Result<()> {
    let rec = Files {
        files: files
            .iter()
            .map(|f| {
                (
                    f.path.clone(),
                    f.sha256.hex(),
                    f.sha1.map(hex::encode).unwrap_or_default(),
                )
            })
            .collect(),
    };
    store.put_record(&diff_id.hex(), &rec)
}

fn from_record(rec: Files) -> Option<Vec<LayerFile>> {
    rec.files
        .into_iter()
        .map(|(path, sha256, sha1)| {
            let sha256 = Digest::parse(&format!("sha256:{sha256}")).ok()?;
            let sha1 = match sha1.as_str() {
                "" => None,
                s => Some(<[u8; 20]>::try_from(hex::decode(s).ok()?).ok()?),
            };
            Some(LayerFile { path, sha256, sha1 })
        })
        .collect()
}

/// The regular files of the layer `desc` (one gantry wrote, whose blob is
/// in the store when the record is missing), for the image `image`.
pub fn files_of(store: &Store, image: &str, desc: &LayerDesc) -> Result<Vec<LayerFile>> {
    // A record that does not parse is treated as missing and written anew.
    if let Some(list) = store
        .record::<Files>(&desc.diff_id.hex())
        .and_then(from_record)
    {
        return Ok(list);
    }
    let err = |message: &str, e: io::Error| Error::Layer {
        image: image.to_string(),
        layer: desc.digest.to_string(),
        message: message.to_string(),
        cause: Some(e.into()),
    };
    let compression =
        Compression::of_layer_media_type(&desc.media_type).ok_or_else(|| Error::Layer {
            image: image.to_string(),
            layer: desc.digest.to_string(),
            message: format!("media type {:?} is not a layer's", desc.media_type),
            cause: None,
        })?;
    let blob = store.open_blob(&desc.digest)?;
    let stream = rootfs::uncompressed(compression, blob)
        .map_err(|e| err("cannot read the layer to list its files", e))?;
    let list = read_list(stream).map_err(|e| err("cannot read the layer to list its files", e))?;
    record(store, &desc.diff_id, &list)?;
    Ok(list)
}

/// Every regular file of an uncompressed tar stream, hashed.
fn read_list(stream: impl Read) -> io::Result<Vec<LayerFile>> {
    let mut archive = tar::Archive::new(stream);
    let (read, list) = collecting(Mode::Here, |c| -> io::Result<()> {
        for entry in archive.entries()? {
            let entry = entry?;
            if entry.header().entry_type() != tar::EntryType::Regular {
                continue;
            }
            let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let mut sum = c.open(entry);
            io::copy(&mut sum, &mut io::sink())?;
            c.close(sum, &path);
        }
        Ok(())
    });
    read.map(|()| list)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_an_sbom_no_checksum_is_taken() {
        let (_, files) = collecting(Mode::Off, |c| {
            let mut s = c.open(&b"bytes"[..]);
            io::copy(&mut s, &mut io::sink()).unwrap();
            c.close(s, "a");
        });
        assert!(files.is_empty());
    }

    fn sums_of(threaded: bool, files: &[(&str, &[u8])]) -> Vec<LayerFile> {
        collecting(if threaded { Mode::Threaded } else { Mode::Here }, |c| {
            for (path, bytes) in files {
                let mut s = c.open(*bytes);
                io::copy(&mut s, &mut io::sink()).unwrap();
                c.close(s, path);
            }
            // A file the pass stopped at is left out.
            let mut s = c.open(&b"torn"[..]);
            io::copy(&mut s, &mut io::sink()).unwrap();
        })
        .1
    }

    #[test]
    fn checksums_are_the_sha256_and_sha1_of_what_was_read_on_either_thread() {
        let big = vec![7u8; 1 << 20];
        let files: [(&str, &[u8]); 3] = [("a/b", b"hello\n"), ("empty", b""), ("big", &big)];
        let here = sums_of(false, &files);
        assert_eq!(sums_of(true, &files), here);
        assert_eq!(here.len(), 3);
        assert_eq!(here[0].path, "a/b");
        assert_eq!(here[0].sha256, Digest::of(b"hello\n"));
        assert_eq!(
            hex::encode(here[0].sha1.unwrap()),
            "f572d396fae9206628714fb2ce00f72e94f2258f"
        );
        assert_eq!(here[2].sha256, Digest::of(&big));
    }

    #[test]
    fn a_list_survives_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let list = sums_of(false, &[("x", b"x")]);
        let d = Digest::of(b"layer");
        record(&store, &d, &list).unwrap();
        let back = from_record(store.record::<Files>(&d.hex()).unwrap()).unwrap();
        assert_eq!(back, list);
    }
}
