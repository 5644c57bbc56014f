//! Multi-platform images: one image per platform under an OCI index, with
//! `{arch}` in `src` paths, per-platform overrides, `:other` bases resolved
//! per platform, and the index checked by real peers (skopeo, the reference
//! registry, Docker Engine).

mod common;

use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use common::docker::{docker_inspect, docker_load, DockerImages};
use common::docker_registry::{self, DockerRegistry, Options};
use common::host::{host_architecture, host_platform};
use common::oci::{blob_path, parse_json, read_json};
use common::{require, require_docker, sh, Project};

/// A shared multi-platform base and an app on it that inherits its
/// platforms, with a binary per architecture.
fn two_platforms() -> Project {
    let p = Project::new();
    p.write("base/etc/motd", "shared\n");
    p.write("target/amd64/app", "app for amd64\n");
    p.write("target/arm64/app", "app for arm64\n");
    p.write(
        "gantry.toml",
        r#"
[image.base]
base = "scratch"
platforms = ["linux/amd64", "linux/arm64"]
[[image.base.layer]]
files = [{ src = "base/etc/", dst = "/etc/" }]

[image.app]
base = ":base"
tags = ["gantry-test/multi-app:1"]
env = { MODE = "prod" }
cmd = ["/app"]
[image.app.overrides."linux/arm64"]
env = { SMALL = "1" }
[[image.app.layer]]
name = "bin"
files = [{ src = "target/{arch}/app", dst = "/app", mode = "0755" }]
"#,
    );
    p
}

fn manifests(index: &Value) -> Vec<(String, String)> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let p = &m["platform"];
            (
                format!(
                    "{}/{}",
                    p["os"].as_str().unwrap(),
                    p["architecture"].as_str().unwrap()
                ),
                m["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The config of the image `reference` (`docker://…`) names, as skopeo
/// reads it from a plain-HTTP registry.
fn registry_config(reference: &str) -> Value {
    parse_json(&sh(Command::new("skopeo").args([
        "inspect",
        "--config",
        "--raw",
        "--tls-verify=false",
        reference,
    ])))
}

fn child_config(layout: &Path, manifest_digest: &str) -> Value {
    let m = read_json(&blob_path(layout, manifest_digest));
    read_json(&blob_path(layout, m["config"]["digest"].as_str().unwrap()))
}

#[test]
fn an_index_over_two_platforms_fills_arch_and_applies_overrides() {
    let p = two_platforms();
    p.ok(&["build", "-o", "out/"]);
    let layout = p.join("out");
    let top = read_json(&layout.join("index.json"));
    let app = top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["annotations"]["org.opencontainers.image.ref.name"] == "1")
        .expect("the app's tag names its index");
    assert_eq!(app["mediaType"], "application/vnd.oci.image.index.v1+json");
    let index = read_json(&blob_path(&layout, app["digest"].as_str().unwrap()));
    let children = manifests(&index);
    assert_eq!(
        children.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["linux/amd64", "linux/arm64"]
    );
    let amd = child_config(&layout, &children[0].1);
    let arm = child_config(&layout, &children[1].1);
    assert_eq!(arm["architecture"], "arm64");
    assert_eq!(amd["architecture"], "amd64");
    let env = |c: &Value| c["config"]["Env"].as_array().unwrap().clone();
    assert!(env(&arm).contains(&"SMALL=1".into()), "{arm}");
    assert!(!env(&amd).contains(&"SMALL=1".into()), "{amd}");
    // Each child's own layer holds its own architecture's file.
    let last_layer = |digest: &str| {
        let m = read_json(&blob_path(&layout, digest));
        let l = m["layers"].as_array().unwrap().last().unwrap().clone();
        l["digest"].as_str().unwrap().to_string()
    };
    assert_ne!(last_layer(&children[0].1), last_layer(&children[1].1));
    // Each child stands on the base's child for its platform.
    let base_index = read_json(&blob_path(
        &layout,
        top["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| {
                d["annotations"]["io.containerd.image.name"] == "docker.io/library/base:latest"
            })
            .unwrap()["digest"]
            .as_str()
            .unwrap(),
    ));
    for ((plat, child), (base_plat, base_child)) in children.iter().zip(manifests(&base_index)) {
        assert_eq!(*plat, base_plat);
        let m = read_json(&blob_path(&layout, child));
        assert_eq!(
            m["annotations"]["org.opencontainers.image.base.digest"],
            base_child.as_str()
        );
    }

    // The same bytes from a second build, whatever the number of jobs.
    let again = tempfile::tempdir().unwrap();
    let out =
        common::run::run_with_store(&p, again.path(), &["build", "-j", "1", "-o", "again/"], &[]);
    common::run::assert_ok(&out, "second build");
    assert_eq!(
        common::digest::tree_digests(&layout),
        common::digest::tree_digests(&p.join("again"))
    );

    // inspect shows the index and its platforms.
    let shown = p.ok(&["inspect", "out/", "--image", "gantry-test/multi-app:1"]);
    assert!(
        shown.contains("linux/amd64") && shown.contains("linux/arm64"),
        "{shown}"
    );
}

#[test]
fn a_platform_the_base_image_lacks_is_an_error_naming_both() {
    let p = two_platforms();
    let text = fs::read_to_string(p.join("gantry.toml"))
        .unwrap()
        .replace(
            "[image.app]\n",
            "[image.app]\nplatforms = [\"linux/amd64\", \"linux/s390x\"]\n",
        )
        .replace(
            "[image.app.overrides.\"linux/arm64\"]\nenv = { SMALL = \"1\" }\n",
            "",
        );
    p.write("gantry.toml", text);
    let err = p.fails(&["build"]);
    assert!(
        err.contains("linux/s390x") && err.contains("\":base\"") && err.contains("linux/arm64"),
        "{err}"
    );
}

#[test]
fn a_two_platform_index_copies_whole_into_the_reference_registry() {
    if !(require(docker_registry::BIN) && require("skopeo")) {
        return;
    }
    let p = two_platforms();
    p.ok(&["build", "app", "-o", "out/"]);
    let layout = format!("oci:{}:1", p.join("out").display());
    let raw = parse_json(&sh(
        Command::new("skopeo").args(["inspect", "--raw", &layout])
    ));
    assert_eq!(manifests(&raw).len(), 2, "{raw}");

    let reg = DockerRegistry::start(Options::default());
    let dest = format!("docker://{}/test/multi-app:1", reg.host());
    sh(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--all",
        "--dest-tls-verify=false",
        &layout,
        &dest,
    ]));
    let pushed = parse_json(&sh(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &dest,
    ])));
    assert_eq!(pushed, raw, "the registry serves the index gantry wrote");
    let children = manifests(&pushed);
    assert_eq!(
        children.iter().map(|c| c.0.as_str()).collect::<Vec<_>>(),
        ["linux/amd64", "linux/arm64"]
    );
    let arm = format!("docker://{}/test/multi-app@{}", reg.host(), children[1].1);
    let config = registry_config(&arm);
    assert_eq!(config["architecture"], "arm64");
    assert_eq!(config["os"], "linux");

    // The pushed index is a base like any other, per platform, and
    // `gantry lock` pins every platform a build uses.
    let q = Project::new();
    q.write("extra.txt", "extra\n");
    q.write(
        "gantry.toml",
        format!(
            "[image.top]\nbase = \"{}/test/multi-app:1\"\nplatforms = [\"linux/arm64\", \"linux/amd64\"]\n\
             [[image.top.layer]]\nfiles = [{{ src = \"extra.txt\", dst = \"/extra.txt\" }}]\n",
            reg.host()
        ),
    );
    q.ok(&["lock"]);
    let lock = fs::read_to_string(q.join("gantry.lock")).unwrap();
    assert!(
        lock.contains(&children[0].1) && lock.contains(&children[1].1),
        "{lock}"
    );
    q.ok(&["build", "--locked", "-o", "top/"]);
    let top = read_json(&q.join("top/index.json"));
    let top_index = read_json(&blob_path(
        &q.join("top"),
        top["manifests"][0]["digest"].as_str().unwrap(),
    ));
    assert_eq!(
        manifests(&top_index)
            .iter()
            .map(|c| c.0.as_str())
            .collect::<Vec<_>>(),
        ["linux/arm64", "linux/amd64"]
    );
}

#[test]
fn a_docker_tarball_of_a_multi_platform_image_holds_one_platform_and_says_which() {
    let p = two_platforms();
    let out = p.run(&["build", "app", "-o", "app.tar"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("holds {}", host_platform())),
        "the tarball's platform is named: {stderr}"
    );
    let info = common::inspect::inspect_json(&p, &["app.tar"]);
    assert_eq!(info["platform"], host_platform());
    assert_eq!(
        info["tags"],
        serde_json::json!(["docker.io/gantry-test/multi-app:1"])
    );

    p.ok(&["build", "app", "--platform", "linux/arm64", "-o", "arm.tar"]);
    let arm = common::inspect::inspect_json(&p, &["arm.tar"]);
    assert_eq!(arm["platform"], "linux/arm64");
    // Built alone, a platform's image is the very child the index names.
    let report = parse_json(&p.ok(&["build", "app", "--json"]));
    let app = &report["images"][1];
    assert_eq!(app["name"], "app");
    assert_eq!(app["platforms"][1]["platform"], "linux/arm64");
    assert_eq!(
        arm["manifest_digest"],
        app["platforms"][1]["manifest_digest"]
    );

    if !require_docker() {
        return;
    }
    let mut images = DockerImages::new();
    docker_load(&mut images, &p.join("app.tar"), "gantry-test/multi-app:1");
    let loaded = docker_inspect("gantry-test/multi-app:1");
    assert_eq!(loaded["Architecture"], host_architecture());
}

#[test]
fn a_local_layout_index_is_a_base_for_each_platform() {
    let p = two_platforms();
    p.ok(&["build", "app", "-o", "out/"]);
    let q = Project::new();
    q.write("extra.txt", "extra\n");
    q.write(
        "gantry.toml",
        format!(
            "[image.top]\nbase = \"oci:{}:1\"\nplatforms = [\"linux/arm64\"]\n\
             [[image.top.layer]]\nfiles = [{{ src = \"extra.txt\", dst = \"/extra.txt\" }}]\n",
            p.join("out").display()
        ),
    );
    q.ok(&["build", "-o", "top.oci.tar", "--format", "oci-archive"]);
    let info = common::inspect::inspect_json(&q, &["top.oci.tar", "--platform", "linux/arm64"]);
    assert_eq!(info["platform"], "linux/arm64");
    assert_eq!(info["layers"].as_array().unwrap().len(), 3, "{info}");
}

#[test]
fn placeholders_take_the_base_platform_when_the_image_names_none() {
    let p = two_platforms();
    p.ok(&["build", "app", "--platform", "linux/arm64", "-o", "arm/"]);
    let q = Project::new();
    // Only the arm64 file exists: the base decides which one is read.
    q.write("bin/arm64/tool", "arm64 tool\n");
    q.write(
        "gantry.toml",
        format!(
            "[image.top]\nbase = \"oci:{}:1\"\n\
             [[image.top.layer]]\nfiles = [{{ src = \"bin/{{arch}}/tool\", dst = \"/tool\" }}]\n",
            p.join("arm").display()
        ),
    );
    q.ok(&["build", "-o", "top/"]);
    let info = common::inspect::inspect_json(&q, &["top/"]);
    assert_eq!(info["platform"], "linux/arm64");
}

#[test]
fn overrides_apply_when_the_platform_comes_from_the_base() {
    let p = two_platforms();
    p.ok(&["build", "app", "--platform", "linux/arm64", "-o", "arm/"]);
    let q = Project::new();
    q.write(
        "gantry.toml",
        format!(
            "[image.top]\nbase = \"oci:{}:1\"\nenv = {{ A = \"image\" }}\n\
             [image.top.overrides.\"linux/arm64\"]\nenv = {{ A = \"override\" }}\n",
            p.join("arm").display()
        ),
    );
    q.ok(&["build", "-o", "top/"]);
    let info = common::inspect::inspect_json(&q, &["top/"]);
    assert_eq!(info["platform"], "linux/arm64");
    let env = common::inspect::env_of(&info);
    assert!(env.contains(&"A=override".to_string()), "{env:?}");
}

#[test]
fn push_puts_both_children_and_the_index_into_the_reference_registry() {
    if !(require(docker_registry::BIN) && require("skopeo")) {
        return;
    }
    let p = two_platforms();
    let reg = DockerRegistry::start(Options::default());
    let target = format!("{}/test/pushed-multi:1", reg.host());
    let out = p.ok(&["push", "app", "-t", &target]);
    let report = parse_json(&p.ok(&["build", "app", "--json"]));
    let app = &report["images"][1];
    assert!(out.contains(app["digest"].as_str().unwrap()), "{out}");

    let dest = format!("docker://{target}");
    let pushed = parse_json(&sh(Command::new("skopeo").args([
        "inspect",
        "--raw",
        "--tls-verify=false",
        &dest,
    ])));
    assert_eq!(
        pushed["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    let children = manifests(&pushed);
    assert_eq!(
        children,
        app["platforms"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| (
                p["platform"].as_str().unwrap().to_string(),
                p["manifest_digest"].as_str().unwrap().to_string()
            ))
            .collect::<Vec<_>>()
    );
    let arm = format!(
        "docker://{}/test/pushed-multi@{}",
        reg.host(),
        children[1].1
    );
    let config = registry_config(&arm);
    assert_eq!(config["architecture"], "arm64");
    // And the whole index copies on.
    let dir = tempfile::tempdir().unwrap();
    sh(Command::new("skopeo").args([
        "copy",
        "--quiet",
        "--all",
        "--src-tls-verify=false",
        &dest,
        &format!("oci:{}:copy", dir.path().display()),
    ]));
}
