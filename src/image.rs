//! Images as gantry holds them: an [`Image`], a multi-platform
//! [`ImageIndex`] over several, the [`Artifact`] that is either (what a build
//! makes and every sink writes or pushes), and [`read`], the one reader from
//! manifest + config that every source goes through.
//!
//! An image's manifest and config are always in the store. Its layers are in
//! the store too, except the layers of a registry base the store lacks: those
//! are [`BlobLocation::Remote`], and a sink that copies bytes has them
//! fetched first (`build::BuildOptions::fetch_layers`, or
//! `bases::BaseOptions::ensure_blobs`), while a push streams or mounts them
//! from that repository.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use oci_spec::image::{Descriptor, ImageManifestBuilder, MediaType};

use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::manifest;
use crate::media;
use crate::platform::Platform;
use crate::reference::Reference;

pub mod read;

/// A layer as a manifest lists it, plus its uncompressed digest and where
/// its bytes are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerDesc {
    /// The manifest's media type for the layer (its compression).
    pub media_type: String,
    /// The digest of the compressed blob, as the manifest names it.
    pub digest: Digest,
    /// The compressed blob's size in bytes.
    pub size: u64,
    /// The digest of the uncompressed tar stream (the config's `diff_ids`).
    pub diff_id: Digest,
    /// The descriptor's annotations, as the manifest lists them: for a layer
    /// gantry laid down, its compression recipe
    /// ([`crate::layer::ANNOTATION_RECIPE`]); a base's layers keep theirs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// Where the blob's bytes are when the image is assembled; not part of
    /// any record, because only the store at hand can say.
    #[serde(skip)]
    pub location: BlobLocation,
}

/// Where a layer's bytes are.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum BlobLocation {
    /// In the local store.
    #[default]
    Store,
    /// Not in the store, but in this repository (`registry` and
    /// `repository` only) of a registry: a registry base's layer, loaded
    /// without its bytes.
    Remote(Reference),
}

/// An image: manifest and config, as bytes and parsed, and its layers.
/// Its manifest and config are in the store; the layers of a registry base
/// may still be only in their registry until a sink needs their bytes.
#[derive(Debug, Clone)]
pub struct Image {
    /// The image's name in the build file (or the source it came from).
    pub name: String,
    /// The manifest's exact bytes, which `manifest_digest` names.
    pub manifest_bytes: Vec<u8>,
    /// What names the image: the digest of `manifest_bytes`.
    pub manifest_digest: Digest,
    /// An OCI or Docker schema 2 image manifest media type.
    pub manifest_media_type: String,
    /// The config's exact bytes, which `config_digest` names.
    pub config_bytes: Vec<u8>,
    /// The digest of `config_bytes`, as the manifest names it.
    pub config_digest: Digest,
    /// `config_bytes` parsed.
    pub config: ImageConfig,
    /// In manifest order, base layers first.
    pub layers: Vec<LayerDesc>,
    /// Full references (`registry/repo:tag`) this image is known by.
    pub tags: Vec<String>,
    /// Manifest annotations, sorted.
    pub annotations: BTreeMap<String, String>,
}

impl Image {
    /// An image under a new OCI manifest over `layers` and `config_bytes`,
    /// the exact bytes `config` was serialised to or read from.
    pub fn with_oci_manifest(
        name: String,
        config: ImageConfig,
        config_bytes: Vec<u8>,
        layers: Vec<LayerDesc>,
        annotations: BTreeMap<String, String>,
        tags: Vec<String>,
    ) -> Image {
        let config_digest = Digest::of(&config_bytes);
        let manifest_bytes = oci_manifest(
            &config_digest,
            config_bytes.len() as u64,
            &layers,
            &annotations,
        );
        Image {
            name,
            manifest_digest: Digest::of(&manifest_bytes),
            manifest_bytes,
            manifest_media_type: media::OCI_MANIFEST.to_string(),
            config_bytes,
            config_digest,
            config,
            layers,
            tags,
            annotations,
        }
    }

    /// `os/arch[/variant]` from the config.
    pub fn platform(&self) -> String {
        let mut s = format!("{}/{}", self.config.os, self.config.architecture);
        if let Some(v) = &self.config.variant {
            s.push('/');
            s.push_str(v);
        }
        s
    }

    /// The config's platform as a [`Platform`], normalised as
    /// [`Platform::parse`] reads a build file's (`arm64/v8` is `arm64`); the
    /// error says why the config's fields name no such platform.
    pub fn parsed_platform(&self) -> std::result::Result<Platform, String> {
        let c = &self.config;
        Platform::from_parts(&c.os, &c.architecture, c.variant.as_deref())
    }
}

/// A multi-platform image: an OCI image index over one [`Image`] per
/// platform, every blob of which is in the store.
///
/// A sink writes or pushes the children first (by digest; they carry no
/// tags), then the index under `tags`.
#[derive(Debug, Clone)]
pub struct ImageIndex {
    /// The image's name in the build file.
    pub name: String,
    /// The index as canonical JSON: the exact bytes `digest` names.
    pub bytes: Vec<u8>,
    /// The digest of `bytes`.
    pub digest: Digest,
    /// Always `application/vnd.oci.image.index.v1+json`.
    pub media_type: String,
    /// One image per platform, in the order the build file lists them, which
    /// is also the order of the index's `manifests`.
    pub children: Vec<Image>,
    /// Full references (`registry/repo:tag`) the index is known by.
    pub tags: Vec<String>,
    /// Index annotations, sorted.
    pub annotations: std::collections::BTreeMap<String, String>,
}

impl ImageIndex {
    /// The child built for `platform`. Spellings of one platform match as
    /// [`Platform::parse`] reads them: a child whose config says `arm64`
    /// with variant `v8` is the child for `linux/arm64`.
    pub fn child(&self, platform: &Platform) -> Option<&Image> {
        self.children
            .iter()
            .find(|c| c.parsed_platform().as_ref() == Ok(platform))
    }

    /// `os/arch[/variant]` of every child, in index order.
    pub fn platforms(&self) -> Vec<String> {
        self.children.iter().map(Image::platform).collect()
    }
}

/// What a build makes and a sink writes or pushes: one image, or a
/// multi-platform index over several.
// One per image of a build: boxing the larger variant would save nothing
// worth the indirection.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Artifact {
    /// A single-platform image.
    Image(Image),
    /// A multi-platform image, whose children go with it.
    Index(ImageIndex),
}

impl Artifact {
    /// The name in the build file (or the source it came from).
    pub fn name(&self) -> &str {
        match self {
            Artifact::Image(i) => &i.name,
            Artifact::Index(x) => &x.name,
        }
    }

    /// The digest of the manifest or index: what names the artifact.
    pub fn digest(&self) -> &Digest {
        match self {
            Artifact::Image(i) => &i.manifest_digest,
            Artifact::Index(x) => &x.digest,
        }
    }

    /// The media type of the manifest or index.
    pub fn media_type(&self) -> &str {
        match self {
            Artifact::Image(i) => &i.manifest_media_type,
            Artifact::Index(x) => &x.media_type,
        }
    }

    /// The exact bytes of the manifest or index, which `digest` names.
    pub fn bytes(&self) -> &[u8] {
        match self {
            Artifact::Image(i) => &i.manifest_bytes,
            Artifact::Index(x) => &x.bytes,
        }
    }

    /// Full references (`registry/repo:tag`) the artifact is known by.
    pub fn tags(&self) -> &[String] {
        match self {
            Artifact::Image(i) => &i.tags,
            Artifact::Index(x) => &x.tags,
        }
    }

    /// Every image it holds: itself, or the index's children in order.
    pub fn images(&self) -> &[Image] {
        match self {
            Artifact::Image(i) => std::slice::from_ref(i),
            Artifact::Index(x) => &x.children,
        }
    }
}

impl From<Image> for Artifact {
    fn from(image: Image) -> Artifact {
        Artifact::Image(image)
    }
}

impl From<ImageIndex> for Artifact {
    fn from(index: ImageIndex) -> Artifact {
        Artifact::Index(index)
    }
}

/// The canonical bytes of an OCI image manifest for a config blob and
/// layers, with `annotations` (left out when empty).
fn oci_manifest(
    config_digest: &Digest,
    config_size: u64,
    layers: &[LayerDesc],
    annotations: &BTreeMap<String, String>,
) -> Vec<u8> {
    let mut builder = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .config(manifest::descriptor(
            media::OCI_CONFIG,
            config_digest,
            config_size,
        ))
        .layers(
            layers
                .iter()
                .map(|l| {
                    let mut d = manifest::descriptor(&l.media_type, &l.digest, l.size);
                    if !l.annotations.is_empty() {
                        d.set_annotations(Some(manifest::annotations(l.annotations.clone())));
                    }
                    d
                })
                .collect::<Vec<_>>(),
        );
    if !annotations.is_empty() {
        builder = builder.annotations(manifest::annotations(annotations.clone()));
    }
    let manifest = builder
        .build()
        .expect("every required manifest field is set");
    crate::json::canonical(&manifest)
}

/// The canonical bytes of an OCI image index over `children`, in order,
/// each described with its platform, with `annotations` (left out when
/// empty).
pub fn oci_index(children: &[&Image], annotations: &BTreeMap<String, String>) -> Vec<u8> {
    let manifests: Vec<Descriptor> = children.iter().map(|c| manifest_descriptor(c)).collect();
    let mut builder = oci_spec::image::ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests);
    if !annotations.is_empty() {
        builder = builder.annotations(manifest::annotations(annotations.clone()));
    }
    let index = builder.build().expect("every required index field is set");
    crate::json::canonical(&index)
}

/// A descriptor of an image's manifest, with its platform.
pub fn manifest_descriptor(image: &Image) -> Descriptor {
    let mut d = manifest::descriptor(
        &image.manifest_media_type,
        &image.manifest_digest,
        image.manifest_bytes.len() as u64,
    );
    d.set_platform(manifest::image_platform(&image.config));
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layout::testutil::sample_image;
    use crate::store::Store;

    #[test]
    fn an_arm64_v8_child_is_the_child_for_linux_arm64() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut child = sample_image(&store, &[], false);
        child.config.os = "linux".into();
        child.config.architecture = "arm64".into();
        child.config.variant = Some("v8".into());
        let index = ImageIndex {
            name: "x".into(),
            bytes: Vec::new(),
            digest: Digest::of(b""),
            media_type: String::new(),
            children: vec![child],
            tags: Vec::new(),
            annotations: BTreeMap::new(),
        };
        let child = |p: &str| index.child(&Platform::parse(p).unwrap()).is_some();
        assert!(child("linux/arm64"));
        assert!(child("linux/arm64/v8"));
        assert!(!child("linux/amd64"));
    }
}
