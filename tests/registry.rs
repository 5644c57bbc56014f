//! Registry bases against the reference registry (distribution's
//! `docker-registry`), seeded with images gantry did not write: layouts made
//! by umoci and pushed by skopeo, including a multi-platform index. The
//! results load and run in Docker and load in podman.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use base64::Engine;
use common::docker_registry::{self, DockerRegistry, Options};
use common::proxy::{self, Proxy};
use common::push::app_project;
use common::{digest_of, require, sh, Project};

const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

fn peers() -> bool {
    require(docker_registry::BIN) && require("skopeo") && require("umoci")
}

fn is_root() -> bool {
    sh(Command::new("id").arg("-u")).trim() == "0"
}

/// An umoci layout with tags `amd64` and `arm64` (static busybox as
/// `/bin/busybox`, architecture set in the config) and `multi`, an image
/// index of both. Returns the layout and the two manifest digests.
fn umoci_layout(dir: &Path, busybox: &Path) -> (PathBuf, String, String) {
    let layout = dir.join("umoci");
    let image = |tag: &str| format!("{}:{tag}", layout.display());
    sh(Command::new("umoci")
        .args(["init", "--layout"])
        .arg(&layout));
    let rootless: &[&str] = if is_root() { &[] } else { &["--rootless"] };
    let mut digests = Vec::new();
    for arch in ["amd64", "arm64"] {
        sh(Command::new("umoci").args(["new", "--image", &image(arch)]));
        sh(Command::new("umoci")
            .arg("insert")
            .args(rootless)
            .args(["--image", &image(arch)])
            .arg(busybox)
            .arg("/bin/busybox"));
        sh(Command::new("umoci").args([
            "config",
            "--image",
            &image(arch),
            "--architecture",
            arch,
            "--os",
            "linux",
            "--config.cmd",
            "/bin/busybox",
            "--config.env",
            "FROM_BASE=1",
        ]));
        let index: serde_json::Value =
            serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
        let d = index["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == arch)
            .unwrap()
            .clone();
        digests.push(d);
    }
    let entry = |d: &serde_json::Value, arch: &str| {
        serde_json::json!({
            "mediaType": d["mediaType"], "digest": d["digest"], "size": d["size"],
            "platform": {"os": "linux", "architecture": arch},
        })
    };
    let nested = serde_json::json!({
        "schemaVersion": 2, "mediaType": OCI_INDEX,
        "manifests": [entry(&digests[0], "amd64"), entry(&digests[1], "arm64")],
    });
    let bytes = serde_json::to_vec(&nested).unwrap();
    let hex = {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(&bytes))
    };
    fs::write(layout.join("blobs/sha256").join(&hex), &bytes).unwrap();
    let mut index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    index["manifests"]
        .as_array_mut()
        .unwrap()
        .push(serde_json::json!({
            "mediaType": OCI_INDEX, "digest": format!("sha256:{hex}"), "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "multi"},
        }));
    fs::write(
        layout.join("index.json"),
        serde_json::to_vec(&index).unwrap(),
    )
    .unwrap();
    let d = |v: &serde_json::Value| v["digest"].as_str().unwrap().to_string();
    (layout, d(&digests[0]), d(&digests[1]))
}

fn skopeo_push(layout: &Path, tag: &str, dest: &str, extra: &[&str]) {
    let mut c = Command::new("skopeo");
    c.args(["copy", "--quiet"]);
    if tag == "multi" {
        c.arg("--all");
    }
    c.args(extra)
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{dest}"));
    sh(&mut c);
}

fn app_file(base: &str, platform: Option<&str>) -> String {
    let platform = platform
        .map(|p| format!("platform = \"{p}\"\n"))
        .unwrap_or_default();
    format!(
        "[image.app]\nbase = \"{base}\"\n{platform}tags = [\"gantry-test/registry-app:1\"]\n\
         cmd = [\"/bin/busybox\", \"cat\", \"/hello.txt\"]\n\
         [[image.app.layer]]\nfiles = [{{ src = \"hello.txt\", dst = \"/hello.txt\" }}]\n"
    )
}

fn project(base: &str, platform: Option<&str>) -> Project {
    let p = Project::new();
    p.write("hello.txt", "hello from a registry base\n");
    p.write("gantry.toml", app_file(base, platform));
    fs::create_dir_all(p.join(".docker")).unwrap();
    p
}

fn run(p: &Project, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut c = p.cmd();
    c.env("DOCKER_CONFIG", p.join(".docker"))
        .env("REGISTRY_AUTH_FILE", p.join("none.json"))
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("SSL_CERT_FILE");
    for (k, v) in env {
        c.env(k, v);
    }
    c.args(args).output().unwrap()
}

fn ok(p: &Project, args: &[&str]) -> String {
    let out = run(p, args, &[]);
    assert!(
        out.status.success(),
        "gantry {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn builds_on_foreign_images_and_the_result_runs_in_docker_and_podman() {
    if !peers() {
        return;
    }
    let Some(busybox) = common::busybox() else {
        return;
    };
    let reg = DockerRegistry::start(Options::default());
    let work = tempfile::tempdir().unwrap();
    let (layout, _amd, arm) = umoci_layout(work.path(), &busybox);
    let tls = ["--dest-tls-verify=false"];
    skopeo_push(
        &layout,
        "amd64",
        &format!("{}/test/busybox:1", reg.host()),
        &tls,
    );
    skopeo_push(
        &layout,
        "multi",
        &format!("{}/test/busybox:multi", reg.host()),
        &tls,
    );

    // A single-platform base, written out as a docker tarball.
    let p = project(&format!("{}/test/busybox:1", reg.host()), None);
    let out = ok(&p, &["build", "-o", "app.tar"]);
    let digest = digest_of(&out, "app");
    // The same base as a local layout builds the same image.
    let local = project(&format!("oci:{}:amd64", layout.display()), None);
    assert_eq!(digest_of(&ok(&local, &["build"]), "app"), digest);

    // One platform of a multi-platform base.
    let multi = project(
        &format!("{}/test/busybox:multi", reg.host()),
        Some("linux/arm64/v8"),
    );
    let local_arm = project(
        &format!("oci:{}:arm64", layout.display()),
        Some("linux/arm64"),
    );
    assert_eq!(
        digest_of(&ok(&multi, &["build"]), "app"),
        digest_of(&ok(&local_arm, &["build"]), "app")
    );
    let inspect = ok(&multi, &["build", "-o", "arm/"]);
    assert!(!inspect.is_empty());
    let idx = fs::read_to_string(multi.join("arm/index.json")).unwrap();
    let m: serde_json::Value = serde_json::from_slice(
        &fs::read(
            multi.join("arm/blobs/sha256").join(
                serde_json::from_str::<serde_json::Value>(&idx).unwrap()["manifests"][0]["digest"]
                    .as_str()
                    .unwrap()
                    .strip_prefix("sha256:")
                    .unwrap(),
            ),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        m["annotations"]["org.opencontainers.image.base.digest"], arm,
        "the arm64 manifest of the index is the base"
    );

    if common::require_docker() {
        sh(Command::new("docker")
            .arg("load")
            .arg("-i")
            .arg(p.join("app.tar")));
        let said = sh(Command::new("docker").args(["run", "--rm", "gantry-test/registry-app:1"]));
        let _ = Command::new("docker")
            .args(["rmi", "-f", "gantry-test/registry-app:1"])
            .output();
        assert_eq!(said, "hello from a registry base\n");
    }
    if require("podman") {
        let loaded = sh(Command::new("podman")
            .arg("load")
            .arg("-i")
            .arg(p.join("app.tar")));
        assert!(loaded.contains("registry-app"), "{loaded}");
        let env = sh(Command::new("podman").args([
            "image",
            "inspect",
            "--format",
            "{{.Config.Env}}",
            "gantry-test/registry-app:1",
        ]));
        let _ = Command::new("podman")
            .args(["rmi", "-f", "gantry-test/registry-app:1"])
            .output();
        assert!(env.contains("FROM_BASE=1"), "{env}");
    }
}

#[test]
fn offline_with_a_warm_store_builds_the_same_and_stale_locks_fail() {
    if !peers() {
        return;
    }
    let Some(busybox) = common::busybox() else {
        return;
    };
    let mut reg = DockerRegistry::start(Options::default());
    let work = tempfile::tempdir().unwrap();
    let (layout, _, _) = umoci_layout(work.path(), &busybox);
    let tls = ["--dest-tls-verify=false"];
    skopeo_push(
        &layout,
        "multi",
        &format!("{}/test/busybox:multi", reg.host()),
        &tls,
    );
    let p = project(
        &format!("{}/test/busybox:multi", reg.host()),
        Some("linux/amd64"),
    );
    ok(&p, &["lock"]);
    let online = ok(&p, &["build", "--locked", "-o", "online.tar"]);

    reg.stop();
    let offline = ok(&p, &["build", "--locked", "--offline", "-o", "offline.tar"]);
    assert_eq!(online, offline);
    assert_eq!(
        fs::read(p.join("online.tar")).unwrap(),
        fs::read(p.join("offline.tar")).unwrap()
    );

    // A base the lock does not know: stale, named, and nothing fetched.
    p.write(
        "gantry.toml",
        app_file(&format!("{}/test/busybox:other", reg.host()), None),
    );
    let out = run(&p, &["build", "--locked"], &[]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        e.contains("gantry.lock") && e.contains("test/busybox:other"),
        "{e}"
    );
}

#[test]
fn pull_vendors_a_base_as_an_oci_layout() {
    if !peers() {
        return;
    }
    let Some(busybox) = common::busybox() else {
        return;
    };
    let reg = DockerRegistry::start(Options::default());
    let work = tempfile::tempdir().unwrap();
    let (layout, _, arm) = umoci_layout(work.path(), &busybox);
    let tls = ["--dest-tls-verify=false"];
    let name = format!("{}/test/busybox:multi", reg.host());
    skopeo_push(&layout, "multi", &name, &tls);

    let p = project("oci:vendor/busybox", Some("linux/arm64"));
    let out = ok(
        &p,
        &[
            "pull",
            &name,
            "--platform",
            "linux/arm64",
            "-o",
            "vendor/busybox",
        ],
    );
    assert_eq!(out.trim(), format!("{name} {arm}"));
    // skopeo reads what gantry vendored.
    let raw = sh(Command::new("skopeo")
        .args(["inspect", "--raw"])
        .arg(format!("oci:{}:multi", p.join("vendor/busybox").display())));
    let d = {
        use sha2::Digest as _;
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(raw.as_bytes()))
        )
    };
    assert_eq!(d, arm, "vendored byte for byte");
    let vendored = digest_of(&ok(&p, &["build"]), "app");
    let remote = project(&name, Some("linux/arm64"));
    assert_eq!(digest_of(&ok(&remote, &["build"]), "app"), vendored);
}

#[test]
fn tls_with_a_private_ca_and_htpasswd_basic_auth() {
    if !(peers() && require("openssl") && require("htpasswd")) {
        return;
    }
    let Some(busybox) = common::busybox() else {
        return;
    };
    let (user, password) = ("tester", "pa55-w0rd-xyz");
    let reg = DockerRegistry::start(Options {
        tls: true,
        htpasswd: Some((user.into(), password.into())),
    });
    let work = tempfile::tempdir().unwrap();
    let (layout, _, _) = umoci_layout(work.path(), &busybox);
    let certs = work.path().join("certs");
    fs::create_dir_all(&certs).unwrap();
    fs::copy(reg.ca(), certs.join("ca.crt")).unwrap();
    let creds = format!("--dest-creds={user}:{password}");
    let cert_dir = format!("--dest-cert-dir={}", certs.display());
    skopeo_push(
        &layout,
        "amd64",
        &format!("{}/test/busybox:1", reg.host()),
        &[&creds, &cert_dir],
    );

    let p = project(&format!("{}/test/busybox:1", reg.host()), None);
    let ca = reg.ca();
    let ca_arg = format!("--ca-cert={}", ca.display());
    let write_auth = |pw: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"));
        p.write(
            ".docker/config.json",
            format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
        );
        auth
    };
    let auth = write_auth(password);

    // Not trusted: refused, never downgraded to plain HTTP.
    let out = run(&p, &["build"], &[]);
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(e.contains(&reg.host()) && e.contains("--ca-cert"), "{e}");

    let secret_free = |out: &Output, auth: &str, pw: &str| {
        for t in [&out.stdout, &out.stderr] {
            let t = String::from_utf8_lossy(t);
            assert!(!t.contains(pw) && !t.contains(auth), "{t}");
        }
    };
    let out = run(&p, &["build", &ca_arg, "-o", "app.tar"], &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    secret_free(&out, &auth, password);
    let out = run(&p, &["build"], &[("SSL_CERT_FILE", ca.as_path())]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let bad = "not-the-pa55word";
    let bad_auth = write_auth(bad);
    fs::remove_dir_all(p.store.path()).unwrap();
    let out = run(&p, &["build", &ca_arg], &[]);
    let e = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(e.contains("HTTP 401") && e.contains("UNAUTHORIZED"), "{e}");
    secret_free(&out, &bad_auth, bad);
}

#[test]
fn docker_manifest_lists_and_schema2_manifests_are_read() {
    if !peers() {
        return;
    }
    let Some(busybox) = common::busybox() else {
        return;
    };
    let reg = DockerRegistry::start(Options::default());
    let work = tempfile::tempdir().unwrap();
    let (layout, _, _) = umoci_layout(work.path(), &busybox);
    let name = format!("{}/test/busybox:v2s2", reg.host());
    skopeo_push(
        &layout,
        "multi",
        &name,
        &["--dest-tls-verify=false", "--format=v2s2"],
    );
    let raw = sh(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{name}")));
    assert!(
        raw.contains("application/vnd.docker.distribution.manifest.list.v2+json"),
        "{raw}"
    );

    let p = project(&name, Some("linux/arm64"));
    ok(&p, &["build", "-o", "out/"]);
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(p.join("out/index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(
        &fs::read(
            p.join("out/blobs/sha256")
                .join(digest.strip_prefix("sha256:").unwrap()),
        )
        .unwrap(),
    )
    .unwrap();
    // The base's schema2 manifest is the recorded base; its Docker layer
    // media types are written with their OCI names.
    let base = manifest["annotations"]["org.opencontainers.image.base.digest"]
        .as_str()
        .unwrap()
        .to_string();
    let base_raw = sh(Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{}/test/busybox@{base}", reg.host())));
    assert!(
        base_raw.contains("application/vnd.docker.distribution.manifest.v2+json"),
        "{base_raw}"
    );
    for l in manifest["layers"].as_array().unwrap() {
        assert!(
            l["mediaType"]
                .as_str()
                .unwrap()
                .starts_with("application/vnd.oci.image.layer."),
            "{l}"
        );
    }
    let arch = sh(Command::new("skopeo")
        .args(["inspect", "--config"])
        .arg(format!("oci:{}", p.join("out").display())));
    assert!(arch.contains("\"arm64\""), "{arch}");
}

#[test]
fn base_blobs_a_plain_registry_redirects_to_https_are_fetched_with_the_trusted_roots() {
    if !(require(docker_registry::BIN) && require("openssl")) {
        return;
    }
    // A plain-HTTP registry whose blobs live behind HTTPS (as storage
    // redirects do), and the HTTPS side with a private CA.
    let storage = DockerRegistry::start(Options {
        tls: true,
        htpasswd: None,
    });
    let front = DockerRegistry::start(Options::default());
    let proxy = Proxy::start(
        front.port,
        proxy::Options {
            blobs_redirect_to: Some(format!("https://{}", storage.host())),
            ..Default::default()
        },
    );
    let ca = format!("--ca-cert={}", storage.ca().display());
    let base = format!("{}/base/app:1", proxy.host());
    let app = app_project(&[&base, &format!("{}/base/app:1", storage.host())]);
    app.ok(&["push", &ca]);

    // A fresh store has none of the base's layers: writing a tarball
    // fetches them, through the redirect.
    let p = Project::new();
    p.write(
        "gantry.toml",
        format!(
            "[image.c]\nbase = \"{base}\"\n\n[[image.c.layer]]\nname = \"x\"\n\
             files = [{{ src = \"x.txt\", dst = \"/x.txt\" }}]\n"
        ),
    );
    p.write("x.txt", "x\n");
    p.ok(&["build", &ca, "-o", "c.tar"]);
    assert!(p.join("c.tar").is_file());
    let redirected = proxy
        .log()
        .iter()
        .filter(|l| l.method == "GET" && l.path.contains("/blobs/") && l.status == 307)
        .count();
    assert_eq!(
        redirected, 3,
        "config and both layers came through the redirect"
    );
}
