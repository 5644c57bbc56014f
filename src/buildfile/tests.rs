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
