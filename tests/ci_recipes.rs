//! The CI recipes of docs/ci.md, run: the shell steps of the GitLab CI and
//! GitHub Actions files, taken from the document as written, against the
//! reference registry with TLS and basic auth (standing for the CI's
//! registry) and a second one holding the base image. Only what names the
//! outside world is replaced: the registries' hosts, the base's host, and
//! `cargo install gantry`, which installs the binary under test.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::docker_registry::{self, DockerRegistry, Options};
use common::git::{git, init, isolate_git};
use common::markdown::fenced_blocks;
use common::{require, sh, Project};

const DOC: &str = "docs/ci.md";
/// The base the document's build file names, and where the test serves it.
const DOC_BASE: &str = "gcr.io/distroless/cc-debian12:nonroot";
const BASE_PATH: &str = "distroless/cc-debian12:nonroot";
const USER: &str = "ci-pusher";
const PASSWORD: &str = "ci-Pa55-word-9x";

// ---------------------------------------------------------------------------
// The YAML the recipes use: block mappings, block sequences, `|` block
// scalars and plain or quoted scalars. Anything else is refused, so a recipe
// that grows past this parser fails here rather than being run wrongly.

#[derive(Debug, Clone)]
enum Yaml {
    Map(Vec<(String, Yaml)>),
    List(Vec<Yaml>),
    Str(String),
}

impl Yaml {
    fn get(&self, key: &str) -> Option<&Yaml> {
        match self {
            Yaml::Map(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self) -> &str {
        match self {
            Yaml::Str(s) => s,
            other => panic!("expected a string, found {other:?}"),
        }
    }

    fn list(&self) -> &[Yaml] {
        match self {
            Yaml::List(l) => l,
            other => panic!("expected a list, found {other:?}"),
        }
    }

    fn map(&self) -> &[(String, Yaml)] {
        match self {
            Yaml::Map(m) => m,
            other => panic!("expected a mapping, found {other:?}"),
        }
    }

    fn strings(&self) -> Vec<String> {
        self.list().iter().map(|i| i.str().to_string()).collect()
    }
}

struct Lines {
    lines: Vec<(usize, String)>,
    at: usize,
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

fn parse_yaml(text: &str) -> Yaml {
    assert!(!text.contains('\t'), "tabs in YAML");
    let lines = text
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
        .map(|l| (indent(l), l.trim_start().to_string()))
        .collect();
    let mut p = Lines { lines, at: 0 };
    let doc = p.block(0);
    assert_eq!(
        p.at,
        p.lines.len(),
        "YAML left over at {:?}",
        p.lines.get(p.at)
    );
    doc
}

impl Lines {
    fn peek(&self) -> Option<&(usize, String)> {
        self.lines.get(self.at)
    }

    fn block(&mut self, ind: usize) -> Yaml {
        let (i, first) = self.peek().expect("a value").clone();
        assert_eq!(i, ind, "indentation of {first:?}");
        if first.starts_with("- ") || first == "-" {
            self.list(ind)
        } else {
            self.map(ind)
        }
    }

    fn list(&mut self, ind: usize) -> Yaml {
        let mut items = Vec::new();
        while let Some((i, line)) = self.peek().cloned() {
            if i != ind || !line.starts_with("- ") {
                assert!(i < ind, "stray line {line:?}");
                break;
            }
            let rest = line[2..].to_string();
            if is_map_entry(&rest) {
                // `- key: value` opens a mapping indented past the dash.
                self.lines[self.at] = (ind + 2, rest);
                items.push(self.map(ind + 2));
            } else {
                self.at += 1;
                items.push(self.scalar(&rest, ind));
            }
        }
        Yaml::List(items)
    }

    fn map(&mut self, ind: usize) -> Yaml {
        let mut entries = Vec::new();
        while let Some((i, line)) = self.peek().cloned() {
            if i < ind {
                break;
            }
            assert_eq!(i, ind, "indentation of {line:?}");
            assert!(is_map_entry(&line), "not a mapping entry: {line:?}");
            let (key, rest) = line.split_once(':').unwrap();
            let rest = rest.trim().to_string();
            self.at += 1;
            let next = self.peek().map(|(i, _)| *i).unwrap_or(0);
            let value = if rest.is_empty() && next > ind {
                self.block(next)
            } else if rest.is_empty() {
                // `pull_request:` and the like: an empty value.
                Yaml::Str(String::new())
            } else {
                self.scalar(&rest, ind)
            };
            entries.push((unquote(key), value));
        }
        Yaml::Map(entries)
    }

    /// A scalar, or a `|` block scalar: the lines indented past `ind`.
    fn scalar(&mut self, text: &str, ind: usize) -> Yaml {
        if text != "|" {
            return Yaml::Str(unquote(text));
        }
        let mut body = String::new();
        let mut block_indent = None;
        while let Some((i, line)) = self.peek().cloned() {
            if i <= ind {
                break;
            }
            let at = *block_indent.get_or_insert(i);
            assert!(i >= at, "block scalar dedented: {line:?}");
            body.push_str(&" ".repeat(i - at));
            body.push_str(&line);
            body.push('\n');
            self.at += 1;
        }
        Yaml::Str(body)
    }
}

fn is_map_entry(line: &str) -> bool {
    let key = match line.split_once(':') {
        Some((k, rest)) if rest.is_empty() || rest.starts_with(' ') => k,
        _ => return false,
    };
    !key.contains(' ') || key.starts_with('"')
}

fn unquote(s: &str) -> String {
    let s = s.trim();
    for q in ['"', '\''] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            assert!(
                !inner.contains(q) && !inner.contains('\\'),
                "escapes in {s}"
            );
            return inner.to_string();
        }
    }
    s.to_string()
}

// ---------------------------------------------------------------------------
// The document.

struct Recipes {
    build_file: String,
    gitlab: Yaml,
    github: Yaml,
}

fn recipes() -> Recipes {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC)).unwrap();
    let bodies = |lang| -> Vec<String> {
        fenced_blocks(&text, lang)
            .into_iter()
            .map(|(_, b)| b)
            .collect()
    };
    let toml = bodies("toml");
    let yaml = bodies("yaml");
    assert_eq!(
        (toml.len(), yaml.len()),
        (1, 2),
        "{DOC}: one build file, two recipes"
    );
    assert!(yaml[0].starts_with("# .gitlab-ci.yml"), "{}", yaml[0]);
    assert!(yaml[1].starts_with("# .github/workflows/"), "{}", yaml[1]);
    Recipes {
        build_file: toml[0].clone(),
        gitlab: parse_yaml(&yaml[0]),
        github: parse_yaml(&yaml[1]),
    }
}

// ---------------------------------------------------------------------------
// The world the recipes run in.

struct World {
    ci: DockerRegistry,
    _bases: DockerRegistry,
    /// A clone of this is each pipeline's checkout.
    origin: Project,
    tools: tempfile::TempDir,
    install_log: PathBuf,
}

/// `cargo`, except that `cargo install … gantry` installs the binary under
/// test into its `--root`: nothing is fetched.
const CARGO_SHIM: &str = r#"#!/bin/sh
if [ "$1" = install ]; then
    echo "$*" >> "$GANTRY_INSTALL_LOG"
    root=""
    while [ $# -gt 0 ]; do
        case "$1" in --root) root="$2"; shift ;; esac
        shift
    done
    [ -n "$root" ] || { echo "cargo install without --root" >&2; exit 1; }
    mkdir -p "$root/bin" && cp "$GANTRY_UNDER_TEST" "$root/bin/gantry"
    exit
fi
exec "$GANTRY_REAL_CARGO" "$@"
"#;

fn peers() -> bool {
    require(docker_registry::BIN)
        && require("openssl")
        && require("htpasswd")
        && require("git")
        && require("bash")
        && require("base64")
}

fn real_cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".into())
}

/// The paths rustup's proxies need once HOME is the pipeline's own.
fn toolchain_env(c: &mut Command) {
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME"));
    for (var, default) in [("RUSTUP_HOME", ".rustup"), ("CARGO_HOME", ".cargo")] {
        let value = std::env::var_os(var)
            .map(PathBuf::from)
            .unwrap_or_else(|| home.join(default));
        c.env(var, value);
    }
}

impl World {
    fn new(build_file: &str) -> World {
        let ci = DockerRegistry::start(Options {
            tls: true,
            htpasswd: Some((USER.into(), PASSWORD.into())),
        });
        let bases = DockerRegistry::start(Options::default());
        let base_ref = format!("{}/{BASE_PATH}", bases.host());

        // The base the recipes' image is built on, pushed where the test
        // can serve it.
        let base = Project::new();
        base.write("etc/os-release", "ID=test-base\n");
        base.write(
            "gantry.toml",
            format!(
                "[image.cc]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\ntags = [\"{base_ref}\"]\n\
                 [[image.cc.layer]]\nfiles = [{{ src = \"etc/\", dst = \"/etc/\" }}]\n"
            ),
        );
        base.ok(&["push"]);

        let origin = Project::new();
        let rewritten = build_file.replace(DOC_BASE, &base_ref);
        assert_eq!(
            build_file.matches(DOC_BASE).count(),
            1,
            "{DOC}'s build file is based on {DOC_BASE}"
        );
        origin.write("gantry.toml", rewritten);
        origin.write(
            "Cargo.toml",
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\nedition = \"2021\"\n",
        );
        origin.write(
            "src/main.rs",
            "fn main() {\n    println!(\"app\");\n}\n\n#[test]\nfn runs() {}\n",
        );
        origin.write(".gitignore", "/target\n/.cache\n");
        let mut lockfile = Command::new(real_cargo());
        lockfile
            .args(["generate-lockfile", "--offline"])
            .current_dir(origin.path());
        sh(&mut lockfile);
        // The lock the project commits, as `gantry lock` writes it.
        origin.ok(&["lock"]);
        init(origin.path(), "main");
        git(origin.path(), &["add", "-A"]);
        git(origin.path(), &["commit", "-q", "-m", "app"]);

        let tools = tempfile::tempdir().unwrap();
        let shim = tools.path().join("cargo");
        fs::write(&shim, CARGO_SHIM).unwrap();
        fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).unwrap();
        let install_log = tools.path().join("installs.log");
        World {
            ci,
            _bases: bases,
            origin,
            tools,
            install_log,
        }
    }

    /// A fresh checkout of the project and a home directory of its own.
    fn checkout(&self) -> (tempfile::TempDir, PathBuf) {
        let job = tempfile::tempdir().unwrap();
        let dir = job.path().join("checkout");
        let mut c = Command::new("git");
        c.args(["clone", "-q"]).arg(self.origin.path()).arg(&dir);
        isolate_git(&mut c, job.path());
        sh(&mut c);
        fs::create_dir(job.path().join("home")).unwrap();
        (job, dir)
    }

    /// A shell with nothing of the machine's gantry, docker, podman or git
    /// settings, the cargo shim first on PATH, and the CI's registry's CA
    /// trusted as a CI machine trusts a public one.
    fn shell(&self, job: &Path, dir: &Path, script: &str, env: &BTreeMap<String, String>) {
        let mut c = Command::new("bash");
        c.args(["--noprofile", "--norc", "-eo", "pipefail", "-c", script])
            .current_dir(dir);
        isolate_git(&mut c, job);
        toolchain_env(&mut c);
        for var in [
            "GANTRY_STORE",
            "XDG_CACHE_HOME",
            "XDG_RUNTIME_DIR",
            "DOCKER_CONFIG",
            "SOURCE_DATE_EPOCH",
            "CARGO_TARGET_DIR",
            "CARGO_BUILD_TARGET",
            "RUSTFLAGS",
            "CARGO_ENCODED_RUSTFLAGS",
        ] {
            c.env_remove(var);
        }
        let path = format!(
            "{}:{}",
            self.tools.path().display(),
            std::env::var("PATH").unwrap()
        );
        c.env("HOME", job.join("home"))
            .env("PATH", path)
            .env("REGISTRY_AUTH_FILE", job.join("no-auth.json"))
            .env("SSL_CERT_FILE", self.ci.ca())
            .env("CARGO_NET_OFFLINE", "true")
            .env("GANTRY_UNDER_TEST", common::gantry_bin())
            .env("GANTRY_REAL_CARGO", real_cargo())
            .env("GANTRY_INSTALL_LOG", &self.install_log)
            .envs(env);
        let out = c.output().expect("run bash");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "recipe step failed:\n{script}\nstdout:\n{stdout}\nstderr:\n{stderr}"
        );
        for text in [&stdout, &stderr] {
            assert!(
                !text.contains(PASSWORD),
                "the password is in the log:\n{text}"
            );
        }
    }

    fn installs(&self) -> Vec<String> {
        fs::read_to_string(&self.install_log)
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }
}

/// `export NAME="VALUE"` lines, in the order written.
fn exports(vars: &[(String, String)]) -> String {
    let mut s = String::new();
    for (k, v) in vars {
        assert!(!v.contains('"'), "{k}: a quote in {v}");
        s.push_str(&format!("export {k}=\"{v}\"\n"));
    }
    s
}

/// The references of `gantry push --metadata-file`.
fn pushed(path: &Path) -> Vec<String> {
    let meta = common::oci::read_json(path);
    meta["images"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|i| i["references"].as_array().unwrap())
        .map(|r| r.as_str().unwrap().to_string())
        .collect()
}

fn layer_statuses(report: &Path) -> Vec<String> {
    let r = common::oci::read_json(report);
    r["images"][0]["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["status"].as_str().unwrap().to_string())
        .collect()
}

// ---------------------------------------------------------------------------

/// The GitLab recipe as GitLab reads it: its jobs in the order of their
/// stages, each one shell of the variables, `before_script` and `script`.
struct GitLab {
    variables: Vec<(String, String)>,
    before: Vec<String>,
    cached: Vec<String>,
    jobs: Vec<(String, Vec<String>)>,
}

impl GitLab {
    fn read(doc: &Yaml) -> GitLab {
        let variables = doc
            .get("variables")
            .unwrap()
            .map()
            .iter()
            .map(|(k, v)| (k.clone(), v.str().to_string()))
            .collect();
        let default = doc.get("default").unwrap();
        let cache = default.get("cache").unwrap();
        let stages = doc.get("stages").unwrap().strings();
        let mut jobs = Vec::new();
        for stage in &stages {
            for (name, job) in doc.map() {
                if job.get("stage").is_some_and(|s| s.str() == stage) {
                    assert!(job.get("services").is_none(), "{name}: no daemon service");
                    assert!(job.get("image").is_none(), "{name}: the default image");
                    jobs.push((name.clone(), job.get("script").unwrap().strings()));
                }
            }
        }
        assert_eq!(jobs.len(), 3, "a job per stage: {stages:?}");
        GitLab {
            variables,
            before: default.get("before_script").unwrap().strings(),
            cached: cache.get("paths").unwrap().strings(),
            jobs,
        }
    }

    fn script(&self, job: &str) -> String {
        let (_, lines) = self.jobs.iter().find(|(n, _)| n == job).unwrap();
        let mut script = exports(&self.variables);
        for line in self.before.iter().chain(lines) {
            assert!(!line.contains("${{"), "{job}: {line}");
            script.push_str(line);
            script.push('\n');
        }
        script
    }

    /// What GitLab gives a job of project `project` on the default branch.
    fn env(world: &World, dir: &Path, project: &str) -> BTreeMap<String, String> {
        let ci = world.ci.host();
        [
            ("CI_PROJECT_DIR", dir.display().to_string()),
            ("CI_REGISTRY", ci.clone()),
            ("CI_REGISTRY_IMAGE", format!("{ci}/{project}")),
            ("CI_REGISTRY_USER", USER.to_string()),
            ("CI_REGISTRY_PASSWORD", PASSWORD.to_string()),
            ("CI_COMMIT_BRANCH", "main".to_string()),
            ("CI_DEFAULT_BRANCH", "main".to_string()),
            ("CI_COMMIT_REF_SLUG", "main".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }
}

/// One `run:` step of the GitHub recipe, with the environment the runner
/// would give it.
struct Step {
    name: String,
    run: String,
    env: BTreeMap<String, String>,
}

/// The workflow's `run:` steps, with the registry it names replaced by the
/// test's and the expressions of step `env:` by their stand-ins.
fn github_steps(doc: &Yaml, registry: &str) -> Vec<Step> {
    let mut workflow_env = BTreeMap::new();
    for (k, v) in doc.get("env").unwrap().map() {
        let v = v.str().to_string();
        if k == "REGISTRY" {
            assert_eq!(v, "ghcr.io");
            workflow_env.insert(k.clone(), registry.to_string());
        } else {
            workflow_env.insert(k.clone(), v);
        }
    }
    let stand_in = |e: &str| match e {
        "${{ github.actor }}" => USER,
        "${{ secrets.GITHUB_TOKEN }}" => PASSWORD,
        other => panic!("no stand-in for {other}"),
    };
    let jobs = doc.get("jobs").unwrap().map();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0].1;
    assert!(job.get("container").is_none() && job.get("services").is_none());
    let mut steps = Vec::new();
    for step in job.get("steps").unwrap().list() {
        if let Some(uses) = step.get("uses") {
            let action = uses.str();
            let cache = action.starts_with("actions/cache@");
            assert!(cache || action.starts_with("actions/checkout@"), "{action}");
            if cache {
                let paths = step.get("with").unwrap().get("path").unwrap().str();
                assert!(paths.lines().any(|p| p == "~/.cache/gantry"), "{paths}");
            }
            continue;
        }
        let name = step.get("name").unwrap().str().to_string();
        let run = step.get("run").unwrap().str().to_string();
        assert!(!run.contains("${{"), "{name}: expressions belong in env");
        if let Some(cond) = step.get("if") {
            assert_eq!(cond.str(), "github.event_name == 'push'");
        }
        let mut env = workflow_env.clone();
        for (k, v) in step.get("env").map(Yaml::map).unwrap_or_default() {
            env.insert(k.clone(), stand_in(v.str()).to_string());
        }
        steps.push(Step { name, run, env });
    }
    steps
}

fn short_commit(dir: &Path) -> String {
    git(dir, &["rev-parse", "HEAD"])[..12].to_string()
}

#[test]
fn the_gitlab_recipe_builds_tests_stamps_and_pushes_with_its_store_cached() {
    if !peers() {
        return;
    }
    let recipes = recipes();
    let world = World::new(&recipes.build_file);
    let gitlab = GitLab::read(&recipes.gitlab);

    let (job_dir, dir) = world.checkout();
    let env = GitLab::env(&world, &dir, "acme/app");
    for (name, _) in &gitlab.jobs {
        world.shell(job_dir.path(), &dir, &gitlab.script(name), &env);
    }

    let installs = world.installs();
    assert_eq!(installs.len(), gitlab.jobs.len(), "{installs:?}");
    assert!(installs
        .iter()
        .all(|i| i.contains("--locked") && i.contains("gantry --version")));
    let target = format!(
        "{}/acme/app/app:{}@sha256:",
        world.ci.host(),
        short_commit(&dir)
    );
    let refs = pushed(&dir.join("push.json"));
    assert!(
        refs.len() == 1 && refs[0].starts_with(&target),
        "{refs:?}, want {target}…"
    );
    assert_eq!(layer_statuses(&dir.join("build.json")), ["rebuilt"]);

    // The next pipeline: a new checkout with the cached paths restored,
    // whose build finds the layer in the store.
    let store = dir.join(".cache/gantry");
    assert!(fs::read_dir(&store).unwrap().next().is_some());
    let (next_job, next) = world.checkout();
    for path in &gitlab.cached {
        let from = dir.join(path);
        assert!(from.exists(), "{path} is cached");
        sh(Command::new("cp").arg("-a").arg(&from).arg(next.join(path)));
    }
    let env = GitLab::env(&world, &next, "acme/app");
    world.shell(next_job.path(), &next, &gitlab.script("image"), &env);
    assert_eq!(layer_statuses(&next.join("build.json")), ["reused"]);
}

#[test]
fn the_github_recipe_builds_tests_stamps_and_pushes_without_a_daemon() {
    if !peers() {
        return;
    }
    let recipes = recipes();
    let world = World::new(&recipes.build_file);
    let steps = github_steps(&recipes.github, &world.ci.host());
    let names: Vec<&str> = steps.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["Install gantry", "Test", "Build", "Push", "Bound the store"]
    );

    let (job_dir, dir) = world.checkout();
    let github_path = job_dir.path().join("github_path");
    fs::write(&github_path, "").unwrap();
    for step in &steps {
        let mut env = step.env.clone();
        env.insert("GITHUB_PATH".into(), github_path.display().to_string());
        env.insert("GITHUB_REPOSITORY".into(), "Acme/Web".into());
        env.insert("GITHUB_EVENT_NAME".into(), "push".into());
        // Each step is a shell of its own; what earlier steps added to
        // GITHUB_PATH comes first on PATH, as on a runner.
        let mut script = String::new();
        for p in fs::read_to_string(&github_path).unwrap().lines() {
            script.push_str(&format!("export PATH=\"{p}:$PATH\"\n"));
        }
        script.push_str(&step.run);
        world.shell(job_dir.path(), &dir, &script, &env);
    }

    assert_eq!(world.installs().len(), 1);
    let target = format!(
        "{}/acme/web/app:{}@sha256:",
        world.ci.host(),
        short_commit(&dir)
    );
    let refs = pushed(&dir.join("push.json"));
    assert!(
        refs.len() == 1 && refs[0].starts_with(&target),
        "{refs:?}, want {target}…"
    );
    let store = job_dir.path().join("home/.cache/gantry");
    assert!(
        fs::read_dir(&store).unwrap().next().is_some(),
        "the store is where the cache is"
    );
}

#[test]
fn the_recipe_yaml_parser_reads_what_the_recipes_use() {
    let doc = parse_yaml(
        "# c\ntop:\n  k: \"v $X\"\n  list:\n    - a b\n    - |\n      one\n        two\n\
         steps:\n  - name: s\n    run: |\n      x\n  - uses: u@v4\n    with:\n      path: p\n",
    );
    assert_eq!(doc.get("top").unwrap().get("k").unwrap().str(), "v $X");
    assert_eq!(
        doc.get("top").unwrap().get("list").unwrap().strings(),
        ["a b", "one\n  two\n"]
    );
    let steps = doc.get("steps").unwrap().list();
    assert_eq!(steps[0].get("run").unwrap().str(), "x\n");
    assert_eq!(
        steps[1].get("with").unwrap().get("path").unwrap().str(),
        "p"
    );
}
