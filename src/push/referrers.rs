//! Attaching each pushed image's documents (SBOM, provenance) as referrers,
//! once the image's manifests are in place: each artifact manifest is put
//! by digest (its blobs went up with the image's), then listed where
//! clients look for it.
//!
//! A registry with the Referrers API lists a manifest with a `subject` by
//! itself: it says so by answering the put with `OCI-Subject`, or by
//! answering `GET /v2/<name>/referrers/<digest>` with an index. Any other
//! (Debian's reference registry 2.8, for one) gets the distribution spec's
//! fallback: an index under the tag `sha256-<hex>` that clients maintain.
//!
//! Several clients may add to one fallback tag at once, and the protocol
//! has no compare-and-swap (a registry may honour `If-Match`; 2.8 does
//! not). So the index is read, merged and put, then read again after a
//! pause longer than another client's read-merge-put takes: if an entry of
//! ours is missing, a client that read before our put has written since,
//! and the merge starts again from what it wrote, keeping its entries.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use super::{PushRequest, RepoPlan};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::manifest;
use crate::media;
use crate::progress::Reporter;
use crate::registry::referrers::Written;
use crate::registry::{Client, Repo};
use crate::sbom::artifact::{self, Merge, Referrer};

/// Rounds of read, merge and put before a fallback tag that keeps
/// changing fails the push.
const ATTEMPTS: u32 = 8;

/// How long a written fallback index is left before it is read back: far
/// longer than another client's read, merge and put.
const SETTLE: Duration = Duration::from_millis(250);

/// Puts the referrers of every request into each repository it was
/// pushed to, and lists them (Referrers API or fallback tag).
pub(super) fn attach(
    plans: &[RepoPlan],
    requests: &[PushRequest<'_>],
    client: &Client,
    reporter: &dyn Reporter,
) -> Result<()> {
    for p in plans {
        let asked: BTreeSet<usize> = p.tags.iter().map(|(_, i)| *i).collect();
        let referrers: Vec<&Referrer> = asked
            .iter()
            .flat_map(|&i| requests[i].referrers.iter())
            .collect();
        if referrers.is_empty() {
            continue;
        }
        let what = format!("referrers in {}", p.name());
        let at = p.push_to(&what, reporter);
        let mut api = None;
        let mut fallback: BTreeMap<Digest, Vec<&Referrer>> = BTreeMap::new();
        for r in referrers {
            let by_digest = r.manifest.digest.to_string();
            // Already there (pushed before, or by another client now): not
            // put again, so the registry is asked whether it lists it.
            let there = client.manifest_digest(&at, &by_digest, media::OCI_MANIFEST)?
                == Some(r.manifest.digest);
            let answered = !there
                && stored_race(|| {
                    client.put_referrer(&at, media::OCI_MANIFEST, &r.manifest.bytes)
                })?;
            let listed = match (answered, api) {
                (true, _) => true,
                (false, Some(known)) => known,
                (false, None) => {
                    let known = client.has_referrers_api(&at, &r.subject)?;
                    api = Some(known);
                    known
                }
            };
            if !listed {
                fallback.entry(r.subject).or_default().push(r);
            }
        }
        for (subject, entries) in fallback {
            merge_into_fallback(client, &at, &subject, &entries)?;
        }
    }
    Ok(())
}

/// Adds `entries` to the fallback index of `subject`, keeping whatever
/// other clients list there, until a read back finds all of them.
fn merge_into_fallback(
    client: &Client,
    at: &Repo<'_>,
    subject: &Digest,
    entries: &[&Referrer],
) -> Result<()> {
    let tag = artifact::fallback_tag(subject);
    let listed = |bytes: &[u8]| -> Result<bool> {
        let index = manifest::parse_index(bytes, &format!("referrers index {tag}"))?;
        Ok(entries.iter().all(|e| {
            index
                .manifests()
                .iter()
                .any(|m| m.digest().as_ref() == e.manifest.digest.to_string())
        }))
    };
    for attempt in 1..=ATTEMPTS {
        let current = client.get_tagged_index(at, &tag)?;
        let mut bytes = current.as_ref().map(|c| c.bytes.clone());
        let mut changed = false;
        for e in entries {
            if let Merge::Write(b) =
                artifact::merge_referrer(bytes.as_deref(), &e.manifest.descriptor, &tag)?
            {
                bytes = Some(b);
                changed = true;
            }
        }
        if !changed && attempt == 1 {
            // Every entry is listed already (the same image pushed again).
            return Ok(());
        }
        if changed {
            let new = bytes.as_deref().unwrap_or_default();
            let etag = current.as_ref().and_then(|c| c.etag.as_deref());
            if stored_race(|| client.put_tagged_index(at, &tag, new, etag))? == Written::Conflict {
                pause(attempt);
                continue;
            }
        }
        std::thread::sleep(SETTLE);
        match client.get_tagged_index(at, &tag)? {
            Some(back) if listed(&back.bytes)? => return Ok(()),
            _ => pause(attempt),
        }
    }
    Err(Error::Registry {
        registry: at.host.to_string(),
        reference: format!("{}:{tag}", at.repository),
        status: None,
        code: None,
        message: format!(
            "the referrers index kept changing under other clients' writes; gave up after \
             {ATTEMPTS} rounds (push again)"
        ),
        cause: None,
    })
}

/// Runs `put` again when the registry answers `DIGEST_INVALID` to bytes
/// whose digest gantry computed itself: the reference registry's storage
/// gives that answer when two clients write the same blob at the same
/// moment, and the next attempt finds it written.
fn stored_race<T>(mut put: impl FnMut() -> Result<T>) -> Result<T> {
    let mut attempt = 1;
    loop {
        match put() {
            Err(Error::Registry {
                code: Some(code), ..
            }) if code == "DIGEST_INVALID" && attempt < ATTEMPTS => {
                pause(attempt);
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// A random wait that grows with the attempt, so that two clients that
/// keep colliding stop doing it in step.
fn pause(attempt: u32) {
    let ms = 20 * u64::from(attempt) + fastrand::u64(0..50 * u64::from(attempt));
    std::thread::sleep(Duration::from_millis(ms));
}
