//! Real peers accept gantry's output. Each test builds with the real binary
//! into a scratch project, then hands the result to a tool nobody here wrote:
//! umoci, skopeo, podman, buildah, the Docker Engine and
//! container-structure-test. A missing peer skips the test locally and fails
//! it in CI (see `common::require`); `scripts/setup` installs them all.
//!
//! Every test tags its images with its own name and this process's id, keeps
//! podman's and buildah's storage in its own temporary directory, and removes
//! what it loaded into Docker, so the tests can run side by side, and beside
//! another run of this suite on the same Docker Engine.

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde_json::Value;

use common::digest::sha256_digest;
use common::docker::{docker, docker_inspect, docker_load, docker_run, DockerImages};
use common::fixture::testdata;
use common::host::{host_architecture, host_platform, is_root};
use common::oci::{blob_path, layer_digests, parse_json, read_json, tagged_manifest};
use common::tarball::only_config_digest;
use common::{busybox, digest_of, require, require_docker, sh, skip_unless, Project};

/// The tag written in `testdata/peers/app/gantry.toml`; each test replaces it.
const FIXTURE_TAG: &str = "gantry-peers/app:test";
/// The platform written in the fixtures; replaced by the host's, because the
/// busybox copied into the images is the host's.
const FIXTURE_PLATFORM: &str = "linux/amd64";
const BASE_DIGEST: &str = "org.opencontainers.image.base.digest";

/// What `testdata/peers/app/run.sh` prints when the image's config reaches
/// the runtime intact.
const RUN_SH_OUTPUT: &str = "uid=65532 gid=65532\npwd=/app\nmode=peers\n\
                             conf=greeting = hello from a config file\nstate=writable\n";

// ---------------------------------------------------------------------------
// Fixtures and small helpers.

/// A reference no other test (nor another run of this suite) uses.
fn unique_ref(test: &str) -> (String, String) {
    (
        format!("gantry-peers/{test}"),
        format!("t{}", std::process::id()),
    )
}

/// The image of `testdata/peers/app/` in a scratch project, tagged
/// `REPO:TAG` from [`unique_ref`]; `None` (skipped) without a static busybox.
struct App {
    project: Project,
    repo: String,
    tag: String,
}

impl App {
    fn new(test: &str) -> Option<App> {
        let busybox = busybox()?;
        // gzip layers are one member per MiB of tar; a busybox layer over a
        // MiB makes every peer below read a multi-member layer.
        assert!(
            fs::metadata(&busybox).unwrap().len() > 1 << 20,
            "the peer image's busybox layer must span several gzip members"
        );
        let (repo, tag) = unique_ref(test);
        let project = Project::new();
        let src = testdata("peers").join("app");
        for f in ["run.sh", "app.conf"] {
            fs::copy(src.join(f), project.join(f)).unwrap();
        }
        std::os::unix::fs::symlink(&busybox, project.join("busybox")).unwrap();
        let text = fs::read_to_string(src.join("gantry.toml")).unwrap();
        assert!(text.contains(FIXTURE_TAG) && text.contains(FIXTURE_PLATFORM));
        let text = text
            .replace(FIXTURE_TAG, &format!("{repo}:{tag}"))
            .replace(FIXTURE_PLATFORM, host_platform());
        project.write("gantry.toml", text);
        Some(App { project, repo, tag })
    }

    /// `REPO:TAG`, as docker and podman are told it.
    fn reference(&self) -> String {
        format!("{}:{}", self.repo, self.tag)
    }

    /// Builds the image to `out` (relative to the project); returns the
    /// printed manifest digest.
    fn build(&self, out: &str, extra: &[&str]) -> String {
        let mut args = vec!["build", "-o", out];
        args.extend_from_slice(extra);
        digest_of(&self.project.ok(&args), "app")
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.project.join(rel)
    }

    fn path_str(&self, rel: &str) -> String {
        self.path(rel).display().to_string()
    }
}

fn env_of(config: &Value) -> Vec<String> {
    config
        .as_array()
        .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn keys(v: &Value) -> Vec<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// podman and buildah with storage of their own (vfs: it needs no kernel
/// overlay support and no FUSE), removed with the test. A storage.conf of
/// its own too, so nothing in the host's (another driver, additional image
/// stores) reaches the test, and the host's storage is never touched.
struct Containers {
    dir: tempfile::TempDir,
}

impl Containers {
    fn new() -> Containers {
        let dir = tempfile::tempdir().unwrap();
        for d in ["root", "runroot", "tmp"] {
            fs::create_dir(dir.path().join(d)).unwrap();
        }
        let c = Containers { dir };
        fs::write(
            c.path("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                c.path("root").display(),
                c.path("runroot").display()
            ),
        )
        .unwrap();
        c
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn command(&self, tool: &str) -> Command {
        let mut c = Command::new(tool);
        c.arg(format!("--root={}", self.path("root").display()))
            .arg(format!("--runroot={}", self.path("runroot").display()))
            .arg("--storage-driver=vfs")
            .env("CONTAINERS_STORAGE_CONF", self.path("storage.conf"))
            .env("TMPDIR", self.path("tmp"));
        c
    }

    fn podman(&self) -> Command {
        let mut c = self.command("podman");
        // Its own lock and state directory, and no event log in the host's
        // journal or /run, so parallel tests never meet.
        c.arg(format!("--tmpdir={}", self.path("tmp").display()))
            .args(["--events-backend=none", "--cgroup-manager=cgroupfs"]);
        c
    }

    fn buildah(&self) -> Command {
        self.command("buildah")
    }

    /// Runs `script` with `sh -c` as the image's user in buildah's working
    /// container `name`; returns what it wrote to stdout.
    ///
    /// buildah 1.28's chroot isolation now and then drops a command's stdout
    /// (about one run in a thousand with several buildah processes at once:
    /// exit status 0, nothing printed, though the command ran). So the
    /// script's output goes to a file in a directory mounted from the host.
    fn run(&self, name: &str, script: &str) -> String {
        let results = self.path("results");
        if !results.exists() {
            fs::create_dir(&results).unwrap();
            // The image's user, not root, writes there.
            fs::set_permissions(&results, fs::Permissions::from_mode(0o777)).unwrap();
        }
        let out = results.join("out");
        let _ = fs::remove_file(&out);
        sh(self.buildah().args([
            "run",
            "--isolation",
            "chroot",
            "--volume",
            &format!("{}:/results", results.display()),
            name,
            "--",
            "sh",
            "-c",
            &format!("{{ {script}; }} > /results/out"),
        ]));
        fs::read_to_string(&out).unwrap()
    }
}

impl Drop for Containers {
    fn drop(&mut self) {
        // Working containers may hold mounts inside the storage directory.
        let _ = self
            .buildah()
            .args(["rm", "--all"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

// ---------------------------------------------------------------------------
// 1. umoci unpacks the OCI layout into the declared file system.

#[test]
fn umoci_unpacks_declared_files_modes_and_owners() {
    if !require("umoci") {
        return;
    }
    let Some(app) = App::new("umoci") else { return };
    let epoch = 1_700_000_000;
    let out = app
        .project
        .cmd()
        .env("SOURCE_DATE_EPOCH", epoch.to_string())
        .args(["build", "-o", "out/"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let layout = app.path_str("out");
    let listed = sh(Command::new("umoci").args(["ls", "--layout", &layout]));
    assert_eq!(listed.lines().collect::<Vec<_>>(), [app.tag.as_str()]);

    let stat = parse_json(&sh(Command::new("umoci").args([
        "stat",
        "--json",
        "--image",
        &format!("{layout}:{}", app.tag),
    ])));
    let history: Vec<(&str, &str)> = stat["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| {
            (
                h["created_by"].as_str().unwrap(),
                h["created"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        history,
        [
            ("gantry layer busybox", "2023-11-14T22:13:20Z"),
            ("gantry layer app", "2023-11-14T22:13:20Z")
        ]
    );

    // As root umoci applies the owners in the layers; otherwise it can only
    // unpack rootless, which maps every owner to the caller.
    let root = is_root();
    let bundle = app.path("bundle");
    let mut unpack = Command::new("umoci");
    unpack.arg("unpack");
    if !root {
        unpack.arg("--rootless");
    }
    sh(unpack.args([
        "--image",
        &format!("{layout}:{}", app.tag),
        &bundle.display().to_string(),
    ]));
    let rootfs = bundle.join("rootfs");

    let check = |rel: &str, kind: &str, mode: u32, owner: (u32, u32)| {
        let p = rootfs.join(rel);
        let m = fs::symlink_metadata(&p).unwrap_or_else(|e| panic!("/{rel}: {e}"));
        let ft = m.file_type();
        let actual_kind = if ft.is_symlink() {
            "symlink"
        } else if ft.is_dir() {
            "dir"
        } else if ft.is_file() {
            "file"
        } else {
            "other"
        };
        assert_eq!(actual_kind, kind, "/{rel}");
        if kind != "symlink" {
            assert_eq!(
                m.permissions().mode() & 0o7777,
                mode,
                "/{rel}: mode {:o}",
                m.permissions().mode()
            );
        }
        if root {
            assert_eq!((m.uid(), m.gid()), owner, "/{rel}: owner");
        }
        assert_eq!(m.mtime(), epoch, "/{rel}: mtime");
    };
    check("bin", "dir", 0o755, (0, 0));
    check("bin/busybox", "file", 0o755, (0, 0));
    check("bin/sh", "symlink", 0, (0, 0));
    check("tmp", "dir", 0o1777, (0, 0));
    check("app", "dir", 0o755, (0, 0));
    check("app/run.sh", "file", 0o755, (65532, 65532));
    check("app/current", "symlink", 0, (65532, 65532));
    check("etc/app/app.conf", "file", 0o644, (65532, 65532));
    check("var/lib/app", "dir", 0o700, (65532, 65532));

    assert_eq!(
        fs::read_link(rootfs.join("bin/sh")).unwrap(),
        Path::new("busybox")
    );
    assert_eq!(
        fs::read_link(rootfs.join("app/current")).unwrap(),
        Path::new("run.sh")
    );
    assert_eq!(
        fs::read(rootfs.join("app/run.sh")).unwrap(),
        fs::read(testdata("peers").join("app/run.sh")).unwrap()
    );
    assert_eq!(
        fs::read(rootfs.join("bin/busybox")).unwrap(),
        fs::read(busybox().unwrap()).unwrap()
    );
    // Nothing but what was declared, and the parents gantry makes explicit.
    let mut all = common::tree(&rootfs);
    all.retain(|p| !p.starts_with("bin/") || p == "bin/busybox");
    assert_eq!(
        all,
        [
            "app",
            "app/current",
            "app/run.sh",
            "bin",
            "bin/busybox",
            "etc",
            "etc/app",
            "etc/app/app.conf",
            "tmp",
            "var",
            "var/lib",
            "var/lib/app"
        ]
    );

    let config = read_json(&bundle.join("config.json"));
    assert_eq!(config["process"]["user"]["uid"], 65532);
    assert_eq!(config["process"]["user"]["gid"], 65532);
    assert_eq!(config["process"]["cwd"], "/app");
    assert_eq!(
        config["process"]["args"],
        serde_json::json!(["/app/run.sh"])
    );
    let env = env_of(&config["process"]["env"]);
    assert!(env.contains(&"MODE=peers".to_string()), "{env:?}");
}

// ---------------------------------------------------------------------------
// 2. skopeo reads, and copies, the OCI layout and the docker tarball.

#[test]
fn skopeo_reads_and_copies_layout_and_tarball() {
    if !require("skopeo") {
        return;
    }
    let Some(app) = App::new("skopeo") else {
        return;
    };
    let digest = app.build("out/", &[]);
    assert_eq!(app.build("img.tar", &[]), digest);
    assert_eq!(
        app.build("img.oci.tar", &["--format", "oci-archive"]),
        digest
    );
    let (_, manifest) = tagged_manifest(&app.path("out"), &app.tag);
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let layers = layer_digests(&manifest);
    assert_eq!(layers.len(), 2);

    let skopeo = |args: &[&str]| sh(Command::new("skopeo").args(args));
    let oci = format!("oci:{}:{}", app.path_str("out"), app.tag);
    let archive = format!("docker-archive:{}", app.path_str("img.tar"));
    let oci_archive = format!("oci-archive:{}:{}", app.path_str("img.oci.tar"), app.tag);

    let check_summary = |source: &str, v: &Value| {
        assert_eq!(v["Architecture"], host_architecture(), "{source}: {v}");
        assert_eq!(v["Os"], "linux", "{source}: {v}");
        let env = env_of(&v["Env"]);
        assert_eq!(env, ["MODE=peers", "PATH=/app:/bin"], "{source}");
        assert_eq!(
            v["Labels"],
            serde_json::json!({
                "com.example.checked-by": "peers",
                "org.opencontainers.image.title": "gantry-peers"
            }),
            "{source}"
        );
        assert_eq!(v["Layers"].as_array().unwrap().len(), 2, "{source}: {v}");
        assert_eq!(v["Created"], "1970-01-01T00:00:00Z", "{source}: {v}");
    };

    let v = parse_json(&skopeo(&["inspect", &oci]));
    check_summary(&oci, &v);
    assert_eq!(v["Digest"], digest.as_str());
    assert_eq!(v["Layers"], serde_json::json!(layers));
    let v = parse_json(&skopeo(&["inspect", &oci_archive]));
    check_summary(&oci_archive, &v);
    assert_eq!(v["Digest"], digest.as_str());
    let v = parse_json(&skopeo(&["inspect", &archive]));
    check_summary(&archive, &v);
    // skopeo presents a docker tarball through a Docker schema 2 manifest it
    // makes up itself, so only the config it points at is gantry's.
    let raw_config = skopeo(&["inspect", "--config", "--raw", &archive]);
    assert_eq!(sha256_digest(raw_config.as_bytes()), config_digest);

    // OCI layout to OCI layout, nothing to change: skopeo keeps the manifest
    // bytes, so the copy has gantry's digest.
    let copy = format!("oci:{}:{}", app.path_str("copy"), app.tag);
    skopeo(&["copy", "--quiet", &oci, &copy]);
    let raw = skopeo(&["inspect", "--raw", &copy]);
    assert_eq!(sha256_digest(raw.as_bytes()), digest);
    let (copied_digest, _) = tagged_manifest(&app.path("copy"), &app.tag);
    assert_eq!(copied_digest, digest);

    // Docker tarball to OCI layout: skopeo reads a docker tarball's layers
    // decompressed and compresses them again with its own gzip, and it
    // re-serialises the config (its own key order) while converting the
    // manifest, so no digest but the diff IDs survives. What must survive is
    // the image: the same config, field for field, over the same layer
    // contents.
    let from_tar = format!("oci:{}:x", app.path_str("from-tar"));
    skopeo(&["copy", "--quiet", &archive, &from_tar]);
    let (_, converted) = tagged_manifest(&app.path("from-tar"), "x");
    assert_eq!(layer_digests(&converted).len(), 2);
    let converted_config = read_json(&blob_path(
        &app.path("from-tar"),
        converted["config"]["digest"].as_str().unwrap(),
    ));
    let ours = read_json(&blob_path(&app.path("out"), &config_digest));
    assert_eq!(converted_config, ours);
}

// ---------------------------------------------------------------------------
// 3. podman loads the tarball.

#[test]
fn podman_loads_tarball_and_oci_archive() {
    if !(require("podman") && skip_unless(is_root(), "podman with vfs storage needs root")) {
        return;
    }
    let Some(app) = App::new("podman") else {
        return;
    };
    app.build("img.tar", &[]);
    app.build("img.oci.tar", &["--format", "oci-archive"]);
    let config_digest = only_config_digest(&app.path("img.tar"));
    let image_id = config_digest.trim_start_matches("sha256:");
    let full = format!("docker.io/{}", app.reference());

    let containers = Containers::new();
    let loaded = sh(containers
        .podman()
        .args(["load", "--quiet", "-i", &app.path_str("img.tar")]));
    assert!(loaded.contains(&full), "podman load said {loaded:?}");

    let v = parse_json(&sh(containers.podman().args(["image", "inspect", &full])));
    let v = &v[0];
    assert_eq!(v["Id"], image_id, "{v}");
    assert_eq!(v["Architecture"], host_architecture());
    assert_eq!(v["Os"], "linux");
    assert!(v["RepoTags"]
        .as_array()
        .unwrap()
        .contains(&Value::from(full.as_str())));
    let c = &v["Config"];
    assert_eq!(env_of(&c["Env"]), ["MODE=peers", "PATH=/app:/bin"]);
    assert_eq!(c["User"], "65532:65532");
    assert_eq!(c["WorkingDir"], "/app");
    assert_eq!(c["Entrypoint"], serde_json::json!(["/app/run.sh"]));
    assert_eq!(keys(&c["ExposedPorts"]), ["53/udp", "8080/tcp"]);
    assert_eq!(keys(&c["Volumes"]), ["/data"]);
    assert_eq!(c["StopSignal"], "SIGTERM");
    assert_eq!(v["Labels"]["com.example.checked-by"], "peers");
    assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 2);

    // The OCI archive is the same image: the same config, so the same ID.
    let loaded =
        sh(containers
            .podman()
            .args(["load", "--quiet", "-i", &app.path_str("img.oci.tar")]));
    assert!(!loaded.trim().is_empty(), "podman load said nothing");
    let ids = sh(containers
        .podman()
        .args(["images", "--quiet", "--no-trunc"]));
    assert_eq!(
        ids.lines().collect::<Vec<_>>(),
        [format!("sha256:{image_id}")],
        "both loads give one image"
    );
}

// ---------------------------------------------------------------------------
// 4. buildah makes a working container of it and runs in it.

#[test]
fn buildah_runs_in_a_container_from_the_tarball() {
    if !(require("buildah") && skip_unless(is_root(), "buildah with vfs storage needs root")) {
        return;
    }
    let Some(app) = App::new("buildah") else {
        return;
    };
    app.build("img.tar", &[]);
    app.build("out/", &[]);
    let containers = Containers::new();
    let name = format!("gantry-peers-buildah-{}", std::process::id());
    let from = |name: &str, source: &str| {
        let out = sh(containers
            .buildah()
            .args(["from", "--quiet", "--name", name, source]));
        assert_eq!(out.trim(), name);
    };

    from(
        &name,
        &format!("docker-archive:{}", app.path_str("img.tar")),
    );
    assert_eq!(
        containers.run(&name, "id -u; pwd; echo $MODE"),
        "65532\n/app\npeers\n"
    );
    assert_eq!(containers.run(&name, "/app/run.sh"), RUN_SH_OUTPUT);

    let from_layout = format!("{name}-oci");
    // buildah names what it reads from a layout after the layout's path,
    // and refuses a path that is not a valid image name ("parsing
    // \"localhost/tmp/.tmpXXXX/out\": invalid reference format" for the
    // temporary directory's dot), so it is given a relative path.
    let out = containers
        .buildah()
        .current_dir(app.project.path())
        .args(["from", "--quiet", "--name", &from_layout])
        .arg(format!("oci:out:{}", app.tag))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "buildah from oci:out: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        containers.run(&from_layout, "id -u; pwd; echo $MODE"),
        "65532\n/app\npeers\n"
    );
}

// ---------------------------------------------------------------------------
// 4b. Layers that are not gzip: zstd and uncompressed, read by the peers
// that support them (Docker Engine 20.10 and umoci 0.4 read no zstd).

#[test]
fn zstd_and_uncompressed_layers_load_and_run_with_podman_and_buildah() {
    if !(require("podman")
        && require("buildah")
        && skip_unless(is_root(), "podman and buildah with vfs storage need root"))
    {
        return;
    }
    let Some(app) = App::new("zstd") else { return };
    let text = fs::read_to_string(app.path("gantry.toml")).unwrap();
    let text = text
        .replace(
            "name = \"busybox\"\n",
            "name = \"busybox\"\ncompression = \"none\"\n",
        )
        .replace(
            "name = \"app\"\n",
            "name = \"app\"\ncompression = \"zstd\"\ncompression_level = 19\n",
        );
    app.project.write("gantry.toml", text);
    app.build("out/", &[]);
    app.build("img.tar", &[]);
    let (_, manifest) = tagged_manifest(&app.path("out"), &app.tag);
    let media_types: Vec<&str> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["mediaType"].as_str().unwrap())
        .collect();
    assert_eq!(
        media_types,
        [
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.v1.tar+zstd"
        ]
    );

    // Into containers-storage, which stores every layer decompressed, then
    // run from there: the files of both layers must have come through.
    let containers = Containers::new();
    let full = format!("docker.io/{}", app.reference());
    let loaded = sh(containers
        .podman()
        .args(["load", "--quiet", "-i", &app.path_str("img.tar")]));
    assert!(loaded.contains(&full), "podman load said {loaded:?}");
    let name = format!("gantry-peers-zstd-{}", std::process::id());
    sh(containers
        .buildah()
        .args(["from", "--quiet", "--pull=never", "--name", &name, &full]));
    assert_eq!(containers.run(&name, "/app/run.sh"), RUN_SH_OUTPUT);
}

// ---------------------------------------------------------------------------
// 5. The Docker Engine loads the tarball, from a file and from a pipe, and
// runs it.

#[test]
fn docker_loads_and_runs_tarball_from_file_and_pipe() {
    if !require_docker() {
        return;
    }
    let Some(app) = App::new("docker") else {
        return;
    };
    let digest = app.build("img.tar", &[]);
    let config_digest = only_config_digest(&app.path("img.tar"));
    let reference = app.reference();
    let mut images = DockerImages::new();

    docker_load(&mut images, &app.path("img.tar"), &reference);
    let v = docker_inspect(&reference);
    // Docker's image ID is the config digest.
    assert_eq!(v["Id"], config_digest.as_str());
    assert_eq!(v["Architecture"], host_architecture());
    assert_eq!(v["Config"]["User"], "65532:65532");
    assert_eq!(v["RootFS"]["Layers"].as_array().unwrap().len(), 2);
    assert_eq!(docker_run(&[], &reference, &[]), RUN_SH_OUTPUT);
    assert_eq!(
        docker_run(
            &["--entrypoint", "sh"],
            &reference,
            &["-c", "id -u; pwd; echo $MODE; echo $PATH"]
        ),
        "65532\n/app\npeers\n/app:/bin\n"
    );

    // The same image streamed to stdout: the results line moves to stderr.
    docker(&["image", "rm", &reference]);
    let mut gantry = app
        .project
        .cmd()
        .args(["build", "-o", "-"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let load = Command::new("docker")
        .arg("load")
        .stdin(gantry.stdout.take().unwrap())
        .output()
        .unwrap();
    let built = gantry.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&built.stderr);
    assert!(built.status.success(), "gantry build -o -: {stderr}");
    assert_eq!(digest_of(&stderr, "app"), digest);
    assert!(
        load.status.success(),
        "docker load: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    assert!(String::from_utf8_lossy(&load.stdout).contains(&format!("Loaded image: {reference}")));
    assert_eq!(docker_inspect(&reference)["Id"], config_digest.as_str());
    assert_eq!(docker_run(&[], &reference, &[]), RUN_SH_OUTPUT);
}

// ---------------------------------------------------------------------------
// 6. container-structure-test checks files and metadata without a daemon.

#[test]
fn container_structure_test_passes_on_the_tarball() {
    if !require("container-structure-test") {
        return;
    }
    let Some(app) = App::new("cst") else { return };
    app.build("img.tar", &[]);
    let out = Command::new("container-structure-test")
        .args(["test", "--driver", "tar", "--image"])
        .arg(app.path("img.tar"))
        .arg("--config")
        .arg(testdata("peers").join("structure.yaml"))
        .env("TMPDIR", app.path(""))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "container-structure-test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // A config that checked nothing would pass too.
    assert!(stdout.contains("Passes:      10"), "{stdout}");
    assert!(stdout.contains("Failures:    0"), "{stdout}");
}

// ---------------------------------------------------------------------------
// 7. An image built on another: from gantry's OCI layout, from gantry's
// docker tarball, and from what `docker save` writes.

const CHAIN_BASE: &str = r#"
[image.base]
base = "scratch"
platform = "PLATFORM"
env = { PATH = "/bin", MODE = "base" }
tags = ["REFERENCE"]

[[image.base.layer]]
name = "busybox"
files = [
  { src = "busybox", dst = "/bin/busybox" },
  { symlink = "/bin/sh", target = "busybox" },
]
"#;

const CHAIN_DERIVED: &str = r#"
[image.derived]
base = "BASE"
env = { PATH = "/app/bin:${PATH}", ROLE = "derived" }
entrypoint = ["/bin/sh", "-c", "echo PATH=$PATH MODE=$MODE ROLE=$ROLE; hello"]
tags = ["REFERENCE"]

[[image.derived.layer]]
name = "app"
files = [{ src = "hello", dst = "/app/bin/hello", mode = "0755" }]
"#;

#[test]
fn derived_images_keep_their_base_and_run_in_docker() {
    if !require_docker() {
        return;
    }
    let Some(busybox) = busybox() else { return };
    let (repo, tag) = unique_ref("chain");
    let p = Project::new();
    std::os::unix::fs::symlink(&busybox, p.join("busybox")).unwrap();
    p.write("hello", "#!/bin/sh\necho hello from the derived layer\n");
    let mut images = DockerImages::new();

    let base_ref = format!("{repo}-base:{tag}");
    p.write(
        "base.toml",
        CHAIN_BASE
            .replace("PLATFORM", host_platform())
            .replace("REFERENCE", &base_ref),
    );
    let base_digest = digest_of(&p.ok(&["build", "-f", "base.toml", "-o", "base/"]), "base");
    p.ok(&["build", "-f", "base.toml", "-o", "base.tar"]);
    let (_, base_manifest) = tagged_manifest(&p.join("base"), &tag);
    let base_layers = layer_digests(&base_manifest);
    let base_config = read_json(&blob_path(
        &p.join("base"),
        base_manifest["config"]["digest"].as_str().unwrap(),
    ));
    let base_diff_ids = base_config["rootfs"]["diff_ids"].clone();

    // What a real `docker save` of the base writes is a base too.
    docker_load(&mut images, &p.join("base.tar"), &base_ref);
    let base_docker_layers = docker_inspect(&base_ref)["RootFS"]["Layers"].clone();
    assert_eq!(base_docker_layers, base_diff_ids);
    docker(&[
        "save",
        "-o",
        &p.join("saved.tar").display().to_string(),
        &base_ref,
    ]);

    let expected_run = "PATH=/app/bin:/bin MODE=base ROLE=derived\nhello from the derived layer\n";
    for (name, base) in [
        ("oci", format!("oci:base:{tag}")),
        ("archive", "docker-archive:base.tar".to_string()),
        ("saved", "docker-archive:saved.tar".to_string()),
    ] {
        let file = format!("derived-{name}.toml");
        let reference = format!("{repo}-{name}:{tag}");
        p.write(
            &file,
            CHAIN_DERIVED
                .replace("BASE", &base)
                .replace("REFERENCE", &reference),
        );
        let out_dir = format!("derived-{name}/");
        let digest = digest_of(&p.ok(&["build", "-f", &file, "-o", &out_dir]), "derived");
        let tarball = p.join(&format!("derived-{name}.tar"));
        p.ok(&["build", "-f", &file, "-o", &tarball.display().to_string()]);

        let (manifest_digest, manifest) = tagged_manifest(&p.join(&out_dir), &tag);
        assert_eq!(manifest_digest, digest, "{name}");
        let config = read_json(&blob_path(
            &p.join(&out_dir),
            manifest["config"]["digest"].as_str().unwrap(),
        ));
        let layers = layer_digests(&manifest);
        assert_eq!(layers.len(), 2, "{name}: {manifest}");
        let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
        assert_eq!(diff_ids[0], base_diff_ids[0], "{name}: the base's layer");
        if name == "saved" {
            // docker save stores layers uncompressed: the same diff ID, as
            // an uncompressed blob of its own.
            assert_eq!(layers[0], diff_ids[0].as_str().unwrap(), "{name}");
        } else {
            assert_eq!(layers[0], base_layers[0], "{name}: the base's blob");
            assert_eq!(
                manifest["annotations"][BASE_DIGEST],
                base_digest.as_str(),
                "{name}"
            );
        }
        assert_eq!(
            env_of(&config["config"]["Env"]),
            // The base's variables in its order (a TOML table is sorted),
            // PATH replaced in place, ROLE appended.
            ["MODE=base", "PATH=/app/bin:/bin", "ROLE=derived"],
            "{name}"
        );
        assert_eq!(config["history"].as_array().unwrap().len(), 2, "{name}");

        docker_load(&mut images, &tarball, &reference);
        let docker_layers = docker_inspect(&reference)["RootFS"]["Layers"].clone();
        assert_eq!(docker_layers[0], base_docker_layers[0], "{name}");
        assert_eq!(docker_layers.as_array().unwrap().len(), 2, "{name}");
        assert_eq!(docker_run(&[], &reference, &[]), expected_run, "{name}");
    }
}

// ---------------------------------------------------------------------------
// The README's example, as the README runs it.

#[test]
fn example_hello_runs_in_docker() {
    if !(require_docker() && busybox().is_some()) {
        return;
    }
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/hello/gantry.toml");
    let p = Project::new();
    let tarball = p.join("hello.tar");
    p.ok(&[
        "build",
        "-f",
        &example.display().to_string(),
        "-o",
        &tarball.display().to_string(),
    ]);
    // The example's name is fixed; leave an image of that name alone if it
    // was there before (it is the same image if it came from the example).
    let mut images = DockerImages::new();
    let existed = Command::new("docker")
        .args(["image", "inspect", "hello:latest"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success();
    let out = docker(&["load", "-i", &tarball.display().to_string()]);
    if !existed {
        images.track("hello:latest");
    }
    assert!(out.contains("hello:latest"), "{out}");
    assert_eq!(
        docker(&["run", "--rm", "hello:latest"]),
        "Hello, world!\nI am uid 65532, gid 65532, in /app.\n"
    );
}
