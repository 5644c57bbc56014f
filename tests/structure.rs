//! `gantry test` against the real container-structure-test: every config
//! of testdata/structure/configs is run by both on the same images, and
//! each test must get the same verdict. Its docker driver reads the image
//! through the Docker Engine, so it sees what a container sees; its tar
//! driver unpacks the image on the host and is compared too, with the
//! differences docs/test.md describes pinned as differences.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::docker::{docker_load, DockerImages};
use common::fixture::testdata;
use common::{busybox, require, require_docker, Project};
use serde_json::Value;

const CST: &str = "container-structure-test";

/// The fixture in a scratch project, with busybox, its images tagged
/// uniquely (they may be loaded into a shared engine).
struct Fixture {
    project: Project,
    tag: String,
}

impl Fixture {
    fn new() -> Option<Fixture> {
        let bb = busybox()?;
        let project = Project::new();
        copy_dir(&testdata("structure"), project.path());
        fs::create_dir_all(project.join("bin")).unwrap();
        fs::copy(bb, project.join("bin/busybox")).unwrap();
        let tag = format!(
            "{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos()
        );
        let file = fs::read_to_string(project.join("gantry.toml")).unwrap();
        let mut tagged = String::new();
        for line in file.lines() {
            tagged.push_str(line);
            tagged.push('\n');
            if let Some(name) = line
                .strip_prefix("[image.")
                .and_then(|l| l.strip_suffix(']'))
                .filter(|n| !n.contains('.'))
            {
                tagged.push_str(&format!(
                    "tags = [\"localhost/gantry-structure/{name}:{tag}\"]\n"
                ));
            }
        }
        fs::write(project.join("gantry.toml"), tagged).unwrap();
        let f = Fixture { project, tag };
        for image in ["subject", "undocumented"] {
            let out = f.tarball(image);
            f.project
                .ok(&["build", "-q", "-o", &out.display().to_string(), image]);
        }
        Some(f)
    }

    fn tarball(&self, image: &str) -> PathBuf {
        self.project.join(&format!("{image}.tar"))
    }

    fn reference(&self, image: &str) -> String {
        format!("localhost/gantry-structure/{image}:{}", self.tag)
    }

    fn configs(&self) -> Vec<(String, &'static str)> {
        let mut out: Vec<(String, &str)> = fs::read_dir(self.project.join("configs"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".yaml"))
            .map(|n| {
                let image = if n.starts_with("undocumented-") {
                    "undocumented"
                } else {
                    "subject"
                };
                (format!("configs/{n}"), image)
            })
            .collect();
        out.sort();
        out
    }

    fn gantry_test(&self, args: &[&str]) -> Output {
        self.project.run(&[&["test"], args].concat())
    }

    /// `gantry test --json` verdicts: title → passed.
    fn gantry_verdicts(&self, config: &str, image: &str) -> Vec<(String, bool)> {
        let tarball = self.tarball(image).display().to_string();
        let out = self.gantry_test(&["--image", &tarball, "--config", config, "--json"]);
        let code = out.status.code();
        assert!(
            code == Some(0) || code == Some(1),
            "gantry test {config}: {code:?}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).unwrap();
        let results = v["configs"][0]["results"].as_array().unwrap();
        let verdicts: Vec<(String, bool)> = results
            .iter()
            .map(|r| {
                let label = match r["kind"].as_str().unwrap() {
                    "command" => "Command Test",
                    "fileContent" => "File Content Test",
                    "fileExistence" => "File Existence Test",
                    "license" => "License Test",
                    _ => "Metadata Test",
                };
                let name = r["name"].as_str().unwrap();
                let title = if name.is_empty() {
                    label.to_string()
                } else {
                    format!("{label}: {name}")
                };
                (title, r["outcome"]["status"] == "pass")
            })
            .collect();
        let all_pass = verdicts.iter().all(|(_, p)| *p);
        assert_eq!(code == Some(0), all_pass, "exit status of {config}");
        verdicts
    }
}

fn copy_dir(from: &Path, to: &Path) {
    for e in walkdir::WalkDir::new(from) {
        let e = e.unwrap();
        let dest = to.join(e.path().strip_prefix(from).unwrap());
        if e.file_type().is_dir() {
            fs::create_dir_all(&dest).unwrap();
        } else {
            fs::copy(e.path(), &dest).unwrap();
        }
    }
}

/// container-structure-test's verdicts for `config`: title → passed.
fn cst_verdicts(args: &[&str], config: &str, cwd: &Path) -> Vec<(String, bool)> {
    let out = Command::new(CST)
        .args(["test", "--output", "json", "--config", config])
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    let v: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{CST} {args:?} {config}: {e}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v["Results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["Name"].as_str().unwrap().to_string(), r["Pass"] == true))
        .collect()
}

#[test]
fn corpus_has_every_kind_passing_and_failing() {
    let dir = testdata("structure/configs");
    let names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(names.len() >= 30, "{} configs", names.len());
    for kind in ["metadata", "exist", "content", "license", "command"] {
        for verdict in ["pass", "fail"] {
            assert!(
                names
                    .iter()
                    .any(|n| n.contains(kind) && n.ends_with(&format!("-{verdict}.yaml"))),
                "no {kind} config that should {verdict}"
            );
        }
    }
}

#[test]
fn corpus_verdicts_match_container_structure_test_docker_driver() {
    if !require(CST) || !require_docker() {
        return;
    }
    let Some(f) = Fixture::new() else { return };
    let mut images = DockerImages::new();
    for image in ["subject", "undocumented"] {
        docker_load(&mut images, &f.tarball(image), &f.reference(image));
    }
    let mut compared = 0;
    for (config, image) in f.configs() {
        let ours = f.gantry_verdicts(&config, image);
        let theirs = cst_verdicts(&["--image", &f.reference(image)], &config, f.project.path());
        assert_eq!(ours, theirs, "{config}");
        let want_pass = config.ends_with("-pass.yaml");
        assert_eq!(
            ours.iter().all(|(_, p)| *p),
            want_pass,
            "{config} is named for its verdict"
        );
        compared += ours.len();
    }
    eprintln!("{compared} tests of {} configs agree", f.configs().len());
}

/// Where the tar driver, which unpacks the image on the host, legitimately
/// differs: it cannot read owners (a uid or gid check always fails), and
/// an absolute symlink is followed on the host rather than in the image.
const TAR_DRIVER_DIFFERS: &[&str] = &[
    "configs/content-symlink-pass.yaml",
    "configs/exist-dirs-pass.yaml",
    "configs/exist-pass.yaml",
];

#[test]
fn corpus_verdicts_match_container_structure_test_tar_driver_but_for_owners_and_links() {
    if !require(CST) {
        return;
    }
    let Some(f) = Fixture::new() else { return };
    let mut differ = Vec::new();
    for (config, image) in f.configs() {
        if config.contains("command") {
            continue;
        }
        let ours = f.gantry_verdicts(&config, image);
        let tarball = f.tarball(image).display().to_string();
        let theirs = cst_verdicts(
            &["--driver", "tar", "--image", &tarball],
            &config,
            f.project.path(),
        );
        if ours != theirs {
            differ.push(config);
        }
    }
    assert_eq!(differ, TAR_DRIVER_DIFFERS);
}

#[test]
fn build_file_tests_run_after_a_build() {
    let Some(f) = Fixture::new() else { return };
    let out = f.gantry_test(&["subject"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Passes:      4\nFailures:    0\n"), "{text}");
    assert!(text.ends_with("PASS\n"), "{text}");

    let junit = f.project.join("report.xml");
    let out = f.gantry_test(&[
        "subject",
        "--config",
        "configs/exist-permissions-fail.yaml",
        "--junit",
        &junit.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(
            "Error: /usr/local/bin/tool has incorrect permissions. Expected: -rwxr-xr-x, Actual: -rwxr-x---"
        ),
        "{text}"
    );
    let xml = fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testsuites tests=\"5\" failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"/usr/local/bin/tool has incorrect permissions."),
        "{xml}"
    );
}

#[test]
fn command_tests_without_an_engine_are_not_run_and_fail_the_run() {
    let Some(f) = Fixture::new() else { return };
    let empty = tempfile::tempdir().unwrap();
    let tarball = f.tarball("subject").display().to_string();
    let run = |extra: &[&str]| {
        let mut c = f.project.cmd();
        c.env("PATH", empty.path())
            .args([
                "test",
                "--image",
                &tarball,
                "-c",
                "configs/command-pass.yaml",
            ])
            .args(extra);
        c.output().unwrap()
    };
    let out = run(&[]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("--- NOT RUN: no container engine to run them: docker is not installed"),
        "{text}"
    );
    assert!(text.contains("Not run:     5"), "{text}");
    let out = run(&["--skip-commands"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("No tests run!"), "{text}");
    assert_eq!(out.status.code(), Some(0), "{text}");
}

#[test]
fn hostile_configs_are_refused_with_file_and_line() {
    let Some(f) = Fixture::new() else { return };
    let tarball = f.tarball("subject").display().to_string();
    let cases: BTreeMap<&str, (&str, &str)> = BTreeMap::from([
        (
            "unknown-key.yaml",
            (
                "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: a\n    path: /a\n    owner: root\n",
                "unknown-key.yaml:5:5: fileExistenceTests[0]: unknown field `owner`",
            ),
        ),
        (
            "bad-regex.yaml",
            (
                "schemaVersion: 2.0.0\nfileContentTests:\n  - name: a\n    path: /a\n    expectedContents: ['(unclosed']\n",
                "bad-regex.yaml:5:",
            ),
        ),
        (
            "wrong-type.yaml",
            (
                "schemaVersion: 2.0.0\nmetadataTest:\n  entrypoint: /bin/sh\n",
                "wrong-type.yaml:3:15: metadataTest.entrypoint: a value of the wrong type",
            ),
        ),
        (
            "bad-executable.yaml",
            (
                "schemaVersion: 2.0.0\nfileExistenceTests:\n  - name: a\n    path: /a\n    isExecutableBy: everyone\n",
                "bad-executable.yaml:5:",
            ),
        ),
        (
            "old-schema.yaml",
            ("schemaVersion: 1.0.0\n", "schemaVersion \"1.0.0\" is not supported"),
        ),
        ("not-yaml.yaml", ("schemaVersion: [\n", "not-yaml.yaml:")),
    ]);
    for (name, (text, want)) in cases {
        f.project.write(name, text);
        let out = f.gantry_test(&["--image", &tarball, "--config", name]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{name}: {err}");
        assert!(err.contains(want), "{name}: {err}");
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

#[test]
fn build_file_tests_must_be_relative_paths() {
    let p = Project::new();
    p.write(
        "gantry.toml",
        "[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\ntests = [\"/etc/t.yaml\"]\n",
    );
    let out = p.run(&["test"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("gantry.toml:4:"), "{err}");
    assert!(err.contains("relative to the build file"), "{err}");
}

#[test]
fn an_image_without_tests_is_not_a_silent_pass() {
    let p = Project::new();
    p.write(
        "gantry.toml",
        "[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n",
    );
    let out = p.run(&["test"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("no image of gantry.toml has `tests`"), "{err}");
}
