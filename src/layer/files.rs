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

use serde::{Deserialize, Serialize};
use sha1::{Digest as _, Sha1};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::image::LayerDesc;
use crate::media::Compression;
use crate::rootfs;
use crate::sbom::spdx::LayerFile;
use crate::store::{self, Store};

/// A file's contents as read into the tar stream, hashed on the way.
pub(super) struct Summing<R> {
    inner: R,
    sha256: Hasher,
    sha1: Sha1,
}

impl<R: Read> Summing<R> {
    pub(super) fn new(inner: R) -> Self {
        Summing {
            inner,
            sha256: Hasher::new(),
            sha1: Sha1::new(),
        }
    }

    /// The open file back, to look at its identity after the read.
    pub(super) fn get_ref(&self) -> &R {
        &self.inner
    }

    /// The entry of the file at `path` in a layer's list.
    pub(super) fn finish(self, path: &str) -> LayerFile {
        LayerFile {
            path: path.to_string(),
            sha256: self.sha256.finish().0,
            sha1: Some(self.sha1.finalize().into()),
        }
    }
}

impl<R: Read> Read for Summing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.sha256.update(&buf[..n]);
        self.sha1.update(&buf[..n]);
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
    let mut out = Vec::new();
    for entry in archive.entries()? {
        let entry = entry?;
        if entry.header().entry_type() != tar::EntryType::Regular {
            continue;
        }
        let path = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let mut sum = Summing::new(entry);
        io::copy(&mut sum, &mut io::sink())?;
        out.push(sum.finish(&path));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summing_gives_the_sha256_and_sha1_of_what_was_read() {
        let mut s = Summing::new(&b"hello\n"[..]);
        io::copy(&mut s, &mut io::sink()).unwrap();
        let f = s.finish("a/b");
        assert_eq!(f.path, "a/b");
        assert_eq!(f.sha256, Digest::of(b"hello\n"));
        assert_eq!(
            hex::encode(f.sha1.unwrap()),
            "f572d396fae9206628714fb2ce00f72e94f2258f"
        );
    }

    #[test]
    fn a_list_survives_its_record() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut s = Summing::new(&b"x"[..]);
        io::copy(&mut s, &mut io::sink()).unwrap();
        let list = vec![s.finish("x")];
        let d = Digest::of(b"layer");
        record(&store, &d, &list).unwrap();
        let back = from_record(store.record::<Files>(&d.hex()).unwrap()).unwrap();
        assert_eq!(back, list);
    }
}
