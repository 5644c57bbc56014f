//! The task graph of a build: typed work items, each holding the slot its
//! task fills, turned into [`crate::jobs::Graph`] tasks and collected in
//! build order once every task has run.
//!
//! Per node (one platform of one image): loading its base; for a registry
//! base when the build's outputs copy bytes, fetching the base's layers the
//! store lacks; assembling config and manifest. Per layer (shared by the
//! platforms of an image when its `src` names no placeholder): laying it
//! down. Per multi-platform image: the index.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::Instant;

use super::accounts::{self, Prepared};
use super::assemble::{self, Base};
use super::expand::{self, Expanded};
use super::plan::{Node, Plan};
use super::{
    lay_down, resolve, BuildOptions, BuiltImage, FetchLayers, LayerReport, PlatformReport,
};
use crate::buildfile::{BaseSpec, ImageSpec, LayerSpec};
use crate::digest::Digest;
use crate::error::Result;
use crate::image::{Artifact, Image, ImageIndex, LayerDesc};
use crate::jobs::{Graph, Spare, TaskId};
use crate::layer::SpareCores;
use crate::layer::{self, fileset};
use crate::progress::{Event, Reporter};
use crate::stamp::Stamp;
use crate::store::Store;

/// A task's result: filled once by its task, read by the tasks that depend
/// on it and, at the end, by the collection in build order.
struct Slot<T>(OnceLock<T>);

impl<T> Slot<T> {
    fn new() -> Slot<T> {
        Slot(OnceLock::new())
    }

    fn fill(&self, value: T) {
        // Each task runs once, so a slot is never filled twice.
        let _ = self.0.set(value);
    }

    fn get(&self) -> &T {
        self.0
            .get()
            .expect("the graph runs a task only after the tasks it depends on")
    }

    fn into_inner(self) -> T {
        self.0.into_inner().expect("every task ran")
    }
}

/// What the tasks share: where blobs go, how to reach bases, whom to tell.
pub(super) struct Context<'a> {
    pub(super) store: &'a Store,
    pub(super) opts: &'a BuildOptions,
    pub(super) reporter: &'a dyn Reporter,
    pub(super) stamp: &'a Stamp,
    pub(super) start: Instant,
}

impl Context<'_> {
    /// Milliseconds since the build started.
    fn ms(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }
}

/// One platform of one image: its base, then its image.
struct NodeWork<'p> {
    node: &'p Node,
    /// A child of an index (named by digest, untagged).
    multi: bool,
    /// The node's settings with stamp templates filled in.
    values: Expanded,
    /// The image's tags (for a child of an index, the index's).
    tags: &'p [String],
    /// The node's layers, in order, as indexes into [`Work::layers`].
    layers: Vec<usize>,
    base: Slot<Base>,
    /// The image, and when it was assembled (ms since the build started).
    image: Slot<(Image, u64, u64)>,
    /// The next of the base's layers a fetch task takes.
    next_fetch: AtomicUsize,
    /// What its base holds, and the `accounts` layer when the image
    /// declares one; filled only for a node that [`Work::needs_prepared`].
    prepared: Slot<Prepared>,
    /// The image's own layers as assembled, in order: the `accounts` layer,
    /// then the declared ones (each laid down again for this node when its
    /// implied parents had to take the base's owner and mode).
    own_layers: Slot<Vec<(LayerDesc, LayerReport)>>,
}

/// One layer, laid down once for every node that shares it.
struct LayerWork<'p> {
    /// The node that lays it down: the first one that has it.
    node: usize,
    spec: &'p LayerSpec,
    /// How the layer names its image: the image's, when every platform
    /// shares it; the node's label otherwise.
    label: &'p str,
    /// Resolved while planning; `None` for a layer whose `src` waits for
    /// the platform of the base.
    entries: Option<fileset::Resolved>,
    /// The entries of a layer resolved only when it ran.
    late: Slot<fileset::Resolved>,
    /// Input bytes (plus one), to share out the free threads by.
    weight: u64,
    out: Slot<(LayerDesc, LayerReport)>,
}

/// A multi-platform image: the index over its nodes.
struct IndexWork<'p> {
    /// The image, in build order.
    image: usize,
    nodes: &'p [usize],
    out: Slot<ImageIndex>,
}

/// Every task of a build, planned, with their slots.
pub(super) struct Work<'p> {
    order: &'p [&'p ImageSpec],
    plan: &'p Plan,
    nodes: Vec<NodeWork<'p>>,
    layers: Vec<LayerWork<'p>>,
    indexes: Vec<IndexWork<'p>>,
    /// Digests of the base layers a fetch task has taken, so that images on
    /// one base fetch each layer once.
    fetching: Mutex<HashSet<Digest>>,
}

impl<'p> Work<'p> {
    /// Plans the work: stamp values expanded and every layer's inputs
    /// resolved up front, so a problem fails before any work is done.
    pub(super) fn new(
        order: &'p [&'p ImageSpec],
        plan: &'p Plan,
        tags: &'p [Vec<String>],
        stamp: &Stamp,
        opts: &BuildOptions,
    ) -> Result<Work<'p>> {
        let mut nodes = Vec::new();
        for node in &plan.nodes {
            nodes.push(NodeWork {
                node,
                multi: plan.images[node.image].1,
                values: expand::expand_spec(&node.spec, stamp)?,
                tags: &tags[node.image],
                layers: Vec::new(),
                base: Slot::new(),
                image: Slot::new(),
                next_fetch: AtomicUsize::new(0),
                prepared: Slot::new(),
                own_layers: Slot::new(),
            });
        }
        let mut work = Work {
            order,
            plan,
            nodes,
            layers: Vec::new(),
            indexes: Vec::new(),
            fetching: Mutex::new(HashSet::new()),
        };
        work.plan_layers(opts)?;
        for (image, (nodes, multi)) in plan.images.iter().enumerate() {
            if *multi {
                work.indexes.push(IndexWork {
                    image,
                    nodes,
                    out: Slot::new(),
                });
            }
        }
        Ok(work)
    }

    /// One layer task per layer of each node, except that a layer whose
    /// `src` paths name no placeholder is the same for every platform of
    /// its image: it is laid down once and shared.
    fn plan_layers(&mut self, opts: &BuildOptions) -> Result<()> {
        let plan = self.plan;
        for (i, node) in plan.nodes.iter().enumerate() {
            let declared = &self.order[node.image].layers;
            let first = plan.images[node.image].0[0];
            for (l, spec) in node.spec.layers.iter().enumerate() {
                let shared = !declared[l].has_placeholders();
                if shared && first != i {
                    let layer = self.nodes[first].layers[l];
                    self.nodes[i].layers.push(layer);
                    continue;
                }
                // A layer shared by every platform is the image's, not one
                // child's.
                let label = if shared { &node.spec.name } else { &node.label };
                // A layer that waits for its base's platform is resolved
                // when it runs.
                let late = node.platform.is_none() && spec.has_placeholders();
                let entries = (!late).then(|| resolve(label, spec, opts)).transpose()?;
                let weight = 1 + entries
                    .as_ref()
                    .map_or(0, |r| layer::input_bytes(&r.entries));
                self.layers.push(LayerWork {
                    node: i,
                    spec,
                    label,
                    entries,
                    late: Slot::new(),
                    weight,
                    out: Slot::new(),
                });
                self.nodes[i].layers.push(self.layers.len() - 1);
            }
        }
        Ok(())
    }

    /// Runs every task within the build's budget; the first failure stops
    /// new tasks and is returned.
    pub(super) fn run(&self, cx: &Context<'_>) -> Result<()> {
        let mut graph = Graph::new();
        let mut assembled: Vec<TaskId> = Vec::new();
        let mut layer_tasks: Vec<Option<TaskId>> = vec![None; self.layers.len()];
        for (i, n) in self.nodes.iter().enumerate() {
            let base_deps: Vec<TaskId> = n.node.base.map(|b| assembled[b]).into_iter().collect();
            let base = graph.add(&base_deps, 0, move |_| self.load_base(i, cx));
            let fetch = match &cx.opts.fetch_layers {
                FetchLayers::None => false,
                FetchLayers::All => true,
                FetchLayers::OnePlatform(p) => !n.multi || n.node.platform.as_ref() == Some(p),
            };
            if fetch && matches!(n.node.spec.base, BaseSpec::Registry(_)) {
                // As many fetchers as the budget could run at once; each
                // takes the next layer the store lacks until none is left.
                for _ in 0..cx.opts.threads.max(1) {
                    graph.add(&[base], 0, move |_| self.fetch_base_layers(i, cx));
                }
            }
            let mut deps = vec![base];
            if self.needs_prepared(i) {
                deps.push(graph.add(&[base], 1, move |threads| self.prepare(i, threads, cx)));
            }
            for &l in &n.layers {
                let task = *layer_tasks[l].get_or_insert_with(|| {
                    let w = &self.layers[l];
                    let after: &[TaskId] = if w.entries.is_none() { &[base] } else { &[] };
                    graph.add_with_spare(after, w.weight, move |threads, spare| {
                        self.lay(l, threads, spare, cx)
                    })
                });
                deps.push(task);
            }
            assembled.push(graph.add(&deps, 0, move |_| self.assemble(i, cx)));
        }
        for (k, x) in self.indexes.iter().enumerate() {
            let deps: Vec<TaskId> = x.nodes.iter().map(|&n| assembled[n]).collect();
            graph.add(&deps, 0, move |_| self.index(k, cx));
        }
        graph.run(cx.opts.threads)
    }

    fn load_base(&self, i: usize, cx: &Context<'_>) -> Result<()> {
        let n = &self.nodes[i];
        let other = n.node.base.map(|b| &self.nodes[b].image.get().0);
        let base = assemble::load_base(&n.node.spec, other, cx.store, cx.opts, cx.reporter)?;
        n.base.fill(base);
        Ok(())
    }

    /// Whether node `i` looks into its base: for accounts or a named user,
    /// or because a layer may hold implied parents the image below it has
    /// (scratch has none, unless accounts made them; a layer resolved late
    /// may have some).
    fn needs_prepared(&self, i: usize) -> bool {
        let n = &self.nodes[i];
        let spec = &n.node.spec;
        let below = !matches!(spec.base, BaseSpec::Scratch) || spec.accounts.is_some();
        accounts::needs_view(spec)
            || below
                && n.layers.iter().any(|&l| {
                    let w = &self.layers[l];
                    w.entries.as_ref().is_none_or(|r| r.has_implied())
                })
    }

    /// Looks into node `i`'s base and lays down its `accounts` layer.
    fn prepare(&self, i: usize, threads: usize, cx: &Context<'_>) -> Result<()> {
        let n = &self.nodes[i];
        let started_ms = cx.ms();
        let spec = &n.node.spec;
        let mut view = accounts::view(spec, n.base.get(), cx.store, cx.opts, cx.reporter)?;
        let layer = match &spec.accounts {
            Some(declared) => {
                let opts = BuildOptions {
                    threads,
                    ..cx.opts.clone()
                };
                let mut layer = accounts::lay_accounts(
                    spec,
                    &n.node.label,
                    declared,
                    &mut view,
                    cx.store,
                    &opts,
                    cx.reporter,
                )?;
                layer.built.1.started_ms = started_ms;
                layer.built.1.finished_ms = cx.ms();
                Some(layer)
            }
            None => None,
        };
        n.prepared.fill(Prepared { view, layer });
        Ok(())
    }

    /// Fetches the layers of node `i`'s base that the store lacks, one
    /// after another, sharing them out with the node's other fetch tasks.
    fn fetch_base_layers(&self, i: usize, cx: &Context<'_>) -> Result<()> {
        let n = &self.nodes[i];
        let Some(base) = &n.base.get().image else {
            return Ok(());
        };
        loop {
            let k = n.next_fetch.fetch_add(1, Ordering::Relaxed);
            let Some(l) = base.layers.get(k) else {
                return Ok(());
            };
            let mut fetching = self.fetching.lock().unwrap_or_else(PoisonError::into_inner);
            if !fetching.insert(l.digest) {
                continue;
            }
            drop(fetching);
            let name = &n.node.spec.name;
            cx.opts
                .registry
                .fetch_layer(name, l, cx.store, cx.reporter)?;
        }
    }

    fn lay(&self, l: usize, threads: usize, spare: &Spare<'_>, cx: &Context<'_>) -> Result<()> {
        let started_ms = cx.ms();
        let w = &self.layers[l];
        let node = &self.nodes[w.node];
        let filled;
        let spec = match &w.entries {
            // A platform known only from the base fills placeholders late.
            None => match assemble::platform_on(&node.node.spec, node.base.get()) {
                Some(p) => {
                    filled = w.spec.for_platform(&p);
                    &filled
                }
                None => w.spec,
            },
            Some(_) => w.spec,
        };
        let resolved = match &w.entries {
            Some(e) => e,
            None => {
                w.late.fill(resolve(w.label, spec, cx.opts)?);
                w.late.get()
            }
        };
        let (desc, mut report) = lay_down(
            w.label,
            spec,
            &resolved.entries,
            super::Cores {
                threads,
                spare: Some(spare),
            },
            cx.store,
            cx.opts,
            cx.reporter,
        )?;
        report.started_ms = started_ms;
        report.finished_ms = cx.ms();
        w.out.fill((desc, report));
        Ok(())
    }

    fn assemble(&self, i: usize, cx: &Context<'_>) -> Result<()> {
        let started = cx.ms();
        let n = &self.nodes[i];
        let base = n.base.get();
        // An image that takes its platform from its base learns it only
        // now, and with it which overrides apply.
        let late = match n.node.platform {
            None if !n.node.spec.overrides.is_empty() => {
                assemble::platform_on(&n.node.spec, base).map(|p| n.node.spec.for_platform(&p))
            }
            _ => None,
        };
        let late_values = late
            .as_ref()
            .map(|spec| expand::expand_spec(spec, cx.stamp))
            .transpose()?;
        let (spec, values) = match (&late, &late_values) {
            (Some(spec), Some(v)) => (spec, v),
            _ => (&n.node.spec, &n.values),
        };
        let own = self.own_layers(i, cx)?;
        let built: Vec<(String, LayerDesc)> = own
            .iter()
            .map(|(desc, report)| (report.name.clone(), desc.clone()))
            .collect();
        n.own_layers.fill(own);
        let mut annotations = values.standard_annotations.clone();
        annotations.extend(values.annotations.clone());
        // A child of an index is named by digest; the index carries the tags.
        let tags = if n.multi { Vec::new() } else { n.tags.to_vec() };
        let image = assemble::finish(spec, values, base, built, &annotations, tags, cx.store)?;
        // Said once per image: the platforms of one image share its
        // declaration, and nearly always their base's triggers.
        let first = self.plan.images[n.node.image].0[0] == i;
        if let Some(message) = assemble::onbuild_warning(spec, base).filter(|_| first) {
            cx.reporter.report(Event::Warning { message: &message });
        }
        if !n.multi {
            cx.reporter.report(Event::ImageBuilt {
                image: &n.node.spec.name,
                digest: &image.manifest_digest,
            });
        }
        n.image.fill((image, started, cx.ms()));
        Ok(())
    }

    /// Node `i`'s own layers in order, with the named user checked. A
    /// layer with implied parents that the image below has as directories
    /// of another owner or mode is laid down again for this node with the
    /// base's (see [`fileset::Resolved::over_base`]). Doing that here, after
    /// the fact, rather than making every layer wait for its base keeps
    /// layers independent of bases: the base's `/usr` or `/opt` is nearly
    /// always root-owned 0755, as the layer has it already.
    fn own_layers(&self, i: usize, cx: &Context<'_>) -> Result<Vec<(LayerDesc, LayerReport)>> {
        let n = &self.nodes[i];
        let resolved = |l: usize| {
            let w = &self.layers[l];
            w.entries.as_ref().unwrap_or_else(|| w.late.get())
        };
        let Some(prepared) = n.prepared.0.get() else {
            return Ok(n
                .layers
                .iter()
                .map(|&l| self.layers[l].out.get().clone())
                .collect());
        };
        let declared: Vec<&[fileset::Entry]> = n
            .layers
            .iter()
            .map(|&l| resolved(l).entries.as_slice())
            .collect();
        let spec = &n.node.spec;
        accounts::check_user(spec, &prepared.view, &declared, n.base.get().image.as_ref())?;
        let mut out = Vec::new();
        if let Some(layer) = &prepared.layer {
            out.push(layer.built.clone());
        }
        for &l in &n.layers {
            let w = &self.layers[l];
            let r = resolved(l);
            let kept = r.over_base(|p| prepared.dir(p));
            if kept == r.entries {
                out.push(w.out.get().clone());
                continue;
            }
            let started_ms = cx.ms();
            // Only the name and compression of the spec are read here.
            let (desc, mut report) = lay_down(
                &n.node.label,
                w.spec,
                &kept,
                super::Cores::only(1),
                cx.store,
                cx.opts,
                cx.reporter,
            )?;
            report.started_ms = started_ms;
            report.finished_ms = cx.ms();
            out.push((desc, report));
        }
        Ok(out)
    }

    fn index(&self, k: usize, cx: &Context<'_>) -> Result<()> {
        let x = &self.indexes[k];
        let children: Vec<Image> = x
            .nodes
            .iter()
            .map(|&n| self.nodes[n].image.get().0.clone())
            .collect();
        let first = &self.nodes[x.nodes[0]];
        let mut annotations = first.values.standard_annotations.clone();
        annotations.extend(first.values.annotations.clone());
        let name = &self.order[x.image].name;
        let tags = first.tags.to_vec();
        let index = super::build_index(name, children, tags, annotations, cx.store)?;
        cx.reporter.report(Event::ImageBuilt {
            image: name,
            digest: &index.digest,
        });
        x.out.fill(index);
        Ok(())
    }

    /// Every image built, in build order, once [`Work::run`] succeeded.
    pub(super) fn collect(self) -> Vec<BuiltImage> {
        let reports: Vec<Vec<LayerReport>> = self
            .nodes
            .iter()
            .map(|n| n.own_layers.get().iter().map(|(_, r)| r.clone()).collect())
            .collect();
        // The plan lists each image's nodes together, images in build order.
        let mut built = self.nodes.into_iter().zip(reports);
        let mut indexes = self.indexes.into_iter().map(|x| x.out.into_inner());
        let mut out = Vec::new();
        for (k, (nodes, multi)) in self.plan.images.iter().enumerate() {
            let mut platforms = Vec::new();
            let mut children = Vec::new();
            for (_, (n, layers)) in nodes.iter().zip(built.by_ref()) {
                let (image, started_ms, finished_ms) = n.image.into_inner();
                platforms.push(PlatformReport {
                    platform: image.platform(),
                    manifest_digest: image.manifest_digest,
                    config_digest: image.config_digest,
                    layers,
                    started_ms,
                    finished_ms,
                });
                children.push(image);
            }
            let result = if *multi {
                Artifact::Index(indexes.next().expect("an index per multi-platform image"))
            } else {
                Artifact::Image(children.pop().expect("one node per single image"))
            };
            out.push(BuiltImage {
                name: self.order[k].name.clone(),
                result,
                platforms,
                referrers: Vec::new(),
            });
        }
        out
    }
}

impl SpareCores for Spare<'_> {
    fn take(&self, max: usize) -> usize {
        Spare::take(self, max)
    }

    fn give_back(&self, n: usize) {
        Spare::give_back(self, n)
    }

    fn aside(&self, tokens: usize, f: &mut dyn FnMut()) {
        Spare::aside(self, tokens, f)
    }
}
