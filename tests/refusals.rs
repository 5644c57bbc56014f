//! Everything gantry refuses to build: each refusal says what is wrong and
//! where (file, line, declaration), exits non-zero without a panic, and
//! leaves no output behind — not even a temporary file — and an existing
//! output untouched.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Stdio};

use common::digest::tree_digests;
use common::{tree, Project};

// ---------------------------------------------------------------------------
// Local helpers.

/// Runs `gantry ARGS` (with `env`) in `p`, expecting a refusal whose message
/// contains every string of `expect`; checks that nothing was written.
fn refused(p: &Project, args: &[&str], env: &[(&str, &str)], expect: &[&str]) -> String {
    let mut c = p.cmd();
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run gantry");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        !out.status.success(),
        "gantry {args:?} succeeded but should be refused:\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        out.status.code().is_some(),
        "gantry {args:?} was killed by a signal:\n{stderr}"
    );
    for bad in ["panicked", "RUST_BACKTRACE", "stack backtrace"] {
        assert!(
            !stderr.contains(bad),
            "gantry {args:?} panicked instead of refusing:\n{stderr}"
        );
    }
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "expected one `error: ` line for {args:?}:\n{stderr}"
    );
    for e in expect {
        assert!(
            stderr.contains(e),
            "the refusal of {args:?} does not say {e:?}:\n{stderr}"
        );
    }
    assert!(
        stdout.is_empty(),
        "a refused build printed results: {stdout:?}"
    );
    assert_nothing_written(p, args);
    stderr
}

/// The `-o` target, if any, does not exist; no temporary file or directory
/// is left beside it; the store holds no half-written blob.
fn assert_nothing_written(p: &Project, args: &[&str]) {
    if let Some(i) = args.iter().position(|a| *a == "-o" || *a == "--output") {
        let target = args[i + 1];
        if target != "-" {
            let path = p.join(target);
            assert!(
                !path.exists(),
                "{} was written by a refused build",
                path.display()
            );
            if let Some(parent) = path.parent().filter(|d| d.exists()) {
                assert_no_temp_files(parent);
            }
        }
    }
    assert_no_temp_files(p.path());
    let tmp = p.store.path().join("tmp");
    if tmp.exists() {
        assert_eq!(
            tree(&tmp),
            Vec::<String>::new(),
            "temporary blobs left in the store"
        );
    }
}

fn assert_no_temp_files(dir: &Path) {
    let left: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".gantry-"))
        .collect();
    assert!(left.is_empty(), "left in {}: {left:?}", dir.display());
}

/// A build file with one scratch image `x` whose one layer has `files`.
fn one_layer(files: &str) -> String {
    format!(
        "[image.x]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\n[[image.x.layer]]\nname = \"l\"\nfiles = [\n{files}\n]\n"
    )
}

fn project(build_file: &str) -> Project {
    let p = Project::new();
    p.write("gantry.toml", build_file);
    p.write("a.txt", "a\n");
    p
}

const BUILD_TAR: &[&str] = &["build", "-o", "out.tar"];

// ---------------------------------------------------------------------------
// Inputs that cannot go in a layer.

#[test]
fn missing_src_is_refused_naming_the_declaration() {
    let p = project(&one_layer(
        "  { src = \"a.txt\", dst = \"/a\" },\n  { src = \"missing.txt\", dst = \"/m\" },",
    ));
    refused(
        &p,
        BUILD_TAR,
        &[],
        &[
            "image \"x\", layer \"l\"",
            "gantry.toml:9:3 (image.x.layer[0].files[1])",
            "src \"missing.txt\"",
            "does not exist",
        ],
    );
}

#[test]
fn socket_in_a_source_tree_is_refused() {
    let p = project(&one_layer("  { src = \"tree/\", dst = \"/t/\" },"));
    p.write("tree/ok.txt", "ok");
    let sock = p.join("tree/control.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    refused(
        &p,
        BUILD_TAR,
        &[],
        &[
            "(image.x.layer[0].files[0])",
            "tree/control.sock",
            "is a socket",
        ],
    );
}

#[test]
fn fifo_in_a_source_tree_is_refused() {
    if !common::require("mkfifo") {
        return;
    }
    let p = project(&one_layer("  { src = \"tree/\", dst = \"/t/\" },"));
    p.write("tree/ok.txt", "ok");
    common::sh(Command::new("mkfifo").arg(p.join("tree/pipe")));
    refused(
        &p,
        BUILD_TAR,
        &[],
        &["(image.x.layer[0].files[0])", "tree/pipe", "is a fifo"],
    );
}

#[test]
fn device_named_as_src_is_refused() {
    // A top-level `src` is followed like `COPY` does, so naming a device
    // (or a link to one) must not read from it.
    let p = project(&one_layer("  { src = \"/dev/null\", dst = \"/null\" },"));
    refused(
        &p,
        BUILD_TAR,
        &[],
        &[
            "(image.x.layer[0].files[0])",
            "/dev/null",
            "is a character device",
        ],
    );
    let q = project(&one_layer("  { src = \"zero\", dst = \"/zero\" },"));
    std::os::unix::fs::symlink("/dev/zero", q.join("zero")).unwrap();
    refused(&q, BUILD_TAR, &[], &["is a character device"]);
}

#[test]
fn device_in_a_source_tree_is_refused() {
    let p = project(&one_layer("  { src = \"tree/\", dst = \"/t/\" },"));
    p.write("tree/ok.txt", "ok");
    let made = Command::new("mknod")
        .arg(p.join("tree/null"))
        .args(["c", "1", "3"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !made {
        eprintln!("skipping: mknod is not permitted here (needs root and CAP_MKNOD)");
        return;
    }
    refused(
        &p,
        BUILD_TAR,
        &[],
        &[
            "(image.x.layer[0].files[0])",
            "tree/null",
            "is a character device",
        ],
    );
}

#[test]
fn destination_escaping_the_root_is_refused() {
    for (entry, what) in [
        ("{ src = \"a.txt\", dst = \"/../etc/x\" }", "\"/../etc/x\""),
        ("{ dir = \"a/../../b\" }", "\"a/../../b\""),
        ("{ symlink = \"../x\", target = \"y\" }", "\"../x\""),
    ] {
        let p = project(&one_layer(&format!("  {entry},")));
        refused(
            &p,
            BUILD_TAR,
            &[],
            &[
                "gantry.toml:8:3 (image.x.layer[0].files[0])",
                what,
                "escapes the image root",
            ],
        );
    }
}

#[test]
fn one_path_declared_twice_with_different_content_is_refused() {
    let p = project(&one_layer(
        "  { src = \"a.txt\", dst = \"/etc/x\" },\n  { src = \"b.txt\", dst = \"/etc/x\" },",
    ));
    p.write("b.txt", "b\n");
    refused(
        &p,
        BUILD_TAR,
        &[],
        &[
            "gantry.toml:9:3 (image.x.layer[0].files[1])",
            "/etc/x is declared twice with different content",
            "first at gantry.toml:8:3 (image.x.layer[0].files[0])",
        ],
    );
}

#[test]
fn one_path_declared_twice_with_different_modes_is_refused() {
    let p = project(&one_layer(
        "  { src = \"a.txt\", dst = \"/x\" },\n  { src = \"a.txt\", dst = \"/x\", mode = \"0600\" },",
    ));
    refused(&p, BUILD_TAR, &[], &["/x is declared twice"]);
}

#[test]
fn a_path_inside_a_declared_file_is_refused() {
    let p = project(&one_layer(
        "  { src = \"a.txt\", dst = \"/x\" },\n  { dir = \"/x/y\" },",
    ));
    refused(
        &p,
        BUILD_TAR,
        &[],
        &["/x/y is inside /x, which is declared as a file"],
    );
}

// ---------------------------------------------------------------------------
// A malformed build file.

#[test]
fn malformed_modes_are_refused() {
    for mode in ["\"0999\"", "755", "\"rwx\"", "\"\"", "\"077777\""] {
        let p = project(&one_layer(&format!(
            "  {{ src = \"a.txt\", dst = \"/a\", mode = {mode} }},"
        )));
        refused(
            &p,
            BUILD_TAR,
            &[],
            &[
                "gantry.toml:8:3 (image.x.layer[0].files[0])",
                "malformed mode",
            ],
        );
    }
    let p = project(&one_layer(
        "  { src = \"a.txt\", dst = \"/a/\", dir_mode = 493 },",
    ));
    refused(&p, BUILD_TAR, &[], &["malformed dir_mode 493"]);
}

#[test]
fn malformed_source_date_epoch_is_refused() {
    // Per the reproducible-builds specification a malformed value is an
    // error: silently falling back would date the image wrongly. An empty
    // value is malformed too, not "unset".
    let p = project(&one_layer("  { src = \"a.txt\", dst = \"/a\" },"));
    for bad in ["abc", "-1", "1.5", "", " 1", "1e9", "99999999999999999999"] {
        refused(
            &p,
            BUILD_TAR,
            &[("SOURCE_DATE_EPOCH", bad)],
            &[&format!("invalid SOURCE_DATE_EPOCH {bad:?}")],
        );
    }
}

#[test]
fn unknown_keys_are_refused_with_their_line() {
    let cases = [
        (
            "[image.x]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\nentrypiont = [\"/a\"]\n",
            "gantry.toml:4:",
            "entrypiont",
        ),
        (
            "[image.x]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n[[image.x.layer]]\nnmae = \"l\"\n",
            "gantry.toml:5:",
            "nmae",
        ),
        (
            "[image.x]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n[[image.x.layer]]\nfiles = [\n  { sorce = \"a.txt\", dst = \"/a\" },\n]\n",
            "gantry.toml:6:",
            "sorce",
        ),
        (
            "[images.x]\nbase = \"scratch\"\n",
            "gantry.toml:1:",
            "images",
        ),
    ];
    for (text, line, key) in cases {
        let p = project(text);
        refused(
            &p,
            BUILD_TAR,
            &[],
            &[line, &format!("unknown field `{key}`")],
        );
    }
}

#[test]
fn other_invalid_declarations_are_refused_where_they_are() {
    let head = "[image.x]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n";
    let cases: &[(String, &[&str])] = &[
        (
            format!("{head}compression = \"lz4\"\n"),
            &["gantry.toml:4:", "compression \"lz4\""],
        ),
        (
            format!("{head}compression_level = 12\n"),
            &["gantry.toml:4:", "compression_level 12 is out of range"],
        ),
        (
            format!("{head}workdir = \"srv\"\n"),
            &["gantry.toml:1:", "must be an absolute path"],
        ),
        (
            format!("{head}exposed_ports = [\"http\"]\n"),
            &["gantry.toml:4:", "exposed port \"http\""],
        ),
        (
            format!("{head}tags = [\"Bad Tag\"]\n"),
            &["gantry.toml:4:", "(image.x.tags[0])"],
        ),
        (
            format!("{head}[[image.x.layer]]\nowner = \"root:root\"\n"),
            &["gantry.toml:5:", "owner \"root:root\" must be numeric"],
        ),
        (
            format!("{head}[[image.x.layer]]\nfiles = [{{ src = \"a.txt\" }}]\n"),
            &["gantry.toml:5:", "needs a `dst`"],
        ),
        (
            format!("{head}[[image.x.layer]]\nfiles = [{{ symlink = \"/l\" }}]\n"),
            &["gantry.toml:5:", "needs a `target`"],
        ),
        (
            format!(
                "{head}[[image.x.layer]]\nfiles = [{{ src = \"a.txt\", dst = \"/a\", dir = \"/d\" }}]\n"
            ),
            &["gantry.toml:5:", "exactly one of"],
        ),
        (
            format!("{head}[[image.x.layer]]\nname = \"l\"\n[[image.x.layer]]\nname = \"l\"\n"),
            &["two layers of image \"x\" are named \"l\""],
        ),
        (
            "[image.X]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n".to_string(),
            &["image name \"X\""],
        ),
        (
            "[image.x]\nbase = \"scratch\"\nplatform = \"linux\"\n".to_string(),
            &["gantry.toml:3:", "platform \"linux\""],
        ),
        (
            "[image.x]\nbase = \":nope\"\n".to_string(),
            &["base \":nope\" names no image of this file"],
        ),
        (
            "[image.x]\nbase = \"oci:missing-layout\"\n".to_string(),
            &["gantry.toml:1:", "image \"x\": base", "missing-layout"],
        ),
        ("".to_string(), &["no images declared"]),
    ];
    for (text, expect) in cases {
        let p = project(text);
        refused(&p, BUILD_TAR, &[], expect);
    }
}

#[test]
fn missing_build_file_is_refused_naming_it() {
    let p = Project::new();
    refused(&p, BUILD_TAR, &[], &["gantry.toml", "No such file"]);
    refused(
        &p,
        &["build", "-f", "elsewhere/build.toml", "-o", "out.tar"],
        &[],
        &["elsewhere/build.toml", "No such file"],
    );
}

#[test]
fn scratch_without_platform_is_refused() {
    let p = project("[image.x]\nbase = \"scratch\"\n");
    refused(
        &p,
        BUILD_TAR,
        &[],
        &["gantry.toml:1:1 (image.x)", "needs `platform`"],
    );
}

#[test]
fn unknown_image_on_the_command_line_is_refused() {
    let p = project(&one_layer("  { src = \"a.txt\", dst = \"/a\" },"));
    refused(
        &p,
        &["build", "nope", "-o", "out.tar"],
        &[],
        &["no image named \"nope\"", "images: x"],
    );
}

#[test]
fn base_cycle_is_refused_naming_it() {
    let p =
        project("[image.a]\nbase = \":b\"\n[image.b]\nbase = \":c\"\n[image.c]\nbase = \":a\"\n");
    refused(
        &p,
        &["build", "b", "-o", "out.tar"],
        &[],
        &["base images form a cycle: b -> c -> a -> b"],
    );
}

// ---------------------------------------------------------------------------
// Impossible requests on the command line.

#[test]
fn oci_layout_to_stdout_is_refused() {
    let p = project(&one_layer("  { src = \"a.txt\", dst = \"/a\" },"));
    refused(
        &p,
        &["build", "--format", "oci", "-o", "-"],
        &[],
        &["cannot be written to stdout", "oci-archive"],
    );
}

#[test]
fn output_flags_that_make_no_sense_are_refused() {
    let p = project(&one_layer("  { src = \"a.txt\", dst = \"/a\" },"));
    refused(
        &p,
        &["build", "--format", "docker"],
        &[],
        &["--format needs --output"],
    );
    refused(
        &p,
        &["build", "-o", "image.img"],
        &[],
        &["cannot tell the output format of \"image.img\""],
    );
    refused(
        &p,
        &["build", "-j", "0", "-o", "out.tar"],
        &[],
        &["--jobs must be at least 1"],
    );
}

#[test]
fn output_into_a_missing_directory_is_refused() {
    let p = project(&one_layer("  { src = \"a.txt\", dst = \"/a\" },"));
    refused(
        &p,
        &["build", "-o", "no/such/dir/out.tar"],
        &[],
        &["no/such/dir"],
    );
}

// ---------------------------------------------------------------------------
// A failed build leaves an earlier output as it was.

const TWO_LAYERS: &str = "[image.x]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\n\
[[image.x.layer]]\nname = \"first\"\nfiles = [{ src = \"a.txt\", dst = \"/a\" }]\n\n\
[[image.x.layer]]\nname = \"second\"\nfiles = [{ src = \"b.txt\", dst = \"/b\" }]\n";

/// A project whose first build succeeds; removing `b.txt` then makes the
/// second layer fail after the first one was built.
fn half_failing_project() -> Project {
    let p = project(TWO_LAYERS);
    p.write("b.txt", "b\n");
    p
}

#[test]
fn failed_build_leaves_an_existing_tarball_byte_identical() {
    let p = half_failing_project();
    p.ok(&["build", "-o", "out.tar"]);
    let before = fs::read(p.join("out.tar")).unwrap();
    fs::remove_file(p.join("b.txt")).unwrap();
    // A different first layer too, so that a partial write would differ.
    p.write("a.txt", "changed\n");

    let out = p.run(&["build", "-o", "out.tar"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("layer \"second\""), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        fs::read(p.join("out.tar")).unwrap() == before,
        "the earlier out.tar was modified by a failed build"
    );
    assert_no_temp_files(p.path());
}

#[test]
fn failed_build_leaves_an_existing_layout_untouched() {
    let p = half_failing_project();
    p.ok(&["build", "-o", "layout/"]);
    let before = tree_digests(&p.join("layout"));
    fs::remove_file(p.join("b.txt")).unwrap();
    p.write("a.txt", "changed\n");

    let out = p.run(&["build", "-o", "layout/"]);
    assert!(!out.status.success());
    assert_eq!(
        tree_digests(&p.join("layout")),
        before,
        "the earlier layout was modified by a failed build"
    );
    assert_no_temp_files(p.path());
}

#[test]
fn failure_of_a_later_image_writes_none_of_them() {
    let p = project(&format!(
        "{}\n[image.y]\nbase = \":x\"\n[[image.y.layer]]\nfiles = [{{ src = \"gone.txt\", dst = \"/g\" }}]\n",
        one_layer("  { src = \"a.txt\", dst = \"/a\" },")
    ));
    refused(
        &p,
        BUILD_TAR,
        &[],
        &["image \"y\"", "src \"gone.txt\"", "does not exist"],
    );
    refused(&p, &["build", "-o", "layout/"], &[], &["image \"y\""]);
}

#[test]
fn failed_build_to_stdout_writes_no_tar_bytes() {
    let p = project(&one_layer("  { src = \"missing.txt\", dst = \"/m\" },"));
    let stderr = refused(&p, &["build", "-o", "-"], &[], &["does not exist"]);
    assert!(!stderr.contains("sha256:"), "{stderr}");
}

#[test]
fn inspect_refuses_what_is_not_an_image() {
    let p = Project::new();
    p.write("notes.txt", "not an image\n");
    for path in ["missing.tar", "notes.txt"] {
        let stderr = refused(&p, &["inspect", path], &[], &[path]);
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

#[test]
fn non_utf8_file_name_in_a_source_tree_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let p = project(&one_layer("  { src = \"tree/\", dst = \"/t/\" },"));
    p.write("tree/ok.txt", "ok");
    let name = std::ffi::OsStr::from_bytes(b"bad-\xff.txt");
    fs::write(p.join("tree").join(name), "x").unwrap();
    refused(
        &p,
        BUILD_TAR,
        &[],
        &["(image.x.layer[0].files[0])", "not valid UTF-8"],
    );
}

#[test]
fn tarball_over_an_existing_directory_is_refused_and_leaves_it() {
    let p = project(&one_layer("  { src = \"a.txt\", dst = \"/a\" },"));
    p.write("out.tar/keep.txt", "kept");
    let out = p.run(&["build", "-o", "out.tar"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("error: out.tar"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(tree(&p.join("out.tar")), ["keep.txt"]);
    assert_no_temp_files(p.path());
}

#[test]
fn oci_layout_over_an_existing_file_is_all_or_nothing() {
    let p = project(&one_layer("  { src = \"a.txt\", dst = \"/a\" },"));
    p.write("out", "an unrelated file");
    let out = p.run(&["build", "--format", "oci", "-o", "out"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    if out.status.success() {
        assert!(p.join("out/index.json").is_file(), "{stderr}");
    } else {
        assert_eq!(
            fs::read_to_string(p.join("out")).ok().as_deref(),
            Some("an unrelated file"),
            "a failed build replaced its output:\n{stderr}"
        );
    }
    assert_no_temp_files(p.path());
}

#[test]
fn oci_layout_output_never_replaces_a_directory_that_is_not_a_layout() {
    let p = project(&one_layer("  { src = \"a.txt\", dst = \"/a\" },"));
    p.write("src/main.rs", "fn main() {}");
    let stderr = p.fails(&["build", "--format", "oci", "-o", "src/"]);
    assert!(stderr.contains("not an earlier output"), "{stderr}");
    assert_eq!(
        fs::read_to_string(p.join("src/main.rs")).unwrap(),
        "fn main() {}"
    );
    assert_no_temp_files(p.path());
    // An earlier layout, and an empty directory, are replaced.
    p.ok(&["build", "--format", "oci", "-o", "out/"]);
    p.ok(&["build", "--format", "oci", "-o", "out/"]);
    fs::create_dir(p.join("empty")).unwrap();
    p.ok(&["build", "--format", "oci", "-o", "empty"]);
    assert!(p.join("empty/index.json").is_file());
}

// ---------------------------------------------------------------------------
// Stamp definitions.

/// `[stamp]` where `K{i}` doubles `K{i-1}`: 2^43 bytes for K40 if evaluated.
fn doubling_stamp_project(label: &str) -> Project {
    let mut text = format!(
        "[image.x]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\
         labels = {{ v = \"{label}\" }}\n\n[stamp]\nK0 = \"xxxxxxxx\"\n"
    );
    for i in 1..=40 {
        text.push_str(&format!("K{i} = \"{{{{K{0}}}}}{{{{K{0}}}}}\"\n", i - 1));
    }
    project(&text)
}

#[test]
fn exponential_stamp_definitions_are_evaluated_only_when_used() {
    // K13 is 64 KiB, the most a value may hold; K40 is never used.
    let p = doubling_stamp_project("{{K13}}");
    for args in [&["build"][..], &["build", "--stamp"][..]] {
        let out = p.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "gantry {args:?}: {stderr}");
    }
}

#[test]
fn a_stamp_value_past_64_kib_is_refused_naming_the_key_and_line() {
    let p = doubling_stamp_project("{{K40}}");
    for args in [BUILD_TAR, &["build", "--stamp", "-o", "out.tar"][..]] {
        // K14 is the first key past the limit, on line 21 of the file.
        refused(
            &p,
            args,
            &[],
            &["gantry.toml:21:1", "[stamp] K14", "65536 bytes"],
        );
    }
}

// ---------------------------------------------------------------------------
// Outputs that name an input.

/// Runs `args`, expecting a refusal that names the flag's path and the
/// input; every file of the project is byte for byte as before.
fn refused_over_input(p: &Project, args: &[&str], expect: &[&str]) {
    let before = tree_digests(p.path());
    let out = p.run(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "gantry {args:?} succeeded:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains("which the build reads"),
        "{args:?}:\n{stderr}"
    );
    for e in expect {
        assert!(stderr.contains(e), "{args:?} does not say {e:?}:\n{stderr}");
    }
    assert_eq!(
        tree_digests(p.path()),
        before,
        "{args:?} changed the project"
    );
    let blobs = p.store.path().join("blobs/sha256");
    assert!(
        !blobs.exists() || fs::read_dir(&blobs).unwrap().next().is_none(),
        "{args:?} did work before refusing"
    );
}

#[test]
fn an_output_over_an_input_is_refused_before_any_work() {
    let mut text = one_layer(concat!(
        "  { src = \"a.txt\", dst = \"/a\" },\n",
        "  { src = \"tree/\", dst = \"/t/\" },\n",
        "  { src = \"bin/{arch}/app\", dst = \"/app\" },",
    ));
    text.push_str("\n[image.y]\nbase = \"docker-archive:base.tar\"\n");
    let p = project(&text);
    p.write("tree/ok.txt", "ok");
    p.write("bin/amd64/app", "app");
    p.write("base.tar", "not read before the refusal");
    fs::create_dir(p.join("sub")).unwrap();
    for (args, expect) in [
        (
            &["build", "-o", "gantry.toml", "--format", "docker"][..],
            &["-o gantry.toml", "gantry.toml (the build file)"][..],
        ),
        (
            &["build", "-o", "sub/../gantry.toml", "--format", "oci"],
            &["the build file"],
        ),
        (
            &["build", "--report", "./gantry.toml"],
            &["--report ./gantry.toml", "the build file"],
        ),
        (
            &["build", "-o", "gantry.lock", "--format", "docker"],
            &["the lock file"],
        ),
        (
            &["build", "x", "-o", "a.txt", "--format", "docker"],
            &["a.txt (the `src` at gantry.toml:8:3 (image.x.layer[0].files[0]))"],
        ),
        (
            &["build", "-o", "tree/ok.txt", "--format", "docker"],
            &["(the `src` at gantry.toml:9:3 (image.x.layer[0].files[1]))"],
        ),
        (
            &["build", "-o", "tree/new.tar"],
            &["(the `src` at gantry.toml:9:3 (image.x.layer[0].files[1]))"],
        ),
        (
            &["build", "-o", "bin/", "--format", "oci"],
            &["bin/amd64/app (the `src` at gantry.toml:10:3"],
        ),
        (
            &["build", "-o", ".", "--format", "oci"],
            &["the build file"],
        ),
        (
            &["build", "y", "-o", "base.tar"],
            &["base.tar (the base of image \"y\")"],
        ),
    ] {
        refused_over_input(&p, args, expect);
    }
    // Beside the inputs is fine.
    p.ok(&["build", "x", "-o", "bin/image.tar"]);
}
