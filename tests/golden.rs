//! Golden digests: the exact bytes gantry produces for a fixed image.
//!
//! Users pin image digests in deployment manifests, lock files and
//! signatures, and rebuild from source expecting to get the same digest.
//! Any change to gantry's output bytes for unchanged inputs (tar headers,
//! entry order, compressor, JSON layout, tarball layout) silently breaks
//! every one of those pins, so each such change must be deliberate: these
//! tests fail on it and say so.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::digest::sha256_hex;
use common::fixture::{copy_tree, testdata, CopyStyle};
use common::oci::{blob_path, read_json};
use common::run::{assert_ok, gantry_with_umask};
use common::{digest_of, Project};
use serde_json::Value;
use sha2::{Digest as _, Sha256};

/// What the golden fixture is made of (every path, its kind, executable bit,
/// content or link target). When this changes the fixture was edited, and
/// the digests below have to be regenerated with it.
const FIXTURE: &str = "sha256:25a9f725a8c089345ea5c91f095ce00d6dddb82f23251b791cdd9d9023e634ce";

/// sha256 of the docker tarball `gantry build -o golden.tar` writes for the
/// three golden images.
const DOCKER_TARBALL: &str =
    "sha256:79f473a93cc3c718622339683abc61e2720b30b3ea996d34774f8ac0fffbda7e";

struct Golden {
    image: &'static str,
    manifest: &'static str,
    config: &'static str,
    /// (digest, diff_id) of each layer.
    layers: &'static [(&'static str, &'static str)],
}

const GOLDEN: &[Golden] = &[
    Golden {
        image: "golden-gzip",
        manifest: "sha256:851ede80ac16272e316f91810742376254b970254cc91c3541859e67c7b9eba8",
        config: "sha256:4a501fa1563753bcfd82faba579bff91658c9c083c60181cf2430116a4aa5415",
        layers: &[
            (
                "sha256:bdba22506cc00f19a5dce74835c7a486af7b3e86f02db3678bc622f73bc2ce23",
                "sha256:6f7c23d632711c1c6dec53b93734e4d7169ba00b7f8496e1851e28d69137c4e6",
            ),
            (
                "sha256:52671bc4c35fc6573ce524b75205ac49d88b893094546e22e47e7a26101538a2",
                "sha256:448181535b93d75bc98b24bd933f37d7561e16f319931133dc5d4b255218f602",
            ),
        ],
    },
    Golden {
        image: "golden-zstd",
        manifest: "sha256:683b64554233759b4e950e62e3cf84104b79eb0d26851cd31f0c8807e938ffef",
        config: "sha256:4a501fa1563753bcfd82faba579bff91658c9c083c60181cf2430116a4aa5415",
        layers: &[
            (
                "sha256:7e3af2c971c28113e1cb09d3677fc000272f884697750af9049ae30660249492",
                "sha256:6f7c23d632711c1c6dec53b93734e4d7169ba00b7f8496e1851e28d69137c4e6",
            ),
            (
                "sha256:2150adf00a05d91bd6ac803b7cb56a92ca73beddcf61f69c3922fa429ca12f4e",
                "sha256:448181535b93d75bc98b24bd933f37d7561e16f319931133dc5d4b255218f602",
            ),
        ],
    },
    Golden {
        image: "golden-none",
        manifest: "sha256:36ba0c8f75bc0d4bceab9d5102cbc0a184195b8330cbab85d4f577c0db8ef7cf",
        config: "sha256:4a501fa1563753bcfd82faba579bff91658c9c083c60181cf2430116a4aa5415",
        layers: &[
            (
                "sha256:6f7c23d632711c1c6dec53b93734e4d7169ba00b7f8496e1851e28d69137c4e6",
                "sha256:6f7c23d632711c1c6dec53b93734e4d7169ba00b7f8496e1851e28d69137c4e6",
            ),
            (
                "sha256:448181535b93d75bc98b24bd933f37d7561e16f319931133dc5d4b255218f602",
                "sha256:448181535b93d75bc98b24bd933f37d7561e16f319931133dc5d4b255218f602",
            ),
        ],
    },
];

const BREAKS_USERS: &str = "\
gantry's output bytes changed for unchanged inputs.

This breaks reproducibility for every user: an image rebuilt from the same
sources with this version gets a different digest than with the previous one,
so pinned digests, signatures and `docker pull image@sha256:...` references
stop matching rebuilds. If the change is not deliberate, it is a bug (a
dependency that changed its compressed output, a reordered tar entry or JSON
field, a new header field...). If it is deliberate, bump FORMAT_VERSION in
src/layer/mod.rs when layer bytes change, say what changed and why in
docs/reproducibility.md and the release notes, and replace the constants in
tests/golden.rs with the observed values printed below.";

/// A digest of the fixture as git can carry it: paths, kinds, the executable
/// bit, contents and link targets, but no other mode bits and no times.
fn fixture_digest(dir: &Path) -> String {
    let mut h = Sha256::new();
    for e in walkdir::WalkDir::new(dir).min_depth(1).sort_by_file_name() {
        let e = e.unwrap();
        let rel = e.path().strip_prefix(dir).unwrap().display().to_string();
        let ft = e.file_type();
        let record = if ft.is_dir() {
            format!("dir {rel}\n").into_bytes()
        } else if ft.is_symlink() {
            let target = fs::read_link(e.path()).unwrap();
            format!("symlink {rel} -> {}\n", target.display()).into_bytes()
        } else {
            let exec = e.metadata().unwrap().permissions().mode() & 0o111 != 0;
            let content = fs::read(e.path()).unwrap();
            let mut r = format!("file {rel} exec={exec} {}\n", content.len()).into_bytes();
            r.extend_from_slice(&content);
            r
        };
        h.update(&record);
    }
    format!("sha256:{}", hex::encode(h.finalize()))
}

/// Another checkout of the fixture: other modes (keeping only the
/// executable bit), other mtimes and the reverse creation order.
const PERTURBED: CopyStyle = CopyStyle {
    reverse: true,
    file_mode: 0o600,
    exec_mode: 0o700,
    dir_mode: None,
    mtime: 1_234_567_890,
};

/// Manifest digest, config digest, and (digest, diff_id) of each layer.
type ImageDigests = (String, String, Vec<(String, String)>);

/// Everything pinned, as observed from one build.
#[derive(Debug, PartialEq, Eq)]
struct Observed {
    tarball: String,
    images: BTreeMap<String, ImageDigests>,
}

/// Builds the golden images from `build_file` with a fresh store, writing a
/// docker tarball and an OCI layout into `out`, under `umask`.
fn observe(build_file: &Path, out: &Path, umask: &str) -> Observed {
    let store = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| -> String {
        let o = gantry_with_umask(umask, out, store.path())
            .arg("--progress=none")
            .args(args)
            .output()
            .unwrap();
        assert_ok(&o, &format!("gantry {args:?}"))
    };
    let file = build_file.to_str().unwrap();
    let printed = run(&["build", "-f", file, "-o", "golden.tar"]);
    let again = run(&["build", "-f", file, "-o", "layout/"]);
    assert_eq!(printed, again);

    let blob = |digest: &str| -> Value { read_json(&blob_path(&out.join("layout"), digest)) };
    let mut images = BTreeMap::new();
    for g in GOLDEN {
        let manifest_digest = digest_of(&printed, g.image);
        let manifest = blob(&manifest_digest);
        let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
        let config = blob(&config_digest);
        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        let layers = manifest["layers"]
            .as_array()
            .unwrap()
            .iter()
            .zip(diff_ids)
            .map(|(l, d)| {
                (
                    l["digest"].as_str().unwrap().to_string(),
                    d.as_str().unwrap().to_string(),
                )
            })
            .collect();
        images.insert(
            g.image.to_string(),
            (manifest_digest, config_digest, layers),
        );
    }
    Observed {
        tarball: format!(
            "sha256:{}",
            sha256_hex(&fs::read(out.join("golden.tar")).unwrap())
        ),
        images,
    }
}

/// The observed values in the shape of the constants above, to paste.
fn render(o: &Observed) -> String {
    let mut s = format!("const DOCKER_TARBALL: &str = {:?};\n\n", o.tarball);
    s.push_str("const GOLDEN: &[Golden] = &[\n");
    for g in GOLDEN {
        let (m, c, layers) = &o.images[g.image];
        s.push_str(&format!(
            "    Golden {{\n        image: {:?},\n        manifest: {m:?},\n        config: {c:?},\n        layers: &[\n",
            g.image
        ));
        for (d, id) in layers {
            s.push_str(&format!("            ({d:?}, {id:?}),\n"));
        }
        s.push_str("        ],\n    },\n");
    }
    s.push_str("];\n");
    s
}

fn expected() -> Observed {
    Observed {
        tarball: DOCKER_TARBALL.to_string(),
        images: GOLDEN
            .iter()
            .map(|g| {
                (
                    g.image.to_string(),
                    (
                        g.manifest.to_string(),
                        g.config.to_string(),
                        g.layers
                            .iter()
                            .map(|(d, id)| (d.to_string(), id.to_string()))
                            .collect(),
                    ),
                )
            })
            .collect(),
    }
}

/// Each pinned value that differs, by name.
fn differences(want: &Observed, got: &Observed) -> Vec<String> {
    let mut v = Vec::new();
    if want.tarball != got.tarball {
        v.push(format!(
            "docker tarball: pinned {}, now {}",
            want.tarball, got.tarball
        ));
    }
    for (image, (wm, wc, wl)) in &want.images {
        let (gm, gc, gl) = &got.images[image];
        if wm != gm {
            v.push(format!("{image} manifest digest: pinned {wm}, now {gm}"));
        }
        if wc != gc {
            v.push(format!("{image} config digest: pinned {wc}, now {gc}"));
        }
        if wl.len() != gl.len() {
            v.push(format!(
                "{image}: pinned {} layers, now {}",
                wl.len(),
                gl.len()
            ));
            continue;
        }
        for (i, ((wd, wi), (gd, gi))) in wl.iter().zip(gl).enumerate() {
            if wd != gd {
                v.push(format!("{image} layer {i} digest: pinned {wd}, now {gd}"));
            }
            if wi != gi {
                v.push(format!("{image} layer {i} diff_id: pinned {wi}, now {gi}"));
            }
        }
    }
    v
}

#[test]
fn golden_fixture_is_unchanged() {
    let got = fixture_digest(&testdata("golden"));
    assert_eq!(
        got, FIXTURE,
        "testdata/golden changed (or its checkout lost the executable bit of \
         rootfs/bin/hello, or converted line endings). The golden digests \
         describe the old fixture: if the edit is deliberate, set FIXTURE to \
         {got} and regenerate the digests from a gantry whose output is known \
         to be unchanged"
    );
}

#[test]
fn golden_digests_are_unchanged() {
    // Once in place with the usual umask, once from a copy elsewhere that
    // differs in every way a checkout can; both must give the pinned bytes.
    let here = tempfile::tempdir().unwrap();
    let in_place = observe(&testdata("golden").join("gantry.toml"), here.path(), "022");

    let there = Project::new();
    copy_tree(&testdata("golden"), &there.join("checkout"), PERTURBED);
    let copied = observe(&there.join("checkout/gantry.toml"), there.path(), "077");
    assert_eq!(
        in_place,
        copied,
        "the golden image differs between two checkouts: a reproducibility bug \
         (in place:\n{}\ncopy:\n{})",
        render(&in_place),
        render(&copied)
    );

    let diffs = differences(&expected(), &in_place);
    assert!(
        diffs.is_empty(),
        "\n{BREAKS_USERS}\n\nChanged:\n  {}\n\nObserved values:\n{}",
        diffs.join("\n  "),
        render(&in_place)
    );
}

#[test]
fn pinned_values_agree_with_each_other() {
    // The uncompressed tar is the most stable contract (no compressor is
    // involved), so the three golden images must agree on it, and so on the
    // config, which names layers by diff_id only; an uncompressed layer's
    // digest is its diff_id. Regenerated constants that break this were not
    // produced by one consistent build.
    let diff_ids: Vec<Vec<&str>> = GOLDEN
        .iter()
        .map(|g| g.layers.iter().map(|l| l.1).collect())
        .collect();
    assert_eq!(diff_ids[0], diff_ids[1]);
    assert_eq!(diff_ids[0], diff_ids[2]);
    assert!(GOLDEN.iter().all(|g| g.config == GOLDEN[0].config));
    let none = GOLDEN.iter().find(|g| g.image == "golden-none").unwrap();
    for (digest, diff_id) in none.layers {
        assert_eq!(digest, diff_id);
    }
}

#[test]
fn gzip_compressor_is_the_vendored_libdeflate_only() {
    // gzip layer bytes come from libdeflate alone. Its `dynamic` feature
    // (reachable through libdeflater's) would link whatever libdeflate the
    // system has, whose version decides the bytes; a second copy of the crate
    // would mean two compressors in one binary. flate2 is in the build too,
    // but only reads gzip: the digests above notice if it ever writes a layer.
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let available = Command::new(&cargo)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !common::skip_unless(available, "cargo is not available to run `cargo tree`") {
        return;
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let tree = |offline: bool| {
        let mut c = Command::new(&cargo);
        c.args([
            "tree",
            "-e",
            "features",
            "-i",
            "libdeflate-sys",
            "--target",
            "all",
        ])
        .arg("--manifest-path")
        .arg(&manifest);
        if offline {
            c.arg("--offline");
        }
        c.output().unwrap()
    };
    let mut out = tree(true);
    if !out.status.success() {
        out = tree(false);
    }
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "cargo tree failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut features: Vec<&str> = text
        .lines()
        .filter_map(|l| l.split("libdeflate-sys feature \"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    features.sort();
    features.dedup();
    // "default" (which enables nothing) is listed, so an empty list would
    // mean the lines were not read at all.
    assert_eq!(
        features,
        ["default"],
        "libdeflate-sys is built with features {features:?}; with `dynamic` the \
         system's libdeflate, of whatever version, would decide gzip layer \
         bytes:\n{text}"
    );
    let versions: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("libdeflate-sys v"))
        .collect();
    assert_eq!(
        versions.len(),
        1,
        "more than one libdeflate-sys in the build:\n{text}"
    );
}
