//! `gantry load` against the machine's Docker Engine: a changed layer
//! sends only the layers from it up, a fresh engine gets an image equal to
//! `docker load -i` of the tarball, and a missing or refusing engine is
//! an error naming it, with nothing loaded.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixListener;
use std::process::Command;
use std::sync::{Arc, Mutex};

use common::docker::{docker, docker_inspect, docker_run, DockerImages};
use common::{busybox, require_docker, Project};

/// Three layers: busybox (over a MiB) and a file naming the test, then
/// one small file each.
fn project(test: &str) -> Option<(Project, String)> {
    let busybox = busybox()?;
    let p = Project::new();
    let reference = format!("gantry-load/{test}:t{}", std::process::id());
    std::os::unix::fs::symlink(&busybox, p.join("busybox")).unwrap();
    // Images of different tests differ (and so do their IDs): removing one
    // by its ID must not take another test's tag with it.
    p.write("test.txt", &reference);
    p.write("mid.txt", "mid 1\n");
    p.write("top.txt", "top 1\n");
    p.write(
        "gantry.toml",
        format!(
            r#"
[image.app]
base = "scratch"
platform = "{platform}"
entrypoint = ["/bin/sh", "-c"]
tags = ["{reference}"]

[[image.app.layer]]
name = "busybox"
files = [
  {{ src = "busybox", dst = "/bin/busybox" }},
  {{ symlink = "/bin/sh", target = "busybox" }},
  {{ symlink = "/bin/cat", target = "busybox" }},
  {{ src = "test.txt", dst = "/test.txt" }},
]

[[image.app.layer]]
name = "mid"
files = [ {{ src = "mid.txt", dst = "/mid.txt" }} ]

[[image.app.layer]]
name = "top"
files = [ {{ src = "top.txt", dst = "/top.txt" }} ]
"#,
            platform = common::host::host_platform(),
        ),
    );
    Some((p, reference))
}

/// What a load said on stderr: (layers sent, layers in all, bytes sent).
fn sent(stderr: &str) -> (usize, usize, u64) {
    let sending = stderr
        .lines()
        .find_map(|l| l.strip_prefix("load: sending "))
        .unwrap_or_else(|| panic!("no `load: sending` line in {stderr}"));
    let mut words = sending.split_whitespace();
    let layers: usize = words.next().unwrap().parse().unwrap();
    assert_eq!(words.next(), Some("of"));
    let of: usize = words.next().unwrap().parse().unwrap();
    let bytes = stderr
        .lines()
        .find_map(|l| l.strip_prefix("load: sent "))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("no `load: sent` line in {stderr}"))
        .parse()
        .unwrap();
    (layers, of, bytes)
}

/// Runs `gantry load` of the image tagged `reference`, asserting success;
/// returns (stdout, stderr). The image loaded is tracked by its ID: a
/// later load moves the tag away from it.
fn load(p: &Project, images: &mut DockerImages, reference: &str) -> (String, String) {
    let out = p.run(&["load"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "gantry load failed:\n{stderr}");
    images.track(docker_inspect(reference)["Id"].as_str().unwrap());
    (String::from_utf8(out.stdout).unwrap(), stderr)
}

fn layer_size(p: &Project, layer: &str) -> u64 {
    // `gantry build` prints each layer's blob size on its progress line,
    // rounded; the report has it exactly.
    let report: serde_json::Value = serde_json::from_str(&p.ok(&["build", "--json"])).unwrap();
    let layers = report["images"][0]["platforms"][0]["layers"]
        .as_array()
        .unwrap_or_else(|| panic!("no layers in {report}"));
    layers
        .iter()
        .find(|l| l["name"] == layer)
        .unwrap_or_else(|| panic!("no layer {layer} in {report}"))["size"]
        .as_u64()
        .unwrap()
}

#[test]
fn a_changed_top_layer_sends_that_layer_alone() {
    if !require_docker() {
        return;
    }
    let Some((p, reference)) = project("top") else {
        return;
    };
    let mut images = DockerImages::new();
    images.track(&reference);
    let (stdout, stderr) = load(&p, &mut images, &reference);
    assert!(
        stdout.contains(&format!("Loaded image: {reference}\n")),
        "{stdout}"
    );
    assert!(
        stdout.lines().any(|l| l.starts_with("app sha256:")),
        "{stdout}"
    );
    let (layers, of, first) = sent(&stderr);
    assert_eq!((layers, of), (3, 3), "{stderr}");
    assert!(first > 1 << 20, "the first load sent only {first} bytes");

    p.write("top.txt", "top 2\n");
    let (stdout, stderr) = load(&p, &mut images, &reference);
    assert!(stdout.contains(&format!("Loaded image: {reference}\n")));
    let (layers, _, bytes) = sent(&stderr);
    assert_eq!(layers, 1, "{stderr}");
    // The top layer, the config and the index files, in tar framing.
    let top = layer_size(&p, "top");
    assert!(
        bytes > top && bytes < top + 16 * 1024,
        "sent {bytes} bytes for a top layer of {top}"
    );
    assert_eq!(
        docker_run(&[], &reference, &["cat /top.txt /mid.txt"]),
        "top 2\nmid 1\n"
    );

    // Nothing changed: nothing is sent, and the tag is still reported.
    let (stdout, stderr) = load(&p, &mut images, &reference);
    assert!(!stderr.contains("load: sending"), "{stderr}");
    assert!(stdout.contains(&format!("Loaded image: {reference}\n")));
}

#[test]
fn a_changed_middle_layer_sends_it_and_every_layer_above() {
    if !require_docker() {
        return;
    }
    let Some((p, reference)) = project("mid") else {
        return;
    };
    let mut images = DockerImages::new();
    images.track(&reference);
    load(&p, &mut images, &reference);
    p.write("mid.txt", "mid 2\n");
    let (_, stderr) = load(&p, &mut images, &reference);
    let (layers, of, bytes) = sent(&stderr);
    assert_eq!((layers, of), (2, 3), "{stderr}");
    assert!(bytes < 1 << 20, "busybox was sent again: {bytes} bytes");
    assert_eq!(
        docker_run(&[], &reference, &["cat /top.txt /mid.txt"]),
        "top 1\nmid 2\n"
    );
    let layers = docker_inspect(&reference)["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .len();
    assert_eq!(layers, 3);
}

#[test]
fn a_fresh_load_gives_the_image_docker_load_of_the_tarball_gives() {
    if !require_docker() {
        return;
    }
    let Some((p, reference)) = project("fresh") else {
        return;
    };
    let mut images = DockerImages::new();
    images.track(&reference);
    let _ = Command::new("docker")
        .args(["image", "rm", "--force", &reference])
        .output();
    let (_, stderr) = load(&p, &mut images, &reference);
    assert_eq!(sent(&stderr).0, 3, "{stderr}");
    let by_gantry = docker_inspect(&reference);

    p.ok(&["build", "-o", "app.tar"]);
    docker(&["image", "rm", "--force", &reference]);
    common::docker::docker_load(&mut images, &p.join("app.tar"), &reference);
    let by_docker = docker_inspect(&reference);
    assert_eq!(by_gantry["Id"], by_docker["Id"]);
    assert_eq!(by_gantry["RootFS"], by_docker["RootFS"]);
}

#[test]
fn an_image_on_a_base_loaded_before_sends_only_its_own_layers() {
    if !require_docker() {
        return;
    }
    let Some((p, reference)) = project("onbase") else {
        return;
    };
    // The three-layer image becomes the base of one more layer.
    let app = format!("{reference}-app");
    let text = std::fs::read_to_string(p.join("gantry.toml")).unwrap();
    p.write("app.txt", "app 1\n");
    p.write(
        "gantry.toml",
        format!(
            "{}\n[image.on]\nbase = \":app\"\ntags = [\"{app}\"]\n\n\
             [[image.on.layer]]\nname = \"app\"\n\
             files = [ {{ src = \"app.txt\", dst = \"/app.txt\" }} ]\n",
            text.trim_end()
        ),
    );
    let mut images = DockerImages::new();
    images.track(&reference);
    images.track(&app);
    let out = p.run(&["load", "app"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    images.track(docker_inspect(&reference)["Id"].as_str().unwrap());
    let out = p.run(&["load", "on"]);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(out.status.success(), "{stderr}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    // Only the image named is loaded; its base's layers are not sent.
    assert!(
        stdout.contains(&format!("Loaded image: {app}\n")),
        "{stdout}"
    );
    assert!(
        !stdout.contains(&format!("Loaded image: {reference}\n")),
        "{stdout}"
    );
    assert_eq!(sent(&stderr).0, 1, "{stderr}");
    assert_eq!(
        docker_run(&[], &app, &["cat /app.txt /top.txt"]),
        "app 1\ntop 1\n"
    );
}

#[test]
fn no_engine_at_docker_host_is_an_error_naming_it() {
    let Some((p, reference)) = project("none") else {
        return;
    };
    let socket = p.join("no-engine.sock");
    let out = p
        .cmd()
        .env_remove("DOCKER_CONTEXT")
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .arg("load")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!("DOCKER_HOST=unix://{}", socket.display()))
            && stderr.contains("no engine answers at"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Found missing before the build: nothing was built, nor loaded.
    assert!(!stderr.contains("layer busybox"), "{stderr}");
    if require_docker() {
        let inspect = Command::new("docker")
            .args(["image", "inspect", &reference])
            .output()
            .unwrap();
        assert!(!inspect.status.success(), "{reference} was loaded");
    }
}

/// What a fake engine answers: given the request path and the archives
/// it was sent so far (the last one being this request's, for a load).
type Answer = dyn Fn(&str, &[Vec<u8>]) -> (&'static str, String) + Send;

/// A fake engine on a Unix socket: `/_ping`, `/version` and `/info` as an
/// engine with the classic store, everything else from `answer`, for as
/// long as the test runs. Returns the archives it is sent.
fn fake_engine(socket: &std::path::Path, answer: Box<Answer>) -> Arc<Mutex<Vec<Vec<u8>>>> {
    fake_engine_with(socket, r#"{"DriverStatus":[]}"#, answer)
}

/// [`fake_engine`] answering `/info` with `info`.
fn fake_engine_with(
    socket: &std::path::Path,
    info: &'static str,
    answer: Box<Answer>,
) -> Arc<Mutex<Vec<Vec<u8>>>> {
    let listener = UnixListener::bind(socket).unwrap();
    let sent = Arc::new(Mutex::new(Vec::new()));
    let archives = sent.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let mut c = conn.unwrap();
            let mut r = BufReader::new(c.try_clone().unwrap());
            let mut first = String::new();
            r.read_line(&mut first).unwrap();
            let mut chunked = false;
            loop {
                let mut l = String::new();
                r.read_line(&mut l).unwrap();
                chunked |= l.to_ascii_lowercase().contains("chunked");
                if l.trim().is_empty() {
                    break;
                }
            }
            let path = first.split_whitespace().nth(1).unwrap_or("").to_string();
            if chunked {
                archives.lock().unwrap().push(read_chunked(&mut r));
            }
            let (status, body) = match path.as_str() {
                "/_ping" => ("200 OK", "OK".to_string()),
                "/version" => (
                    "200 OK",
                    r#"{"Version":"99.0-fake","Components":[]}"#.into(),
                ),
                "/info" => ("200 OK", info.into()),
                _ => answer(&path, &archives.lock().unwrap()),
            };
            let _ = write!(
                c,
                "HTTP/1.1 {status}\r\nContent-Type: application/json\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    sent
}

fn read_chunked(r: &mut impl BufRead) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let mut size = String::new();
        r.read_line(&mut size).unwrap();
        let n = usize::from_str_radix(size.trim(), 16).unwrap();
        let mut chunk = vec![0u8; n + 2];
        r.read_exact(&mut chunk).unwrap();
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

/// The blob files of a docker tarball: layers, configs and manifests.
fn blob_files(archive: &[u8]) -> usize {
    let mut tar = tar::Archive::new(archive);
    tar.entries()
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            e.header().entry_type().is_file() && e.path().unwrap().starts_with("blobs/sha256/")
        })
        .count()
}

fn load_from(p: &Project, socket: &std::path::Path) -> std::process::Output {
    p.cmd()
        .env_remove("DOCKER_CONTEXT")
        .env("DOCKER_HOST", format!("unix://{}", socket.display()))
        .arg("load")
        .output()
        .unwrap()
}

#[test]
fn an_engine_refusing_the_archive_is_an_error_with_its_message() {
    let Some((p, _)) = project("refused") else {
        return;
    };
    let socket = p.join("engine.sock");
    let archives = fake_engine(
        &socket,
        Box::new(|path, _| {
            if path.starts_with("/images/load") {
                (
                    "200 OK",
                    r#"{"errorDetail":{"message":"no space left on device"},"error":"no space left on device"}"#
                        .into(),
                )
            } else {
                ("404 Not Found", r#"{"message":"No such image"}"#.into())
            }
        }),
    );
    let out = load_from(&p, &socket);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("refused the archive: no space left on device")
            && stderr.contains("Docker Engine 99.0-fake"),
        "{stderr}"
    );
    assert!(!String::from_utf8_lossy(&out.stdout).contains("Loaded image"));
    assert_eq!(archives.lock().unwrap().len(), 1);
}

#[test]
fn a_refused_smaller_archive_is_followed_by_the_full_one() {
    let Some((p, reference)) = project("fallback") else {
        return;
    };
    let report: serde_json::Value = serde_json::from_str(&p.ok(&["build", "--json"])).unwrap();
    let platform = &report["images"][0]["platforms"][0];
    let config = platform["config_digest"].as_str().unwrap().to_string();
    let diff_ids: Vec<String> = platform["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["diff_id"].as_str().unwrap().to_string())
        .collect();
    let socket = p.join("engine.sock");
    // The tag as the build file has it, maybe qualified (`docker.io/...`).
    let tag_path = format!("{reference}/json");
    let loaded = format!(r#"{{"stream":"Loaded image: {reference}\n"}}"#);
    let archives = fake_engine(
        &socket,
        Box::new(move |path, archives| {
            if path.starts_with("/images/load") {
                return if archives.len() == 1 {
                    // As an engine whose chain went away in between.
                    ("200 OK", r#"{"error":"open /var/lib/docker/tmp/x/blobs/sha256/y: no such file or directory"}"#.into())
                } else {
                    ("200 OK", loaded.clone())
                };
            }
            if !path.ends_with(&tag_path) {
                return ("404 Not Found", r#"{"message":"No such image"}"#.into());
            }
            // Before the full load: an older image sharing the two lower layers.
            let (id, layers) = if archives.len() < 2 {
                (
                    "sha256:0000000000000000000000000000000000000000000000000000000000000000"
                        .to_string(),
                    &diff_ids[..2],
                )
            } else {
                (config.clone(), &diff_ids[..])
            };
            (
                "200 OK",
                serde_json::json!({"Id": id, "RootFS": {"Type": "layers", "Layers": layers}})
                    .to_string(),
            )
        }),
    );
    let out = load_from(&p, &socket);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("sending every layer"), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("Loaded image: {reference}\n")),
        "{stderr}"
    );
    let archives = archives.lock().unwrap();
    let layers: Vec<usize> = archives.iter().map(|a| blob_files(a)).collect();
    // Each archive also holds a config and a manifest.
    assert_eq!(layers, [1 + 2, 3 + 2]);
}

#[test]
fn the_containerd_image_store_is_sent_the_full_archive() {
    let Some((p, reference)) = project("containerd") else {
        return;
    };
    let socket = p.join("engine.sock");
    let loaded = format!(r#"{{"stream":"Loaded image: {reference}\n"}}"#);
    let tag_path = format!("{reference}/json");
    let report: serde_json::Value = serde_json::from_str(&p.ok(&["build", "--json"])).unwrap();
    let lower: Vec<serde_json::Value> = report["images"][0]["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|l| l["diff_id"].clone())
        .collect();
    // Chains a classic store would skip.
    let held =
        serde_json::json!({"Id": "sha256:00", "RootFS": {"Type": "layers", "Layers": lower}});
    let archives = fake_engine_with(
        &socket,
        r#"{"Driver":"overlayfs","DriverStatus":[["driver-type","io.containerd.snapshotter.v1"]]}"#,
        Box::new(move |path, _| {
            if path.starts_with("/images/load") {
                ("200 OK", loaded.clone())
            } else if path.ends_with(&tag_path) {
                ("200 OK", held.to_string())
            } else {
                ("404 Not Found", r#"{"message":"No such image"}"#.into())
            }
        }),
    );
    let out = load_from(&p, &socket);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("load: sending 3 of 3 layers"), "{stderr}");
    let archives = archives.lock().unwrap();
    assert_eq!(archives.len(), 1);
    assert_eq!(blob_files(&archives[0]), 3 + 2);
}

/// `podman system service` on a socket of its own, with storage of its own
/// (vfs), stopped and removed with the test.
struct PodmanService {
    dir: tempfile::TempDir,
    child: std::process::Child,
}

impl PodmanService {
    fn start() -> Option<PodmanService> {
        if !common::require("podman") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        for d in ["root", "runroot", "tmp"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        let path = |rel: &str| dir.path().join(rel).display().to_string();
        std::fs::write(
            dir.path().join("storage.conf"),
            format!(
                "[storage]\ndriver = \"vfs\"\ngraphroot = \"{}\"\nrunroot = \"{}\"\n",
                path("root"),
                path("runroot")
            ),
        )
        .unwrap();
        let child = Command::new("podman")
            .arg(format!("--root={}", path("root")))
            .arg(format!("--runroot={}", path("runroot")))
            .arg(format!("--tmpdir={}", path("tmp")))
            .args([
                "--storage-driver=vfs",
                "--events-backend=none",
                "--cgroup-manager=cgroupfs",
                "system",
                "service",
                "--time=0",
            ])
            .arg(format!("unix://{}", path("podman.sock")))
            .env("CONTAINERS_STORAGE_CONF", path("storage.conf"))
            .env("TMPDIR", path("tmp"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let service = PodmanService { dir, child };
        for _ in 0..200 {
            if std::os::unix::net::UnixStream::connect(service.socket()).is_ok() {
                return Some(service);
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        panic!("podman system service did not listen within 10 s");
    }

    fn socket(&self) -> std::path::PathBuf {
        self.dir.path().join("podman.sock")
    }

    /// `GET path` on the service, as JSON.
    fn get(&self, path: &str) -> serde_json::Value {
        let mut s = std::os::unix::net::UnixStream::connect(self.socket()).unwrap();
        write!(
            s,
            "GET {path} HTTP/1.1\r\nHost: d\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        let (_, body) = answer.split_once("\r\n\r\n").unwrap();
        serde_json::from_str(body.trim()).unwrap_or(serde_json::Value::Null)
    }
}

impl Drop for PodmanService {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn podman_s_service_takes_the_smaller_archive_too() {
    let Some((p, reference)) = project("podman") else {
        return;
    };
    let Some(podman) = PodmanService::start() else {
        return;
    };
    let run = |p: &Project| {
        let out = load_from(p, &podman.socket());
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert!(out.status.success(), "{stderr}");
        (String::from_utf8(out.stdout).unwrap(), stderr)
    };
    let (stdout, stderr) = run(&p);
    assert_eq!(sent(&stderr).0, 3, "{stderr}");
    // podman names what it loaded fully qualified.
    assert!(
        stdout.contains(&format!("Loaded image: docker.io/{reference}\n")),
        "{stdout}"
    );
    p.write("top.txt", "top 2\n");
    let (_, stderr) = run(&p);
    assert_eq!(sent(&stderr).0, 1, "{stderr}");
    assert!(!stderr.contains("sending every layer"), "{stderr}");
    let report: serde_json::Value = serde_json::from_str(&p.ok(&["build", "--json"])).unwrap();
    let platform = &report["images"][0]["platforms"][0];
    let inspect = podman.get(&format!("/images/{reference}/json"));
    assert_eq!(inspect["Id"], platform["config_digest"]);
    let diff_ids: Vec<&serde_json::Value> = platform["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| &l["diff_id"])
        .collect();
    let layers: Vec<&serde_json::Value> = inspect["RootFS"]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(layers, diff_ids);
}
