//! The promise gantry is built on: the same declared inputs give the same
//! bytes, whatever the checkout looks like on disk (directory, mtimes, modes,
//! umask, creation order, user), whichever store or thread count is used, and
//! whenever the build runs.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::digest::{sha256_hex, tree_digests};
use common::fixture::{build_repro_layout, copy_repro, set_mtime, CopyStyle};
use common::host::is_root;
use common::oci::{layer_digests, Layout};
use common::run::{assert_ok, gantry_as_user, gantry_with_umask, run_with_store};
use common::tarball::{lines, tar_entries};
use common::{digest_of, Project};

// ---------------------------------------------------------------------------
// Same inputs, different disk: same bytes.

#[test]
fn copies_differing_in_directory_mtimes_modes_umask_order_and_store_build_identical_bytes() {
    let a = Project::new();
    copy_repro(a.path(), CopyStyle::WIDE);
    let a_tar = a.ok(&["build", "-o", "image.tar"]);
    let a_dir = a.ok(&["build", "-o", "layout/"]);
    assert_eq!(
        a_tar, a_dir,
        "the digests do not depend on the output format"
    );

    // The second copy sits deeper, under another name, and is built from
    // outside its directory under a umask that strips group and other bits.
    let b = Project::new();
    let nested = b.join("some/other/checkout");
    copy_repro(&nested, CopyStyle::NARROW);
    let run = |args: &[&str]| {
        let out = gantry_with_umask("077", b.path(), b.store.path())
            .arg("--progress=plain")
            .args(args)
            .output()
            .expect("run sh");
        assert_ok(&out, &format!("umask 077; gantry {args:?}"))
    };
    let b_tar = run(&[
        "build",
        "-f",
        "some/other/checkout/gantry.toml",
        "-o",
        "image.tar",
    ]);
    let b_dir = run(&[
        "build",
        "-f",
        "some/other/checkout/gantry.toml",
        "-o",
        "layout/",
    ]);

    assert_eq!(a_tar, b_tar, "image digests differ between the two copies");
    assert_eq!(a_dir, b_dir);
    for name in ["base", "app"] {
        assert!(digest_of(&a_tar, name).starts_with("sha256:"));
    }
    let (ta, tb) = (
        fs::read(a.join("image.tar")).unwrap(),
        fs::read(b.join("image.tar")).unwrap(),
    );
    assert!(
        ta == tb,
        "docker tarballs differ: {} vs {}",
        sha256_hex(&ta),
        sha256_hex(&tb)
    );
    assert_eq!(
        tree_digests(&a.join("layout")),
        tree_digests(&b.join("layout")),
        "OCI layout trees differ"
    );
}

#[test]
fn another_user_builds_the_same_image() {
    let a = Project::new();
    if !is_root() {
        eprintln!("skipping: switching to uid 65534 needs root");
        return;
    }
    if !common::require("setpriv") {
        return;
    }
    copy_repro(a.path(), CopyStyle::WIDE);
    let want = a.ok(&["build", "-o", "image.tar"]);

    let b = Project::new();
    // Temp directories are created 0700; uid 65534 must be able to read the
    // inputs and write its own store and output.
    fs::set_permissions(b.path(), fs::Permissions::from_mode(0o755)).unwrap();
    copy_repro(&b.join("src"), CopyStyle::WIDE);
    let out_dir = b.join("out");
    fs::create_dir(&out_dir).unwrap();
    for d in [b.store.path(), out_dir.as_path()] {
        std::os::unix::fs::chown(d, Some(65534), Some(65534)).unwrap();
    }
    let out = gantry_as_user(65534, 65534, b.path(), b.store.path())
        .args(["--progress=plain", "build", "-f", "src/gantry.toml", "-o"])
        .arg(out_dir.join("image.tar"))
        .output()
        .unwrap();
    let got = assert_ok(&out, "gantry build as uid 65534");
    assert_eq!(want, got, "a build as uid 65534 gave other digests");
    assert!(
        fs::read(a.join("image.tar")).unwrap() == fs::read(out_dir.join("image.tar")).unwrap(),
        "docker tarballs differ between root and uid 65534"
    );
}

/// A project with enough data that parallel compression has several blocks
/// to work on, in a gzip and a zstd layer.
fn big_project() -> Project {
    let p = Project::new();
    // Compressible but not trivially so: a text of pseudo-random words.
    let words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta"];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut text = String::new();
    while text.len() < 6 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        text.push_str(words[(x % 7) as usize]);
        text.push(if x % 11 == 0 { '\n' } else { ' ' });
    }
    p.write("data/words.txt", &text);
    let noise: Vec<u8> = (0..(1u32 << 20))
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    p.write("data/noise.bin", &noise);
    p.write(
        "gantry.toml",
        r#"[image.big]
base = "scratch"
platform = "linux/amd64"

[[image.big.layer]]
name = "gz"
files = [{ src = "data/", dst = "/data/" }]

[[image.big.layer]]
name = "zst"
compression = "zstd"
files = [{ src = "data/", dst = "/zdata/" }]
"#,
    );
    p
}

#[test]
fn thread_count_changes_speed_not_bytes() {
    let p = big_project();
    let other_store = tempfile::tempdir().unwrap();
    let one = p.ok(&["build", "-j", "1", "-o", "one/"]);
    let out = run_with_store(
        &p,
        other_store.path(),
        &["build", "-j", "4", "-o", "four/"],
        &[],
    );
    let four = assert_ok(&out, "gantry build -j 4");
    assert_eq!(one, four, "-j 1 and -j 4 gave different digests");
    assert_eq!(tree_digests(&p.join("one")), tree_digests(&p.join("four")));
}

#[test]
fn concurrent_builds_sharing_a_store_agree() {
    // Two builds racing on one cold store write the same blobs and records
    // at the same time; both must succeed with the same result.
    let p = big_project();
    let children: Vec<_> = (0..3)
        .map(|i| {
            let mut c = p.cmd();
            c.args(["build", "-j", "1", "-o", &format!("out{i}.tar")]);
            c.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outs: Vec<String> = children
        .into_iter()
        .map(|c| assert_ok(&c.wait_with_output().unwrap(), "concurrent build"))
        .collect();
    assert_eq!(outs[0], outs[1]);
    assert_eq!(outs[0], outs[2]);
    let tars: Vec<Vec<u8>> = (0..3)
        .map(|i| fs::read(p.join(&format!("out{i}.tar"))).unwrap())
        .collect();
    assert!(tars[0] == tars[1] && tars[0] == tars[2]);
    assert_eq!(
        common::tree(&p.store.path().join("tmp")),
        Vec::<String>::new(),
        "temporary blobs left in the store"
    );
}

#[test]
fn local_base_gives_the_same_image_wherever_it_lies() {
    // The base's path is not part of the image: only its digest is.
    let base = Project::new();
    copy_repro(base.path(), CopyStyle::WIDE);
    let built = base.ok(&["build", "app", "-o", "base.tar"]);
    base.ok(&["build", "app", "-o", "base-layout/"]);
    let top = |dir: &Path, base_ref: &str| {
        fs::create_dir_all(dir).unwrap();
        fs::write(dir.join("extra.txt"), "extra\n").unwrap();
        fs::write(
            dir.join("gantry.toml"),
            format!(
                "[image.top]\nbase = \"{base_ref}\"\n\n[[image.top.layer]]\nfiles = [{{ src = \"extra.txt\", dst = \"/extra.txt\" }}]\n"
            ),
        )
        .unwrap();
    };

    let a = Project::new();
    fs::copy(base.join("base.tar"), a.join("base.tar")).unwrap();
    top(a.path(), "docker-archive:base.tar");
    let from_tar = a.ok(&["build"]);

    let b = Project::new();
    let deep = b.join("x/y");
    fs::create_dir_all(&deep).unwrap();
    fs::copy(base.join("base.tar"), deep.join("the-base.tar")).unwrap();
    set_mtime(&deep.join("the-base.tar"), 1_234_567_890);
    top(&b.join("proj"), "docker-archive:../x/y/the-base.tar");
    let from_elsewhere = assert_ok(
        &gantry_with_umask("077", b.path(), b.store.path())
            .args(["--progress=plain", "build", "-f", "proj/gantry.toml"])
            .output()
            .expect("run sh"),
        "build on a base elsewhere",
    );
    assert_eq!(from_tar, from_elsewhere);

    let c = Project::new();
    let layout = c.join("layout");
    fs::create_dir(&layout).unwrap();
    for (rel, _) in tree_digests(&base.join("base-layout")) {
        let from = base.join("base-layout").join(&rel);
        if from.is_dir() {
            fs::create_dir_all(layout.join(&rel)).unwrap();
        } else {
            fs::copy(&from, layout.join(&rel)).unwrap();
        }
    }
    top(c.path(), "oci:layout:app");
    let from_layout = c.ok(&["build"]);
    assert_eq!(
        from_tar, from_layout,
        "a docker tarball and an OCI layout of one base gave different images"
    );

    // What the image does record of its base: the digest.
    a.ok(&["build", "-o", "top/"]);
    let manifest = Layout(a.join("top")).manifest(&digest_of(&from_tar, "top"));
    assert_eq!(
        manifest["annotations"]["org.opencontainers.image.base.digest"],
        digest_of(&built, "app")
    );
}

#[test]
fn hard_links_in_the_checkout_change_nothing() {
    let build_file = r#"[image.h]
base = "scratch"
platform = "linux/amd64"

[[image.h.layer]]
files = [{ src = "tree/", dst = "/t/" }]
"#;
    let copies = Project::new();
    copies.write("gantry.toml", build_file);
    copies.write("tree/a.txt", "same\n");
    copies.write("tree/b.txt", "same\n");

    let linked = Project::new();
    linked.write("gantry.toml", build_file);
    linked.write("tree/a.txt", "same\n");
    fs::hard_link(linked.join("tree/a.txt"), linked.join("tree/b.txt")).unwrap();

    let out = copies.ok(&["build", "-o", "layout/"]);
    assert_eq!(out, linked.ok(&["build"]));
    let layout = Layout(copies.join("layout"));
    let (_, _, tar) = &layout.layers(&layout.manifest(&digest_of(&out, "h")))[0];
    assert_eq!(
        lines(&tar_entries(tar).1),
        [
            r#"t/ dir 0755 0:0 "":"""#,
            r#"t/a.txt file 5 0644 0:0 "":"""#,
            r#"t/b.txt file 5 0644 0:0 "":"""#,
        ]
    );
}

// ---------------------------------------------------------------------------
// Time.

#[test]
fn unstamped_builds_at_different_times_are_identical_and_dated_1970() {
    let (p, layout, first) = build_repro_layout(&[]);
    std::thread::sleep(Duration::from_millis(1500));
    let other_store = tempfile::tempdir().unwrap();
    let out = run_with_store(&p, other_store.path(), &["build", "-o", "later/"], &[]);
    let second = assert_ok(&out, "second build");
    assert_eq!(first, second, "the wall clock leaked into the image");

    let manifest = layout.manifest(&digest_of(&first, "app"));
    let config = layout.config(&manifest);
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");
    for h in config["history"].as_array().unwrap() {
        assert_eq!(h["created"], "1970-01-01T00:00:00Z", "{h}");
    }
    let layers = layout.layers(&manifest);
    for (i, (_, _, tar)) in layers.iter().enumerate() {
        let want = if i == 3 { 86400 } else { 0 };
        for e in tar_entries(tar).1 {
            assert_eq!(e.mtime, want, "layer {i}: {} has mtime {}", e.path, e.mtime);
        }
    }
}

#[test]
fn source_date_epoch_sets_created_and_every_mtime_but_a_declared_one() {
    let (_p, plain, unstamped) = build_repro_layout(&[]);
    let (_q, layout, stamped) = build_repro_layout(&[("SOURCE_DATE_EPOCH", "1700000000")]);
    assert_ne!(
        digest_of(&unstamped, "app"),
        digest_of(&stamped, "app"),
        "SOURCE_DATE_EPOCH did not change the digest"
    );

    let manifest = layout.manifest(&digest_of(&stamped, "app"));
    let config = layout.config(&manifest);
    assert_eq!(config["created"], "2023-11-14T22:13:20Z");
    for h in config["history"].as_array().unwrap() {
        assert_eq!(h["created"], "2023-11-14T22:13:20Z", "{h}");
    }
    let layers = layout.layers(&manifest);
    assert_eq!(layers.len(), 4);
    for (i, (_, _, tar)) in layers.iter().enumerate() {
        // The last layer declares `mtime = 86400`, which wins.
        let want = if i == 3 { 86400 } else { 1_700_000_000 };
        for e in tar_entries(tar).1 {
            assert_eq!(e.mtime, want, "layer {i}: {} has mtime {}", e.path, e.mtime);
        }
    }
    // The layer with its own mtime is the same bytes either way.
    let plain_layers = layer_digests(&plain.manifest(&digest_of(&unstamped, "app")));
    assert_eq!(plain_layers[3], layers[3].1);
    assert_ne!(plain_layers[0], layers[0].1);
}

#[test]
fn far_future_source_date_epoch_is_kept_exactly_through_pax() {
    // Year 9999 does not fit ustar's 11 octal digits (they end in 2242); the
    // exact value must still reach the tar, and the config.
    let (_p, layout, out) = build_repro_layout(&[("SOURCE_DATE_EPOCH", "253402300799")]);
    let manifest = layout.manifest(&digest_of(&out, "app"));
    assert_eq!(layout.config(&manifest)["created"], "9999-12-31T23:59:59Z");
    let layers = layout.layers(&manifest);
    for e in tar_entries(&layers[0].2).1 {
        assert_eq!(e.mtime, 253_402_300_799, "{}", e.path);
    }
    // The layer with its own mtime needs no PAX record.
    let (raw, _) = tar_entries(&layers[3].2);
    assert!(raw.iter().all(|e| e.raw_type != b'x'));
}
