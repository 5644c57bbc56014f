//! Test images built by hand (layer tars, config, manifest) and helpers for
//! tests that run real peer tools.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Output};

use serde_json::Value;

use crate::config::{ContainerConfig, History, ImageConfig, RootFs};
use crate::digest::Digest;
use crate::image::{Image, LayerDesc};
use crate::media;
use crate::store::Store;

pub(crate) fn temp_store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path().join("store")).unwrap();
    (dir, store)
}

/// A small layer: every parent directory first, then the files, sorted,
/// with fixed metadata. `mode` applies to files.
pub(crate) fn layer_tar(files: &[(&str, &[u8], u32)]) -> Vec<u8> {
    let mut entries: BTreeMap<String, Option<(&[u8], u32)>> = BTreeMap::new();
    for (path, data, mode) in files {
        let mut prefix = String::new();
        for part in path.split('/').collect::<Vec<_>>().split_last().unwrap().1 {
            prefix.push_str(part);
            prefix.push('/');
            entries.entry(prefix.clone()).or_insert(None);
        }
        entries.insert(path.to_string(), Some((data, *mode)));
    }
    let mut b = tar::Builder::new(Vec::new());
    for (name, file) in entries {
        let mut h = tar::Header::new_ustar();
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        match file {
            None => {
                h.set_entry_type(tar::EntryType::Directory);
                h.set_mode(0o755);
                h.set_size(0);
                b.append_data(&mut h, &name, std::io::empty()).unwrap();
            }
            Some((data, mode)) => {
                h.set_entry_type(tar::EntryType::Regular);
                h.set_mode(mode);
                h.set_size(data.len() as u64);
                b.append_data(&mut h, &name, data).unwrap();
            }
        }
    }
    b.into_inner().unwrap()
}

pub(crate) fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

/// The host's architecture in OCI terms, so that images can also be run.
pub(crate) fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

pub(crate) fn test_config(diff_ids: &[Digest]) -> ImageConfig {
    let mut labels = BTreeMap::new();
    labels.insert("org.example.team".to_string(), "build".to_string());
    let mut ports = BTreeMap::new();
    ports.insert("8080/tcp".to_string(), Value::Object(Default::default()));
    let mut volumes = BTreeMap::new();
    volumes.insert("/data".to_string(), Value::Object(Default::default()));
    let mut extra = BTreeMap::new();
    extra.insert(
        "Healthcheck".to_string(),
        serde_json::json!({"Test": ["CMD", "true"]}),
    );
    let mut history: Vec<History> = diff_ids
        .iter()
        .enumerate()
        .map(|(i, _)| History {
            created: Some("1970-01-01T00:00:00Z".into()),
            created_by: Some(format!("gantry test layer {i}")),
            ..Default::default()
        })
        .collect();
    history.push(History {
        created: Some("1970-01-01T00:00:00Z".into()),
        created_by: Some("gantry test config".into()),
        comment: Some("metadata only".into()),
        empty_layer: true,
        ..Default::default()
    });
    ImageConfig {
        created: Some("1970-01-01T00:00:00Z".into()),
        architecture: host_arch().into(),
        os: "linux".into(),
        config: Some(ContainerConfig {
            user: Some("0:0".into()),
            exposed_ports: Some(ports),
            env: Some(vec![
                "PATH=/usr/local/bin:/usr/bin:/bin".into(),
                "GREETING=hello world".into(),
            ]),
            entrypoint: Some(vec!["/bin/busybox".into()]),
            cmd: Some(vec!["cat".into(), "/etc/greeting".into()]),
            volumes: Some(volumes),
            working_dir: Some("/".into()),
            labels: Some(labels),
            stop_signal: Some("SIGTERM".into()),
            extra,
        }),
        rootfs: RootFs {
            kind: "layers".into(),
            diff_ids: diff_ids.iter().map(|d| d.to_string()).collect(),
        },
        history,
        ..Default::default()
    }
}

/// Puts `layers` (uncompressed tars) into the store, gzipped if asked, and
/// assembles an image around them with a manifest written the way a build
/// writes one.
pub(crate) fn make_image(store: &Store, tags: &[&str], layers: &[Vec<u8>], gzipped: bool) -> Image {
    let mut descs = Vec::new();
    for tar in layers {
        let diff_id = Digest::of(tar);
        let (blob, media_type) = if gzipped {
            (gzip(tar), media::OCI_LAYER_GZIP)
        } else {
            (tar.clone(), media::OCI_LAYER_TAR)
        };
        let (digest, size) = store.put(&blob).unwrap();
        descs.push(LayerDesc {
            media_type: media_type.to_string(),
            digest,
            size,
            diff_id,
            annotations: Default::default(),
            location: Default::default(),
        });
    }
    let diff_ids: Vec<Digest> = descs.iter().map(|l| l.diff_id).collect();
    let config = test_config(&diff_ids);
    let config_bytes = config.to_canonical_json();
    let mut annotations = BTreeMap::new();
    annotations.insert(
        "org.opencontainers.image.created".to_string(),
        "1970-01-01T00:00:00Z".to_string(),
    );
    let image = Image::with_oci_manifest(
        tags.first().map_or("test", |t| t).to_string(),
        config,
        config_bytes,
        descs,
        annotations,
        tags.iter().map(|t| t.to_string()).collect(),
    );
    store.put(&image.config_bytes).unwrap();
    store.put(&image.manifest_bytes).unwrap();
    image
}

/// The usual two-layer test image: a greeting file, then a script.
pub(crate) fn sample_image(store: &Store, tags: &[&str], gzipped: bool) -> Image {
    let first = layer_tar(&[("etc/greeting", b"hello from gantry\n", 0o644)]);
    let second = layer_tar(&[("usr/bin/hello", b"#!/bin/sh\necho hello\n", 0o755)]);
    make_image(store, tags, &[first, second], gzipped)
}

/// An image a container engine can run (its entrypoint is a static
/// busybox), or `None` when the host has no static busybox.
pub(crate) fn runnable_image(store: &Store, tags: &[&str]) -> Option<Image> {
    let Ok(busybox) = std::fs::read("/bin/busybox") else {
        eprintln!("not running the image: /bin/busybox is missing");
        return None;
    };
    let first = layer_tar(&[("etc/greeting", b"hello from gantry\n", 0o644)]);
    let second = layer_tar(&[("bin/busybox", &busybox, 0o755)]);
    Some(make_image(store, tags, &[first, second], true))
}

/// Whether a peer tool can be used. Missing tools skip the test with a
/// printed reason, except under CI, where they fail it.
pub(crate) fn peer(tool: &str) -> bool {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false);
    let usable = found
        && match tool {
            "docker" => Command::new("docker")
                .args(["info", "--format", "{{.ServerVersion}}"])
                .output()
                .is_ok_and(|o| o.status.success()),
            _ => true,
        };
    if !usable {
        if std::env::var_os("CI").is_some() {
            panic!("{tool} is required when CI is set, but it is not usable here");
        }
        eprintln!("skipping: {tool} is not installed or not usable");
    }
    usable
}

/// Runs a command and returns its output, failing the test with the
/// command's stderr if it does not succeed.
pub(crate) fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}):\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A name no other concurrently running test (or earlier run) uses, for
/// images loaded into shared engines.
pub(crate) fn unique_name(what: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("gantry-test-{what}-{}-{nanos}", std::process::id())
}
