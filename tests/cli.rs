//! The command line as scripts see it: what goes to stdout and stderr, the
//! output formats and how they are chosen, `inspect`, and how paths and
//! image names on the command line are resolved.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use common::digest::sha256_hex;
use common::inspect::inspect_json;
use common::oci::{blob_path, read_json};
use common::tarball::{member, member_names};
use common::{digest_of, gantry_bin, Project};
use serde_json::Value;

// ---------------------------------------------------------------------------
// Local helpers.

const TWO_IMAGES: &str = r#"[image.base]
base = "scratch"
platform = "linux/amd64"
env = { PATH = "/bin" }

[[image.base.layer]]
name = "files"
files = [{ src = "files/", dst = "/opt/files/" }]

[image.app]
base = ":base"
entrypoint = ["/opt/app/run"]
cmd = ["--serve"]
user = "65532:65532"
tags = ["example.com/team/app:1.0"]

[[image.app.layer]]
name = "app"
compression = "zstd"
files = [
  { src = "app/run", dst = "/opt/app/run", mode = "0755" },
  { symlink = "/opt/app/current", target = "run" },
]
"#;

fn two_images() -> Project {
    let p = Project::new();
    p.write("gantry.toml", TWO_IMAGES);
    p.write("files/one.txt", "one\n");
    p.write("files/sub/two.txt", "two\n");
    p.write("app/run", "#!/bin/sh\necho run\n");
    p
}

/// `NAME sha256:<64 hex>` lines, checked to be nothing else.
fn result_lines(stdout: &str) -> Vec<(String, String)> {
    stdout
        .lines()
        .map(|l| {
            let (name, digest) = l
                .split_once(' ')
                .unwrap_or_else(|| panic!("not a result line: {l:?} in {stdout:?}"));
            let hex = digest
                .strip_prefix("sha256:")
                .unwrap_or_else(|| panic!("not a digest: {l:?}"));
            assert!(
                hex.len() == 64
                    && hex
                        .bytes()
                        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
                "not a sha256 digest: {l:?}"
            );
            assert!(!name.is_empty() && !name.contains(char::is_whitespace));
            (name.to_string(), digest.to_string())
        })
        .collect()
}

fn names(lines: &[(String, String)]) -> Vec<&str> {
    lines.iter().map(|(n, _)| n.as_str()).collect()
}

// ---------------------------------------------------------------------------
// stdout and stderr.

#[test]
fn stdout_has_exactly_one_digest_line_per_built_image() {
    let p = two_images();
    let out = p.run(&["build"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = result_lines(&stdout);
    assert_eq!(names(&lines), ["base", "app"], "bases first: {stdout}");
    assert!(stdout.ends_with('\n'));

    // Progress is on stderr only, one plain line per layer and image.
    let stderr = String::from_utf8(out.stderr).unwrap();
    let layer_lines: Vec<&str> = stderr.lines().filter(|l| l.contains(": layer ")).collect();
    assert_eq!(layer_lines.len(), 2, "{stderr}");
    for l in &layer_lines {
        // IMAGE: layer NAME built|reused: sha256:<12 hex>… (SIZE)
        let (head, rest) = l.split_once(": sha256:").unwrap_or_else(|| panic!("{l}"));
        assert!(
            head == "base: layer files built" || head == "app: layer app built",
            "{l}"
        );
        assert!(rest.contains(" (") && rest.ends_with(')'), "{l}");
    }
    assert!(!stderr.contains("error"), "{stderr}");
}

#[test]
fn quiet_build_prints_results_and_nothing_else() {
    let p = two_images();
    for flag in ["-q", "--progress=none"] {
        // Without the harness's own --progress flag, which may not repeat.
        let out = Command::new(gantry_bin())
            .current_dir(p.path())
            .env("GANTRY_STORE", p.store.path())
            .args([flag, "build", "-o", "out.tar"])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(
            String::from_utf8_lossy(&out.stderr),
            "",
            "{flag} printed on stderr"
        );
        let lines = result_lines(&String::from_utf8(out.stdout).unwrap());
        assert_eq!(names(&lines), ["base", "app"]);
    }
}

#[test]
fn building_a_named_image_builds_its_base_first_and_writes_only_it() {
    let p = two_images();
    let out = p.run(&["build", "app", "-o", "app.tar"]);
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines = result_lines(&stdout);
    assert_eq!(names(&lines), ["base", "app"], "{stdout}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    // Layers do not depend on the base and may be laid down in any order;
    // the image is assembled only once its base is.
    assert!(stderr.contains("base: layer files"), "{stderr}");
    assert!(stderr.contains("app: layer app"), "{stderr}");
    let base_at = stderr.find("base: image").expect("base built");
    let app_at = stderr.find("app: image").expect("app built");
    assert!(base_at < app_at, "{stderr}");

    // The tarball holds the image asked for, not its base as an image.
    let info = inspect_json(&p, &["app.tar"]);
    assert_eq!(info["manifest_digest"], digest_of(&stdout, "app"));
    assert_eq!(
        info["tags"],
        serde_json::json!(["example.com/team/app:1.0"])
    );
    let tarball = fs::read(p.join("app.tar")).unwrap();
    let manifest: Value = serde_json::from_slice(&member(&tarball, "manifest.json")).unwrap();
    assert_eq!(manifest.as_array().unwrap().len(), 1, "{manifest}");

    let only_base = result_lines(&p.ok(&["build", "base"]));
    assert_eq!(names(&only_base), ["base"]);
    assert_eq!(only_base[0].1, lines[0].1);
}

#[test]
fn tarball_to_stdout_with_results_on_stderr() {
    let p = two_images();
    let file_out = p.ok(&["build", "-o", "image.tar"]);
    let out = p.run(&["build", "-o", "-"]);
    assert!(out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    for (name, digest) in result_lines(&file_out) {
        assert!(
            stderr.lines().any(|l| l == format!("{name} {digest}")),
            "no result line for {name} on stderr:\n{stderr}"
        );
    }
    assert!(
        out.stdout == fs::read(p.join("image.tar")).unwrap(),
        "stdout is not the same tarball as -o image.tar"
    );
    let members = member_names(&out.stdout);
    for m in ["manifest.json", "index.json", "oci-layout"] {
        assert!(members.iter().any(|x| x == m), "{m} missing: {members:?}");
    }
}

// ---------------------------------------------------------------------------
// Output formats.

#[test]
fn output_format_follows_the_path_or_the_flag() {
    let p = two_images();
    let want = p.ok(&["build"]);
    fs::create_dir(p.join("existing")).unwrap();

    // A .tar path: docker tarball.
    assert_eq!(p.ok(&["build", "-o", "d.tar"]), want);
    let docker = member_names(&fs::read(p.join("d.tar")).unwrap());
    assert!(docker.contains(&"manifest.json".to_string()), "{docker:?}");

    // A path ending in / or an existing directory: OCI layout.
    for dir in ["layout/", "existing"] {
        assert_eq!(p.ok(&["build", "-o", dir]), want);
        let d = p.join(dir);
        assert_eq!(
            fs::read_to_string(d.join("oci-layout")).unwrap(),
            r#"{"imageLayoutVersion":"1.0.0"}"#
        );
        assert!(d.join("index.json").is_file());
        assert!(!d.join("manifest.json").exists());
    }

    // --format oci makes a layout of any new path.
    assert_eq!(
        p.ok(&["build", "--format", "oci", "-o", "plain-name"]),
        want
    );
    assert!(p.join("plain-name/index.json").is_file());

    // --format oci-archive: the layout in a tar, without manifest.json.
    assert_eq!(
        p.ok(&["build", "--format", "oci-archive", "-o", "o.tar"]),
        want
    );
    let oci = member_names(&fs::read(p.join("o.tar")).unwrap());
    assert!(oci.contains(&"index.json".to_string()), "{oci:?}");
    assert!(oci.contains(&"oci-layout".to_string()), "{oci:?}");
    assert!(!oci.contains(&"manifest.json".to_string()), "{oci:?}");

    // --format docker on a name that says nothing.
    assert_eq!(
        p.ok(&["build", "--format", "docker", "-o", "image.img"]),
        want
    );
    let img = member_names(&fs::read(p.join("image.img")).unwrap());
    assert!(img.contains(&"manifest.json".to_string()));

    // The layout in the OCI archive is the layout directory's, byte for byte.
    let archive = fs::read(p.join("o.tar")).unwrap();
    for m in &oci {
        let path = p.join("layout").join(m);
        if path.is_file() {
            assert_eq!(
                sha256_hex(&member(&archive, m)),
                sha256_hex(&fs::read(&path).unwrap()),
                "{m} differs between the OCI archive and the layout"
            );
        }
    }
}

#[test]
fn format_that_cannot_be_inferred_is_an_error() {
    let p = two_images();
    for args in [
        &["build", "-o", "image.img"][..],
        &["build", "-o", "image"][..],
    ] {
        let err = p.fails(args);
        assert!(
            err.contains("error: cannot tell the output format"),
            "{err}"
        );
        assert!(err.contains("--format docker|oci|oci-archive"), "{err}");
        assert!(!p.join(args[2]).exists());
    }
    let err = p.fails(&["build", "--format", "oci-archive"]);
    assert!(err.contains("--format needs --output"), "{err}");
    let err = p.fails(&["build", "--format", "zip", "-o", "x.zip"]);
    assert!(err.contains("zip"), "{err}");
}

#[test]
fn rebuilding_into_an_existing_output_replaces_it_whole() {
    let p = two_images();
    p.ok(&["build", "-o", "layout/"]);
    p.write("layout/stray.txt", "left from something else");
    let out = p.ok(&["build", "base", "-o", "layout/"]);
    assert!(
        !p.join("layout/stray.txt").exists(),
        "an OCI layout output is replaced, never merged into"
    );
    let index = read_json(&p.join("layout/index.json"));
    let digests: BTreeSet<&str> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        digests,
        BTreeSet::from([digest_of(&out, "base").as_str()]),
        "{index}"
    );
}

// ---------------------------------------------------------------------------
// inspect.

#[test]
fn inspect_json_matches_the_build_in_every_format() {
    let p = two_images();
    let printed = p.ok(&["build", "-o", "layout/"]);
    p.ok(&["build", "-o", "d.tar"]);
    p.ok(&["build", "--format", "oci-archive", "-o", "o.tar"]);
    let app = digest_of(&printed, "app");
    let layout = p.join("layout");
    let blob = |d: &str| fs::read(blob_path(&layout, d)).unwrap();
    let manifest: Value = serde_json::from_slice(&blob(&app)).unwrap();
    let config: Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();

    let info = inspect_json(&p, &["layout/", "--image", "example.com/team/app:1.0"]);
    assert_eq!(info["manifest_digest"], app);
    assert_eq!(
        info["manifest_media_type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(info["config_digest"], manifest["config"]["digest"]);
    assert_eq!(info["platform"], "linux/amd64");
    assert_eq!(info["created"], "1970-01-01T00:00:00Z");
    assert_eq!(
        info["config"]["entrypoint"],
        serde_json::json!(["/opt/app/run"])
    );
    assert_eq!(info["config"]["cmd"], serde_json::json!(["--serve"]));
    assert_eq!(info["config"]["user"], "65532:65532");
    assert_eq!(info["config"]["env"], serde_json::json!(["PATH=/bin"]));
    let layers = info["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    for (i, l) in layers.iter().enumerate() {
        let m = &manifest["layers"][i];
        assert_eq!(l["digest"], m["digest"]);
        assert_eq!(l["media_type"], m["mediaType"]);
        assert_eq!(l["size"], m["size"]);
        assert_eq!(l["diff_id"], config["rootfs"]["diff_ids"][i]);
        let d = l["digest"].as_str().unwrap();
        assert_eq!(blob(d).len() as u64, l["size"].as_u64().unwrap());
    }
    assert_eq!(
        layers[1]["media_type"],
        "application/vnd.oci.image.layer.v1.tar+zstd"
    );

    // Every format describes the same image.
    for path in ["d.tar", "o.tar"] {
        let other = inspect_json(&p, &[path, "--image", "example.com/team/app:1.0"]);
        assert_eq!(other["manifest_digest"], info["manifest_digest"], "{path}");
        assert_eq!(other["config_digest"], info["config_digest"], "{path}");
        assert_eq!(other["layers"], info["layers"], "{path}");
        assert_eq!(other["config"], info["config"], "{path}");
    }
    let base = inspect_json(&p, &["d.tar", "--image", "base"]);
    assert_eq!(base["manifest_digest"], digest_of(&printed, "base"));
}

#[test]
fn inspect_human_output_shows_digest_config_and_layers() {
    let p = two_images();
    let printed = p.ok(&["build", "app", "-o", "app.tar"]);
    let text = p.ok(&["inspect", "app.tar"]);
    let info = inspect_json(&p, &["app.tar"]);
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("digest") && first.contains(&digest_of(&printed, "app")),
        "{text}"
    );
    assert!(
        text.contains(info["config_digest"].as_str().unwrap()),
        "{text}"
    );
    assert!(text.contains("linux/amd64"), "{text}");
    for l in info["layers"].as_array().unwrap() {
        assert!(text.contains(l["digest"].as_str().unwrap()), "{text}");
    }
    assert!(text.contains("zstd") && text.contains("gzip"), "{text}");
    assert!(
        serde_json::from_str::<Value>(&text).is_err(),
        "human output is not JSON"
    );
}

#[test]
fn inspect_of_several_images_needs_a_selection() {
    let p = two_images();
    p.ok(&["build", "-o", "both.tar"]);
    let err = p.fails(&["inspect", "both.tar"]);
    assert!(
        err.starts_with("error: ") || err.contains("\nerror: "),
        "{err}"
    );
    assert!(err.contains("base") && err.contains("app"), "{err}");
}

// ---------------------------------------------------------------------------
// Paths and help.

#[test]
fn build_file_elsewhere_resolves_src_against_its_own_directory() {
    let p = Project::new();
    p.write("proj/sub/gantry.toml", TWO_IMAGES);
    p.write("proj/sub/files/one.txt", "one\n");
    p.write("proj/sub/app/run", "#!/bin/sh\necho run\n");
    // Same relative names in the working directory, other content: they
    // must not be picked up.
    p.write("files/one.txt", "decoy\n");
    p.write("app/run", "decoy\n");

    let from_outside = p.ok(&["build", "-f", "proj/sub/gantry.toml", "-o", "out.tar"]);
    assert!(p.join("out.tar").is_file(), "-o is relative to the cwd");

    let inside = Project::new();
    inside.write("gantry.toml", TWO_IMAGES);
    inside.write("files/one.txt", "one\n");
    inside.write("app/run", "#!/bin/sh\necho run\n");
    assert_eq!(from_outside, inside.ok(&["build"]));

    let absolute = p.join("proj/sub/gantry.toml");
    let out = p.ok(&["build", "-f", absolute.to_str().unwrap()]);
    assert_eq!(out, from_outside);
    let dot = p.ok(&["build", "-f", "./proj/../proj/sub/gantry.toml"]);
    assert_eq!(dot, from_outside);
}

#[test]
fn help_lists_the_verbs_and_their_options() {
    let p = Project::new();
    let help = p.ok(&["--help"]);
    for verb in ["build", "inspect"] {
        assert!(
            help.lines()
                .any(|l| l.trim_start().starts_with(&format!("{verb} "))),
            "--help does not list {verb}:\n{help}"
        );
    }
    let build = p.ok(&["build", "--help"]);
    for opt in ["--file", "--output", "--format", "--jobs", "oci-archive"] {
        assert!(build.contains(opt), "build --help lacks {opt}:\n{build}");
    }
    let inspect = p.ok(&["inspect", "--help"]);
    assert!(inspect.contains("--json"), "{inspect}");
    let version = p.ok(&["--version"]);
    assert!(
        version.starts_with(&format!("gantry {}", env!("CARGO_PKG_VERSION"))),
        "{version}"
    );
}

#[test]
fn usage_errors_exit_non_zero_without_a_panic() {
    let p = Project::new();
    for args in [
        &["frobnicate"][..],
        &["build", "--jobs", "many"][..],
        &[][..],
    ] {
        let out = p.run(args);
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("error") || err.contains("Usage"), "{err}");
        assert!(!err.contains("panicked"), "{err}");
    }
}

#[test]
fn store_flag_and_environment_choose_the_store() {
    let p = two_images();
    let other = tempfile::tempdir().unwrap();
    let via_flag = p.ok(&["--store", other.path().to_str().unwrap(), "build"]);
    assert!(
        other.path().join("blobs/sha256").is_dir(),
        "--store was not used"
    );
    let blobs = |d: &Path| fs::read_dir(d.join("blobs/sha256")).unwrap().count();
    assert!(blobs(other.path()) > 0);
    assert_eq!(via_flag, p.ok(&["build"]));
    assert!(blobs(p.store.path()) > 0, "GANTRY_STORE was not used");
}

/// Runs gantry with its stdout a pipe whose reader is already gone, as in
/// `gantry ... | head -0`; returns (exit code, stderr).
fn with_closed_stdout(p: &Project, args: &[&str]) -> (Option<i32>, String) {
    // The shell waits until the reader is gone before gantry starts.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("sleep 0.3; exec \"$0\" \"$@\"")
        .arg(gantry_bin())
        .args(args)
        .current_dir(p.path())
        .env("GANTRY_STORE", p.store.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn build_into_a_closed_pipe_is_an_error_not_a_panic() {
    let p = two_images();
    for args in [&["-q", "build"][..], &["-q", "build", "-o", "-"][..]] {
        let (code, stderr) = with_closed_stdout(&p, args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains("Broken pipe"), "{args:?}: {stderr}");
    }
}

#[test]
fn inspect_into_a_closed_pipe_is_an_error_not_a_panic() {
    let p = two_images();
    p.ok(&["build", "app", "-o", "app.tar"]);
    for args in [
        &["inspect", "app.tar"][..],
        &["inspect", "app.tar", "--json"][..],
    ] {
        let (code, stderr) = with_closed_stdout(&p, args);
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert_ne!(code, Some(101), "{args:?}: {stderr}");
    }
}
