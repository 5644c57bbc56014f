//! Reading images from OCI layout directories, OCI archives and docker
//! tarballs (both the classic `docker save` shape and the OCI-layout shape).
//!
//! What a location is, is decided by its content, never by its name or by
//! the `oci:` / `docker-archive:` prefix: a directory or a tar holding
//! `oci-layout` and `index.json` is read as an OCI layout (this covers the
//! tarballs `docker save` writes since Engine 25, which carry both an index
//! and a `manifest.json`); otherwise a `manifest.json` makes it a classic
//! `docker save` archive. Tars are indexed once and read by seeking.
//!
//! Every blob is verified against the digest that names it as it is read, so
//! a corrupt or tampered location is reported at the first use of the bad
//! blob and never reaches the store.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::Path;
use std::str::FromStr;

use oci_spec::image::Descriptor;
use serde::Deserialize;

use super::container::{Container, MAX_JSON};
use super::docker_save::open_docker_save;
use crate::buildfile::LocalSource;
use crate::digest::{Digest, VerifyingReader};
use crate::error::{Error, JsonError, Result};
use crate::image::{read, Image};
use crate::manifest;
use crate::media;
use crate::platform;
use crate::platform::Platform;
use crate::reference::{mask_userinfo, normalize, same_image};
use crate::store::Store;

/// Random access to the blobs of an opened image location.
pub trait BlobReader {
    /// A reader of the blob `digest`, verified against it (and its size when
    /// the location knows it) as it is read.
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>>;

    /// Like [`BlobReader::open_blob`], verified by digest alone: the caller
    /// checks the size, to tell content of another size from other content.
    fn open_blob_any_size(&self, digest: &Digest) -> Result<Box<dyn Read + '_>> {
        self.open_blob(digest)
    }
}

/// Opens whatever is at `path` (a layout directory, an OCI archive or a
/// docker tarball) and returns the image selected by `select` (a tag or full
/// name; required only when there are several images).
///
/// `select` matches an index entry's `org.opencontainers.image.ref.name` or
/// `io.containerd.image.name`, or a `RepoTags` entry of a classic archive, in
/// full (`docker.io/library/busybox:latest`) or familiar (`busybox`) form; a
/// manifest digest (`sha256:...`) also selects, as does an image ID (config
/// digest) in a classic archive.
pub fn open(path: &Path, select: Option<&str>) -> Result<(Image, Box<dyn BlobReader>)> {
    open_for(path, select, None)
}

/// Like [`open`]; when the image selected is a multi-platform index,
/// `want` chooses its manifest for that platform.
pub fn open_for(
    path: &Path,
    select: Option<&str>,
    want: Option<&Platform>,
) -> Result<(Image, Box<dyn BlobReader>)> {
    let container = Container::open(path)?;
    let (image, blobs) = if container.has("index.json") && container.has("oci-layout") {
        open_oci(container, select, want)?
    } else if container.has("manifest.json") {
        open_docker_save(container, select)?
    } else if container.has("index.json") {
        return Err(Error::format(
            container.source_name(),
            "has an index.json but no oci-layout file, so it is not an OCI image layout",
        ));
    } else {
        return Err(Error::format(
            container.source_name(),
            "neither an OCI image layout (no oci-layout and index.json) nor a docker save \
             archive (no manifest.json)",
        ));
    };
    Ok((image, Box::new(blobs)))
}

/// Loads a local base image and copies its blobs, verified, into the store.
pub fn import(source: &LocalSource, store: &Store) -> Result<Image> {
    import_for(source, None, store)
}

/// Like [`import`], choosing `want`'s manifest from a multi-platform index.
pub fn import_for(source: &LocalSource, want: Option<&Platform>, store: &Store) -> Result<Image> {
    let (image, blobs) = open_for(source.path(), source.tag(), want)?;
    copy_to_store(&image, blobs.as_ref(), store).map_err(|e| match e {
        // Named by the base whose descriptor it is.
        Error::Mismatch {
            what,
            expected,
            actual,
        } => Error::Mismatch {
            what: format!("{}: {what}", source.path().display()),
            expected,
            actual,
        },
        e => e,
    })?;
    Ok(image)
}

/// Copies every blob of `image` that the store lacks from `blobs`, verified.
/// A blob the store has is checked against its descriptor's size, so a
/// wrong size is refused whether or not the store had the blob. The
/// manifest goes last so that a manifest in the store always means its
/// config and layers are there too.
pub fn copy_to_store(image: &Image, blobs: &dyn BlobReader, store: &Store) -> Result<()> {
    use crate::store::Presence;
    for layer in &image.layers {
        match store.lookup(&layer.digest, layer.size)? {
            Presence::Present => {}
            Presence::OtherSize(n) => {
                return Err(Store::size_error(&layer.digest, layer.size, n));
            }
            Presence::Absent => {
                let mut src = blobs.open_blob_any_size(&layer.digest)?;
                store.put_verified(&mut src, &layer.digest, layer.size)?;
            }
        }
    }
    for (bytes, digest) in [
        (&image.config_bytes, &image.config_digest),
        (&image.manifest_bytes, &image.manifest_digest),
    ] {
        store.put_verified(&mut &bytes[..], digest, bytes.len() as u64)?;
    }
    Ok(())
}

/// The blobs of one opened location.
pub(super) struct LocalBlobs {
    pub(super) container: Container,
    /// Blobs whose name and size are known from the manifest, plus, for
    /// classic archives, the synthesised manifest and the members that hold
    /// configs and layers under names that are not digests.
    pub(super) known: HashMap<Digest, Blob>,
    /// Whether any other digest may be looked up as `blobs/sha256/<hex>`.
    pub(super) layout: bool,
}

pub(super) enum Blob {
    Memory(Vec<u8>),
    Member {
        name: String,
        size: u64,
        what: String,
    },
}

impl BlobReader for LocalBlobs {
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>> {
        self.open_checked(digest, true)
    }

    fn open_blob_any_size(&self, digest: &Digest) -> Result<Box<dyn Read + '_>> {
        self.open_checked(digest, false)
    }
}

impl LocalBlobs {
    fn open_checked(&self, digest: &Digest, sized: bool) -> Result<Box<dyn Read + '_>> {
        let (name, size, what) = match self.known.get(digest) {
            Some(Blob::Memory(bytes)) => {
                return Ok(Box::new(VerifyingReader::new(
                    &bytes[..],
                    *digest,
                    Some(bytes.len() as u64),
                    format!(
                        "{}: synthesised blob {digest}",
                        self.container.source_name()
                    ),
                )));
            }
            Some(Blob::Member { name, size, what }) => (name.clone(), Some(*size), what.clone()),
            None if self.layout => {
                let name = blob_name(digest);
                let what = self.container.member_name(&name);
                (name, None, what)
            }
            None => {
                return Err(Error::format(
                    self.container.source_name(),
                    format!("holds no blob {digest}"),
                ))
            }
        };
        if !self.container.has(&name) {
            return Err(Error::format(
                self.container.source_name(),
                format!("blob {digest} is missing (no file {name})"),
            ));
        }
        let (reader, actual) = self.container.open_member(&name)?;
        let size = if sized { size } else { None };
        Ok(Box::new(VerifyingReader::new(
            reader,
            *digest,
            Some(size.unwrap_or(actual)),
            what,
        )))
    }
}

fn blob_name(digest: &Digest) -> String {
    format!("blobs/sha256/{}", digest.hex())
}

fn bad(container: &Container, message: impl Into<String>) -> Error {
    Error::format(container.source_name(), message)
}

/// The digest a descriptor names, as a document of this location (`what`)
/// gives it.
fn named_digest(container: &Container, d: &oci_spec::image::Digest, what: &str) -> Result<Digest> {
    Digest::from_oci(d, &format!("{}: {what}", container.source_name()))
}

/// Reads a small blob whole and checks it against its descriptor.
fn read_verified(container: &Container, name: &str, digest: &Digest, size: u64) -> Result<Vec<u8>> {
    let what = container.member_name(name);
    if !container.has(name) {
        return Err(bad(
            container,
            format!("blob {digest} is missing (no file {name})"),
        ));
    }
    if size > MAX_JSON {
        return Err(Error::format(
            what,
            format!("descriptor says {size} bytes, more than the {MAX_JSON} allowed for a JSON document"),
        ));
    }
    let bytes = container.read_small(name)?;
    let actual = Digest::of(&bytes);
    if bytes.len() as u64 != size || actual != *digest {
        return Err(Error::Mismatch {
            what,
            expected: format!("{size} bytes hashing to {digest}"),
            actual: format!("{} bytes hashing to {actual}", bytes.len()),
        });
    }
    Ok(bytes)
}

// ---------------------------------------------------------------------------
// OCI image layouts (directories, OCI archives, docker save since Engine 25)

/// One image an `index.json` offers.
struct Entry {
    descriptor: Descriptor,
    digest: Digest,
    media_type: String,
    ref_name: Option<String>,
    containerd_name: Option<String>,
}

impl Entry {
    fn matches(&self, select: &str) -> bool {
        self.ref_name
            .iter()
            .chain(&self.containerd_name)
            .any(|n| same_image(select, n))
            || self.digest.to_string() == select
    }

    /// The name the image is known by: containerd's annotation holds a full
    /// reference. `ref.name` is often only a tag (`oci:DIR:TAG`), kept as
    /// it is because it is the only name such a layout has; some tools put
    /// a whole reference there, which is normalised like any other.
    fn name(&self) -> Option<String> {
        match (&self.containerd_name, &self.ref_name) {
            (Some(n), _) => Some(full_or_raw(n)),
            (None, Some(r)) if r.contains(['/', ':']) => Some(full_or_raw(r)),
            (None, Some(r)) => Some(r.clone()),
            (None, None) => None,
        }
    }
}

/// Whether an index entry is an image of some kind (manifest, index or
/// schema 1, refused later with a reason) rather than another artifact.
fn is_image_media_type(mt: &str) -> bool {
    media::is_image_manifest(mt) || media::is_index(mt) || media::is_schema1(mt)
}

fn schema1_error(container: &Container, what: &str) -> Error {
    bad(container, read::schema1_refusal(what))
}

/// The images a layout's `index.json` lists, checked.
fn layout_entries(container: &Container) -> Result<Vec<Entry>> {
    check_layout_version(container)?;
    let index_what = container.member_name("index.json");
    let index = manifest::parse_index(&container.read_small("index.json")?, &index_what)?;
    if index.schema_version() != 2 {
        return Err(Error::format(
            index_what,
            format!("schemaVersion is {}, expected 2", index.schema_version()),
        ));
    }
    let mut entries = Vec::new();
    for (i, d) in index.manifests().iter().enumerate() {
        let media_type = d.media_type().to_string();
        if !is_image_media_type(&media_type) {
            // Signatures, attestations and other artifacts share the index
            // with images; they are not candidates for selection.
            continue;
        }
        let annotation = |key: &str| d.annotations().as_ref().and_then(|a| a.get(key)).cloned();
        entries.push(Entry {
            digest: named_digest(container, d.digest(), &format!("index.json manifests[{i}]"))?,
            media_type,
            ref_name: annotation(media::ANNOTATION_REF_NAME),
            containerd_name: annotation(media::ANNOTATION_CONTAINERD_NAME),
            descriptor: d.clone(),
        });
    }
    Ok(entries)
}

/// The entry `select` names (see [`open`]) and every name the layout gives
/// its digest.
fn choose_entry<'a>(
    container: &Container,
    entries: &'a [Entry],
    select: Option<&str>,
) -> Result<(&'a Entry, Vec<String>)> {
    let chosen = select_one(
        container,
        entries,
        select,
        |e, s| e.matches(s),
        |e| e.digest,
        |e| e.name().into_iter().collect(),
    )?;
    let mut tags = Vec::new();
    for e in entries.iter().filter(|e| e.digest == chosen.digest) {
        if let Some(n) = e.name() {
            if !tags.contains(&n) {
                tags.push(n);
            }
        }
    }
    Ok((chosen, tags))
}

/// A multi-platform image as a location lists it.
#[derive(Debug, Clone)]
pub struct IndexInfo {
    /// What names the index.
    pub digest: Digest,
    /// OCI index or Docker manifest list.
    pub media_type: String,
    /// The names the location gives the index.
    pub tags: Vec<String>,
    /// Index annotations, sorted.
    pub annotations: BTreeMap<String, String>,
    /// Its image manifests (attestations left out), in order.
    pub manifests: Vec<platform::Candidate>,
}

/// A manifest in a location that refers to an image (its `subject`): an
/// SBOM, a provenance statement, a signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct LocationReferrer {
    /// The referrer's manifest.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    /// What it is (`application/spdx+json`), as its `artifactType` says,
    /// else its config's media type.
    pub artifact_type: Option<String>,
}

/// Manifests larger than this are not looked at for a `subject`: an
/// artifact manifest of one document is well under a kilobyte.
const MAX_REFERRER_MANIFEST: u64 = 64 << 10;

/// Every manifest among the blobs of the OCI layout (directory or archive)
/// at `path` that names a `subject`, by the subject's digest, each list in
/// digest order. Referrers need not be listed in `index.json` (gantry
/// writes them beside the images only), so the blobs are looked through;
/// a location without `blobs/sha256` has none.
pub fn referrers(path: &Path) -> Result<BTreeMap<Digest, Vec<LocationReferrer>>> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct WithSubject {
        artifact_type: Option<String>,
        config: Option<Descriptor>,
        subject: Option<Descriptor>,
    }
    let container = Container::open(path)?;
    let mut out: BTreeMap<Digest, Vec<LocationReferrer>> = BTreeMap::new();
    for name in container.files_in("blobs/sha256")? {
        let size = container.size(&name)?;
        if size > MAX_REFERRER_MANIFEST {
            continue;
        }
        let bytes = container.read_small(&name)?;
        // Layers and configs are not manifests: anything that does not
        // parse as one is simply not a referrer.
        let Ok(m) = serde_json::from_slice::<WithSubject>(&bytes) else {
            continue;
        };
        let Some(subject) = m.subject else { continue };
        let Ok(subject) = Digest::from_oci(subject.digest(), &name) else {
            continue;
        };
        out.entry(subject).or_default().push(LocationReferrer {
            digest: Digest::of(&bytes),
            size,
            artifact_type: m
                .artifact_type
                .or_else(|| m.config.map(|c| c.media_type().to_string())),
        });
    }
    Ok(out)
}

/// The multi-platform index `select` names in the OCI layout (directory or
/// archive) at `path`; `None` when it names a single image, or the location
/// is not an OCI layout. Use [`open_for`] to read one platform's image.
pub fn open_index(path: &Path, select: Option<&str>) -> Result<Option<IndexInfo>> {
    let container = Container::open(path)?;
    if !(container.has("index.json") && container.has("oci-layout")) {
        return Ok(None);
    }
    let entries = layout_entries(&container)?;
    let (chosen, tags) = choose_entry(&container, &entries, select)?;
    if !media::is_index(&chosen.media_type) {
        return Ok(None);
    }
    let bytes = read_verified(
        &container,
        &blob_name(&chosen.digest),
        &chosen.digest,
        chosen.descriptor.size(),
    )?;
    let what = container.member_name(&blob_name(&chosen.digest));
    let manifests = platform::candidates(&bytes, &what)?;
    if manifests.len() < 2 {
        return Ok(None);
    }
    let index = manifest::parse_index(&bytes, &what)?;
    Ok(Some(IndexInfo {
        digest: chosen.digest,
        media_type: chosen.media_type.clone(),
        tags,
        annotations: index
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default(),
        manifests,
    }))
}

fn open_oci(
    container: Container,
    select: Option<&str>,
    want: Option<&Platform>,
) -> Result<(Image, LocalBlobs)> {
    let entries = layout_entries(&container)?;
    let (chosen, tags) = choose_entry(&container, &entries, select)?;
    let label = select
        .map(str::to_string)
        .or_else(|| chosen.name())
        .unwrap_or_else(|| chosen.digest.to_string());
    let (digest, bytes, media_type) = resolve_manifest(
        &container,
        &chosen.descriptor,
        &chosen.media_type,
        &label,
        want,
    )?;
    let manifest_what = container.member_name(&blob_name(&digest));
    let manifest = read::Manifest::parse(bytes, digest, media_type, &manifest_what)?;
    let config_name = blob_name(&manifest.config_digest);
    let config_bytes = read_verified(
        &container,
        &config_name,
        &manifest.config_digest,
        manifest.config_size,
    )?;
    let config_what = container.member_name(&config_name);
    let image = manifest.into_image(label, config_bytes, &config_what, tags)?;

    let mut known = HashMap::new();
    let blobs = [
        (image.manifest_digest, image.manifest_bytes.len() as u64),
        (image.config_digest, image.config_bytes.len() as u64),
    ];
    for (digest, size) in blobs
        .into_iter()
        .chain(image.layers.iter().map(|l| (l.digest, l.size)))
    {
        let name = blob_name(&digest);
        let what = container.member_name(&name);
        known.insert(digest, Blob::Member { name, size, what });
    }
    Ok((
        image,
        LocalBlobs {
            container,
            known,
            layout: true,
        },
    ))
}

fn check_layout_version(container: &Container) -> Result<()> {
    #[derive(Deserialize)]
    struct Layout {
        #[serde(rename = "imageLayoutVersion")]
        version: String,
    }
    let what = container.member_name("oci-layout");
    let layout: Layout =
        serde_json::from_slice(&container.read_small("oci-layout")?).map_err(|e| {
            Error::format_because(&what, "not an OCI layout marker", JsonError::from(e))
        })?;
    if !layout.version.starts_with("1.") {
        return Err(Error::format(
            what,
            format!(
                "image layout version {} is not supported (only 1.x is)",
                layout.version
            ),
        ));
    }
    Ok(())
}

/// Reads the manifest an index entry names. An entry that is itself an
/// index is followed only when it holds a single image (plus attestations);
/// a real multi-platform index is refused, naming its platforms.
fn resolve_manifest(
    container: &Container,
    desc: &Descriptor,
    media_type: &str,
    label: &str,
    want: Option<&Platform>,
) -> Result<(Digest, Vec<u8>, String)> {
    if media::is_schema1(media_type) {
        return Err(schema1_error(container, label));
    }
    let digest = named_digest(container, desc.digest(), label)?;
    let bytes = read_verified(container, &blob_name(&digest), &digest, desc.size())?;

    let what = container.member_name(&blob_name(&digest));
    let peek = media::Peek::of(&bytes)
        .map_err(|e| Error::format_because(&what, "not a JSON manifest", JsonError::from(e)))?;
    if peek.schema_version == Some(1) {
        return Err(schema1_error(container, label));
    }
    let listed = peek.has_manifests();
    let body_media = peek.media_type.unwrap_or_else(|| media_type.to_string());
    if !(listed || media::is_index(media_type) || media::is_index(&body_media)) {
        return Ok((digest, bytes, body_media));
    }

    let index = manifest::parse_index(&bytes, &what)?;
    let images: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| !platform::is_attestation(d) && is_image_media_type(d.media_type().as_ref()))
        .collect();
    if let [only] = images[..] {
        let mt = only.media_type().to_string();
        if !media::is_index(&mt) {
            return resolve_manifest(container, only, &mt, label, want);
        }
    }
    if let Some(want) = want {
        let cands = platform::candidates(&bytes, &what)?;
        let chosen = platform::choose(&cands, want, &format!("{label} (index {digest})"))?;
        if let Some(d) = images
            .iter()
            .find(|d| d.digest().as_ref() == chosen.digest.to_string())
        {
            let mt = d.media_type().to_string();
            return resolve_manifest(container, d, &mt, label, Some(want));
        }
    }
    let mut platforms = String::new();
    for d in &images {
        if !platforms.is_empty() {
            platforms.push_str(", ");
        }
        match d.platform() {
            Some(p) => platforms.push_str(&platform::oci_platform_string(p)),
            None => platforms.push_str("(no platform)"),
        }
        let present = Digest::from_str(d.digest().as_ref())
            .map(|dg| container.has(&blob_name(&dg)))
            .unwrap_or(false);
        if !present {
            platforms.push_str(" (not in this location)");
        }
    }
    Err(bad(
        container,
        format!(
            "{label} is a multi-platform image ({platforms}); choose one platform \
             (`--platform` for inspect)"
        ),
    ))
}

/// Picks the one image a selection names. Entries with the same digest are
/// one image under several names, so only distinct digests count.
pub(super) fn select_one<'a, T>(
    container: &Container,
    entries: &'a [T],
    select: Option<&str>,
    matches: impl Fn(&T, &str) -> bool,
    digest: impl Fn(&T) -> Digest,
    names: impl Fn(&T) -> Vec<String>,
) -> Result<&'a T> {
    let candidates: Vec<&T> = match select {
        Some(s) => entries.iter().filter(|e| matches(e, s)).collect(),
        None => entries.iter().collect(),
    };
    let mut distinct: Vec<Digest> = Vec::new();
    for c in &candidates {
        if !distinct.contains(&digest(c)) {
            distinct.push(digest(c));
        }
    }
    if distinct.len() == 1 {
        return Ok(candidates[0]);
    }
    let listing = |pool: &[&T]| {
        let mut digests: Vec<Digest> = Vec::new();
        for e in pool {
            if !digests.contains(&digest(e)) {
                digests.push(digest(e));
            }
        }
        let mut labels: Vec<String> = Vec::new();
        for d in digests {
            let names: Vec<String> = pool
                .iter()
                .filter(|e| digest(e) == d)
                .flat_map(|e| names(e))
                .collect();
            if names.is_empty() {
                labels.push(format!("{d} (no name)"));
            }
            for n in names {
                if !labels.contains(&n) {
                    labels.push(n);
                }
            }
        }
        labels.join(", ")
    };
    let all: Vec<&T> = entries.iter().collect();
    let message = match (select, distinct.len()) {
        (_, _) if entries.is_empty() => "holds no images".to_string(),
        (Some(s), 0) => format!(
            "no image named {:?}; available: {}",
            mask_userinfo(s),
            listing(&all)
        ),
        (Some(s), _) => format!(
            "{:?} names {} different images: {}",
            mask_userinfo(s),
            distinct.len(),
            listing(&candidates)
        ),
        (None, _) => format!(
            "holds {} images, so one must be chosen by name; available: {}",
            distinct.len(),
            listing(&all)
        ),
    };
    Err(bad(container, message))
}

// ---------------------------------------------------------------------------
// Classic `docker save` archives: manifest.json, no index.

/// The normalised full form of a name found in an archive, or the name as
/// written when it is not a reference at all.
pub(super) fn full_or_raw(name: &str) -> String {
    normalize(name).unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
#[path = "read_tests.rs"]
mod tests;
