//! `--cache-to`: the layers of a build, pushed with a cache manifest that
//! lists them with their diff_ids and recipes, so that a later build on
//! another machine finds them (`--cache-from`) although no image was tagged.

use crate::build::BuiltImage;
use crate::cache::manifest::{self, EMPTY_CONFIG};
use crate::digest::Digest;
use crate::error::Result;
use crate::layer::ANNOTATION_RECIPE;
use crate::media;
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::registry::Client;
use crate::store::Store;

use super::{push, ManifestBytes, PushOptions, PushRequest};

/// Pushes every layer of `built` that gantry laid down, and the cache
/// manifest listing them, to `to`. Returns `registry/repository:tag@digest`.
pub fn push_cache(
    built: &[BuiltImage],
    to: &Reference,
    store: &Store,
    client: &Client,
    opts: &PushOptions,
    reporter: &dyn Reporter,
) -> Result<String> {
    let layers: Vec<_> = built
        .iter()
        .flat_map(|b| b.result.images())
        .flat_map(|i| i.layers.iter().cloned())
        .filter(|l| l.annotations.contains_key(ANNOTATION_RECIPE))
        .collect();
    let bytes = manifest::document(&layers);
    store.put(EMPTY_CONFIG)?;
    store.put(&bytes)?;
    let mut blobs = vec![(Digest::of(EMPTY_CONFIG), EMPTY_CONFIG.len() as u64)];
    for l in &layers {
        if !blobs.contains(&(l.digest, l.size)) {
            blobs.push((l.digest, l.size));
        }
    }
    let request = PushRequest {
        name: "cache",
        top: ManifestBytes {
            digest: Digest::of(&bytes),
            media_type: media::OCI_MANIFEST,
            bytes: &bytes,
        },
        children: Vec::new(),
        blobs,
        targets: vec![to.clone()],
        referrers: &[],
    };
    let report = push(&[request], store, client, opts, None, reporter)?;
    Ok(report
        .images
        .into_iter()
        .flat_map(|i| i.references)
        .next()
        .unwrap_or_else(|| to.to_string()))
}
