//! The one record of which remote repositories hold a blob: the repository
//! a registry base's layer was found in, and every repository a push put
//! the blob into. A sink fetches or streams a layer the store lacks from
//! one of them; a push mounts from one on the same registry.
//!
//! Stores written before this record kept the same knowledge in two:
//! `blob-sources` (one base repository per blob) and `blob-locations` (the
//! repositories pushed to). They are read as well, so a store from before
//! keeps working, and folded into the new record when it is next written.

use serde::{Deserialize, Serialize};

use super::Store;
use crate::digest::Digest;
use crate::error::Result;
use crate::reference::Reference;

/// The previous version's record of a base layer's repository.
const OLD_SOURCES: &str = "blob-sources";
/// The previous version's record of the repositories pushed to, each as
/// `registry/repository`.
const OLD_PUSHED: &str = "blob-locations";

/// The repositories that hold one blob, earliest learned first.
#[derive(Debug, Default, Serialize, Deserialize)]
struct Locations(Vec<Location>);

impl super::Record for Locations {
    const KIND: &'static str = "remote-locations";
}

/// One repository that holds a blob.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Location {
    registry: String,
    repository: String,
}

impl Location {
    fn of(r: &Reference) -> Location {
        Location {
            registry: r.registry.clone(),
            repository: r.repository.clone(),
        }
    }

    fn reference(self) -> Reference {
        Reference {
            registry: self.registry,
            repository: self.repository,
            tag: None,
            digest: None,
        }
    }
}

impl Store {
    /// The repositories known to hold `digest`, as references with neither
    /// tag nor digest, the earliest learned first (for a base layer, the
    /// base's own repository). Empty when none is known: the records are
    /// caches, and a missing or unreadable one knows nothing.
    pub fn remote_locations(&self, digest: &Digest) -> Vec<Reference> {
        self.locations(digest)
            .into_iter()
            .map(Location::reference)
            .collect()
    }

    /// Records that the repository of `r` (its tag and digest ignored)
    /// holds `digest`.
    pub fn record_remote_location(&self, digest: &Digest, r: &Reference) -> Result<()> {
        let mut known = self.locations(digest);
        let new = Location::of(r);
        if known.contains(&new) {
            return Ok(());
        }
        known.push(new);
        self.put_record(&digest.hex(), &Locations(known))
    }

    fn locations(&self, digest: &Digest) -> Vec<Location> {
        let key = digest.hex();
        let Locations(mut known) = self.record(&key).unwrap_or_default();
        let old_source: Option<Location> = self.get_meta(OLD_SOURCES, &key);
        let old_pushed: Vec<String> = self.get_meta(OLD_PUSHED, &key).unwrap_or_default();
        let old_pushed = old_pushed.iter().filter_map(|name| {
            let (registry, repository) = name.split_once('/')?;
            Some(Location {
                registry: registry.to_string(),
                repository: repository.to_string(),
            })
        });
        for l in old_source.into_iter().chain(old_pushed) {
            if !known.contains(&l) {
                known.push(l);
            }
        }
        known
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn repo(name: &str) -> Reference {
        let (registry, repository) = name.split_once('/').unwrap();
        Reference {
            registry: registry.into(),
            repository: repository.into(),
            tag: None,
            digest: None,
        }
    }

    #[test]
    fn locations_are_recorded_once_in_the_order_learned() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"layer");
        assert!(store.remote_locations(&d).is_empty());
        let mut tagged = repo("r.example/base");
        tagged.tag = Some("1".into());
        store.record_remote_location(&d, &tagged).unwrap();
        store
            .record_remote_location(&d, &repo("r.example/app"))
            .unwrap();
        store
            .record_remote_location(&d, &repo("r.example/base"))
            .unwrap();
        assert_eq!(
            store.remote_locations(&d),
            [repo("r.example/base"), repo("r.example/app")]
        );
    }

    #[test]
    fn a_store_written_by_the_previous_version_keeps_its_locations() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let d = Digest::of(b"layer");
        // The two records as the previous version wrote them.
        store
            .put_meta(
                OLD_SOURCES,
                &d.hex(),
                &serde_json::json!({"registry": "r.example", "repository": "base"}),
            )
            .unwrap();
        let pushed: BTreeSet<String> = ["r.example/app".to_string(), "o.example/x/y".to_string()]
            .into_iter()
            .collect();
        store.put_meta(OLD_PUSHED, &d.hex(), &pushed).unwrap();
        assert_eq!(
            store.remote_locations(&d),
            [
                repo("r.example/base"),
                repo("o.example/x/y"),
                repo("r.example/app")
            ]
        );
        // Folded into the new record on the next write, nothing lost.
        store
            .record_remote_location(&d, &repo("r.example/more"))
            .unwrap();
        let Locations(folded) = store.record(&d.hex()).unwrap();
        assert_eq!(folded.len(), 4);
        assert_eq!(store.remote_locations(&d).len(), 4);
    }
}
