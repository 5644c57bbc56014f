//! The layer cache: a layer whose inputs are unchanged is reused from the
//! store, not built and compressed again, and a change to what one layer
//! declares or reads rebuilds that layer and no other.

mod common;

use std::fs;
use std::path::Path;
use std::time::Duration;

use common::fixture::{copy_repro, set_mtime, CopyStyle};
use common::oci::{layer_digests, Layout};
use common::run::assert_ok;
use common::{digest_of, Project};

fn layer_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.contains(": layer ")).collect()
}

/// Every source file of the fixture dated in the past, so that the cache
/// may record it (files changed within the last moments are never trusted).
fn age_inputs(dir: &Path) {
    for e in walkdir::WalkDir::new(dir) {
        let e = e.unwrap();
        if e.file_type().is_file() {
            set_mtime(e.path(), 1_500_000_000);
        }
    }
}

#[test]
fn unchanged_layers_are_reused_not_compressed_again() {
    let p = Project::new();
    copy_repro(p.path(), CopyStyle::WIDE);
    age_inputs(p.path());
    std::thread::sleep(SETTLE);
    let first = p.run(&["build"]);
    let first_out = assert_ok(&first, "first build");
    let first_err = String::from_utf8_lossy(&first.stderr).into_owned();
    let built = layer_lines(&first_err);
    assert_eq!(built.len(), 4, "one progress line per layer:\n{first_err}");
    assert!(
        built.iter().all(|l| l.contains(" built: sha256:")),
        "{first_err}"
    );

    let blobs_before = common::tree(&p.store.path().join("blobs"));
    let second = p.run(&["build"]);
    let second_out = assert_ok(&second, "second build");
    let second_err = String::from_utf8_lossy(&second.stderr).into_owned();
    let reused = layer_lines(&second_err);
    assert_eq!(reused.len(), 4, "{second_err}");
    for l in &reused {
        assert!(l.contains(" reused: sha256:"), "not reused: {l}");
    }
    assert_eq!(first_out, second_out);
    assert_eq!(
        blobs_before,
        common::tree(&p.store.path().join("blobs")),
        "a reused build added blobs to the store"
    );
}

#[test]
fn touching_an_input_without_changing_it_keeps_the_digest() {
    let p = Project::new();
    copy_repro(p.path(), CopyStyle::WIDE);
    age_inputs(p.path());
    let first = p.ok(&["build"]);
    set_mtime(&p.join("config/app.conf"), 1_600_000_000);
    set_mtime(&p.join("bin/tool"), 1_600_000_000);
    let out = p.run(&["build"]);
    let second = assert_ok(&out, "build after touch");
    assert_eq!(first, second);
    let err = String::from_utf8_lossy(&out.stderr);
    for l in layer_lines(&err) {
        assert!(l.contains(" reused: "), "recompressed after a touch: {l}");
    }
}

/// Long enough for a fresh copy to stop looking "racily clean" to the
/// cache, so that the first build records its inputs' identities and the
/// second build has to notice a change from them alone.
const SETTLE: Duration = Duration::from_millis(2500);

/// Builds, applies `change`, builds again; returns both layer digest lists
/// of `image` and the second build's stderr.
fn layers_before_and_after(
    image: &str,
    settle: bool,
    change: impl FnOnce(&Project),
) -> (Vec<String>, Vec<String>, String) {
    let p = Project::new();
    copy_repro(p.path(), CopyStyle::WIDE);
    age_inputs(p.path());
    if settle {
        std::thread::sleep(SETTLE);
    }
    let first = p.ok(&["build", "-o", "before/"]);
    change(&p);
    let out = p.run(&["build", "-o", "after/"]);
    let second = assert_ok(&out, "second build");
    let before = layer_digests(&Layout(p.join("before")).manifest(&digest_of(&first, image)));
    let after = layer_digests(&Layout(p.join("after")).manifest(&digest_of(&second, image)));
    (
        before,
        after,
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn changed_indexes(a: &[String], b: &[String]) -> Vec<usize> {
    assert_eq!(a.len(), b.len());
    (0..a.len()).filter(|i| a[*i] != b[*i]).collect()
}

#[test]
fn changing_one_file_changes_exactly_its_layer() {
    let (before, after, err) = layers_before_and_after("app", false, |p| {
        p.write("config/nested/deep.conf", "[deep]\nvalue = 43\n");
    });
    // Layers of app: tools, config (from base), data, plain.
    assert_eq!(changed_indexes(&before, &after), [1], "{err}");
    let built: Vec<_> = layer_lines(&err)
        .into_iter()
        .filter(|l| l.contains(" built: "))
        .collect();
    assert_eq!(built.len(), 1, "{err}");
    assert!(built[0].starts_with("base: layer config built"), "{err}");
}

#[test]
fn content_change_with_restored_size_and_mtime_is_still_noticed() {
    // Same length, same mtime afterwards: only the inode change time tells
    // the cache that the file is not what it recorded.
    let (before, after, err) = layers_before_and_after("app", true, |p| {
        let f = p.join("share/docs/page.md");
        let old = fs::read(&f).unwrap();
        let mut new = old.clone();
        new[0] = b'X';
        assert_ne!(old, new);
        fs::write(&f, &new).unwrap();
        set_mtime(&f, 1_500_000_000);
    });
    assert_eq!(changed_indexes(&before, &after), [2], "{err}");
}

#[test]
fn changing_a_declared_mode_rebuilds_only_that_layer() {
    let (before, after, err) = layers_before_and_after("app", false, |p| {
        let toml = fs::read_to_string(p.join("gantry.toml")).unwrap();
        let changed = toml.replace(
            r#"dst = "/usr/share/demo-extra.txt", mode = "0600""#,
            r#"dst = "/usr/share/demo-extra.txt", mode = "0640""#,
        );
        assert_ne!(toml, changed);
        p.write("gantry.toml", changed);
    });
    assert_eq!(changed_indexes(&before, &after), [2], "{err}");
}

#[test]
fn changing_a_layers_compression_does_not_reuse_the_old_blob() {
    let (before, after, err) = layers_before_and_after("app", false, |p| {
        let toml = fs::read_to_string(p.join("gantry.toml")).unwrap();
        let changed = toml.replace(
            "name = \"config\"\ncompression = \"zstd\"",
            "name = \"config\"\ncompression = \"gzip\"",
        );
        assert_ne!(toml, changed);
        p.write("gantry.toml", changed);
    });
    assert_eq!(changed_indexes(&before, &after), [1], "{err}");
}
