//! `gantry push` through a proxy in front of the reference registry that
//! misbehaves on purpose: seeded random faults (dropped connections before
//! and after the registry acted, truncated answers, 500, 503, 429, revoked
//! tokens), a registry that keeps failing, and a token service that grants
//! exactly the scopes asked for. Whatever happens, a tag either points at a
//! complete image (skopeo copies every blob, verified) or is not there.

mod common;

use base64::Engine;
use common::digest_of;
use common::docker_registry::{DockerRegistry, Options};
use common::proxy::{self, Fault, Proxy};
use common::push::{
    actions, app_project, metadata, peers, pushed, skopeo_copy_verifies, skopeo_digest,
};

/// The reference registry, and the proxy in front of it.
/// The error gantry ended with: its `error:` line, the `Caused by:` lines
/// and any hint, not the progress and retry lines before them.
fn final_error(stderr: &str) -> &str {
    stderr.rfind("error: ").map_or(stderr, |i| &stderr[i..])
}

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
        let out = p.run(&["push", "--sbom", "none", "app", "-t", &through_proxy]);
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
            eprintln!("seed {seed} failed: {}", final_error(&err));
            assert!(
                final_error(&err).contains("Caused by: registry 127.0.0.1:"),
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
    let err = p.fails(&["push", "--sbom", "none", "--jobs", "1"]);
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
        "m.json",
    ]);
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
    let out = p.ok(&["push", "--sbom", "none", "--jobs", "1"]);
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
    let out = p.ok(&["push", "--sbom", "none"]);
    let digest = &pushed(&out)[0].1;
    // distribution keeps the upload's state in the query of its Location.
    let puts = proxy.upload_puts();
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
    base.ok(&["push", "--sbom", "none", "--metadata-file", "base.json"]);
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
    let err = p.fails(&["push", "--sbom", "none", "svc", "-t", &target]);
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

#[test]
fn upload_location_on_another_origin_gets_no_credentials() {
    if !(peers() && common::require("htpasswd")) {
        return;
    }
    // Bearer: the proxy hands out tokens and checks them; the other host
    // (a second proxy in front of the same registry) checks nothing, so
    // the push completes, without the token ever reaching it.
    let reg = DockerRegistry::start(Options::default());
    let other = Proxy::start(reg.port, proxy::Options::default());
    let front = Proxy::start(
        reg.port,
        proxy::Options {
            bearer: true,
            upload_locations_to: Some(format!("http://{}", other.host())),
            ..Default::default()
        },
    );
    let target = format!("{}/moved/app:1", front.host());
    let p = app_project(&[&target]);
    let out = p.ok(&["push", "--sbom", "none"]);
    let digest = &pushed(&out)[0].1;
    let puts = other.upload_puts();
    assert_eq!(puts.len(), 3, "every blob went to the other host");
    assert!(puts.iter().all(|l| !l.authorization), "{puts:#?}");
    assert!(
        front
            .repo_requests()
            .iter()
            .all(|l| l.authorization || l.status == 401),
        "the registry itself gets the token: {:#?}",
        front.repo_requests()
    );
    let direct = format!("{}/moved/app:1", reg.host());
    assert_eq!(skopeo_digest(&direct).as_deref(), Some(digest.as_str()));

    // Basic: the password is what the other host would get. It gets
    // nothing, so the registry behind it refuses the upload.
    let (user, password) = ("uploader", "basic-secret-2718");
    let reg = DockerRegistry::start(Options {
        tls: false,
        htpasswd: Some((user.into(), password.into())),
    });
    let other = Proxy::start(reg.port, proxy::Options::default());
    let front = Proxy::start(
        reg.port,
        proxy::Options {
            upload_locations_to: Some(format!("http://{}", other.host())),
            ..Default::default()
        },
    );
    let target = format!("{}/moved/app:1", front.host());
    let p = app_project(&[&target]);
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    p.write(
        ".docker/config.json",
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, front.host()),
    );
    let out = p
        .cmd()
        .env("DOCKER_CONFIG", p.join(".docker"))
        .args(["push", "--sbom", "none", "--jobs", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("HTTP 401") && err.contains("nothing was tagged"),
        "{err}"
    );
    assert!(!err.contains(password) && !err.contains(&auth), "{err}");
    assert!(
        front
            .repo_requests()
            .iter()
            .any(|l| l.method == "POST" && l.authorization),
        "the registry itself gets the password"
    );
    let at_other = other.log();
    assert!(!at_other.is_empty(), "the upload went to the other host");
    assert!(at_other.iter().all(|l| !l.authorization), "{at_other:#?}");
}

#[test]
fn an_https_registry_whose_upload_location_is_plain_http_is_refused() {
    if !(peers() && common::require("openssl")) {
        return;
    }
    let mut reg = DockerRegistry::start(Options {
        tls: true,
        htpasswd: None,
    });
    // distribution builds its Locations from `http.host` when it is set.
    let config = reg.dir.path().join("config.yml");
    let text = std::fs::read_to_string(&config).unwrap();
    let addr = format!("  addr: 127.0.0.1:{}\n", reg.port);
    assert!(text.contains(&addr), "{text}");
    let text = text.replace(
        &addr,
        &format!("{addr}  host: http://downgrade.invalid:5000\n"),
    );
    reg.stop();
    std::fs::write(&config, text).unwrap();
    reg.resume();

    let target = format!("{}/tls/app:1", reg.host());
    let p = app_project(&[&target]);
    let ca = format!("--ca-cert={}", reg.ca().display());
    let err = p.fails(&["push", "--sbom", "none", "--jobs", "1", &ca]);
    let last = final_error(&err);
    assert!(
        last.contains(&format!("registry {}", reg.host()))
            && last.contains("refused upload Location from HTTPS to plain HTTP")
            && last.contains("http://downgrade.invalid:5000/v2/tls/app/blobs/uploads/")
            && last.contains("nothing was tagged"),
        "{err}"
    );
    assert!(!last.contains("_state="), "no query string: {err}");
}

#[test]
fn an_upload_whose_answer_never_comes_is_given_up_after_the_timeout() {
    if !peers() {
        return;
    }
    // Once: the upload starts over and the push completes.
    let (reg, proxy) = behind_proxy(proxy::Options {
        scripted: vec![("PUT".into(), "/blobs/uploads/".into(), Fault::Stall)],
        ..Default::default()
    });
    let target = format!("{}/stall/app:1", proxy.host());
    let p = app_project(&[&target]);
    let start = std::time::Instant::now();
    let out = p
        .cmd()
        .env("GANTRY_HTTP_TIMEOUT", "1")
        .args(["push", "--sbom", "none", "--jobs", "1"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("upload: PUT /v2/stall/app/blobs/uploads/") && err.contains("no data for 1 s"),
        "{err}"
    );
    assert!(start.elapsed() < std::time::Duration::from_secs(20));
    let direct = format!("{}/stall/app:1", reg.host());
    let digest = &pushed(&String::from_utf8_lossy(&out.stdout))[0].1;
    assert_eq!(skopeo_digest(&direct).as_deref(), Some(digest.as_str()));

    // Every time: a bounded sequence, then an error naming the request.
    let scripted = (0..8)
        .map(|_| {
            (
                "PUT".to_string(),
                "/blobs/uploads/".to_string(),
                Fault::Stall,
            )
        })
        .collect();
    let (reg, proxy) = behind_proxy(proxy::Options {
        scripted,
        ..Default::default()
    });
    let target = format!("{}/stall/app:1", proxy.host());
    let p = app_project(&[&target]);
    let start = std::time::Instant::now();
    let out = p
        .cmd()
        .args([
            "push",
            "--sbom",
            "none",
            "--jobs",
            "1",
            "--http-timeout",
            "1",
        ])
        .output()
        .unwrap();
    let took = start.elapsed();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    let last = final_error(&err);
    assert!(
        last.contains(&format!("registry {}", proxy.host()))
            && last.contains("upload: PUT /v2/stall/app/blobs/uploads/")
            && last.contains("no data for 1 s")
            && last.contains("gave up after 4 attempts")
            && last.contains("nothing was tagged"),
        "{err}"
    );
    assert!(took < std::time::Duration::from_secs(20), "took {took:?}");
    assert_eq!(skopeo_digest(&format!("{}/stall/app:1", reg.host())), None);
}
