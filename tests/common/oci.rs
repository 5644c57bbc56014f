//! Reading what gantry writes as an OCI image layout: index, manifests,
//! configs and layer blobs.

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::digest::sha256_hex;

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";

pub fn parse_json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

pub fn read_json(path: &Path) -> Value {
    let text = fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn blob_path(layout: &Path, digest: &str) -> PathBuf {
    let (alg, hex) = digest.split_once(':').expect("algorithm:hex");
    layout.join("blobs").join(alg).join(hex)
}

/// The manifest digest and manifest of the image tagged `tag` in an OCI
/// layout directory.
pub fn tagged_manifest(layout: &Path, tag: &str) -> (String, Value) {
    let index = read_json(&layout.join("index.json"));
    let desc = index["manifests"]
        .as_array()
        .expect("index.json has manifests")
        .iter()
        .find(|d| d["annotations"][REF_NAME] == tag)
        .unwrap_or_else(|| panic!("no manifest tagged {tag:?} in {index}"));
    let digest = desc["digest"].as_str().unwrap().to_string();
    let manifest = read_json(&blob_path(layout, &digest));
    (digest, manifest)
}

/// The layer digests of a manifest, or of what `gantry inspect --json`
/// prints, which lists layers the same way.
pub fn layer_digests(manifest: &Value) -> Vec<String> {
    manifest["layers"]
        .as_array()
        .expect("a list of layers")
        .iter()
        .map(|l| l["digest"].as_str().unwrap().to_string())
        .collect()
}

/// The tar inside a layer blob of `media_type`.
pub fn uncompress(media_type: &str, bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    if media_type.ends_with("+gzip") {
        // A gzip layer is a series of members; GzDecoder stops after the first.
        flate2::read::MultiGzDecoder::new(bytes)
            .read_to_end(&mut out)
            .unwrap();
    } else if media_type.ends_with("+zstd") {
        out = zstd::stream::decode_all(bytes).unwrap();
    } else {
        assert!(media_type.ends_with(".tar"), "media type {media_type}");
        out = bytes.to_vec();
    }
    out
}

/// An OCI layout directory written by `gantry build -o DIR/`, whose blobs
/// are checked against their names as they are read.
pub struct Layout(pub PathBuf);

impl Layout {
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let hex = digest
            .strip_prefix("sha256:")
            .unwrap_or_else(|| panic!("not a sha256 digest: {digest}"));
        let path = self.0.join("blobs/sha256").join(hex);
        let bytes = fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            sha256_hex(&bytes),
            hex,
            "blob {digest} does not hash to its name"
        );
        bytes
    }

    pub fn json(&self, digest: &str) -> Value {
        serde_json::from_slice(&self.blob(digest)).unwrap()
    }

    pub fn manifest(&self, digest: &str) -> Value {
        self.json(digest)
    }

    pub fn config(&self, manifest: &Value) -> Value {
        self.json(manifest["config"]["digest"].as_str().unwrap())
    }

    /// Each layer's media type, compressed digest and uncompressed tar.
    pub fn layers(&self, manifest: &Value) -> Vec<(String, String, Vec<u8>)> {
        manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| {
                let mt = l["mediaType"].as_str().unwrap().to_string();
                let digest = l["digest"].as_str().unwrap().to_string();
                let tar = uncompress(&mt, &self.blob(&digest));
                (mt, digest, tar)
            })
            .collect()
    }
}
