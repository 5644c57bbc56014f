//! What a base image's configuration keeps through a build: every field
//! gantry does not set, byte for byte.

mod common;

use common::digest::sha256_hex;
use common::oci::{blob_path, read_json, tagged_manifest};
use common::Project;

/// Numbers no f64 (or u64) holds exactly, as registries may serve them.
const NUMBERS: &[&str] = &[
    "18446744073709551616",
    "123456789012345678901234567890",
    "-123456789012345678901234567890",
    "0.1000000000000000000000000001",
    "1e400",
    "1.0",
    "-0",
    "2E-5",
];

/// The same numbers as the output config holds them: every digit kept; only
/// an exponent is spelled one way (`e`, with its sign), which JSON reads as
/// the same number.
const WRITTEN: &[&str] = &[
    "18446744073709551616",
    "123456789012345678901234567890",
    "-123456789012345678901234567890",
    "0.1000000000000000000000000001",
    "1e+400",
    "1.0",
    "-0",
    "2e-5",
];

/// Writes an OCI layout holding one image (no layers) with `config` as its
/// configuration, tagged `1`.
fn write_base(p: &Project, config: &str) {
    let blob = |bytes: &[u8]| {
        let hex = sha256_hex(bytes);
        p.write(&format!("base/blobs/sha256/{hex}"), bytes);
        format!("sha256:{hex}")
    };
    let config_digest = blob(config.as_bytes());
    let manifest = format!(
        r#"{{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"{config_digest}","size":{}}},"layers":[]}}"#,
        config.len()
    );
    let manifest_digest = blob(manifest.as_bytes());
    p.write("base/oci-layout", r#"{"imageLayoutVersion":"1.0.0"}"#);
    p.write(
        "base/index.json",
        format!(
            r#"{{"schemaVersion":2,"manifests":[{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"{manifest_digest}","size":{},"annotations":{{"org.opencontainers.image.ref.name":"1"}}}}]}}"#,
            manifest.len()
        ),
    );
}

#[test]
fn numbers_no_float_holds_survive_in_unknown_config_fields() {
    let p = Project::new();
    let list = NUMBERS.join(",");
    let config = format!(
        r#"{{"architecture":"amd64","os":"linux","big":{big},"vendor":{{"list":[{list}],"deep":{{"n":{long}}}}},"config":{{"Env":["A=1"],"Healthcheck":{{"Interval":{big},"Retries":{long}}}}},"rootfs":{{"type":"layers","diff_ids":[]}},"history":[{{"created_by":"base","weight":{big}}}]}}"#,
        big = NUMBERS[0],
        long = NUMBERS[3],
    );
    write_base(&p, &config);
    p.write(
        "gantry.toml",
        "[image.top]\nbase = \"oci:base:1\"\ntags = [\"top:1\"]\nenv = { B = \"2\" }\n",
    );
    p.ok(&["build", "--format", "oci", "-o", "out"]);

    let (_, manifest) = tagged_manifest(&p.join("out"), "1");
    let digest = manifest["config"]["digest"].as_str().unwrap();
    let written = std::fs::read_to_string(blob_path(&p.join("out"), digest)).unwrap();
    for (what, text) in [
        ("a top-level field", format!(r#""big":{}"#, NUMBERS[0])),
        (
            "a list in an unknown object",
            format!(r#""list":[{}]"#, WRITTEN.join(",")),
        ),
        (
            "a nested unknown object",
            format!(r#""deep":{{"n":{}}}"#, NUMBERS[3]),
        ),
        (
            "an unknown field of config",
            format!(r#""Interval":{},"Retries":{}"#, NUMBERS[0], NUMBERS[3]),
        ),
        ("a history entry", format!(r#""weight":{}"#, NUMBERS[0])),
    ] {
        assert!(
            written.contains(&text),
            "{what}: {text} not kept in the output config:\n{written}"
        );
    }
    // The fields gantry does set are still read and written as before.
    let config = read_json(&blob_path(&p.join("out"), digest));
    assert_eq!(config["config"]["Env"][0], "A=1");
    assert_eq!(config["config"]["Env"][1], "B=2");
    assert_eq!(
        manifest["config"]["size"].as_u64(),
        Some(written.len() as u64)
    );
}
