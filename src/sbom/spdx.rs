//! The SPDX 2.3 JSON SBOM of one image: the image, its base and the base's
//! OS packages, and one package per gantry layer listing every regular file
//! with its checksums.
//!
//! Identifiers are positions in sorted input (`SPDXRef-Layer-0`,
//! `SPDXRef-File-0-12`, `SPDXRef-OsPackage-3`), the document namespace is
//! made from the image's manifest digest, and the creation time is the
//! build's epoch, so the same image gives the same document bytes wherever
//! it is built.
//!
//! Relationships: the document DESCRIBES the image; the image CONTAINS each
//! layer and the base and is DESCENDANT_OF the base; the base CONTAINS its
//! OS packages; each layer CONTAINS its files. Packages that list no files
//! say `filesAnalyzed: false`.

use std::fmt;

use serde::{Serialize, Serializer};

use super::ospkg::{OsPackage, OsRelease};
use super::purl;
use crate::digest::Digest;

/// The SPDX version written.
pub const SPDX_VERSION: &str = "SPDX-2.3";
/// The media type of the document, and the artifact type of its manifest.
pub const MEDIA_TYPE: &str = "application/spdx+json";
/// Where document namespaces are made: the image's digest is appended. It
/// names documents, it is not fetched.
pub const NAMESPACE_BASE: &str = "https://gantry.dev/spdx/";
const NOASSERTION: &str = "NOASSERTION";
const DOCUMENT_ID: &str = "SPDXRef-DOCUMENT";
const IMAGE_ID: &str = "SPDXRef-Image";
const BASE_ID: &str = "SPDXRef-Base";

/// An image as a package: a built image or a base.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciPackage {
    /// The name people know it by: the first tag of a built image
    /// (`registry/repo:tag`), the reference of a base as written.
    pub name: String,
    /// The full repository name (`docker.io/library/alpine`), for the purl's
    /// name and `repository_url`; `None` for an image with no repository
    /// (a layout-only build), whose purl takes `name`'s last component.
    pub repository: Option<String>,
    /// The tag, for the purl.
    pub tag: Option<String>,
    /// The version to show: the stamp's value for a stamped build.
    pub version: Option<String>,
    /// The image manifest's digest.
    pub digest: Digest,
    /// The platform's architecture (`amd64`), for the purl.
    pub arch: Option<String>,
}

impl OciPackage {
    /// The `pkg:oci/NAME@sha256%3A…?repository_url=…` purl.
    pub fn purl(&self) -> String {
        let repo = match &self.repository {
            Some(r) => r.clone(),
            None => {
                // `host:port/repo:tag@digest` → `repo`.
                let bare = self.name.split('@').next().unwrap_or(&self.name);
                let last = bare.rsplit('/').next().unwrap_or(bare);
                last.split(':').next().unwrap_or(last).to_string()
            }
        };
        purl::oci(
            &repo,
            &self.digest,
            self.tag.as_deref(),
            self.arch.as_deref(),
        )
    }
}

/// The base image and what was found installed in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Base {
    /// The base image itself.
    pub image: OciPackage,
    /// The distribution, from its os-release.
    pub os: OsRelease,
    /// Its installed OS packages.
    pub packages: Vec<OsPackage>,
}

/// One regular file of a gantry layer.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct LayerFile {
    /// Its path in the image, absolute or not (`/app/bin`, `app/bin`).
    pub path: String,
    /// The SHA-256 of its contents.
    pub sha256: Digest,
    /// The SHA-1 of its contents: SPDX 2.3 makes it mandatory for a file
    /// and validators refuse a file without it, so the writer should give
    /// it; `None` writes the SHA-256 alone.
    pub sha1: Option<[u8; 20]>,
}

/// A layer gantry wrote, with its files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layer {
    /// The layer's name in the build file, or its position.
    pub name: String,
    /// The digest of the layer blob as pushed (compressed).
    pub digest: Digest,
    /// Every regular file in it.
    pub files: Vec<LayerFile>,
}

/// Everything the SBOM says, as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SbomInput {
    /// The image described.
    pub image: OciPackage,
    /// Its base; `None` for `scratch`.
    pub base: Option<Base>,
    /// gantry's own layers, bottom first.
    pub layers: Vec<Layer>,
    /// The build's time (SOURCE_DATE_EPOCH or
    /// [`crate::epoch::DEFAULT_EPOCH`]), in seconds.
    pub epoch: u64,
}

// Every struct below declares its fields in the byte order of their JSON
// names, and none holds a map, so serializing it directly gives canonical
// JSON without the round trip through `Value` (a test holds this).

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document<'a> {
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    creation_info: CreationInfo,
    data_license: &'static str,
    document_describes: Vec<String>,
    document_namespace: String,
    files: Vec<File<'a>>,
    name: String,
    packages: Vec<Package>,
    relationships: Vec<Relationship>,
    spdx_version: &'static str,
}

/// An element's SPDX identifier, written without being formatted first:
/// a document lists thousands of files, each named twice.
#[derive(Debug, Clone, Copy)]
enum Id {
    Fixed(&'static str),
    Layer(usize),
    OsPackage(usize),
    File(usize, usize),
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Id::Fixed(s) => f.write_str(s),
            Id::Layer(i) => write!(f, "SPDXRef-Layer-{i}"),
            Id::OsPackage(i) => write!(f, "SPDXRef-OsPackage-{i}"),
            Id::File(i, j) => write!(f, "SPDXRef-File-{i}-{j}"),
        }
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[derive(Serialize)]
struct CreationInfo {
    created: String,
    creators: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Package {
    #[serde(rename = "SPDXID")]
    spdx_id: Id,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    copyright_text: &'static str,
    download_location: &'static str,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    license_comments: Option<String>,
    license_concluded: &'static str,
    license_declared: &'static str,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_package_purpose: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_locator: String,
    reference_type: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct File<'a> {
    #[serde(rename = "SPDXID")]
    spdx_id: Id,
    checksums: FileChecksums<'a>,
    copyright_text: &'static str,
    file_name: FileName<'a>,
    license_concluded: &'static str,
}

/// A file's checksums: SHA-1 (when known), then SHA-256.
struct FileChecksums<'a>(&'a LayerFile);

impl Serialize for FileChecksums<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeSeq;
        let mut seq = s.serialize_seq(None)?;
        if let Some(sha1) = &self.0.sha1 {
            seq.serialize_element(&HexChecksum("SHA1", sha1))?;
        }
        seq.serialize_element(&HexChecksum("SHA256", self.0.sha256.as_bytes()))?;
        seq.end()
    }
}

/// A checksum written as a [`Checksum`] is, from its bytes.
struct HexChecksum<'a>(&'static str, &'a [u8]);

impl Serialize for HexChecksum<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("Checksum", 2)?;
        st.serialize_field("algorithm", self.0)?;
        st.serialize_field("checksumValue", &Hex(self.1))?;
        st.end()
    }
}

struct Hex<'a>(&'a [u8]);

impl Serialize for Hex<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 64];
        let out = &mut buf[..2 * self.0.len().min(32)];
        hex::encode_to_slice(&self.0[..out.len() / 2], out).map_err(serde::ser::Error::custom)?;
        s.serialize_str(std::str::from_utf8(out).map_err(serde::ser::Error::custom)?)
    }
}

/// The SPDX file name of an image path: SPDX wants `./`-relative paths.
struct FileName<'a>(&'a str);

impl Serialize for FileName<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&format_args!(
            "./{}",
            self.0.trim_start_matches('/').trim_start_matches("./")
        ))
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Checksum {
    algorithm: &'static str,
    checksum_value: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Relationship {
    related_spdx_element: Id,
    relationship_type: &'static str,
    spdx_element_id: Id,
}

fn relationship(a: Id, kind: &'static str, b: Id) -> Relationship {
    Relationship {
        spdx_element_id: a,
        relationship_type: kind,
        related_spdx_element: b,
    }
}

fn sha256(d: &Digest) -> Checksum {
    Checksum {
        algorithm: "SHA256",
        checksum_value: d.hex(),
    }
}

fn purl_ref(locator: String) -> ExternalRef {
    ExternalRef {
        reference_category: "PACKAGE-MANAGER",
        reference_type: "purl",
        reference_locator: locator,
    }
}

fn package(id: Id, name: &str, version: Option<String>) -> Package {
    Package {
        spdx_id: id,
        name: name.to_string(),
        version_info: version,
        download_location: NOASSERTION,
        files_analyzed: false,
        checksums: Vec::new(),
        license_concluded: NOASSERTION,
        license_declared: NOASSERTION,
        license_comments: None,
        copyright_text: NOASSERTION,
        source_info: None,
        primary_package_purpose: None,
        external_refs: Vec::new(),
    }
}

fn image_package(id: Id, image: &OciPackage) -> Package {
    let mut p = package(id, &image.name, image.version.clone());
    p.primary_package_purpose = Some("CONTAINER");
    p.external_refs.push(purl_ref(image.purl()));
    p
}

/// The document namespace of the SBOM of the image manifest `digest`.
pub fn namespace(image: &OciPackage) -> String {
    let name = image.purl();
    let name = name
        .strip_prefix("pkg:oci/")
        .and_then(|n| n.split('@').next())
        .unwrap_or("image");
    format!("{NAMESPACE_BASE}{name}-{}", image.digest.hex())
}

/// The SBOM's bytes: canonical JSON (keys sorted, no white space), the
/// same for the same input on any machine. OS packages are sorted and
/// duplicates dropped, files sorted by path within their layer.
pub fn document(input: &SbomInput) -> Vec<u8> {
    const IMAGE: Id = Id::Fixed(IMAGE_ID);
    const BASE: Id = Id::Fixed(BASE_ID);
    let mut packages = vec![image_package(IMAGE, &input.image)];
    let mut files = Vec::new();
    let mut relationships = vec![relationship(Id::Fixed(DOCUMENT_ID), "DESCRIBES", IMAGE)];

    if let Some(base) = &input.base {
        packages.push(image_package(BASE, &base.image));
        relationships.push(relationship(IMAGE, "CONTAINS", BASE));
        relationships.push(relationship(IMAGE, "DESCENDANT_OF", BASE));
        let mut os_packages: Vec<&OsPackage> = base.packages.iter().collect();
        os_packages.sort();
        os_packages.dedup();
        for (i, os) in os_packages.into_iter().enumerate() {
            packages.push(os_package(Id::OsPackage(i), os, &base.os));
            relationships.push(relationship(BASE, "CONTAINS", Id::OsPackage(i)));
        }
    }

    for (i, layer) in input.layers.iter().enumerate() {
        let id = Id::Layer(i);
        let mut p = package(id, &layer.name, None);
        p.files_analyzed = !layer.files.is_empty();
        p.checksums.push(sha256(&layer.digest));
        p.primary_package_purpose = Some("ARCHIVE");
        packages.push(p);
        relationships.push(relationship(IMAGE, "CONTAINS", id));
        let mut layer_files: Vec<&LayerFile> = layer.files.iter().collect();
        layer_files.sort();
        layer_files.dedup_by(|a, b| a.path == b.path);
        for (j, f) in layer_files.into_iter().enumerate() {
            files.push(File {
                spdx_id: Id::File(i, j),
                file_name: FileName(&f.path),
                checksums: FileChecksums(f),
                license_concluded: NOASSERTION,
                copyright_text: NOASSERTION,
            });
            relationships.push(relationship(id, "CONTAINS", Id::File(i, j)));
        }
    }

    let doc = Document {
        spdx_version: SPDX_VERSION,
        data_license: "CC0-1.0",
        spdx_id: DOCUMENT_ID,
        name: input.image.name.clone(),
        document_namespace: namespace(&input.image),
        creation_info: CreationInfo {
            created: crate::epoch::rfc3339(input.epoch),
            creators: vec![format!("Tool: {}", super::tool_version())],
        },
        document_describes: vec![IMAGE_ID.to_string()],
        packages,
        files,
        relationships,
    };
    serde_json::to_vec(&doc).expect("in-memory JSON serialisation cannot fail")
}

fn os_package(id: Id, os: &OsPackage, release: &OsRelease) -> Package {
    let mut p = package(id, &os.name, Some(os.version.clone()));
    p.primary_package_purpose = Some("LIBRARY");
    p.external_refs.push(purl_ref(os.purl(release)));
    // Package databases write licenses in their own words, which are not
    // always SPDX license expressions; a validator refuses an unknown
    // identifier, so the declaration is kept as a comment.
    p.license_comments = os
        .license
        .as_ref()
        .map(|l| format!("The package database declares the license: {l}"));
    p.source_info = os.source.as_ref().map(|s| match &os.source_version {
        Some(v) => format!("built from source package {s} {v}"),
        None => format!("built from source package {s}"),
    });
    p
}

#[cfg(test)]
mod tests;
