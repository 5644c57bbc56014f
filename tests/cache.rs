//! The registry as the build cache: two stores stand for two CI machines
//! that start empty, the reference registry (behind a logging proxy, whose
//! log is the registry's access log) holds what the first pushed, and the
//! second rebuilds the same image by hashing, not compressing. A lying
//! source comes from the in-process fake registry, since a real one will
//! not lie on demand.

mod common;

use std::fs;

use common::docker_registry::{DockerRegistry, Options};
use common::fake_registry::{Auth, FakeRegistry};
use common::proxy::{self, Proxy};
use common::push::{noise, peers, pushed};
use common::Project;
use serde_json::Value;

/// A scratch image `app` of three layers, the first 1.5 MB that does not
/// compress away, tagged `tag`; the same files on every machine.
fn machine(tag: &str) -> Project {
    let p = Project::new();
    p.write(
        "gantry.toml",
        format!(
            "[image.app]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\
             entrypoint = [\"/bin/app\"]\ntags = [{tag:?}]\n\n\
             [[image.app.layer]]\nname = \"data\"\nfiles = [{{ src = \"data/\", dst = \"/data/\" }}]\n\n\
             [[image.app.layer]]\nname = \"lib\"\nfiles = [{{ src = \"lib/\", dst = \"/lib/app/\" }}]\n\n\
             [[image.app.layer]]\nname = \"conf\"\nfiles = [{{ src = \"app.conf\", dst = \"/etc/app.conf\" }}]\n"
        ),
    );
    p.write("data/big.bin", noise(1_500_000, 7));
    p.write("lib/one.txt", "one\n".repeat(1000));
    p.write("app.conf", "mode = test\n");
    p
}

/// Blob uploads and upload sessions in the access log: what a push that
/// sends nothing must not show.
fn blob_writes(log: &[proxy::Logged]) -> Vec<String> {
    log.iter()
        .filter(|l| (l.method == "POST" || l.method == "PUT") && l.path.contains("/blobs/"))
        .map(|l| format!("{} {}?{}", l.method, l.path, l.query))
        .collect()
}

/// (name, status) of every layer listed at `pointer` in a report.
fn statuses(report: &Value, pointer: &str) -> Vec<(String, String)> {
    report
        .pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("no {pointer} in {report:#}"))
        .iter()
        .map(|l| {
            (
                l["name"].as_str().unwrap().to_string(),
                l["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `status` of every layer of the push report.
fn push_statuses(report: &Value) -> Vec<(String, String)> {
    statuses(report, "/images/0/layers")
}

/// `status` of every layer of the build report.
fn build_statuses(report: &Value) -> Vec<(String, String)> {
    statuses(report, "/images/0/platforms/0/layers")
}

fn all(status: &str) -> Vec<(String, String)> {
    ["data", "lib", "conf"]
        .iter()
        .map(|n| (n.to_string(), status.to_string()))
        .collect()
}

fn json(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

#[test]
fn fresh_store_push_of_an_unchanged_image_sends_no_blob_and_compresses_nothing() {
    if !peers() {
        return;
    }
    let reg = DockerRegistry::start(Options::default());
    let proxy = Proxy::start(reg.port, proxy::Options::default());
    let target = format!("{}/ci/app:main", proxy.host());

    let a = machine(&target);
    let first = pushed(&a.ok(&["push"]));
    assert_eq!(first.len(), 1);

    // Machine B: another checkout of the same files, an empty store.
    let b = machine(&target);
    proxy.clear_log();
    let report = json(&b.ok(&["push", "--json"]));
    assert_eq!(push_statuses(&report), all("cached"), "{report:#}");
    assert_eq!(report["images"][0]["digest"], first[0].1.as_str());
    assert_eq!(blob_writes(&proxy.log()), Vec::<String>::new());
    let layer = &report["images"][0]["layers"][0];
    assert_eq!(
        layer["cached_from"],
        format!("{}/ci/app:main", proxy.host())
    );

    // One file changed: that layer alone is compressed and uploaded (with
    // the config, which lists its new diff_id).
    let c = machine(&target);
    c.write("app.conf", "mode = changed\n");
    proxy.clear_log();
    // Without the SBOM, whose documents change with the layer and go up too.
    let report = json(&c.ok(&["push", "--json", "--sbom", "none"]));
    assert_eq!(
        push_statuses(&report),
        [("data", "cached"), ("lib", "cached"), ("conf", "rebuilt")]
            .map(|(n, s)| (n.to_string(), s.to_string()))
    );
    let uploads: Vec<_> = proxy.upload_puts();
    assert_eq!(uploads.len(), 2, "{:?}", blob_writes(&proxy.log()));
    let conf = report["images"][0]["layers"][2]["digest"].as_str().unwrap();
    assert!(
        uploads
            .iter()
            .any(|u| u.query.contains(&conf.replace(':', "%3A")) || u.query.contains(conf)),
        "the changed layer is one of the uploads: {uploads:?}"
    );
}

#[test]
fn fresh_store_tarball_through_cache_hits_equals_the_cold_tarball() {
    if !peers() {
        return;
    }
    let reg = DockerRegistry::start(Options::default());
    let target = format!("{}/ci/app:main", reg.host());
    let a = machine(&target);
    a.ok(&["build", "-o", "app.tar"]);
    a.ok(&["push"]);

    let b = machine(&target);
    let report = json(&b.ok(&["build", "-o", "app.tar", "--json", "--cache-from", &target]));
    assert_eq!(build_statuses(&report), all("cached"), "{report:#}");
    assert_eq!(
        fs::read(a.join("app.tar")).unwrap(),
        fs::read(b.join("app.tar")).unwrap(),
        "a tarball through cache hits is the cold build's, byte for byte"
    );
    // The hits are in B's store now: the next build reuses them.
    let again = json(&b.ok(&["build", "--json", "--cache-from", &target]));
    assert_eq!(build_statuses(&again), all("reused"));

    // --no-cache builds cold, to the same bytes.
    let cold = json(&b.ok(&[
        "build",
        "-o",
        "cold.tar",
        "--json",
        "--no-cache",
        "--cache-from",
        &target,
    ]));
    assert_eq!(build_statuses(&cold), all("rebuilt"));
    assert_eq!(
        fs::read(b.join("cold.tar")).unwrap(),
        fs::read(b.join("app.tar")).unwrap()
    );
}

#[test]
fn tarball_through_cache_hits_runs_in_docker() {
    if !peers() || !common::require_docker() {
        return;
    }
    let Some(busybox) = common::busybox() else {
        return;
    };
    let reg = DockerRegistry::start(Options::default());
    let target = format!("{}/ci/runs:main", reg.host());
    let project = || {
        let p = machine(&target);
        fs::create_dir_all(p.join("bin")).unwrap();
        fs::copy(&busybox, p.join("bin/busybox")).unwrap();
        let text = fs::read_to_string(p.join("gantry.toml")).unwrap().replace(
            "entrypoint = [\"/bin/app\"]",
            "entrypoint = [\"/bin/busybox\", \"cat\", \"/etc/app.conf\"]",
        ) + "\n[[image.app.layer]]\nname = \"bin\"\n\
             files = [{ src = \"bin/busybox\", dst = \"/bin/busybox\", mode = \"0755\" }]\n";
        p.write("gantry.toml", text);
        p
    };
    project().ok(&["push"]);
    let b = project();
    let report = json(&b.ok(&["build", "-o", "app.tar", "--json", "--cache-from", &target]));
    assert!(
        build_statuses(&report).iter().all(|(_, s)| s == "cached"),
        "{report:#}"
    );
    let mut images = common::docker::DockerImages::new();
    common::docker::docker_load(&mut images, &b.join("app.tar"), &target);
    let out = common::docker::docker_run(&[], &target, &[]);
    assert_eq!(out, "mode = test\n");
}

#[test]
fn lying_cache_source_is_caught_and_the_layer_compressed() {
    // Machine A builds the image, so the lie can name its real blobs.
    let a = machine("example.test/app:1");
    let built = json(&a.ok(&["build", "--json"]));
    let layers = built["images"][0]["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .clone();
    let blob = |digest: &str| {
        fs::read(
            a.store
                .path()
                .join("blobs/sha256")
                .join(&digest["sha256:".len()..]),
        )
        .unwrap()
    };
    let manifest: Value =
        serde_json::from_slice(&blob(built["images"][0]["digest"].as_str().unwrap())).unwrap();
    let recipe = &manifest["layers"][0]["annotations"]["dev.gantry.layer.recipe"];
    assert!(
        recipe.as_str().unwrap().starts_with("gzip;level="),
        "{manifest}"
    );

    // A cache manifest that says the `data` layer (its diff_id) is the
    // blob of the `conf` layer.
    let fake = FakeRegistry::start(Auth::None);
    let conf = layers[2]["digest"].as_str().unwrap();
    let conf_bytes = blob(conf);
    fake.put_blob(&conf_bytes);
    let empty = fake.put_blob(b"{}");
    let lie = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.gantry.layer-cache.v1+json",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty, "size": 2},
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": conf,
            "size": conf_bytes.len(),
            "annotations": {
                "dev.gantry.layer.diff_id": layers[0]["diff_id"],
                "dev.gantry.layer.recipe": recipe,
            }
        }]
    });
    let bytes = serde_json::to_vec(&lie).unwrap();
    fake.put_manifest(
        "cache",
        "lie",
        "application/vnd.oci.image.manifest.v1+json",
        &bytes,
    );
    let source = format!("{}/cache:lie", fake.host());

    let b = machine("example.test/app:1");
    let out = b.run(&["build", "-o", "app.tar", "--json", "--cache-from", &source]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("not used, compressing it instead") && stderr.contains(&source),
        "the lie is reported: {stderr}\n{:?}",
        fake.log()
    );
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(build_statuses(&report), all("rebuilt"));
    assert_eq!(report["images"][0]["digest"], built["images"][0]["digest"]);
    a.ok(&["build", "-o", "app.tar"]);
    assert_eq!(
        fs::read(a.join("app.tar")).unwrap(),
        fs::read(b.join("app.tar")).unwrap()
    );
    // The blob the source sent is the blob its digest names: it may sit in
    // the store, but no layer record points the data layer at it.
    let again = json(&b.ok(&["build", "--json"]));
    assert_eq!(again["images"][0]["digest"], built["images"][0]["digest"]);
}

#[test]
fn unreachable_cache_source_costs_only_a_warning() {
    let port = common::docker_registry::free_port();
    let source = format!("127.0.0.1:{port}/cache:main");
    let p = machine("example.test/app:1");
    let out = p.run(&["build", "--cache-from", &source]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("warning") && stderr.contains(&format!("cache source {source}")),
        "{stderr}"
    );
}

#[test]
fn offline_build_never_asks_a_cache_source() {
    let fake = FakeRegistry::start(Auth::None);
    let p = machine("example.test/app:1");
    let source = format!("{}/cache:main", fake.host());
    p.ok(&["build", "--offline", "--cache-from", &source]);
    p.write(
        "gantry.toml",
        fs::read_to_string(p.join("gantry.toml")).unwrap().replacen(
            "[image.app]",
            &format!("cache_from = [{source:?}]\n\n[image.app]"),
            1,
        ),
    );
    p.write("app.conf", "mode = offline\n");
    p.ok(&["build", "--offline"]);
    assert_eq!(fake.log(), Vec::<String>::new());
}

#[test]
fn cache_to_seeds_a_fresh_machine_that_pushes_with_cache_from() {
    if !peers() {
        return;
    }
    let reg = DockerRegistry::start(Options::default());
    let proxy = Proxy::start(reg.port, proxy::Options::default());
    let cache = format!("{}/ci/app-cache:main", proxy.host());
    let target = format!("{}/ci/app:pr-7", proxy.host());

    // A pull-request build: nothing pushed but the cache.
    let a = machine(&target);
    let out = a.ok(&["build", "--cache-to", &cache]);
    assert!(
        out.lines()
            .any(|l| l.starts_with(&format!("cache {cache}@sha256:"))),
        "{out}"
    );
    assert_eq!(
        common::push::skopeo_digest(&target),
        None,
        "no image was tagged"
    );

    let b = machine(&target);
    proxy.clear_log();
    // Without the SBOM, whose documents are new to this repository.
    let report = json(&b.ok(&["push", "--json", "--sbom", "none", "--cache-from", &cache]));
    assert_eq!(push_statuses(&report), all("cached"), "{report:#}");
    // The layers are mounted from the cache repository, not sent: only the
    // config goes up.
    assert_eq!(
        proxy.upload_puts().len(),
        1,
        "{:?}",
        blob_writes(&proxy.log())
    );
    let actions: Vec<&str> = report["images"][0]["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["uploaded", "mounted", "mounted", "mounted"]);
    assert_eq!(
        common::push::skopeo_digest(&target).as_deref(),
        report["images"][0]["digest"].as_str()
    );
}

/// The GitLab recipe of docs/cache.md, its gantry step taken from the
/// document as written: the default branch pushes its image and the cache
/// manifest, then a branch on a fresh machine builds through cache hits.
/// Only the registry is replaced (by the reference registry on loopback).
#[test]
fn cache_recipe_of_the_docs_builds_a_branch_through_the_default_branch_cache() {
    if !peers() {
        return;
    }
    let doc = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/cache.md")).unwrap();
    let gitlab = common::markdown::fenced_blocks(&doc, "yaml")
        .into_iter()
        .map(|(_, b)| b)
        .find(|b| b.starts_with("# .gitlab-ci.yml"))
        .expect("a GitLab recipe");
    let step = gitlab
        .lines()
        .map(str::trim)
        .find_map(|l| l.strip_prefix("- if ["))
        .map(|rest| format!("if [{rest}"))
        .expect("the gantry step");
    let cache_var = gitlab
        .lines()
        .find_map(|l| l.trim().strip_prefix("CACHE: "))
        .expect("the CACHE variable")
        .trim_matches('"')
        .to_string();

    let reg = DockerRegistry::start(Options::default());
    let registry_image = format!("{}/acme", reg.host());
    let bin = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(common::gantry_bin(), bin.path().join("gantry")).unwrap();
    let path = format!(
        "{}:{}",
        bin.path().display(),
        std::env::var("PATH").unwrap()
    );
    let run = |p: &Project, branch: &str| {
        let mut c = std::process::Command::new("bash");
        c.args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
            .arg(format!("export CACHE=\"{cache_var}\"\n{step}"))
            .current_dir(p.path())
            .env("PATH", &path)
            .env("GANTRY_STORE", p.store.path())
            .env_remove("SOURCE_DATE_EPOCH")
            .env("CI_REGISTRY_IMAGE", &registry_image)
            .env("CI_DEFAULT_BRANCH", "main")
            .env("CI_COMMIT_BRANCH", branch)
            .env("CI_COMMIT_REF_SLUG", branch);
        common::git::isolate_git(&mut c, p.path());
        let out = c.output().unwrap();
        assert!(
            out.status.success(),
            "{step}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let checkout = || {
        let p = machine("placeholder");
        let text = fs::read_to_string(p.join("gantry.toml")).unwrap().replace(
            "tags = [\"placeholder\"]",
            "tags = [\"{{REGISTRY_IMAGE|lower}}/app:{{GIT_SHORT_COMMIT}}\"]",
        ) + "\n[stamp.unstamped]\nREGISTRY_IMAGE = \"localhost/acme\"\n";
        p.write("gantry.toml", text);
        p.ok(&["lock"]);
        common::git::init(p.path(), "main");
        common::git::git(p.path(), &["add", "-A"]);
        common::git::git(p.path(), &["commit", "-q", "-m", "app"]);
        p
    };
    let main = checkout();
    run(&main, "main");
    let pushed = common::push::metadata(&main.join("push.json"));
    assert_eq!(pushed["images"][0]["layers"].as_array().unwrap().len(), 3);

    let branch = checkout();
    run(&branch, "feature-x");
    let report = common::oci::read_json(&branch.join("build.json"));
    assert_eq!(build_statuses(&report), all("cached"), "{report:#}");
    // The branch seeded a cache of its own for its next run.
    assert!(
        common::push::skopeo_digest(&format!("{registry_image}/gantry-cache:feature-x")).is_some()
    );
}

#[test]
fn cache_hit_whose_bytes_are_not_its_digest_never_enters_the_store() {
    let a = machine("example.test/app:1");
    let built = json(&a.ok(&["build", "--json"]));
    let blob = |digest: &str| {
        fs::read(
            a.store
                .path()
                .join("blobs/sha256")
                .join(&digest["sha256:".len()..]),
        )
        .unwrap()
    };
    let manifest_digest = built["images"][0]["digest"].as_str().unwrap();
    let manifest: Value = serde_json::from_slice(&blob(manifest_digest)).unwrap();
    // A truthful image, served by a registry that sends other bytes for the
    // data layer's blob.
    let fake = FakeRegistry::start(Auth::None);
    fake.put_blob(&blob(manifest["config"]["digest"].as_str().unwrap()));
    for l in manifest["layers"].as_array().unwrap() {
        fake.put_blob(&blob(l["digest"].as_str().unwrap()));
    }
    fake.put_manifest(
        "app",
        "main",
        "application/vnd.oci.image.manifest.v1+json",
        &blob(manifest_digest),
    );
    let data = manifest["layers"][0]["digest"].as_str().unwrap();
    fake.fault(
        &format!("blobs/{data}"),
        vec![common::fake_registry::Fault::Lie],
    );
    let source = format!("{}/app:main", fake.host());

    let b = machine("example.test/app:1");
    let out = b.run(&["build", "-o", "app.tar", "--json", "--cache-from", &source]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("not used, compressing it instead"),
        "{stderr}"
    );
    let report = json(&String::from_utf8_lossy(&out.stdout));
    assert_eq!(
        build_statuses(&report),
        [("data", "rebuilt"), ("lib", "cached"), ("conf", "cached")]
            .map(|(n, s)| (n.to_string(), s.to_string()))
    );
    assert_eq!(report["images"][0]["digest"], manifest_digest);
    // What sits in the store under the data layer's digest is what a cold
    // build compressed, not what the registry sent.
    assert_eq!(
        fs::read(
            b.store
                .path()
                .join("blobs/sha256")
                .join(&data["sha256:".len()..])
        )
        .unwrap(),
        blob(data)
    );
}
