//! Registry behaviour that a real registry will not show on demand: bearer
//! tokens and their expiry, credentials and helpers, rate limits, server
//! errors, dropped connections and registries that send the wrong bytes.
//! All against the in-process registry of `common::fake_registry`.

mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use base64::Engine;
use common::fake_registry::{sha256, Auth, FakeRegistry, Fault};
use common::registry_bases::*;
use common::{digest_of, Project};

#[test]
fn bearer_tokens_and_shallow_builds_match_a_local_base() {
    let reg = FakeRegistry::start(Auth::Bearer {
        user: None,
        expires_in: 60,
    });
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");

    let out = ok(&p, &["build", "--sbom", "none"]);
    assert_eq!(digest_of(&out, "app"), local_digest(&base, None));
    // Shallow: the manifest and config, never the layer.
    assert_eq!(reg.count(&format!("/blobs/{}", base.config_digest)), 1);
    assert_eq!(reg.count(&format!("/blobs/{}", base.layer_digest)), 0);
    assert!(!store_has(&p, &base.layer_digest));
    assert_eq!(reg.tokens_issued(), 1, "{:#?}", reg.log());
    for line in reg.log().iter().filter(|l| l.contains("/v2/test/")) {
        assert!(line.ends_with("bearer"), "{line}");
    }

    // An output needs the layer: fetched once, then never again.
    ok(&p, &["build", "--sbom", "none", "-o", "app.tar"]);
    ok(&p, &["build", "--sbom", "none", "-o", "app2.tar"]);
    assert_eq!(reg.count(&format!("/blobs/{}", base.layer_digest)), 1);
    assert!(store_has(&p, &base.layer_digest));
    assert_eq!(
        fs::read(p.join("app.tar")).unwrap(),
        fs::read(p.join("app2.tar")).unwrap()
    );
}

#[test]
fn credentials_from_docker_config_are_used_and_never_shown() {
    let secret = "s3cret-pw-4711";
    let reg = FakeRegistry::start(Auth::Bearer {
        user: Some(("alice".into(), secret.into())),
        expires_in: 60,
    });
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");
    let config = |pw: &str| {
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("alice:{pw}"));
        p.write(
            ".docker/config.json",
            format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
        );
        auth
    };

    let out = p.gantry(&["build", "--sbom", "none", "-o", "app.tar"]);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "anonymous access must be refused");
    assert!(stderr.contains("UNAUTHORIZED"), "{stderr}");

    let auth = config(secret);
    let out = p.gantry(&["build", "--sbom", "none", "-o", "app.tar"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for text in [&out.stdout, &out.stderr] {
        let t = String::from_utf8_lossy(text);
        assert!(!t.contains(secret) && !t.contains(&auth), "{t}");
    }

    // A wrong password fails naming the registry, and shows neither it
    // nor its encoding. The store is emptied so the tag must be resolved.
    let wrong = config("wrong-pw-0815");
    fs::remove_dir_all(p.store.path()).unwrap();
    let e = fails(&p, &["build", "--sbom", "none"]);
    assert!(!e.contains("wrong-pw-0815") && !e.contains(&wrong), "{e}");
    assert!(
        e.contains(&reg.host()) && e.contains("UNAUTHORIZED") && e.contains("bad credentials"),
        "{e}"
    );

    // Podman's auth.json ($REGISTRY_AUTH_FILE) when docker's file has nothing.
    p.write(".docker/config.json", "{}");
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("alice:{secret}"));
    p.write(
        "no-auth.json",
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    );
    ok(&p, &["build", "--sbom", "none"]);
}

#[test]
fn identity_tokens_are_exchanged_at_the_token_service() {
    let reg = FakeRegistry::start(Auth::Refresh {
        refresh_token: "refresh-7f3a".into(),
    });
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");
    p.write(
        ".docker/config.json",
        format!(
            r#"{{"auths":{{"{}":{{"identitytoken":"refresh-7f3a"}}}}}}"#,
            reg.host()
        ),
    );
    let out = p.gantry(&["build", "--sbom", "none", "-o", "app.tar"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("refresh-7f3a"));
    assert_eq!(reg.count("POST /token"), 1, "{:#?}", reg.log());
}

#[test]
fn credential_helpers_are_asked_with_the_docker_protocol() {
    let reg = FakeRegistry::start(Auth::Basic {
        user: "bob".into(),
        password: "helper-secret-99".into(),
    });
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");
    let bin = p.join("bin");
    p.write(
        "bin/docker-credential-test",
        "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread server\necho \"$server\" >> \"$MARKER\"\n\
         printf '{\"ServerURL\":\"%s\",\"Username\":\"bob\",\"Secret\":\"helper-secret-99\"}' \"$server\"\n",
    );
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(
        bin.join("docker-credential-test"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    p.write(
        ".docker/config.json",
        format!(
            r#"{{"credsStore":"absent","credHelpers":{{"{}":"test"}}}}"#,
            reg.host()
        ),
    );
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = p
        .cmd()
        .env("DOCKER_CONFIG", p.join(".docker"))
        .env("REGISTRY_AUTH_FILE", p.join("none.json"))
        .env("PATH", path)
        .env("MARKER", p.join("asked"))
        .args(["build", "-o", "app.tar"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("helper-secret-99"));
    let asked = fs::read_to_string(p.join("asked")).unwrap();
    assert_eq!(
        asked.trim(),
        reg.host(),
        "the helper is asked once, for the host"
    );

    // The same helper as the default store (`credsStore`).
    p.write(".docker/config.json", r#"{"credsStore":"test"}"#);
    fs::remove_dir_all(p.store.path()).unwrap();
    let out = p
        .cmd()
        .env("DOCKER_CONFIG", p.join(".docker"))
        .env("REGISTRY_AUTH_FILE", p.join("none.json"))
        .env(
            "PATH",
            format!("{}:{}", bin.display(), std::env::var("PATH").unwrap()),
        )
        .env("MARKER", p.join("asked"))
        .args(["build"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let asked = fs::read_to_string(p.join("asked")).unwrap();
    assert_eq!(asked.lines().count(), 2, "{asked}");
    for line in reg.log().iter().filter(|l| l.contains("/v2/test/")) {
        assert!(line.ends_with("basic"), "{line}");
    }
}

#[test]
fn expired_and_revoked_tokens_are_renewed() {
    let reg = FakeRegistry::start(Auth::Bearer {
        user: None,
        expires_in: 2,
    });
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");
    // The token runs out while the config is served; the layer then needs
    // a new one, and a revoked one after that is replaced on the 401.
    reg.fault(
        &format!("/blobs/{}", base.config_digest),
        vec![Fault::Delay(Duration::from_millis(2500))],
    );
    reg.fault(
        &format!("/blobs/{}", base.layer_digest),
        vec![Fault::Revoke],
    );
    ok(&p, &["build", "--sbom", "none", "-o", "app.tar"]);
    assert!(reg.tokens_issued() >= 3, "{:#?}", reg.log());
    assert_eq!(reg.count(&format!("/blobs/{}", base.layer_digest)), 2);
    assert!(store_has(&p, &base.layer_digest));
}

#[test]
fn a_lying_registry_never_poisons_the_store() {
    let reg = FakeRegistry::start(Auth::None);
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");
    reg.fault(
        &format!("/blobs/{}", base.layer_digest),
        vec![Fault::Lie; 8],
    );
    let e = fails(&p, &["build", "--sbom", "none", "-o", "app.tar"]);
    assert!(
        e.contains(&base.layer_digest) && e.contains(&reg.host()) && e.contains("digest"),
        "{e}"
    );
    assert!(!store_has(&p, &base.layer_digest));
    assert_eq!(fs::read_dir(p.store.path().join("tmp")).unwrap().count(), 0);
    assert!(!p.join("app.tar").exists());

    // A manifest that does not hash to what the registry says it is.
    let p2 = app(&reg, "1");
    reg.fault("/manifests/1", vec![Fault::Lie]);
    let e = fails(&p2, &["build", "--sbom", "none"]);
    assert!(
        e.contains("manifest") && e.contains(&sha256(&base.manifest)),
        "{e}"
    );
}

#[test]
fn rate_limits_and_server_errors_are_retried() {
    let reg = FakeRegistry::start(Auth::None);
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");
    reg.fault(
        "/manifests/1",
        vec![
            Fault::Status {
                status: 429,
                retry_after: Some("2".into()),
            },
            Fault::Status {
                status: 500,
                retry_after: None,
            },
        ],
    );
    let start = Instant::now();
    let out = p.gantry(&["build", "--sbom", "none"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        start.elapsed() >= Duration::from_secs(2),
        "Retry-After honoured"
    );
    assert!(
        stderr.contains("warning: registry") && stderr.contains("HTTP 429; retrying in 2.0 s"),
        "retries are reported: {stderr}"
    );
    assert_eq!(reg.count("/manifests/1"), 3);
}

#[test]
fn persistent_failures_report_the_registry_code_and_message() {
    let reg = FakeRegistry::start(Auth::None);
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");
    reg.fault(
        "/manifests/1",
        vec![
            Fault::Status {
                status: 503,
                retry_after: None,
            };
            10
        ],
    );
    let e = fails(&p, &["build", "--sbom", "none"]);
    assert!(
        e.contains(&format!("registry {}", reg.host()))
            && e.contains("test/base:1")
            && e.contains("HTTP 503 FAULT: scripted 503"),
        "{e}"
    );
    assert_eq!(reg.count("/manifests/1"), 4, "bounded retries");

    // Not transient: reported at once.
    let p = app(&reg, "nope");
    let e = fails(&p, &["build", "--sbom", "none"]);
    assert!(
        e.contains("HTTP 404 MANIFEST_UNKNOWN: manifest unknown"),
        "{e}"
    );
    assert_eq!(reg.count("/manifests/nope"), 1);
}

#[test]
fn dropped_connections_are_retried() {
    let reg = FakeRegistry::start(Auth::None);
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");
    reg.fault("/manifests/1", vec![Fault::Drop]);
    reg.fault(
        &format!("/blobs/{}", base.layer_digest),
        vec![Fault::Truncate],
    );
    ok(&p, &["build", "--sbom", "none", "-o", "app.tar"]);
    assert_eq!(reg.count("/manifests/1"), 2);
    assert_eq!(reg.count(&format!("/blobs/{}", base.layer_digest)), 2);
    assert!(store_has(&p, &base.layer_digest));
}

#[test]
fn schema1_manifests_are_refused_clearly() {
    let reg = FakeRegistry::start(Auth::None);
    let fixture =
        fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/registry/schema1.json"))
            .unwrap();
    reg.put_manifest(
        "test/base",
        "old",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        &fixture,
    );
    let p = app(&reg, "old");
    let e = fails(&p, &["build", "--sbom", "none"]);
    assert!(e.contains("schema 1") && e.contains("test/base:old"), "{e}");
}

#[test]
fn the_platform_is_chosen_from_an_index() {
    let reg = FakeRegistry::start(Auth::None);
    let amd = make_base("linux/amd64", "amd\n");
    let arm = make_base("linux/arm64", "arm\n");
    let (amd_digest, _) = serve_index(&reg, &amd, &arm, Some("v8"));
    let p = Project::new();
    isolate(&p);
    p.write("a.txt", "app\n");
    let base = format!("{}/test/base:multi", reg.host());

    p.write("gantry.toml", app_file(&base, Some("linux/arm64/v8")));
    let out = ok(&p, &["build", "--sbom", "none"]);
    assert_eq!(
        digest_of(&out, "app"),
        local_digest(&arm, Some("linux/arm64"))
    );
    assert_eq!(reg.count(&format!("/manifests/{amd_digest}")), 0);

    p.write("gantry.toml", app_file(&base, Some("linux/s390x")));
    let e = fails(&p, &["build", "--sbom", "none"]);
    assert!(
        e.contains("linux/s390x") && e.contains("linux/amd64, linux/arm64"),
        "{e}"
    );
}

#[test]
fn lock_pins_digests_and_locked_builds_refuse_stale_locks() {
    let reg = FakeRegistry::start(Auth::None);
    let one = make_base("linux/amd64", "one\n");
    let two = make_base("linux/amd64", "two\n");
    let one_digest = push(&reg, &one, "1");
    let p = app(&reg, "1");

    let e = fails(&p, &["build", "--sbom", "none", "--locked"]);
    assert!(
        e.contains("gantry.lock") && e.contains("test/base:1"),
        "{e}"
    );

    ok(&p, &["lock"]);
    let lock = fs::read_to_string(p.join("gantry.lock")).unwrap();
    assert!(
        lock.contains(&format!("[base.\"{}/test/base:1\"]", reg.host()))
            && lock.contains(&format!("\"linux/amd64\" = \"{one_digest}\"")),
        "{lock}"
    );
    let before = digest_of(&ok(&p, &["build", "--sbom", "none", "--locked"]), "app");

    // The tag moves; the lock keeps builds where they were, without asking.
    push(&reg, &two, "1");
    let by_tag = reg.count("/manifests/1");
    let again = digest_of(&ok(&p, &["build", "--sbom", "none", "--locked"]), "app");
    assert_eq!(before, again);
    assert_eq!(
        reg.count("/manifests/1"),
        by_tag,
        "no tag request with a lock"
    );

    ok(&p, &["lock", "--update", "app"]);
    let updated = digest_of(&ok(&p, &["build", "--sbom", "none", "--locked"]), "app");
    assert_eq!(updated, local_digest(&two, None));
    let e = fails(&p, &["lock", "--update", "nothing-like-it"]);
    assert!(e.contains("nothing-like-it"), "{e}");

    // The build file moves to another base: the lock is stale.
    push(&reg, &one, "2");
    p.write(
        "gantry.toml",
        app_file(&format!("{}/test/base:2", reg.host()), None),
    );
    let e = fails(&p, &["build", "--sbom", "none", "--locked"]);
    assert!(e.contains("stale") && e.contains("test/base:"), "{e}");
    ok(&p, &["lock"]);
    ok(&p, &["build", "--sbom", "none", "--locked"]);
}

#[test]
fn offline_builds_name_what_the_store_lacks() {
    let reg = FakeRegistry::start(Auth::None);
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");
    let e = fails(&p, &["build", "--sbom", "none", "--offline"]);
    assert!(e.contains("offline") && e.contains("test/base:1"), "{e}");
    assert!(reg.log().is_empty(), "{:#?}", reg.log());

    // Warm but shallow: the build works, an output needs the layer.
    let online = digest_of(&ok(&p, &["build", "--sbom", "none"]), "app");
    let n = reg.log().len();
    assert_eq!(
        digest_of(&ok(&p, &["build", "--sbom", "none", "--offline"]), "app"),
        online
    );
    let e = fails(
        &p,
        &["build", "--sbom", "none", "--offline", "-o", "app.tar"],
    );
    assert!(
        e.contains(&base.layer_digest) && e.contains("not in the store"),
        "{e}"
    );
    assert_eq!(reg.log().len(), n, "offline means no request at all");
}

#[test]
fn a_registry_that_never_answers_is_given_up_after_the_timeout_and_retried() {
    let reg = FakeRegistry::start(Auth::None);
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");
    reg.fault("/manifests/1", vec![Fault::Stall]);
    let (out, took) = timed(&p, &["build", "--sbom", "none"]);
    let e = stderr(&out);
    assert!(out.status.success(), "{e}");
    assert!(
        e.contains("GET /v2/test/base/manifests/1: no data for 1 s"),
        "the stall is reported as a retry: {e}"
    );
    assert_eq!(reg.count("/manifests/1"), 2);
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[test]
fn a_registry_that_always_stalls_ends_in_an_error_naming_the_request_within_a_bound() {
    let reg = FakeRegistry::start(Auth::None);
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");
    reg.fault("/manifests/1", vec![Fault::Stall; 10]);
    // The flag, this time, instead of the variable.
    let start = Instant::now();
    let out = p.gantry(&["build", "--sbom", "none", "--http-timeout", "1"]);
    let took = start.elapsed();
    let e = stderr(&out);
    assert!(!out.status.success(), "{e}");
    let last = e.lines().last().unwrap_or_default();
    assert!(
        last.contains(&format!("registry {}", reg.host()))
            && last.contains("/v2/test/base/manifests/1: no data for 1 s")
            && last.contains("gave up after 4 attempts"),
        "{e}"
    );
    assert_eq!(reg.count("/manifests/1"), 4, "bounded retries");
    // 4 s of silence and at most 3.5 s of backoff.
    assert!(took < Duration::from_secs(12), "took {took:?}");
}

#[test]
fn a_manifest_or_blob_that_stops_mid_way_times_out_and_starts_over() {
    let reg = FakeRegistry::start(Auth::None);
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");
    reg.fault("/manifests/1", vec![Fault::StallMidway]);
    reg.fault(
        &format!("/blobs/{}", base.layer_digest),
        vec![Fault::StallMidway],
    );
    let (out, took) = timed(&p, &["build", "--sbom", "none", "-o", "app.tar"]);
    let e = stderr(&out);
    assert!(out.status.success(), "{e}");
    assert!(
        e.contains("reading the manifest: GET /v2/test/base/manifests/1: no data for 1 s"),
        "{e}"
    );
    assert!(
        e.contains(&format!(
            "downloading {0}: GET /v2/test/base/blobs/{0}: no data for 1 s",
            base.layer_digest
        )),
        "{e}"
    );
    assert_eq!(reg.count(&format!("/blobs/{}", base.layer_digest)), 2);
    assert!(store_has(&p, &base.layer_digest));
    assert!(took < Duration::from_secs(15), "took {took:?}");
}

#[test]
fn a_malformed_http_timeout_is_an_error_naming_the_variable() {
    let reg = FakeRegistry::start(Auth::None);
    let p = app(&reg, "1");
    for bad in ["soon", "0", "-3", "1.5"] {
        let out = p.gantry_with(
            &["build", "--sbom", "none"],
            &[("GANTRY_HTTP_TIMEOUT", bad)],
        );
        let e = stderr(&out);
        assert!(!out.status.success(), "{bad}: {e}");
        assert!(e.contains("GANTRY_HTTP_TIMEOUT"), "{bad}: {e}");
    }
    assert!(reg.log().is_empty(), "refused before any request");
}

#[test]
fn a_credential_helper_that_hangs_is_stopped_and_named() {
    let reg = FakeRegistry::start(Auth::Basic {
        user: "bob".into(),
        password: "pw".into(),
    });
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    let p = app(&reg, "1");
    // It says something secret-looking, then hangs, as does a child of it.
    p.write(
        "bin/docker-credential-hang",
        "#!/bin/sh\nprintf 'half-said-secret-1234'\necho $$ > \"$PIDS\"\nsleep 60\n",
    );
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(
        p.join("bin/docker-credential-hang"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    p.write(".docker/config.json", r#"{"credsStore":"hang"}"#);
    let path = format!(
        "{}:{}",
        p.join("bin").display(),
        std::env::var("PATH").unwrap()
    );
    let pids = p.join("pids");
    let (out, took) = {
        let start = Instant::now();
        let out = p.gantry_with(
            &["build", "--sbom", "none"],
            &[
                ("GANTRY_HTTP_TIMEOUT", "1"),
                ("PATH", &path),
                ("PIDS", pids.to_str().unwrap()),
            ],
        );
        (out, start.elapsed())
    };
    let e = stderr(&out);
    assert!(!out.status.success(), "{e}");
    assert!(
        e.contains("credential helper docker-credential-hang")
            && e.contains("no answer within 1 s"),
        "{e}"
    );
    assert!(!e.contains("half-said-secret"), "{e}");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // The helper itself was killed.
    let pid = fs::read_to_string(&pids).unwrap();
    let stat = fs::read_to_string(format!("/proc/{}/stat", pid.trim())).unwrap_or_default();
    let state = stat.rsplit(") ").next().and_then(|s| s.chars().next());
    assert!(matches!(state, None | Some('Z') | Some('X')), "{stat}");
}

#[test]
fn a_blob_redirect_to_another_origin_gets_no_credentials() {
    let reg = FakeRegistry::start(Auth::Basic {
        user: "bob".into(),
        password: "redirect-secret-5".into(),
    });
    let storage = FakeRegistry::start(Auth::None);
    let base = make_base("linux/amd64", "base\n");
    push(&reg, &base, "1");
    push(&storage, &base, "1");
    let p = app(&reg, "1");
    let auth = base64::engine::general_purpose::STANDARD.encode("bob:redirect-secret-5");
    p.write(
        ".docker/config.json",
        format!(r#"{{"auths":{{"{}":{{"auth":"{auth}"}}}}}}"#, reg.host()),
    );
    reg.fault(
        &format!("/blobs/{}", base.layer_digest),
        vec![Fault::Redirect(format!("http://{}", storage.host()))],
    );
    ok(&p, &["build", "--sbom", "none", "-o", "app.tar"]);
    let at_storage: Vec<String> = storage.log();
    assert_eq!(at_storage.len(), 1, "{at_storage:#?}");
    assert!(
        at_storage[0].starts_with(&format!("GET /v2/test/base/blobs/{}", base.layer_digest))
            && at_storage[0].ends_with(" -"),
        "no credentials to another origin: {at_storage:#?}"
    );
    for line in reg.log().iter().filter(|l| l.contains("/v2/test/")) {
        assert!(line.ends_with("basic"), "{line}");
    }
}

#[test]
fn a_lock_pinning_a_manifest_the_registry_lacks_names_the_digest_the_base_and_the_lock() {
    if !common::require(common::docker_registry::BIN) {
        return;
    }
    let reg = common::docker_registry::DockerRegistry::start(Default::default());
    let base_ref = format!("{}/lib/base:1", reg.host());
    common::push::app_project(&[&base_ref]).ok(&["push"]);
    let p = Project::new();
    isolate(&p);
    p.write("a.txt", "app\n");
    p.write("gantry.toml", app_file(&base_ref, None));
    ok(&p, &["lock"]);
    let lock = fs::read_to_string(p.join("gantry.lock")).unwrap();
    let pinned = lock
        .split('"')
        .find(|s| s.starts_with("sha256:"))
        .unwrap()
        .to_string();
    let gone = sha256(b"a manifest this registry never had");
    fs::write(p.join("gantry.lock"), lock.replace(&pinned, &gone)).unwrap();
    let e = fails(&p, &["build", "--sbom", "none", "--locked"]);
    let last = e.lines().last().unwrap_or_default();
    assert!(
        last.contains("gantry.lock")
            && last.contains(&gone)
            && last.contains(&format!("base {base_ref}"))
            && last.contains(&format!("registry {} does not have", reg.host())),
        "{e}"
    );
}
