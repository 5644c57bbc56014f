//! One platform of one image: its base loaded, the declared settings
//! applied over the base's config, and config and manifest into the store.

use std::collections::BTreeMap;

use super::expand::{expand, Expanded};
use super::{BuildOptions, ANNOTATION_BASE_DIGEST};
use crate::buildfile::{BaseSpec, ImageSpec};
use crate::config::ImageConfig;
use crate::error::{Error, Result};
use crate::image::{Image, LayerDesc};
use crate::layout::read as layout_read;
use crate::media::Compression;
use crate::platform::host_platform;
use crate::platform::Platform;
use crate::progress::Reporter;
use crate::reference::Reference;
use crate::store::Store;

/// Docker's `config.Healthcheck`.
const HEALTHCHECK: &str = "Healthcheck";
/// Docker's `config.Shell`.
const SHELL: &str = "Shell";
/// Docker's `config.OnBuild`.
const ONBUILD: &str = "OnBuild";

/// The warning for a base whose `OnBuild` triggers the image passes on
/// without running, or `None` when there is nothing to say.
pub(super) fn onbuild_warning(spec: &ImageSpec, base: &Base) -> Option<String> {
    if spec.onbuild.is_some() {
        return None;
    }
    let triggers = base
        .image
        .as_ref()?
        .config
        .config
        .as_ref()?
        .extra
        .get(ONBUILD)?
        .as_array()?;
    if triggers.is_empty() {
        return None;
    }
    Some(format!(
        "image {:?}: its base has {} ONBUILD trigger(s); gantry does not run them and \
         passes them on (set `onbuild = []` to clear them)",
        spec.name,
        triggers.len()
    ))
}

/// Writes config and manifest into the store and returns the image.
pub fn assemble(
    store: &Store,
    name: &str,
    config: ImageConfig,
    layers: Vec<LayerDesc>,
    annotations: BTreeMap<String, String>,
    tags: Vec<String>,
) -> Result<Image> {
    let config_bytes = config.to_canonical_json();
    let image = Image::with_oci_manifest(
        name.to_string(),
        config,
        config_bytes,
        layers,
        annotations,
        tags,
    );
    store.put(&image.config_bytes)?;
    store.put(&image.manifest_bytes)?;
    Ok(image)
}

/// A loaded base: the image (None for scratch) and the annotations that
/// record it in the manifest built on it.
pub(super) struct Base {
    pub(super) image: Option<Image>,
    pub(super) annotations: BTreeMap<String, String>,
}

/// Loads the base of `spec` (one platform's view). `other` is the already
/// built image of this file that a `:NAME` base names.
pub(super) fn load_base(
    spec: &ImageSpec,
    other: Option<&Image>,
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Base> {
    let mut annotations = BTreeMap::new();
    let base = match &spec.base {
        BaseSpec::Scratch => {
            return Ok(Base {
                image: None,
                annotations,
            })
        }
        BaseSpec::Image(_) => other.cloned().expect("the plan runs bases first"),
        BaseSpec::Local(src) => {
            // As for registry bases, an index offers the machine's platform
            // when the image names none.
            let want = spec
                .platforms
                .single()
                .cloned()
                .unwrap_or_else(host_platform);
            layout_read::import_for(src, Some(&want), store).map_err(|e| {
                Error::declaration(&spec.location, format!("image {:?}: base", spec.name), e)
            })?
        }
        BaseSpec::Registry(r) => registry_base(spec, r, store, opts, reporter)?,
    };
    annotations.insert(
        ANNOTATION_BASE_DIGEST.into(),
        base.manifest_digest.to_string(),
    );
    Ok(Base {
        image: Some(base),
        annotations,
    })
}

/// The platform an image on `base` is built for: the declared one, else
/// the base's.
pub(super) fn platform_on(spec: &ImageSpec, base: &Base) -> Option<Platform> {
    spec.platforms
        .single()
        .cloned()
        .or_else(|| base.image.as_ref().and_then(|b| b.parsed_platform().ok()))
}

/// Builds the config over the base's, and writes config and manifest: the
/// image of one platform, given its layers (already in the store) in order.
pub(super) fn finish(
    spec: &ImageSpec,
    values: &Expanded,
    base: &Base,
    built_layers: Vec<(String, LayerDesc)>,
    extra_annotations: &BTreeMap<String, String>,
    tags: Vec<String>,
    store: &Store,
) -> Result<Image> {
    let created = values.created.clone();
    let mut config = match &base.image {
        Some(b) => b.config.clone(),
        None => {
            let p = spec
                .platforms
                .single()
                .expect("validated: scratch has a platform");
            ImageConfig {
                architecture: p.architecture.clone(),
                os: p.os.clone(),
                variant: p.variant.clone(),
                ..Default::default()
            }
        }
    };
    if let (Some(want), Some(b)) = (spec.platforms.single(), &base.image) {
        let have_norm = b.parsed_platform().unwrap_or_else(|_| Platform {
            os: b.config.os.clone(),
            architecture: b.config.architecture.clone(),
            variant: b.config.variant.clone(),
        });
        if &have_norm != want {
            return Err(Error::BuildFile {
                location: spec.location.clone(),
                message: format!(
                    "image {:?} asks for platform {want}, but its base is {have_norm}",
                    spec.name
                ),
            });
        }
    }
    apply_spec(&mut config, spec, values);

    let mut layers: Vec<LayerDesc> = base
        .image
        .as_ref()
        .map(|b| b.layers.iter().map(oci_layer).collect())
        .unwrap_or_default();
    for (name, desc) in built_layers {
        config.rootfs.diff_ids.push(desc.diff_id.to_string());
        config.history.push(crate::config::History {
            created: Some(created.clone()),
            created_by: Some(format!("gantry layer {name}")),
            ..Default::default()
        });
        layers.push(desc);
    }

    let mut annotations = base.annotations.clone();
    annotations.extend(extra_annotations.clone());
    assemble(store, &spec.name, config, layers, annotations, tags)
}

/// Loads a registry base (manifest and config only) and records it by name.
fn registry_base(
    spec: &ImageSpec,
    r: &Reference,
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Image> {
    let loaded = opts
        .registry
        .load_base(r, spec.platforms.single(), store, reporter)
        .map_err(|e| {
            Error::declaration(&spec.location, format!("image {:?}: base", spec.name), e)
        })?;
    Ok(loaded.image)
}

/// Docker's layer media types name the same bytes as OCI's; an OCI manifest
/// should not mix the two vocabularies.
fn oci_layer(l: &LayerDesc) -> LayerDesc {
    let media_type = match Compression::of_layer_media_type(&l.media_type) {
        Some(c) => c.media_type().to_string(),
        None => l.media_type.clone(),
    };
    LayerDesc {
        media_type,
        ..l.clone()
    }
}

/// Applies the declared runtime settings over the base's config.
fn apply_spec(config: &mut ImageConfig, spec: &ImageSpec, values: &Expanded) {
    config.created = Some(values.created.clone());
    let base_env: Vec<String> = config.env().to_vec();
    let c = config.container();

    if !values.env.is_empty() {
        let mut env = base_env.clone();
        for (k, v) in &values.env {
            let value = expand(v, &base_env);
            let item = format!("{k}={value}");
            match env
                .iter_mut()
                .find(|e| e.split_once('=').map(|x| x.0) == Some(k.as_str()))
            {
                Some(slot) => *slot = item,
                None => env.push(item),
            }
        }
        c.env = Some(env);
    }
    if let Some(ep) = &spec.entrypoint {
        c.entrypoint = Some(ep.clone());
        // Docker's rule: a new entrypoint invalidates an inherited cmd.
        if spec.cmd.is_none() {
            c.cmd = None;
        }
    }
    if let Some(cmd) = &spec.cmd {
        c.cmd = Some(cmd.clone());
    }
    if let Some(u) = &spec.user {
        c.user = Some(u.clone());
    }
    if let Some(w) = &spec.workdir {
        c.working_dir = Some(w.clone());
    }
    if !values.labels.is_empty() {
        c.labels
            .get_or_insert_with(Default::default)
            .extend(values.labels.clone());
    }
    for p in &spec.exposed_ports {
        c.exposed_ports
            .get_or_insert_with(Default::default)
            .insert(p.clone(), serde_json::json!({}));
    }
    for v in &spec.volumes {
        c.volumes
            .get_or_insert_with(Default::default)
            .insert(v.clone(), serde_json::json!({}));
    }
    if let Some(s) = &spec.stop_signal {
        c.stop_signal = Some(s.clone());
    }
    // Docker's names: the config keeps them among the fields it does not
    // type, so a base's own values pass through untouched when unset here.
    if let Some(h) = &spec.healthcheck {
        c.extra.insert(HEALTHCHECK.into(), h.to_json());
    }
    if let Some(s) = &spec.shell {
        c.extra.insert(SHELL.into(), serde_json::json!(s));
    }
    match &spec.onbuild {
        // Cleared as Docker clears them after running them: no key at all.
        Some(triggers) if triggers.is_empty() => {
            c.extra.remove(ONBUILD);
        }
        Some(triggers) => {
            c.extra.insert(ONBUILD.into(), serde_json::json!(triggers));
        }
        None => {}
    }
    if config.config.as_ref() == Some(&Default::default()) {
        config.config = None;
    }
}
