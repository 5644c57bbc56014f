//! Building the images of a build file: base → config → layers → manifest
//! (→ index), every blob into the store. Nothing here reads the wall clock
//! for the image: the one timestamp is SOURCE_DATE_EPOCH or
//! [`crate::epoch::DEFAULT_EPOCH`].
//!
//! A build is a graph of tasks run in parallel within one budget of cores
//! ([`crate::jobs`]): per platform of each image, loading the base, one
//! task per layer, and assembling config and manifest; per multi-platform
//! image, the index. Layers do not depend on the base, so every layer of
//! every image can be laid down at once; the exception is a layer whose
//! `src` names the platform of an image that takes its platform from the
//! base, which waits for the base. An image is assembled only once its base
//! (another image of the file, for `:NAME`) is. Results are
//! collected in build order, so nothing in the output depends on which
//! task finished first.

mod assemble;
mod expand;
pub mod heal;
pub mod inputs;
mod plan;
pub mod report;

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Instant;

use crate::buildfile::{BuildFile, LayerSpec};
use crate::digest::Digest;
use crate::epoch;
use crate::error::{Error, Result};
use crate::image;
use crate::image::{Artifact, Image, ImageIndex, LayerDesc};
use crate::jobs::{Graph, TaskId};
use crate::layer::{self, compress::CompressOptions, fileset, LayerJob};
use crate::media;
use crate::platform::Platform;
use crate::progress::{Event, Reporter};
use crate::reference::Reference;
use crate::stamp::{Stamp, StampSources};
use crate::store::Store;

pub use assemble::assemble;
pub use expand::expand;

pub const ANNOTATION_BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Seconds since the epoch for every timestamp in the image.
    pub epoch: u64,
    /// The budget of cores for the whole build: images, layers and their
    /// compression together (`--jobs`). Changes speed only, never bytes.
    pub threads: usize,
    /// `Some` to stamp the build with values from git, the clock, status
    /// files and variables; `None` keeps it reproducible.
    pub stamp: Option<StampSources>,
    /// SOURCE_DATE_EPOCH, when set (stamped builds use it for BUILD_TIMESTAMP).
    pub source_date_epoch: Option<u64>,
    /// How registry bases are reached (network, lock, offline).
    pub registry: std::sync::Arc<crate::bases::BaseOptions>,
    /// Build multi-platform images for this platform only, as single
    /// images (`--platform`); `None` builds every platform and the index.
    pub platform: Option<Platform>,
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
            platform: None,
        })
    }
}

/// What a build produced for one image of the build file.
#[derive(Debug, Clone)]
pub struct BuiltImage {
    /// The image's name in the build file.
    pub name: String,
    /// What to write or push.
    pub result: Artifact,
    /// Per platform built, in the build file's order (one entry for a
    /// single-platform image): its manifest and how each layer was made.
    pub platforms: Vec<PlatformReport>,
}

/// One platform of a built image.
#[derive(Debug, Clone)]
pub struct PlatformReport {
    /// `os/arch[/variant]`.
    pub platform: String,
    pub manifest_digest: Digest,
    pub config_digest: Digest,
    /// The image's own layers (not its base's), in order.
    pub layers: Vec<LayerReport>,
    /// When config and manifest were assembled, in milliseconds since the
    /// build started.
    pub started_ms: u64,
    pub finished_ms: u64,
}

#[derive(Debug, Clone)]
pub struct LayerReport {
    pub name: String,
    pub digest: Digest,
    pub diff_id: Digest,
    pub size: u64,
    /// The layer was already in the store and nothing was compressed.
    pub reused: bool,
    /// When the layer was laid down, in milliseconds since the build started.
    pub started_ms: u64,
    pub finished_ms: u64,
}

/// Builds `targets` (every image when empty) and the images they are based
/// on, bases first, in parallel within `opts.threads`. Returns every image
/// built, in build order.
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
    let plan = plan::plan(&order, opts.platform.as_ref())?;

    // Expanded up front, so a stamp problem or two images ending up with
    // one tag is reported before any work is done.
    let mut tags: Vec<Vec<String>> = Vec::new();
    let mut tag_owner: HashMap<String, &str> = HashMap::new();
    for spec in &order {
        let values = expand::expand_spec(spec, &stamp)?;
        let mut refs = if values.tags.is_empty() {
            vec![Reference::parse_tagged(&format!("{}:latest", spec.name))?]
        } else {
            values.tags
        };
        // Two templates of one image may expand alike (both `unstamped`).
        let mut seen = HashSet::new();
        refs.retain(|t| seen.insert(t.to_string()));
        for t in &refs {
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
        tags.push(refs.iter().map(|t| t.to_string()).collect());
    }
    let mut values = Vec::new();
    for node in &plan.nodes {
        values.push(expand::expand_spec(&node.spec, &stamp)?);
    }

    let start = Instant::now();
    let ms = || start.elapsed().as_millis() as u64;
    let n = plan.nodes.len();
    let bases: Vec<Mutex<Option<assemble::Base>>> = (0..n).map(|_| Mutex::new(None)).collect();
    // A layer whose `src` paths name no placeholder is the same for every
    // platform of its image: it is laid down once and shared.
    let mut slot_of: Vec<Vec<usize>> = Vec::new();
    let mut shared: HashMap<(usize, usize), usize> = HashMap::new();
    let mut slots = 0;
    for node in &plan.nodes {
        let mut mine = Vec::new();
        for (l, spec) in order[node.image].layers.iter().enumerate() {
            let slot = if spec.has_placeholders() {
                None
            } else {
                shared.get(&(node.image, l)).copied()
            };
            mine.push(slot.unwrap_or_else(|| {
                slots += 1;
                shared.insert((node.image, l), slots - 1);
                slots - 1
            }));
        }
        slot_of.push(mine);
    }
    let layers: Vec<Mutex<Option<(LayerDesc, LayerReport)>>> =
        (0..slots).map(|_| Mutex::new(None)).collect();
    let mut layer_task: HashMap<usize, TaskId> = HashMap::new();
    let images: Vec<Mutex<Option<(Image, u64, u64)>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let indexes: Vec<Mutex<Option<ImageIndex>>> =
        (0..order.len()).map(|_| Mutex::new(None)).collect();

    let mut graph = Graph::new();
    let mut assembled: Vec<TaskId> = Vec::new();
    for (i, node) in plan.nodes.iter().enumerate() {
        let multi = plan.images[node.image].1;
        let base_deps: Vec<TaskId> = node.base.map(|b| assembled[b]).into_iter().collect();
        let (base_slot, images_ref) = (&bases[i], &images);
        let base_task = graph.add(&base_deps, 0, move |_| {
            let other = node.base.map(|b| {
                images_ref[b]
                    .lock()
                    .expect("slot")
                    .as_ref()
                    .expect("a base is assembled before its dependents")
                    .0
                    .clone()
            });
            let base = assemble::load_base(&node.spec, other.as_ref(), store, opts, reporter)?;
            *base_slot.lock().expect("slot") = Some(base);
            Ok(())
        });
        let mut deps = vec![base_task];
        for (l, spec) in node.spec.layers.iter().enumerate() {
            let slot_index = slot_of[i][l];
            if let Some(task) = layer_task.get(&slot_index) {
                deps.push(*task);
                continue;
            }
            // A platform known only from the base fills placeholders late.
            let late = node.platform.is_none() && spec.has_placeholders();
            let slot = &layers[slot_index];
            let ms = &ms;
            // A layer shared by every platform is the image's, not one child's.
            let label = if order[node.image].layers[l].has_placeholders() {
                &node.label
            } else {
                &node.spec.name
            };
            // Resolved now, so that a missing input fails before any work
            // and the layer's size can share out the cores; a layer that
            // waits for its base's platform is resolved when it runs.
            let (deps_of_layer, entries, weight) = if late {
                (vec![base_task], None, 1)
            } else {
                let entries = resolve(label, spec, opts)?;
                let weight = 1 + layer::input_bytes(&entries);
                (vec![], Some(entries), weight)
            };
            let task = graph.add(&deps_of_layer, weight, move |threads| {
                let started_ms = ms();
                let filled;
                let spec = if late {
                    let guard = base_slot.lock().expect("slot");
                    let base = guard.as_ref().expect("base loaded");
                    match assemble::platform_on(&node.spec, base) {
                        Some(p) => {
                            filled = spec.for_platform(&p);
                            &filled
                        }
                        None => spec,
                    }
                } else {
                    spec
                };
                let entries = match entries {
                    Some(e) => e,
                    None => resolve(label, spec, opts)?,
                };
                let (desc, mut report) = lay_down(label, spec, &entries, threads, store, reporter)?;
                report.started_ms = started_ms;
                report.finished_ms = ms();
                *slot.lock().expect("slot") = Some((desc, report));
                Ok(())
            });
            layer_task.insert(slot_index, task);
            deps.push(task);
        }
        let (values, image_slot, image_tags) = (&values[i], &images[i], &tags[node.image]);
        let (node_slots, layers) = (&slot_of[i], &layers);
        let (ms, stamp) = (&ms, &stamp);
        assembled.push(graph.add(&deps, 0, move |_| {
            let started = ms();
            let base = base_slot.lock().expect("slot").take().expect("base loaded");
            // An image that takes its platform from its base learns it only
            // now, and with it which overrides apply.
            let late = match node.platform {
                None if !node.spec.overrides.is_empty() => {
                    assemble::platform_on(&node.spec, &base).map(|p| node.spec.for_platform(&p))
                }
                _ => None,
            };
            let late_values = late
                .as_ref()
                .map(|spec| expand::expand_spec(spec, stamp))
                .transpose()?;
            let (spec, values) = match (&late, &late_values) {
                (Some(spec), Some(v)) => (spec, v),
                _ => (&node.spec, values),
            };
            let built: Vec<(String, LayerDesc)> = node_slots
                .iter()
                .map(|&s| {
                    let (desc, report) = layers[s]
                        .lock()
                        .expect("slot")
                        .clone()
                        .expect("layer built");
                    (report.name, desc)
                })
                .collect();
            let mut annotations = values.standard_annotations.clone();
            annotations.extend(values.annotations.clone());
            // A child of an index is named by digest; the index carries the tags.
            let tags = if multi {
                Vec::new()
            } else {
                image_tags.clone()
            };
            let image = assemble::finish(spec, values, base, built, &annotations, tags, store)?;
            if !multi {
                reporter.report(Event::ImageBuilt {
                    image: &node.spec.name,
                    digest: &image.manifest_digest,
                });
            }
            *image_slot.lock().expect("slot") = Some((image, started, ms()));
            Ok(())
        }));
    }
    for (k, (nodes, multi)) in plan.images.iter().enumerate() {
        if !multi {
            continue;
        }
        let deps: Vec<TaskId> = nodes.iter().map(|&n| assembled[n]).collect();
        let (images, slot, tags, name) = (&images, &indexes[k], &tags[k], &order[k].name);
        let node_values = &values[nodes[0]];
        graph.add(&deps, 0, move |_| {
            let children: Vec<Image> = nodes
                .iter()
                .map(|&n| {
                    images[n]
                        .lock()
                        .expect("slot")
                        .as_ref()
                        .expect("child")
                        .0
                        .clone()
                })
                .collect();
            let mut annotations = node_values.standard_annotations.clone();
            annotations.extend(node_values.annotations.clone());
            let index = build_index(name, children, tags.clone(), annotations, store)?;
            reporter.report(Event::ImageBuilt {
                image: name,
                digest: &index.digest,
            });
            *slot.lock().expect("slot") = Some(index);
            Ok(())
        });
    }
    graph.run(opts.threads)?;

    let mut out = Vec::new();
    for (k, (nodes, multi)) in plan.images.iter().enumerate() {
        let mut platforms = Vec::new();
        let mut children = Vec::new();
        for &n in nodes {
            let (image, started_ms, finished_ms) = images[n]
                .lock()
                .expect("slot")
                .take()
                .expect("every task ran");
            platforms.push(PlatformReport {
                platform: image.platform(),
                manifest_digest: image.manifest_digest,
                config_digest: image.config_digest,
                layers: slot_of[n]
                    .iter()
                    .map(|&s| {
                        layers[s]
                            .lock()
                            .expect("slot")
                            .clone()
                            .expect("layer built")
                            .1
                    })
                    .collect(),
                started_ms,
                finished_ms,
            });
            children.push(image);
        }
        let result = if *multi {
            Artifact::Index(
                indexes[k]
                    .lock()
                    .expect("slot")
                    .take()
                    .expect("index built"),
            )
        } else {
            Artifact::Image(children.pop().expect("one image"))
        };
        out.push(BuiltImage {
            name: order[k].name.clone(),
            result,
            platforms,
        });
    }
    Ok(out)
}

/// The exact entries of a layer, from the file system.
fn resolve(label: &str, spec: &LayerSpec, opts: &BuildOptions) -> Result<Vec<fileset::Entry>> {
    fileset::resolve(label, spec, spec.mtime.unwrap_or(opts.epoch))
}

/// The bytes of file content a layer reads.
/// Lays down one layer of the image `label` into the store with up to
/// `threads` compression threads.
fn lay_down(
    label: &str,
    spec: &LayerSpec,
    entries: &[fileset::Entry],
    threads: usize,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<(LayerDesc, LayerReport)> {
    let job = LayerJob {
        image: label,
        name: &spec.name,
        entries,
        compress: CompressOptions {
            compression: spec.compression,
            level: spec.compression_level,
            threads,
        },
    };
    let done = layer::build(store, &job, reporter)?;
    let report = LayerReport {
        name: spec.name.clone(),
        digest: done.desc.digest,
        diff_id: done.desc.diff_id,
        size: done.desc.size,
        reused: done.reused,
        started_ms: 0,
        finished_ms: 0,
    };
    Ok((done.desc, report))
}

/// Writes the index over `children` into the store.
pub fn build_index(
    name: &str,
    children: Vec<Image>,
    tags: Vec<String>,
    annotations: std::collections::BTreeMap<String, String>,
    store: &Store,
) -> Result<ImageIndex> {
    let refs: Vec<&Image> = children.iter().collect();
    let bytes = image::oci_index(&refs, &annotations);
    let (digest, _) = store.put(&bytes)?;
    Ok(ImageIndex {
        name: name.to_string(),
        bytes,
        digest,
        media_type: media::OCI_INDEX.to_string(),
        children,
        tags,
        annotations,
    })
}
