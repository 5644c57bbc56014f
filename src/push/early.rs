//! Asking the target registries about a push before the build is done.
//!
//! `gantry push` first makes sure its images are up to date, which on a warm
//! push means checking every input and finding nothing changed. Meanwhile
//! the registries would sit idle, and then be asked one `HEAD` per blob and
//! one per tag. So while the inputs are checked, the blobs and tag that the
//! last push to each target reference sent (recorded in the store) are
//! asked about already: on an unchanged image these are exactly the
//! questions the push would ask, and the push uses their answers instead of
//! asking again. A blob that is no longer part of the image cost one
//! needless `HEAD`; a blob new to it is asked about as usual.
//!
//! Answers are only ever of this run: nothing the registry said in an
//! earlier run is trusted.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use serde::{Deserialize, Serialize};

use crate::bases::BaseOptions;
use crate::digest::Digest;
use crate::progress::Silent;
use crate::reference::Reference;
use crate::registry::{Access, Client, Repo};
use crate::store::Store;

/// What was last pushed to a reference (`registry/repository:tag`), keyed
/// by the digest of that text.
const PUSHED_META: &str = "pushed";

#[derive(Serialize, Deserialize, PartialEq)]
struct Pushed {
    /// The media type the tag's manifest was asked for and put with.
    media_type: String,
    blobs: Vec<Digest>,
}

/// Notes what was pushed to `reference`, for the next push to ask early.
/// A cache: failing to write it costs the next push its head start.
pub(super) fn record(store: &Store, reference: &str, media_type: &str, blobs: &[Digest]) {
    let record = Pushed {
        media_type: media_type.to_string(),
        blobs: blobs.to_vec(),
    };
    let key = key(reference);
    if store.get_meta::<Pushed>(PUSHED_META, &key).as_ref() != Some(&record) {
        let _ = store.put_meta(PUSHED_META, &key, &record);
    }
}

/// The references this store pushed to, latest last, at most this many.
const PUSHED_REFERENCES: &str = "pushed-references";
const PUSHED_REFERENCES_KEPT: usize = 16;

/// Notes that `reference` was pushed to, for later pushes to use as a
/// cache source. A cache: failing to write it costs a later push a source.
pub(super) fn record_reference(store: &Store, reference: &str) {
    let mut refs: Vec<String> = store.get_meta(PUSHED_REFERENCES, "all").unwrap_or_default();
    if refs.last().map(String::as_str) == Some(reference) {
        return;
    }
    refs.retain(|r| r != reference);
    refs.push(reference.to_string());
    let excess = refs.len().saturating_sub(PUSHED_REFERENCES_KEPT);
    refs.drain(..excess);
    let _ = store.put_meta(PUSHED_REFERENCES, "all", &refs);
}

/// The references this store pushed to before on the registries of
/// `targets` (other registries may not be reachable from here).
pub(super) fn pushed_before(store: &Store, targets: &[Reference]) -> Vec<Reference> {
    let refs: Vec<String> = store.get_meta(PUSHED_REFERENCES, "all").unwrap_or_default();
    refs.iter()
        .rev()
        .filter_map(|r| r.parse::<Reference>().ok())
        .filter(|r| targets.iter().any(|t| t.registry == r.registry))
        .collect()
}

fn key(reference: &str) -> String {
    Digest::of(reference.as_bytes()).hex()
}

/// (registry host, repository, digest or tag).
type Key<T> = (String, String, T);

/// What the registries answered, by repository.
#[derive(Default)]
pub(super) struct Answers {
    /// Whether the blob is there.
    blobs: HashMap<Key<Digest>, bool>,
    /// What the tag names, asked with this media type.
    tags: HashMap<Key<String>, (String, Option<Digest>)>,
}

impl Answers {
    pub(super) fn blob(&self, host: &str, repository: &str, digest: &Digest) -> Option<bool> {
        self.blobs
            .get(&(host.to_string(), repository.to_string(), *digest))
            .copied()
    }

    /// `Some(answer)` when the tag was asked with `media_type`.
    pub(super) fn tag(
        &self,
        host: &str,
        repository: &str,
        tag: &str,
        media_type: &str,
    ) -> Option<Option<Digest>> {
        self.tags
            .get(&(host.to_string(), repository.to_string(), tag.to_string()))
            .filter(|(asked_with, _)| asked_with == media_type)
            .map(|(_, digest)| *digest)
    }
}

/// Questions being asked on a thread of their own.
pub struct Early(JoinHandle<Answers>);

impl Early {
    /// Makes the registry client (which takes a while: it starts a
    /// runtime and reads credentials), reaches each target's registry and
    /// asks what the last push to each target sent, on up to `jobs`
    /// connections. Not waited for until the push needs the answers; a
    /// build that fails leaves it behind. A client that cannot be made
    /// gives no answers; the push meets the same error and reports it.
    pub fn start(
        registry: Arc<BaseOptions>,
        store: Store,
        targets: Vec<Reference>,
        jobs: usize,
    ) -> Early {
        Early(std::thread::spawn(move || match registry.client("push") {
            Ok(client) => ask(&client, &store, &targets, jobs.max(1)),
            Err(_) => Answers::default(),
        }))
    }

    /// Waits for the answers; a question that failed has none.
    pub(super) fn answers(self) -> Answers {
        self.0.join().unwrap_or_default()
    }
}

enum Question {
    Blob(Digest),
    Tag { tag: String, media_type: String },
}

fn ask(client: &Client, store: &Store, targets: &[Reference], jobs: usize) -> Answers {
    let mut hosts: Vec<&str> = targets.iter().map(Reference::registry_host).collect();
    hosts.sort_unstable();
    hosts.dedup();
    for host in hosts {
        client.warm_up(host);
    }
    let mut questions: Vec<(&Reference, Question)> = Vec::new();
    // Tags of one repository share blobs: each is asked about once.
    let mut blobs_asked = HashSet::new();
    for target in targets {
        let tag = target.tag.as_deref().unwrap_or("latest");
        let full = format!("{}:{tag}", target.name());
        let Some(last) = store.get_meta::<Pushed>(PUSHED_META, &key(&full)) else {
            continue;
        };
        for d in last.blobs {
            if blobs_asked.insert((target.name(), d)) {
                questions.push((target, Question::Blob(d)));
            }
        }
        questions.push((
            target,
            Question::Tag {
                tag: tag.to_string(),
                media_type: last.media_type,
            },
        ));
    }
    let answers = Mutex::new(Answers::default());
    // Every call succeeds: a question that cannot be answered is left
    // unanswered, and the push asks it again and reports what goes wrong.
    let _ = crate::jobs::for_each_parallel(&questions, jobs, |(target, q)| {
        let (host, repository) = (target.registry_host(), target.repository.as_str());
        let at = |what| Repo {
            host,
            repository,
            what,
            access: Access::Push { mount_from: None },
            reporter: &Silent,
        };
        let (h, r) = (host.to_string(), repository.to_string());
        match q {
            Question::Blob(d) => {
                if let Ok(there) = client.blob_exists(&at("blob"), d) {
                    let mut a = answers.lock().expect("answers lock");
                    a.blobs.insert((h, r, *d), there);
                }
            }
            Question::Tag { tag, media_type } => {
                if let Ok(now) = client.manifest_digest(&at("manifest"), tag, media_type) {
                    let mut a = answers.lock().expect("answers lock");
                    a.tags
                        .insert((h, r, tag.clone()), (media_type.clone(), now));
                }
            }
        }
        Ok(())
    });
    answers.into_inner().expect("answers lock")
}
