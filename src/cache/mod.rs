//! The registry as the build cache.
//!
//! A machine whose store is empty (a fresh CI runner) would compress every
//! layer again, although an identical layer sits in a registry since the
//! last run. Every layer descriptor gantry writes carries its compression
//! recipe ([`crate::layer::ANNOTATION_RECIPE`]), and the image config lists
//! its diff_id, so a manifest gantry pushed says, per layer, "the tar stream
//! hashing to X, compressed with recipe R, is blob Y of size S". On a store
//! miss a layer's tar stream is hashed (no compression) and looked up here
//! by (diff_id, recipe).
//!
//! The sources are the images at the tags being pushed, the references of
//! `--cache-from` and `cache_from`, and cache manifests `--cache-to` pushed
//! ([`manifest`]). Each is asked once per build, on a thread of its own
//! that starts when the first layer misses the store (one manifest request,
//! and one config request per image manifest naming a gantry layer), so the
//! questions overlap that layer's hashing, and a build the store serves
//! whole asks nothing. A source that cannot be read costs a warning; a tag
//! that does not exist yet costs nothing.
//!
//! Trust: for a push, a source is trusted to hold what its manifests say (a
//! hit's blob is skipped, mounted or copied by digest, never decompressed),
//! so only repositories the user trusts are to be named. Wherever gantry
//! reads a hit's bytes (an output, a load) they are downloaded into the
//! store, checked against the digest, then decompressed and checked against
//! the diff_id; a blob that is not the layer its source said is refused with
//! a warning and the layer is compressed as usual. A store blob is always
//! the bytes its digest names, so a lying source never poisons the store.

pub mod manifest;
mod verify;

use std::collections::{HashMap, HashSet};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once, OnceLock};
use std::thread::JoinHandle;

use crate::bases::BaseOptions;
use crate::config::ImageConfig;
use crate::digest::{Digest, VerifyingReader};
use crate::error::{Error, Result};
use crate::image::BlobLocation;
use crate::layer::{CacheHit, LayerCache};
use crate::media::Compression;
use crate::progress::{Event, Reporter, Silent};
use crate::reference::Reference;
use crate::registry::{Client, Manifest, Repo};
use crate::store::Store;

/// One layer a source holds.
#[derive(Debug, Clone)]
struct Entry {
    digest: Digest,
    size: u64,
    media_type: String,
    /// The repository (registry and repository only) holding the blob.
    repository: Reference,
    /// The source it was found through, as the user named it.
    from: String,
}

/// Everything the sources said, by (diff_id, recipe).
#[derive(Debug, Default)]
struct Table {
    layers: HashMap<(Digest, String), Entry>,
    recipes: HashSet<String>,
    /// Sources that could not be read, and why.
    warnings: Vec<String>,
}

/// A [`LayerCache`] over registry references.
#[derive(Debug)]
pub struct RegistryCache {
    /// Download hits into the store (a sink that copies bytes) rather than
    /// naming their repository (a push).
    fetch: bool,
    /// Where the client comes from: the build's, shared with its bases.
    registry: Arc<BaseOptions>,
    /// What to ask, until the first layer that misses the store starts it.
    unasked: Mutex<Option<(Store, Vec<Reference>)>>,
    /// Run once, by the first layer that misses the store.
    started: Once,
    /// The asking thread, until a layer that needs the answers joins it.
    asking: Mutex<Option<JoinHandle<Table>>>,
    table: OnceLock<Table>,
    warned: AtomicBool,
}

impl RegistryCache {
    /// A cache over `sources` (deduplicated), asked on a thread of its own
    /// from the first layer that misses the store on. With `fetch`, hits are
    /// downloaded and verified into the store; without, they stay in their
    /// registry for a push.
    pub fn new(
        registry: Arc<BaseOptions>,
        store: Store,
        sources: Vec<Reference>,
        fetch: bool,
    ) -> RegistryCache {
        let mut seen = HashSet::new();
        let sources: Vec<Reference> = sources
            .into_iter()
            .filter(|s| seen.insert(s.to_string()))
            .collect();
        RegistryCache {
            fetch,
            registry,
            unasked: Mutex::new(Some((store, sources))),
            started: Once::new(),
            asking: Mutex::new(None),
            table: OnceLock::new(),
            warned: AtomicBool::new(false),
        }
    }

    /// Starts asking the sources, unless that has begun. Never waits for
    /// the answers (a layer joining the asking thread holds `asking`, which
    /// this touches only the first time), so `may_have` stays immediate.
    fn start(&self) {
        self.started.call_once(|| {
            let unasked = self
                .unasked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take();
            if let Some((store, sources)) = unasked {
                let registry = self.registry.clone();
                let handle = std::thread::spawn(move || ask_all(&registry, &store, &sources));
                *self.asking.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
            }
        });
    }

    /// The sources' answers, waiting for them.
    fn table(&self) -> &Table {
        if let Some(t) = self.table.get() {
            return t;
        }
        self.start();
        let mut asking = self.asking.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(handle) = asking.take() {
            let _ = self.table.set(handle.join().unwrap_or_default());
        }
        drop(asking);
        self.table.get_or_init(Table::default)
    }

    /// Reports, once, the sources that could not be read; only when they
    /// have answered, so a build that needed none of them waits for none.
    pub fn report_warnings(&self, reporter: &dyn Reporter) {
        let Some(t) = self.table.get() else { return };
        if !self.warned.swap(true, Ordering::SeqCst) {
            for w in &t.warnings {
                reporter.report(Event::Warning { message: w });
            }
        }
    }

    /// Downloads a hit into the store and checks its tar stream against
    /// `diff_id`. gantry's own gzip members are checked as the bytes
    /// arrive, on another thread, so the check overlaps the download; any
    /// other blob once it is in the store.
    fn download(
        &self,
        e: &Entry,
        diff_id: &Digest,
        threads: usize,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let what = format!("cached layer {} from {}", e.digest, e.from);
        let client = self.registry.client("cache")?;
        let at = Repo::pull(&e.repository, &what, reporter);
        let compression = Compression::of_layer_media_type(&e.media_type);
        let checked = if compression == Some(Compression::Gzip) && store.size(&e.digest).is_none() {
            download_checking(&client, &at, e, threads, store)?
        } else {
            client.fetch_blob(&at, &e.digest, e.size, store)?;
            None
        };
        let actual = match checked {
            Some(d) => d,
            None => stored_diff_id(store, e, threads)?,
        };
        if actual != *diff_id {
            return Err(Error::Mismatch {
                what: format!("blob {} from {}", e.digest, e.from),
                expected: format!("a layer whose tar stream hashes to {diff_id}"),
                actual: format!("its tar stream hashes to {actual}"),
            });
        }
        Ok(())
    }
}

/// Streams the blob into the store (committed only when it is the bytes
/// its digest names) while its members are inflated and hashed; the tar
/// stream's digest, or `None` when the blob is not made of gantry's members
/// and must be checked from the store.
fn download_checking(
    client: &Client,
    at: &Repo<'_>,
    e: &Entry,
    threads: usize,
    store: &Store,
) -> Result<Option<Digest>> {
    at.reporter.report(Event::DownloadStarted {
        reference: at.what,
        digest: &e.digest,
        size: e.size,
    });
    let resp = client.open_blob(at, &e.digest)?;
    let source = format!("registry {}: blob {} of {}", at.host, e.digest, at.what);
    let mut verified = VerifyingReader::new(resp, e.digest, Some(e.size), source.clone());
    let mut writer = store.writer_verified_by(e.digest)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(16);
    let (copied, checked) = std::thread::scope(|s| {
        let checker = s.spawn(move || verify::gzip_members(Box::new(Chunks::new(rx)), threads));
        let copied = (|| -> std::io::Result<()> {
            let mut buf = vec![0u8; 1 << 20];
            loop {
                let n = verified.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                writer.write_all(&buf[..n])?;
                // A checker that gave up reads no more; the download goes on.
                let _ = tx.send(buf[..n].to_vec());
            }
        })();
        drop(tx);
        (copied, checker.join())
    });
    // Lost connections and bytes that are not the blob alike: the layer is
    // compressed instead, so telling them apart changes nothing here.
    copied.map_err(|err| {
        Error::format_because(
            &source,
            "the download failed or is not the blob it names",
            err,
        )
    })?;
    // The reader reached its end, so the bytes are the blob's.
    writer.commit()?;
    at.reporter.report(Event::DownloadFinished {
        reference: at.what,
        digest: &e.digest,
        size: e.size,
    });
    Ok(checked.ok().and_then(|r| r.ok()).flatten())
}

/// Chunks from the download, read as one stream.
struct Chunks {
    rx: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Chunks {
    fn new(rx: std::sync::mpsc::Receiver<Vec<u8>>) -> Chunks {
        Chunks {
            rx,
            chunk: Vec::new(),
            at: 0,
        }
    }
}

impl Read for Chunks {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv() {
                Ok(c) => {
                    self.chunk = c;
                    self.at = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

impl LayerCache for RegistryCache {
    fn may_have(&self, recipe: &str) -> bool {
        self.start();
        self.table.get().is_none_or(|t| t.recipes.contains(recipe))
    }

    fn find(
        &self,
        diff_id: &Digest,
        recipe: &str,
        threads: usize,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Option<CacheHit> {
        let t = self.table();
        self.report_warnings(reporter);
        let e = t.layers.get(&(*diff_id, recipe.to_string()))?;
        let hit = |location| CacheHit {
            digest: e.digest,
            size: e.size,
            media_type: e.media_type.clone(),
            location,
            from: e.from.clone(),
        };
        if !self.fetch {
            if store.size(&e.digest) == Some(e.size) {
                return Some(hit(BlobLocation::Store));
            }
            // A cache: without it a push asks the source repository again.
            let _ = store.record_remote_location(&e.digest, &e.repository);
            return Some(hit(BlobLocation::Remote(e.repository.clone())));
        }
        match self.download(e, diff_id, threads, store, reporter) {
            Ok(()) => Some(hit(BlobLocation::Store)),
            Err(err) => {
                reporter.report(Event::Warning {
                    message: &format!(
                        "cache source {}: layer {diff_id} not used, compressing it instead: {err}",
                        e.from
                    ),
                });
                None
            }
        }
    }
}

/// The digest of the stored blob's tar stream.
fn stored_diff_id(store: &Store, e: &Entry, threads: usize) -> Result<Digest> {
    let what = format!("blob {} from {}", e.digest, e.from);
    let compression = Compression::of_layer_media_type(&e.media_type)
        .ok_or_else(|| Error::format(&what, format!("not a layer: {}", e.media_type)))?;
    let open = || -> std::io::Result<Box<dyn Read>> {
        let blob = store.open_blob(&e.digest).map_err(std::io::Error::other)?;
        Ok(Box::new(blob))
    };
    verify::diff_id(compression, open, threads)
        .map_err(|err| Error::format_because(&what, "cannot decompress it", err))
}

/// Asks every source, in parallel, and gathers what they said.
fn ask_all(registry: &BaseOptions, store: &Store, sources: &[Reference]) -> Table {
    let mut table = Table::default();
    if sources.is_empty() {
        return table;
    }
    let client = match registry.client("cache") {
        Ok(c) => c,
        Err(e) => {
            table.warnings.push(format!("cache sources not asked: {e}"));
            return table;
        }
    };
    let answers = Mutex::new(Vec::new());
    let _ = crate::jobs::for_each_parallel(sources, sources.len().min(8), |source| {
        let answer = ask(&client, store, source);
        answers.lock().expect("answers lock").push(answer);
        Ok(())
    });
    for answer in answers.into_inner().expect("answers lock") {
        match answer {
            Ok(entries) => {
                for ((diff_id, recipe), e) in entries {
                    table.recipes.insert(recipe.clone());
                    table.layers.entry((diff_id, recipe)).or_insert(e);
                }
            }
            Err(Some(w)) => table.warnings.push(w),
            Err(None) => {}
        }
    }
    table
}

type Found = Vec<((Digest, String), Entry)>;

/// What one source holds; `Err(None)` for a tag that does not exist (yet),
/// `Err(Some(warning))` for a source that could not be read.
fn ask(
    client: &Client,
    store: &Store,
    source: &Reference,
) -> std::result::Result<Found, Option<String>> {
    let named = source.familiar();
    let what = format!("cache source {named}");
    let at = Repo::pull(source, &what, &Silent);
    let reference = match (&source.digest, &source.tag) {
        (Some(d), _) => d.to_string(),
        (None, Some(t)) => t.clone(),
        (None, None) => "latest".to_string(),
    };
    let warn = |e: Error| Some(format!("cache source {named} not used: {e}"));
    let top = match client.get_manifest(&at, &reference) {
        Ok(m) => m,
        Err(Error::Registry {
            status: Some(404), ..
        }) => return Err(None),
        Err(e) => return Err(warn(e)),
    };
    let manifests = if top.is_index() {
        let index = crate::manifest::parse_index(&top.bytes, &what).map_err(warn)?;
        let mut children = Vec::new();
        for d in index
            .manifests()
            .iter()
            .filter(|d| !crate::platform::is_attestation(d))
        {
            let digest = Digest::from_oci(d.digest(), &what).map_err(warn)?;
            children.push(
                client
                    .get_manifest(&at, &digest.to_string())
                    .map_err(warn)?,
            );
        }
        children
    } else {
        vec![top]
    };
    let repository = Reference {
        registry: source.registry.clone(),
        repository: source.repository.clone(),
        tag: None,
        digest: None,
    };
    let mut found = Vec::new();
    for m in &manifests {
        found.extend(layers_of(client, store, &at, m, &repository, &named).map_err(warn)?);
    }
    Ok(found)
}

/// The gantry layers of one image or cache manifest.
fn layers_of(
    client: &Client,
    store: &Store,
    at: &Repo<'_>,
    m: &Manifest,
    repository: &Reference,
    named: &str,
) -> Result<Found> {
    let parsed = crate::manifest::parse_manifest(&m.bytes, at.what)?;
    let entry = |digest, size, media_type: &str| Entry {
        digest,
        size,
        media_type: media_type.to_string(),
        repository: repository.clone(),
        from: named.to_string(),
    };
    if manifest::is_cache(&parsed) {
        return Ok(manifest::listed(&parsed)
            .into_iter()
            .map(|l| {
                (
                    (l.diff_id, l.recipe),
                    entry(l.digest, l.size, &l.media_type),
                )
            })
            .collect());
    }
    let recipes = manifest::recipes(&parsed);
    if recipes.iter().all(Option::is_none) {
        return Ok(Vec::new());
    }
    let config = parsed.config();
    let config_digest = Digest::from_oci(config.digest(), at.what)?;
    let bytes = client.fetch_small_blob(at, &config_digest, config.size(), store)?;
    let config: ImageConfig = serde_json::from_slice(&bytes)
        .map_err(|e| Error::format(at.what, format!("its config does not parse: {e}")))?;
    let diff_ids = &config.rootfs.diff_ids;
    if diff_ids.len() != parsed.layers().len() {
        return Err(Error::format(
            at.what,
            "its config lists another number of diff_ids than its manifest has layers",
        ));
    }
    let mut found = Vec::new();
    for ((d, recipe), diff_id) in parsed.layers().iter().zip(recipes).zip(diff_ids) {
        let (Some(recipe), Ok(diff_id)) = (recipe, diff_id.parse::<Digest>()) else {
            continue;
        };
        let digest = Digest::from_oci(d.digest(), at.what)?;
        found.push((
            (diff_id, recipe),
            entry(digest, d.size(), d.media_type().as_ref()),
        ));
    }
    Ok(found)
}
