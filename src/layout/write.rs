//! Writing images as OCI layout directories, OCI archives and docker-load
//! tarballs. All blobs come from the store; every output is atomic.
//!
//! Layout (all three formats): `oci-layout`, `index.json` with one manifest
//! descriptor per (image, tag), and `blobs/sha256/<hex>` for every manifest,
//! config and layer, each blob once however many images share it. Each
//! descriptor carries `org.opencontainers.image.ref.name` = the tag alone
//! (what `skopeo`/`umoci` mean by `oci:DIR:TAG`) and
//! `io.containerd.image.name` = the full reference (what containerd and
//! Docker's containerd image store name the image by). When two descriptors
//! would get the same tag (`a/x:1` and `b/y:1`), each of them is named by
//! its reference in familiar form instead (`a/x:1`): skopeo would silently
//! take the first and umoci refuse both, while both accept a name with `/`
//! and `:` (`oci:DIR:a/x:1`, `--image DIR:a/x:1`), as the image-spec's
//! grammar for the annotation allows. Tags no other descriptor shares stay
//! short, so a layout of one image is named as it always was.
//!
//! The docker tarball adds `manifest.json` (`[{Config, RepoTags, Layers}]`
//! pointing into `blobs/`), the shape `docker save` writes since Engine 25:
//! Docker's classic loader and podman read `manifest.json`, containerd-based
//! loaders read `index.json`, so one file loads everywhere.
//!
//! Outputs are deterministic: the same images give the same bytes. Archive
//! members are sorted, with fixed ustar headers (mode 0644/0755, uid/gid 0,
//! no user or group names, mtime 0) and nothing taken from the local file
//! system.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use oci_spec::image::{Descriptor, ImageIndexBuilder, MediaType};
use serde::Serialize;

use crate::digest::Digest;
use crate::error::{Error, IoContext, Result};
use crate::fsutil::{AtomicDir, AtomicFile};
use crate::image;
use crate::image::{Artifact, Image, ImageIndex};
use crate::manifest;
use crate::media;
use crate::reference::Reference;
use crate::sbom::artifact::Referrer;
use crate::store::Store;

/// The kind of output to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// A tar loadable by `docker load` (all engines) and `podman load`.
    Docker,
    /// An OCI image layout directory.
    Oci,
    /// An OCI image layout in a tar.
    OciArchive,
}

const OCI_LAYOUT: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

/// How errors writing to a caller's stream name it; the stream may be
/// stdout and have no path.
const STREAM_NAME: &str = "<archive output>";

/// Writes an OCI layout directory at `dest`, atomically, naming
/// `artifacts` in its `index.json`. An existing `dest` is replaced as a
/// whole, never merged into.
pub fn write_oci_dir(artifacts: &[&Artifact], store: &Store, dest: &Path) -> Result<()> {
    write_oci_dir_with(artifacts, &[], store, dest)
}

/// [`write_oci_dir`], with the blobs of `referrers` (documents about the
/// images, such as their SBOM) beside the images'. They are not listed in
/// `index.json`, where readers would take them for images to choose from;
/// a reader finds them by their `subject`.
pub fn write_oci_dir_with(
    artifacts: &[&Artifact],
    referrers: &[&Referrer],
    store: &Store,
    dest: &Path,
) -> Result<()> {
    let plan = Plan::new(artifacts, referrers, store, false)?;
    // Only an earlier OCI layout (or an empty directory) may be replaced.
    let dir = AtomicDir::create(dest, |d| d.join("oci-layout").is_file())?;
    let root = dir.path();
    let blobs = root.join("blobs/sha256");
    fs::create_dir_all(&blobs).at(&blobs)?;
    for (digest, blob) in &plan.blobs {
        let path = blobs.join(digest.hex());
        let mut out = BufWriter::with_capacity(256 * 1024, File::create(&path).at(&path)?);
        match blob {
            Blob::Bytes(bytes) => out.write_all(bytes).at(&path)?,
            Blob::Store { .. } => {
                let mut src = Tracked::new(store.open_blob(digest)?);
                io::copy(&mut src, &mut out).map_err(|e| src.blame(e, store, digest, &path))?;
            }
        }
        out.into_inner()
            .map_err(|e| Error::io(&path, e.into_error()))?
            .sync_all()
            .at(&path)?;
    }
    fs::write(root.join("oci-layout"), OCI_LAYOUT).at(root.join("oci-layout"))?;
    fs::write(root.join("index.json"), &plan.index_json).at(root.join("index.json"))?;
    dir.commit()
}

/// Streams a docker tarball or OCI archive of `artifacts` to `out` (an
/// index only in an OCI archive: a docker tarball holds single images).
/// Blob bytes are copied from the store in small pieces, so memory use does
/// not grow with layer size; nothing is seeked, so `out` may be a pipe.
pub fn write_archive<W: Write>(
    artifacts: &[&Artifact],
    store: &Store,
    format: Format,
    out: W,
) -> Result<W> {
    write_archive_with(artifacts, &[], store, format, out)
}

/// [`write_archive`], with the blobs of `referrers` in an OCI archive (as
/// [`write_oci_dir_with`]); a docker tarball leaves them out.
pub fn write_archive_with<W: Write>(
    artifacts: &[&Artifact],
    referrers: &[&Referrer],
    store: &Store,
    format: Format,
    out: W,
) -> Result<W> {
    let out = Named {
        out,
        name: Path::new(STREAM_NAME),
        omit: &BTreeSet::new(),
    };
    write_archive_named(artifacts, referrers, store, format, out)
}

/// Streams a docker tarball of `artifacts` to `out` that leaves out the
/// files of the layers in `omit`, while `manifest.json` and `index.json`
/// still name them: Docker's classic loader opens a layer file only for a
/// chain it does not hold, so a tarball without the layers an engine has
/// loads as the whole image. Anything else reading it finds them missing.
pub fn write_docker_archive_omitting<W: Write>(
    artifacts: &[&Artifact],
    store: &Store,
    omit: &BTreeSet<Digest>,
    out: W,
) -> Result<W> {
    let out = Named {
        out,
        name: Path::new(STREAM_NAME),
        omit,
    };
    write_archive_named(artifacts, &[], store, Format::Docker, out)
}

/// Writes a docker tarball or OCI archive to the file `dest`, atomically;
/// `Format::Oci` writes a layout directory there instead.
pub fn write_archive_file(
    artifacts: &[&Artifact],
    store: &Store,
    format: Format,
    dest: &Path,
) -> Result<()> {
    write_archive_file_with(artifacts, &[], store, format, dest)
}

/// [`write_archive_file`], with the blobs of `referrers` in an OCI layout
/// or archive (as [`write_oci_dir_with`]); a docker tarball leaves them
/// out, as its loaders would not keep them.
pub fn write_archive_file_with(
    artifacts: &[&Artifact],
    referrers: &[&Referrer],
    store: &Store,
    format: Format,
    dest: &Path,
) -> Result<()> {
    if format == Format::Oci {
        return write_oci_dir_with(artifacts, referrers, store, dest);
    }
    let file = AtomicFile::create(dest)?;
    let out = Named {
        out: file,
        name: dest,
        omit: &BTreeSet::new(),
    };
    let file = write_archive_named(artifacts, referrers, store, format, out)?;
    file.commit()
}

/// Where an archive goes: the writer, what errors call it, and the layer
/// files left out.
struct Named<'a, W> {
    out: W,
    name: &'a Path,
    omit: &'a BTreeSet<Digest>,
}

fn write_archive_named<W: Write>(
    roots: &[&Artifact],
    referrers: &[&Referrer],
    store: &Store,
    format: Format,
    named: Named<'_, W>,
) -> Result<W> {
    let Named {
        out,
        name: out_name,
        omit,
    } = named;
    let docker = match format {
        Format::Docker => true,
        Format::OciArchive => false,
        Format::Oci => {
            return Err(Error::internal(
                "an OCI layout is a directory; write it with write_oci_dir",
            ))
        }
    };
    let referrers = if docker { &[][..] } else { referrers };
    let plan = Plan::new(roots, referrers, store, docker)?;
    let mut tar = tar::Builder::new(BufWriter::with_capacity(256 * 1024, out));
    // Every header is built here from constants; these settings only make
    // sure nothing would be taken from the local file system if a path
    // were ever appended.
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    tar.sparse(false);
    let out_err = |e: io::Error| Error::io(out_name, e);

    // Sorted by name: "blobs/" < "blobs/sha256/" < "blobs/sha256/<hex>" <
    // "index.json" < "manifest.json" < "oci-layout".
    for dir in ["blobs/", "blobs/sha256/"] {
        tar.append(
            &header(dir, tar::EntryType::Directory, 0, 0o755)?,
            io::empty(),
        )
        .map_err(out_err)?;
    }
    for (digest, blob) in &plan.blobs {
        let name = format!("blobs/sha256/{}", digest.hex());
        match blob {
            Blob::Bytes(bytes) => {
                let h = header(&name, tar::EntryType::Regular, bytes.len() as u64, 0o644)?;
                tar.append(&h, *bytes).map_err(out_err)?;
            }
            Blob::Store { .. } if omit.contains(digest) => {}
            Blob::Store { size } => {
                let h = header(&name, tar::EntryType::Regular, *size, 0o644)?;
                let mut src = Tracked::new(store.open_blob(digest)?);
                tar.append(&h, &mut src)
                    .map_err(|e| src.blame(e, store, digest, out_name))?;
            }
        }
    }
    let mut files: Vec<(&str, &[u8])> = vec![("index.json", &plan.index_json)];
    if docker {
        files.push(("manifest.json", &plan.docker_manifest));
    }
    files.push(("oci-layout", OCI_LAYOUT));
    for (name, bytes) in files {
        let h = header(name, tar::EntryType::Regular, bytes.len() as u64, 0o644)?;
        tar.append(&h, bytes).map_err(out_err)?;
    }
    let buffered = tar.into_inner().map_err(out_err)?;
    buffered.into_inner().map_err(|e| out_err(e.into_error()))
}

/// A ustar header with every field fixed except name, type and size.
fn header(name: &str, kind: tar::EntryType, size: u64, mode: u32) -> Result<tar::Header> {
    let mut h = tar::Header::new_ustar();
    let field = &mut h.as_ustar_mut().expect("a ustar header").name;
    // Names are `blobs/sha256/<64 hex>` at most, well inside the 100-byte
    // field; writing them directly keeps directories' trailing `/`, which
    // `set_path` would drop.
    if name.len() > field.len() {
        return Err(Error::internal(format!(
            "archive member name too long: {name}"
        )));
    }
    field[..name.len()].copy_from_slice(name.as_bytes());
    h.set_entry_type(kind);
    h.set_size(size);
    h.set_mode(mode);
    h.set_uid(0);
    h.set_gid(0);
    h.set_mtime(0);
    let fixed = |r: io::Result<()>| {
        r.map_err(|e| Error::internal_because(format!("tar header for {name}"), e))
    };
    fixed(h.set_username(""))?;
    fixed(h.set_groupname(""))?;
    fixed(h.set_device_major(0))?;
    fixed(h.set_device_minor(0))?;
    h.set_cksum();
    Ok(h)
}

/// Tells read failures (a corrupt store blob) from write failures (a full
/// disk, a closed pipe) when a copy fails, so each is reported against the
/// right file.
struct Tracked<R> {
    inner: R,
    read_failed: Option<io::Error>,
}

impl<R: Read> Tracked<R> {
    fn new(inner: R) -> Self {
        Tracked {
            inner,
            read_failed: None,
        }
    }

    fn blame(&mut self, e: io::Error, store: &Store, digest: &Digest, out: &Path) -> Error {
        match self.read_failed.take() {
            Some(read) => Error::io(store.blob_path(digest), read),
            None => Error::io(out, e),
        }
    }
}

impl<R: Read> Read for Tracked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            self.read_failed = Some(io::Error::new(e.kind(), e.to_string()));
        })
    }
}

enum Blob<'a> {
    Bytes(&'a [u8]),
    Store { size: u64 },
}

/// Everything an output holds, worked out and checked before the first byte
/// is written, so a bad image fails fast and leaves nothing behind.
struct Plan<'a> {
    blobs: BTreeMap<Digest, Blob<'a>>,
    index_json: Vec<u8>,
    docker_manifest: Vec<u8>,
}

#[derive(Serialize)]
struct SaveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags")]
    repo_tags: Vec<String>,
    #[serde(rename = "Layers")]
    layers: Vec<String>,
}

impl<'a> Plan<'a> {
    fn new(
        roots: &[&'a Artifact],
        referrers: &[&'a Referrer],
        store: &Store,
        docker: bool,
    ) -> Result<Plan<'a>> {
        if roots.is_empty() {
            return Err(Error::internal("no images to write"));
        }
        let mut blobs = BTreeMap::new();
        let mut index = IndexEntries::default();
        let mut save: Vec<(Digest, SaveEntry)> = Vec::new();
        for root in roots {
            let base = add_artifact(&mut blobs, root, store, docker)?;
            let repo_tags = index.add(root, base)?;
            if let Artifact::Image(image) = root {
                add_save_entry(&mut save, image, repo_tags);
            }
        }
        for r in referrers {
            for (digest, size) in r.blobs() {
                check_blob(store, &digest, size)?;
                blobs.entry(digest).or_insert(Blob::Store { size });
            }
            blobs.insert(r.manifest.digest, Blob::Bytes(&r.manifest.bytes));
        }
        let index = ImageIndexBuilder::default()
            .schema_version(2u32)
            .media_type(MediaType::ImageIndex)
            .manifests(index.finish())
            .build()
            .map_err(|e| Error::internal_because("cannot build index.json", e))?;
        let docker_manifest = if docker {
            let entries: Vec<SaveEntry> = save.into_iter().map(|(_, e)| e).collect();
            crate::json::canonical(&entries)
        } else {
            Vec::new()
        };
        Ok(Plan {
            blobs,
            index_json: crate::json::canonical(&index),
            docker_manifest,
        })
    }
}

/// The descriptors of an output's `index.json`, as they are added.
#[derive(Default)]
struct IndexEntries {
    descriptors: Vec<Descriptor>,
    /// (digest, full reference) of each named descriptor.
    named: Vec<(Digest, String)>,
    /// (descriptor, tag, familiar reference) of each named descriptor.
    ref_names: Vec<(usize, String, String)>,
}

impl IndexEntries {
    /// Adds one descriptor per tag of `root` (or `base` alone when it has
    /// none), and returns the tags in familiar form, for `manifest.json`.
    fn add(&mut self, root: &Artifact, base: Descriptor) -> Result<Vec<String>> {
        let digest = *root.digest();
        let mut repo_tags = Vec::new();
        for tag in root.tags() {
            let name = tag
                .parse::<Reference>()
                .ok()
                .map(Reference::with_default_tag)
                .filter(|r| r.tag.is_some())
                .ok_or_else(|| Error::InvalidReference {
                    reference: tag.clone(),
                    reason: format!(
                        "image {:?}: an image in an archive is named by a tag",
                        root.name()
                    ),
                })?;
            let short = name.tag.clone().unwrap_or_default();
            let bare = Reference {
                digest: None,
                ..name
            };
            let full = bare.to_string();
            if self.named.contains(&(digest, full.clone())) {
                continue;
            }
            self.named.push((digest, full.clone()));
            repo_tags.push(bare.familiar());
            self.ref_names
                .push((self.descriptors.len(), short.clone(), bare.familiar()));
            let mut d = base.clone();
            d.set_annotations(Some(manifest::annotations([
                (media::ANNOTATION_REF_NAME.to_string(), short),
                (media::ANNOTATION_CONTAINERD_NAME.to_string(), full),
            ])));
            self.descriptors.push(d);
        }
        if root.tags().is_empty()
            && !self
                .descriptors
                .iter()
                .any(|d| d.digest().to_string() == digest.to_string())
        {
            self.descriptors.push(base);
        }
        Ok(repo_tags)
    }

    /// The descriptors, each whose tag another shares named by its
    /// familiar reference instead (see the module's docs).
    fn finish(mut self) -> Vec<Descriptor> {
        for (i, short, familiar) in &self.ref_names {
            if self.ref_names.iter().filter(|(_, s, _)| s == short).count() > 1 {
                let d = &mut self.descriptors[*i];
                let mut a = d.annotations().clone().unwrap_or_default();
                a.insert(media::ANNOTATION_REF_NAME.to_string(), familiar.clone());
                d.set_annotations(Some(a));
            }
        }
        self.descriptors
    }
}

/// Adds the blobs of a checked artifact to an output, and returns the
/// descriptor `index.json` names it by.
fn add_artifact<'a>(
    blobs: &mut BTreeMap<Digest, Blob<'a>>,
    root: &'a Artifact,
    store: &Store,
    docker: bool,
) -> Result<Descriptor> {
    match root {
        Artifact::Image(image) => {
            add_image(blobs, image, store)?;
            Ok(image::manifest_descriptor(image))
        }
        Artifact::Index(index) => {
            if docker {
                return Err(Error::NeedsPlatform {
                    image: index.name.clone(),
                    platforms: index.platforms(),
                    host: None,
                });
            }
            check_index(index)?;
            blobs.insert(index.digest, Blob::Bytes(&index.bytes));
            for child in &index.children {
                add_image(blobs, child, store)?;
            }
            Ok(manifest::descriptor(
                &index.media_type,
                &index.digest,
                index.bytes.len() as u64,
            ))
        }
    }
}

/// One `manifest.json` element per distinct image, holding all of its
/// tags.
fn add_save_entry(save: &mut Vec<(Digest, SaveEntry)>, image: &Image, repo_tags: Vec<String>) {
    match save.iter_mut().find(|(d, _)| *d == image.manifest_digest) {
        Some((_, entry)) => {
            for t in repo_tags {
                if !entry.repo_tags.contains(&t) {
                    entry.repo_tags.push(t);
                }
            }
        }
        None => save.push((
            image.manifest_digest,
            SaveEntry {
                config: format!("blobs/sha256/{}", image.config_digest.hex()),
                repo_tags,
                layers: image
                    .layers
                    .iter()
                    .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
                    .collect(),
            },
        )),
    }
}

/// Adds the manifest, config and layers of a checked image to an output.
fn add_image<'a>(
    blobs: &mut BTreeMap<Digest, Blob<'a>>,
    image: &'a Image,
    store: &Store,
) -> Result<()> {
    check_image(image, store)?;
    blobs.insert(image.manifest_digest, Blob::Bytes(&image.manifest_bytes));
    blobs.insert(image.config_digest, Blob::Bytes(&image.config_bytes));
    for l in &image.layers {
        blobs.insert(l.digest, Blob::Store { size: l.size });
    }
    Ok(())
}

/// Checks that an index's bytes are what its digest says and that they
/// list exactly its children, in order.
fn check_index(index: &ImageIndex) -> Result<()> {
    let what = format!("image {:?}: index", index.name);
    let actual = Digest::of(&index.bytes);
    if actual != index.digest {
        return Err(Error::Mismatch {
            what,
            expected: index.digest.to_string(),
            actual: actual.to_string(),
        });
    }
    let parsed = manifest::parse_index(&index.bytes, &what)?;
    let listed: Vec<String> = parsed
        .manifests()
        .iter()
        .map(|d| d.digest().to_string())
        .collect();
    let children: Vec<String> = index
        .children
        .iter()
        .map(|c| c.manifest_digest.to_string())
        .collect();
    if listed != children {
        return Err(Error::internal(format!(
            "{what}: the index lists {listed:?} but the image has children {children:?}"
        )));
    }
    Ok(())
}

/// Checks that an image is what it says before anything names it: its
/// manifest and config bytes hash to their digests, the manifest lists the
/// same config and layers as the image, and every layer is in the store
/// with the size the manifest gives.
fn check_image(image: &Image, store: &Store) -> Result<()> {
    let what = |part: &str| format!("image {:?}: {part}", image.name);
    for (part, bytes, digest) in [
        ("manifest", &image.manifest_bytes, &image.manifest_digest),
        ("config", &image.config_bytes, &image.config_digest),
    ] {
        let actual = Digest::of(bytes);
        if actual != *digest {
            return Err(Error::Mismatch {
                what: what(part),
                expected: digest.to_string(),
                actual: actual.to_string(),
            });
        }
    }
    if !media::is_image_manifest(&image.manifest_media_type) {
        return Err(Error::internal(format!(
            "{}: media type {} is not a single-image manifest",
            what("manifest"),
            image.manifest_media_type
        )));
    }
    let manifest = manifest::parse_manifest(&image.manifest_bytes, &what("manifest"))?;
    let disagree = |detail: String| {
        Error::internal(format!(
            "{}: the manifest and the image disagree: {detail}",
            what("manifest")
        ))
    };
    let config = manifest.config();
    if config.digest().to_string() != image.config_digest.to_string()
        || config.size() != image.config_bytes.len() as u64
    {
        return Err(disagree(format!(
            "config is {} ({} bytes), the image has {} ({} bytes)",
            config.digest(),
            config.size(),
            image.config_digest,
            image.config_bytes.len()
        )));
    }
    if manifest.layers().len() != image.layers.len() {
        return Err(disagree(format!(
            "{} layers against {}",
            manifest.layers().len(),
            image.layers.len()
        )));
    }
    for (i, (m, l)) in manifest.layers().iter().zip(&image.layers).enumerate() {
        if m.digest().to_string() != l.digest.to_string()
            || m.size() != l.size
            || m.media_type().to_string() != l.media_type
        {
            return Err(disagree(format!(
                "layer {i} is {} {} ({} bytes), the image has {} {} ({} bytes)",
                m.media_type(),
                m.digest(),
                m.size(),
                l.media_type,
                l.digest,
                l.size
            )));
        }
        match store.size(&l.digest) {
            Some(n) if n == l.size => {}
            Some(n) => {
                return Err(Error::Mismatch {
                    what: store.blob_path(&l.digest).display().to_string(),
                    expected: format!("{} bytes, as the manifest of {:?} says", l.size, image.name),
                    actual: format!("{n} bytes"),
                })
            }
            None => {
                return Err(Error::io(
                    store.blob_path(&l.digest),
                    io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("layer {i} of image {:?} is not in the store", image.name),
                    ),
                ))
            }
        }
    }
    Ok(())
}

/// Checks that a referrer's blob is in the store at its size.
fn check_blob(store: &Store, digest: &Digest, size: u64) -> Result<()> {
    match store.size(digest) {
        Some(n) if n == size => Ok(()),
        Some(n) => Err(Error::Mismatch {
            what: store.blob_path(digest).display().to_string(),
            expected: format!("{size} bytes, as its artifact manifest says"),
            actual: format!("{n} bytes"),
        }),
        None => Err(Error::io(
            store.blob_path(digest),
            io::Error::new(
                io::ErrorKind::NotFound,
                "a document attached to an image is not in the store",
            ),
        )),
    }
}

#[cfg(test)]
#[path = "write_tests.rs"]
mod tests;
