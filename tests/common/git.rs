//! Git checkouts as fixtures, and gantry run beside them, both kept apart
//! from the user's and the machine's git configuration.

use std::path::Path;
use std::process::{Command, Output};

use super::{sh, Project};

/// The user's and the machine's git configuration (default branch, signing,
/// hooks) must not change what the fixtures contain, and a checkout around
/// the temporary directory must not be found.
pub fn isolate_git(c: &mut Command, dir: &Path) {
    c.env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_CEILING_DIRECTORIES", dir.parent().unwrap());
    for v in [
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_OBJECT_DIRECTORY",
        "GIT_COMMON_DIR",
    ] {
        c.env_remove(v);
    }
}

/// Runs git in `dir`, asserting success; returns stdout, trimmed.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let mut c = Command::new("git");
    c.arg("-C").arg(dir).args(args);
    isolate_git(&mut c, dir);
    sh(&mut c).trim().to_string()
}

/// Makes `dir` an empty repository on `branch` with a committer identity
/// and no signing.
pub fn init(dir: &Path, branch: &str) {
    git(dir, &["init", "-q", "-b", branch]);
    git(dir, &["config", "user.email", "release@example.com"]);
    git(dir, &["config", "user.name", "Release Bot"]);
    git(dir, &["config", "commit.gpgsign", "false"]);
    git(dir, &["config", "tag.gpgsign", "false"]);
}

/// Runs gantry in `p` with `env` and the same git isolation as the fixtures.
pub fn run(p: &Project, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = p.cmd();
    isolate_git(&mut c, p.path());
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run gantry")
}

/// Like [`run`], asserting success; returns stdout.
pub fn ok(p: &Project, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = run(p, args, env);
    assert!(
        out.status.success(),
        "gantry {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
