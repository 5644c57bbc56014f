//! Manifest + config → [`Image`]: the one reader every source (registry
//! bases, OCI layouts, docker archives) goes through, so that what a source
//! may hand to a build is checked the same way whichever it is.
//!
//! A source reads in two steps because it fetches the config itself, from
//! wherever it keeps blobs: [`Manifest::parse`] checks a manifest and says
//! which config it needs; [`Manifest::into_image`] checks that config
//! against it. Neither step reads a blob: layers are the source's to fetch.

use std::collections::BTreeMap;

use crate::config::ImageConfig;
use crate::digest::Digest;
use crate::error::{Error, JsonError, Result};
use crate::image::{BlobLocation, Image, LayerDesc};
use crate::manifest;
use crate::media;

/// An image manifest as a source holds it, checked, with the digests it
/// names parsed.
#[derive(Debug, Clone)]
pub struct Manifest {
    /// The manifest's exact bytes, which `digest` names.
    pub bytes: Vec<u8>,
    /// The digest the source names the manifest by.
    pub digest: Digest,
    /// The media type the source gives it (or its body declares).
    pub media_type: String,
    /// The config blob the manifest names.
    pub config_digest: Digest,
    /// The config's size as the manifest gives it.
    pub config_size: u64,
    /// The layers, in order, as the manifest lists them (media type,
    /// digest, size, annotations); their diff_ids come from the config.
    pub layers: Vec<(String, Digest, u64, BTreeMap<String, String>)>,
    /// Manifest annotations, sorted.
    pub annotations: BTreeMap<String, String>,
}

impl Manifest {
    /// Parses and checks an image manifest: not Docker schema 1, a
    /// container image's (its config media type), and naming every blob by
    /// a sha256 digest. `what` names the manifest in errors.
    pub fn parse(bytes: Vec<u8>, digest: Digest, media_type: String, what: &str) -> Result<Self> {
        if media::is_schema1(&media_type) {
            return Err(Error::format(what, schema1_refusal("it")));
        }
        let parsed = manifest::parse_manifest(&bytes, what)?;
        let config = parsed.config();
        let config_media = config.media_type().to_string();
        if config_media != media::OCI_CONFIG && config_media != media::DOCKER_CONFIG {
            return Err(Error::format(
                what,
                format!("not a container image: its config media type is {config_media}"),
            ));
        }
        let config_digest = Digest::from_oci(config.digest(), &format!("{what}: config"))?;
        let layers = parsed
            .layers()
            .iter()
            .enumerate()
            .map(|(i, d)| {
                let digest = Digest::from_oci(d.digest(), &format!("{what}: layers[{i}]"))?;
                let annotations = d
                    .annotations()
                    .as_ref()
                    .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                    .unwrap_or_default();
                Ok((d.media_type().to_string(), digest, d.size(), annotations))
            })
            .collect::<Result<Vec<_>>>()?;
        let annotations = parsed
            .annotations()
            .as_ref()
            .map(|a| a.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
            .unwrap_or_default();
        Ok(Manifest {
            bytes,
            digest,
            media_type,
            config_digest,
            config_size: config.size(),
            layers,
            annotations,
        })
    }

    /// The image this manifest makes with `config_bytes`, checked: the
    /// bytes are the config the manifest names (size and digest), parse as
    /// an image config, and list one sha256 diff_id per layer. `config_what`
    /// names the config in errors.
    pub fn into_image(
        self,
        name: String,
        config_bytes: Vec<u8>,
        config_what: &str,
        tags: Vec<String>,
    ) -> Result<Image> {
        let actual = Digest::of(&config_bytes);
        if config_bytes.len() as u64 != self.config_size || actual != self.config_digest {
            return Err(Error::Mismatch {
                what: config_what.to_string(),
                expected: format!(
                    "{} bytes hashing to {}",
                    self.config_size, self.config_digest
                ),
                actual: format!("{} bytes hashing to {actual}", config_bytes.len()),
            });
        }
        let config = parse_config(&config_bytes, config_what)?;
        let diff_ids = diff_ids(&config, config_what, self.layers.len())?;
        let layers = self
            .layers
            .into_iter()
            .zip(diff_ids)
            .map(
                |((media_type, digest, size, annotations), diff_id)| LayerDesc {
                    media_type,
                    digest,
                    size,
                    diff_id,
                    annotations,
                    location: BlobLocation::Store,
                },
            )
            .collect();
        Ok(Image {
            name,
            manifest_bytes: self.bytes,
            manifest_digest: self.digest,
            manifest_media_type: self.media_type,
            config_bytes,
            config_digest: self.config_digest,
            config,
            layers,
            tags,
            annotations: self.annotations,
        })
    }
}

/// Parses an image config; `what` names it in errors, which never quote it.
pub fn parse_config(bytes: &[u8], what: &str) -> Result<ImageConfig> {
    ImageConfig::parse(bytes)
        .map_err(|e| Error::format_because(what, "not an image config", JsonError::from(e)))
}

/// The config's diff_ids, checked to be one sha256 digest per layer of a
/// manifest of `layer_count` layers.
pub fn diff_ids(config: &ImageConfig, what: &str, layer_count: usize) -> Result<Vec<Digest>> {
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
            s.parse::<Digest>().map_err(|_| {
                Error::format(
                    what,
                    format!("rootfs.diff_ids[{i}] {s:?} is not a sha256 digest"),
                )
            })
        })
        .collect()
}

/// Why a Docker schema 1 manifest (`subject`) is refused, and what to do.
pub fn schema1_refusal(subject: &str) -> String {
    format!(
        "{subject} is a Docker schema 1 manifest, a format retired in 2019 that gantry does \
         not read; convert it first (for example `skopeo copy --format v2s2`, or pull and \
         save it with a current docker)"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::oci_manifest;
    use crate::layout::testutil::test_config;

    fn layer(n: u8) -> LayerDesc {
        LayerDesc {
            media_type: media::OCI_LAYER_TAR.into(),
            digest: Digest::of(&[n]),
            size: 1,
            diff_id: Digest::of(&[n]),
            annotations: Default::default(),
            location: Default::default(),
        }
    }

    /// A manifest over `layers` naming `config_bytes`, as a source holds it.
    fn manifest_of(config_bytes: &[u8], layers: &[LayerDesc]) -> Result<Manifest> {
        let bytes = oci_manifest(
            &Digest::of(config_bytes),
            config_bytes.len() as u64,
            layers,
            &BTreeMap::new(),
        );
        let digest = Digest::of(&bytes);
        Manifest::parse(bytes, digest, media::OCI_MANIFEST.into(), "m")
    }

    #[test]
    fn a_manifest_and_its_config_make_the_image() {
        let layers = [layer(1), layer(2)];
        let ids: Vec<Digest> = layers.iter().map(|l| l.diff_id).collect();
        let config = test_config(&ids).to_canonical_json();
        let image = manifest_of(&config, &layers)
            .unwrap()
            .into_image("x".into(), config.clone(), "c", vec!["t".into()])
            .unwrap();
        assert_eq!(image.layers, layers);
        assert_eq!(image.config_digest, Digest::of(&config));
        assert_eq!(image.tags, ["t"]);
    }

    #[test]
    fn a_config_other_than_the_one_the_manifest_names_is_refused() {
        let config = test_config(&[layer(1).diff_id]).to_canonical_json();
        let m = manifest_of(&config, &[layer(1)]).unwrap();
        let other = test_config(&[layer(2).diff_id]).to_canonical_json();
        let e = m
            .into_image("x".into(), other, "c", Vec::new())
            .unwrap_err();
        assert!(matches!(e, Error::Mismatch { .. }), "{e}");
    }

    #[test]
    fn diff_ids_must_match_the_layers_in_number() {
        let config = test_config(&[layer(1).diff_id]).to_canonical_json();
        let m = manifest_of(&config, &[layer(1), layer(2)]).unwrap();
        let e = m
            .into_image("x".into(), config, "c", Vec::new())
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("rootfs.diff_ids lists 1 layers but the manifest has 2"),
            "{e}"
        );
    }

    #[test]
    fn schema1_is_refused_by_media_type_before_parsing() {
        for mt in [media::DOCKER_SCHEMA1, media::DOCKER_SCHEMA1_UNSIGNED] {
            let e = Manifest::parse(b"{}".to_vec(), Digest::of(b"{}"), mt.into(), "m").unwrap_err();
            assert!(e.to_string().contains("schema 1"), "{e}");
        }
    }

    #[test]
    fn a_layer_digest_of_another_algorithm_is_an_error_naming_the_layer() {
        let bytes = format!(
            r#"{{"schemaVersion":2,"mediaType":"{}","config":{{"mediaType":"{}","digest":"{}","size":1}},"layers":[{{"mediaType":"{}","digest":"sha512:{}","size":1}}]}}"#,
            media::OCI_MANIFEST,
            media::OCI_CONFIG,
            Digest::of(b"c"),
            media::OCI_LAYER_TAR,
            "ab".repeat(64)
        )
        .into_bytes();
        let digest = Digest::of(&bytes);
        let e = Manifest::parse(bytes, digest, media::OCI_MANIFEST.into(), "m").unwrap_err();
        let e = e.to_string();
        assert!(
            e.contains("m: layers[0]") && e.contains("only sha256 is"),
            "{e}"
        );
    }
}
