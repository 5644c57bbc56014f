//! Tests of `read`, kept apart so the module reads as one concept.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use serde_json::{json, Value};

use super::*;
use crate::buildfile::LocalSource;
use crate::image::Artifact;
use crate::layout::testutil::{gzip, layer_tar, make_image, peer, run, sample_image, temp_store};
use crate::layout::write::write_oci_dir;
use crate::manifest;
use crate::media;

fn err_of<T>(r: Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.display_chain(),
    }
}

#[test]
fn parse_splits_path_and_tag() {
    let base = Path::new("/base");
    let p = |s: &str| LocalSource::parse(s, base).map(|r| r.unwrap());
    assert_eq!(p("busybox:latest"), None);
    assert_eq!(p("docker://busybox"), None);
    assert_eq!(
        p("oci:/nowhere/layout:dev"),
        Some(LocalSource::OciLayout {
            path: "/nowhere/layout".into(),
            tag: Some("dev".into())
        })
    );
    assert_eq!(
        p("docker-archive:out/image.tar"),
        Some(LocalSource::DockerArchive {
            path: "/base/out/image.tar".into(),
            tag: None
        })
    );
    // The text after the last ':' holds a '/', so it is part of the path.
    assert_eq!(
        p("oci:/nowhere/a:b/c"),
        Some(LocalSource::OciLayout {
            path: "/nowhere/a:b/c".into(),
            tag: None
        })
    );
    for bad in ["oci:", "oci::x", "docker-archive:x.tar:"] {
        let e = LocalSource::parse(bad, base)
            .unwrap()
            .unwrap_err()
            .to_string();
        assert!(e.contains(bad) && e.contains("empty"), "{e}");
    }
}

#[test]
fn parse_prefers_paths_that_exist() {
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path();
    fs::create_dir(base.join("a:b")).unwrap();
    fs::write(base.join("x.tar"), b"").unwrap();
    let p = |s: &str| LocalSource::parse(s, base).unwrap().unwrap();
    assert_eq!(p("oci:a:b").path(), base.join("a:b"));
    assert_eq!(p("oci:a:b").tag(), None);
    assert_eq!(p("oci:a:b:t").path(), base.join("a:b"));
    assert_eq!(p("oci:a:b:t").tag(), Some("t"));
    let s = p("docker-archive:x.tar:busybox:latest");
    assert_eq!(
        (s.path(), s.tag()),
        (&*base.join("x.tar"), Some("busybox:latest"))
    );
    let s = p("docker-archive:x.tar:example.com:5000/app:1");
    assert_eq!(s.tag(), Some("example.com:5000/app:1"));
}

/// A classic `docker save` archive written by hand: config named by its
/// hex digest, layers at `<id>/layer.tar`, a duplicate layer as a
/// symlink (as docker writes it), and one gzip layer (as crane's
/// tarballs have).
fn classic_archive(dir: &Path, diff_id_override: Option<Digest>) -> (PathBuf, Vec<Vec<u8>>) {
    let l1 = layer_tar(&[("etc/one", b"1\n", 0o644)]);
    let l2 = layer_tar(&[("etc/two", b"2\n", 0o644)]);
    let l2_gz = gzip(&l2);
    let mut diff_ids = vec![Digest::of(&l1), Digest::of(&l2), Digest::of(&l1)];
    if let Some(d) = diff_id_override {
        diff_ids[0] = d;
        diff_ids[2] = d;
    }
    let config = crate::layout::testutil::test_config(&diff_ids).to_canonical_json();
    let config_name = format!("{}.json", Digest::of(&config).hex());
    let manifest = json!([{
        "Config": config_name,
        "RepoTags": ["busybox:latest", "example.com/tool:1"],
        "Layers": ["aaa/layer.tar", "bbb/layer.tar.gz", "ccc/layer.tar"],
    }]);
    let mut b = tar::Builder::new(Vec::new());
    let mut add = |name: &str, data: &[u8], link: Option<&str>| {
        let mut h = tar::Header::new_ustar();
        h.set_mode(0o644);
        h.set_size(data.len() as u64);
        match link {
            Some(target) => {
                h.set_entry_type(tar::EntryType::Symlink);
                h.set_size(0);
                b.append_link(&mut h, name, target).unwrap();
            }
            None => b.append_data(&mut h, name, data).unwrap(),
        }
    };
    add(&config_name, &config, None);
    add("aaa/layer.tar", &l1, None);
    add("bbb/layer.tar.gz", &l2_gz, None);
    add("ccc/layer.tar", b"", Some("../aaa/layer.tar"));
    add(
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
        None,
    );
    add("repositories", b"{}", None);
    let path = dir.join("classic.tar");
    fs::write(&path, b.into_inner().unwrap()).unwrap();
    (path, vec![l1, l2_gz])
}

#[test]
fn reads_classic_docker_save_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let (path, blobs) = classic_archive(tmp.path(), None);
    let (image, reader) = open(&path, None).unwrap();
    assert_eq!(
        image.tags,
        ["docker.io/library/busybox:latest", "example.com/tool:1"]
    );
    assert_eq!(image.manifest_media_type, media::OCI_MANIFEST);
    let media: Vec<&str> = image.layers.iter().map(|l| l.media_type.as_str()).collect();
    assert_eq!(
        media,
        [
            media::OCI_LAYER_TAR,
            media::OCI_LAYER_GZIP,
            media::OCI_LAYER_TAR
        ]
    );
    assert_eq!(image.layers[0].digest, image.layers[0].diff_id);
    assert_eq!(image.layers[1].digest, Digest::of(&blobs[1]));
    assert_eq!(image.layers[2], image.layers[0]);

    // The synthesised manifest is canonical OCI JSON describing exactly
    // these blobs.
    let m = manifest::parse_manifest(&image.manifest_bytes, "test").unwrap();
    assert_eq!(crate::json::canonical(&m), image.manifest_bytes);
    assert_eq!(Digest::of(&image.manifest_bytes), image.manifest_digest);
    assert_eq!(m.config().media_type().to_string(), media::OCI_CONFIG);
    assert_eq!(
        m.config().digest().to_string(),
        image.config_digest.to_string()
    );
    assert_eq!(m.layers().len(), 3);

    for select in [
        "busybox",
        "docker.io/library/busybox:latest",
        "example.com/tool:1",
    ] {
        assert_eq!(
            open(&path, Some(select)).unwrap().0.manifest_digest,
            image.manifest_digest
        );
    }
    let id = image.config_digest.to_string();
    assert_eq!(
        open(&path, Some(&id)).unwrap().0.config_digest,
        image.config_digest
    );
    let e = err_of(open(&path, Some("busybox:1")));
    assert!(
        e.contains("no image named") && e.contains("example.com/tool:1"),
        "{e}"
    );

    let (_t, store) = temp_store();
    copy_to_store(&image, reader.as_ref(), &store).unwrap();
    assert_eq!(store.read(&image.layers[0].digest).unwrap(), blobs[0]);
    assert_eq!(store.read(&image.layers[1].digest).unwrap(), blobs[1]);
    assert_eq!(
        store.read(&image.manifest_digest).unwrap(),
        image.manifest_bytes
    );
    assert_eq!(
        store.read(&image.config_digest).unwrap(),
        image.config_bytes
    );

    // An imported classic image can be written out again.
    let out = tmp.path().join("again");
    write_oci_dir(&[&Artifact::Image(image.clone())], &store, &out).unwrap();
    assert_eq!(
        open(&out, None).unwrap().0.manifest_digest,
        image.manifest_digest
    );
}

#[test]
fn classic_layers_must_match_their_diff_ids() {
    let tmp = tempfile::tempdir().unwrap();
    let wrong = Digest::of(b"something else");
    let (path, _) = classic_archive(tmp.path(), Some(wrong));
    // Uncompressed layers are checked when their bytes are read.
    let source = LocalSource::DockerArchive {
        path: path.clone(),
        tag: None,
    };
    let (_t, store) = temp_store();
    let e = err_of(import(&source, &store));
    assert!(e.contains("aaa/layer.tar") && e.contains("diff_id"), "{e}");
    assert!(!store.has(&wrong));

    // Compressed layers are checked when the archive is opened.
    let l2 = layer_tar(&[("etc/two", b"2\n", 0o644)]);
    let mut bytes = fs::read(&path).unwrap();
    let gz = gzip(&l2);
    let at = bytes.windows(gz.len()).position(|w| w == gz).unwrap();
    let mut other = gzip(&layer_tar(&[("etc/two", b"3\n", 0o644)]));
    other.resize(gz.len(), 0);
    bytes[at..at + gz.len()].copy_from_slice(&other);
    fs::write(&path, bytes).unwrap();
    let e = err_of(open(&path, None));
    assert!(e.contains("bbb/layer.tar.gz"), "{e}");
}

/// Writes `bytes` as a blob of the layout at `dir`.
fn put_blob(dir: &Path, bytes: &[u8]) -> Digest {
    let d = Digest::of(bytes);
    fs::write(dir.join("blobs/sha256").join(d.hex()), bytes).unwrap();
    d
}

fn set_index(dir: &Path, manifests: Value) {
    let index = json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX, "manifests": manifests});
    fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn refuses_schema1_manifests() {
    let (tmp, store) = temp_store();
    let image = sample_image(&store, &["example.com/a:1"], true);
    let dir = tmp.path().join("l");
    write_oci_dir(&[&Artifact::Image(image.clone())], &store, &dir).unwrap();
    let s1 = br#"{"schemaVersion":1,"name":"a","tag":"1","fsLayers":[],"history":[]}"#;
    let d = put_blob(&dir, s1);
    for mt in [media::DOCKER_SCHEMA1, media::DOCKER_MANIFEST] {
        set_index(
            &dir,
            json!([{"mediaType": mt, "digest": d.to_string(), "size": s1.len()}]),
        );
        let e = err_of(open(&dir, None));
        assert!(e.contains("schema 1"), "{e}");
    }
}

#[test]
fn refuses_multi_platform_indexes_naming_the_platforms() {
    let (tmp, store) = temp_store();
    let image = sample_image(&store, &["example.com/a:1"], true);
    let dir = tmp.path().join("l");
    write_oci_dir(&[&Artifact::Image(image.clone())], &store, &dir).unwrap();
    let manifest = |platform: Value| {
        json!({"mediaType": media::OCI_MANIFEST, "digest": image.manifest_digest.to_string(),
                   "size": image.manifest_bytes.len(), "platform": platform})
    };
    let attestation = json!({"mediaType": media::OCI_MANIFEST,
            "digest": Digest::of(b"att").to_string(), "size": 3,
            "platform": {"os": "unknown", "architecture": "unknown"},
            "annotations": {"vnd.docker.reference.type": "attestation-manifest"}});
    let nested = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX,
            "manifests": [manifest(json!({"os": "linux", "architecture": "amd64"})),
                          manifest(json!({"os": "linux", "architecture": "arm64", "variant": "v8"})),
                          attestation.clone()]}))
        .unwrap();
    let d = put_blob(&dir, &nested);
    set_index(
        &dir,
        json!([{"mediaType": media::OCI_INDEX, "digest": d.to_string(),
            "size": nested.len(), "annotations": {media::ANNOTATION_REF_NAME: "multi"}}]),
    );
    let e = err_of(open(&dir, Some("multi")));
    assert!(
        e.contains("multi-platform") && e.contains("linux/amd64") && e.contains("linux/arm64/v8"),
        "{e}"
    );
    assert!(!e.contains("unknown"), "{e}");

    // One platform plus its attestation is not a choice to make.
    let single = serde_json::to_vec(&json!({"schemaVersion": 2, "mediaType": media::OCI_INDEX,
            "manifests": [manifest(json!({"os": "linux", "architecture": "amd64"})), attestation]}))
    .unwrap();
    let d = put_blob(&dir, &single);
    set_index(
        &dir,
        json!([{"mediaType": media::OCI_INDEX, "digest": d.to_string(),
            "size": single.len(), "annotations": {media::ANNOTATION_REF_NAME: "one"}}]),
    );
    let (got, _) = open(&dir, None).unwrap();
    assert_eq!(got.manifest_digest, image.manifest_digest);
    assert_eq!(got.tags, ["one"]);
}

#[test]
fn selection_needs_a_name_when_there_are_several_images() {
    let (tmp, store) = temp_store();
    let a = sample_image(&store, &["example.com/a:1"], true);
    let b = make_image(&store, &[], &[layer_tar(&[("x", b"x", 0o644)])], false);
    let dir = tmp.path().join("l");
    write_oci_dir(
        &[&Artifact::Image(a.clone()), &Artifact::Image(b.clone())],
        &store,
        &dir,
    )
    .unwrap();
    let e = err_of(open(&dir, None));
    assert!(
        e.contains("2 images") && e.contains("example.com/a:1"),
        "{e}"
    );
    assert!(
        e.contains(&format!("{} (no name)", b.manifest_digest)),
        "{e}"
    );
    let (got, _) = open(&dir, Some(&b.manifest_digest.to_string())).unwrap();
    assert_eq!(got.manifest_digest, b.manifest_digest);
    assert!(got.tags.is_empty());

    // Two entries with one name but different images are ambiguous.
    let index: Value = serde_json::from_slice(&fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mut manifests = index["manifests"].as_array().unwrap().clone();
    manifests[1]["annotations"] = json!({media::ANNOTATION_REF_NAME: "1"});
    set_index(&dir, Value::Array(manifests));
    let e = err_of(open(&dir, Some("1")));
    assert!(e.contains("names 2 different images"), "{e}");
}

#[test]
fn inconsistent_or_corrupt_layouts_are_reported() {
    let (tmp, store) = temp_store();
    let image = sample_image(&store, &["example.com/a:1"], true);
    let dir = tmp.path().join("l");
    write_oci_dir(&[&Artifact::Image(image.clone())], &store, &dir).unwrap();

    // A corrupt layer is found when it is copied, naming the file.
    let layer = dir.join("blobs/sha256").join(image.layers[0].digest.hex());
    let good = fs::read(&layer).unwrap();
    let mut bad = good.clone();
    bad[20] ^= 0xff;
    fs::write(&layer, &bad).unwrap();
    let (_t, fresh) = temp_store();
    let source = LocalSource::OciLayout {
        path: dir.clone(),
        tag: None,
    };
    let e = err_of(import(&source, &fresh));
    assert!(e.contains(&layer.display().to_string()), "{e}");
    assert!(!fresh.has(&image.layers[0].digest) && !fresh.has(&image.manifest_digest));
    fs::write(&layer, &good).unwrap();

    // A missing layer likewise.
    fs::remove_file(&layer).unwrap();
    let e = err_of(import(&source, &fresh));
    assert!(
        e.contains("missing") && e.contains(&image.layers[0].digest.hex()),
        "{e}"
    );
    fs::write(&layer, &good).unwrap();

    // A config whose diff_ids do not match the layers.
    let mut config = image.config.clone();
    config.rootfs.diff_ids.pop();
    let config_bytes = config.to_canonical_json();
    let config_digest = put_blob(&dir, &config_bytes);
    let mut manifest: Value = serde_json::from_slice(&image.manifest_bytes).unwrap();
    manifest["config"]["digest"] = json!(config_digest.to_string());
    manifest["config"]["size"] = json!(config_bytes.len());
    let manifest = serde_json::to_vec(&manifest).unwrap();
    let md = put_blob(&dir, &manifest);
    set_index(
        &dir,
        json!([{"mediaType": media::OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len()}]),
    );
    let e = err_of(open(&dir, None));
    assert!(
        e.contains("diff_ids lists 1 layers but the manifest has 2"),
        "{e}"
    );
    assert!(e.contains(&config_digest.hex()), "{e}");

    // A manifest that is not what its descriptor says.
    set_index(
        &dir,
        json!([{"mediaType": media::OCI_MANIFEST, "digest": md.to_string(), "size": manifest.len() + 1}]),
    );
    let e = err_of(open(&dir, None));
    assert!(e.contains(&md.hex()) && e.contains("bytes"), "{e}");
}

#[test]
fn locations_that_are_not_images_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let e = err_of(open(tmp.path(), None));
    assert!(e.contains("neither an OCI image layout"), "{e}");
    fs::write(tmp.path().join("index.json"), b"{}").unwrap();
    let e = err_of(open(tmp.path(), None));
    assert!(e.contains("no oci-layout"), "{e}");
    fs::write(
        tmp.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"2.0.0"}"#,
    )
    .unwrap();
    let e = err_of(open(tmp.path(), None));
    assert!(e.contains("version 2.0.0"), "{e}");
    fs::write(
        tmp.path().join("oci-layout"),
        br#"{"imageLayoutVersion":"1.0.0"}"#,
    )
    .unwrap();
    let e = err_of(open(tmp.path(), None));
    assert!(
        e.contains("index.json") && e.contains("not an image index"),
        "{e}"
    );
    let e = err_of(open(&tmp.path().join("missing.tar"), None));
    assert!(e.contains("missing.tar"), "{e}");
}

#[test]
fn reads_layouts_and_archives_made_by_umoci_and_skopeo() {
    if !peer("umoci") || !peer("skopeo") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let layout = tmp.path().join("layout");
    let l = layout.display().to_string();
    run(Command::new("umoci").args(["init", "--layout", &l]));
    run(Command::new("umoci").args(["new", "--image", &format!("{l}:base")]));
    let file = tmp.path().join("greeting");
    fs::write(&file, b"hi\n").unwrap();
    run(Command::new("umoci")
        .args(["insert", "--rootless", "--image", &format!("{l}:base")])
        .arg(&file)
        .arg("/etc/greeting"));
    run(Command::new("umoci").args([
        "config",
        "--image",
        &format!("{l}:base"),
        "--tag",
        "configured",
        "--config.env",
        "A=1",
    ]));

    let e = err_of(open(&layout, None));
    assert!(e.contains("base") && e.contains("configured"), "{e}");
    let (oci, _) = open(&layout, Some("configured")).unwrap();
    assert_eq!(oci.tags, ["configured"]);
    assert_eq!(oci.layers.len(), 1);
    assert_eq!(oci.config.env(), ["A=1"]);

    let archive = tmp.path().join("docker.tar");
    run(Command::new("skopeo")
        .args(["copy", "-q", &format!("oci:{l}:configured")])
        .arg(format!(
            "docker-archive:{}:example.com/app:2",
            archive.display()
        )));
    let source = LocalSource::parse(&format!("docker-archive:{}", archive.display()), tmp.path())
        .unwrap()
        .unwrap();
    let (_t, store) = temp_store();
    let classic = import(&source, &store).unwrap();
    assert_eq!(classic.tags, ["example.com/app:2"]);
    assert_eq!(classic.config.rootfs.diff_ids, oci.config.rootfs.diff_ids);
    assert_eq!(classic.layers[0].diff_id, oci.layers[0].diff_id);
    assert_eq!(classic.layers[0].media_type, media::OCI_LAYER_TAR);
    assert!(store.has(&classic.layers[0].digest));

    let oci_archive = tmp.path().join("oci.tar");
    run(Command::new("skopeo")
        .args(["copy", "-q", &format!("oci:{l}:configured")])
        .arg(format!("oci-archive:{}:v2", oci_archive.display())));
    let (from_archive, _) = open(&oci_archive, Some("v2")).unwrap();
    assert_eq!(
        from_archive.config.rootfs.diff_ids,
        oci.config.rootfs.diff_ids
    );
}
