use std::collections::BTreeSet;

use serde_json::Value;

use super::*;
use crate::sbom::ospkg;

pub(crate) fn fixture() -> SbomInput {
    let os = ospkg::parse_os_release(b"ID=debian\nVERSION_ID=12\n");
    let packages = ospkg::parse_dpkg_status(
        b"Package: libc6\nStatus: install ok installed\nArchitecture: amd64\nSource: glibc\nVersion: 2.36-9\n\n\
          Package: base-files\nStatus: install ok installed\nArchitecture: amd64\nVersion: 12.4\n",
    )
    .packages;
    SbomInput {
        image: OciPackage {
            name: "registry.example/team/app:1.0".into(),
            repository: Some("registry.example/team/app".into()),
            tag: Some("1.0".into()),
            version: None,
            digest: Digest::of(b"manifest"),
            arch: Some("amd64".into()),
        },
        base: Some(Base {
            image: OciPackage {
                name: "debian:12".into(),
                repository: Some("docker.io/library/debian".into()),
                tag: Some("12".into()),
                version: None,
                digest: Digest::of(b"base manifest"),
                arch: Some("amd64".into()),
            },
            os,
            packages,
        }),
        layers: vec![
            Layer {
                name: "app".into(),
                digest: Digest::of(b"layer 0"),
                files: vec![
                    LayerFile {
                        path: "/app/bin/server".into(),
                        sha256: Digest::of(b"server"),
                        sha1: Some([7; 20]),
                    },
                    LayerFile {
                        path: "app/etc/config.toml".into(),
                        sha256: Digest::of(b"config"),
                        sha1: Some([9; 20]),
                    },
                ],
            },
            Layer {
                name: "empty".into(),
                digest: Digest::of(b"layer 1"),
                files: vec![],
            },
        ],
        epoch: 0,
    }
}

fn parsed(input: &SbomInput) -> Value {
    serde_json::from_slice(&document(input)).unwrap()
}

#[test]
fn same_input_gives_the_same_bytes() {
    let a = document(&fixture());
    let b = document(&fixture());
    assert_eq!(a, b);
    let mut shuffled = fixture();
    shuffled.layers[0].files.reverse();
    if let Some(base) = shuffled.base.as_mut() {
        base.packages.reverse();
    }
    assert_eq!(document(&shuffled), a, "input order does not matter");
}

#[test]
fn golden_digest_of_the_fixture_document() {
    let bytes = document(&fixture());
    let text = String::from_utf8(bytes.clone()).unwrap();
    assert!(text.contains(&super::super::tool_version()));
    let without_version = text.replace(&super::super::tool_version(), "gantry-VERSION");
    assert_eq!(
        Digest::of(without_version.as_bytes()).to_string(),
        GOLDEN,
        "SBOM bytes changed:\n{without_version}"
    );
}

const GOLDEN: &str = "sha256:4428cc960ae4bd0f595b97da140f9e65887b90abce2af3e2a431d2948265cf71";

#[test]
fn required_fields_are_there() {
    let doc = parsed(&fixture());
    assert_eq!(doc["spdxVersion"], "SPDX-2.3");
    assert_eq!(doc["dataLicense"], "CC0-1.0");
    assert_eq!(doc["SPDXID"], "SPDXRef-DOCUMENT");
    assert_eq!(doc["name"], "registry.example/team/app:1.0");
    assert_eq!(
        doc["documentNamespace"],
        format!(
            "https://gantry.dev/spdx/app-{}",
            Digest::of(b"manifest").hex()
        )
    );
    assert_eq!(doc["creationInfo"]["created"], "1970-01-01T00:00:00Z");
    assert!(doc["creationInfo"]["creators"][0]
        .as_str()
        .unwrap()
        .starts_with("Tool: gantry-"));
    for p in doc["packages"].as_array().unwrap() {
        for key in ["SPDXID", "name", "downloadLocation"] {
            assert!(p.get(key).is_some(), "package without {key}: {p}");
        }
    }
    for f in doc["files"].as_array().unwrap() {
        assert!(f["fileName"].as_str().unwrap().starts_with("./"), "{f}");
        let algos: Vec<&str> = f["checksums"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["algorithm"].as_str().unwrap())
            .collect();
        assert_eq!(algos, ["SHA1", "SHA256"]);
    }
}

#[test]
fn every_relationship_names_defined_elements() {
    let doc = parsed(&fixture());
    let mut ids: BTreeSet<String> = BTreeSet::new();
    ids.insert(doc["SPDXID"].as_str().unwrap().to_string());
    for list in ["packages", "files"] {
        for e in doc[list].as_array().unwrap() {
            let id = e["SPDXID"].as_str().unwrap().to_string();
            assert!(
                id.strip_prefix("SPDXRef-").is_some_and(|s| s
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')),
                "{id}"
            );
            assert!(ids.insert(id.clone()), "{id} defined twice");
        }
    }
    let rels = doc["relationships"].as_array().unwrap();
    for r in rels {
        for end in ["spdxElementId", "relatedSpdxElement"] {
            let id = r[end].as_str().unwrap();
            assert!(ids.contains(id), "{end} {id} is not defined");
        }
    }
    let has = |a: &str, kind: &str, b: &str| {
        rels.iter().any(|r| {
            r["spdxElementId"] == a && r["relationshipType"] == kind && r["relatedSpdxElement"] == b
        })
    };
    assert!(has("SPDXRef-DOCUMENT", "DESCRIBES", "SPDXRef-Image"));
    assert!(has("SPDXRef-Image", "CONTAINS", "SPDXRef-Base"));
    assert!(has("SPDXRef-Image", "DESCENDANT_OF", "SPDXRef-Base"));
    assert!(has("SPDXRef-Image", "CONTAINS", "SPDXRef-Layer-0"));
    assert!(has("SPDXRef-Image", "CONTAINS", "SPDXRef-Layer-1"));
    assert!(has("SPDXRef-Base", "CONTAINS", "SPDXRef-OsPackage-0"));
    assert!(has("SPDXRef-Layer-0", "CONTAINS", "SPDXRef-File-0-0"));
    assert_eq!(doc["documentDescribes"][0], "SPDXRef-Image");
}

#[test]
fn packages_carry_purls_and_files_analyzed_only_with_files() {
    let doc = parsed(&fixture());
    let packages = doc["packages"].as_array().unwrap();
    let by_id = |id: &str| packages.iter().find(|p| p["SPDXID"] == id).unwrap().clone();
    let purl = |p: &Value| {
        p["externalRefs"][0]["referenceLocator"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert_eq!(
        purl(&by_id("SPDXRef-Image")),
        format!(
            "pkg:oci/app@sha256%3A{}?arch=amd64&repository_url=registry.example/team/app&tag=1.0",
            Digest::of(b"manifest").hex()
        )
    );
    assert!(purl(&by_id("SPDXRef-Base")).starts_with("pkg:oci/debian@sha256%3A"));
    // Sorted: base-files before libc6.
    assert_eq!(
        purl(&by_id("SPDXRef-OsPackage-1")),
        "pkg:deb/debian/libc6@2.36-9?arch=amd64&distro=debian-12"
    );
    assert_eq!(
        by_id("SPDXRef-OsPackage-1")["sourceInfo"],
        "built from source package glibc"
    );
    assert_eq!(by_id("SPDXRef-Layer-0")["filesAnalyzed"], true);
    assert_eq!(by_id("SPDXRef-Layer-1")["filesAnalyzed"], false);
    assert_eq!(by_id("SPDXRef-Image")["filesAnalyzed"], false);
    let names: Vec<&str> = doc["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["fileName"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["./app/bin/server", "./app/etc/config.toml"]);
}

#[test]
fn a_stamped_version_and_epoch_show_and_scratch_has_no_base() {
    let mut input = fixture();
    input.base = None;
    input.image.version = Some("1.2.3".into());
    input.epoch = 1_700_000_000;
    let doc = parsed(&input);
    assert_eq!(doc["creationInfo"]["created"], "2023-11-14T22:13:20Z");
    assert_eq!(doc["packages"][0]["versionInfo"], "1.2.3");
    assert!(!doc.to_string().contains("SPDXRef-Base"));
}

#[test]
fn a_file_without_sha1_gets_its_sha256_alone() {
    let mut input = fixture();
    input.layers[0].files[0].sha1 = None;
    let doc = parsed(&input);
    let algos: Vec<&str> = doc["files"][0]["checksums"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["algorithm"].as_str().unwrap())
        .collect();
    assert_eq!(algos, ["SHA256"]);
}

#[test]
fn an_image_without_a_repository_is_named_by_its_name() {
    let mut image = fixture().image;
    image.repository = None;
    image.name = "local/app:dev".into();
    image.tag = None;
    image.arch = None;
    assert_eq!(
        image.purl(),
        format!("pkg:oci/app@sha256%3A{}", image.digest.hex())
    );
    image.name = "localhost:5000/team/app:dev".into();
    assert!(image.purl().starts_with("pkg:oci/app@"), "{}", image.purl());
}

#[test]
fn the_document_is_written_canonical_without_a_round_trip() {
    let mut stamped = fixture();
    stamped.image.version = Some("1.2.3".into());
    let apk = ospkg::parse_apk_installed(b"P:musl\nV:1.2.4-r2\nA:x86_64\nL:MIT\no:musl\n\n");
    if let Some(base) = stamped.base.as_mut() {
        base.packages.extend(apk.packages);
    }
    for input in [fixture(), stamped] {
        let bytes = document(&input);
        let value: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(crate::json::canonical(&value), bytes);
    }
}
