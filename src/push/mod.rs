//! Pushing built images to registries.
//!
//! Every blob is asked for once (`HEAD`) in each target repository and is
//! skipped when there. A missing blob that another repository of the same
//! registry is known to hold (the base image's, or one pushed to earlier)
//! is mounted from it; anything else is uploaded, streamed from the store or
//! straight from the registry a base layer came from. Blobs go up in
//! parallel, and only when every blob of every target is in place are
//! manifests put, so a failure leaves no tag pointing at an image whose
//! blobs are missing.
//!
//! Repositories of one registry are filled one after another (in the order
//! the targets name them), so that a blob uploaded to the first can be
//! mounted into the others instead of being sent again.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::digest::{Digest, VerifyingReader};
use crate::error::{Error, Result};
use crate::image::{Artifact, Image};
use crate::jobs;
pub use crate::progress::BlobAction;
use crate::progress::{Event, Reporter};
use crate::reference::Reference;
use crate::registry::{Access, Client, MountOutcome, Repo};
use crate::sbom::artifact::Referrer;
use crate::store::Store;

mod cache_to;
mod early;
mod referrers;
mod targets;
pub use cache_to::push_cache;
pub use early::Early;
pub use targets::{build_and_push, targets};

/// How a push runs.
#[derive(Debug, Clone)]
pub struct PushOptions {
    /// Blobs in flight at once.
    pub jobs: usize,
    /// Also push a cache manifest of the layers built here (`--cache-to`).
    pub cache_to: Option<Reference>,
}

impl Default for PushOptions {
    fn default() -> Self {
        PushOptions {
            jobs: 4,
            cache_to: None,
        }
    }
}

/// A manifest as pushed: these exact bytes, under this media type.
#[derive(Debug, Clone, Copy)]
pub struct ManifestBytes<'a> {
    /// The digest of `bytes`, which a child is put under.
    pub digest: Digest,
    /// The `Content-Type` the manifest is put with.
    pub media_type: &'a str,
    /// The manifest, exactly as its digest names it.
    pub bytes: &'a [u8],
}

/// What one image (single- or multi-platform) puts into a repository, and
/// the references to push it to.
#[derive(Debug, Clone)]
pub struct PushRequest<'a> {
    /// The image's name in the build file, for the report.
    pub name: &'a str,
    /// The manifest the tags point at: an image manifest or an index.
    pub top: ManifestBytes<'a>,
    /// Manifests `top` names (an index's per-platform images), put by
    /// digest before it.
    pub children: Vec<ManifestBytes<'a>>,
    /// Every blob the manifests name, configs first.
    pub blobs: Vec<(Digest, u64)>,
    /// Tagged references; a digest in them is refused by the caller.
    pub targets: Vec<Reference>,
    /// Documents about the images (SBOM, provenance), put and listed as
    /// their referrers once the manifests are in place.
    pub referrers: &'a [Referrer],
}

impl<'a> PushRequest<'a> {
    /// What pushing `artifact` to `targets` puts: an index's children by
    /// digest, then the manifest or index the tags name.
    pub fn new(artifact: &'a Artifact, targets: Vec<Reference>) -> PushRequest<'a> {
        let mut blobs: Vec<(Digest, u64)> = Vec::new();
        for image in artifact.images() {
            for b in image_blobs(image) {
                if !blobs.contains(&b) {
                    blobs.push(b);
                }
            }
        }
        let children = match artifact {
            Artifact::Image(_) => Vec::new(),
            Artifact::Index(index) => index.children.iter().map(manifest_of).collect(),
        };
        PushRequest {
            name: artifact.name(),
            top: ManifestBytes {
                digest: *artifact.digest(),
                media_type: artifact.media_type(),
                bytes: artifact.bytes(),
            },
            children,
            blobs,
            targets,
            referrers: &[],
        }
    }

    /// The same request, with `referrers` attached to its images: their
    /// blobs go up with the image's (and, not being the image's, are left
    /// out of its report).
    pub fn with_referrers(mut self, referrers: &'a [Referrer]) -> PushRequest<'a> {
        self.referrers = referrers;
        self
    }
}

fn manifest_of(image: &Image) -> ManifestBytes<'_> {
    ManifestBytes {
        digest: image.manifest_digest,
        media_type: &image.manifest_media_type,
        bytes: &image.manifest_bytes,
    }
}

/// What happened to one blob in one repository.
#[derive(Debug, Clone, Serialize)]
pub struct BlobReport {
    /// `registry/repository`.
    pub repository: String,
    /// The blob.
    pub digest: Digest,
    /// Its size in bytes.
    pub size: u64,
    /// Skipped, mounted or uploaded.
    pub action: BlobAction,
    /// The repository it was mounted from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// What a push did for one image.
#[derive(Debug, Clone, Serialize)]
pub struct ImageReport {
    /// The image's name in the build file.
    pub name: String,
    /// The manifest or index the references point at.
    pub digest: Digest,
    /// Every reference pushed, as `registry/repository:tag@digest`.
    pub references: Vec<String>,
    /// Each blob of the image in each repository it was pushed to.
    pub blobs: Vec<BlobReport>,
    /// How the build made each of the image's own layers, per platform.
    pub layers: Vec<LayerStatus>,
}

/// How one layer of a pushed image was made.
#[derive(Debug, Clone, Serialize)]
pub struct LayerStatus {
    /// `os/arch[/variant]` of the image it belongs to.
    pub platform: String,
    /// The layer's name in the build file.
    pub name: String,
    /// The compressed blob.
    pub digest: Digest,
    /// `rebuilt`, `reused` or `cached`, as in the build report.
    pub status: &'static str,
    /// For `cached`, the cache source it was found through.
    pub cached_from: Option<String>,
}

/// What a push did, as `--metadata-file` writes it.
#[derive(Debug, Clone, Serialize)]
pub struct PushReport {
    /// One per image pushed, in the order asked.
    pub images: Vec<ImageReport>,
    /// The cache manifest pushed (`--cache-to`), as `registry/repository:tag@digest`.
    pub cache: Option<String>,
}

/// One repository of one registry and what goes into it.
struct RepoPlan {
    /// The repository, without tag or digest.
    target: Reference,
    /// Unique blobs, in first-seen order.
    blobs: Vec<(Digest, u64)>,
    /// (tag, index of the request).
    tags: Vec<(String, usize)>,
}

impl RepoPlan {
    fn name(&self) -> String {
        self.target.name()
    }

    fn host(&self) -> &str {
        self.target.registry_host()
    }

    fn repository(&self) -> &str {
        &self.target.repository
    }

    /// The repository, contacted to push into it.
    fn push_to<'a>(&'a self, what: &'a str, reporter: &'a dyn Reporter) -> Repo<'a> {
        Repo {
            host: self.host(),
            repository: self.repository(),
            what,
            access: Access::Push { mount_from: None },
            reporter,
        }
    }
}

/// Pushes every request's image to each of its targets. Returns what was
/// done; on failure, says what failed and what had been tagged by then.
/// `early`, if given, has been asking about the last push to the same
/// targets; its answers stand in for the same questions.
pub fn push(
    requests: &[PushRequest<'_>],
    store: &Store,
    client: &Client,
    opts: &PushOptions,
    early: Option<Early>,
    reporter: &dyn Reporter,
) -> Result<PushReport> {
    let plans = plan(requests);
    let answers = early.map(Early::answers).unwrap_or_default();
    let run = Run {
        store,
        client,
        reporter,
        answers: &answers,
        known: Mutex::new(HashMap::new()),
        blobs: Mutex::new(Vec::new()),
        active: Mutex::new(Vec::new()),
    };
    let current = put_blobs(&run, &plans, requests, opts)?;
    // Every blob is in place: now the tags.
    let references = put_tags(&run, &plans, requests, &current)?;
    referrers::attach(&plans, requests, client, reporter).map_err(|e| Error::Push {
        failed: Box::new(e),
        tagged: references.iter().flatten().cloned().collect(),
    })?;
    let blobs = run.blobs.into_inner().expect("blobs lock");
    Ok(report(&plans, requests, references, blobs))
}

/// What each tag of each plan names now, by (plan, tag).
type CurrentTags = HashMap<(usize, String), Option<Digest>>;

/// Puts every blob of every plan, the k-th repository of every registry in
/// the k-th phase; returns what the tags named meanwhile.
fn put_blobs(
    run: &Run<'_>,
    plans: &[RepoPlan],
    requests: &[PushRequest<'_>],
    opts: &PushOptions,
) -> Result<CurrentTags> {
    let mut by_registry: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, p) in plans.iter().enumerate() {
        by_registry.entry(p.host()).or_default().push(i);
    }
    let phases = by_registry.values().map(Vec::len).max().unwrap_or(0);
    // What each tag points at now is asked while the blobs go up: reading
    // it changes nothing, and a warm push then waits for no request after
    // its blob HEADs.
    let mut current = HashMap::new();
    std::thread::scope(|s| -> Result<()> {
        let asked =
            s.spawn(|| current_tags(plans, requests, run.client, run.answers, run.reporter));
        for k in 0..phases {
            let mut tasks = Vec::new();
            for repos in by_registry.values() {
                if let Some(&i) = repos.get(k) {
                    tasks.extend(plans[i].blobs.iter().map(|&(d, s)| (i, d, s)));
                }
            }
            run.parallel(plans, &tasks, opts.jobs.max(1))
                .map_err(|e| Error::Push {
                    failed: Box::new(e),
                    tagged: Vec::new(),
                })?;
        }
        current = asked.join().unwrap_or_default();
        Ok(())
    })?;
    Ok(current)
}

/// Points every tag at its manifest (children first), and records what was
/// pushed for the next push's early questions. Returns, per request, the
/// references pushed; on failure, says what had been tagged by then.
fn put_tags(
    run: &Run<'_>,
    plans: &[RepoPlan],
    requests: &[PushRequest<'_>],
    current: &CurrentTags,
) -> Result<Vec<Vec<String>>> {
    let (client, reporter) = (run.client, run.reporter);
    let mut references: Vec<Vec<String>> = vec![Vec::new(); requests.len()];
    let mut tagged = Vec::new();
    for (plan_index, p) in plans.iter().enumerate() {
        let mut children_done = BTreeSet::new();
        for (tag, i) in &p.tags {
            let request = &requests[*i];
            let top = request.top;
            let full = format!("{}:{tag}", p.name());
            let what = format!("manifest {full}");
            let at = p.push_to(&what, reporter);
            // Children first: a registry refuses an index naming manifests
            // it does not have.
            let children: &[ManifestBytes] = if children_done.insert(*i) {
                &request.children
            } else {
                &[]
            };
            let result = children
                .iter()
                .try_for_each(|c| {
                    let by_digest = c.digest.to_string();
                    if client.manifest_digest(&at, &by_digest, c.media_type)? != Some(c.digest) {
                        client.put_manifest(&at, &by_digest, c.media_type, c.bytes)?;
                    }
                    Ok(())
                })
                .and_then(|()| match current.get(&(plan_index, tag.clone())) {
                    Some(d) => Ok(*d),
                    None => client.manifest_digest(&at, tag, top.media_type),
                })
                .and_then(|current| {
                    let unchanged = current == Some(top.digest);
                    if !unchanged {
                        client.put_manifest(&at, tag, top.media_type, top.bytes)?;
                    }
                    Ok(unchanged)
                });
            let unchanged = result.map_err(|e| Error::Push {
                failed: Box::new(e),
                tagged: tagged.clone(),
            })?;
            reporter.report(Event::ManifestPushed {
                reference: &full,
                digest: &top.digest,
                unchanged,
            });
            let blobs: Vec<Digest> = request.blobs.iter().map(|(d, _)| *d).collect();
            early::record(run.store, &full, top.media_type, &blobs);
            early::record_reference(run.store, &full);
            let pushed = format!("{full}@{}", top.digest);
            tagged.push(pushed.clone());
            references[*i].push(pushed);
        }
    }
    Ok(references)
}

/// The report of a push, in the order of the requests and their blobs.
fn report(
    plans: &[RepoPlan],
    requests: &[PushRequest<'_>],
    references: Vec<Vec<String>>,
    mut blobs: Vec<BlobReport>,
) -> PushReport {
    // Parallel work finishes in any order; the report does not.
    let rank = |b: &BlobReport| {
        plans
            .iter()
            .enumerate()
            .find_map(|(i, p)| {
                let j = p.blobs.iter().position(|(d, _)| *d == b.digest)?;
                (p.name() == b.repository).then_some((i, j))
            })
            .unwrap_or((usize::MAX, usize::MAX))
    };
    blobs.sort_by_cached_key(rank);
    let images = requests
        .iter()
        .zip(references)
        .map(|(r, references)| {
            let mine: BTreeSet<Digest> = r.blobs.iter().map(|(d, _)| *d).collect();
            let targets: BTreeSet<String> = r.targets.iter().map(Reference::name).collect();
            ImageReport {
                name: r.name.to_string(),
                digest: r.top.digest,
                references,
                blobs: blobs
                    .iter()
                    .filter(|b| mine.contains(&b.digest) && targets.contains(&b.repository))
                    .cloned()
                    .collect(),
                layers: Vec::new(),
            }
        })
        .collect();
    PushReport {
        images,
        cache: None,
    }
}

/// The digest each tag of each plan names now (`None`: no such tag); a tag
/// that could not be asked is left out, to be asked again when tagging.
fn current_tags(
    plans: &[RepoPlan],
    requests: &[PushRequest<'_>],
    client: &Client,
    answers: &early::Answers,
    reporter: &dyn Reporter,
) -> HashMap<(usize, String), Option<Digest>> {
    let mut out = HashMap::new();
    for (i, p) in plans.iter().enumerate() {
        for (tag, r) in &p.tags {
            let media_type = requests[*r].top.media_type;
            if let Some(d) = answers.tag(p.host(), p.repository(), tag, media_type) {
                out.insert((i, tag.clone()), d);
                continue;
            }
            let what = format!("manifest {}:{tag}", p.name());
            let at = p.push_to(&what, reporter);
            if let Ok(d) = client.manifest_digest(&at, tag, media_type) {
                out.insert((i, tag.clone()), d);
            }
        }
    }
    out
}

/// Config first, then layers: the blobs a manifest names.
fn image_blobs(image: &Image) -> impl Iterator<Item = (Digest, u64)> + '_ {
    std::iter::once((image.config_digest, image.config_bytes.len() as u64))
        .chain(image.layers.iter().map(|l| (l.digest, l.size)))
}

/// Groups the requests by target repository, in the order targets appear.
fn plan(requests: &[PushRequest<'_>]) -> Vec<RepoPlan> {
    let mut plans: Vec<RepoPlan> = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        for t in &r.targets {
            let idx = match plans.iter().position(|p| p.name() == t.name()) {
                Some(idx) => idx,
                None => {
                    plans.push(RepoPlan {
                        target: Reference {
                            tag: None,
                            digest: None,
                            ..t.clone()
                        },
                        blobs: Vec::new(),
                        tags: Vec::new(),
                    });
                    plans.len() - 1
                }
            };
            let p = &mut plans[idx];
            let documents = r.referrers.iter().flat_map(|x| x.blobs());
            for b in r
                .blobs
                .iter()
                .copied()
                .chain(documents)
                .collect::<Vec<_>>()
                .iter()
            {
                if !p.blobs.iter().any(|(d, _)| *d == b.0) {
                    p.blobs.push(*b);
                }
            }
            let tag = t.tag.clone().unwrap_or_else(|| "latest".into());
            if !p.tags.contains(&(tag.clone(), i)) {
                p.tags.push((tag, i));
            }
        }
    }
    plans
}

struct Run<'a> {
    store: &'a Store,
    client: &'a Client,
    reporter: &'a dyn Reporter,
    /// Asked while the build ran.
    answers: &'a early::Answers,
    /// Repositories of this run known to hold a blob, by (host, digest).
    known: Mutex<HashMap<(String, Digest), Vec<String>>>,
    blobs: Mutex<Vec<BlobReport>>,
    /// Uploads in flight and their byte counters, for progress.
    active: Mutex<Vec<(String, Digest, Arc<AtomicU64>)>>,
}

impl Run<'_> {
    /// Runs `tasks` on `jobs` threads; the first failure stops the others
    /// from starting new work and is returned.
    fn parallel(
        &self,
        plans: &[RepoPlan],
        tasks: &[(usize, Digest, u64)],
        jobs: usize,
    ) -> Result<()> {
        let done = (Mutex::new(false), Condvar::new());
        std::thread::scope(|s| {
            // One thread turns byte counters into progress events, since the
            // uploads themselves are inside blocking sends. It is woken when
            // the work ends rather than polled, so it adds no latency.
            s.spawn(|| {
                let (lock, cv) = &done;
                let mut finished = lock.lock().expect("done lock");
                while !*finished {
                    finished = cv
                        .wait_timeout(finished, Duration::from_millis(100))
                        .expect("done lock")
                        .0;
                    for (target, digest, n) in self.active.lock().expect("active lock").iter() {
                        self.reporter.report(Event::PushProgress {
                            target,
                            digest,
                            done: n.load(Ordering::Relaxed),
                        });
                    }
                }
            });
            // Set however the work ends, a panic included, or the scope
            // would wait for the progress thread forever.
            struct Done<'d>(&'d (Mutex<bool>, Condvar));
            impl Drop for Done<'_> {
                fn drop(&mut self) {
                    *self.0 .0.lock().unwrap_or_else(|e| e.into_inner()) = true;
                    self.0 .1.notify_all();
                }
            }
            let _done = Done(&done);
            jobs::for_each_parallel(tasks, jobs, |&(p, digest, size)| {
                self.one(&plans[p], digest, size)
            })
            .map(|_| ())
        })
    }

    /// One blob into one repository.
    fn one(&self, p: &RepoPlan, digest: Digest, size: u64) -> Result<()> {
        let target = p.name();
        let what = format!("blob {digest} for {target}");
        let at = p.push_to(&what, self.reporter);
        let mut from = None;
        let there = match self.answers.blob(p.host(), p.repository(), &digest) {
            Some(there) => there,
            None => self.client.blob_exists(&at, &digest)?,
        };
        let action = if there {
            BlobAction::Skipped
        } else {
            self.reporter.report(Event::PushStarted {
                target: &target,
                digest: &digest,
                size,
            });
            let candidate = self.mount_candidate(p, &digest);
            let counter = Arc::new(AtomicU64::new(0));
            self.active.lock().expect("active lock").push((
                target.clone(),
                digest,
                counter.clone(),
            ));
            let source = |/* one attempt */| self.open(&digest, size, counter.clone());
            let outcome = self
                .client
                .push_blob(&at, &digest, size, candidate.as_deref(), &source);
            self.active
                .lock()
                .expect("active lock")
                .retain(|(t, d, _)| !(t == &target && *d == digest));
            match outcome? {
                MountOutcome::Mounted => {
                    from = candidate.map(|c| format!("{}/{c}", p.target.registry));
                    BlobAction::Mounted
                }
                MountOutcome::Uploaded => BlobAction::Uploaded,
            }
        };
        self.remember(p, &digest);
        self.reporter.report(Event::PushFinished {
            target: &target,
            digest: &digest,
            size,
            action,
            from: from.as_deref(),
        });
        self.blobs.lock().expect("blobs lock").push(BlobReport {
            repository: target,
            digest,
            size,
            action,
            from,
        });
        Ok(())
    }

    /// A repository of the same registry that holds the blob: one filled
    /// earlier in this run, one a push recorded, or the base it came from.
    fn mount_candidate(&self, p: &RepoPlan, digest: &Digest) -> Option<String> {
        let host = p.host().to_string();
        if let Some(r) = self
            .known
            .lock()
            .expect("known lock")
            .get(&(host, *digest))
            .and_then(|v| v.iter().find(|r| *r != p.repository()))
        {
            return Some(r.clone());
        }
        // The latest learned first: a repository pushed to before the base
        // a layer came from, as when the two were separate records.
        self.store
            .remote_locations(digest)
            .into_iter()
            .rev()
            .find(|r| r.registry == p.target.registry && r.repository != p.repository())
            .map(|r| r.repository)
    }

    /// Notes, for this run and later ones, that the repository has the blob.
    fn remember(&self, p: &RepoPlan, digest: &Digest) {
        self.known
            .lock()
            .expect("known lock")
            .entry((p.host().to_string(), *digest))
            .or_default()
            .push(p.repository().to_string());
        // A cache: losing an update to a concurrent push costs a mount.
        let _ = self.store.record_remote_location(digest, &p.target);
    }

    /// The blob's bytes for one upload attempt: from the store, or streamed
    /// from the registry a base layer was found in. Verified either way.
    fn open(
        &self,
        digest: &Digest,
        size: u64,
        counter: Arc<AtomicU64>,
    ) -> Result<Box<dyn Read + Send>> {
        counter.store(0, Ordering::Relaxed);
        if self.store.size(digest) == Some(size) {
            // The upload reads it in 1 MiB pieces (`registry::stream`).
            let r = self.store.open_blob(digest)?;
            return Ok(Box::new(Counting { inner: r, counter }));
        }
        // The earliest learned: the repository of the base it came from.
        let Some(src) = self.store.remote_locations(digest).into_iter().next() else {
            return Err(Error::format(
                format!("blob {digest}"),
                "is neither in the store nor known in a registry",
            ));
        };
        let what = format!("blob {digest} from {}", src.name());
        let source_name = src.name();
        let at = Repo::pull(&src, &what, self.reporter);
        let resp = self.client.open_blob(&at, digest)?;
        let verified = VerifyingReader::new(resp, *digest, Some(size), source_name);
        Ok(Box::new(Counting {
            inner: verified,
            counter,
        }))
    }
}

struct Counting<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
