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
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use oci_spec::image::Descriptor;
use serde::Deserialize;

use super::container::{compression_of, Container, MAX_JSON};
use crate::config::ImageConfig;
use crate::digest::{Digest, Hasher, VerifyingReader};
use crate::error::{Error, Result};
use crate::image::{Image, LayerDesc};
use crate::reference::{normalize, same_image};
use crate::spec;
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
    ///
    /// Paths may contain `:` and tags (full references such as
    /// `example.com:5000/app:1`) may too, so the split is decided in this
    /// order:
    /// 1. if the whole text names an existing file or directory, it is the
    ///    path and there is no tag;
    /// 2. otherwise the first `:` whose left side names an existing file or
    ///    directory splits path from tag (this is how `skopeo` reads
    ///    `docker-archive:x.tar:busybox:latest`);
    /// 3. otherwise (nothing exists yet) the text after the last `:` is the
    ///    tag if it contains no `/`, and everything is the path if it does.
    ///
    /// A trailing `:` with nothing after it is an error.
    pub fn parse(s: &str, base_dir: &Path) -> Option<Result<LocalSource>> {
        let (docker, rest) = if let Some(rest) = s.strip_prefix("oci:") {
            (false, rest)
        } else if let Some(rest) = s.strip_prefix("docker-archive:") {
            (true, rest)
        } else {
            return None;
        };
        Some(split_location(s, rest, base_dir).map(|(path, tag)| {
            if docker {
                LocalSource::DockerArchive { path, tag }
            } else {
                LocalSource::OciLayout { path, tag }
            }
        }))
    }

    pub fn path(&self) -> &Path {
        match self {
            LocalSource::OciLayout { path, .. } | LocalSource::DockerArchive { path, .. } => path,
        }
    }

    pub fn tag(&self) -> Option<&str> {
        match self {
            LocalSource::OciLayout { tag, .. } | LocalSource::DockerArchive { tag, .. } => {
                tag.as_deref()
            }
        }
    }
}

fn split_location(whole: &str, rest: &str, base_dir: &Path) -> Result<(PathBuf, Option<String>)> {
    let bad = |reason: &str| Error::InvalidReference {
        reference: whole.to_string(),
        reason: reason.to_string(),
    };
    if rest.is_empty() || rest.starts_with(':') {
        return Err(bad("the path is empty"));
    }
    if rest.ends_with(':') {
        return Err(bad("the tag after the last ':' is empty"));
    }
    let resolve = |p: &str| base_dir.join(p);
    if resolve(rest).exists() {
        return Ok((resolve(rest), None));
    }
    for (i, _) in rest.match_indices(':') {
        if resolve(&rest[..i]).exists() {
            return Ok((resolve(&rest[..i]), Some(rest[i + 1..].to_string())));
        }
    }
    match rest.rsplit_once(':') {
        Some((path, tag)) if !tag.contains('/') => Ok((resolve(path), Some(tag.to_string()))),
        _ => Ok((resolve(rest), None)),
    }
}

/// Random access to the blobs of an opened image location.
pub trait BlobReader {
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>>;
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
    let container = Container::open(path)?;
    let (image, blobs) = if container.has("index.json") && container.has("oci-layout") {
        open_oci(container, select)?
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
    let (image, blobs) = open(source.path(), source.tag())?;
    copy_to_store(&image, blobs.as_ref(), store)?;
    Ok(image)
}

/// Copies every blob of `image` that the store lacks from `blobs`, verified.
/// The manifest goes last so that a manifest in the store always means its
/// config and layers are there too.
pub fn copy_to_store(image: &Image, blobs: &dyn BlobReader, store: &Store) -> Result<()> {
    for layer in &image.layers {
        if !store.has(&layer.digest) {
            let mut src = blobs.open_blob(&layer.digest)?;
            store.put_verified(&mut src, &layer.digest, layer.size)?;
        }
    }
    for (bytes, digest) in [
        (&image.config_bytes, &image.config_digest),
        (&image.manifest_bytes, &image.manifest_digest),
    ] {
        if !store.has(digest) {
            store.put_verified(&mut &bytes[..], digest, bytes.len() as u64)?;
        }
    }
    Ok(())
}

/// The blobs of one opened location.
struct LocalBlobs {
    container: Container,
    /// Blobs whose name and size are known from the manifest, plus, for
    /// classic archives, the synthesised manifest and the members that hold
    /// configs and layers under names that are not digests.
    known: HashMap<Digest, Blob>,
    /// Whether any other digest may be looked up as `blobs/sha256/<hex>`.
    layout: bool,
}

enum Blob {
    Memory(Vec<u8>),
    Member {
        name: String,
        size: u64,
        what: String,
    },
}

impl BlobReader for LocalBlobs {
    fn open_blob(&self, digest: &Digest) -> Result<Box<dyn Read + '_>> {
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

fn parse_digest(container: &Container, d: &oci_spec::image::Digest, what: &str) -> Result<Digest> {
    Digest::from_str(d.as_ref()).map_err(|_| {
        bad(
            container,
            format!("{what}: digest {d} is not supported (only sha256 is)"),
        )
    })
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

fn is_image_media_type(mt: &str) -> bool {
    matches!(
        mt,
        spec::OCI_MANIFEST
            | spec::DOCKER_MANIFEST
            | spec::OCI_INDEX
            | spec::DOCKER_MANIFEST_LIST
            | spec::DOCKER_SCHEMA1
            | DOCKER_SCHEMA1_UNSIGNED
    )
}

const DOCKER_SCHEMA1_UNSIGNED: &str = "application/vnd.docker.distribution.manifest.v1+json";

fn schema1_error(container: &Container, what: &str) -> Error {
    bad(
        container,
        format!(
            "{what} is a Docker schema 1 manifest, a format retired in 2019 that gantry does \
             not read; convert it first (for example `skopeo copy --format v2s2`, or pull \
             and save it with a current docker)"
        ),
    )
}

fn open_oci(container: Container, select: Option<&str>) -> Result<(Image, LocalBlobs)> {
    check_layout_version(&container)?;
    let index_what = container.member_name("index.json");
    let index = spec::parse_index(&container.read_small("index.json")?, &index_what)?;
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
            digest: parse_digest(
                &container,
                d.digest(),
                &format!("index.json manifests[{i}]"),
            )?,
            media_type,
            ref_name: annotation(spec::ANNOTATION_REF_NAME),
            containerd_name: annotation(spec::ANNOTATION_CONTAINERD_NAME),
            descriptor: d.clone(),
        });
    }
    let chosen = select_one(
        &container,
        &entries,
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
    let label = select
        .map(str::to_string)
        .or_else(|| chosen.name())
        .unwrap_or_else(|| chosen.digest.to_string());

    let mut known = HashMap::new();
    let (manifest_digest, manifest_bytes, media_type) =
        resolve_manifest(&container, &chosen.descriptor, &chosen.media_type, &label)?;
    known.insert(
        manifest_digest,
        Blob::Member {
            name: blob_name(&manifest_digest),
            size: manifest_bytes.len() as u64,
            what: container.member_name(&blob_name(&manifest_digest)),
        },
    );
    let manifest_what = container.member_name(&blob_name(&manifest_digest));
    let manifest = spec::parse_manifest(&manifest_bytes, &manifest_what)?;

    let config_desc = manifest.config();
    let config_media = config_desc.media_type().to_string();
    if config_media != spec::OCI_CONFIG && config_media != spec::DOCKER_CONFIG {
        return Err(Error::format(
            manifest_what,
            format!("not a container image: its config media type is {config_media}"),
        ));
    }
    let config_digest = parse_digest(&container, config_desc.digest(), "manifest config")?;
    let config_bytes = read_verified(
        &container,
        &blob_name(&config_digest),
        &config_digest,
        config_desc.size(),
    )?;
    known.insert(
        config_digest,
        Blob::Member {
            name: blob_name(&config_digest),
            size: config_desc.size(),
            what: container.member_name(&blob_name(&config_digest)),
        },
    );
    let config_what = container.member_name(&blob_name(&config_digest));
    let config = parse_config(&config_bytes, &config_what)?;

    let diff_ids = diff_ids(&config, &config_what, manifest.layers().len())?;
    let mut layers = Vec::new();
    for (i, (d, diff_id)) in manifest.layers().iter().zip(diff_ids).enumerate() {
        let digest = parse_digest(&container, d.digest(), &format!("manifest layers[{i}]"))?;
        known.insert(
            digest,
            Blob::Member {
                name: blob_name(&digest),
                size: d.size(),
                what: container.member_name(&blob_name(&digest)),
            },
        );
        layers.push(LayerDesc {
            media_type: d.media_type().to_string(),
            digest,
            size: d.size(),
            diff_id,
        });
    }
    let annotations: BTreeMap<String, String> = manifest
        .annotations()
        .as_ref()
        .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default();

    let image = Image {
        name: label,
        manifest_bytes,
        manifest_digest,
        manifest_media_type: media_type,
        config_bytes,
        config_digest,
        config,
        layers,
        tags,
        annotations,
    };
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
    let layout: Layout = serde_json::from_slice(&container.read_small("oci-layout")?)
        .map_err(|e| Error::format(&what, format!("not an OCI layout marker: {e}")))?;
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
) -> Result<(Digest, Vec<u8>, String)> {
    if media_type == spec::DOCKER_SCHEMA1 || media_type == DOCKER_SCHEMA1_UNSIGNED {
        return Err(schema1_error(container, label));
    }
    let digest = parse_digest(container, desc.digest(), label)?;
    let bytes = read_verified(container, &blob_name(&digest), &digest, desc.size())?;

    #[derive(Deserialize)]
    struct Peek {
        #[serde(rename = "schemaVersion")]
        schema_version: Option<u32>,
        #[serde(rename = "mediaType")]
        media_type: Option<String>,
        manifests: Option<serde_json::Value>,
    }
    let what = container.member_name(&blob_name(&digest));
    let peek: Peek = serde_json::from_slice(&bytes)
        .map_err(|e| Error::format(&what, format!("not a JSON manifest: {e}")))?;
    if peek.schema_version == Some(1) {
        return Err(schema1_error(container, label));
    }
    let body_media = peek.media_type.unwrap_or_else(|| media_type.to_string());
    let is_index = media_type == spec::OCI_INDEX
        || media_type == spec::DOCKER_MANIFEST_LIST
        || body_media == spec::OCI_INDEX
        || body_media == spec::DOCKER_MANIFEST_LIST
        || peek.manifests.is_some();
    if !is_index {
        return Ok((digest, bytes, body_media));
    }

    let index = spec::parse_index(&bytes, &what)?;
    let images: Vec<&Descriptor> = index
        .manifests()
        .iter()
        .filter(|d| {
            let attestation = d
                .annotations()
                .as_ref()
                .and_then(|a| a.get("vnd.docker.reference.type"))
                .is_some();
            let unknown = d
                .platform()
                .as_ref()
                .is_some_and(|p| spec::platform_string(p) == "unknown/unknown");
            !attestation && !unknown && is_image_media_type(d.media_type().as_ref())
        })
        .collect();
    if let [only] = images[..] {
        let mt = only.media_type().to_string();
        if mt != spec::OCI_INDEX && mt != spec::DOCKER_MANIFEST_LIST {
            return resolve_manifest(container, only, &mt, label);
        }
    }
    let mut platforms = String::new();
    for d in &images {
        if !platforms.is_empty() {
            platforms.push_str(", ");
        }
        match d.platform() {
            Some(p) => platforms.push_str(&spec::platform_string(p)),
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
            "{label} is a multi-platform image ({platforms}); choosing one platform is not \
             supported yet, so save or copy a single platform"
        ),
    ))
}

fn parse_config(bytes: &[u8], what: &str) -> Result<ImageConfig> {
    ImageConfig::parse(bytes).map_err(|e| Error::format(what, format!("not an image config: {e}")))
}

fn diff_ids(config: &ImageConfig, what: &str, layer_count: usize) -> Result<Vec<Digest>> {
    let ids = &config.rootfs.diff_ids;
    if ids.len() != layer_count {
        return Err(Error::format(
            what,
            format!(
                "rootfs.diff_ids lists {} layers but the manifest has {layer_count}",
                ids.len()
            ),
        ));
    }
    ids.iter()
        .enumerate()
        .map(|(i, s)| {
            Digest::from_str(s).map_err(|_| {
                Error::format(
                    what,
                    format!("rootfs.diff_ids[{i}] {s:?} is not a sha256 digest"),
                )
            })
        })
        .collect()
}

/// Picks the one image a selection names. Entries with the same digest are
/// one image under several names, so only distinct digests count.
fn select_one<'a, T>(
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
        (Some(s), 0) => format!("no image named {s:?}; available: {}", listing(&all)),
        (Some(s), _) => format!(
            "{s:?} names {} different images: {}",
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

#[derive(Deserialize)]
struct SaveEntry {
    #[serde(rename = "Config")]
    config: String,
    #[serde(rename = "RepoTags", default)]
    repo_tags: Option<Vec<String>>,
    #[serde(rename = "Layers", default)]
    layers: Vec<String>,
}

impl SaveEntry {
    fn tags(&self) -> impl Iterator<Item = &String> {
        self.repo_tags.iter().flatten()
    }

    /// The image ID, when the config's file name carries it
    /// (`<hex>.json`, `blobs/sha256/<hex>`, `sha256:<hex>`).
    fn id(&self) -> Option<Digest> {
        digest_in_name(&self.config)
    }
}

/// The digest a file name claims for its content, if it claims one.
fn digest_in_name(name: &str) -> Option<Digest> {
    let base = name.rsplit('/').next().unwrap_or(name);
    let base = base.strip_suffix(".json").unwrap_or(base);
    let base = base.strip_prefix("sha256:").unwrap_or(base);
    Digest::from_str(&format!("sha256:{base}")).ok()
}

fn open_docker_save(container: Container, select: Option<&str>) -> Result<(Image, LocalBlobs)> {
    let list_what = container.member_name("manifest.json");
    let entries: Vec<SaveEntry> = serde_json::from_slice(&container.read_small("manifest.json")?)
        .map_err(|e| {
        Error::format(
            &list_what,
            format!("not a docker save manifest (an array of {{Config, RepoTags, Layers}}): {e}"),
        )
    })?;
    // Entries without a recognisable ID still need a key that tells them
    // apart; their position does.
    let keyed: Vec<(Digest, &SaveEntry)> = entries
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let key = e
                .id()
                .unwrap_or_else(|| Digest::of(format!("entry {i}").as_bytes()));
            (key, e)
        })
        .collect();
    let (_, chosen) = *select_one(
        &container,
        &keyed,
        select,
        |(id, e), s| {
            e.tags().any(|t| same_image(s, t)) || (e.id().is_some() && id.to_string() == s)
        },
        |(id, _)| *id,
        |(_, e)| {
            let tags: Vec<String> = e.tags().map(|t| full_or_raw(t)).collect();
            if tags.is_empty() {
                vec![format!("untagged image with config {}", e.config)]
            } else {
                tags
            }
        },
    )?;

    let config_bytes = container.read_small(&chosen.config)?;
    let config_digest = Digest::of(&config_bytes);
    let config_what = container.member_name(&chosen.config);
    if let Some(claimed) = chosen.id() {
        if claimed != config_digest {
            return Err(Error::Mismatch {
                what: config_what,
                expected: format!("content hashing to {claimed}, as its name says"),
                actual: config_digest.to_string(),
            });
        }
    }
    let config = parse_config(&config_bytes, &config_what)?;
    let diff_ids = diff_ids(&config, &config_what, chosen.layers.len())?;

    let mut known = HashMap::new();
    let mut layers = Vec::new();
    for (name, diff_id) in chosen.layers.iter().zip(diff_ids) {
        let size = container.size(name)?;
        let mut head = [0u8; 6];
        let n = container.read_head(name, &mut head)?;
        let what = container.member_name(name);
        let (media_type, digest) = match compression_of(&head[..n]) {
            // An uncompressed layer is its own diff: its digest is the
            // diff_id, which the reader then verifies, so the archive is not
            // read twice just to learn a digest it already states.
            None => (spec::OCI_LAYER_TAR, diff_id),
            Some(kind @ ("gzip" | "zstd")) => {
                let digest = hash_compressed_layer(&container, name, kind, &diff_id)?;
                let mt = if kind == "gzip" {
                    spec::OCI_LAYER_GZIP
                } else {
                    spec::OCI_LAYER_ZSTD
                };
                (mt, digest)
            }
            Some(kind) => {
                return Err(Error::format(
                    what,
                    format!("is a {kind}-compressed layer; only uncompressed, gzip and zstd layers are supported"),
                ))
            }
        };
        let what = if digest == diff_id {
            format!("{what} (an uncompressed layer must hash to its diff_id)")
        } else {
            what
        };
        // A layer listed twice is one blob; its first file stands for it.
        known.entry(digest).or_insert(Blob::Member {
            name: name.clone(),
            size,
            what,
        });
        layers.push(LayerDesc {
            media_type: media_type.to_string(),
            digest,
            size,
            diff_id,
        });
    }
    known.insert(
        config_digest,
        Blob::Member {
            name: chosen.config.clone(),
            size: config_bytes.len() as u64,
            what: config_what,
        },
    );

    let manifest_bytes = spec::oci_manifest(
        &config_digest,
        config_bytes.len() as u64,
        &layers,
        &BTreeMap::new(),
    );
    let manifest_digest = Digest::of(&manifest_bytes);
    known.insert(manifest_digest, Blob::Memory(manifest_bytes.clone()));

    let tags: Vec<String> = chosen.tags().map(|t| full_or_raw(t)).collect();
    let label = select
        .map(str::to_string)
        .or_else(|| tags.first().cloned())
        .unwrap_or_else(|| container.source_name());
    let image = Image {
        name: label,
        manifest_bytes,
        manifest_digest,
        manifest_media_type: spec::OCI_MANIFEST.to_string(),
        config_bytes,
        config_digest,
        config,
        layers,
        tags,
        annotations: BTreeMap::new(),
    };
    Ok((
        image,
        LocalBlobs {
            container,
            known,
            layout: false,
        },
    ))
}

/// Digest of a compressed layer in a classic archive, which names layers by
/// path and not by digest. The same pass decompresses it and checks the
/// result against its diff_id, because nothing later would.
fn hash_compressed_layer(
    container: &Container,
    name: &str,
    kind: &str,
    diff_id: &Digest,
) -> Result<Digest> {
    let what = container.member_name(name);
    let (reader, _) = container.open_member(name)?;
    let mut compressed = HashingReader {
        inner: reader,
        hasher: Hasher::new(),
    };
    let mut plain = Hasher::new();
    let result = (|| -> io::Result<()> {
        let mut decoder: Box<dyn Read + '_> = if kind == "gzip" {
            Box::new(flate2::read::MultiGzDecoder::new(&mut compressed))
        } else {
            Box::new(zstd::stream::read::Decoder::new(&mut compressed)?)
        };
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = decoder.read(&mut buf)?;
            if n == 0 {
                break;
            }
            plain.update(&buf[..n]);
        }
        drop(decoder);
        // Anything after the last compressed frame is still part of the blob.
        io::copy(&mut compressed, &mut io::sink())?;
        Ok(())
    })();
    result.map_err(|e| Error::format(&what, format!("cannot decompress {kind} layer: {e}")))?;
    let (actual, _) = plain.finish();
    if actual != *diff_id {
        return Err(Error::Mismatch {
            what: format!("{what} (uncompressed content against its diff_id)"),
            expected: diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(compressed.hasher.finish().0)
}

struct HashingReader<R> {
    inner: R,
    hasher: Hasher,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// The normalised full form of a name found in an archive, or the name as
/// written when it is not a reference at all.
fn full_or_raw(name: &str) -> String {
    normalize(name).unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::process::Command;

    use serde_json::{json, Value};

    use super::*;
    use crate::layout::testutil::{
        gzip, layer_tar, make_image, peer, run, sample_image, temp_store,
    };
    use crate::layout::write::write_oci_dir;

    fn err_of<T>(r: Result<T>) -> String {
        match r {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn parse_splits_path_and_tag() {
        let base = Path::new("/base");
        let p = |s: &str| LocalSource::parse(s, base).map(|r| r.unwrap());
        assert_eq!(p("busybox:latest"), None);
        assert_eq!(p("docker://busybox"), None);
        assert_eq!(
            p("oci:/nowhere/layout:dev"),
            Some(LocalSource::OciLayout {
                path: "/nowhere/layout".into(),
                tag: Some("dev".into())
            })
        );
        assert_eq!(
            p("docker-archive:out/image.tar"),
            Some(LocalSource::DockerArchive {
                path: "/base/out/image.tar".into(),
                tag: None
            })
        );
        // The text after the last ':' holds a '/', so it is part of the path.
        assert_eq!(
            p("oci:/nowhere/a:b/c"),
            Some(LocalSource::OciLayout {
                path: "/nowhere/a:b/c".into(),
                tag: None
            })
        );
        for bad in ["oci:", "oci::x", "docker-archive:x.tar:"] {
            let e = LocalSource::parse(bad, base)
                .unwrap()
                .unwrap_err()
                .to_string();
            assert!(e.contains(bad) && e.contains("empty"), "{e}");
        }
    }

    #[test]
    fn parse_prefers_paths_that_exist() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path();
        fs::create_dir(base.join("a:b")).unwrap();
        fs::write(base.join("x.tar"), b"").unwrap();
        let p = |s: &str| LocalSource::parse(s, base).unwrap().unwrap();
        assert_eq!(p("oci:a:b").path(), base.join("a:b"));
        assert_eq!(p("oci:a:b").tag(), None);
        assert_eq!(p("oci:a:b:t").path(), base.join("a:b"));
        assert_eq!(p("oci:a:b:t").tag(), Some("t"));
        let s = p("docker-archive:x.tar:busybox:latest");
        assert_eq!(
            (s.path(), s.tag()),
            (&*base.join("x.tar"), Some("busybox:latest"))
        );
        let s = p("docker-archive:x.tar:example.com:5000/app:1");
        assert_eq!(s.tag(), Some("example.com:5000/app:1"));
    }

    /// A classic `docker save` archive written by hand: config named by its
    /// hex digest, layers at `<id>/layer.tar`, a duplicate layer as a
    /// symlink (as docker writes it), and one gzip layer (as crane's
    /// tarballs have).
    fn classic_archive(dir: &Path, diff_id_override: Option<Digest>) -> (PathBuf, Vec<Vec<u8>>) {
        let l1 = layer_tar(&[("etc/one", b"1\n", 0o644)]);
        let l2 = layer_tar(&[("etc/two", b"2\n", 0o644)]);
        let l2_gz = gzip(&l2);
        let mut diff_ids = vec![Digest::of(&l1), Digest::of(&l2), Digest::of(&l1)];
        if let Some(d) = diff_id_override {
            diff_ids[0] = d;
            diff_ids[2] = d;
        }
        let config = crate::layout::testutil::test_config(&diff_ids).to_canonical_json();
        let config_name = format!("{}.json", Digest::of(&config).hex());
        let manifest = json!([{
            "Config": config_name,
            "RepoTags": ["busybox:latest", "example.com/tool:1"],
            "Layers": ["aaa/layer.tar", "bbb/layer.tar.gz", "ccc/layer.tar"],
        }]);
        let mut b = tar::Builder::new(Vec::new());
        let mut add = |name: &str, data: &[u8], link: Option<&str>| {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o644);
            h.set_size(data.len() as u64);
            match link {
                Some(target) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, name, target).unwrap();
                }
                None => b.append_data(&mut h, name, data).unwrap(),
            }
        };
        add(&config_name, &config, None);
        add("aaa/layer.tar", &l1, None);
        add("bbb/layer.tar.gz", &l2_gz, None);
        add("ccc/layer.tar", b"", Some("../aaa/layer.tar"));
        add(
            "manifest.json",
            &serde_json::to_vec(&manifest).unwrap(),
            None,
        );
        add("repositories", b"{}", None);
        let path = dir.join("classic.tar");
        fs::write(&path, b.into_inner().unwrap()).unwrap();
        (path, vec![l1, l2_gz])
    }

    #[test]
    fn reads_classic_docker_save_archives() {
        let tmp = tempfile::tempdir().unwrap();
        let (path, blobs) = classic_archive(tmp.path(), None);
        let (image, reader) = open(&path, None).unwrap();
        assert_eq!(
            image.tags,
            ["docker.io/library/busybox:latest", "example.com/tool:1"]
        );
        assert_eq!(image.manifest_media_type, spec::OCI_MANIFEST);
        let media: Vec<&str> = image.layers.iter().map(|l| l.media_type.as_str()).collect();
        assert_eq!(
            media,
            [
                spec::OCI_LAYER_TAR,
                spec::OCI_LAYER_GZIP,
                spec::OCI_LAYER_TAR
            ]
        );
        assert_eq!(image.layers[0].digest, image.layers[0].diff_id);
        assert_eq!(image.layers[1].digest, Digest::of(&blobs[1]));
        assert_eq!(image.layers[2], image.layers[0]);

        // The synthesised manifest is canonical OCI JSON describing exactly
        // these blobs.
        let m = spec::parse_manifest(&image.manifest_bytes, "test").unwrap();
        assert_eq!(crate::json::canonical(&m), image.manifest_bytes);
        assert_eq!(Digest::of(&image.manifest_bytes), image.manifest_digest);
        assert_eq!(m.config().media_type().to_string(), spec::OCI_CONFIG);
        assert_eq!(
            m.config().digest().to_string(),
            image.config_digest.to_string()
        );
        assert_eq!(m.layers().len(), 3);

        for select in [
            "busybox",
            "docker.io/library/busybox:latest",
            "example.com/tool:1",
        ] {
            assert_eq!(
                open(&path, Some(select)).unwrap().0.manifest_digest,
                image.manifest_digest
            );
        }
        let id = image.config_digest.to_string();
        assert_eq!(
            open(&path, Some(&id)).unwrap().0.config_digest,
            image.config_digest
        );
        let e = err_of(open(&path, Some("busybox:1")));
        assert!(
            e.contains("no image named") && e.contains("example.com/tool:1"),
            "{e}"
        );

        let (_t, store) = temp_store();
        copy_to_store(&image, reader.as_ref(), &store).unwrap();
        assert_eq!(store.read(&image.layers[0].digest).unwrap(), blobs[0]);
        assert_eq!(store.read(&image.layers[1].digest).unwrap(), blobs[1]);
        assert_eq!(
            store.read(&image.manifest_digest).unwrap(),
            image.manifest_bytes
        );
        assert_eq!(
            store.read(&image.config_digest).unwrap(),
            image.config_bytes
        );

        // An imported classic image can be written out again.
        let out = tmp.path().join("again");
        write_oci_dir(&[&image], &store, &out).unwrap();
        assert_eq!(
            open(&out, None).unwrap().0.manifest_digest,
            image.manifest_digest
        );
    }

    #[test]
    fn classic_layers_must_match_their_diff_ids() {
        let tmp = tempfile::tempdir().unwrap();
        let wrong = Digest::of(b"something else");
        let (path, _) = classic_archive(tmp.path(), Some(wrong));
        // Uncompressed layers are checked when their bytes are read.
        let source = LocalSource::DockerArchive {
            path: path.clone(),
            tag: None,
        };
        let (_t, store) = temp_store();
        let e = err_of(import(&source, &store));
        assert!(e.contains("aaa/layer.tar") && e.contains("diff_id"), "{e}");
        assert!(!store.has(&wrong));

        // Compressed layers are checked when the archive is opened.
        let l2 = layer_tar(&[("etc/two", b"2\n", 0o644)]);
        let mut bytes = fs::read(&path).unwrap();
        let gz = gzip(&l2);
        let at = bytes.windows(gz.len()).position(|w| w == gz).unwrap();
        let mut other = gzip(&layer_tar(&[("etc/two", b"3\n", 0o644)]));
        other.resize(gz.len(), 0);
        bytes[at..at + gz.len()].copy_from_slice(&other);
        fs::write(&path, bytes).unwrap();
        let e = err_of(open(&path, None));
        assert!(e.contains("bbb/layer.tar.gz"), "{e}");
    }

    /// Writes `bytes` as a blob of the layout at `dir`.
    fn put_blob(dir: &Path, bytes: &[u8]) -> Digest {
        let d = Digest::of(bytes);
        fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
        d
    }

    fn set_index(dir: &Path, manifests: Value) {
        let index =
            json!({"schemaVersion": 2, "mediaType": spec::OCI_INDEX, "manifests": manifests});
        fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    }

    #[test]
    fn refuses_schema1_manifests() {
        let (tmp, store) = temp_store();
        let image = sample_image(&store, &["example.com/a:1"], true);
        let dir = tmp.path().join("l");
        write_oci_dir(&[&image], &store, &dir).unwrap();
        let s1 = br#"{"schemaVersion":1,"name":"a","tag":"1","fsLayers":[],"history":[]}"#;
        let d = put_blob(&dir, s1);
        for mt in [spec::DOCKER_SCHEMA1, spec::DOCKER_MANIFEST] {
            set_index(
                &dir,
                json!([{"mediaType": mt, "digest": d.to_string(), "size": s1.len()}]),
            );
            let e = err_of(open(&dir, None));
            assert!(e.contains("schema 1"), "{e}");
        }
    }

    #[test]
    fn refuses_multi_platform_indexes_naming_the_platforms() {
        let (tmp, store) = temp_store();
        let image = sample_image(&store, &["example.com/a:1"], true);
        let dir = tmp.path().join("l");
        write_oci_dir(&[&image], &store, &dir).unwrap();
        let manifest = |platform: Value| {
            json!({"mediaType": spec::OCI_MANIFEST, "digest": image.manifest_digest.to_string(),
                   "size": image.manifest_bytes.len(), "platform": platform})
        };
        let attestation = json!({"mediaType": spec::OCI_MANIFEST,
            "digest": Digest::of(b"att").to_string(), "size": 3,
            "platform": {"os": "unknown", "architecture": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest"}});
        let nested = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": spec::OCI_INDEX,
            "manifests": [manifest(json!({"os": "linux", "architecture": "amd64"})),
                          manifest(json!({"os": "linux", "architecture": "arm64", "variant": "v8"})),
                          attestation.clone()]}))
        .unwrap();
        let d = put_blob(&dir, &nested);
        set_index(
            &dir,
            json!([{"mediaType": spec::OCI_INDEX, "digest": d.to_string(),
            "size": nested.len(), "annotations": {spec::ANNOTATION_REF_NAME: "multi"}}]),
        );
        let e = err_of(open(&dir, Some("multi")));
        assert!(
            e.contains("multi-platform")
                && e.contains("linux/amd64")
                && e.contains("linux/arm64/v8"),
            "{e}"
        );
        assert!(!e.contains("unknown"), "{e}");

        // One platform plus its attestation is not a choice to make.
        let single = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": spec::OCI_INDEX,
            "manifests": [manifest(json!({"os": "linux", "architecture": "amd64"})), attestation]}))
        .unwrap();
        let d = put_blob(&dir, &single);
        set_index(
            &dir,
            json!([{"mediaType": spec::OCI_INDEX, "digest": d.to_string(),
            "size": single.len(), "annotations": {spec::ANNOTATION_REF_NAME: "one"}}]),
        );
        let (got, _) = open(&dir, None).unwrap();
        assert_eq!(got.manifest_digest, image.manifest_digest);
        assert_eq!(got.tags, ["one"]);
    }

    #[test]
    fn selection_needs_a_name_when_there_are_several_images() {
        let (tmp, store) = temp_store();
        let a = sample_image(&store, &["example.com/a:1"], true);
        let b = make_image(&store, &[], &[layer_tar(&[("x", b"x", 0o644)])], false);
        let dir = tmp.path().join("l");
        write_oci_dir(&[&a, &b], &store, &dir).unwrap();
        let e = err_of(open(&dir, None));
        assert!(
            e.contains("2 images") && e.contains("example.com/a:1"),
            "{e}"
        );
        assert!(
            e.contains(&format!("{} (no name)", b.manifest_digest)),
            "{e}"
        );
        let (got, _) = open(&dir, Some(&b.manifest_digest.to_string())).unwrap();
        assert_eq!(got.manifest_digest, b.manifest_digest);
        assert!(got.tags.is_empty());

        // Two entries with one name but different images are ambiguous.
        let index: Value =
            serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
        let mut manifests = index["manifests"].as_array().unwrap().clone();
        manifests[1]["annotations"] = json!({spec::ANNOTATION_REF_NAME: "1"});
        set_index(&dir, Value::Array(manifests));
        let e = err_of(open(&dir, Some("1")));
        assert!(e.contains("names 2 different images"), "{e}");
    }

    #[test]
    fn inconsistent_or_corrupt_layouts_are_reported() {
        let (tmp, store) = temp_store();
        let image = sample_image(&store, &["example.com/a:1"], true);
        let dir = tmp.path().join("l");
        write_oci_dir(&[&image], &store, &dir).unwrap();

        // A corrupt layer is found when it is copied, naming the file.
        let layer = dir.join("blobs/sha256").join(image.layers[0].digest.hex());
        let good = fs::read(&layer).unwrap();
        let mut bad = good.clone();
        bad[20] ^= 0xff;
        fs::write(&layer, &bad).unwrap();
        let (_t, fresh) = temp_store();
        let source = LocalSource::OciLayout {
            path: dir.clone(),
            tag: None,
        };
        let e = err_of(import(&source, &fresh));
        assert!(e.contains(&layer.display().to_string()), "{e}");
        assert!(!fresh.has(&image.layers[0].digest) && !fresh.has(&image.manifest_digest));
        fs::write(&layer, &good).unwrap();

        // A missing layer likewise.
        fs::remove_file(&layer).unwrap();
        let e = err_of(import(&source, &fresh));
        assert!(
            e.contains("missing") && e.contains(&image.layers[0].digest.hex()),
            "{e}"
        );
        fs::write(&layer, &good).unwrap();

        // A config whose diff_ids do not match the layers.
        let mut config = image.config.clone();
        config.rootfs.diff_ids.pop();
        let config_bytes = config.to_canonical_json();
        let config_digest = put_blob(&dir, &config_bytes);
        let mut manifest: Value = serde_json::from_slice(&image.manifest_bytes).unwrap();
        manifest["config"]["digest"] = json!(config_digest.to_string());
        manifest["config"]["size"] = json!(config_bytes.len());
        let manifest = serde_json::to_vec(&manifest).unwrap();
        let md = put_blob(&dir, &manifest);
        set_index(
            &dir,
            json!([{"mediaType": spec::OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len()}]),
        );
        let e = err_of(open(&dir, None));
        assert!(
            e.contains("diff_ids lists 1 layers but the manifest has 2"),
            "{e}"
        );
        assert!(e.contains(&config_digest.hex()), "{e}");

        // A manifest that is not what its descriptor says.
        set_index(
            &dir,
            json!([{"mediaType": spec::OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len() + 1}]),
        );
        let e = err_of(open(&dir, None));
        assert!(e.contains(&md.hex()) && e.contains("bytes"), "{e}");
    }

    #[test]
    fn locations_that_are_not_images_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let e = err_of(open(tmp.path(), None));
        assert!(e.contains("neither an OCI image layout"), "{e}");
        fs::write(tmp.path().join("index.json"), b"{}").unwrap();
        let e = err_of(open(tmp.path(), None));
        assert!(e.contains("no oci-layout"), "{e}");
        fs::write(
            tmp.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"2.0.0"}"#,
        )
        .unwrap();
        let e = err_of(open(tmp.path(), None));
        assert!(e.contains("version 2.0.0"), "{e}");
        fs::write(
            tmp.path().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )
        .unwrap();
        let e = err_of(open(tmp.path(), None));
        assert!(
            e.contains("index.json") && e.contains("not an image index"),
            "{e}"
        );
        let e = err_of(open(&tmp.path().join("missing.tar"), None));
        assert!(e.contains("missing.tar"), "{e}");
    }

    #[test]
    fn reads_layouts_and_archives_made_by_umoci_and_skopeo() {
        if !peer("umoci") || !peer("skopeo") {
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let layout = tmp.path().join("layout");
        let l = layout.display().to_string();
        run(Command::new("umoci").args(["init", "--layout", &l]));
        run(Command::new("umoci").args(["new", "--image", &format!("{l}:base")]));
        let file = tmp.path().join("greeting");
        fs::write(&file, b"hi\n").unwrap();
        run(Command::new("umoci")
            .args(["insert", "--rootless", "--image", &format!("{l}:base")])
            .arg(&file)
            .arg("/etc/greeting"));
        run(Command::new("umoci").args([
            "config",
            "--image",
            &format!("{l}:base"),
            "--tag",
            "configured",
            "--config.env",
            "A=1",
        ]));

        let e = err_of(open(&layout, None));
        assert!(e.contains("base") && e.contains("configured"), "{e}");
        let (oci, _) = open(&layout, Some("configured")).unwrap();
        assert_eq!(oci.tags, ["configured"]);
        assert_eq!(oci.layers.len(), 1);
        assert_eq!(oci.config.env(), ["A=1"]);

        let archive = tmp.path().join("docker.tar");
        run(Command::new("skopeo")
            .args(["copy", "-q", &format!("oci:{l}:configured")])
            .arg(format!(
                "docker-archive:{}:example.com/app:2",
                archive.display()
            )));
        let source =
            LocalSource::parse(&format!("docker-archive:{}", archive.display()), tmp.path())
                .unwrap()
                .unwrap();
        let (_t, store) = temp_store();
        let classic = import(&source, &store).unwrap();
        assert_eq!(classic.tags, ["example.com/app:2"]);
        assert_eq!(classic.config.rootfs.diff_ids, oci.config.rootfs.diff_ids);
        assert_eq!(classic.layers[0].diff_id, oci.layers[0].diff_id);
        assert_eq!(classic.layers[0].media_type, spec::OCI_LAYER_TAR);
        assert!(store.has(&classic.layers[0].digest));

        let oci_archive = tmp.path().join("oci.tar");
        run(Command::new("skopeo")
            .args(["copy", "-q", &format!("oci:{l}:configured")])
            .arg(format!("oci-archive:{}:v2", oci_archive.display())));
        let (from_archive, _) = open(&oci_archive, Some("v2")).unwrap();
        assert_eq!(
            from_archive.config.rootfs.diff_ids,
            oci.config.rootfs.diff_ids
        );
    }
}
