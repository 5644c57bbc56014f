//! Registry bases: from a reference (and perhaps a lock) to an [`Image`]
//! whose manifest and config are in the store.
//!
//! Loading is shallow: a layer the store lacks is not downloaded but marked
//! [`BlobLocation::Remote`] in the image and recorded in the store
//! ([`Store::record_remote_location`]) as held by its repository. A sink
//! that copies bytes has them fetched first: by the build graph's fetch
//! tasks ([`crate::build::BuildOptions::fetch_layers`]), or by
//! [`BaseOptions::ensure_blobs`], which fetches them in parallel. Digests,
//! not tags, decide everything after resolution, so a warm store builds
//! offline with identical results.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{read, BlobLocation, Image, LayerDesc};
use crate::jobs::Graph;
use crate::lock::{LockFile, LockedBase};
use crate::media;
use crate::platform;
use crate::platform::host_platform;
use crate::platform::Platform;
use crate::progress::{Event, Reporter};
use crate::reference::Reference;
use crate::registry::{Client, ClientOptions, Manifest, Repo};
use crate::store::{Presence, Store};

const TAGS_META: &str = "registry-tags";

/// Layers downloaded at once by [`BaseOptions::ensure_blobs`]: as many as a
/// push has in flight.
const FETCH_JOBS: usize = 4;

/// How registry bases are reached: the network (or not), and the lock.
#[derive(Debug, Default)]
pub struct BaseOptions {
    /// How to make the registry client (`None`: from the environment).
    pub client_options: Option<ClientOptions>,
    /// Never touch the network; everything must be in the store.
    pub offline: bool,
    /// `gantry.lock` as read, and where it was read from.
    pub lock: Option<LockFile>,
    /// Where the lock was read from (or would be), for its errors.
    pub lock_path: Option<PathBuf>,
    /// Every base must be in the lock, as the build file has it.
    pub locked: bool,
    client: Mutex<Option<Arc<Client>>>,
}

/// What a tag resolved to when last asked, for `--offline` without a lock.
#[derive(Debug, Serialize, Deserialize)]
struct TagRecord {
    reference: String,
    digest: Digest,
}

/// A base as loaded, and what pinned it.
#[derive(Debug, Clone)]
pub struct LoadedBase {
    /// The image for the platform asked for; its layers the store lacks
    /// are [`BlobLocation::Remote`].
    pub image: Image,
    /// The digest the reference resolved to: the image's manifest, or the
    /// index it was chosen from (what a lock pins).
    pub top: Digest,
    /// The media type of `top`.
    pub top_media_type: String,
    /// The platform key a lock records this manifest under.
    pub platform: String,
}

impl BaseOptions {
    /// Options that reach registries with a client made from
    /// `client_options`, without a lock.
    pub fn new(client_options: ClientOptions) -> BaseOptions {
        BaseOptions {
            client_options: Some(client_options),
            ..Default::default()
        }
    }

    /// The client, made on first use so that builds without registry bases
    /// never read credentials or certificates.
    pub fn client(&self, what: &str) -> Result<Arc<Client>> {
        if self.offline {
            return Err(Error::Offline(format!(
                "{what} would need the registry, and --offline forbids it"
            )));
        }
        let mut slot = self.client.lock().expect("client lock");
        if let Some(c) = slot.as_ref() {
            return Ok(c.clone());
        }
        let opts = self
            .client_options
            .clone()
            .unwrap_or_else(ClientOptions::from_env);
        let c = Arc::new(Client::new(opts)?);
        *slot = Some(c.clone());
        Ok(c)
    }

    fn lock_error(&self, message: String) -> Error {
        Error::Lock {
            path: self
                .lock_path
                .clone()
                .unwrap_or_else(|| PathBuf::from(crate::lock::LOCK_FILE_NAME)),
            message,
        }
    }

    /// A registry that does not have the manifest the lock pins: the lock
    /// is what is wrong (the repository was cleaned up, or the lock points
    /// elsewhere), not the tag, which was never asked for.
    fn pinned_but_gone(&self, name: &str, digest: &Digest, e: Error) -> Error {
        match e {
            Error::Registry {
                registry,
                status: Some(404),
                code,
                ..
            } => self.lock_error(format!(
                "base {name} is pinned to manifest {digest}, which registry {registry} does \
                 not have (HTTP 404{}); run `gantry lock --update {name}` to pin what its tag \
                 names now",
                code.map(|c| format!(" {c}")).unwrap_or_default()
            )),
            e => e,
        }
    }

    /// Loads the base `r` for `want` (the build file's platform, if any).
    pub fn load_base(
        &self,
        r: &Reference,
        want: Option<&Platform>,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Result<LoadedBase> {
        let r = &r.clone().with_default_tag();
        let name = r.to_string();
        let key = want.cloned().unwrap_or_else(host_platform).to_string();
        let locked = self.lock.as_ref().and_then(|l| l.base.get(&name));
        if let (Some(entry), Some(d)) = (locked, r.digest) {
            if entry.digest != d {
                return Err(self.lock_error(format!(
                    "base {name}: the lock has {}; run `gantry lock --update {name}`",
                    entry.digest
                )));
            }
        }
        let from_lock = locked.and_then(|entry| {
            let single = entry.platforms.len() == 1
                && entry.platforms.values().next() == Some(&entry.digest);
            if single && want.is_none() {
                entry
                    .platforms
                    .iter()
                    .next()
                    .map(|(k, d)| (entry, k.clone(), *d))
            } else {
                entry.platforms.get(&key).map(|d| (entry, key.clone(), *d))
            }
        });
        if self.locked && from_lock.is_none() {
            let why = if locked.is_none() {
                format!("base {name} is not in the lock")
            } else {
                format!("base {name} is locked without platform {key}")
            };
            return Err(self.lock_error(format!(
                "{why}; run `gantry lock --update {name}` (the lock is stale)"
            )));
        }
        if let Some((entry, platform, manifest)) = from_lock {
            let m = self
                .manifest_by_digest(r, &manifest, store, reporter)
                .map_err(|e| self.pinned_but_gone(&name, &manifest, e))?;
            let image = self.image_from_manifest(r, m, store, reporter)?;
            return Ok(LoadedBase {
                image,
                top: entry.digest,
                top_media_type: entry.media_type.clone(),
                platform,
            });
        }
        let top = self.resolve_top(r, store, reporter)?;
        self.load_top(r, top, want, store, reporter)
    }

    /// Resolves `r` in the registry, ignoring any lock, for `gantry lock`.
    pub fn resolve_for_lock(
        &self,
        r: &Reference,
        want: Option<&Platform>,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Result<(String, LockedBase)> {
        let r = &r.clone().with_default_tag();
        let top = match r.digest {
            Some(d) => self.manifest_by_digest(r, &d, store, reporter)?,
            None => self.fetch_tag(r, store, reporter)?,
        };
        let loaded = self.load_top(r, top, want, store, reporter)?;
        let entry = LockedBase {
            digest: loaded.top,
            media_type: loaded.top_media_type,
            platforms: [(loaded.platform, loaded.image.manifest_digest)]
                .into_iter()
                .collect(),
        };
        Ok((r.to_string(), entry))
    }

    fn load_top(
        &self,
        r: &Reference,
        top: Manifest,
        want: Option<&Platform>,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Result<LoadedBase> {
        let (top_digest, top_media_type) = (top.digest, top.media_type.clone());
        if top.is_index() {
            let want = want.cloned().unwrap_or_else(host_platform);
            let what = format!("base {r} (index {top_digest})");
            let cands = platform::candidates(&top.bytes, &what)?;
            let chosen = platform::choose(&cands, &want, &what)?;
            let m = self.manifest_by_digest(r, &chosen.digest, store, reporter)?;
            let image = self.image_from_manifest(r, m, store, reporter)?;
            return Ok(LoadedBase {
                image,
                top: top_digest,
                top_media_type,
                platform: want.to_string(),
            });
        }
        let image = self.image_from_manifest(r, top, store, reporter)?;
        let platform = Platform::parse(&image.platform())
            .map(|p| p.to_string())
            .unwrap_or_else(|_| image.platform());
        Ok(LoadedBase {
            image,
            top: top_digest,
            top_media_type,
            platform,
        })
    }

    /// The manifest or index `r` names: by digest when it has one, else by
    /// tag (over the network, or from the last resolution when offline).
    fn resolve_top(
        &self,
        r: &Reference,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Result<Manifest> {
        if let Some(d) = r.digest {
            return self.manifest_by_digest(r, &d, store, reporter);
        }
        if self.offline {
            let rec: Option<TagRecord> = store.get_meta(TAGS_META, &tag_key(r));
            let Some(rec) = rec else {
                return Err(Error::Offline(format!(
                    "base {r}: the store has never resolved this tag; run `gantry lock` or a \
                     build without --offline first"
                )));
            };
            return self.manifest_by_digest(r, &rec.digest, store, reporter);
        }
        self.fetch_tag(r, store, reporter)
    }

    fn fetch_tag(&self, r: &Reference, store: &Store, reporter: &dyn Reporter) -> Result<Manifest> {
        let name = r.to_string();
        let client = self.client(&format!("base {name}"))?;
        let tag = r.tag.as_deref().unwrap_or("latest");
        let m = client.get_manifest(&Repo::pull(r, &name, reporter), tag)?;
        store.put(&m.bytes)?;
        store.put_meta(
            TAGS_META,
            &tag_key(r),
            &TagRecord {
                reference: name.clone(),
                digest: m.digest,
            },
        )?;
        reporter.report(Event::BaseResolved {
            reference: &name,
            digest: &m.digest,
        });
        Ok(m)
    }

    fn manifest_by_digest(
        &self,
        r: &Reference,
        digest: &Digest,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Result<Manifest> {
        if store.has(digest) {
            let bytes = store.read(digest)?;
            let media_type = media::sniff(&bytes, None);
            return Ok(Manifest {
                digest: *digest,
                media_type,
                bytes,
            });
        }
        let what = format!("base {r}: manifest {digest}");
        if self.offline {
            return Err(Error::Offline(format!("{what} is not in the store")));
        }
        let client = self.client(&what)?;
        let name = r.to_string();
        let m = client.get_manifest(&Repo::pull(r, &name, reporter), &digest.to_string())?;
        store.put(&m.bytes)?;
        Ok(m)
    }

    /// The image manifest `m` is, with its config (from the store or the
    /// registry), checked as every source's are; its layers are only
    /// recorded as fetchable from `r`.
    fn image_from_manifest(
        &self,
        r: &Reference,
        m: Manifest,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Result<Image> {
        let what = format!("base {r}: manifest {}", m.digest);
        if m.is_index() {
            return Err(Error::format(
                what,
                "is an index inside an index; gantry reads one level",
            ));
        }
        let manifest = read::Manifest::parse(m.bytes, m.digest, m.media_type, &what)?;
        let config_bytes = self.config_of(r, &manifest, &what, store, reporter)?;
        let config_what = format!("base {r}: config {}", manifest.config_digest);
        let mut image =
            manifest.into_image(r.to_string(), config_bytes, &config_what, Vec::new())?;
        for l in &mut image.layers {
            let present = match store.lookup(&l.digest, l.size)? {
                Presence::Present => true,
                Presence::OtherSize(n) => return Err(size_error(r, &l.digest, l.size, n)),
                Presence::Absent => false,
            };
            if !present {
                store.record_remote_location(&l.digest, r)?;
                l.location = BlobLocation::Remote(Reference {
                    tag: None,
                    digest: None,
                    ..r.clone()
                });
            }
        }
        Ok(image)
    }

    /// The bytes of the config `manifest` names: from the store, else
    /// (verified) from the registry.
    fn config_of(
        &self,
        r: &Reference,
        manifest: &read::Manifest,
        what: &str,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Result<Vec<u8>> {
        let (digest, size) = (manifest.config_digest, manifest.config_size);
        match store.lookup(&digest, size)? {
            Presence::Present => return store.read(&digest),
            Presence::OtherSize(n) => return Err(size_error(r, &digest, size, n)),
            Presence::Absent => {}
        }
        if self.offline {
            return Err(Error::Offline(format!(
                "base {r}: config {digest} is not in the store"
            )));
        }
        let client = self.client(what)?;
        let name = r.to_string();
        client.fetch_small_blob(&Repo::pull(r, &name, reporter), &digest, size, store)
    }

    /// Downloads, once each and several at a time, every layer of `images`
    /// the store lacks, from the repository its [`LayerDesc::location`] (or
    /// the store's record) names. For callers outside a build (`gantry
    /// pull`); a build asked for [`crate::build::BuildOptions::fetch_layers`]
    /// fetches as tasks of its graph instead. Every layer is checked before
    /// any is downloaded, so a layer that cannot be had fails the call first.
    pub fn ensure_blobs(
        &self,
        images: &[&Image],
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let mut seen = HashSet::new();
        let mut missing = Vec::new();
        for image in images {
            for l in image.layers.iter().filter(|l| seen.insert(l.digest)) {
                if let Some(from) = self.fetchable(&image.name, l, store)? {
                    missing.push((from, l));
                }
            }
        }
        let mut graph = Graph::new();
        for (from, l) in &missing {
            graph.add(&[], 0, move |_| self.download(from, l, store, reporter));
        }
        graph.run(FETCH_JOBS)
    }

    /// Downloads one layer of `image` into the store unless it is there.
    pub fn fetch_layer(
        &self,
        image: &str,
        layer: &LayerDesc,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        match self.fetchable(image, layer, store)? {
            Some(from) => self.download(&from, layer, store, reporter),
            None => Ok(()),
        }
    }

    /// `None` when the store has the layer; otherwise the repository it is
    /// fetched from, or why it cannot be.
    fn fetchable(&self, image: &str, l: &LayerDesc, store: &Store) -> Result<Option<Reference>> {
        match store.lookup(&l.digest, l.size)? {
            Presence::Present => return Ok(None),
            Presence::OtherSize(n) => {
                return Err(Error::format(
                    format!("image {image:?}"),
                    Store::size_error(&l.digest, l.size, n).to_string(),
                ))
            }
            // Missing, or moved aside as damaged: fetched again.
            Presence::Absent => {}
        }
        let from = match &l.location {
            BlobLocation::Remote(r) => Some(r.clone()),
            // In the store when the image was loaded, moved aside since.
            BlobLocation::Store => store.remote_locations(&l.digest).into_iter().next(),
        };
        let Some(from) = from else {
            return Err(Error::format(
                format!("image {image:?}"),
                format!("layer {} is not in the store", l.digest),
            ));
        };
        if self.offline {
            return Err(Error::Offline(format!(
                "image {image:?}: layer {} of base {from} is not in the store",
                l.digest
            )));
        }
        Ok(Some(from))
    }

    fn download(
        &self,
        from: &Reference,
        l: &LayerDesc,
        store: &Store,
        reporter: &dyn Reporter,
    ) -> Result<()> {
        let what = from.to_string();
        let client = self.client(&what)?;
        client.fetch_blob(&Repo::pull(from, &what, reporter), &l.digest, l.size, store)
    }
}

/// A sound stored blob whose size the base's descriptor gets wrong.
fn size_error(r: &Reference, digest: &Digest, claimed: u64, actual: u64) -> Error {
    match Store::size_error(digest, claimed, actual) {
        Error::Mismatch {
            what,
            expected,
            actual,
        } => Error::Mismatch {
            what: format!("base {r}: {what}"),
            expected,
            actual,
        },
        e => e,
    }
}

fn tag_key(r: &Reference) -> String {
    Digest::of(r.to_string().as_bytes()).hex()
}
