//! Building the images of a build file: base → config → layers → manifest,
//! every blob into the store. Nothing here reads the wall clock: the one
//! timestamp is SOURCE_DATE_EPOCH or [`crate::epoch::DEFAULT_EPOCH`].

use std::collections::{BTreeMap, HashMap};

use crate::buildfile::{BaseSpec, BuildFile, ImageSpec, Platform, Templated};
use crate::config::{History, ImageConfig};
use crate::digest::Digest;
use crate::epoch;
use crate::error::{Error, Result};
use crate::image::{Image, LayerDesc};
use crate::layer::{self, compress::CompressOptions, fileset, LayerJob};
use crate::layout::read as layout_read;
use crate::progress::{Event, Reporter};
use crate::reference::Reference;
use crate::spec;
use crate::stamp::{Stamp, StampSources};
use crate::store::Store;

pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Seconds since the epoch for every timestamp in the image.
    pub epoch: u64,
    /// Compression threads; changes speed only, never bytes.
    pub threads: usize,
    /// `Some` to stamp the build with values from git, the clock, status
    /// files and variables; `None` keeps it reproducible.
    pub stamp: Option<StampSources>,
    /// SOURCE_DATE_EPOCH, when set (stamped builds use it for BUILD_TIMESTAMP).
    pub source_date_epoch: Option<u64>,
    /// How registry bases are reached (network, lock, offline).
    pub registry: std::sync::Arc<crate::registry::bases::BaseOptions>,
}

impl BuildOptions {
    /// SOURCE_DATE_EPOCH (malformed is an error) and the machine's cores.
    pub fn from_env() -> Result<BuildOptions> {
        let sde = epoch::source_date_epoch()?;
        Ok(BuildOptions {
            epoch: sde.unwrap_or(epoch::DEFAULT_EPOCH),
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            stamp: None,
            source_date_epoch: sde,
            registry: Default::default(),
        })
    }
}

/// What a build produced for one image.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    pub image: Image,
    /// Per layer of this image (not its base): was it reused from the store?
    pub layers: Vec<LayerReport>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct LayerReport {
    pub name: String,
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    pub reused: bool,
}

/// Builds `targets` (every image when empty) and the images they are based
/// on, bases first. Returns every image built, in build order.
pub fn build(
    file: &BuildFile,
    targets: &[String],
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Vec<BuiltImage>> {
    let order = file.build_order(targets)?;
    let stamp = match &opts.stamp {
        Some(sources) => Stamp::stamped(&file.stamp, sources, &file.dir, opts.source_date_epoch)?,
        None => Stamp::unstamped(&file.stamp, opts.epoch)?,
    };
    // Expanded up front, so a stamp problem or two images ending up with
    // one tag is reported before any work is done.
    let mut expanded = Vec::new();
    let mut tag_owner: HashMap<String, &str> = HashMap::new();
    for spec in &order {
        let values = expand_spec(spec, &stamp)?;
        let mut tags = if values.tags.is_empty() {
            vec![Reference::parse_tagged(&format!("{}:latest", spec.name))?]
        } else {
            values.tags.clone()
        };
        // Two templates of one image may expand alike (both `unstamped`).
        let mut seen = std::collections::HashSet::new();
        tags.retain(|t| seen.insert(t.to_string()));
        for t in &tags {
            if let Some(other) = tag_owner.insert(t.to_string(), &spec.name) {
                return Err(Error::BuildFile {
                    location: spec.location.clone(),
                    message: format!(
                        "images {other:?} and {:?} both get the tag {}",
                        spec.name,
                        t.familiar()
                    ),
                });
            }
        }
        expanded.push(Expanded { tags, ..values });
    }
    let mut built: HashMap<String, Image> = HashMap::new();
    let mut out = Vec::new();
    for (spec, values) in order.into_iter().zip(&expanded) {
        let b = build_one(spec, values, &built, store, opts, reporter)?;
        reporter.report(Event::ImageBuilt {
            image: &spec.name,
            digest: &b.image.manifest_digest,
        });
        built.insert(spec.name.clone(), b.image.clone());
        out.push(b);
    }
    Ok(out)
}

fn build_one(
    spec: &ImageSpec,
    values: &Expanded,
    built: &HashMap<String, Image>,
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<BuiltImage> {
    let created = values.created.clone();
    let (base, base_annotations) = base_image(spec, built, store, opts, reporter)?;

    let mut config = match &base {
        Some(b) => b.config.clone(),
        None => {
            let p = spec
                .platform
                .as_ref()
                .expect("validated: scratch has a platform");
            ImageConfig {
                architecture: p.architecture.clone(),
                os: p.os.clone(),
                variant: p.variant.clone(),
                ..Default::default()
            }
        }
    };
    if let (Some(want), Some(b)) = (&spec.platform, &base) {
        let have = Platform {
            os: b.config.os.clone(),
            architecture: b.config.architecture.clone(),
            variant: b.config.variant.clone(),
        };
        let have_norm = Platform::parse(&have.to_string()).unwrap_or(have);
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
        .as_ref()
        .map(|b| b.layers.iter().map(oci_layer).collect())
        .unwrap_or_default();
    let mut reports = Vec::new();
    for l in &spec.layers {
        let mtime = l.mtime.unwrap_or(opts.epoch);
        let entries = fileset::resolve(&spec.name, l, mtime)?;
        let job = LayerJob {
            image: &spec.name,
            name: &l.name,
            entries: &entries,
            compress: CompressOptions {
                compression: l.compression,
                level: l.compression_level,
                threads: opts.threads,
            },
        };
        let done = layer::build(store, &job, reporter)?;
        config.rootfs.diff_ids.push(done.desc.diff_id.to_string());
        config.history.push(History {
            created: Some(created.clone()),
            created_by: Some(format!("gantry layer {}", l.name)),
            ..Default::default()
        });
        reports.push(LayerReport {
            name: l.name.clone(),
            digest: done.desc.digest,
            diff_id: done.desc.diff_id,
            size: done.desc.size,
            reused: done.reused,
        });
        layers.push(done.desc);
    }

    let mut annotations = base_annotations;
    annotations.extend(values.standard_annotations.clone());
    annotations.extend(values.annotations.clone());
    let tags = values.tags.clone();
    let image = assemble(
        store,
        &spec.name,
        config,
        layers,
        annotations,
        tags.iter().map(|t| t.to_string()).collect(),
    )?;
    Ok(BuiltImage {
        image,
        layers: reports,
    })
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
    let (config_digest, config_size) = store.put(&config_bytes)?;
    let manifest_bytes = spec::oci_manifest(&config_digest, config_size, &layers, &annotations);
    let (manifest_digest, _) = store.put(&manifest_bytes)?;
    Ok(Image {
        name: name.to_string(),
        manifest_bytes,
        manifest_digest,
        manifest_media_type: spec::OCI_MANIFEST.to_string(),
        config_bytes,
        config_digest,
        config,
        layers,
        tags,
        annotations,
    })
}

/// The base image (None for scratch) and the annotations that record it.
fn base_image(
    spec: &ImageSpec,
    built: &HashMap<String, Image>,
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<(Option<Image>, BTreeMap<String, String>)> {
    let mut ann = BTreeMap::new();
    let base = match &spec.base {
        BaseSpec::Scratch => return Ok((None, ann)),
        BaseSpec::Image(name) => built
            .get(name)
            .cloned()
            .expect("build order puts bases first"),
        BaseSpec::Local(src) => layout_read::import(src, store).map_err(|e| Error::BuildFile {
            location: spec.location.clone(),
            message: format!("image {:?}: base: {e}", spec.name),
        })?,
        BaseSpec::Registry(r) => registry_base(spec, r, store, opts, reporter)?,
    };
    ann.insert(
        ANNOTATION_BASE_DIGEST.into(),
        base.manifest_digest.to_string(),
    );
    Ok((Some(base), ann))
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
        .load_base(r, spec.platform.as_ref(), store, reporter)
        .map_err(|e| Error::BuildFile {
            location: spec.location.clone(),
            message: format!("image {:?}: base: {e}", spec.name),
        })?;
    Ok(loaded.image)
}

/// Docker's layer media types name the same bytes as OCI's; an OCI manifest
/// should not mix the two vocabularies.
fn oci_layer(l: &LayerDesc) -> LayerDesc {
    let media_type = match spec::layer_compression(&l.media_type) {
        Some(c) => match c {
            spec::LayerCompression::None => spec::OCI_LAYER_TAR,
            spec::LayerCompression::Gzip => spec::OCI_LAYER_GZIP,
            spec::LayerCompression::Zstd => spec::OCI_LAYER_ZSTD,
        }
        .to_string(),
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
    if config.config.as_ref() == Some(&Default::default()) {
        config.config = None;
    }
}

/// The image's settings with every stamp template filled in.
struct Expanded {
    created: String,
    /// The standard OCI annotations of a stamped build (empty otherwise).
    standard_annotations: BTreeMap<String, String>,
    env: BTreeMap<String, String>,
    labels: BTreeMap<String, String>,
    annotations: BTreeMap<String, String>,
    tags: Vec<Reference>,
}

fn expand_spec(spec: &ImageSpec, stamp: &Stamp) -> Result<Expanded> {
    let map = |what: &str, m: &BTreeMap<String, String>| -> Result<BTreeMap<String, String>> {
        m.iter()
            .map(|(k, v)| {
                let at = format!("{} (image.{}.{what}.{k:?})", spec.location, spec.name);
                let value = if what == "env" {
                    // Env values go through `${NAME}` expansion afterwards;
                    // a stamp value must arrive there as literal text.
                    stamp.expand_escaped(v, &at, &|s| s.replace('$', "$$"))?
                } else {
                    stamp.expand(v, &at)?
                };
                Ok((k.clone(), value))
            })
            .collect()
    };
    let created = match &spec.created {
        Some(t) => parse_created(&stamp.expand(&t.text, &t.location)?, &t.location)?,
        None => {
            let secs = stamp.get("BUILD_TIMESTAMP").unwrap_or("0");
            parse_created(secs, &spec.location)?
        }
    };
    let mut tags = Vec::new();
    for t in &spec.tags {
        tags.push(expand_tag(stamp, t)?);
    }
    let mut values = Expanded {
        created,
        standard_annotations: BTreeMap::new(),
        env: map("env", &spec.env)?,
        labels: map("labels", &spec.labels)?,
        annotations: map("annotations", &spec.annotations)?,
        tags,
    };
    if stamp.stamped {
        values.standard_annotations = standard_annotations(stamp, &values);
    }
    Ok(values)
}

/// Expands a templated tag. The name and the tag part are expanded apart,
/// so a value can only ever fill the part it stands in: a branch named
/// `1234/fix` must not turn `app:{{GIT_BRANCH}}` into registry `app:1234`.
fn expand_tag(stamp: &Stamp, t: &Templated) -> Result<Reference> {
    let refuse = |text: &str, e: String| Error::BuildFile {
        location: t.location.clone(),
        message: if text == t.text {
            e
        } else {
            format!(
                "tag {:?} expands to {text:?}, which is not a valid tag: {e} \
                 (`{{{{KEY|tag}}}}` makes any value a valid tag)",
                t.text
            )
        },
    };
    // The tag separator is the last `:` after the last `/`, outside templates.
    let split = tag_separator(&t.text);
    let text = match split {
        Some(i) => {
            let name = stamp.expand(&t.text[..i], &t.location)?;
            let tag = stamp.expand(&t.text[i + 1..], &t.location)?;
            let text = format!("{name}:{tag}");
            crate::reference::validate_tag(&tag).map_err(|e| refuse(&text, e))?;
            text
        }
        None => stamp.expand(&t.text, &t.location)?,
    };
    let r = Reference::parse_tagged(&text).map_err(|e| refuse(&text, e.to_string()))?;
    if split.is_some() && r.tag.is_none() {
        return Err(refuse(&text, "the tag part is missing".into()));
    }
    Ok(r)
}

/// Byte offset of the `:` that separates name and tag in a (templated) tag
/// reference, ignoring anything inside `{{ }}`.
fn tag_separator(text: &str) -> Option<usize> {
    let mut depth = 0usize;
    let mut sep = None;
    let b = text.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i..].starts_with(b"{{") {
            depth += 1;
            i += 2;
            continue;
        }
        if b[i..].starts_with(b"}}") && depth > 0 {
            depth -= 1;
            i += 2;
            continue;
        }
        if depth == 0 {
            match b[i] {
                b'/' => sep = None,
                b':' => sep = Some(i),
                b'@' => return sep,
                _ => {}
            }
        }
        i += 1;
    }
    sep
}

/// `created` as written: seconds since 1970, or an RFC 3339 UTC time.
fn parse_created(text: &str, location: &str) -> Result<String> {
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        let secs = epoch::parse(text).map_err(|e| Error::BuildFile {
            location: location.to_string(),
            message: format!("created {text:?}: {e}"),
        })?;
        return Ok(epoch::rfc3339(secs));
    }
    if epoch::is_rfc3339(text) {
        return Ok(text.to_string());
    }
    Err(Error::BuildFile {
        location: location.to_string(),
        message: format!(
            "created {text:?} must be seconds since 1970 or an RFC 3339 time like 2024-01-02T03:04:05Z"
        ),
    })
}

/// The OCI annotations a release image should carry, from the stamp; the
/// build file's own annotations win over these.
fn standard_annotations(stamp: &Stamp, values: &Expanded) -> BTreeMap<String, String> {
    let mut a = BTreeMap::new();
    let version = stamp
        .get("VERSION")
        .filter(|v| !v.is_empty())
        .or(stamp.get("GIT_DESCRIBE"))
        .unwrap_or("");
    let mut put = |k: &str, v: &str| {
        if !v.is_empty() {
            a.insert(format!("org.opencontainers.image.{k}"), v.to_string());
        }
    };
    put("version", version);
    put("revision", stamp.get("GIT_COMMIT").unwrap_or(""));
    put("created", &values.created);
    let source = values
        .labels
        .get("org.opencontainers.image.source")
        .cloned()
        .unwrap_or_else(|| stamp.source_url.clone());
    put("source", &source);
    a
}

/// Expands `${NAME}` from `env` (`K=V` items); an unset name expands to the
/// empty string, as in a Dockerfile. `$$` is a literal `$`.
pub fn expand(value: &str, env: &[String]) -> String {
    let lookup = |name: &str| {
        env.iter()
            .rev()
            .find_map(|e| e.strip_prefix(name).and_then(|r| r.strip_prefix('=')))
            .unwrap_or("")
            .to_string()
    };
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(r) = after.strip_prefix('$') {
            out.push('$');
            rest = r;
        } else if let Some(r) = after.strip_prefix('{') {
            match r.find('}') {
                Some(end) => {
                    out.push_str(&lookup(&r[..end]));
                    rest = &r[end + 1..];
                }
                None => {
                    out.push_str(&rest[i..]);
                    rest = "";
                }
            }
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expands_from_base_env_only() {
        let env = vec!["PATH=/usr/bin:/bin".to_string(), "A=1".to_string()];
        assert_eq!(expand("/app/bin:${PATH}", &env), "/app/bin:/usr/bin:/bin");
        assert_eq!(expand("${MISSING}x", &env), "x");
        assert_eq!(expand("$$A $A ${A", &env), "$A $A ${A");
    }
}
