//! `gantry push` asks the target registry about the last push to each
//! reference while the build checks its inputs. These tests pin that those
//! early answers stand in for the push's own questions without changing
//! what ends up in the registry: a changed image still gets its new blobs,
//! a repository emptied since still gets everything, and no blob is asked
//! about twice.

mod common;

use std::collections::BTreeMap;
use std::fs;

use common::docker_registry::{DockerRegistry, Options};
use common::proxy::{self, Proxy};
use common::push::{
    actions, app_project, metadata, peers, pushed, skopeo_copy_verifies, skopeo_digest,
};

/// HEADs per path in the proxy's log.
fn heads(proxy: &Proxy) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for l in proxy.repo_requests() {
        if l.method == "HEAD" {
            *out.entry(l.path).or_default() += 1;
        }
    }
    out
}

/// The digests of the blobs the metadata reports for `repository`.
fn blobs(meta: &serde_json::Value, repository: &str) -> Vec<String> {
    meta["images"][0]["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["repository"] == repository)
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn a_changed_image_uploads_its_new_blobs_after_early_questions_about_the_old_ones() {
    if !peers() {
        return;
    }
    let reg = DockerRegistry::start(Options::default());
    let proxy = Proxy::start(reg.port, proxy::Options::default());
    let target = format!("{}/team/app:1", proxy.host());
    let repo = format!("{}/team/app", proxy.host());
    let p = app_project(&[&target]);
    p.ok(&["push", "--metadata-file", "first.json"]);
    let old = blobs(&metadata(&p.join("first.json")), &repo);

    p.write("app.conf", "mode = changed\n");
    proxy.clear_log();
    let out = p.ok(&["push", "--metadata-file", "second.json"]);
    let meta = metadata(&p.join("second.json"));
    // Config and the changed layer are new; the data layer is not.
    assert_eq!(actions(&meta, &repo), ["uploaded", "skipped", "uploaded"]);
    let new = blobs(&meta, &repo);
    assert_ne!(new[0], old[0]);
    assert_eq!(new[1], old[1]);

    let digest = &pushed(&out)[0].1;
    assert_eq!(skopeo_digest(&target).as_ref(), Some(digest));
    let copy = tempfile::tempdir().unwrap();
    skopeo_copy_verifies(&target, copy.path());

    // Every blob asked about once: the image's, and those only the last
    // push had (asked early, before the build showed they had gone).
    let heads = heads(&proxy);
    let path = |d: &str| format!("/v2/team/app/blobs/{d}");
    for d in new.iter().chain(&old) {
        assert_eq!(heads.get(&path(d)), Some(&1), "{d}: {heads:#?}");
    }
    assert_eq!(
        heads.get("/v2/team/app/manifests/1"),
        Some(&1),
        "{heads:#?}"
    );
}

#[test]
fn a_repository_emptied_since_the_last_push_gets_every_blob_with_one_head_each() {
    if !peers() {
        return;
    }
    let mut reg = DockerRegistry::start(Options::default());
    let proxy = Proxy::start(reg.port, proxy::Options::default());
    let target = format!("{}/team/app:1", proxy.host());
    let repo = format!("{}/team/app", proxy.host());
    let p = app_project(&[&target]);
    let first = pushed(&p.ok(&["push"]));

    // The registry forgets the repository (its blobs stay in its blob
    // store, but belong to no repository): every early answer is "no".
    reg.stop();
    let repos = reg.dir.path().join("data/docker/registry/v2/repositories");
    fs::remove_dir_all(repos.join("team/app")).unwrap();
    reg.resume();
    assert_eq!(skopeo_digest(&target), None);

    proxy.clear_log();
    let out = p.ok(&["push", "--metadata-file", "m.json"]);
    assert_eq!(pushed(&out), first);
    let meta = metadata(&p.join("m.json"));
    assert_eq!(actions(&meta, &repo), ["uploaded"; 3]);
    let copy = tempfile::tempdir().unwrap();
    skopeo_copy_verifies(&target, copy.path());

    let heads = heads(&proxy);
    for d in blobs(&meta, &repo) {
        assert_eq!(
            heads.get(&format!("/v2/team/app/blobs/{d}")),
            Some(&1),
            "{d}: {heads:#?}"
        );
    }
    assert_eq!(
        heads.get("/v2/team/app/manifests/1"),
        Some(&1),
        "{heads:#?}"
    );
}
