//! The CI recipes of docs/ci.md, run: the shell steps of the GitLab CI and
//! GitHub Actions files, taken from the document as written, against the
//! reference registry with TLS and basic auth (standing for the CI's
//! registry) and a second one holding the base image. Only what names the
//! outside world is replaced: the registries' hosts, the base's host, and
//! `cargo install gantry`, which installs the binary under test.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::docker_registry::{self, DockerRegistry, Options};
use common::git::{git, init, isolate_git};
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

/// The fenced blocks of `lang` in the document, in order.
fn blocks(text: &str, lang: &str) -> Vec<String> {
    let fence = format!("```{lang}");
    let mut out = Vec::new();
    let mut open: Option<String> = None;
    for line in text.lines() {
        match &mut open {
            None if line == fence => open = Some(String::new()),
            Some(_) if line == "```" => out.extend(open.take()),
            Some(body) => {
                body.push_str(line);
                body.push('\n');
            }
            None => {}
        }
    }
    out
}

fn recipes() -> Recipes {
    let text = fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC)).unwrap();
    let toml = blocks(&text, "toml");
    let yaml = blocks(&text, "yaml");
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
    base_ref: String,
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
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&shim, fs::Permissions::from_mode(0o755)).unwrap();
        let install_log = tools.path().join("installs.log");
        World {
            ci,
            _bases: bases,
            origin,
            base_ref,
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

#[test]
fn the_gitlab_recipe_builds_tests_stamps_and_pushes_with_its_store_cached() {
    if !peers() {
        return;
    }
    let recipes = recipes();
    let world = World::new(&recipes.build_file);
    let gl = &recipes.gitlab;

    let variables: Vec<(String, String)> = gl
        .get("variables")
        .unwrap()
        .map()
        .iter()
        .map(|(k, v)| (k.clone(), v.str().to_string()))
        .collect();
    let default = gl.get("default").unwrap();
    let cached: Vec<String> = default
        .get("cache")
        .unwrap()
        .get("paths")
        .unwrap()
        .strings();
    let before = default.get("before_script").unwrap().strings();
    let stages = gl.get("stages").unwrap().strings();
    let jobs: Vec<(&String, &Yaml)> = gl
        .map()
        .iter()
        .filter(|(_, v)| v.get("script").is_some())
        .map(|(k, v)| (k, v))
        .collect();
    let mut ordered = Vec::new();
    for stage in &stages {
        ordered.extend(
            jobs.iter()
                .filter(|(_, j)| j.get("stage").unwrap().str() == stage),
        );
    }
    assert_eq!(ordered.len(), 3, "a job per stage: {stages:?}");
    for (_, job) in &ordered {
        assert!(job.get("services").is_none(), "no daemon service");
        assert!(
            job.get("image").is_none(),
            "every job runs in the default image"
        );
    }

    let (job_dir, dir) = world.checkout();
    let project = "acme/app";
    let short = git(&dir, &["rev-parse", "HEAD"])[..12].to_string();
    let env: BTreeMap<String, String> = [
        ("CI_PROJECT_DIR", dir.display().to_string()),
        ("CI_REGISTRY", world.ci.host()),
        (
            "CI_REGISTRY_IMAGE",
            format!("{}/{project}", world.ci.host()),
        ),
        ("CI_REGISTRY_USER", USER.to_string()),
        ("CI_REGISTRY_PASSWORD", PASSWORD.to_string()),
        ("CI_COMMIT_BRANCH", "main".to_string()),
        ("CI_DEFAULT_BRANCH", "main".to_string()),
        ("CI_COMMIT_REF_SLUG", "main".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();

    // Each job is one shell: the variables, before_script, then script.
    let run_job = |name: &str, job: &Yaml| {
        let mut script = exports(&variables);
        for line in before.iter().chain(&job.get("script").unwrap().strings()) {
            assert!(!line.contains("${{"), "{name}: {line}");
            script.push_str(line);
            script.push('\n');
        }
        world.shell(job_dir.path(), &dir, &script, &env);
    };
    for (name, job) in &ordered {
        run_job(name, job);
    }

    let installs = world.installs();
    assert_eq!(
        installs.len(),
        ordered.len(),
        "one install per job: {installs:?}"
    );
    assert!(installs
        .iter()
        .all(|i| i.contains("--locked") && i.contains("gantry --version")));

    let target = format!("{}/{project}/app:{short}@sha256:", world.ci.host());
    let refs = pushed(&dir.join("push.json"));
    assert!(
        refs.len() == 1 && refs[0].starts_with(&target),
        "{refs:?}, want {target}…"
    );

    // The store is where the cache keeps it, and the next pipeline's build
    // finds its layer there.
    let store = dir.join(".cache/gantry");
    assert!(
        cached.iter().any(|p| store.starts_with(dir.join(p))),
        "{cached:?}"
    );
    assert!(fs::read_dir(&store).unwrap().next().is_some());
    assert_eq!(layer_statuses(&dir.join("build.json")), ["rebuilt"]);
    let image = ordered.iter().find(|(n, _)| n.as_str() == "image").unwrap();
    run_job("image", image.1);
    assert_eq!(layer_statuses(&dir.join("build.json")), ["reused"]);
    assert!(world.base_ref.ends_with(BASE_PATH));
}

#[test]
fn the_github_recipe_builds_tests_stamps_and_pushes_without_a_daemon() {
    if !peers() {
        return;
    }
    let recipes = recipes();
    let world = World::new(&recipes.build_file);
    let gh = &recipes.github;

    // What the workflow names of the outside world, replaced.
    let mut workflow_env: Vec<(String, String)> = Vec::new();
    for (k, v) in gh.get("env").unwrap().map() {
        let v = v.str().to_string();
        let v = if k == "REGISTRY" {
            assert_eq!(v, "ghcr.io");
            world.ci.host()
        } else {
            v
        };
        workflow_env.push((k.clone(), v));
    }
    let expressions: BTreeMap<&str, &str> = [
        ("${{ github.actor }}", USER),
        ("${{ secrets.GITHUB_TOKEN }}", PASSWORD),
    ]
    .into_iter()
    .collect();

    let jobs = gh.get("jobs").unwrap().map();
    assert_eq!(jobs.len(), 1);
    let job = &jobs[0].1;
    assert!(job.get("container").is_none() && job.get("services").is_none());
    let steps = job.get("steps").unwrap().list();

    let (job_dir, dir) = world.checkout();
    let github_path = job_dir.path().join("github_path");
    fs::write(&github_path, "").unwrap();
    let repository = "Acme/Web";
    let short = git(&dir, &["rev-parse", "HEAD"])[..12].to_string();

    let mut ran = Vec::new();
    for step in steps {
        if let Some(uses) = step.get("uses") {
            let action = uses.str();
            assert!(
                action.starts_with("actions/checkout@") || action.starts_with("actions/cache@"),
                "{action}"
            );
            if action.starts_with("actions/cache@") {
                let paths = step.get("with").unwrap().get("path").unwrap().str();
                assert!(paths.lines().any(|p| p == "~/.cache/gantry"), "{paths}");
            }
            continue;
        }
        let name = step.get("name").map(|n| n.str().to_string());
        let run = step.get("run").expect("a step runs or uses").str();
        assert!(!run.contains("${{"), "{name:?}: expressions belong in env");
        if let Some(cond) = step.get("if") {
            assert_eq!(cond.str(), "github.event_name == 'push'");
        }
        let mut env: BTreeMap<String, String> = [
            ("GITHUB_PATH", github_path.display().to_string()),
            ("GITHUB_REPOSITORY", repository.to_string()),
            ("GITHUB_EVENT_NAME", "push".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        env.extend(workflow_env.iter().cloned());
        if let Some(step_env) = step.get("env") {
            for (k, v) in step_env.map() {
                let v = expressions
                    .get(v.str())
                    .unwrap_or_else(|| panic!("{k}: no stand-in for {}", v.str()));
                env.insert(k.clone(), v.to_string());
            }
        }
        // Each step is a shell of its own; what earlier steps added to
        // GITHUB_PATH comes first on PATH, as on a runner.
        let added: Vec<String> = fs::read_to_string(&github_path)
            .unwrap()
            .lines()
            .rev()
            .map(str::to_string)
            .collect();
        let mut script = String::new();
        for p in &added {
            script.push_str(&format!("export PATH=\"{p}:$PATH\"\n"));
        }
        script.push_str(run);
        world.shell(job_dir.path(), &dir, &script, &env);
        ran.push(name.unwrap_or_default());
    }
    assert_eq!(
        ran,
        ["Install gantry", "Test", "Build", "Push", "Bound the store"]
    );
    assert_eq!(world.installs().len(), 1);

    let target = format!("{}/acme/web/app:{short}@sha256:", world.ci.host());
    let refs = pushed(&dir.join("push.json"));
    assert!(
        refs.len() == 1 && refs[0].starts_with(&target),
        "{refs:?}, want {target}…"
    );
    let store = job_dir.path().join("home/.cache/gantry");
    assert!(
        fs::read_dir(&store).unwrap().next().is_some(),
        "the cached store path"
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
