//! Shared helpers for the integration tests: a scratch project with its own
//! store, the real `gantry` binary, and peer-tool detection that skips
//! locally but fails in CI.
#![allow(dead_code)]

pub mod digest;
pub mod docker;
pub mod docker_registry;
pub mod fake_registry;
pub mod fixture;
pub mod git;
pub mod host;
pub mod http;
pub mod inspect;
pub mod markdown;
pub mod oci;
pub mod proxy;
pub mod push;
pub mod registry_bases;
pub mod run;
pub mod tarball;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// True when running under CI, where a missing peer is a failure.
pub fn in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Whether `tool` can be run. When it cannot: in CI this panics (so CI proves
/// everything); elsewhere it prints why the test is skipped and returns false.
pub fn require(tool: &str) -> bool {
    let found = Command::new("sh")
        .arg("-c")
        .arg(format!("command -v {tool}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    skip_unless(found, &format!("{tool} is not installed"))
}

/// Like [`require`] for an arbitrary condition.
pub fn skip_unless(ok: bool, reason: &str) -> bool {
    if ok {
        return true;
    }
    if in_ci() {
        panic!("required peer missing in CI: {reason}");
    }
    eprintln!("skipping: {reason}");
    false
}

/// Whether a Docker Engine answers.
pub fn require_docker() -> bool {
    let ok = Command::new("docker")
        .args(["info", "--format", "{{.ServerVersion}}"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    skip_unless(ok, "no Docker Engine answers `docker info`")
}

/// A static busybox to put in test images.
pub fn busybox() -> Option<PathBuf> {
    let p = PathBuf::from("/bin/busybox");
    let ok = p.is_file()
        && Command::new("file")
            .arg(&p)
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).contains("statically linked"))
            .unwrap_or(true);
    if skip_unless(
        ok,
        "static busybox (Debian busybox-static) is not at /bin/busybox",
    ) {
        Some(p)
    } else {
        None
    }
}

pub fn gantry_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_gantry"))
}

/// A scratch project directory with its own store.
pub struct Project {
    pub dir: tempfile::TempDir,
    pub store: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        Project {
            dir: tempfile::tempdir().expect("temp dir"),
            store: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn join(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// Writes a file, creating parent directories.
    pub fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let p = self.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, content).unwrap();
        p
    }

    /// A `gantry` command run in the project directory with the project's
    /// store and a clean SOURCE_DATE_EPOCH.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(gantry_bin());
        c.current_dir(self.path())
            .env("GANTRY_STORE", self.store.path())
            .env_remove("SOURCE_DATE_EPOCH")
            .arg("--progress=plain");
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd().args(args).output().expect("run gantry")
    }

    /// Runs gantry, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "gantry {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs gantry, asserting failure; returns stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "gantry {args:?} unexpectedly succeeded:\n{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8(out.stderr).unwrap()
    }
}

/// The digest printed for `image` by `gantry build` (`NAME sha256:...` lines).
pub fn digest_of(stdout: &str, image: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{image} ")))
        .unwrap_or_else(|| panic!("no digest line for {image} in {stdout:?}"))
        .trim()
        .to_string()
}

/// Runs an external command, asserting success; returns stdout.
pub fn sh(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Lists every file under `dir`, relative, sorted (to assert nothing was left behind).
pub fn tree(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = walkdir::WalkDir::new(dir)
        .min_depth(1)
        .into_iter()
        .map(|e| {
            e.unwrap()
                .path()
                .strip_prefix(dir)
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    v.sort();
    v
}
