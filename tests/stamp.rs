//! Release stamping as users see it: `--stamp` fills `{{KEY}}` templates
//! from git, the clock, status files and `--stamp-var`, and touches nothing
//! but the config, the manifest and the tags; without it a build is the same
//! whatever the state of the checkout or the time of day.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::docker::{docker, DockerImages};
use common::fixture::testdata;
use common::git::{git, init, ok, run};
use common::host::host_platform;
use common::inspect::{annotations, env_of, inspect_json, labels};
use common::oci::layer_digests;
use common::{busybox, digest_of, require, require_docker, sh, tree, Project};
use serde_json::Value;

// ---------------------------------------------------------------------------
// Local helpers.

const TOKEN: &str = "ghp_Zq8sTampT0kenNeverInImages";
const REMOTE: &str = "https://ci-bot:ghp_Zq8sTampT0kenNeverInImages@github.com/acme/widget.git";
const REMOTE_CLEAN: &str = "https://github.com/acme/widget.git";

const STANDARD: [&str; 4] = [
    "org.opencontainers.image.version",
    "org.opencontainers.image.revision",
    "org.opencontainers.image.created",
    "org.opencontainers.image.source",
];

fn fixture(name: &str) -> PathBuf {
    testdata("stamp").join(name)
}

fn fixture_text(name: &str) -> String {
    fs::read_to_string(fixture(name)).unwrap()
}

/// Makes `p` a checkout on `branch` with one commit tagged `v1.4.0` and an
/// `origin` whose URL embeds a token; returns the commit.
fn init_repo(p: &Project, branch: &str) -> String {
    let d = p.path();
    init(d, branch);
    git(d, &["add", "-A"]);
    git(d, &["commit", "-q", "-m", "Widget 1.4.0"]);
    git(d, &["tag", "-a", "v1.4.0", "-m", "Widget 1.4.0"]);
    git(d, &["remote", "add", "origin", REMOTE]);
    git(d, &["rev-parse", "HEAD"])
}

/// The release fixture's inputs, plus a tracked file that no layer uses.
fn release_project() -> Project {
    let p = Project::new();
    p.write("gantry.toml", fixture_text("release.toml"));
    p.write("app/run.sh", "#!/bin/sh\necho widget\n");
    p.write("app/data/words.txt", "alpha\nbeta\n");
    p.write("etc/widget.conf", "level = 3\n");
    p.write("README.md", "Widget\n");
    p
}

fn release_repo(branch: &str) -> (Project, String) {
    let p = release_project();
    let commit = init_repo(&p, branch);
    (p, commit)
}

/// Runs gantry expecting a refusal that writes nothing; returns stderr.
fn refused(p: &Project, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run(p, args, env);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        !out.status.success(),
        "gantry {args:?} succeeded but should be refused:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "a refused build printed results: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    if let Some(i) = args.iter().position(|a| *a == "-o") {
        assert!(
            !p.join(args[i + 1]).exists(),
            "{} was written by a refused build",
            args[i + 1]
        );
    }
    stderr
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

// ---------------------------------------------------------------------------
// Stamping touches the config and the manifest, never a layer.

#[test]
fn stamped_and_unstamped_builds_share_every_layer() {
    let (p, _) = release_repo("main");
    let plain = ok(&p, &["build", "-o", "plain.tar"], &[]);
    let stamped = ok(&p, &["build", "--stamp", "-o", "stamped.tar"], &[]);
    let a = inspect_json(&p, &["plain.tar"]);
    let b = inspect_json(&p, &["stamped.tar"]);

    assert_eq!(layer_digests(&a).len(), 2);
    assert_eq!(layer_digests(&a), layer_digests(&b));
    assert_ne!(a["config_digest"], b["config_digest"]);
    assert_ne!(digest_of(&plain, "app"), digest_of(&stamped, "app"));
    assert_eq!(b["manifest_digest"], digest_of(&stamped, "app"));
}

#[test]
fn unstamped_builds_ignore_commits_tags_branches_dirt_and_the_clock() {
    let (p, _) = release_repo("main");
    let first = ok(&p, &["build", "-o", "first.tar"], &[]);

    p.write("README.md", "Widget, now documented\n");
    git(p.path(), &["commit", "-q", "-am", "Document"]);
    git(p.path(), &["tag", "v2.0.0"]);
    git(p.path(), &["checkout", "-q", "-b", "feature/other"]);
    p.write("README.md", "Widget, being edited\n");
    assert_ne!(git(p.path(), &["status", "--porcelain"]), "");
    std::thread::sleep(Duration::from_millis(1100));

    // A fresh store, so that nothing is reused from the first build.
    let other_store = tempfile::tempdir().unwrap();
    let second = ok(
        &p,
        &["build", "-o", "second.tar"],
        &[("GANTRY_STORE", other_store.path().to_str().unwrap())],
    );
    assert_eq!(digest_of(&first, "app"), digest_of(&second, "app"));
    assert_eq!(
        fs::read(p.join("first.tar")).unwrap(),
        fs::read(p.join("second.tar")).unwrap()
    );

    let info = inspect_json(&p, &["second.tar"]);
    let l = labels(&info);
    assert_eq!(l["org.example.commit"], "unstamped");
    assert_eq!(l["org.example.dirty"], "false");
    assert_eq!(l["org.example.built"], "0");
    assert_eq!(l["org.example.release"], "0.0.0-dev");
    assert_eq!(
        info["tags"],
        serde_json::json!(["example.com/acme/widget:unstamped"])
    );
}

// ---------------------------------------------------------------------------
// A stamped build in a checkout.

#[test]
fn stamped_commit_is_in_the_labels_skopeo_reads() {
    if !require("skopeo") {
        return;
    }
    let (p, commit) = release_repo("main");
    ok(&p, &["build", "--stamp", "-o", "out.tar"], &[]);
    ok(&p, &["build", "--stamp", "-o", "layout/"], &[]);
    let short = &commit[..12];

    for target in [
        "docker-archive:out.tar".to_string(),
        format!("oci:layout:{short}"),
    ] {
        let mut c = Command::new("skopeo");
        c.current_dir(p.path()).args(["inspect", &target]);
        let info: Value = serde_json::from_str(&sh(&mut c)).unwrap();
        let l = &info["Labels"];
        assert_eq!(l["org.example.commit"], commit.as_str(), "{target}: {info}");
        assert_eq!(l["org.example.short"], short, "{target}");
        assert_eq!(l["org.example.branch"], "main", "{target}");
        assert_eq!(l["org.example.tag"], "v1.4.0", "{target}");
        assert_eq!(l["org.example.describe"], "v1.4.0", "{target}");
        assert_eq!(l["org.example.dirty"], "false", "{target}");
        assert_eq!(l["org.example.release"], "v1.4.0", "{target}");
        let env: Vec<String> = serde_json::from_value(info["Env"].clone()).unwrap();
        assert!(env.contains(&format!("APP_COMMIT={commit}")), "{env:?}");
    }

    let mut c = Command::new("skopeo");
    c.current_dir(p.path())
        .args(["inspect", "--raw", &format!("oci:layout:{short}")]);
    let manifest: Value = serde_json::from_str(&sh(&mut c)).unwrap();
    let a = &manifest["annotations"];
    assert_eq!(a["org.opencontainers.image.revision"], commit.as_str());
    assert_eq!(a["org.opencontainers.image.version"], "v1.4.0");
    assert_eq!(a["org.opencontainers.image.source"], REMOTE_CLEAN);
    assert!(a["org.opencontainers.image.created"].is_string(), "{a}");
    assert_eq!(a["org.example.revision"], short);
}

#[test]
fn stamped_commit_is_in_the_environment_of_a_running_container() {
    if !require_docker() {
        return;
    }
    let Some(bb) = busybox() else {
        return;
    };
    let p = Project::new();
    fs::copy(&bb, p.join("busybox")).unwrap();
    // Unique per run, so that parallel runs on one engine never share it.
    let repo = format!(
        "gantry-stamp-test/env-{}-{}",
        std::process::id(),
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    );
    p.write(
        "gantry.toml",
        format!(
            r#"[image.envtest]
base = "scratch"
platform = "{}"
env = {{ PATH = "/bin", STAMP_COMMIT = "{{{{GIT_COMMIT}}}}", STAMP_TAG = "{{{{GIT_TAG}}}}" }}
tags = ["{repo}:{{{{GIT_SHORT_COMMIT}}}}"]

[[image.envtest.layer]]
name = "busybox"
files = [
  {{ src = "busybox", dst = "/bin/busybox", mode = "0755" }},
  {{ symlink = "/bin/env", target = "busybox" }},
]
"#,
            host_platform()
        ),
    );
    let commit = init_repo(&p, "main");
    ok(&p, &["build", "--stamp", "-o", "env.tar"], &[]);
    let image = format!("{repo}:{}", &commit[..12]);

    let mut cleanup = DockerImages::new();
    cleanup.track(&image);
    docker(&["load", "-i", &p.join("env.tar").display().to_string()]);
    let env = docker(&["run", "--rm", &image, "env"]);
    let lines: Vec<&str> = env.lines().collect();
    assert!(
        lines.contains(&format!("STAMP_COMMIT={commit}").as_str()),
        "{env}"
    );
    assert!(lines.contains(&"STAMP_TAG=v1.4.0"), "{env}");
}

#[test]
fn standard_annotations_only_when_stamped_and_the_build_file_wins() {
    let p = release_project();
    p.write(
        "gantry.toml",
        r#"[image.plain]
base = "scratch"
platform = "linux/amd64"
tags = ["example.com/acme/plain:1.0"]

[[image.plain.layer]]
files = [{ src = "etc/widget.conf", dst = "/etc/widget.conf" }]

[image.custom]
base = "scratch"
platform = "linux/amd64"
tags = ["example.com/acme/custom:2.0"]
annotations = { "org.opencontainers.image.version" = "9.9.9-{{GIT_SHORT_COMMIT}}", "org.opencontainers.image.source" = "https://example.org/mirror/widget" }

[[image.custom.layer]]
files = [{ src = "etc/widget.conf", dst = "/etc/widget.conf" }]
"#,
    );
    let commit = init_repo(&p, "main");

    ok(&p, &["build", "-o", "unstamped/"], &[]);
    let a = annotations(&inspect_json(
        &p,
        &["unstamped/", "--image", "example.com/acme/plain:1.0"],
    ));
    for key in STANDARD {
        assert!(!a.contains_key(key), "unstamped image has {key}: {a:?}");
    }
    // The build file's own annotations are there either way, and only they.
    let a = annotations(&inspect_json(
        &p,
        &["unstamped/", "--image", "example.com/acme/custom:2.0"],
    ));
    let present: Vec<&str> = STANDARD
        .into_iter()
        .filter(|k| a.contains_key(*k))
        .collect();
    assert_eq!(
        present,
        [
            "org.opencontainers.image.version",
            "org.opencontainers.image.source"
        ],
        "{a:?}"
    );
    assert_eq!(a["org.opencontainers.image.version"], "9.9.9-unstamped");

    ok(&p, &["build", "--stamp", "-o", "stamped/"], &[]);
    let plain = inspect_json(&p, &["stamped/", "--image", "example.com/acme/plain:1.0"]);
    let a = annotations(&plain);
    assert_eq!(a["org.opencontainers.image.version"], "v1.4.0");
    assert_eq!(a["org.opencontainers.image.revision"], commit);
    assert_eq!(a["org.opencontainers.image.source"], REMOTE_CLEAN);
    assert_eq!(a["org.opencontainers.image.created"], plain["created"]);

    let a = annotations(&inspect_json(
        &p,
        &["stamped/", "--image", "example.com/acme/custom:2.0"],
    ));
    assert_eq!(
        a["org.opencontainers.image.version"],
        format!("9.9.9-{}", &commit[..12])
    );
    assert_eq!(
        a["org.opencontainers.image.source"],
        "https://example.org/mirror/widget"
    );
    assert_eq!(a["org.opencontainers.image.revision"], commit);
}

#[test]
fn remote_url_credentials_reach_no_output() {
    let (p, commit) = release_repo("main");
    let mut printed = Vec::new();
    for out in ["out.tar", "layout/"] {
        let o = run(&p, &["build", "--stamp", "-o", out], &[]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        printed.extend(o.stdout);
        printed.extend(o.stderr);
    }
    // The URL was read: only its credentials are missing.
    let info = inspect_json(&p, &["out.tar"]);
    assert_eq!(
        annotations(&info)["org.opencontainers.image.source"],
        REMOTE_CLEAN
    );
    assert_eq!(labels(&info)["org.example.commit"], commit);

    let mut files = vec![p.join("out.tar")];
    files.extend(
        tree(&p.join("layout"))
            .iter()
            .map(|rel| p.join("layout").join(rel))
            .filter(|f| f.is_file()),
    );
    for f in &files {
        let bytes = fs::read(f).unwrap();
        for secret in [TOKEN, "ci-bot"] {
            assert!(!contains(&bytes, secret), "{secret} in {}", f.display());
        }
    }
    assert!(!contains(&printed, TOKEN), "the token was printed");
}

// ---------------------------------------------------------------------------
// Status files and variables.

fn precedence_project() -> Project {
    let p = Project::new();
    p.write("gantry.toml", fixture_text("precedence.toml"));
    p.write("a.txt", "a\n");
    p
}

#[test]
fn precedence_is_builtins_then_definitions_then_status_files_then_stamp_vars() {
    let p = precedence_project();
    let stable = fixture("stable-status.txt");
    let volatile = fixture("volatile-status.txt");
    let sde = [("SOURCE_DATE_EPOCH", "1700000000")];
    ok(
        &p,
        &[
            "build",
            "--stamp",
            "--status-file",
            stable.to_str().unwrap(),
            "--status-file",
            volatile.to_str().unwrap(),
            "--stamp-var",
            "EVERYWHERE=first",
            "--stamp-var",
            "EVERYWHERE=cli",
            "-o",
            "out.tar",
        ],
        &sde,
    );
    let l = labels(&inspect_json(&p, &["out.tar"]));
    let want: BTreeMap<String, String> = [
        ("built", "1700000000"),
        ("git-tag", "from-definition"),
        ("git-commit", "from-status"),
        ("only-def", "def"),
        ("def-and-status", "stable"),
        ("in-both-files", "volatile"),
        ("everywhere", "cli"),
        ("stable", "stable value"),
        ("volatile", "volatile"),
        ("combined", "stable value+volatile+cli"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(l, want);

    // It is the order on the command line that decides, not the file names.
    ok(
        &p,
        &[
            "build",
            "--stamp",
            "--status-file",
            volatile.to_str().unwrap(),
            "--status-file",
            stable.to_str().unwrap(),
            "-o",
            "swapped.tar",
        ],
        &sde,
    );
    let l = labels(&inspect_json(&p, &["swapped.tar"]));
    assert_eq!(l["in-both-files"], "stable");
    assert_eq!(l["everywhere"], "stable");
    assert_eq!(l["combined"], "stable value+volatile+stable");
}

#[test]
fn unstamped_builds_take_unstamped_values_and_definitions() {
    let p = precedence_project();
    ok(&p, &["build", "-o", "out.tar"], &[]);
    let l = labels(&inspect_json(&p, &["out.tar"]));
    assert_eq!(l["stable"], "stable-dev");
    assert_eq!(l["volatile"], "volatile-dev");
    assert_eq!(l["combined"], "stable-dev+volatile-dev+def");
    assert_eq!(l["git-tag"], "from-definition");
    assert_eq!(l["git-commit"], "unstamped");
    assert_eq!(l["built"], "0");
}

#[test]
fn status_file_and_stamp_var_without_stamp_are_usage_errors() {
    let p = precedence_project();
    let stable = fixture("stable-status.txt");
    for args in [
        vec!["build", "--status-file", stable.to_str().unwrap()],
        vec!["build", "--stamp-var", "EVERYWHERE=cli"],
    ] {
        let mut with_output = args.clone();
        with_output.extend(["-o", "out.tar"]);
        let out = run(&p, &with_output, &[]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("--stamp"), "{args:?}: {stderr}");
        assert!(!p.join("out.tar").exists());
    }
}

#[test]
fn malformed_status_file_line_is_refused_with_its_line() {
    let p = precedence_project();
    let status = p.write("status.txt", "STABLE_X fine\n\nbuild_y lower case\n");
    let e = refused(
        &p,
        &[
            "build",
            "--stamp",
            "--status-file",
            status.to_str().unwrap(),
            "-o",
            "out.tar",
        ],
        &[],
    );
    assert!(e.contains("status.txt:3"), "{e}");
    assert!(e.contains("build_y"), "{e}");
}

// ---------------------------------------------------------------------------
// Mistakes in templates.

#[test]
fn unknown_key_is_refused_naming_it_and_where_it_is_used() {
    let cases = [
        ("tags = [\"example.com/x:{{NOPE_KEY}}\"]", "image.x.tags[0]"),
        (
            "labels = { lab = \"{{NOPE_KEY}}\" }",
            "image.x.labels.\"lab\"",
        ),
        ("env = { VAR = \"{{NOPE_KEY}}\" }", "image.x.env.\"VAR\""),
        (
            "annotations = { ann = \"{{NOPE_KEY}}\" }",
            "image.x.annotations.\"ann\"",
        ),
        ("created = \"{{NOPE_KEY}}\"", "image.x.created"),
    ];
    for (line, place) in cases {
        let p = Project::new();
        p.write("a.txt", "a\n");
        p.write(
            "gantry.toml",
            format!(
                "[image.x]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n{line}\n\n\
                 [[image.x.layer]]\nfiles = [{{ src = \"a.txt\", dst = \"/a.txt\" }}]\n"
            ),
        );
        for stamp in [false, true] {
            let mut args = vec!["build", "-o", "out.tar"];
            if stamp {
                args.push("--stamp");
            }
            let e = refused(&p, &args, &[]);
            assert!(e.contains("gantry.toml:"), "{line}: {e}");
            assert!(e.contains(place), "{line}: no {place} in {e}");
            assert!(e.contains("\"NOPE_KEY\""), "{line}: {e}");
        }
    }
}

#[test]
fn malformed_template_is_refused_when_the_file_is_parsed() {
    // (declaration, its path, the line the error names)
    let cases = [
        ("tags = [\"example.com/x:{{GIT_TAG\"]", "image.x.tags[0]", 8),
        ("created = \"x}}\"", "image.x.created", 8),
        (
            "labels = { lab = \"{{git_tag}}\" }",
            "image.x.labels.\"lab\"",
            5,
        ),
        (
            "env = { VAR = \"{{GIT_TAG|upper}}\" }",
            "image.x.env.\"VAR\"",
            5,
        ),
        (
            "annotations = { ann = \"{{}}\" }",
            "image.x.annotations.\"ann\"",
            5,
        ),
    ];
    for (line, place, at) in cases {
        let p = Project::new();
        p.write("a.txt", "a\n");
        // `y` is well-formed: building only it still parses the whole file.
        p.write(
            "gantry.toml",
            format!(
                "[image.y]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\n\
                 [image.x]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n{line}\n"
            ),
        );
        for args in [&["build", "y", "-o", "out.tar"][..], &["build", "--stamp"]] {
            let e = refused(&p, args, &[]);
            assert!(e.contains(&format!("gantry.toml:{at}:")), "{line}: {e}");
            assert!(e.contains(place), "{line}: no {place} in {e}");
            assert!(e.contains("template"), "{line}: {e}");
        }
    }

    let p = Project::new();
    p.write(
        "gantry.toml",
        "[image.y]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\n\
         [stamp]\nFULL = \"{{GIT_TAG\"\n",
    );
    let e = refused(&p, &["build", "-o", "out.tar"], &[]);
    assert!(e.contains("gantry.toml:5:"), "{e}");
    assert!(e.contains("[stamp] FULL"), "{e}");
}

const BRANCH_TAG: &str = r#"[image.app]
base = "scratch"
platform = "linux/amd64"
tags = ["example.com/acme/app:{{GIT_BRANCH}}"]

[[image.app.layer]]
files = [{ src = "a.txt", dst = "/a.txt" }]
"#;

fn branch_project(tag: &str, branch: &str) -> Project {
    let p = Project::new();
    p.write("a.txt", "a\n");
    p.write(
        "gantry.toml",
        BRANCH_TAG.replace("example.com/acme/app:{{GIT_BRANCH}}", tag),
    );
    init_repo(&p, branch);
    p
}

#[test]
fn branch_with_a_slash_is_refused_as_a_tag_until_filtered() {
    let p = branch_project("example.com/acme/app:{{GIT_BRANCH}}", "feature/login");
    let e = refused(&p, &["build", "--stamp", "-o", "out.tar"], &[]);
    assert!(e.contains("gantry.toml:4:"), "{e}");
    assert!(e.contains("image.app.tags[0]"), "{e}");
    assert!(e.contains("\"example.com/acme/app:feature/login\""), "{e}");
    assert!(e.contains("|tag}}"), "the fix is not suggested: {e}");
    assert_eq!(
        tree(p.path())
            .into_iter()
            .filter(|f| !f.starts_with(".git"))
            .collect::<Vec<_>>(),
        ["a.txt", "gantry.toml"]
    );

    // Unstamped, the branch is a placeholder that is a valid tag.
    ok(&p, &["build", "-o", "plain.tar"], &[]);
    assert_eq!(
        inspect_json(&p, &["plain.tar"])["tags"],
        serde_json::json!(["example.com/acme/app:unstamped"])
    );

    let p = branch_project("example.com/acme/app:{{GIT_BRANCH|tag}}", "feature/login");
    ok(&p, &["build", "--stamp", "-o", "out.tar"], &[]);
    assert_eq!(
        inspect_json(&p, &["out.tar"])["tags"],
        serde_json::json!(["example.com/acme/app:feature-login"])
    );
}

#[test]
fn branch_with_a_numeric_first_component_does_not_turn_a_tag_into_a_registry_port() {
    let p = branch_project("app:{{GIT_BRANCH}}", "1234/fix");
    let e = refused(&p, &["build", "--stamp", "-o", "out.tar"], &[]);
    assert!(e.contains("image.app.tags[0]"), "{e}");
    assert!(e.contains("\"app:1234/fix\""), "{e}");
}

#[test]
fn templated_tags_that_expand_to_one_tag_on_two_images_are_refused() {
    let p = Project::new();
    p.write("a.txt", "a\n");
    p.write(
        "gantry.toml",
        r#"[image.a]
base = "scratch"
platform = "linux/amd64"
tags = ["example.com/acme/app:{{GIT_SHORT_COMMIT}}"]

[[image.a.layer]]
files = [{ src = "a.txt", dst = "/a.txt" }]

[image.b]
base = "scratch"
platform = "linux/amd64"
tags = ["example.com/acme/app:{{GIT_SHORT_COMMIT}}"]
"#,
    );
    let e = refused(&p, &["build", "-o", "out.tar"], &[]);
    assert!(e.contains("\"a\" and \"b\""), "{e}");
    assert!(e.contains("example.com/acme/app:unstamped"), "{e}");
}

#[test]
fn stamp_values_reach_env_exactly_as_they_reach_labels() {
    let p = Project::new();
    p.write("a.txt", "a\n");
    p.write(
        "gantry.toml",
        r#"[image.app]
base = "scratch"
platform = "linux/amd64"
env = { NOTE = "{{NOTE}}" }
labels = { note = "{{NOTE}}" }

[[image.app.layer]]
files = [{ src = "a.txt", dst = "/a.txt" }]
"#,
    );
    let note = "price $$5 ${HOME}";
    ok(
        &p,
        &[
            "build",
            "--stamp",
            "--stamp-var",
            &format!("NOTE={note}"),
            "-o",
            "out.tar",
        ],
        &[],
    );
    let info = inspect_json(&p, &["out.tar"]);
    assert_eq!(labels(&info)["note"], note);
    assert!(
        env_of(&info).contains(&format!("NOTE={note}")),
        "{:?}",
        env_of(&info)
    );
}

// ---------------------------------------------------------------------------
// Outside a checkout.

#[test]
fn stamping_outside_a_git_checkout_leaves_git_keys_empty() {
    let p = release_project();
    // Without the fixture's tags: with no commit they would expand to
    // `widget:`, which is no tag, and this test is about the values.
    let text = fixture_text("release.toml");
    let start = text.find("tags = [").unwrap();
    let end = start + text[start..].find('\n').unwrap();
    p.write(
        "gantry.toml",
        format!("{}{}", &text[..start], &text[end + 1..]),
    );
    let out = ok(&p, &["build", "--stamp", "-o", "out.tar"], &[]);
    assert!(!p.join(".git").exists());

    let info = inspect_json(&p, &["out.tar"]);
    assert_eq!(info["manifest_digest"], digest_of(&out, "app"));
    let l = labels(&info);
    for key in [
        "commit", "short", "branch", "tag", "describe", "dirty", "release",
    ] {
        assert_eq!(l[&format!("org.example.{key}")], "", "{key}: {l:?}");
    }
    assert!(env_of(&info).contains(&"APP_COMMIT=".to_string()));
    let a = annotations(&info);
    assert_eq!(a["org.opencontainers.image.created"], info["created"]);
    for key in [
        "org.opencontainers.image.revision",
        "org.opencontainers.image.version",
        "org.opencontainers.image.source",
    ] {
        assert!(!a.contains_key(key), "{key} without git: {a:?}");
    }
}
