//! How the images of one OCI layout are named: by tag alone
//! (`oci:out:1`), unless two of them would share it; then each of those is
//! named by its full reference (`oci:out:a/x:1`), so peers can still pick
//! every one.

mod common;

use std::process::Command;

use common::oci::{read_json, REF_NAME};
use common::{digest_of, require, sh, Project};
use serde_json::Value;

/// Images `x`, `y` and `z` of one build file: `x` and `y` share the tag `1`
/// under different repositories, `z` has a tag of its own. Each has one
/// layer named after it, which `umoci stat` shows.
fn project(x_tags: &str) -> Project {
    let p = Project::new();
    p.write("src/x", "x\n");
    p.write("src/y", "y\n");
    p.write("src/z", "z\n");
    let image = |name: &str, tags: &str| {
        format!(
            "[image.{name}]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\ntags = {tags}\n\
             [[image.{name}.layer]]\nname = \"files-{name}\"\n\
             files = [{{ src = \"src/{name}\", dst = \"/{name}\" }}]\n"
        )
    };
    p.write(
        "gantry.toml",
        [
            image("x", x_tags),
            image("y", r#"["b/y:1"]"#),
            image("z", r#"["c/z:2"]"#),
        ]
        .concat(),
    );
    p
}

/// `(ref.name, containerd name, digest)` of every descriptor of a layout's
/// `index.json`, in order.
fn names(index: &Value) -> Vec<(String, String, String)> {
    index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let a = &d["annotations"];
            (
                a[REF_NAME].as_str().unwrap().to_string(),
                a["io.containerd.image.name"].as_str().unwrap().to_string(),
                d["digest"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn images_sharing_a_tag_in_one_layout_are_named_by_their_full_references() {
    let p = project(r#"["a/x:1"]"#);
    let out = p.ok(&["build", "--format", "oci", "-o", "out/"]);
    let (x, y, z) = (
        digest_of(&out, "x"),
        digest_of(&out, "y"),
        digest_of(&out, "z"),
    );
    assert_eq!(
        names(&read_json(&p.join("out/index.json"))),
        [
            ("a/x:1".into(), "docker.io/a/x:1".into(), x.clone()),
            ("b/y:1".into(), "docker.io/b/y:1".into(), y.clone()),
            ("2".into(), "docker.io/c/z:2".into(), z.clone()),
        ]
    );
    // An OCI archive holds the same index.
    p.ok(&["build", "--format", "oci-archive", "-o", "out.oci.tar"]);
    let listed = sh(Command::new("tar")
        .args(["-xOf", "out.oci.tar", "index.json"])
        .current_dir(p.path()));
    assert_eq!(
        listed.as_bytes(),
        std::fs::read(p.join("out/index.json")).unwrap()
    );

    // gantry reads each one back by the name it wrote.
    for (name, digest) in [("a/x:1", &x), ("b/y:1", &y), ("2", &z)] {
        let info: Value =
            serde_json::from_str(&p.ok(&["inspect", "--json", "out/", "--image", name])).unwrap();
        assert_eq!(info["manifest_digest"], digest.as_str(), "{name}: {info}");
    }

    if require("skopeo") {
        for (name, digest) in [("a/x:1", &x), ("b/y:1", &y), ("2", &z)] {
            for location in [
                format!("oci:out:{name}"),
                format!("oci-archive:out.oci.tar:{name}"),
            ] {
                let v: Value = serde_json::from_str(&sh(Command::new("skopeo")
                    .args(["inspect", &location])
                    .current_dir(p.path())))
                .unwrap();
                assert_eq!(v["Digest"], digest.as_str(), "skopeo inspect {location}");
            }
        }
    }
    if require("umoci") {
        let listed = sh(Command::new("umoci")
            .args(["ls", "--layout", "out"])
            .current_dir(p.path()));
        assert_eq!(listed.lines().collect::<Vec<_>>(), ["a/x:1", "b/y:1", "2"]);
        for (name, layer) in [("a/x:1", "files-x"), ("b/y:1", "files-y"), ("2", "files-z")] {
            let v: Value = serde_json::from_str(&sh(Command::new("umoci")
                .args(["stat", "--json", "--image", &format!("out:{name}")])
                .current_dir(p.path())))
            .unwrap();
            assert_eq!(
                v["history"][0]["created_by"],
                format!("gantry layer {layer}"),
                "umoci stat out:{name}: {v}"
            );
        }
    }
}

#[test]
fn one_image_under_two_repositories_with_one_tag_is_named_by_both_references() {
    let p = project(r#"["a/x:1", "ghcr.io/a/x:1", "a/x:latest"]"#);
    let out = p.ok(&["build", "x", "--format", "oci", "-o", "out/"]);
    let x = digest_of(&out, "x");
    assert_eq!(
        names(&read_json(&p.join("out/index.json"))),
        [
            ("a/x:1".into(), "docker.io/a/x:1".into(), x.clone()),
            ("ghcr.io/a/x:1".into(), "ghcr.io/a/x:1".into(), x.clone()),
            ("latest".into(), "docker.io/a/x:latest".into(), x.clone()),
        ]
    );
    if require("umoci") {
        for name in ["a/x:1", "ghcr.io/a/x:1", "latest"] {
            sh(Command::new("umoci")
                .args(["stat", "--image", &format!("out:{name}")])
                .current_dir(p.path()));
        }
    }
}

#[test]
fn tags_no_other_image_shares_stay_short() {
    let p = project(r#"["a/x:3"]"#);
    let out = p.ok(&["build", "--format", "oci", "-o", "out/"]);
    let short: Vec<String> = names(&read_json(&p.join("out/index.json")))
        .into_iter()
        .map(|n| n.0)
        .collect();
    assert_eq!(short, ["3", "1", "2"], "{out}");
    let out = p.ok(&["build", "x", "--format", "oci", "-o", "one/"]);
    assert_eq!(
        names(&read_json(&p.join("one/index.json"))),
        [("3".into(), "docker.io/a/x:3".into(), digest_of(&out, "x"))]
    );
}
