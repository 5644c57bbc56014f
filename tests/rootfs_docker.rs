//! The merged view of an image's layers against the file system Docker
//! itself makes of them: an image built by Docker on a static busybox, with
//! files removed in later layers (whiteouts) and hard links, is indexed from
//! `docker save` and compared path by path with `docker export` of a
//! container of it.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::{Cursor, Read};
use std::process::Command;

use common::{busybox, require_docker};
use gantry::media::Compression;
use gantry::rootfs::{uncompressed, Kind, LayerIndex, RootFs};
use gantry::Digest;

const DOCKERFILE: &str = r#"FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "mkdir", "-p", "/usr/bin", "/etc", "/srv/cache"]
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox --install -s /bin && echo root:x:0:0:root:/root:/bin/sh > /etc/passwd && touch /srv/cache/a /srv/cache/b && ln /bin/busybox /usr/bin/env"]
RUN ["/bin/sh", "-c", "rm /bin/ls && echo olympia:x:9500:9500::/data/olympia:/bin/sh >> /etc/passwd && mkdir -p /data/olympia && chown 9500:9500 /data/olympia && chmod 700 /data/olympia && rm -rf /srv/cache && mkdir /srv/cache && touch /srv/cache/new"]
"#;

/// Paths a container has that are not the image's (mount points and files
/// the engine writes).
fn engine_made(path: &str) -> bool {
    matches!(
        path,
        ".dockerenv" | "etc/hostname" | "etc/hosts" | "etc/resolv.conf" | "etc/mtab"
    ) || ["dev", "proc", "sys"]
        .iter()
        .any(|m| path == *m || path.starts_with(&format!("{m}/")))
}

fn docker(args: &[&str]) -> Vec<u8> {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn members(archive: &[u8]) -> HashMap<String, Vec<u8>> {
    let mut out = HashMap::new();
    let mut a = tar::Archive::new(archive);
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        let name = e.path().unwrap().to_string_lossy().into_owned();
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        out.insert(name, data);
    }
    out
}

/// What `docker export` shows of one path: kind, mode, uid, gid.
type Seen = (&'static str, u32, u64, u64);

fn kind_name(k: Kind) -> &'static str {
    match k {
        Kind::File | Kind::Hardlink => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        _ => "other",
    }
}

fn exported(archive: &[u8]) -> BTreeMap<String, Seen> {
    let mut out = BTreeMap::new();
    let mut a = tar::Archive::new(archive);
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        let path = e.path().unwrap().to_string_lossy().into_owned();
        let path = path
            .trim_end_matches('/')
            .trim_start_matches("./")
            .to_string();
        if path.is_empty() || engine_made(&path) {
            continue;
        }
        let kind = match h.entry_type() {
            tar::EntryType::Regular | tar::EntryType::Link => "file",
            tar::EntryType::Directory => "dir",
            tar::EntryType::Symlink => "symlink",
            _ => "other",
        };
        let seen = (
            kind,
            h.mode().unwrap() & 0o7777,
            h.uid().unwrap(),
            h.gid().unwrap(),
        );
        out.insert(path, seen);
    }
    out
}

#[test]
fn merged_layers_of_a_docker_built_busybox_image_match_docker_export() {
    let Some(busybox) = busybox() else { return };
    if !require_docker() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    fs::copy(&busybox, dir.path().join("busybox")).unwrap();
    fs::write(dir.path().join("Dockerfile"), DOCKERFILE).unwrap();
    let tag = format!("gantry-test-rootfs:{}", std::process::id());
    let context = dir.path().to_str().unwrap();
    docker(&["build", "-q", "-t", &tag, context]);
    let saved = docker(&["save", &tag]);
    let cid = String::from_utf8(docker(&["create", &tag, "/bin/true"])).unwrap();
    let export = docker(&["export", cid.trim()]);
    docker(&["rm", cid.trim()]);
    docker(&["rmi", &tag]);

    let files = members(&saved);
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let config_name = manifest[0]["Config"].as_str().unwrap();
    let config: serde_json::Value = serde_json::from_slice(&files[config_name]).unwrap();
    // An engine on the containerd image store saves layers as it keeps
    // them, which may be compressed.
    let layers: Vec<Vec<u8>> = manifest[0]["Layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let blob = &files[l.as_str().unwrap()];
            let compression = match blob.get(..4) {
                Some([0x1f, 0x8b, ..]) => Compression::Gzip,
                Some([0x28, 0xb5, 0x2f, 0xfd]) => Compression::Zstd,
                _ => Compression::None,
            };
            let mut plain = Vec::new();
            uncompressed(compression, &blob[..])
                .unwrap()
                .read_to_end(&mut plain)
                .unwrap();
            plain
        })
        .collect();
    let indexes: Vec<LayerIndex> = layers
        .iter()
        .zip(config["rootfs"]["diff_ids"].as_array().unwrap())
        .map(|(bytes, d)| {
            let diff_id: Digest = d.as_str().unwrap().parse().unwrap();
            LayerIndex::build(&bytes[..], &diff_id).unwrap()
        })
        .collect();
    let fs = RootFs::new(&indexes);

    let ours: BTreeMap<String, Seen> = fs
        .iter()
        .filter(|n| !n.entry.path.is_empty())
        .map(|n| {
            let e = &n.entry;
            (e.path.clone(), (kind_name(e.kind), e.mode, e.uid, e.gid))
        })
        .collect();
    let theirs = exported(&export);
    assert_eq!(ours, theirs);

    // The whiteouts Docker wrote took effect, the hard link kept its file.
    assert!(fs.lookup("/bin/ls").is_none());
    assert!(fs.lookup("/srv/cache/a").is_none());
    assert_eq!(fs.lookup("/data/olympia").unwrap().entry.uid, 9500);
    let open = |i: usize| -> gantry::Result<Box<dyn Read>> {
        Ok(Box::new(Cursor::new(layers[i].clone())))
    };
    let passwd = fs.read_file("/etc/passwd", 4096, open).unwrap().unwrap();
    assert_eq!(
        passwd,
        b"root:x:0:0:root:/root:/bin/sh\nolympia:x:9500:9500::/data/olympia:/bin/sh\n"
    );
    let env = fs
        .read_file("/usr/bin/env", 64 << 20, open)
        .unwrap()
        .unwrap();
    assert!(env == fs::read(&busybox).unwrap());
    // Through the symlink `busybox --install -s` made.
    let sh = fs.read_file("/bin/sh", 64 << 20, open).unwrap().unwrap();
    assert!(sh == env);
}
