//! Registry bases served by the in-process fake registry: bases built by
//! gantry into OCI layouts, apps on them, and gantry run with the real
//! credential files out of reach.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::fake_registry::{sha256, FakeRegistry};
use super::{digest_of, Project};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// A base image written to an OCI layout (by gantry, which is fine here:
/// these tests are about the protocol, not about reading foreign images).
pub struct Base {
    /// Keeps the project that built the base alive.
    pub _project: Project,
    /// The OCI layout the base was written to.
    pub layout: PathBuf,
    /// The base's manifest bytes.
    pub manifest: Vec<u8>,
    /// The digest of its config.
    pub config_digest: String,
    /// The digest of its one layer.
    pub layer_digest: String,
}

pub fn make_base(platform: &str, content: &str) -> Base {
    let p = Project::new();
    p.write("f.txt", content);
    p.write(
        "gantry.toml",
        format!(
            "[image.base]\nbase = \"scratch\"\nplatform = \"{platform}\"\ncmd = [\"/f.txt\"]\n\
             [[image.base.layer]]\nfiles = [{{ src = \"f.txt\", dst = \"/f.txt\" }}]\n"
        ),
    );
    p.ok(&["build", "-o", "layout/"]);
    let layout = p.join("layout");
    let index: serde_json::Value =
        serde_json::from_slice(&fs::read(layout.join("index.json")).unwrap()).unwrap();
    let digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest = fs::read(blob(&layout, &digest)).unwrap();
    let m: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    Base {
        config_digest: m["config"]["digest"].as_str().unwrap().to_string(),
        layer_digest: m["layers"][0]["digest"].as_str().unwrap().to_string(),
        _project: p,
        layout,
        manifest,
    }
}

pub fn blob(layout: &Path, digest: &str) -> PathBuf {
    layout
        .join("blobs/sha256")
        .join(digest.strip_prefix("sha256:").unwrap())
}

/// Serves every blob of `base` and its manifest as `test/base:<tag>`.
pub fn push(reg: &FakeRegistry, base: &Base, tag: &str) -> String {
    for e in fs::read_dir(base.layout.join("blobs/sha256")).unwrap() {
        reg.put_blob(&fs::read(e.unwrap().path()).unwrap());
    }
    reg.put_manifest("test/base", tag, OCI_MANIFEST, &base.manifest);
    sha256(&base.manifest)
}

pub fn app_file(base: &str, platform: Option<&str>) -> String {
    let platform = platform
        .map(|p| format!("platform = \"{p}\"\n"))
        .unwrap_or_default();
    format!(
        "[image.app]\nbase = \"{base}\"\n{platform}tags = [\"example.com/app:1\"]\n\
         [[image.app.layer]]\nfiles = [{{ src = \"a.txt\", dst = \"/a.txt\" }}]\n"
    )
}

pub fn app(reg: &FakeRegistry, tag: &str) -> Project {
    let p = Project::new();
    p.write("a.txt", "app\n");
    p.write(
        "gantry.toml",
        app_file(&format!("{}/test/base:{tag}", reg.host()), None),
    );
    isolate(&p);
    p
}

/// Keeps the real credential files out of reach of every command.
pub fn isolate(p: &Project) {
    fs::create_dir_all(p.join(".docker")).unwrap();
}

pub trait Isolated {
    fn gantry(&self, args: &[&str]) -> std::process::Output {
        self.gantry_with(args, &[])
    }
    fn gantry_with(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output;
}

impl Isolated for Project {
    fn gantry_with(&self, args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
        let mut c = self.cmd();
        c.env("DOCKER_CONFIG", self.join(".docker"))
            .env("REGISTRY_AUTH_FILE", self.join("no-auth.json"))
            .env_remove("XDG_RUNTIME_DIR")
            .env_remove("GANTRY_HTTP_TIMEOUT");
        for (k, v) in env {
            c.env(k, v);
        }
        c.args(args).output().unwrap()
    }
}

/// Runs gantry with a one-second idle timeout; returns the output and how
/// long the run took.
pub fn timed(p: &Project, args: &[&str]) -> (std::process::Output, Duration) {
    let start = Instant::now();
    let out = p.gantry_with(args, &[("GANTRY_HTTP_TIMEOUT", "1")]);
    (out, start.elapsed())
}

pub fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn ok(p: &Project, args: &[&str]) -> String {
    let out = p.gantry(args);
    assert!(
        out.status.success(),
        "gantry {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn fails(p: &Project, args: &[&str]) -> String {
    let out = p.gantry(args);
    assert!(
        !out.status.success(),
        "gantry {args:?} unexpectedly succeeded:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stderr).unwrap()
}

/// The digest of the same app built on the base as a local layout.
pub fn local_digest(base: &Base, platform: Option<&str>) -> String {
    let p = Project::new();
    p.write("a.txt", "app\n");
    p.write(
        "gantry.toml",
        app_file(&format!("oci:{}", base.layout.display()), platform),
    );
    digest_of(&p.ok(&["build"]), "app")
}

pub fn store_has(p: &Project, digest: &str) -> bool {
    blob(p.store.path(), digest).exists()
}

/// Serves `amd` and `arm` as `test/base:amd` and `test/base:arm`, and an
/// index over both as `test/base:multi`, the arm64 entry with
/// `arm_variant` when given. Returns the two manifests' digests.
pub fn serve_index(
    reg: &FakeRegistry,
    amd: &Base,
    arm: &Base,
    arm_variant: Option<&str>,
) -> (String, String) {
    let amd_digest = push(reg, amd, "amd");
    let arm_digest = push(reg, arm, "arm");
    let variant = arm_variant
        .map(|v| format!(r#","variant":"{v}""#))
        .unwrap_or_default();
    let index = format!(
        r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
        {{"mediaType":"{OCI_MANIFEST}","digest":"{amd_digest}","size":{},"platform":{{"os":"linux","architecture":"amd64"}}}},
        {{"mediaType":"{OCI_MANIFEST}","digest":"{arm_digest}","size":{},"platform":{{"os":"linux","architecture":"arm64"{variant}}}}}]}}"#,
        amd.manifest.len(),
        arm.manifest.len()
    );
    reg.put_manifest("test/base", "multi", OCI_INDEX, index.as_bytes());
    (amd_digest, arm_digest)
}
