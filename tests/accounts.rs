//! Declared accounts and Docker's config fields, end to end: the generated
//! `accounts` layer over a busybox base that has its own `/etc/passwd`, named
//! users checked, a healthcheck a container reaches `healthy` with, and
//! base directories whose owner no layer changes by accident.

mod common;

use std::collections::BTreeMap;
use std::io::Read;
use std::process::Command;

use common::docker::{docker, docker_inspect, docker_load, docker_run, DockerImages};
use common::host::host_platform;
use common::oci::{tagged_manifest, Layout};
use std::os::unix::fs::{MetadataExt, PermissionsExt};

use common::host::is_root;
use common::{busybox, require, require_docker, sh, skip_unless, Project};

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n# kept as it is\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false";
const GROUP: &str = "root:x:0:\nnogroup:x:65534:\n";

/// A busybox base with account files and a directory owned by uid 1000,
/// and an image on it: `olympia` declared, a file added under the
/// non-root directory.
const BUILD: &str = r#"
[image.base]
base = "scratch"
platform = "PLATFORM"
env = { PATH = "/bin" }
tags = ["gantry-test-accounts-base:TAG"]

[[image.base.layer]]
name = "root"
files = [
  { src = "busybox", dst = "/bin/busybox" },
  { symlink = "/bin/sh", target = "busybox" },
  { symlink = "/bin/id", target = "busybox" },
  { symlink = "/bin/stat", target = "busybox" },
  { symlink = "/bin/true", target = "busybox" },
  { src = "passwd", dst = "/etc/passwd" },
  { src = "group", dst = "/etc/group" },
  { dir = "/srv/owned", mode = "0750", owner = "1000:1000" },
]

[image.web]
base = ":base"
user = "olympia"
tags = ["gantry-test-accounts-web:TAG"]
healthcheck = { test = ["CMD", "/bin/true"], interval = "500ms", timeout = "5s", start_period = "1s", retries = 3 }
shell = ["/bin/sh", "-c"]
cmd = ["/bin/id"]

[image.web.accounts]
groups = [{ name = "olympia", gid = 9500 }]
users = [{ name = "olympia", uid = 9500, gid = 9500, home = "/data/olympia", shell = "/bin/sh" }]

[[image.web.layer]]
name = "app"
files = [{ src = "hello", dst = "/srv/owned/hello" }]
"#;

fn project(tag: &str) -> Option<Project> {
    let busybox = busybox()?;
    let p = Project::new();
    std::os::unix::fs::symlink(&busybox, p.join("busybox")).unwrap();
    p.write("passwd", PASSWD);
    p.write("group", GROUP);
    p.write("hello", "hello\n");
    p.write(
        "gantry.toml",
        BUILD
            .replace("PLATFORM", host_platform())
            .replace("TAG", tag),
    );
    Some(p)
}

/// Each member of a tar: (mode, uid, gid, contents).
fn members(tar: &[u8]) -> BTreeMap<String, (u32, u64, u64, Vec<u8>)> {
    let mut out = BTreeMap::new();
    for e in tar::Archive::new(tar).entries().unwrap() {
        let mut e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let h = e.header().clone();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(
            path.trim_end_matches('/').to_string(),
            (h.mode().unwrap(), h.uid().unwrap(), h.gid().unwrap(), data),
        );
    }
    out
}

#[test]
fn accounts_layer_appends_to_the_base_files_and_keeps_base_directories() {
    let Some(p) = project("layout") else { return };
    p.ok(&["build", "web", "-o", "out/"]);
    let layout = Layout(p.join("out"));
    let (_, manifest) = tagged_manifest(&p.join("out"), "layout");
    let layers = layout.layers(&manifest);
    assert_eq!(layers.len(), 3, "base, accounts, app");
    let accounts = members(&layers[1].2);
    let names: Vec<&str> = accounts.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["data", "data/olympia", "etc", "etc/group", "etc/passwd"]
    );
    let passwd = &accounts["etc/passwd"];
    let want = format!("{PASSWD}\nolympia:x:9500:9500::/data/olympia:/bin/sh\n");
    assert_eq!(String::from_utf8_lossy(&passwd.3), want);
    assert!(passwd.3.starts_with(PASSWD.as_bytes()), "base lines kept");
    assert_eq!((passwd.0, passwd.1, passwd.2), (0o644, 0, 0));
    assert_eq!(
        String::from_utf8_lossy(&accounts["etc/group"].3),
        format!("{GROUP}olympia:x:9500:\n")
    );
    let home = &accounts["data/olympia"];
    assert_eq!((home.0, home.1, home.2), (0o700, 9500, 9500));
    assert_eq!(
        (accounts["data"].0, accounts["data"].1),
        (0o755, 0),
        "a parent the base lacks is made as before"
    );

    let app = members(&layers[2].2);
    let names: Vec<&str> = app.keys().map(String::as_str).collect();
    assert_eq!(names, ["srv", "srv/owned", "srv/owned/hello"]);
    let owned = &app["srv/owned"];
    assert_eq!(
        (owned.0, owned.1, owned.2),
        (0o750, 1000, 1000),
        "an implied parent the base has keeps the base's owner and mode"
    );

    let config = layout.config(&manifest);
    let c = &config["config"];
    assert_eq!(c["User"], "olympia");
    assert_eq!(
        c["Healthcheck"],
        serde_json::json!({"Test": ["CMD", "/bin/true"], "Interval": 500_000_000,
            "Timeout": 5_000_000_000u64, "StartPeriod": 1_000_000_000, "Retries": 3})
    );
    assert_eq!(c["Shell"], serde_json::json!(["/bin/sh", "-c"]));
    let history: Vec<&str> = config["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["created_by"].as_str().unwrap())
        .collect();
    assert_eq!(history[1..], ["gantry layer accounts", "gantry layer app"]);
}

#[test]
fn accounts_layer_is_reproducible_and_reused() {
    let Some(p) = project("repro") else { return };
    let first = p.ok(&["build", "web", "-o", "a/"]);
    let again = p.ok(&["build", "web", "-o", "b/"]);
    assert_eq!(first, again);
    let other = project("repro").unwrap();
    assert_eq!(other.ok(&["build", "web", "-o", "c/"]), first);
    assert_eq!(
        tagged_manifest(&p.join("a"), "repro").0,
        tagged_manifest(&other.join("c"), "repro").0,
        "another store and checkout make the same image"
    );
}

#[test]
fn accounts_on_scratch_create_the_files() {
    let p = Project::new();
    p.write(
        "gantry.toml",
        "[image.s]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\nuser = \"app:app\"\n\
         [image.s.accounts]\ngroups = [{ name = \"app\", gid = 10 }]\n\
         users = [{ name = \"app\", uid = 10, gid = 10, create_home = false }]\n",
    );
    p.ok(&["build", "-o", "out/"]);
    let layout = Layout(p.join("out"));
    let (_, manifest) = tagged_manifest(&p.join("out"), "latest");
    let layers = layout.layers(&manifest);
    assert_eq!(layers.len(), 1);
    let m = members(&layers[0].2);
    let names: Vec<&str> = m.keys().map(String::as_str).collect();
    assert_eq!(names, ["etc", "etc/group", "etc/passwd"]);
    assert_eq!(m["etc/passwd"].3, b"app:x:10:10::/home/app:\n");
    assert_eq!(m["etc/group"].3, b"app:x:10:\n");
    assert_eq!((m["etc"].0, m["etc/passwd"].0), (0o755, 0o644));
}

#[test]
fn named_user_without_an_account_fails_naming_image_user_and_files() {
    let p = Project::new();
    p.write("passwd", "root:x:0:0::/root:/bin/sh\n");
    p.write(
        "gantry.toml",
        "[image.s]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\nuser = \"olympia\"\n\
         [[image.s.layer]]\nfiles = [{ src = \"passwd\", dst = \"/etc/passwd\" }]\n",
    );
    let e = p.fails(&["build", "-o", "out/"]);
    assert!(e.contains("gantry.toml:1:1 (image.s)"), "{e}");
    assert!(e.contains("image \"s\""), "{e}");
    assert!(
        e.contains("user \"olympia\" is not in the image's /etc/passwd"),
        "{e}"
    );
    assert!(e.contains("passwd"), "{e}");
    assert!(!p.join("out").exists(), "nothing written");

    // Numeric ids are not checked.
    p.write(
        "gantry.toml",
        "[image.s]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\nuser = \"9500:9500\"\n",
    );
    p.ok(&["build", "-o", "out/"]);
}

#[test]
fn bad_accounts_are_errors_at_their_declaration() {
    let Some(p) = project("bad") else { return };
    let text = std::fs::read_to_string(p.join("gantry.toml")).unwrap();
    for (from, to, want) in [
        (
            "uid = 9500, gid = 9500, home",
            "uid = 65534, gid = 9500, home",
            "clashes with the base's /etc/passwd line 3",
        ),
        (
            "home = \"/data/olympia\"",
            "home = \"/bin/busybox\"",
            "home \"/bin/busybox\" is not a directory in the base (it is a file)",
        ),
        (
            "interval = \"500ms\"",
            "interval = \"5 minutes\"",
            "gantry.toml:25:57 (image.web.healthcheck.interval)",
        ),
    ] {
        assert!(text.contains(from), "{from}");
        p.write("gantry.toml", text.replace(from, to));
        let e = p.fails(&["build", "web", "-o", "out/"]);
        assert!(e.contains(want), "{to}: {e}");
        if !want.contains("healthcheck") {
            assert!(e.contains("(image.web.accounts.users[0])"), "{to}: {e}");
        }
        assert!(!p.join("out").exists(), "nothing written");
    }
}

#[test]
fn onbuild_triggers_of_a_base_are_a_warning_unless_cleared() {
    let p = Project::new();
    let base = "[image.base]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\
                onbuild = [\"RUN make\"]\n";
    p.write(
        "gantry.toml",
        format!("{base}[image.top]\nbase = \":base\"\n"),
    );
    let out = p.cmd().args(["build", "top"]).output().unwrap();
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("warning: image \"top\": its base has 1 ONBUILD trigger(s)"),
        "{stderr}"
    );
    p.write(
        "gantry.toml",
        format!("{base}[image.top]\nbase = \":base\"\nonbuild = []\n"),
    );
    p.ok(&["build", "-o", "out/"]);
    let out = p.cmd().args(["build", "top"]).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("ONBUILD"));
    let layout = Layout(p.join("out"));
    let index = common::oci::read_json(&p.join("out/index.json"));
    for d in index["manifests"].as_array().unwrap() {
        let m = layout.manifest(d["digest"].as_str().unwrap());
        let c = layout.config(&m);
        let name = d["annotations"]["io.containerd.image.name"]
            .as_str()
            .unwrap_or("");
        if name.contains("top") {
            assert!(c["config"].get("OnBuild").is_none(), "{c}");
        }
    }
}

#[test]
fn docker_runs_the_declared_user_and_reaches_healthy() {
    if !require_docker() {
        return;
    }
    let tag = format!("d{}", std::process::id());
    let Some(p) = project(&tag) else { return };
    p.ok(&["build", "web", "-o", "web.tar"]);
    let reference = format!("gantry-test-accounts-web:{tag}");
    let mut images = DockerImages::new();
    docker_load(&mut images, &p.join("web.tar"), &reference);

    // busybox's `id` goes on with the groups Docker adds from /etc/group.
    let id = docker_run(&[], &reference, &["id"]);
    assert!(
        id.starts_with("uid=9500(olympia) gid=9500(olympia)"),
        "{id}"
    );
    let owned = docker_run(&[], &reference, &["stat", "-c", "%u:%g %a", "/srv/owned"]);
    assert_eq!(
        owned.trim(),
        "1000:1000 750",
        "the base directory keeps its owner"
    );
    let home = docker_run(
        &[],
        &reference,
        &["stat", "-c", "%u:%g %a", "/data/olympia"],
    );
    assert_eq!(home.trim(), "9500:9500 700");

    let inspect = docker_inspect(&reference);
    assert_eq!(inspect["Config"]["Healthcheck"]["Test"][1], "/bin/true");
    assert_eq!(inspect["Config"]["Healthcheck"]["Interval"], 500_000_000);
    assert_eq!(inspect["Config"]["Shell"][0], "/bin/sh");

    let name = format!("gantry-test-health-{tag}");
    let cid = docker(&[
        "run",
        "-d",
        "--rm",
        "--network",
        "none",
        "--name",
        &name,
        &reference,
        "sh",
        "-c",
        "sleep 60",
    ]);
    let mut status = String::new();
    for _ in 0..60 {
        status = docker(&["inspect", "-f", "{{.State.Health.Status}}", cid.trim()]);
        if status.trim() == "healthy" {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    }
    let _ = Command::new("docker")
        .args(["rm", "-f", cid.trim()])
        .output();
    assert_eq!(status.trim(), "healthy");
}

/// podman with storage of its own (vfs, in a temporary directory), so the
/// host's images are never touched.
fn podman(dir: &std::path::Path) -> Command {
    let mut c = Command::new("podman");
    for d in ["root", "runroot", "tmp"] {
        std::fs::create_dir_all(dir.join(d)).unwrap();
    }
    c.arg(format!("--root={}", dir.join("root").display()))
        .arg(format!("--runroot={}", dir.join("runroot").display()))
        .arg(format!("--tmpdir={}", dir.join("tmp").display()))
        .args([
            "--storage-driver=vfs",
            "--events-backend=none",
            "--cgroup-manager=cgroupfs",
        ])
        .env("TMPDIR", dir.join("tmp"));
    c
}

#[test]
fn podman_runs_the_declared_user() {
    if !(require("podman") && skip_unless(is_root(), "podman with vfs storage needs root")) {
        return;
    }
    let tag = format!("p{}", std::process::id());
    let Some(p) = project(&tag) else { return };
    p.ok(&["build", "web", "-o", "web.tar"]);
    let archive = format!("docker-archive:{}", p.join("web.tar").display());
    let storage = p.join("podman");
    let run = |args: &[&str]| {
        podman(&storage)
            .args(["run", "--rm", "--network", "none"])
            .args(args)
            .output()
            .unwrap()
    };
    // Some sandboxes let podman load images but not start containers (no
    // rlimits may be set); that is the machine, not the image. There the
    // same image goes through buildah's chroot isolation, on the same
    // containers/storage stack, so the check still runs.
    let probe = run(&["--user", "0", &archive, "true"]);
    let id = if probe.status.success() {
        let id = run(&[&archive, "id"]);
        assert!(
            id.status.success(),
            "{}",
            String::from_utf8_lossy(&id.stderr)
        );
        String::from_utf8_lossy(&id.stdout).into_owned()
    } else {
        eprintln!(
            "podman cannot start a container here ({}); running the image with buildah \
             --isolation chroot instead",
            String::from_utf8_lossy(&probe.stderr).trim()
        );
        if !require("buildah") {
            return;
        }
        buildah_id(&storage, &archive)
    };
    assert!(
        id.starts_with("uid=9500(olympia) gid=9500(olympia)"),
        "{id}"
    );
}

/// `id` as uid:gid 9500:9500, run by buildah with chroot isolation in a
/// working container from `archive`; busybox's `id` names them from the
/// image's account files. The user is given by number because buildah's own
/// passwd reader stops at the comment line the base deliberately keeps
/// (glibc, runc and busybox skip it). The output goes through a file in a
/// mounted directory: buildah's chroot isolation now and then drops a
/// command's stdout.
fn buildah_id(storage: &std::path::Path, archive: &str) -> String {
    let buildah = || {
        let mut c = Command::new("buildah");
        c.arg(format!("--root={}", storage.join("root").display()))
            .arg(format!("--runroot={}", storage.join("runroot").display()))
            .arg("--storage-driver=vfs")
            .env("TMPDIR", storage.join("tmp"));
        c
    };
    let results = storage.join("results");
    std::fs::create_dir_all(&results).unwrap();
    std::fs::set_permissions(&results, std::fs::Permissions::from_mode(0o777)).unwrap();
    let from = buildah()
        .args(["from", "--quiet", "--pull-never", archive])
        .output()
        .unwrap();
    assert!(
        from.status.success(),
        "{}",
        String::from_utf8_lossy(&from.stderr)
    );
    let name = String::from_utf8_lossy(&from.stdout).trim().to_string();
    let run = buildah()
        .args([
            "run",
            "--isolation",
            "chroot",
            "--user",
            "9500:9500",
            "--volume",
        ])
        .arg(format!("{}:/results", results.display()))
        .args([&name, "--", "sh", "-c", "id > /results/id"])
        .output()
        .unwrap();
    let _ = buildah().args(["rm", &name]).output();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    std::fs::read_to_string(results.join("id")).unwrap()
}

#[test]
fn umoci_unpack_keeps_the_base_directory_owner() {
    if !(require("umoci") && skip_unless(is_root(), "umoci applies owners only as root")) {
        return;
    }
    let Some(p) = project("umoci") else { return };
    p.ok(&["build", "web", "-o", "out/"]);
    let bundle = p.join("bundle");
    let image = format!("{}:umoci", p.join("out").display());
    sh(Command::new("umoci")
        .args(["unpack", "--image", &image])
        .arg(&bundle));
    let rootfs = bundle.join("rootfs");
    let owner = |rel: &str| {
        let m = std::fs::symlink_metadata(rootfs.join(rel)).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    };
    assert_eq!(owner("srv/owned"), (1000, 1000, 0o750));
    assert_eq!(owner("srv/owned/hello"), (0, 0, 0o644));
    assert_eq!(owner("data/olympia"), (9500, 9500, 0o700));
    assert_eq!(
        std::fs::read_to_string(rootfs.join("etc/passwd")).unwrap(),
        format!("{PASSWD}\nolympia:x:9500:9500::/data/olympia:/bin/sh\n")
    );
}

#[test]
fn every_platform_gets_accounts_and_keeps_its_base_directories() {
    let p = Project::new();
    p.write("passwd", PASSWD);
    p.write("hello", "hello\n");
    p.write(
        "gantry.toml",
        r#"
[image.base]
base = "scratch"
platforms = ["linux/amd64", "linux/arm64"]
[[image.base.layer]]
files = [
  { src = "passwd", dst = "/etc/passwd" },
  { dir = "/srv/owned", mode = "0750", owner = "1000:1000" },
]

[image.top]
base = ":base"
user = "olympia"
tags = ["top:1"]
[image.top.accounts]
users = [{ name = "olympia", uid = 9500, gid = 9500, create_home = false }]
[[image.top.layer]]
name = "app"
files = [{ src = "hello", dst = "/srv/owned/hello" }]
"#,
    );
    p.ok(&["build", "top", "-o", "out/"]);
    let layout = Layout(p.join("out"));
    let (_, index) = tagged_manifest(&p.join("out"), "1");
    let children = index["manifests"].as_array().unwrap();
    assert_eq!(children.len(), 2);
    for child in children {
        let m = layout.manifest(child["digest"].as_str().unwrap());
        let layers = layout.layers(&m);
        assert_eq!(layers.len(), 3, "base, accounts, app");
        let accounts = members(&layers[1].2);
        assert!(String::from_utf8_lossy(&accounts["etc/passwd"].3)
            .ends_with("olympia:x:9500:9500::/home/olympia:\n"));
        let app = members(&layers[2].2);
        let owned = &app["srv/owned"];
        assert_eq!((owned.0, owned.1, owned.2), (0o750, 1000, 1000));
    }
}

/// A base in the in-process registry: `/etc/passwd` and a directory owned
/// by 1000, as gantry writes them to an OCI layout.
fn registry_base(reg: &common::fake_registry::FakeRegistry) -> (Project, String) {
    let b = Project::new();
    b.write("passwd", PASSWD);
    b.write(
        "gantry.toml",
        "[image.base]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\ntags = [\"base:1\"]\n\
         [[image.base.layer]]\nfiles = [{ src = \"passwd\", dst = \"/etc/passwd\" }, \
         { dir = \"/srv/owned\", mode = \"0750\", owner = \"1000:1000\" }]\n",
    );
    b.ok(&["build", "-o", "layout/"]);
    for e in std::fs::read_dir(b.join("layout/blobs/sha256")).unwrap() {
        reg.put_blob(&std::fs::read(e.unwrap().path()).unwrap());
    }
    let (digest, manifest) = tagged_manifest(&b.join("layout"), "1");
    let bytes = Layout(b.join("layout")).blob(&digest);
    reg.put_manifest(
        "test/base",
        "1",
        "application/vnd.oci.image.manifest.v1+json",
        &bytes,
    );
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    (b, layer)
}

#[test]
fn registry_base_is_fetched_only_when_needed_and_indexed_once() {
    use common::fake_registry::{Auth, FakeRegistry};
    let reg = FakeRegistry::start(Auth::None);
    let (_base, layer) = registry_base(&reg);
    let p = Project::new();
    std::fs::create_dir_all(p.join(".docker")).unwrap();
    p.write("hello", "hello\n");
    let file = |files: &str, extra: &str| {
        format!(
            "[image.app]\nbase = \"{}/test/base:1\"\n{extra}[[image.app.layer]]\nname = \"app\"\n\
             files = [{files}]\n",
            reg.host()
        )
    };
    let gantry = |args: &[&str]| {
        let out = p
            .cmd()
            .env("DOCKER_CONFIG", p.join(".docker"))
            .env("REGISTRY_AUTH_FILE", p.join("no-auth.json"))
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let fetched = || reg.count(&format!("/blobs/{layer}"));

    // No accounts, no named user, no implied parent and no SBOM (which
    // lists the base's packages): the base stays shallow.
    p.write(
        "gantry.toml",
        file(r#"{ src = "hello", dst = "/hello" }"#, ""),
    );
    gantry(&["build", "--sbom", "none"]);
    assert_eq!(fetched(), 0);

    // An implied parent: the base is indexed (one download), and its
    // directory keeps its owner.
    let owned = r#"{ src = "hello", dst = "/srv/owned/hello" }"#;
    p.write("gantry.toml", file(owned, ""));
    gantry(&["build", "-o", "out/"]);
    assert_eq!(fetched(), 1);
    let layout = Layout(p.join("out"));
    let (_, manifest) = tagged_manifest(&p.join("out"), "latest");
    let app = members(&layout.layers(&manifest)[1].2);
    assert_eq!((app["srv/owned"].1, app["srv/owned"].0), (1000, 0o750));

    // A named user with accounts, in a store that has the index and the
    // layer: nothing is downloaded again.
    let accounts = "user = \"olympia\"\n\
                    accounts = { users = [{ name = \"olympia\", uid = 9500, gid = 9500 }] }\n";
    p.write("gantry.toml", file(owned, accounts));
    gantry(&["build"]);
    assert_eq!(fetched(), 1);
}
