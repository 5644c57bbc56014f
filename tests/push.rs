//! `gantry push` against the reference registry (Debian's
//! `docker-registry`), checked with skopeo: round trips, mounts between
//! repositories, warm pushes that only ask, basic auth over TLS, and base
//! layers streamed from the registry they came from.

mod common;

use std::fs;

use base64::Engine;
use common::docker_registry::{DockerRegistry, Options};
use common::proxy::{self, Proxy};
use common::push::{
    actions, app_project, metadata, peers, pushed, skopeo_copy_verifies, skopeo_digest,
};
use common::{digest_of, require, Project};

#[test]
fn push_round_trips_through_the_reference_registry_and_skopeo() {
    if !peers() {
        return;
    }
    let reg = DockerRegistry::start(Options::default());
    let target = format!("{}/gantry/app:1.0", reg.host());
    let p = app_project(&[&target]);
    let built = digest_of(&p.ok(&["build"]), "app");

    let out = p.ok(&["push", "--sbom", "none", "--metadata-file", "push.json"]);
    assert_eq!(pushed(&out), [(target.clone(), built.clone())], "{out}");

    assert_eq!(skopeo_digest(&target).as_deref(), Some(built.as_str()));
    let copy = tempfile::tempdir().unwrap();
    skopeo_copy_verifies(&target, copy.path());
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(copy.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(
        index["manifests"][0]["digest"], built,
        "skopeo copied back the manifest gantry pushed"
    );

    let meta = metadata(&p.join("push.json"));
    assert_eq!(meta["images"][0]["name"], "app");
    assert_eq!(meta["images"][0]["digest"], built);
    assert_eq!(
        meta["images"][0]["references"][0],
        format!("{target}@{built}")
    );
    let repo = format!("{}/gantry/app", reg.host());
    assert_eq!(
        actions(&meta, &repo),
        ["uploaded"; 3],
        "config and two layers"
    );
}

#[test]
fn a_second_repository_mounts_and_a_warm_push_only_asks() {
    if !peers() {
        return;
    }
    let reg = DockerRegistry::start(Options::default());
    let proxy = Proxy::start(reg.port, proxy::Options::default());
    let one = format!("{}/team/one:1", proxy.host());
    let two = format!("{}/team/two:1", proxy.host());
    let p = app_project(&[&one]);
    p.ok(&["push", "--sbom", "none"]);

    proxy.clear_log();
    p.ok(&[
        "push",
        "--sbom",
        "none",
        "app",
        "-t",
        &two,
        "--metadata-file",
        "two.json",
    ]);
    let meta = metadata(&p.join("two.json"));
    let repo_two = format!("{}/team/two", proxy.host());
    assert_eq!(actions(&meta, &repo_two), ["mounted"; 3]);
    for b in meta["images"][0]["blobs"].as_array().unwrap() {
        assert_eq!(b["from"], format!("{}/team/one", proxy.host()));
    }
    let log = proxy.repo_requests();
    let mounts: Vec<_> = log
        .iter()
        .filter(|l| {
            l.method == "POST" && l.query.contains("mount=") && l.query.contains("from=team%2Fone")
        })
        .collect();
    assert_eq!(mounts.len(), 3, "{log:#?}");
    assert!(mounts.iter().all(|l| l.status == 201), "{mounts:#?}");
    assert!(
        !log.iter()
            .any(|l| l.method == "PUT" && l.path.contains("/blobs/")),
        "no blob bytes were sent: {log:#?}"
    );

    // Everything is there: one HEAD per blob and one manifest check.
    proxy.clear_log();
    let out = p.ok(&["push", "--sbom", "none", "--metadata-file", "warm.json"]);
    assert_eq!(pushed(&out).len(), 1);
    let log = proxy.repo_requests();
    let heads = |part: &str| {
        log.iter()
            .filter(|l| l.method == "HEAD" && l.path.contains(part))
            .count()
    };
    assert_eq!(heads("/blobs/"), 3, "{log:#?}");
    assert_eq!(heads("/manifests/"), 1, "{log:#?}");
    assert_eq!(log.len(), 4, "nothing but the HEADs: {log:#?}");
    let repo_one = format!("{}/team/one", proxy.host());
    assert_eq!(
        actions(&metadata(&p.join("warm.json")), &repo_one),
        ["skipped"; 3]
    );
}

#[test]
fn a_store_from_the_previous_version_still_mounts_from_the_repositories_it_recorded() {
    if !peers() {
        return;
    }
    let reg = DockerRegistry::start(Options::default());
    let one = format!("{}/team/one:1", reg.host());
    let two = format!("{}/team/two:1", reg.host());
    let p = app_project(&[&one]);
    p.ok(&["push", "--sbom", "none"]);
    // What the previous version kept instead: `blob-locations`, the
    // `registry/repository` names a blob was pushed to.
    let meta = p.store.path().join("meta");
    let old = meta.join("blob-locations");
    fs::create_dir_all(&old).unwrap();
    let mut converted = 0;
    for e in fs::read_dir(meta.join("remote-locations")).unwrap() {
        let path = e.unwrap().path();
        let locations: Vec<serde_json::Value> =
            serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        let names: Vec<String> = locations
            .iter()
            .map(|l| {
                format!(
                    "{}/{}",
                    l["registry"].as_str().unwrap(),
                    l["repository"].as_str().unwrap()
                )
            })
            .collect();
        fs::write(
            old.join(path.file_name().unwrap()),
            serde_json::to_vec(&names).unwrap(),
        )
        .unwrap();
        fs::remove_file(&path).unwrap();
        converted += 1;
    }
    assert_eq!(converted, 3, "config and two layers");

    p.ok(&[
        "push",
        "--sbom",
        "none",
        "app",
        "-t",
        &two,
        "--metadata-file",
        "two.json",
    ]);
    let meta = metadata(&p.join("two.json"));
    let repo_two = format!("{}/team/two", reg.host());
    assert_eq!(actions(&meta, &repo_two), ["mounted"; 3]);
    for b in meta["images"][0]["blobs"].as_array().unwrap() {
        assert_eq!(b["from"], format!("{}/team/one", reg.host()));
    }
}

#[test]
fn basic_auth_over_tls_with_docker_credentials_and_no_secret_in_output() {
    if !(peers() && require("openssl") && require("htpasswd")) {
        return;
    }
    let password = "s3cret-pw-Zq9";
    let reg = DockerRegistry::start(Options {
        tls: true,
        htpasswd: Some(("pusher".into(), password.into())),
    });
    let target = format!("{}/secure/app:1", reg.host());
    let p = app_project(&[&target]);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("pusher:{password}"));
    p.write(
        "docker/config.json",
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    );
    p.write("nodocker/config.json", "{}");
    let ca = reg.ca().display().to_string();

    // Without credentials the registry says no, and nothing is tagged.
    let out = p
        .cmd()
        .env("DOCKER_CONFIG", p.join("nodocker"))
        .env("REGISTRY_AUTH_FILE", p.join("none.json"))
        .args(["push", "--sbom", "none", "--ca-cert", &ca])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(err.contains("nothing was tagged"), "{err}");

    let out = p
        .cmd()
        .env("DOCKER_CONFIG", p.join("docker"))
        .args([
            "push",
            "--sbom",
            "none",
            "--ca-cert",
            &ca,
            "--metadata-file",
            "m.json",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let meta = fs::read_to_string(p.join("m.json")).unwrap();
    for text in [&*stdout, &*stderr, &meta] {
        assert!(!text.contains(password) && !text.contains(&auth), "{text}");
    }
    let digest = &pushed(&stdout)[0].1;

    let certs = tempfile::tempdir().unwrap();
    fs::copy(reg.ca(), certs.path().join("ca.crt")).unwrap();
    let raw = common::sh(
        std::process::Command::new("skopeo")
            .args(["inspect", "--raw", "--creds"])
            .arg(format!("pusher:{password}"))
            .arg("--cert-dir")
            .arg(certs.path())
            .arg(format!("docker://{target}")),
    );
    assert_eq!(&common::digest::sha256_digest(raw.as_bytes()), digest);
}

#[test]
fn base_layers_are_mounted_within_their_registry_and_streamed_to_another() {
    if !peers() {
        return;
    }
    let a = DockerRegistry::start(Options::default());
    let b = DockerRegistry::start(Options::default());
    let base_ref = format!("{}/lib/base:1", a.host());
    app_project(&[&base_ref]).ok(&["push", "--sbom", "none"]);

    // A project on that base, with a store that has never seen it.
    let p = Project::new();
    p.write(
        "gantry.toml",
        format!(
            "[image.svc]\nbase = \"{base_ref}\"\ntags = [\"{}/svc/app:1\"]\n\n\
             [[image.svc.layer]]\nname = \"svc\"\nfiles = [{{ src = \"svc.txt\", dst = \"/svc.txt\" }}]\n",
            a.host()
        ),
    );
    p.write("svc.txt", "service\n");
    let out = p.ok(&["push", "--sbom", "none", "--metadata-file", "a.json"]);
    let digest = pushed(&out)[0].1.clone();
    let meta = metadata(&p.join("a.json"));
    let blobs = meta["images"][0]["blobs"].as_array().unwrap();
    let mounted: Vec<_> = blobs.iter().filter(|b| b["action"] == "mounted").collect();
    assert_eq!(mounted.len(), 2, "both base layers: {blobs:#?}");
    assert!(mounted
        .iter()
        .all(|b| b["from"] == format!("{}/lib/base", a.host())));

    // To another registry the base layers travel from registry A, through
    // gantry, without being stored.
    let other = format!("{}/svc/app:1", b.host());
    let out = p.ok(&[
        "push",
        "--sbom",
        "none",
        "svc",
        "-t",
        &other,
        "--metadata-file",
        "b.json",
    ]);
    assert_eq!(pushed(&out), [(other.clone(), digest.clone())]);
    let meta = metadata(&p.join("b.json"));
    assert_eq!(
        actions(&meta, &format!("{}/svc/app", b.host())),
        ["uploaded"; 4]
    );
    for l in meta["images"][0]["blobs"].as_array().unwrap() {
        let hex = l["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap();
        let in_store = p.store.path().join("blobs/sha256").join(hex).exists();
        let is_base = mounted.iter().any(|m| m["digest"] == l["digest"]);
        assert_eq!(in_store, !is_base, "{hex}: base layers are never stored");
    }
    assert_eq!(skopeo_digest(&other).as_deref(), Some(digest.as_str()));
    let copy = tempfile::tempdir().unwrap();
    skopeo_copy_verifies(&other, copy.path());
}

#[test]
fn push_without_tags_is_refused_naming_the_image() {
    let p = app_project(&[]);
    let err = p.fails(&["push", "--sbom", "none", "app"]);
    assert!(err.contains("image \"app\" has no tags"), "{err}");
    assert!(
        err.contains("gantry.toml:1"),
        "names the declaration: {err}"
    );
    let err = p.fails(&["push", "--sbom", "none"]);
    assert!(err.contains("no image has tags to push to"), "{err}");
}

#[test]
fn push_tag_flag_needs_exactly_one_image() {
    let p = app_project(&["127.0.0.1:1/x:1"]);
    let err = p.fails(&["push", "--sbom", "none", "-t", "127.0.0.1:1/y:1"]);
    assert!(err.contains("name exactly one image"), "{err}");
    let err = p.fails(&[
        "push",
        "app",
        "-t",
        "127.0.0.1:1/y@sha256:0000000000000000000000000000000000000000000000000000000000000000",
    ]);
    assert!(err.contains("cannot carry a digest"), "{err}");
    let err = p.fails(&["push", "--sbom", "none", "--offline"]);
    assert!(err.contains("needs the network"), "{err}");
}

#[test]
fn many_tags_and_registries_in_one_run_send_each_blob_once_per_registry() {
    if !peers() {
        return;
    }
    let (reg_a, reg_b) = (
        DockerRegistry::start(Options::default()),
        DockerRegistry::start(Options::default()),
    );
    // Proxies count what each registry is sent.
    let a = Proxy::start(reg_a.port, proxy::Options::default());
    let b = Proxy::start(reg_b.port, proxy::Options::default());
    let targets = [
        format!("{}/team/one:1.4.0", a.host()),
        format!("{}/team/one:latest", a.host()),
        format!("{}/team/two:1.4.0", a.host()),
        format!("{}/mirror/app:1.4.0", b.host()),
    ];
    let p = app_project(&[]);
    let mut args = vec!["push", "--sbom", "none", "app", "--metadata-file", "m.json"];
    for t in &targets {
        args.extend(["-t", t.as_str()]);
    }
    let out = p.ok(&args);
    let refs: Vec<String> = pushed(&out).into_iter().map(|(r, _)| r).collect();
    assert_eq!(refs, targets, "every tag, in the order given");
    let meta = metadata(&p.join("m.json"));
    assert_eq!(
        actions(&meta, &format!("{}/team/one", a.host())),
        ["uploaded"; 3]
    );
    assert_eq!(
        actions(&meta, &format!("{}/team/two", a.host())),
        ["mounted"; 3]
    );
    assert_eq!(
        actions(&meta, &format!("{}/mirror/app", b.host())),
        ["uploaded"; 3]
    );
    let digest = &pushed(&out)[0].1;
    for t in &targets {
        assert_eq!(skopeo_digest(t).as_ref(), Some(digest), "{t}");
    }
    // The blob bytes themselves: one PUT per blob per registry.
    for (proxy, name) in [(&a, "a"), (&b, "b")] {
        let sent = proxy.upload_puts().len();
        assert_eq!(sent, 3, "blob uploads to registry {name}");
    }
}
