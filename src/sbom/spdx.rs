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

use serde::Serialize;

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

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Document {
    spdx_version: &'static str,
    data_license: &'static str,
    #[serde(rename = "SPDXID")]
    spdx_id: &'static str,
    name: String,
    document_namespace: String,
    creation_info: CreationInfo,
    document_describes: Vec<String>,
    packages: Vec<Package>,
    files: Vec<File>,
    relationships: Vec<Relationship>,
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
    spdx_id: String,
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    version_info: Option<String>,
    download_location: &'static str,
    files_analyzed: bool,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    checksums: Vec<Checksum>,
    license_concluded: &'static str,
    license_declared: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    license_comments: Option<String>,
    copyright_text: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source_info: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    primary_package_purpose: Option<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    external_refs: Vec<ExternalRef>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalRef {
    reference_category: &'static str,
    reference_type: &'static str,
    reference_locator: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct File {
    #[serde(rename = "SPDXID")]
    spdx_id: String,
    file_name: String,
    checksums: Vec<Checksum>,
    license_concluded: &'static str,
    copyright_text: &'static str,
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
    spdx_element_id: String,
    relationship_type: &'static str,
    related_spdx_element: String,
}

fn relationship(a: &str, kind: &'static str, b: &str) -> Relationship {
    Relationship {
        spdx_element_id: a.to_string(),
        relationship_type: kind,
        related_spdx_element: b.to_string(),
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

fn package(id: &str, name: &str, version: Option<String>) -> Package {
    Package {
        spdx_id: id.to_string(),
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

fn image_package(id: &str, image: &OciPackage) -> Package {
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

/// The SPDX file name of an image path: SPDX wants `./`-relative paths.
fn file_name(path: &str) -> String {
    format!(
        "./{}",
        path.trim_start_matches('/').trim_start_matches("./")
    )
}

/// The SBOM's bytes: canonical JSON (keys sorted, no white space), the
/// same for the same input on any machine. OS packages are sorted and
/// duplicates dropped, files sorted by path within their layer.
pub fn document(input: &SbomInput) -> Vec<u8> {
    let mut packages = vec![image_package(IMAGE_ID, &input.image)];
    let mut files = Vec::new();
    let mut relationships = vec![relationship(DOCUMENT_ID, "DESCRIBES", IMAGE_ID)];

    if let Some(base) = &input.base {
        packages.push(image_package(BASE_ID, &base.image));
        relationships.push(relationship(IMAGE_ID, "CONTAINS", BASE_ID));
        relationships.push(relationship(IMAGE_ID, "DESCENDANT_OF", BASE_ID));
        let mut os_packages: Vec<&OsPackage> = base.packages.iter().collect();
        os_packages.sort();
        os_packages.dedup();
        for (i, os) in os_packages.into_iter().enumerate() {
            let id = format!("SPDXRef-OsPackage-{i}");
            packages.push(os_package(&id, os, &base.os));
            relationships.push(relationship(BASE_ID, "CONTAINS", &id));
        }
    }

    for (i, layer) in input.layers.iter().enumerate() {
        let id = format!("SPDXRef-Layer-{i}");
        let mut p = package(&id, &layer.name, None);
        p.files_analyzed = !layer.files.is_empty();
        p.checksums.push(sha256(&layer.digest));
        p.primary_package_purpose = Some("ARCHIVE");
        packages.push(p);
        relationships.push(relationship(IMAGE_ID, "CONTAINS", &id));
        let mut layer_files: Vec<&LayerFile> = layer.files.iter().collect();
        layer_files.sort();
        layer_files.dedup_by(|a, b| a.path == b.path);
        for (j, f) in layer_files.into_iter().enumerate() {
            let fid = format!("SPDXRef-File-{i}-{j}");
            let mut checksums = Vec::with_capacity(2);
            if let Some(sha1) = &f.sha1 {
                checksums.push(Checksum {
                    algorithm: "SHA1",
                    checksum_value: hex::encode(sha1),
                });
            }
            checksums.push(sha256(&f.sha256));
            files.push(File {
                spdx_id: fid.clone(),
                file_name: file_name(&f.path),
                checksums,
                license_concluded: NOASSERTION,
                copyright_text: NOASSERTION,
            });
            relationships.push(relationship(&id, "CONTAINS", &fid));
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
    crate::json::canonical(&doc)
}

fn os_package(id: &str, os: &OsPackage, release: &OsRelease) -> Package {
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
