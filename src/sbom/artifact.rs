//! Documents as OCI artifacts that refer to an image: the artifact
//! manifest ([`manifest()`]) and the distribution spec's referrers fallback
//! ([`fallback_tag`], [`merge_referrer`]) for registries without the
//! Referrers API.
//!
//! An artifact manifest is an OCI image manifest with an `artifactType`
//! (the document's media type), the empty config (`{}`,
//! `application/vnd.oci.empty.v1+json`), one layer (the document) and a
//! `subject` (the image manifest it is about). A sink writes three blobs:
//! [`EMPTY_CONFIG`], the document, and the manifest.
//!
//! Without the Referrers API, clients keep an image index under the tag
//! `sha256-<hex of the subject digest>` listing the referrers' manifests,
//! each with its `artifactType` and annotations. Every client that pushes
//! a referrer reads that index, adds its entry and writes it back, so
//! [`merge_referrer`] keeps every entry it finds, in the order it finds
//! them (other clients' entries are not reordered or rewritten), and
//! appends a new one at the end.

use oci_spec::image::{Descriptor, ImageIndexBuilder, ImageManifestBuilder, MediaType};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest;
use crate::media;

/// The empty JSON object, the config of an artifact with nothing to
/// configure.
pub const EMPTY_CONFIG: &[u8] = b"{}";
/// The media type of [`EMPTY_CONFIG`].
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// An artifact manifest, ready to be written beside its document.
#[derive(Debug, Clone)]
pub struct ArtifactManifest {
    /// The manifest's canonical bytes.
    pub bytes: Vec<u8>,
    /// Their digest: the manifest's name.
    pub digest: Digest,
    /// Its descriptor with `artifactType`, as a referrers index lists it.
    pub descriptor: Descriptor,
}

/// A document attached to an image: what a sink writes or pushes beside
/// the image. Its three blobs ([`EMPTY_CONFIG`], the document, the
/// manifest) are in the store.
#[derive(Debug, Clone)]
pub struct Referrer {
    /// The image manifest it is about.
    pub subject: Digest,
    /// The document's media type, the manifest's `artifactType`.
    pub artifact_type: String,
    /// The document's digest and size.
    pub document: (Digest, u64),
    /// The artifact manifest.
    pub manifest: ArtifactManifest,
}

impl Referrer {
    /// The blobs the manifest names, with their sizes: the empty config
    /// and the document.
    pub fn blobs(&self) -> [(Digest, u64); 2] {
        [
            (Digest::of(EMPTY_CONFIG), EMPTY_CONFIG.len() as u64),
            self.document,
        ]
    }
}

/// The artifact manifest for `document` about the image manifest `subject`
/// (of `media_type` and `size`), as a [`Referrer`]; `document` is its
/// digest and size.
pub fn referrer(
    artifact_type: &str,
    document: (Digest, u64),
    media_type: &str,
    subject: &Digest,
    size: u64,
) -> Referrer {
    let about = self::subject(media_type, subject, size);
    Referrer {
        subject: *subject,
        artifact_type: artifact_type.to_string(),
        document,
        manifest: manifest_for(artifact_type, document, &about),
    }
}

/// The descriptor of the image manifest a referrer is about.
pub fn subject(media_type: &str, digest: &Digest, size: u64) -> Descriptor {
    manifest::descriptor(media_type, digest, size)
}

/// The artifact manifest for `document` (of `artifact_type`, such as
/// [`super::spdx::MEDIA_TYPE`] or [`super::provenance::MEDIA_TYPE`]) about
/// the image manifest `subject`. It carries no annotations (and so no
/// creation time), so the same document about the same image always gives
/// the same manifest.
pub fn manifest(artifact_type: &str, document: &[u8], subject: &Descriptor) -> ArtifactManifest {
    manifest_for(
        artifact_type,
        (Digest::of(document), document.len() as u64),
        subject,
    )
}

/// [`manifest()`] for the document of this digest and size.
pub fn manifest_for(
    artifact_type: &str,
    document: (Digest, u64),
    subject: &Descriptor,
) -> ArtifactManifest {
    let config = manifest::descriptor(
        EMPTY_MEDIA_TYPE,
        &Digest::of(EMPTY_CONFIG),
        EMPTY_CONFIG.len() as u64,
    );
    let layer = manifest::descriptor(artifact_type, &document.0, document.1);
    let built = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::from(artifact_type))
        .config(config)
        .layers(vec![layer])
        .subject(subject.clone())
        .build()
        .expect("every required manifest field is set");
    let bytes = crate::json::canonical(&built);
    let digest = Digest::of(&bytes);
    let mut descriptor = manifest::descriptor(media::OCI_MANIFEST, &digest, bytes.len() as u64);
    descriptor.set_artifact_type(Some(MediaType::from(artifact_type)));
    ArtifactManifest {
        bytes,
        digest,
        descriptor,
    }
}

/// The tag that holds the referrers of `subject` on a registry without the
/// Referrers API: `sha256-<64 hex digits>`.
pub fn fallback_tag(subject: &Digest) -> String {
    format!("sha256-{}", subject.hex())
}

/// What [`merge_referrer`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// The entry was already listed: nothing to write.
    Unchanged,
    /// The index to put under the fallback tag.
    Write(Vec<u8>),
}

/// Adds `entry` to the referrers index `current` (the bytes under the
/// fallback tag as just read, `None` when the tag does not exist). An entry
/// with the same digest already there means [`Merge::Unchanged`], whatever
/// its annotations, so merging twice writes once. The caller reads the tag
/// again just before writing and merges into what it finds then, so that
/// another client's entry written in between is kept. `tag` names the
/// index in errors; an index that does not parse is an error, never
/// replaced, because that would drop other clients' entries.
pub fn merge_referrer(current: Option<&[u8]>, entry: &Descriptor, tag: &str) -> Result<Merge> {
    let mut manifests: Vec<Descriptor> = match current {
        None => Vec::new(),
        Some(bytes) => {
            let index = manifest::parse_index(bytes, &format!("referrers index {tag}"))?;
            if index
                .media_type()
                .as_ref()
                .is_some_and(|m| m.to_string() != media::OCI_INDEX)
            {
                return Err(Error::format(
                    format!("referrers index {tag}"),
                    "is not an OCI image index",
                ));
            }
            index.manifests().clone()
        }
    };
    if manifests.iter().any(|m| m.digest() == entry.digest()) {
        return Ok(Merge::Unchanged);
    }
    manifests.push(entry.clone());
    let index = ImageIndexBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageIndex)
        .manifests(manifests)
        .build()
        .expect("every required index field is set");
    Ok(Merge::Write(crate::json::canonical(&index)))
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn image() -> Descriptor {
        subject(media::OCI_MANIFEST, &Digest::of(b"image manifest"), 1234)
    }

    #[test]
    fn artifact_manifest_has_the_empty_config_one_layer_and_the_subject() {
        let doc = br#"{"spdxVersion":"SPDX-2.3"}"#;
        let a = manifest(crate::sbom::spdx::MEDIA_TYPE, doc, &image());
        assert_eq!(a.digest, Digest::of(&a.bytes));
        let v: Value = serde_json::from_slice(&a.bytes).unwrap();
        assert_eq!(v["schemaVersion"], 2);
        assert_eq!(v["mediaType"], media::OCI_MANIFEST);
        assert_eq!(v["artifactType"], "application/spdx+json");
        assert_eq!(v["config"]["mediaType"], EMPTY_MEDIA_TYPE);
        assert_eq!(
            v["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(v["config"]["size"], 2);
        assert_eq!(v["layers"].as_array().unwrap().len(), 1);
        assert_eq!(v["layers"][0]["mediaType"], "application/spdx+json");
        assert_eq!(v["layers"][0]["digest"], Digest::of(doc).to_string());
        assert_eq!(v["layers"][0]["size"], doc.len());
        assert_eq!(
            v["subject"]["digest"],
            Digest::of(b"image manifest").to_string()
        );
        assert_eq!(v["subject"]["size"], 1234);
        assert!(v.get("annotations").is_none());
        assert_eq!(
            a.descriptor.artifact_type().as_ref().map(|m| m.to_string()),
            Some("application/spdx+json".to_string())
        );
        assert_eq!(a.descriptor.size(), a.bytes.len() as u64);
        let again = manifest(crate::sbom::spdx::MEDIA_TYPE, doc, &image());
        assert_eq!(again.bytes, a.bytes);
    }

    #[test]
    fn golden_digests_of_an_artifact_manifest_and_a_fallback_index() {
        let a = manifest("application/spdx+json", b"{}", &image());
        assert_eq!(a.digest.to_string(), GOLDEN_MANIFEST);
        let Merge::Write(index) = merge_referrer(None, &a.descriptor, "t").unwrap() else {
            panic!("a new index is written");
        };
        assert_eq!(Digest::of(&index).to_string(), GOLDEN_INDEX);
    }

    const GOLDEN_MANIFEST: &str =
        "sha256:efdf7df6436541e85559d24bfd613a2928f0644605ccf9727b332c942b4ecb7e";
    const GOLDEN_INDEX: &str =
        "sha256:1e3f078eda35db0c9f589b093c7c4010cdd9b6019c2aac748a2dea37567170ec";

    #[test]
    fn fallback_tag_is_the_digest_with_a_dash() {
        let d = Digest::of(b"x");
        assert_eq!(fallback_tag(&d), format!("sha256-{}", d.hex()));
    }

    #[test]
    fn merging_twice_writes_once() {
        let sbom = manifest("application/spdx+json", b"{}", &image());
        let Merge::Write(first) = merge_referrer(None, &sbom.descriptor, "t").unwrap() else {
            panic!("a new index is written");
        };
        assert_eq!(
            merge_referrer(Some(&first), &sbom.descriptor, "t").unwrap(),
            Merge::Unchanged
        );
        let v: Value = serde_json::from_slice(&first).unwrap();
        assert_eq!(v["mediaType"], media::OCI_INDEX);
        assert_eq!(v["manifests"][0]["artifactType"], "application/spdx+json");
    }

    #[test]
    fn entries_of_other_clients_are_kept_in_their_order() {
        let theirs = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json",
            "manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json",
            "digest":"sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb","size":10,
            "artifactType":"application/vnd.dev.cosign.artifact.sig.v1+json",
            "annotations":{"dev.sigstore.cosign/signature":"x"}}]}"#;
        let prov = manifest("application/vnd.in-toto+json", b"{}", &image());
        let Merge::Write(out) =
            merge_referrer(Some(theirs.as_bytes()), &prov.descriptor, "t").unwrap()
        else {
            panic!("the entry is new");
        };
        let v: Value = serde_json::from_slice(&out).unwrap();
        let list = v["manifests"].as_array().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0]["annotations"]["dev.sigstore.cosign/signature"], "x");
        assert_eq!(list[1]["digest"], prov.digest.to_string());
        let sbom = manifest("application/spdx+json", b"{}", &image());
        let Merge::Write(both) = merge_referrer(Some(&out), &sbom.descriptor, "t").unwrap() else {
            panic!("the entry is new");
        };
        let v: Value = serde_json::from_slice(&both).unwrap();
        assert_eq!(v["manifests"].as_array().unwrap().len(), 3);
        assert_eq!(
            merge_referrer(Some(&both), &prov.descriptor, "t").unwrap(),
            Merge::Unchanged
        );
    }

    #[test]
    fn an_index_that_does_not_parse_is_an_error_not_replaced() {
        let d = manifest("application/spdx+json", b"{}", &image()).descriptor;
        for bad in [&b"not json"[..], br#"{"schemaVersion":2}"#, br#"{"mediaType":"application/vnd.oci.image.manifest.v1+json","schemaVersion":2,"manifests":[]}"#] {
            let err = merge_referrer(Some(bad), &d, "sha256-abc").unwrap_err();
            assert!(err.to_string().contains("sha256-abc"), "{err}");
        }
    }
}
