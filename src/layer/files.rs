//! The regular files of a layer gantry wrote, with their SHA-256 and SHA-1,
//! as an SBOM lists them.
//!
//! Both checksums are taken while a file's bytes pass into the tar stream
//! ([`Hashing`]), in whichever pass reads the file, in the same loop as
//! the stream's own SHA-256 ([`crate::digest::fused`]), so a layer costs
//! no second read and little more hashing. The list is kept as a store
//! record keyed by the layer's diff_id: a layer reused from the store
//! without reading still has it. A store written before the record existed
//! lacks it; then the list is read back from the layer blob in the store,
//! once, and recorded.

use std::io::{self, Read, Write};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sha1::{Digest as _, Sha1};

use crate::digest::fused::{PartSums, StreamSums};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::image::LayerDesc;
use crate::media::Compression;
use crate::rootfs;
use crate::sbom::spdx::LayerFile;
use crate::store::{self, Store};

use super::tar::TarSink;

/// A tar stream's way to `inner`: hashed for its diff_id and, when an SBOM
/// is wanted, every regular file's content for its own checksums.
pub(super) struct Hashing<W> {
    inner: W,
    sums: StreamSums,
    checksums: bool,
    files: Vec<PartSums>,
}

impl<W: Write> Hashing<W> {
    /// Hashes what goes to `inner`; each file's content too if `checksums`.
    pub(super) fn new(inner: W, checksums: bool) -> Self {
        Hashing {
            inner,
            sums: StreamSums::default(),
            checksums,
            files: Vec::new(),
        }
    }

    /// The writer back, with the stream's digest and the sums of every
    /// file's content, in the order written (none without `checksums`).
    pub(super) fn finish(self) -> (W, Digest, Vec<PartSums>) {
        (self.inner, self.sums.finish().0, self.files)
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.sums.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Write> TarSink for Hashing<W> {
    fn content_begins(&mut self) {
        if self.checksums {
            self.sums.begin_part();
        }
    }

    fn content_ends(&mut self) {
        if let Some(sums) = self.sums.end_part() {
            self.files.push(sums);
        }
    }
}

/// A file's checksums as the SBOM lists them.
pub(super) fn layer_file(path: &str, sums: &PartSums) -> LayerFile {
    LayerFile {
        path: path.to_string(),
        sha256: sums.sha256,
        sha1: Some(sums.sha1),
    }
}

/// Both checksums of a file read on its own.
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

/// A layer's regular files in tar order: path, SHA-256 hex, SHA-1 hex.
#[derive(Serialize, Deserialize)]
struct Files {
    files: Vec<(String, String, String)>,
}

impl store::Record for Files {
    const KIND: &'static str = "layer-files";
    const CANONICAL: bool = true;
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
    store.put_record(&diff_id.hex(), &rec)?;
    store.remember::<Files, _>(&diff_id.hex(), Arc::new(files.to_vec()));
    Ok(())
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
    if let Some(list) = store.recall::<Files, Vec<LayerFile>>(&desc.diff_id.hex()) {
        return Ok(list.to_vec());
    }
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
    let mut list = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    for entry in archive.entries()? {
        let mut entry = entry?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut sums = Sums::default();
        loop {
            match entry.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => sums.update(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        list.push(sums.finish(path));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::super::tar::{EntryHeader, EntryKind, TarWriter};
    use super::*;

    /// The tar stream of these files through [`Hashing`], with the
    /// stream's digest and the files as listed.
    fn through_tar(checksums: bool, files: &[(&str, &[u8])]) -> (Vec<u8>, Digest, Vec<LayerFile>) {
        let mut tar = TarWriter::new(Hashing::new(Vec::new(), checksums));
        for (path, mut bytes) in files.iter().copied() {
            let header = EntryHeader {
                path: path.to_string(),
                kind: EntryKind::File {
                    size: bytes.len() as u64,
                },
                mode: 0o644,
                uid: 0,
                gid: 0,
                uname: String::new(),
                gname: String::new(),
                mtime: 0,
            };
            tar.append(&header, &mut bytes).unwrap();
        }
        let (stream, diff_id, sums) = tar.finish().unwrap().finish();
        let listed = files
            .iter()
            .zip(&sums)
            .map(|((path, _), s)| layer_file(path, s))
            .collect();
        (stream, diff_id, listed)
    }

    #[test]
    fn without_an_sbom_no_checksum_is_taken() {
        let (stream, diff_id, files) = through_tar(false, &[("a", b"bytes")]);
        assert!(files.is_empty());
        assert_eq!(diff_id, Digest::of(&stream));
    }

    #[test]
    fn checksums_are_the_sha256_and_sha1_of_each_file_and_the_diff_id_the_streams() {
        let big = vec![7u8; (1 << 20) + 3];
        let files: [(&str, &[u8]); 3] = [("a/b", b"hello\n"), ("empty", b""), ("big", &big)];
        let (stream, diff_id, listed) = through_tar(true, &files);
        assert_eq!(diff_id, Digest::of(&stream));
        assert_eq!(listed.len(), 3);
        assert_eq!(listed[0].path, "a/b");
        assert_eq!(listed[0].sha256, Digest::of(b"hello\n"));
        assert_eq!(
            hex::encode(listed[0].sha1.unwrap()),
            "f572d396fae9206628714fb2ce00f72e94f2258f"
        );
        assert_eq!(listed[1].sha256, Digest::of(b""));
        assert_eq!(listed[2].sha256, Digest::of(&big));
        // Read back from the stream, the list is the same.
        assert_eq!(read_list(&stream[..]).unwrap(), listed);
    }

    #[test]
    fn a_list_survives_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let list = through_tar(true, &[("x", b"x")]).2;
        let d = Digest::of(b"layer");
        record(&store, &d, &list).unwrap();
        let back = from_record(store.record::<Files>(&d.hex()).unwrap()).unwrap();
        assert_eq!(back, list);
        // Another process, which has no memo, reads the record.
        let other = Store::open(dir.path()).unwrap();
        let desc = LayerDesc {
            media_type: crate::media::OCI_LAYER_GZIP.to_string(),
            digest: d,
            size: 0,
            diff_id: d,
            annotations: Default::default(),
            location: Default::default(),
        };
        assert_eq!(files_of(&other, "app", &desc).unwrap(), list);
        assert_eq!(files_of(&store, "app", &desc).unwrap(), list);
    }

    #[test]
    fn the_list_record_is_canonical_as_written() {
        let list = through_tar(true, &[("b", b"1"), ("a", b"2")]).2;
        let rec = Files {
            files: list
                .iter()
                .map(|f| (f.path.clone(), f.sha256.hex(), String::new()))
                .collect(),
        };
        assert_eq!(
            serde_json::to_vec(&rec).unwrap(),
            crate::json::canonical(&rec)
        );
    }
}
