//! Reading images from OCI layout directories, OCI archives and docker
//! tarballs (both the classic `docker save` shape and the OCI-layout shape).

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::digest::Digest;
use crate::error::Result;
use crate::image::Image;
use crate::store::Store;

/// A base image that lives on local disk, as a build file names it:
/// `oci:PATH[:TAG]` or `docker-archive:PATH[:TAG]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocalSource {
    OciLayout { path: PathBuf, tag: Option<String> },
    DockerArchive { path: PathBuf, tag: Option<String> },
}

impl LocalSource {
    /// Parses `oci:...` / `docker-archive:...`; `None` if `s` is neither.
    /// Relative paths are resolved against `base_dir`.
    pub fn parse(s: &str, base_dir: &Path) -> Option<Result<LocalSource>> {
        let _ = (s, base_dir);
        todo!()
    }
}

/// Random access to the blobs of an opened image location.
pub trait BlobReader {
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>>;
}

/// Opens whatever is at `path` (a layout directory, an OCI archive or a
/// docker tarball) and returns the image selected by `select` (a tag or full
/// name; required only when there are several images).
pub fn open(path: &Path, select: Option<&str>) -> Result<(Image, Box<dyn BlobReader>)> {
    let _ = (path, select);
    todo!()
}

/// Loads a local base image and copies its blobs, verified, into the store.
pub fn import(source: &LocalSource, store: &Store) -> Result<Image> {
    let _ = (source, store);
    todo!()
}
