//! Running gantry in ways `Project::cmd` does not: with another store,
//! under a umask, as another user.

use std::path::Path;
use std::process::{Command, Output};

use super::{gantry_bin, Project};

/// Asserts that `out` is a success; returns its stdout.
pub fn assert_ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Runs gantry in `p` with another store.
pub fn run_with_store(p: &Project, store: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut c = p.cmd();
    c.env("GANTRY_STORE", store).args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().expect("run gantry")
}

/// `gantry` started through `sh -c` so that `umask` applies to it; the
/// caller adds `--progress` and the arguments. Unlike `Project::cmd` it
/// sets no progress mode, because the flag may not repeat.
pub fn gantry_with_umask(umask: &str, cwd: &Path, store: &Path) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
        .arg(gantry_bin())
        .current_dir(cwd)
        .env("GANTRY_STORE", store)
        .env_remove("SOURCE_DATE_EPOCH");
    c
}

/// `gantry` run as `uid:gid` with no supplementary groups (needs root and
/// setpriv); the caller adds `--progress` and the arguments.
pub fn gantry_as_user(uid: u32, gid: u32, cwd: &Path, store: &Path) -> Command {
    let mut c = Command::new("setpriv");
    c.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"))
        .args(["--clear-groups", "--"])
        .arg(gantry_bin())
        .current_dir(cwd)
        .env("GANTRY_STORE", store)
        .env_remove("SOURCE_DATE_EPOCH");
    c
}
