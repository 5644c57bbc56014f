//! The cache manifest `--cache-to` pushes: an OCI image manifest whose
//! `artifactType` says it is no image, with an empty config, listing the
//! layers of a build with their diff_ids and recipes as annotations. A later
//! machine finds the layers through it without an image having been tagged.

use std::collections::BTreeMap;

use oci_spec::image::{ImageManifest, ImageManifestBuilder, MediaType};

use crate::digest::Digest;
use crate::image::LayerDesc;
use crate::layer::{ANNOTATION_DIFF_ID, ANNOTATION_RECIPE};
use crate::manifest;
use crate::media;

/// The `artifactType` of a cache manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.gantry.layer-cache.v1+json";

/// The OCI empty descriptor's media type, which the config of an artifact
/// without a config of its own names.
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";

/// The bytes of the empty config blob.
pub const EMPTY_CONFIG: &[u8] = b"{}";

/// One layer a cache manifest lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The compressed blob.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Its layer media type.
    pub media_type: String,
    /// The digest of its uncompressed tar stream.
    pub diff_id: Digest,
    /// The recipe it was compressed with.
    pub recipe: String,
}

/// The canonical bytes of the cache manifest over `layers` (those carrying
/// a recipe; any other is left out), each listed once, in the order given.
pub fn document(layers: &[LayerDesc]) -> Vec<u8> {
    let mut seen = std::collections::HashSet::new();
    let listed: Vec<_> = layers
        .iter()
        .filter(|l| l.annotations.contains_key(ANNOTATION_RECIPE))
        .filter(|l| seen.insert(l.digest))
        .map(|l| {
            let mut a = BTreeMap::new();
            a.insert(
                ANNOTATION_RECIPE.to_string(),
                l.annotations[ANNOTATION_RECIPE].clone(),
            );
            a.insert(ANNOTATION_DIFF_ID.to_string(), l.diff_id.to_string());
            let mut d = manifest::descriptor(&l.media_type, &l.digest, l.size);
            d.set_annotations(Some(manifest::annotations(a)));
            d
        })
        .collect();
    let m = ImageManifestBuilder::default()
        .schema_version(2u32)
        .media_type(MediaType::ImageManifest)
        .artifact_type(MediaType::Other(ARTIFACT_TYPE.to_string()))
        .config(manifest::descriptor(
            EMPTY_MEDIA_TYPE,
            &Digest::of(EMPTY_CONFIG),
            EMPTY_CONFIG.len() as u64,
        ))
        .layers(listed)
        .build()
        .expect("every required manifest field is set");
    crate::json::canonical(&m)
}

/// Whether `m` is a cache manifest rather than an image's.
pub fn is_cache(m: &ImageManifest) -> bool {
    m.artifact_type()
        .as_ref()
        .is_some_and(|t| t.to_string() == ARTIFACT_TYPE)
}

/// The layers a cache manifest lists with a diff_id and a recipe; a layer
/// without both, or with a digest that does not parse, is left out.
pub fn listed(m: &ImageManifest) -> Vec<Listed> {
    m.layers()
        .iter()
        .filter_map(|d| {
            let a = d.annotations().as_ref()?;
            let diff_id = a.get(ANNOTATION_DIFF_ID)?.parse().ok()?;
            let recipe = a.get(ANNOTATION_RECIPE)?.clone();
            Some(Listed {
                digest: Digest::from_oci(d.digest(), "layer").ok()?,
                size: d.size(),
                media_type: d.media_type().to_string(),
                diff_id,
                recipe,
            })
        })
        .filter(|l| media::Compression::of_layer_media_type(&l.media_type).is_some())
        .collect()
}

/// The recipe of each layer of an image manifest, in order (`None` for a
/// layer gantry did not lay down).
pub fn recipes(m: &ImageManifest) -> Vec<Option<String>> {
    m.layers()
        .iter()
        .map(|d| {
            d.annotations()
                .as_ref()
                .and_then(|a| a.get(ANNOTATION_RECIPE).cloned())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(n: u8, recipe: Option<&str>) -> LayerDesc {
        LayerDesc {
            media_type: media::OCI_LAYER_GZIP.into(),
            digest: Digest::of(&[n]),
            size: u64::from(n),
            diff_id: Digest::of(&[n, n]),
            annotations: recipe
                .map(|r| BTreeMap::from([(ANNOTATION_RECIPE.to_string(), r.to_string())]))
                .unwrap_or_default(),
            location: Default::default(),
        }
    }

    #[test]
    fn cache_manifest_lists_each_recipe_layer_once_with_its_diff_id() {
        let layers = [
            layer(1, Some("r")),
            layer(2, None),
            layer(1, Some("r")),
            layer(3, Some("q")),
        ];
        let bytes = document(&layers);
        let m = manifest::parse_manifest(&bytes, "cache").unwrap();
        assert!(is_cache(&m));
        let got = listed(&m);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].diff_id, Digest::of(&[1, 1]));
        assert_eq!(got[0].recipe, "r");
        assert_eq!(got[1].digest, Digest::of(&[3]));
        assert_eq!(
            document(&layers),
            bytes,
            "the same layers give the same bytes"
        );
    }
}
