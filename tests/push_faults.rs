//! `gantry push` through a proxy in front of the reference registry that
//! misbehaves on purpose: seeded random faults (dropped connections before
//! and after the registry acted, truncated answers, 500, 503, 429, revoked
//! tokens), a registry that keeps failing, and a token service that grants
//! exactly the scopes asked for. Whatever happens, a tag either points at a
//! complete image (skopeo copies every blob, verified) or is not there.

mod common;

use common::digest_of;
use common::docker_registry::{DockerRegistry, Options};
use common::proxy::{self, Fault, Proxy};
use common::push::{
    actions, app_project, metadata, peers, pushed, skopeo_copy_verifies, skopeo_digest,
};

/// The reference registry, and the proxy in front of it.
fn behind_proxy(opts: proxy::Options) -> (DockerRegistry, Proxy) {
    let reg = DockerRegistry::start(Options::default());
    let proxy = Proxy::start(reg.port, opts);
    (reg, proxy)
}

#[test]
fn seeded_faults_end_in_a_verified_image_or_a_clear_failure_with_no_broken_tag() {
    if !peers() {
        return;
    }
    let reg = DockerRegistry::start(Options::default());
    let p = app_project(&[]);
    let digest = digest_of(&p.ok(&["build"]), "app");
    let (mut succeeded, mut failed, mut faults) = (0, 0, 0);
    for seed in 1..=12u64 {
        let proxy = Proxy::start(
            reg.port,
            proxy::Options {
                bearer: seed % 2 == 0,
                fault_rate: 0.25,
                seed,
                ..Default::default()
            },
        );
        let repo = format!("faults/s{seed}");
        let through_proxy = format!("{}/{repo}:1", proxy.host());
        let direct = format!("{}/{repo}:1", reg.host());
        let out = p.run(&["push", "app", "-t", &through_proxy]);
        faults += proxy.log().iter().filter(|l| l.fault.is_some()).count();
        if out.status.success() {
            succeeded += 1;
            let stdout = String::from_utf8_lossy(&out.stdout);
            assert_eq!(pushed(&stdout), [(through_proxy.clone(), digest.clone())]);
            assert_eq!(skopeo_digest(&direct).as_deref(), Some(digest.as_str()));
            let copy = tempfile::tempdir().unwrap();
            skopeo_copy_verifies(&direct, copy.path());
        } else {
            failed += 1;
            let err = String::from_utf8_lossy(&out.stderr);
            eprintln!("seed {seed} failed: {}", err.lines().last().unwrap_or(""));
            assert!(
                err.contains("error: registry 127.0.0.1:"),
                "seed {seed}: {err}"
            );
            assert!(
                err.contains("nothing was tagged") || err.contains("only these were tagged"),
                "seed {seed}: {err}"
            );
            // A tag that exists must point at a whole image.
            if let Some(d) = skopeo_digest(&direct) {
                assert_eq!(d, digest, "seed {seed}");
                let copy = tempfile::tempdir().unwrap();
                skopeo_copy_verifies(&direct, copy.path());
            }
        }
    }
    eprintln!("{succeeded} pushes succeeded, {failed} failed cleanly, {faults} faults injected");
    assert!(faults >= 12, "the proxy injected faults: {faults}");
    assert!(
        succeeded >= 6,
        "retries carry most pushes through: {succeeded} of 12"
    );
}

#[test]
fn a_registry_that_keeps_failing_uploads_names_the_blob_and_tags_nothing() {
    if !peers() {
        return;
    }
    let reg = DockerRegistry::start(Options::default());
    let scripted = (0..20)
        .map(|_| {
            (
                "PUT".to_string(),
                "/blobs/uploads/".to_string(),
                Fault::Status(500),
            )
        })
        .collect();
    let proxy = Proxy::start(
        reg.port,
        proxy::Options {
            scripted,
            ..Default::default()
        },
    );
    let target = format!("{}/broken/app:1", proxy.host());
    let p = app_project(&[&target]);
    let err = p.fails(&["push", "--jobs", "1"]);
    assert!(err.contains(&format!("registry {}", proxy.host())), "{err}");
    assert!(err.contains("blob sha256:"), "names the blob: {err}");
    assert!(
        err.contains("HTTP 500 UNKNOWN: injected"),
        "what it answered: {err}"
    );
    assert!(err.contains("nothing was tagged"), "{err}");
    assert!(err.contains("retrying"), "it retried first: {err}");
    assert_eq!(skopeo_digest(&format!("{}/broken/app:1", reg.host())), None);
    assert!(
        !proxy
            .log()
            .iter()
            .any(|l| l.method == "PUT" && l.path.contains("/manifests/")),
        "no manifest was put"
    );
}

#[test]
fn a_mount_token_carries_pull_on_the_source_and_push_on_the_target() {
    if !peers() {
        return;
    }
    let (_registry, proxy) = behind_proxy(proxy::Options {
        bearer: true,
        ..Default::default()
    });
    let one = format!("{}/team/one:1", proxy.host());
    let two = format!("{}/team/two:1", proxy.host());
    let p = app_project(&[&one]);
    p.ok(&["push"]);
    proxy.clear_log();
    p.ok(&["push", "app", "-t", &two, "--metadata-file", "m.json"]);
    // The proxy refuses a mount whose token lacks pull on the source.
    assert_eq!(
        actions(
            &metadata(&p.join("m.json")),
            &format!("{}/team/two", proxy.host())
        ),
        ["mounted"; 3]
    );
    let token_requests: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|l| l.path == "/token")
        .collect();
    assert!(
        token_requests.iter().any(|l| l.query.contains(
            "scope=repository%3Ateam%2Ftwo%3Apull%2Cpush&scope=repository%3Ateam%2Fone%3Apull"
        )),
        "{token_requests:#?}"
    );
}

#[test]
fn a_token_revoked_mid_upload_is_renewed_and_the_push_completes() {
    if !peers() {
        return;
    }
    let (reg, proxy) = behind_proxy(proxy::Options {
        bearer: true,
        scripted: vec![("PUT".into(), "/blobs/uploads/".into(), Fault::Revoke)],
        ..Default::default()
    });
    let target = format!("{}/revoked/app:1", proxy.host());
    let p = app_project(&[&target]);
    let out = p.ok(&["push", "--jobs", "1"]);
    let digest = &pushed(&out)[0].1;
    assert!(
        proxy.log().iter().any(|l| l.fault == Some(Fault::Revoke)),
        "the revocation happened"
    );
    assert!(proxy.tokens_issued() >= 2, "a new token was fetched");
    let direct = format!("{}/revoked/app:1", reg.host());
    assert_eq!(skopeo_digest(&direct).as_deref(), Some(digest.as_str()));
}

#[test]
fn relative_upload_locations_are_followed_with_their_query() {
    if !peers() {
        return;
    }
    let (reg, proxy) = behind_proxy(proxy::Options {
        relative_locations: true,
        ..Default::default()
    });
    let target = format!("{}/relative/app:1", proxy.host());
    let head = {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(proxy.host()).unwrap();
        write!(
            c,
            "POST /v2/relative/app/blobs/uploads/ HTTP/1.1\r\nHost: {}\r\nContent-Length: 0\r\n\r\n",
            proxy.host()
        )
        .unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        answer.to_ascii_lowercase()
    };
    assert!(
        head.contains("location: /v2/relative/app/blobs/uploads/"),
        "{head}"
    );
    let p = app_project(&[&target]);
    let out = p.ok(&["push"]);
    let digest = &pushed(&out)[0].1;
    // distribution keeps the upload's state in the query of its Location.
    let puts: Vec<_> = proxy
        .log()
        .into_iter()
        .filter(|l| l.method == "PUT" && l.path.contains("/blobs/uploads/"))
        .collect();
    assert_eq!(puts.len(), 3);
    assert!(
        puts.iter()
            .all(|l| l.query.contains("_state=") && l.query.contains("digest=sha256")),
        "{puts:#?}"
    );
    let direct = format!("{}/relative/app:1", reg.host());
    assert_eq!(skopeo_digest(&direct).as_deref(), Some(digest.as_str()));
}

#[test]
fn a_base_registry_that_lies_about_a_layer_fails_the_push_and_tags_nothing() {
    if !peers() {
        return;
    }
    let a = DockerRegistry::start(Options::default());
    let b = DockerRegistry::start(Options::default());
    let base_ref = format!("{}/lib/base:1", a.host());
    let base = app_project(&[&base_ref]);
    base.ok(&["push", "--metadata-file", "base.json"]);
    let layers: Vec<String> = metadata(&base.join("base.json"))["images"][0]["blobs"]
        .as_array()
        .unwrap()
        .iter()
        .skip(1) // the config
        .map(|b| b["digest"].as_str().unwrap().to_string())
        .collect();
    let scripted = layers
        .iter()
        .flat_map(|d| (0..8).map(move |_| ("GET".to_string(), format!("/blobs/{d}"), Fault::Lie)))
        .collect();
    let liar = Proxy::start(
        a.port,
        proxy::Options {
            scripted,
            ..Default::default()
        },
    );

    let p = common::Project::new();
    p.write(
        "gantry.toml",
        format!(
            "[image.svc]\nbase = \"{}/lib/base:1\"\n\n\
             [[image.svc.layer]]\nname = \"svc\"\nfiles = [{{ src = \"svc.txt\", dst = \"/svc.txt\" }}]\n",
            liar.host()
        ),
    );
    p.write("svc.txt", "service\n");
    let target = format!("{}/svc/app:1", b.host());
    let err = p.fails(&["push", "svc", "-t", &target]);
    assert!(
        err.contains("content digest is sha256:"),
        "names the digest: {err}"
    );
    assert!(
        err.contains(&liar.host()),
        "names the source registry: {err}"
    );
    assert!(err.contains("nothing was tagged"), "{err}");
    assert_eq!(skopeo_digest(&target), None);
    for d in &layers {
        let hex = d.strip_prefix("sha256:").unwrap();
        assert!(!p.store.path().join("blobs/sha256").join(hex).exists());
    }
}
