//! Tests of `write`, kept apart so the module reads as one concept.

use std::process::Command;

use super::*;
use crate::layout::read::{self, BlobReader};
use crate::layout::testutil::{
    layer_tar, make_image, peer, run, runnable_image, sample_image, temp_store, unique_name,
};
use crate::media;

const TAGS: [&str; 2] = ["example.com/worker:dev", "example.com/worker:1.0"];

fn assert_same_image(got: &Image, want: &Image) {
    assert_eq!(got.manifest_digest, want.manifest_digest);
    assert_eq!(got.manifest_bytes, want.manifest_bytes);
    assert_eq!(got.manifest_media_type, want.manifest_media_type);
    assert_eq!(got.config_digest, want.config_digest);
    assert_eq!(got.config_bytes, want.config_bytes);
    assert_eq!(got.config, want.config);
    assert_eq!(got.layers, want.layers);
    assert_eq!(got.annotations, want.annotations);
}

fn assert_blobs_readable(blobs: &dyn BlobReader, image: &Image) {
    for l in &image.layers {
        let mut bytes = Vec::new();
        blobs
            .open_blob(&l.digest)
            .unwrap()
            .read_to_end(&mut bytes)
            .unwrap();
        assert_eq!(Digest::of(&bytes), l.digest);
    }
}

/// Writes the image in `format` and reads it back under every name.
fn round_trip(format: Format) {
    let (tmp, store) = temp_store();
    let image = sample_image(&store, &TAGS, true);
    let dest = tmp.path().join("out");
    write_archive_file(&[&Artifact::Image(image.clone())], &store, format, &dest).unwrap();
    for select in [
        None,
        Some("dev"),
        Some("1.0"),
        Some("example.com/worker:1.0"),
    ] {
        let (got, blobs) = read::open(&dest, select).unwrap();
        assert_same_image(&got, &image);
        assert_eq!(
            got.tags,
            TAGS.iter().map(|t| t.to_string()).collect::<Vec<_>>()
        );
        assert_blobs_readable(blobs.as_ref(), &image);
    }
    let err = read::open(&dest, Some("nope")).err().unwrap().to_string();
    assert!(err.contains("example.com/worker:dev"), "{err}");

    let (_other, fresh) = temp_store();
    let source = crate::buildfile::LocalSource::OciLayout {
        path: dest.clone(),
        tag: Some("dev".into()),
    };
    let imported = read::import(&source, &fresh).unwrap();
    assert_same_image(&imported, &image);
    for d in image.layers.iter().map(|l| l.digest) {
        assert_eq!(fresh.read(&d).unwrap(), store.read(&d).unwrap());
    }
    assert!(fresh.has(&image.manifest_digest) && fresh.has(&image.config_digest));
}

#[test]
fn oci_dir_round_trips() {
    round_trip(Format::Oci);
}

#[test]
fn oci_archive_round_trips() {
    round_trip(Format::OciArchive);
}

#[test]
fn docker_archive_round_trips() {
    round_trip(Format::Docker);
}

#[test]
fn untagged_images_get_one_unnamed_descriptor() {
    let (tmp, store) = temp_store();
    let image = sample_image(&store, &[], false);
    let dest = tmp.path().join("out.tar");
    write_archive_file(
        &[&Artifact::Image(image.clone())],
        &store,
        Format::Docker,
        &dest,
    )
    .unwrap();
    let (got, _) = read::open(&dest, None).unwrap();
    assert_same_image(&got, &image);
    assert!(got.tags.is_empty());
    let manifest_json = member(&dest, "manifest.json");
    assert!(
        String::from_utf8(manifest_json)
            .unwrap()
            .contains(r#""RepoTags":[]"#),
        "an untagged image has empty RepoTags"
    );
    let index: serde_json::Value = serde_json::from_slice(&member(&dest, "index.json")).unwrap();
    let manifests = index["manifests"].as_array().unwrap();
    assert_eq!(manifests.len(), 1);
    assert!(manifests[0].get("annotations").is_none());
}

#[test]
fn archives_are_deterministic() {
    for format in [Format::Docker, Format::OciArchive] {
        let (_t1, s1) = temp_store();
        let (_t2, s2) = temp_store();
        let a = sample_image(&s1, &TAGS, true);
        let b = sample_image(&s2, &TAGS, true);
        let out1 = write_archive(&[&Artifact::Image(a.clone())], &s1, format, Vec::new()).unwrap();
        let out2 = write_archive(&[&Artifact::Image(b.clone())], &s2, format, Vec::new()).unwrap();
        assert_eq!(Digest::of(&out1), Digest::of(&out2), "{format:?}");
    }
}

#[test]
fn oci_dirs_are_deterministic() {
    let (tmp, store) = temp_store();
    let image = sample_image(&store, &TAGS, true);
    let (d1, d2) = (tmp.path().join("a"), tmp.path().join("b"));
    write_oci_dir(&[&Artifact::Image(image.clone())], &store, &d1).unwrap();
    write_oci_dir(&[&Artifact::Image(image.clone())], &store, &d2).unwrap();
    let files = |root: &Path| {
        let mut out = Vec::new();
        for e in walkdir::WalkDir::new(root).sort_by_file_name() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
            let bytes = e.file_type().is_file().then(|| fs::read(e.path()).unwrap());
            out.push((rel, bytes));
        }
        out
    };
    assert_eq!(files(&d1), files(&d2));
    assert_eq!(fs::read(d1.join("oci-layout")).unwrap(), OCI_LAYOUT);
}

fn member(archive: &Path, name: &str) -> Vec<u8> {
    let mut a = tar::Archive::new(File::open(archive).unwrap());
    for e in a.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            let mut out = Vec::new();
            e.read_to_end(&mut out).unwrap();
            return out;
        }
    }
    panic!("{name} not in {}", archive.display());
}

#[test]
fn docker_archive_has_the_loadable_shape() {
    let (_t, store) = temp_store();
    let image = sample_image(&store, &["example.com/worker:dev", "busybox"], true);
    let other = sample_image(&store, &["example.com/other:2"], false);
    let bytes = write_archive(
        &[
            &Artifact::Image(image.clone()),
            &Artifact::Image(other.clone()),
        ],
        &store,
        Format::Docker,
        Vec::new(),
    )
    .unwrap();
    assert_eq!(bytes.len() % 512, 0);

    let mut names = Vec::new();
    let mut a = tar::Archive::new(&bytes[..]);
    for e in a.entries().unwrap() {
        let e = e.unwrap();
        let h = e.header();
        assert!(h.as_ustar().is_some(), "ustar headers only");
        let name = String::from_utf8(e.path_bytes().into_owned()).unwrap();
        let dir = name.ends_with('/');
        assert_eq!(h.mode().unwrap(), if dir { 0o755 } else { 0o644 }, "{name}");
        assert_eq!(h.entry_type().is_dir(), dir, "{name}");
        assert_eq!((h.uid().unwrap(), h.gid().unwrap()), (0, 0));
        assert_eq!(h.mtime().unwrap(), 0);
        assert_eq!(h.username_bytes(), Some(&b""[..]));
        assert_eq!(h.groupname_bytes(), Some(&b""[..]));
        names.push(name);
    }
    let mut blobs: Vec<String> = [image.manifest_digest, image.config_digest]
        .into_iter()
        .chain([other.manifest_digest, other.config_digest])
        .chain(image.layers.iter().chain(&other.layers).map(|l| l.digest))
        .map(|d| format!("blobs/sha256/{}", d.hex()))
        .collect();
    blobs.sort();
    blobs.dedup();
    let mut want = vec!["blobs/".to_string(), "blobs/sha256/".to_string()];
    want.extend(blobs);
    want.extend(["index.json", "manifest.json", "oci-layout"].map(String::from));
    assert_eq!(names, want);

    let manifest_json: serde_json::Value =
        serde_json::from_slice(&member_of(&bytes, "manifest.json")).unwrap();
    let layers = |img: &Image| {
        img.layers
            .iter()
            .map(|l| format!("blobs/sha256/{}", l.digest.hex()))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        manifest_json,
        serde_json::json!([
            {
                "Config": format!("blobs/sha256/{}", image.config_digest.hex()),
                "RepoTags": ["example.com/worker:dev", "busybox:latest"],
                "Layers": layers(&image),
            },
            {
                "Config": format!("blobs/sha256/{}", other.config_digest.hex()),
                "RepoTags": ["example.com/other:2"],
                "Layers": layers(&other),
            },
        ])
    );
    let index: serde_json::Value =
        serde_json::from_slice(&member_of(&bytes, "index.json")).unwrap();
    let names: Vec<(String, String)> = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let a = &d["annotations"];
            (
                a[media::ANNOTATION_REF_NAME].as_str().unwrap().to_string(),
                a[media::ANNOTATION_CONTAINERD_NAME]
                    .as_str()
                    .unwrap()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(
        names,
        [
            ("dev", "example.com/worker:dev"),
            ("latest", "docker.io/library/busybox:latest"),
            ("2", "example.com/other:2"),
        ]
        .map(|(a, b)| (a.to_string(), b.to_string()))
    );
    assert_eq!(index["manifests"][0]["platform"]["os"], "linux");

    // Several images: choosing is required, and each can be chosen.
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("two.tar");
    fs::write(&path, &bytes).unwrap();
    let err = read::open(&path, None).err().unwrap().to_string();
    assert!(
        err.contains("2 images") && err.contains("example.com/other:2"),
        "{err}"
    );
    let (got, _) = read::open(&path, Some("busybox")).unwrap();
    assert_eq!(got.manifest_digest, image.manifest_digest);
    let (got, _) = read::open(&path, Some("example.com/other:2")).unwrap();
    assert_eq!(got.manifest_digest, other.manifest_digest);
}

fn member_of(bytes: &[u8], name: &str) -> Vec<u8> {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("a.tar");
    fs::write(&p, bytes).unwrap();
    member(&p, name)
}

#[test]
fn failed_writes_leave_nothing_behind() {
    let (tmp, store) = temp_store();
    let image = sample_image(&store, &TAGS, true);
    fs::remove_file(store.blob_path(&image.layers[1].digest)).unwrap();
    let dest = tmp.path().join("out");
    let err = write_oci_dir(&[&Artifact::Image(image.clone())], &store, &dest)
        .err()
        .unwrap()
        .display_chain();
    assert!(err.contains("not in the store"), "{err}");
    assert!(!dest.exists());
    let err = write_archive_file(
        &[&Artifact::Image(image.clone())],
        &store,
        Format::Docker,
        &dest,
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains(&image.layers[1].digest.hex()), "{err}");
    assert!(!dest.exists());
    let leftovers: Vec<_> = fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "store")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn corrupt_store_blob_is_named() {
    let (tmp, store) = temp_store();
    let image = sample_image(&store, &TAGS, false);
    let path = store.blob_path(&image.layers[0].digest);
    let mut bytes = fs::read(&path).unwrap();
    bytes[600] ^= 1;
    fs::write(&path, &bytes).unwrap();
    let err = write_oci_dir(
        &[&Artifact::Image(image.clone())],
        &store,
        &tmp.path().join("out"),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
    // The store moved the damaged blob aside; damage it again.
    assert!(!path.exists());
    fs::write(&path, &bytes).unwrap();
    let err = write_archive(
        &[&Artifact::Image(image.clone())],
        &store,
        Format::OciArchive,
        Vec::new(),
    )
    .err()
    .unwrap()
    .display_chain();
    assert!(err.contains("content digest"), "{err}");
}

#[test]
fn inconsistent_images_are_refused() {
    let (tmp, store) = temp_store();
    let mut image = sample_image(&store, &TAGS, true);
    image.layers.pop();
    let err = write_oci_dir(
        &[&Artifact::Image(image.clone())],
        &store,
        &tmp.path().join("out"),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("disagree"), "{err}");
    let mut image = sample_image(&store, &["example.com/x@sha256:0000"], true);
    image.name = "x".into();
    let err = write_archive(
        &[&Artifact::Image(image.clone())],
        &store,
        Format::Docker,
        Vec::new(),
    )
    .err()
    .unwrap()
    .to_string();
    assert!(err.contains("named by a tag"), "{err}");
}

#[test]
fn skopeo_reads_all_three_formats() {
    if !peer("skopeo") {
        return;
    }
    let (tmp, store) = temp_store();
    let image = sample_image(&store, &TAGS, true);
    let dir = tmp.path().join("layout");
    let oci_tar = tmp.path().join("oci.tar");
    let docker_tar = tmp.path().join("docker.tar");
    write_oci_dir(&[&Artifact::Image(image.clone())], &store, &dir).unwrap();
    write_archive_file(
        &[&Artifact::Image(image.clone())],
        &store,
        Format::OciArchive,
        &oci_tar,
    )
    .unwrap();
    write_archive_file(
        &[&Artifact::Image(image.clone())],
        &store,
        Format::Docker,
        &docker_tar,
    )
    .unwrap();

    for reference in [
        format!("oci:{}:dev", dir.display()),
        format!("oci-archive:{}:1.0", oci_tar.display()),
    ] {
        let raw = run(Command::new("skopeo").args(["inspect", "--raw", &reference])).stdout;
        assert_eq!(raw, image.manifest_bytes, "{reference}");
        let config =
            run(Command::new("skopeo").args(["inspect", "--config", "--raw", &reference])).stdout;
        assert_eq!(config, image.config_bytes, "{reference}");
    }
    let reference = format!("docker-archive:{}", docker_tar.display());
    let out = run(Command::new("skopeo").args(["inspect", &reference])).stdout;
    let info: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(info["Layers"].as_array().unwrap().len(), 2, "{info}");
    assert_eq!(info["Os"], "linux");
    let config =
        run(Command::new("skopeo").args(["inspect", "--config", "--raw", &reference])).stdout;
    assert_eq!(config, image.config_bytes);
}

#[test]
fn umoci_unpacks_the_oci_dir() {
    if !peer("umoci") {
        return;
    }
    let (tmp, store) = temp_store();
    let image = sample_image(&store, &TAGS, true);
    let dir = tmp.path().join("layout");
    write_oci_dir(&[&Artifact::Image(image.clone())], &store, &dir).unwrap();
    let bundle = tmp.path().join("bundle");
    run(Command::new("umoci")
        .args(["unpack", "--rootless", "--image"])
        .arg(format!("{}:dev", dir.display()))
        .arg(&bundle));
    assert_eq!(
        fs::read(bundle.join("rootfs/etc/greeting")).unwrap(),
        b"hello from gantry\n"
    );
    let config: serde_json::Value =
        serde_json::from_slice(&fs::read(bundle.join("config.json")).unwrap()).unwrap();
    assert_eq!(config["process"]["args"][0], "/bin/busybox");
}

#[test]
fn podman_loads_the_docker_archive() {
    if !peer("podman") {
        return;
    }
    // podman 4 tries a tarball as an OCI archive first, which works only
    // when index.json has a single entry (it then names the image from
    // io.containerd.image.name), and falls back to manifest.json
    // otherwise: both ways must give the same images and names.
    let (tmp, store) = temp_store();
    let base = format!("example.com/{}", unique_name("podman"));
    let one = format!("{base}:v1");
    let image = sample_image(&store, &[&one], true);
    let (two, three) = (format!("{base}-b:v2"), format!("{base}-b:v3"));
    let other = make_image(
        &store,
        &[&two, &three],
        &[layer_tar(&[("x", b"x", 0o644)])],
        false,
    );
    let single = tmp.path().join("single.tar");
    let multi = tmp.path().join("multi.tar");
    write_archive_file(
        &[&Artifact::Image(image.clone())],
        &store,
        Format::Docker,
        &single,
    )
    .unwrap();
    write_archive_file(
        &[
            &Artifact::Image(image.clone()),
            &Artifact::Image(other.clone()),
        ],
        &store,
        Format::Docker,
        &multi,
    )
    .unwrap();
    let names = [&one, &two, &three];
    let load_and_check = |archive: &Path, expected: &[(&String, &Image)]| {
        let out = run(Command::new("podman").args(["load", "-i"]).arg(archive));
        let loaded = String::from_utf8_lossy(&out.stdout).into_owned();
        let result = std::panic::catch_unwind(|| {
            for (name, image) in expected {
                assert!(loaded.contains(name.as_str()), "{loaded}");
                let id = run(Command::new("podman").args([
                    "image",
                    "inspect",
                    "--format",
                    "{{.Id}}",
                    name.as_str(),
                ]))
                .stdout;
                assert_eq!(
                    String::from_utf8_lossy(&id).trim(),
                    image.config_digest.hex()
                );
            }
        });
        for name in names {
            let _ = Command::new("podman").args(["rmi", "-f", name]).output();
        }
        if let Err(e) = result {
            std::panic::resume_unwind(e);
        }
    };
    load_and_check(&single, &[(&one, &image)]);
    load_and_check(&multi, &[(&one, &image), (&two, &other), (&three, &other)]);
}

#[test]
fn docker_loads_and_runs_the_docker_archive() {
    if !peer("docker") {
        return;
    }
    let (tmp, store) = temp_store();
    let name = format!("example.com/{}:v1", unique_name("docker"));
    let Some(image) = runnable_image(&store, &[&name]) else {
        return;
    };
    let path = tmp.path().join("image.tar");
    write_archive_file(
        &[&Artifact::Image(image.clone())],
        &store,
        Format::Docker,
        &path,
    )
    .unwrap();
    let result = std::panic::catch_unwind(|| {
        let out = run(Command::new("docker").args(["load", "-i"]).arg(&path));
        let loaded = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(loaded.contains(&name), "{loaded}");
        let id =
            run(Command::new("docker").args(["image", "inspect", "--format", "{{.Id}}", &name]))
                .stdout;
        assert_eq!(
            String::from_utf8_lossy(&id).trim(),
            image.config_digest.to_string()
        );
        let out = run(Command::new("docker").args(["run", "--rm", &name]));
        assert_eq!(out.stdout, b"hello from gantry\n");

        // What docker saves back is the same image, in its own shape.
        let saved = tmp.path().join("saved.tar");
        run(Command::new("docker")
            .args(["save", "-o"])
            .arg(&saved)
            .arg(&name));
        let (back, blobs) = read::open(&saved, Some(&name)).unwrap();
        assert_eq!(back.config_digest, image.config_digest);
        assert_eq!(back.tags, vec![name.clone()]);
        let diff_ids: Vec<Digest> = back.layers.iter().map(|l| l.diff_id).collect();
        let want: Vec<Digest> = image.layers.iter().map(|l| l.diff_id).collect();
        assert_eq!(diff_ids, want);
        let (_t, fresh) = temp_store();
        read::copy_to_store(&back, blobs.as_ref(), &fresh).unwrap();
    });
    let _ = Command::new("docker").args(["rmi", "-f", &name]).output();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}
