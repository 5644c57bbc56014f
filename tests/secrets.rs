//! No secret in any message: passwords planted in credential files, in a
//! `.env` file used as a base or inspected, and in references, then every
//! byte gantry writes is searched for them: stdout, stderr, `--json`
//! output, `--report` and `--metadata-file` files, anything else left in the
//! project, and the store's records.

mod common;

use std::fs;
use std::path::Path;
use std::process::Output;

use common::fake_registry::{Auth, FakeRegistry};
use common::Project;

/// Every planted secret holds this, so one search finds them all.
const MARK: &str = "PLANTED";

/// A build that writes every output it can: stdout JSON, a report file and a tarball.
const BUILD_WITH_EVERY_OUTPUT: [&str; 6] = [
    "build",
    "--json",
    "--report",
    "report.json",
    "-o",
    "out.tar",
];

/// Files the test wrote and gantry only reads.
const INPUTS: [&str; 4] = ["gantry.toml", "prod.env", "docker/config.json", "auth.json"];

/// Asserts that nothing gantry wrote holds a secret: the output of `args`,
/// every file in the project but the planted inputs, and the store's
/// records. `expect` is what the refusal must say.
fn assert_no_secret(p: &Project, args: &[&str], out: &Output, expect: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "gantry {args:?} succeeded:\n{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
    for e in expect {
        assert!(
            stderr.contains(e),
            "gantry {args:?} does not say {e:?}:\n{stderr}"
        );
    }
    for (what, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
        assert!(
            !contains(bytes, MARK),
            "gantry {args:?} wrote a secret on {what}:\n{}",
            String::from_utf8_lossy(bytes)
        );
    }
    for (root, skip) in [
        (p.path(), &INPUTS[..]),
        (&p.store.path().join("meta"), &[][..]),
    ] {
        for file in files(root) {
            let rel = file
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if skip.contains(&rel.as_str()) {
                continue;
            }
            let bytes = fs::read(&file).unwrap();
            assert!(
                !contains(&bytes, MARK),
                "gantry {args:?} wrote a secret into {}",
                file.display()
            );
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else {
        return out;
    };
    for e in entries {
        let path = e.unwrap().path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

fn run(p: &Project, args: &[&str]) -> Output {
    p.cmd()
        .env("DOCKER_CONFIG", p.join("docker"))
        .env("REGISTRY_AUTH_FILE", p.join("auth.json"))
        .args(args)
        .output()
        .expect("run gantry")
}

/// A project whose one image is based on `base`.
fn project(base: &str) -> Project {
    let p = Project::new();
    p.write(
        "gantry.toml",
        format!("[image.app]\nbase = \"{base}\"\nplatform = \"linux/amd64\"\n"),
    );
    p
}

/// The verbs, with every output flag, that read `base` or talk to `host`.
fn verbs(host: &str) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(|a| a.to_string()).collect();
    vec![
        s(&BUILD_WITH_EVERY_OUTPUT),
        s(&[
            "push",
            "app",
            "-t",
            &format!("{host}/app:1"),
            "--metadata-file",
            "push.json",
        ]),
        s(&["pull", &format!("{host}/app:1"), "-o", "pulled/"]),
    ]
}

#[test]
fn malformed_credential_files_never_echo_a_password() {
    let registry = FakeRegistry::start(Auth::Basic {
        user: "u".into(),
        password: "p".into(),
    });
    let host = registry.host();
    let p = project(&format!("{host}/base:1"));
    for (config, auth, names) in [
        (
            format!(r#"{{"auths":{{"{host}":"{MARK}-cfg-1"}}}}"#),
            None,
            format!(r#"auths."{host}""#),
        ),
        (
            format!(r#"{{"auths":{{"{host}":{{"username":"u","password":{{"{MARK}":1}}}}}}}}"#),
            None,
            format!(r#"auths."{host}".password"#),
        ),
        (
            format!(r#"{{"credHelpers":{{"{host}":["{MARK}-cfg-3"]}}}}"#),
            None,
            format!(r#"credHelpers."{host}""#),
        ),
        (
            r#"{"auths":{}}"#.to_string(),
            Some(format!(
                r#"{{"auths":{{"{host}":{{"auth":"{MARK}-not-base64"}}}}}}"#
            )),
            format!(r#"auths."{host}".auth"#),
        ),
        (
            r#"{"auths":{}}"#.to_string(),
            // base64 of "PLANTED-without-a-colon"
            Some(format!(
                r#"{{"auths":{{"{host}":{{"auth":"UExBTlRFRC13aXRob3V0LWEtY29sb24="}}}}}}"#
            )),
            format!(r#"auths."{host}".auth"#),
        ),
        (
            format!(r#"{{"auths":{{"{host}":{{"auth":"{MARK}" x}}}}}}"#),
            None,
            "line 1".to_string(),
        ),
    ] {
        p.write("docker/config.json", &config);
        match &auth {
            Some(a) => drop(p.write("auth.json", a)),
            None => drop(fs::remove_file(p.join("auth.json"))),
        }
        let file = if auth.is_some() {
            "auth.json"
        } else {
            "config.json"
        };
        for args in verbs(&host) {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let out = run(&p, &args);
            assert_no_secret(&p, &args, &out, &[file, &names]);
        }
    }
}

#[test]
fn a_file_that_is_not_a_tar_never_shows_its_content() {
    // Longer than a tar header block, so the tar reader parses its fields
    // (the checksum field holds text and the name is the first 100 bytes).
    let env = format!("PASSWORD={MARK}-env-secret\nTOKEN={MARK}-token\n").repeat(40);
    for base in ["docker-archive:prod.env", "oci:prod.env"] {
        let p = project(base);
        p.write("prod.env", &env);
        let args = BUILD_WITH_EVERY_OUTPUT;
        let out = run(&p, &args);
        assert_no_secret(&p, &args, &out, &["prod.env", "not a tar archive"]);
    }
    let p = project("scratch");
    p.write("prod.env", &env);
    for args in [
        &["inspect", "prod.env"][..],
        &["inspect", "--json", "prod.env"],
    ] {
        let out = run(&p, args);
        assert_no_secret(&p, args, &out, &["prod.env", "not a tar archive"]);
    }
}

#[test]
fn a_reference_with_a_password_is_refused_masked() {
    let secret = format!("{MARK}-ref-secret");
    let with_password = format!("user:{secret}@ghcr.io/acme/app:1");
    let masked = "user:***@ghcr.io/acme/app:1";
    // In the build file, as a base and as a tag.
    let p = project(&with_password);
    let args = BUILD_WITH_EVERY_OUTPUT;
    let out = run(&p, &args);
    assert_no_secret(&p, &args, &out, &[masked, "credentials"]);
    let p = project("scratch");
    p.write(
        "gantry.toml",
        format!(
            "[image.app]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\
             tags = [\"{with_password}\"]\n"
        ),
    );
    let out = run(&p, &args);
    assert_no_secret(&p, &args, &out, &[masked]);
    // On the command line.
    let p = project("scratch");
    for args in [
        &[
            "push",
            "app",
            "-t",
            &with_password,
            "--metadata-file",
            "push.json",
        ][..],
        &["pull", &with_password, "-o", "pulled/"],
    ] {
        let out = run(&p, args);
        assert_no_secret(&p, args, &out, &[masked]);
    }
}
