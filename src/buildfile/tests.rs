//! Tests of `buildfile`, kept apart so the module reads as one concept.

use super::*;

fn parse(text: &str) -> Result<BuildFile> {
    BuildFile::parse(text, Path::new("/proj/gantry.toml"))
}

fn err(text: &str) -> String {
    parse(text).unwrap_err().display_chain()
}

#[test]
fn full_example_parses() {
    let bf = parse(
        r#"
[image.worker]
base = "scratch"
platform = "linux/amd64"
entrypoint = ["/app/bin/worker"]
cmd = ["--serve"]
env = { PATH = "/app/bin:${PATH}", MODE = "prod" }
user = "65532:65532"
workdir = "/app"
labels = { "org.opencontainers.image.source" = "https://example.com/repo" }
annotations = { "com.example.team" = "infra" }
exposed_ports = ["8080/tcp", "53/udp", "9000"]
volumes = ["/data"]
stop_signal = "SIGTERM"
tags = ["example.com/worker:dev"]

[[image.worker.layer]]
name = "app"
owner = "65532:65532"
files = [
  { src = "target/release/worker", dst = "/app/bin/worker", mode = "0755" },
  { src = "config/", dst = "/etc/worker/", exclude = ["**/*.bak"] },
  { dir = "/var/lib/worker", mode = "0700" },
  { symlink = "/app/bin/w", target = "worker" },
]
"#,
    )
    .unwrap();
    let w = &bf.images["worker"];
    assert_eq!(w.exposed_ports, ["8080/tcp", "53/udp", "9000/tcp"]);
    assert_eq!(w.layers[0].owner.uid, 65532);
    assert_eq!(w.layers[0].entries.len(), 4);
    assert_eq!(w.layers[0].compression, Compression::Gzip);
    assert_eq!(w.layers[0].compression_level, 4);
    match &w.layers[0].entries[1].kind {
        EntrySpecKind::Copy {
            dst,
            dst_is_dir,
            src,
            ..
        } => {
            assert_eq!(dst, "etc/worker");
            assert!(dst_is_dir);
            assert_eq!(src, Path::new("/proj/config/"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_keys_are_errors_with_line_numbers() {
    let e = err("[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\nentrypiont = []\n");
    assert!(e.contains("gantry.toml:4:"), "{e}");
    assert!(e.contains("entrypiont"), "{e}");
    let e = err("[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n[[image.a.layer]]\nfiles = [{ sorce = \"x\" }]\n");
    assert!(e.contains("sorce") && e.contains(":5:"), "{e}");
}

#[test]
fn malformed_modes_are_refused() {
    for m in ["755", "\"0999\"", "\"rwx\"", "\"077777\"", "\"\""] {
        let text = format!(
                "[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n[[image.a.layer]]\nfiles = [{{ dir = \"/x\", mode = {m} }}]\n"
            );
        let e = err(&text);
        assert!(e.contains("malformed mode"), "{m}: {e}");
        assert!(e.contains("image.a.layer[0].files[0]"), "{m}: {e}");
    }
}

#[test]
fn dst_escaping_root_is_refused() {
    assert!(normalize_dst("/../etc").is_err());
    assert!(normalize_dst("a/../../b").is_err());
    assert_eq!(normalize_dst("/a/./b//c/../d/").unwrap(), "a/b/d");
    assert_eq!(normalize_dst("rel/x").unwrap(), "rel/x");
    assert_eq!(normalize_dst("/").unwrap(), "");
}

#[test]
fn scratch_needs_a_platform() {
    let e = err("[image.a]\nbase = \"scratch\"\n");
    assert!(e.contains("needs `platform`"), "{e}");
}

#[test]
fn build_order_puts_bases_first_and_names_cycles() {
    let bf = parse(
            "[image.app]\nbase = \":mid\"\n[image.mid]\nbase = \":root\"\n[image.root]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n[image.other]\nbase = \"scratch\"\nplatform = \"linux/arm64\"\n",
        )
        .unwrap();
    let names: Vec<_> = bf
        .build_order(&["app".into()])
        .unwrap()
        .iter()
        .map(|i| i.name.clone())
        .collect();
    assert_eq!(names, ["root", "mid", "app"]);
    assert_eq!(bf.build_order(&[]).unwrap().len(), 4);
    let bf = parse("[image.a]\nbase = \":b\"\n[image.b]\nbase = \":a\"\n").unwrap();
    let e = bf.build_order(&[]).unwrap_err().to_string();
    assert!(e.contains("cycle: a -> b -> a"), "{e}");
}

#[test]
fn one_tag_on_two_images_is_refused() {
    let e = err("[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\ntags = [\"x:1\"]\n\
                     [image.b]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\ntags = [\"docker.io/library/x:1\"]\n");
    assert!(e.contains("both have the tag x:1"), "{e}");
}

#[test]
fn platform_aliases_normalise() {
    assert_eq!(
        Platform::parse("linux/arm64/v8").unwrap().to_string(),
        "linux/arm64"
    );
    assert_eq!(
        Platform::parse("linux/aarch64").unwrap().to_string(),
        "linux/arm64"
    );
    assert_eq!(
        Platform::parse("linux/arm/v7").unwrap().to_string(),
        "linux/arm/v7"
    );
    assert!(Platform::parse("linux").is_err());
    assert!(Platform::parse("Linux/amd64").is_err());
}

#[test]
fn nul_in_a_symlink_target_is_refused_with_its_location() {
    let e = err(concat!(
        "[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n",
        "[[image.a.layer]]\n",
        "files = [\n  { symlink = \"/bin/sh\", target = \"busybox\\u0000x\" },\n]\n",
    ));
    assert!(
        e.contains("/proj/gantry.toml:6:3") && e.contains("NUL"),
        "{e}"
    );
}

#[test]
fn a_base_with_credentials_is_refused_with_the_password_masked() {
    for base in ["user:hunter2@ghcr.io/acme/app:1", ":user:hunter2@x"] {
        let e = err(&format!("[image.a]\nbase = \"{base}\"\n"));
        assert!(e.contains("user:***@") && !e.contains("hunter2"), "{e}");
    }
}

#[test]
fn docker_config_fields_parse_with_durations_in_nanoseconds() {
    let bf = parse(
        r#"
[image.web]
base = "scratch"
platform = "linux/amd64"
healthcheck = { test = ["CMD", "/app/health"], interval = "1m30s", timeout = "500ms", start_period = "10s", start_interval = "2s", retries = 3 }
shell = ["/bin/bash", "-c"]
onbuild = []
"#,
    )
    .unwrap();
    let w = &bf.images["web"];
    let h = w.healthcheck.as_ref().unwrap();
    assert_eq!(h.interval, Some(90_000_000_000));
    assert_eq!(h.timeout, Some(500_000_000));
    assert_eq!(h.start_period, Some(10_000_000_000));
    assert_eq!(h.start_interval, Some(2_000_000_000));
    assert_eq!(h.retries, Some(3));
    assert_eq!(
        h.to_json(),
        serde_json::json!({"Test": ["CMD", "/app/health"], "Interval": 90_000_000_000u64,
            "Timeout": 500_000_000, "StartPeriod": 10_000_000_000u64,
            "StartInterval": 2_000_000_000u64, "Retries": 3})
    );
    assert_eq!(
        w.shell.as_deref(),
        Some(&["/bin/bash".to_string(), "-c".into()][..])
    );
    assert_eq!(w.onbuild.as_deref(), Some(&[][..]));
}

#[test]
fn healthcheck_and_shell_override_per_platform() {
    let bf = parse(
        r#"
[image.web]
base = "scratch"
platforms = ["linux/amd64", "linux/arm64"]
healthcheck = { test = ["CMD", "/a"] }

[image.web.overrides."linux/arm64"]
healthcheck = { test = ["NONE"] }
shell = ["/bin/ash", "-c"]
"#,
    )
    .unwrap();
    let w = &bf.images["web"];
    let arm = w.for_platform(&Platform::parse("linux/arm64").unwrap());
    assert_eq!(arm.healthcheck.unwrap().test, ["NONE"]);
    assert_eq!(arm.shell.unwrap()[0], "/bin/ash");
    let amd = w.for_platform(&Platform::parse("linux/amd64").unwrap());
    assert_eq!(amd.healthcheck.unwrap().test, ["CMD", "/a"]);
    assert!(amd.shell.is_none());
}

#[test]
fn malformed_duration_is_an_error_at_its_line_and_column() {
    let e = err(r#"
[image.web]
base = "scratch"
platform = "linux/amd64"
healthcheck = { test = ["CMD", "/a"], interval = "30" }
"#);
    assert!(
        e.contains("gantry.toml:5:50 (image.web.healthcheck.interval)"),
        "{e}"
    );
    assert!(e.contains("needs a unit"), "{e}");
}

#[test]
fn healthcheck_refuses_unknown_tests_settings_beside_none_and_unknown_keys() {
    let head = "[image.web]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n";
    for (hc, want) in [
        (r#"{ test = ["RUN", "x"] }"#, "`test` must be"),
        (r#"{ test = ["CMD-SHELL", "a", "b"] }"#, "`test` must be"),
        (
            r#"{ test = ["NONE"], retries = 2 }"#,
            "takes no other settings",
        ),
        (
            r#"{ test = ["CMD", "x"], retries = -1 }"#,
            "must be a count",
        ),
        (
            r#"{ test = ["CMD", "x"], interval = "10us" }"#,
            "at least 1ms",
        ),
        (
            r#"{ test = ["CMD", "x"], intervall = "1s" }"#,
            "unknown field `intervall`",
        ),
    ] {
        let e = err(&format!("{head}healthcheck = {hc}\n"));
        assert!(e.contains(want), "{hc}: {e}");
        assert!(e.contains("gantry.toml:4:"), "{hc}: {e}");
    }
    let e = err(&format!("{head}onbuild = [\"RUN x\", \"from alpine\"]\n"));
    assert!(e.contains("gantry.toml:4:11 (image.web.onbuild)"), "{e}");
    assert!(e.contains("refuses as a trigger"), "{e}");
    let e = err(&format!("{head}shell = []\n"));
    assert!(e.contains("gantry.toml:4:9 (image.web.shell)"), "{e}");
}
