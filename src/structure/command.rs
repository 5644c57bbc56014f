//! Command tests, run in containers of the image by a container engine's
//! command line (docker or podman), as container-structure-test's docker
//! driver runs them: the entrypoint cleared, the image's environment
//! substituted into the command, each setup command committed as a new
//! image the test then runs on.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

use super::config::{CommandTest, ContainerRunOptions, EnvVar};
use super::report::{Outcome, TestKind, TestResult};
use super::run::expand;
use crate::error::{Error, Result};

/// The engines command tests can run on, in the order they are looked for.
pub const RUNTIMES: &[&str] = &["docker", "podman"];

/// A container engine's command line, checked to answer.
#[derive(Debug, Clone)]
pub struct Runtime {
    program: String,
}

impl Runtime {
    /// The engine named, or the first of [`RUNTIMES`] that answers; the
    /// error says why none can be used.
    pub fn find(named: Option<&str>) -> std::result::Result<Runtime, String> {
        let candidates: Vec<&str> = match named {
            Some(n) => vec![n],
            None => RUNTIMES.to_vec(),
        };
        let mut why = Vec::new();
        for c in candidates {
            let out = Command::new(c)
                .args(["version", "--format", "{{.Server.Version}}"])
                .stdin(Stdio::null())
                .output();
            match out {
                Ok(o) if o.status.success() => {
                    return Ok(Runtime {
                        program: c.to_string(),
                    })
                }
                Ok(_) => why.push(format!("{c} is installed but its engine does not answer")),
                Err(_) => why.push(format!("{c} is not installed")),
            }
        }
        Err(why.join("; "))
    }

    /// The program run (`docker` or `podman`).
    pub fn program(&self) -> &str {
        &self.program
    }

    fn command(&self) -> Command {
        let mut c = Command::new(&self.program);
        c.stdin(Stdio::null());
        c
    }

    /// Loads the docker tarball `write` produces into the engine.
    pub fn load(&self, write: impl FnOnce(&mut dyn Write) -> Result<()>) -> Result<()> {
        let mut child = Command::new(&self.program)
            .args(["load", "--quiet"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| Error::io(&self.program, e))?;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let written = write(&mut stdin);
        drop(stdin);
        let out = child
            .wait_with_output()
            .map_err(|e| Error::io(&self.program, e))?;
        written?;
        if !out.status.success() {
            return Err(Error::Usage(format!(
                "{} load failed: {}",
                self.program,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// Removes an image (or tag) loaded or committed for the tests.
    pub fn remove_image(&self, reference: &str) {
        let _ = self.command().args(["rmi", "--force", reference]).output();
    }

    fn run_args(&self, image: &str, env: &[String], opts: &ContainerRunOptions) -> Vec<String> {
        let mut a: Vec<String> = vec!["run".into(), "--entrypoint".into(), String::new()];
        for e in env {
            a.extend(["--env".into(), e.clone()]);
        }
        if !opts.user.is_empty() {
            a.extend(["--user".into(), opts.user.clone()]);
        }
        if opts.privileged {
            a.push("--privileged".into());
        }
        if opts.allocate_tty {
            a.push("--tty".into());
        }
        for e in &opts.env_vars {
            if let Ok(v) = std::env::var(e) {
                a.extend(["--env".into(), format!("{e}={v}")]);
            }
        }
        if !opts.env_file.is_empty() {
            a.extend(["--env-file".into(), opts.env_file.clone()]);
        }
        for c in &opts.capabilities {
            a.extend(["--cap-add".into(), c.clone()]);
        }
        for m in &opts.bind_mounts {
            a.extend(["--volume".into(), m.clone()]);
        }
        a.push(image.to_string());
        a
    }

    /// Runs one command test on `image` (a reference the engine knows);
    /// `image_env` is the image's environment, for `$VAR` in the command.
    pub fn run_test(
        &self,
        t: &CommandTest,
        image: &str,
        image_env: &[(String, String)],
        global_env: &[EnvVar],
        opts: &ContainerRunOptions,
    ) -> TestResult {
        let started = Instant::now();
        let mut r = TestResult::new(TestKind::Command, &t.name);
        let env: Vec<String> = global_env
            .iter()
            .chain(&t.env_vars)
            .map(|e| format!("{}={}", e.key, e.value))
            .collect();
        let mut current = image.to_string();
        let mut committed = Vec::new();
        for (i, cmd) in t.setup.iter().enumerate() {
            match self.commit_after(&current, &env, opts, cmd) {
                Ok(id) => {
                    committed.push(id.clone());
                    current = id;
                }
                Err(e) => {
                    r.fail(format!("error in setup command {}: {e}", i + 1));
                    self.clean(&committed);
                    r.duration = started.elapsed();
                    return r;
                }
            }
        }
        let mut full = vec![t.command.clone()];
        full.extend(t.args.iter().cloned());
        let full: Vec<String> = full.iter().map(|a| expand(a, image_env)).collect();
        let mut args = self.run_args(&current, &env, opts);
        args.insert(1, "--rm".into());
        args.extend(full);
        match self.command().args(&args).output() {
            Err(e) => r.fail(format!("cannot run {}: {e}", self.program)),
            Ok(out) => {
                let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
                let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
                check_output(t, &mut r, &stdout, &stderr, out.status.code().unwrap_or(-1));
                r.stdout = Some(stdout);
                r.stderr = Some(stderr);
            }
        }
        for cmd in &t.teardown {
            let mut args = self.run_args(&current, &env, opts);
            args.insert(1, "--rm".into());
            args.extend(cmd.iter().cloned());
            let _ = self.command().args(&args).output();
        }
        self.clean(&committed);
        r.duration = started.elapsed();
        r
    }

    fn clean(&self, committed: &[String]) {
        for id in committed.iter().rev() {
            self.remove_image(id);
        }
    }

    /// Runs `cmd` in a container of `image` and commits it; the new
    /// image's ID.
    fn commit_after(
        &self,
        image: &str,
        env: &[String],
        opts: &ContainerRunOptions,
        cmd: &[String],
    ) -> std::result::Result<String, String> {
        let name = format!(
            "gantry-test-setup-{}-{}",
            std::process::id(),
            fastrand::u64(..)
        );
        let mut args = self.run_args(image, env, opts);
        args.insert(1, format!("--name={name}"));
        args.extend(cmd.iter().cloned());
        let out = self
            .command()
            .args(&args)
            .output()
            .map_err(|e| e.to_string())?;
        let result = if out.status.success() {
            let c = self
                .command()
                .args(["commit", &name])
                .output()
                .map_err(|e| e.to_string())?;
            if c.status.success() {
                Ok(String::from_utf8_lossy(&c.stdout).trim().to_string())
            } else {
                Err(String::from_utf8_lossy(&c.stderr).trim().to_string())
            }
        } else {
            Err(format!(
                "exited with {}: {}",
                out.status.code().unwrap_or(-1),
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        };
        let _ = self.command().args(["rm", "--force", &name]).output();
        result
    }
}

/// The result of a command test that could not run.
pub fn not_run(t: &CommandTest, reason: &str) -> TestResult {
    let mut r = TestResult::new(TestKind::Command, &t.name);
    r.outcome = Outcome::NotRun(reason.to_string());
    r
}

/// Checks a command's output and status against the test, with
/// container-structure-test's wording.
pub fn check_output(t: &CommandTest, r: &mut TestResult, stdout: &str, stderr: &str, code: i32) {
    let checks = [
        (&t.expected_error, stderr, true, "Expected", "error"),
        (&t.excluded_error, stderr, false, "Excluded", "error"),
        (&t.expected_output, stdout, true, "Expected", "output"),
        (&t.excluded_output, stdout, false, "Excluded", "output"),
    ];
    for (patterns, text, wanted, word, stream) in checks {
        for p in patterns {
            if p.is_match(text) != wanted {
                let found = if wanted { "not found" } else { "found" };
                r.fail(format!(
                    "{word} string '{}' {found} in {stream} '{text}'",
                    p.as_str()
                ));
            }
        }
    }
    if t.exit_code != code {
        r.fail(format!(
            "Test '{}' exited with incorrect error code. Expected: {}, Actual: {code}",
            t.name, t.exit_code
        ));
    }
}
