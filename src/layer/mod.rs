//! Reproducible layers: a declared file set becomes a sorted list of entries
//! ([`fileset`]), written as a tar stream ([`tar`]) and compressed
//! ([`compress`]) into the store in one pass.
//!
//! The same file set is never compressed twice: a layer's recipe (entries,
//! metadata, compression) together with each source file's identity (device,
//! inode, size, mtime, ctime) keys a record of the finished layer. When any
//! identity has changed but a layer of the same shape (the same tar headers)
//! was built before, the tar stream is hashed without compression first, and
//! a layer with that diff_id and compression already in the store is reused.
//! A layer of a new shape goes straight to the one compressing pass, so a
//! cold build reads its inputs once.

pub mod cached;
pub mod compress;
pub mod files;
pub mod fileset;
mod scan;
mod source;
pub mod tar;

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::image::{BlobLocation, LayerDesc};
use crate::progress::{Event, Reporter};
use crate::sbom::spdx::LayerFile;
use crate::store::{self, Presence, Store};
pub use cached::{CacheHit, LayerCache, SpareCores};
use compress::{CompressOptions, Encoder};
use fileset::Entry;
use source::Sources;
use tar::{EntryHeader, EntryKind};

/// Bumped whenever the tar or compression output for the same inputs
/// changes, so stale cache records are never trusted.
pub const FORMAT_VERSION: u32 = 2;

/// The layer descriptor annotation holding the compression recipe
/// ([`compress::recipe`]): with the config's diff_id it says which blob an
/// uncompressed tar stream compresses to, so a manifest gantry pushed is a
/// build cache for any later build.
pub const ANNOTATION_RECIPE: &str = "dev.gantry.layer.recipe";

/// The layer descriptor annotation holding the diff_id, on the layers of a
/// cache manifest (`--cache-to`), which has no image config to list them.
pub const ANNOTATION_DIFF_ID: &str = "dev.gantry.layer.diff_id";

/// Report progress every this many bytes.
const PROGRESS_STEP: u64 = 8 << 20;

/// One layer to lay down: its resolved entries and how to compress them.
pub struct LayerJob<'a> {
    /// The image the layer belongs to, for progress and errors.
    pub image: &'a str,
    /// The layer's name in the build file.
    pub name: &'a str,
    /// The layer's entries, sorted, as [`fileset::resolve`] found them.
    pub entries: &'a [Entry],
    /// Compression, level and threads.
    pub compress: CompressOptions,
    /// Where to look for a layer of the same content and recipe before
    /// compressing one: registries other machines pushed to.
    pub cache: Option<&'a dyn LayerCache>,
    /// Build cold: reuse nothing from the store or a cache (`--no-cache`).
    pub cold: bool,
    /// Take every regular file's checksums for the SBOM, and record them by
    /// diff_id; off when no SBOM is wanted (`--sbom none`).
    pub checksums: bool,
    /// Cores no other work of the build waits for, taken for compression
    /// and for checking a download, beyond `compress.threads`.
    pub spare: Option<&'a dyn SpareCores>,
}

/// Runs `f` with the layer's threads and whatever spare cores there are,
/// giving those back however `f` ends.
fn with_spare<T>(job: &LayerJob<'_>, f: impl FnOnce(usize) -> T) -> T {
    struct Lent<'s>(Option<&'s dyn SpareCores>, usize);
    impl Drop for Lent<'_> {
        fn drop(&mut self) {
            if let Some(s) = self.0 {
                s.give_back(self.1);
            }
        }
    }
    // Only gzip, compressed or checked member by member, has work for more
    // threads; and a pool of more threads than cores gains nothing.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let want = match job.compress.compression {
        compress::Compression::Gzip => cores.saturating_sub(job.compress.threads),
        _ => 0,
    };
    let lent = Lent(
        job.spare,
        job.spare.filter(|_| want > 0).map_or(0, |s| s.take(want)),
    );
    f(job.compress.threads.max(1) + lent.1)
}

/// Runs `f` with the layer's cores lent to work waiting to start, when the
/// layer is one task of a build graph.
fn aside<T>(job: &LayerJob<'_>, f: impl FnOnce() -> T) -> T {
    let Some(spare) = job.spare else {
        return f();
    };
    let mut f = Some(f);
    let mut out = None;
    spare.aside(job.compress.threads.max(1), &mut || {
        out = f.take().map(|f| f());
    });
    out.expect("aside runs its work once")
}

/// The result of building a layer.
#[derive(Debug, Clone)]
pub struct BuiltLayer {
    /// The layer as a manifest lists it; its blob is in the store.
    pub desc: LayerDesc,
    /// An identical layer was already in the store; nothing was compressed.
    pub reused: bool,
    /// An identical layer was found in this cache source (a registry
    /// reference); nothing was compressed.
    pub cached_from: Option<String>,
}

/// A finished layer, as its records hold it.
#[derive(Serialize, Deserialize)]
struct Record {
    desc: LayerDesc,
}

/// The layer built from a recipe whose sources had these identities.
#[derive(Serialize, Deserialize)]
struct ByRecipe(Record);

impl store::Record for ByRecipe {
    const KIND: &'static str = "layers-by-recipe";
}

/// The layer of an uncompressed tar stream, compressed one way.
#[derive(Serialize, Deserialize)]
struct ByContent(Record);

impl store::Record for ByContent {
    const KIND: &'static str = "layers-by-content";
}

impl store::Record for Shape {
    const KIND: &'static str = "layers-by-shape";
}

/// The bytes of file content a layer's entries hold.
pub fn input_bytes(entries: &[Entry]) -> u64 {
    entries
        .iter()
        .map(|e| match e.header.kind {
            EntryKind::File { size } => size,
            _ => 0,
        })
        .sum()
}

/// Lays down a layer into the store.
pub fn build(store: &Store, job: &LayerJob<'_>, reporter: &dyn Reporter) -> Result<BuiltLayer> {
    build_from(store, job, reporter, &source::Fs)
}

fn build_from<S: Sources>(
    store: &Store,
    job: &LayerJob<'_>,
    reporter: &dyn Reporter,
    sources: &S,
) -> Result<BuiltLayer> {
    let total = input_bytes(job.entries);
    reporter.report(Event::LayerStarted {
        image: job.image,
        layer: job.name,
        bytes: total,
    });

    let recipe = recipe_key(job);
    let recipe_text = compress::recipe(&job.compress);
    let done =
        |desc, reused, cached_from| finish(job, reporter, &recipe_text, desc, reused, cached_from);

    // 1. Nothing changed since the last build of this recipe: no reading.
    if let Some(ByRecipe(rec)) = store.record(&recipe.hex()).filter(|_| !job.cold) {
        // A blob of another size is damaged (moved aside by the lookup) or
        // the record is wrong; either way the layer is built again.
        if store.lookup(&rec.desc.digest, rec.desc.size)? == Presence::Present {
            return Ok(done(rec.desc, true, None));
        }
    }

    // 2. Some file's identity changed, but this shape was built before (a
    //    fresh checkout, a touched file): hash the tar stream to learn the
    //    diff_id, and reuse a layer with that content if the store has one.
    let shape = shape_key(job);
    // The entries as read: a file found changed is expected as it was seen.
    let mut entries = Cow::Borrowed(job.entries);
    let mut changed = false;
    let mut known_diff_id = None;
    if !job.cold {
        match by_shape(store, job, sources, &shape, &mut entries, &mut changed)? {
            Shaped::Reusable(rec) => {
                let rec = ByRecipe(rec);
                if !racy(job) && !changed {
                    store.put_record(&recipe.hex(), &rec)?;
                }
                return Ok(done(rec.0.desc, true, None));
            }
            Shaped::Hashed(diff_id) => known_diff_id = Some(diff_id),
            Shaped::New => {}
        }
    }

    // 3. Not in the store, but perhaps in a registry: hashing the tar stream
    //    costs a fraction of compressing it.
    if let Some(cache) = job.cache.filter(|c| !job.cold && c.may_have(&recipe_text)) {
        let diff_id = match known_diff_id {
            Some(d) => d,
            // A hash pass is short beside compressing: the layer's cores
            // meanwhile start the next layer, which may be the one that
            // must compress.
            None => aside(job, || {
                hash_tar(store, job, sources, &mut entries, &mut changed)
            })?,
        };
        known_diff_id = Some(diff_id);
        if let Some((desc, from)) = from_cache(cache, store, job, reporter, &diff_id, &recipe_text)
        {
            if desc.location == BlobLocation::Store {
                record(store, job, &desc, &recipe, &shape, !racy(job) && !changed)?;
            } else {
                store.put_record(&shape.hex(), &Shape {})?;
            }
            return Ok(done(desc, false, Some(from)));
        }
    }

    // 4. New content: tar, hash and compress in one pass.
    let (desc, changed_in_pass) =
        compress_new(store, job, reporter, sources, &mut entries, known_diff_id)?;
    let stable = !racy(job) && !changed && !changed_in_pass;
    record(store, job, &desc, &recipe, &shape, stable)?;
    Ok(done(desc, false, None))
}

/// The layer compressed from its files, committed to the store with its
/// files' checksums recorded, and whether a file changed as it was read.
/// `known_diff_id` is what a hash pass before found.
fn compress_new<S: Sources>(
    store: &Store,
    job: &LayerJob<'_>,
    reporter: &dyn Reporter,
    sources: &S,
    entries: &mut Cow<'_, [Entry]>,
    known_diff_id: Option<Digest>,
) -> Result<(LayerDesc, bool)> {
    let (blob, diff_id, changed_in_pass, files) =
        compress_pass(store, job, reporter, sources, entries)?;
    // A file that changed between the two passes was read again whole (and
    // explains another diff_id); otherwise both read the same identities.
    if !changed_in_pass && known_diff_id.is_some_and(|d| d != diff_id) {
        return Err(Error::Layer {
            image: job.image.into(),
            layer: job.name.into(),
            message: "input files changed while the layer was being built".into(),
            cause: None,
        });
    }
    let (digest, size) = blob.commit()?;
    let desc = LayerDesc {
        media_type: job.compress.compression.media_type().to_string(),
        digest,
        size,
        diff_id,
        annotations: Default::default(),
        location: Default::default(),
    };
    if job.checksums {
        files::record(store, &desc.diff_id, &files)?;
    }
    Ok((desc, changed_in_pass))
}

/// The layer as built: its descriptor annotated with the recipe on every
/// path (so a record written before the annotation existed gives the same
/// descriptor as a fresh build), and reported.
fn finish(
    job: &LayerJob<'_>,
    reporter: &dyn Reporter,
    recipe: &str,
    mut desc: LayerDesc,
    reused: bool,
    cached_from: Option<String>,
) -> BuiltLayer {
    desc.annotations = BTreeMap::from([(ANNOTATION_RECIPE.to_string(), recipe.to_string())]);
    reporter.report(Event::LayerFinished {
        image: job.image,
        layer: job.name,
        digest: &desc.digest,
        size: desc.size,
        reused,
        cached_from: cached_from.as_deref(),
    });
    BuiltLayer {
        desc,
        reused,
        cached_from,
    }
}

/// The layer of this content and recipe from the build cache, with the
/// source it came through.
fn from_cache(
    cache: &dyn LayerCache,
    store: &Store,
    job: &LayerJob<'_>,
    reporter: &dyn Reporter,
    diff_id: &Digest,
    recipe: &str,
) -> Option<(LayerDesc, String)> {
    let media_type = job.compress.compression.media_type();
    // No spare cores: a download is one stream, checked as it arrives, and
    // the cores are better spent on the other layers' downloads.
    let hit = cache
        .find(
            diff_id,
            recipe,
            job.compress.threads.max(1),
            store,
            reporter,
        )
        .filter(|h| h.media_type == media_type)?;
    let desc = LayerDesc {
        media_type: hit.media_type,
        digest: hit.digest,
        size: hit.size,
        diff_id: *diff_id,
        annotations: Default::default(),
        location: hit.location,
    };
    Some((desc, hit.from))
}

/// The one pass that tars, hashes and compresses, on the layer's threads
/// and any spare ones: the blob (not yet committed), the diff_id, whether a
/// file changed as it was read, and the files' checksums.
fn compress_pass<S: Sources>(
    store: &Store,
    job: &LayerJob<'_>,
    reporter: &dyn Reporter,
    sources: &S,
    entries: &mut Cow<'_, [Entry]>,
) -> Result<(store::BlobWriter, Digest, bool, Vec<LayerFile>)> {
    with_spare(job, |threads| {
        let opts = CompressOptions {
            threads,
            ..job.compress
        };
        let written = source::write_tar(job, sources, entries, Some(reporter), || {
            let blob = store.writer()?;
            Encoder::new(opts, blob).map_err(|e| io_err(job, e))
        })?;
        let blob = written.out.finish().map_err(|e| io_err(job, e))?;
        Ok((blob, written.diff_id, written.changed, written.files))
    })
}

/// Records a layer just built under its content and shape and, when its
/// sources were `stable` (none changed or racily clean), its recipe.
fn record(
    store: &Store,
    job: &LayerJob<'_>,
    desc: &LayerDesc,
    recipe: &Digest,
    shape: &Digest,
    stable: bool,
) -> Result<()> {
    let by_content = format!("{}-{}", desc.diff_id.hex(), compression_key(job));
    let rec = ByContent(Record { desc: desc.clone() });
    store.put_record(&by_content, &rec)?;
    store.put_record(&shape.hex(), &Shape {})?;
    if stable {
        store.put_record(&recipe.hex(), &ByRecipe(rec.0))?;
    }
    Ok(())
}

/// What a shape built before says of a layer.
enum Shaped {
    /// A layer of this content is in the store.
    Reusable(Record),
    /// The content is new; its diff_id, from hashing the tar stream.
    Hashed(Digest),
    /// The shape was never built: nothing was read.
    New,
}

/// For a shape built before, hashes the tar stream (noting in `changed` a
/// file that changed as it was read) and looks for a stored layer of that
/// content and compression.
fn by_shape<S: Sources>(
    store: &Store,
    job: &LayerJob<'_>,
    sources: &S,
    shape: &Digest,
    entries: &mut Cow<'_, [Entry]>,
    changed: &mut bool,
) -> Result<Shaped> {
    if store.record::<Shape>(&shape.hex()).is_none() {
        return Ok(Shaped::New);
    }
    let diff_id = hash_tar(store, job, sources, entries, changed)?;
    let by_content = format!("{}-{}", diff_id.hex(), compression_key(job));
    if let Some(ByContent(rec)) = store.record(&by_content) {
        if store.lookup(&rec.desc.digest, rec.desc.size)? == Presence::Present {
            return Ok(Shaped::Reusable(rec));
        }
    }
    Ok(Shaped::Hashed(diff_id))
}

/// The diff_id of the layer's tar stream, written to nowhere but the hash
/// (noting in `changed` a file that changed as it was read). The files'
/// checksums are recorded by diff_id on the way, so a layer reused or
/// found in a cache without being compressed has them too.
fn hash_tar<S: Sources>(
    store: &Store,
    job: &LayerJob<'_>,
    sources: &S,
    entries: &mut Cow<'_, [Entry]>,
    changed: &mut bool,
) -> Result<Digest> {
    let written = source::write_tar(job, sources, entries, None, || Ok(io::sink()))?;
    *changed |= written.changed;
    if job.checksums {
        files::record(store, &written.diff_id, &written.files)?;
    }
    Ok(written.diff_id)
}

/// The compression and format part of a layer's content key.
fn compression_key(job: &LayerJob<'_>) -> String {
    format!(
        "{:?}-{}-v{FORMAT_VERSION}",
        job.compress.compression, job.compress.level
    )
    .to_lowercase()
}

fn io_err(job: &LayerJob<'_>, e: io::Error) -> Error {
    Error::Layer {
        image: job.image.into(),
        layer: job.name.into(),
        message: "cannot lay it down".into(),
        cause: Some(e.into()),
    }
}

/// A shape (the tar headers of a layer's entries) built before: its
/// presence is what makes hashing the tar stream worth a pass.
#[derive(Serialize, Deserialize)]
struct Shape {}

/// A digest of everything that decides the layer's bytes, plus the identity
/// of each source file.
fn recipe_key(job: &LayerJob<'_>) -> Digest {
    key(job, true)
}

/// A digest of the layer's tar headers and compression: the same for two
/// checkouts of the same files, whatever their paths or timestamps.
fn shape_key(job: &LayerJob<'_>) -> Digest {
    key(job, false)
}

fn key(job: &LayerJob<'_>, with_sources: bool) -> Digest {
    let mut h = Hasher::new();
    h.update(format!("gantry-layer-v{FORMAT_VERSION}-{with_sources}\0").as_bytes());
    // Thread count changes speed, never bytes, so it is not part of the key.
    h.update(format!("{:?}\0{}\0", job.compress.compression, job.compress.level).as_bytes());
    // One update per entry: many tiny updates cost more than the hashing.
    let mut buf = Vec::with_capacity(256);
    for e in job.entries {
        buf.clear();
        encode_entry(&mut buf, e, with_sources);
        h.update(&buf);
    }
    h.finish().0
}

/// Appends everything that identifies an entry to `out`, every variable-length
/// field length-prefixed so that two different entries never feed the same
/// bytes. The structs are destructured whole, so a field added to them does
/// not compile until it is added here: the key cannot silently miss it.
fn encode_entry(out: &mut Vec<u8>, e: &Entry, with_sources: bool) {
    use std::os::unix::ffi::OsStrExt;
    let Entry {
        header,
        source,
        stat,
    } = e;
    let EntryHeader {
        path,
        kind,
        mode,
        uid,
        gid,
        uname,
        gname,
        mtime,
    } = header;
    let bytes = |out: &mut Vec<u8>, b: &[u8]| {
        out.extend_from_slice(&(b.len() as u64).to_le_bytes());
        out.extend_from_slice(b);
    };
    bytes(out, path.as_bytes());
    match kind {
        EntryKind::File { size } => {
            out.extend_from_slice(b"f");
            out.extend_from_slice(&size.to_le_bytes());
        }
        EntryKind::Dir => out.extend_from_slice(b"d"),
        EntryKind::Symlink { target } => {
            out.extend_from_slice(b"l");
            bytes(out, target.as_bytes());
        }
    }
    for n in [u64::from(*mode), *uid, *gid, *mtime] {
        out.extend_from_slice(&n.to_le_bytes());
    }
    bytes(out, uname.as_bytes());
    bytes(out, gname.as_bytes());
    if !with_sources {
        return;
    }
    match source {
        Some(p) => bytes(out, p.as_os_str().as_bytes()),
        None => out.extend_from_slice(b"-"),
    }
    match stat {
        Some(fileset::FileStat {
            dev,
            ino,
            size,
            mtime_ns,
            ctime_ns,
        }) => {
            for n in [dev, ino, size] {
                out.extend_from_slice(&n.to_le_bytes());
            }
            out.extend_from_slice(&mtime_ns.to_le_bytes());
            out.extend_from_slice(&ctime_ns.to_le_bytes());
        }
        None => out.extend_from_slice(b"-"),
    }
}

/// A file changed within the last moments could change again within the
/// same timestamp tick without its identity changing (git's "racily clean"
/// problem); such a recipe is not recorded, so the next build hashes it.
fn racy(job: &LayerJob<'_>) -> bool {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_nanos() as i128;
    let margin = 2_000_000_000i128;
    job.entries
        .iter()
        .filter_map(|e| e.stat)
        .any(|s| s.mtime_ns >= now - margin || s.ctime_ns >= now - margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildfile::BuildFile;
    use crate::media::Compression;
    use crate::progress::Silent;
    use std::fs;
    use std::path::Path;

    #[test]
    fn layer_records_read_as_the_previous_version_wrote_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"layer");
        let old = serde_json::json!({"desc": {
            "media_type": Compression::Gzip.media_type(),
            "digest": d, "size": 5, "diff_id": d,
        }});
        store.put_meta("layers-by-recipe", "k", &old).unwrap();
        store.put_meta("layers-by-content", "k", &old).unwrap();
        let ByRecipe(by_recipe) = store.record("k").unwrap();
        let ByContent(by_content) = store.record("k").unwrap();
        assert_eq!(by_recipe.desc, by_content.desc);
        assert_eq!(by_recipe.desc.size, 5);
        store.put_record("again", &ByRecipe(by_recipe)).unwrap();
        let written: serde_json::Value = store.get_meta("layers-by-recipe", "again").unwrap();
        assert_eq!(written, old);
    }

    fn build_in(dir: &Path, store: &Store) -> BuiltLayer {
        build_cached(dir, store, None)
    }

    fn build_cached(dir: &Path, store: &Store, cache: Option<&dyn LayerCache>) -> BuiltLayer {
        let text = "[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\
                    [[image.a.layer]]\nfiles = [{ src = \"src/\", dst = \"/s/\" }]\n";
        let bf = BuildFile::parse(text, &dir.join("gantry.toml")).unwrap();
        let spec = &bf.images["a"].layers[0];
        let entries = fileset::resolve("a", spec, 0).unwrap();
        let job = LayerJob {
            image: "a",
            name: "l",
            entries: &entries,
            compress: CompressOptions {
                compression: Compression::Gzip,
                level: 6,
                threads: 2,
            },
            cache,
            cold: false,
            checksums: true,
            spare: None,
        };
        build(store, &job, &Silent).unwrap()
    }

    fn write_tree(dir: &Path, content: &str) {
        fs::create_dir_all(dir.join("src")).unwrap();
        fs::write(dir.join("src/a.txt"), content).unwrap();
        // Old enough not to be racily clean, so the recipe record is kept.
        let old = SystemTime::now() - Duration::from_secs(3600);
        let f = fs::File::options()
            .write(true)
            .open(dir.join("src/a.txt"))
            .unwrap();
        f.set_modified(old).unwrap();
    }

    /// A cache holding one layer, answering for it from its repository.
    #[derive(Debug)]
    struct OneLayer {
        diff_id: Digest,
        hit: CacheHit,
        asked: std::sync::Mutex<Vec<String>>,
    }

    impl LayerCache for OneLayer {
        fn may_have(&self, recipe: &str) -> bool {
            recipe.starts_with("gzip;")
        }

        fn find(
            &self,
            diff_id: &Digest,
            recipe: &str,
            _: usize,
            _: &Store,
            _: &dyn Reporter,
        ) -> Option<CacheHit> {
            self.asked.lock().unwrap().push(recipe.to_string());
            (*diff_id == self.diff_id).then(|| self.hit.clone())
        }
    }

    #[test]
    fn a_cache_hit_gives_the_cold_descriptor_without_compressing() {
        let (d, cold_store, fresh) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        write_tree(d.path(), "one");
        let cold = build_in(d.path(), &Store::open(cold_store.path()).unwrap());
        assert_eq!(
            cold.desc.annotations[ANNOTATION_RECIPE],
            compress::recipe(&CompressOptions {
                compression: Compression::Gzip,
                level: 6,
                threads: 1,
            })
        );
        let repo: crate::reference::Reference = "registry.test/cache:main".parse().unwrap();
        let cache = OneLayer {
            diff_id: cold.desc.diff_id,
            hit: CacheHit {
                digest: cold.desc.digest,
                size: cold.desc.size,
                media_type: cold.desc.media_type.clone(),
                location: BlobLocation::Remote(repo.clone()),
                from: "registry.test/cache:main".into(),
            },
            asked: Default::default(),
        };
        let store = Store::open(fresh.path()).unwrap();
        let hit = build_cached(d.path(), &store, Some(&cache));
        assert_eq!(hit.cached_from.as_deref(), Some("registry.test/cache:main"));
        assert_eq!(hit.desc.location, BlobLocation::Remote(repo));
        assert_eq!(
            LayerDesc {
                location: BlobLocation::Store,
                ..hit.desc.clone()
            },
            cold.desc,
            "the same descriptor a cold build writes"
        );
        assert!(!store.has(&cold.desc.digest), "nothing was compressed");

        // Another content: the cache is asked, misses, and the layer is built.
        write_tree(d.path(), "two");
        let miss = build_cached(d.path(), &store, Some(&cache));
        assert_eq!(miss.cached_from, None);
        assert!(store.has(&miss.desc.digest));
        assert_eq!(cache.asked.lock().unwrap().len(), 2);
    }

    #[test]
    fn unchanged_recipe_is_reused_without_reading() {
        let (d, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        let store = Store::open(s.path()).unwrap();
        write_tree(d.path(), "one");
        let first = build_in(d.path(), &store);
        assert!(!first.reused);
        let again = build_in(d.path(), &store);
        assert!(again.reused);
        assert_eq!(again.desc, first.desc);
    }

    #[test]
    fn another_checkout_of_the_same_files_is_not_compressed_again() {
        let s = tempfile::tempdir().unwrap();
        let store = Store::open(s.path()).unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_tree(a.path(), "same");
        write_tree(b.path(), "same");
        let first = build_in(a.path(), &store);
        let second = build_in(b.path(), &store);
        assert!(second.reused, "same content elsewhere must reuse the layer");
        assert_eq!(second.desc, first.desc);
    }

    #[test]
    fn same_size_content_change_builds_a_new_layer() {
        let s = tempfile::tempdir().unwrap();
        let store = Store::open(s.path()).unwrap();
        let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
        write_tree(a.path(), "one");
        write_tree(b.path(), "two");
        let first = build_in(a.path(), &store);
        let second = build_in(b.path(), &store);
        assert!(!second.reused);
        assert_ne!(second.desc.diff_id, first.desc.diff_id);
    }
}
