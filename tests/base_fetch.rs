//! Registry bases' layers fetched for outputs that copy every byte: in
//! parallel, as tasks of the build, and only those the output holds.

mod common;

use std::fs;
use std::time::{Duration, Instant};

use common::fake_registry::{Auth, FakeRegistry, Fault};
use common::registry_bases::*;
use common::Project;

/// A registry base of `n` layers, served as `test/base:1`; returns its
/// layers' digests.
fn serve_layered_base(reg: &FakeRegistry, n: usize) -> (Project, Vec<String>) {
    let p = Project::new();
    let mut file = "[image.base]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n".to_string();
    for i in 0..n {
        p.write(&format!("f{i}.txt"), format!("layer {i}\n"));
        file.push_str(&format!(
            "[[image.base.layer]]\nfiles = [{{ src = \"f{i}.txt\", dst = \"/f{i}.txt\" }}]\n"
        ));
    }
    p.write("gantry.toml", file);
    p.ok(&["build", "--sbom", "none", "-o", "layout/"]);
    let layout = p.join("layout");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest = fs::read(blob(&layout, digest)).unwrap();
    for e in fs::read_dir(layout.join("blobs/sha256")).unwrap() {
        reg.put_blob(&fs::read(e.unwrap().path()).unwrap());
    }
    reg.put_manifest("test/base", "1", OCI_MANIFEST, &manifest);
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let layers = m["layers"].as_array().unwrap().iter();
    let layers = layers.map(|l| l["digest"].as_str().unwrap().to_string());
    (p, layers.collect())
}

#[test]
fn a_build_to_an_output_fetches_the_missing_base_layers_in_parallel() {
    const LAYERS: usize = 4;
    const DELAY: Duration = Duration::from_millis(1000);
    let reg = FakeRegistry::start(Auth::None);
    let (_base, layers) = serve_layered_base(&reg, LAYERS);
    for l in &layers {
        reg.fault(&format!("/blobs/{l}"), vec![Fault::Delay(DELAY)]);
    }
    let p = app(&reg, "1");
    let start = Instant::now();
    ok(
        &p,
        &["build", "--sbom", "none", "--jobs", "4", "-o", "app.tar"],
    );
    let took = start.elapsed();
    eprintln!("{LAYERS} base layers, each served after {DELAY:?}: the build took {took:?}");
    for l in &layers {
        assert!(store_has(&p, l), "layer {l} fetched");
        assert_eq!(reg.count(&format!("GET /v2/test/base/blobs/{l}")), 1);
    }
    // One after another they take LAYERS × DELAY; fetched at once, about one.
    assert!(
        took < DELAY * (LAYERS as u32 - 1),
        "the layers were not fetched in parallel: {took:?}"
    );

    // A build into the store alone stays shallow.
    let shallow = app(&reg, "1");
    ok(&shallow, &["build", "--sbom", "none"]);
    for l in &layers {
        assert!(!store_has(&shallow, l), "layer {l} left in the registry");
    }
}

#[test]
fn a_docker_tarball_of_a_multi_platform_image_fetches_only_the_host_childs_base_layers() {
    let reg = FakeRegistry::start(Auth::None);
    let amd = make_base("linux/amd64", "amd\n");
    let arm = make_base("linux/arm64", "arm\n");
    let _ = serve_index(&reg, &amd, &arm, None);
    let p = Project::new();
    isolate(&p);
    p.write("a.txt", "app\n");
    p.write(
        "gantry.toml",
        format!(
            "[image.app]\nbase = \"{}/test/base:multi\"\n\
             platforms = [\"linux/amd64\", \"linux/arm64\"]\n\
             [[image.app.layer]]\nfiles = [{{ src = \"a.txt\", dst = \"/a.txt\" }}]\n",
            reg.host()
        ),
    );
    let (host, other) = if std::env::consts::ARCH == "aarch64" {
        (&arm, &amd)
    } else {
        (&amd, &arm)
    };
    ok(&p, &["build", "--sbom", "none", "-o", "app.tar"]);
    assert_eq!(
        reg.count(&format!("GET /v2/test/base/blobs/{}", host.layer_digest)),
        1
    );
    assert_eq!(
        reg.count(&format!("GET /v2/test/base/blobs/{}", other.layer_digest)),
        0,
        "the tarball holds the host's platform only: the other child's base layer is not needed"
    );
    // An OCI layout holds every platform, so it needs every base layer.
    ok(&p, &["build", "--sbom", "none", "-o", "layout/"]);
    assert_eq!(
        reg.count(&format!("GET /v2/test/base/blobs/{}", other.layer_digest)),
        1
    );
}
