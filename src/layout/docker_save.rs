//! Classic `docker save` archives (Docker Engine before 25): a
//! `manifest.json` array of `{Config, RepoTags, Layers}` naming members by
//! path, layers as `<id>/layer.tar`. There is no manifest, so one is made:
//! an OCI manifest over the layers as they are stored.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read};
use std::str::FromStr;

use serde::Deserialize;

use super::container::{compression_of, Container};
use super::read::{full_or_raw, select_one, Blob, LocalBlobs};
use crate::digest::{Digest, Hasher, HashingReader};
use crate::error::{Error, JsonError, Result};
use crate::image::{read, Image, LayerDesc};
use crate::media::Compression;
use crate::reference::same_image;

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

/// Reads the image `select` names from a classic archive; see [`open`].
///
/// [`open`]: super::read::open
pub(super) fn open_docker_save(
    container: Container,
    select: Option<&str>,
) -> Result<(Image, LocalBlobs)> {
    let entries = save_entries(&container)?;
    let chosen = choose(&container, &entries, select)?;

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
    let config = read::parse_config(&config_bytes, &config_what)?;
    let diff_ids = read::diff_ids(&config, &config_what, chosen.layers.len())?;

    let mut known = HashMap::new();
    let mut layers = Vec::new();
    for (name, diff_id) in chosen.layers.iter().zip(diff_ids) {
        let (layer, blob) = layer_of(&container, name, diff_id)?;
        // A layer listed twice is one blob; its first file stands for it.
        known.entry(layer.digest).or_insert(blob);
        layers.push(layer);
    }
    known.insert(
        config_digest,
        Blob::Member {
            name: chosen.config.clone(),
            size: config_bytes.len() as u64,
            what: config_what,
        },
    );

    let tags: Vec<String> = chosen.tags().map(|t| full_or_raw(t)).collect();
    let label = select
        .map(str::to_string)
        .or_else(|| tags.first().cloned())
        .unwrap_or_else(|| container.source_name());
    let image =
        Image::with_oci_manifest(label, config, config_bytes, layers, BTreeMap::new(), tags);
    known.insert(
        image.manifest_digest,
        Blob::Memory(image.manifest_bytes.clone()),
    );
    Ok((
        image,
        LocalBlobs {
            container,
            known,
            layout: false,
        },
    ))
}

/// The entries of the archive's `manifest.json`.
fn save_entries(container: &Container) -> Result<Vec<SaveEntry>> {
    let list_what = container.member_name("manifest.json");
    serde_json::from_slice(&container.read_small("manifest.json")?).map_err(|e| {
        Error::format_because(
            &list_what,
            "not a docker save manifest (an array of {Config, RepoTags, Layers})",
            JsonError::from(e),
        )
    })
}

/// The entry `select` names (by tag or image ID), or the only one.
fn choose<'a>(
    container: &Container,
    entries: &'a [SaveEntry],
    select: Option<&str>,
) -> Result<&'a SaveEntry> {
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
        container,
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
    Ok(chosen)
}

/// The layer stored as member `name`, whose content must be `diff_id`
/// uncompressed, and where its bytes are.
fn layer_of(container: &Container, name: &str, diff_id: Digest) -> Result<(LayerDesc, Blob)> {
    let size = container.size(name)?;
    let mut head = [0u8; 6];
    let n = container.read_head(name, &mut head)?;
    let what = container.member_name(name);
    let compression = compression_of(&head[..n]).map_err(|kind| {
        Error::format(
            &what,
            format!(
                "is a {kind}-compressed layer; only uncompressed, gzip and zstd layers are \
                 supported"
            ),
        )
    })?;
    let (digest, what) = match compression {
        // An uncompressed layer is its own diff: its digest is the
        // diff_id, which the reader then verifies, so the archive is not
        // read twice just to learn a digest it already states.
        Compression::None => (
            diff_id,
            format!("{what} (an uncompressed layer must hash to its diff_id)"),
        ),
        c => (hash_compressed_layer(container, name, c, &diff_id)?, what),
    };
    let layer = LayerDesc {
        media_type: compression.media_type().to_string(),
        digest,
        size,
        diff_id,
        annotations: Default::default(),
        location: Default::default(),
    };
    let blob = Blob::Member {
        name: name.to_string(),
        size,
        what,
    };
    Ok((layer, blob))
}

/// Digest of a compressed layer in a classic archive, which names layers by
/// path and not by digest. The same pass decompresses it and checks the
/// result against its diff_id, because nothing later would.
fn hash_compressed_layer(
    container: &Container,
    name: &str,
    kind: Compression,
    diff_id: &Digest,
) -> Result<Digest> {
    let what = container.member_name(name);
    let (reader, _) = container.open_member(name)?;
    let mut compressed = HashingReader::new(reader);
    let mut plain = Hasher::new();
    let result = (|| -> io::Result<()> {
        let mut decoder: Box<dyn Read + '_> = match kind {
            Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(&mut compressed)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(&mut compressed)?),
            Compression::None => Box::new(&mut compressed),
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
    result.map_err(|e| {
        Error::format_because(&what, format!("cannot decompress {} layer", kind.name()), e)
    })?;
    let (actual, _) = plain.finish();
    if actual != *diff_id {
        return Err(Error::Mismatch {
            what: format!("{what} (uncompressed content against its diff_id)"),
            expected: diff_id.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(compressed.finish().0)
}
