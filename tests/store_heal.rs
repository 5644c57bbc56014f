//! The store heals: a blob that does not match its name (a flipped byte, a
//! truncation, a zero-length file left by a crash) is moved aside and made
//! again, the build succeeds and says so; a base whose descriptor gives a
//! blob the wrong size is refused the same on a warm store as on a cold one;
//! and a run killed mid-write leaves nothing that the next run keeps.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use common::oci::parse_json;
use common::push::{app_project, noise};
use common::tarball::members;
use common::Project;
use gantry::digest::Digest;
use gantry::store::Store;

fn blob(p: &Project, digest: &str) -> PathBuf {
    p.store
        .path()
        .join("blobs/sha256")
        .join(digest.trim_start_matches("sha256:"))
}

fn report(p: &Project, args: &[&str]) -> (serde_json::Value, String) {
    let out = p.run(args);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "gantry {args:?} failed:\n{err}");
    (parse_json(&String::from_utf8_lossy(&out.stdout)), err)
}

/// The data layer of the app project (the large one) and the config.
fn first_build(p: &Project) -> serde_json::Value {
    report(p, &["build", "--json"]).0
}

fn layer_digest(r: &serde_json::Value, name: &str) -> String {
    r["images"][0]["platforms"][0]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["name"] == name)
        .unwrap()["digest"]
        .as_str()
        .unwrap()
        .to_string()
}

/// Every blob of a docker tarball hashes to its name.
fn assert_output_sound(out: &Path) {
    let m = members(out);
    let mut blobs = 0;
    for (name, bytes) in &m {
        if let Some(hex) = name.strip_prefix("blobs/sha256/").filter(|h| !h.is_empty()) {
            assert_eq!(Digest::of(bytes).hex(), hex, "{name} of {}", out.display());
            blobs += 1;
        }
    }
    assert!(blobs >= 3, "{:?}", m.keys().collect::<Vec<_>>());
}

fn assert_store_sound(p: &Project) {
    let store = Store::open(p.store.path()).unwrap();
    assert_eq!(store.verify().unwrap(), Vec::<String>::new());
}

/// Damages `digest`'s blob with `damage`, rebuilds with an output, and
/// checks the build healed it: the same image, a sound output and store,
/// the repair reported in `--json` and on stderr.
fn heals(damage: impl Fn(&Path), pick: impl Fn(&serde_json::Value) -> String) {
    let p = app_project(&["app:1"]);
    let first = first_build(&p);
    let digest = pick(&first);
    damage(&blob(&p, &digest));
    let out = p.join("out.tar");
    let (second, err) = report(&p, &["build", "--json", "-o", out.to_str().unwrap()]);
    assert_eq!(second["images"][0]["digest"], first["images"][0]["digest"]);
    let repaired = second["repaired"].as_array().unwrap();
    assert_eq!(repaired.len(), 1, "{second:#}");
    assert_eq!(repaired[0]["digest"], digest.as_str());
    assert!(
        err.contains(&format!("repaired: store blob {digest}")),
        "{err}"
    );
    let moved = PathBuf::from(repaired[0]["moved_to"].as_str().unwrap());
    assert!(
        moved.starts_with(p.store.path().join("corrupt")),
        "{moved:?}"
    );
    assert!(moved.exists());
    assert_output_sound(&out);
    assert_store_sound(&p);
    // Healed for good: the next build repairs nothing.
    let (third, _) = report(&p, &["build", "--json", "-o", out.to_str().unwrap()]);
    assert_eq!(third["repaired"], serde_json::json!([]));
}

fn flip_one_byte(path: &Path) {
    let mut b = fs::read(path).unwrap();
    let i = b.len() / 2;
    b[i] ^= 0x01;
    fs::write(path, b).unwrap();
}

#[test]
fn a_flipped_byte_in_a_layer_blob_is_moved_aside_and_the_layer_rebuilt() {
    heals(flip_one_byte, |r| layer_digest(r, "data"));
}

#[test]
fn a_truncated_layer_blob_is_moved_aside_and_the_layer_rebuilt() {
    heals(
        |path| {
            let len = fs::metadata(path).unwrap().len();
            fs::File::options()
                .write(true)
                .open(path)
                .unwrap()
                .set_len(len / 3)
                .unwrap();
        },
        |r| layer_digest(r, "data"),
    );
}

#[test]
fn a_zero_length_blob_left_by_a_crash_is_not_trusted() {
    heals(
        |path| fs::write(path, b"").unwrap(),
        |r| layer_digest(r, "data"),
    );
}

#[test]
fn a_flipped_byte_in_a_config_blob_is_replaced() {
    heals(flip_one_byte, |r| {
        r["images"][0]["platforms"][0]["config_digest"]
            .as_str()
            .unwrap()
            .to_string()
    });
}

#[test]
fn a_flipped_byte_in_a_manifest_blob_is_replaced() {
    heals(flip_one_byte, |r| {
        r["images"][0]["digest"].as_str().unwrap().to_string()
    });
}

/// A project on a local OCI layout base (`base/`), built from the app
/// project; `tamper` rewrites the base's manifest (and the index entry
/// naming it) so that its first layer's descriptor says one byte more.
fn on_layout_base() -> (Project, Project) {
    let base = app_project(&["base:1"]);
    base.ok(&["build", "--format", "oci", "-o", "layout/"]);
    let p = Project::new();
    p.write(
        "gantry.toml",
        format!(
            "[image.app]\nbase = \"oci:{}\"\nplatform = \"linux/amd64\"\n\n\
             [[image.app.layer]]\nfiles = [{{ src = \"x.txt\", dst = \"/x.txt\" }}]\n",
            base.join("layout").display()
        ),
    );
    p.write("x.txt", "x\n");
    (base, p)
}

/// Makes the layout's manifest claim one byte more for its first layer;
/// returns that layer's digest.
fn tamper(layout: &Path) -> String {
    let index_path = layout.join("index.json");
    let mut index = common::oci::read_json(&index_path);
    let m = &mut index["manifests"][0];
    let old = m["digest"].as_str().unwrap().to_string();
    let path = common::oci::blob_path(layout, &old);
    let mut manifest = common::oci::read_json(&path);
    let layer = &mut manifest["layers"][0];
    let digest = layer["digest"].as_str().unwrap().to_string();
    layer["size"] = serde_json::json!(layer["size"].as_u64().unwrap() + 1);
    let bytes = serde_json::to_vec(&manifest).unwrap();
    let d = Digest::of(&bytes);
    fs::write(layout.join("blobs/sha256").join(d.hex()), &bytes).unwrap();
    m["digest"] = serde_json::json!(d.to_string());
    m["size"] = serde_json::json!(bytes.len());
    fs::write(&index_path, serde_json::to_vec(&index).unwrap()).unwrap();
    digest
}

#[test]
fn a_base_descriptor_with_the_wrong_size_is_refused_alike_on_a_warm_and_a_cold_store() {
    // Warm: the store has the layer from a build on the sound layout.
    let (base, warm) = on_layout_base();
    warm.ok(&["build"]);
    let layer = tamper(&base.join("layout"));
    let warm_err = warm.fails(&["build"]);
    // Cold: a fresh store.
    let cold = Project::new();
    fs::copy(warm.join("gantry.toml"), cold.join("gantry.toml")).unwrap();
    fs::copy(warm.join("x.txt"), cold.join("x.txt")).unwrap();
    let cold_err = cold.fails(&["build"]);
    for err in [&warm_err, &cold_err] {
        assert!(err.contains(&format!("blob {layer}")), "{err}");
        assert!(err.contains("as its descriptor says"), "{err}");
        assert!(
            err.contains(&base.join("layout").display().to_string()),
            "names the base: {err}"
        );
    }
    // The error and its causes, without the progress lines before them.
    let line = |e: &str| e[e.find("error:").unwrap()..].to_string();
    assert_eq!(line(&warm_err), line(&cold_err));
    // The sound blob stays in the warm store; nothing was moved aside.
    assert!(blob(&warm, &layer).exists());
    assert!(!warm.store.path().join("corrupt").exists());
}

/// Spawns gantry in `p` with `args`, its output discarded.
fn spawn(p: &Project, args: &[&str]) -> Child {
    p.cmd()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Waits until `found` finds a path, up to a minute.
fn wait_for(what: &str, found: impl Fn() -> Option<PathBuf>) -> PathBuf {
    let start = Instant::now();
    loop {
        if let Some(p) = found() {
            return p;
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "never saw {what}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// A file in `dir` whose name starts with `prefix`, holding some bytes.
fn temp_in(dir: &Path, prefix: &str) -> Option<PathBuf> {
    fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let name = e.file_name().to_string_lossy().into_owned();
        let size = e.metadata().ok()?.len();
        (name.starts_with(prefix) && size > 0).then(|| e.path())
    })
}

fn names_in(dir: &Path, prefix: &str) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(prefix))
        .collect()
}

/// A project whose one layer is large enough to be caught mid-write.
fn big_project() -> Project {
    let p = Project::new();
    p.write(
        "gantry.toml",
        "[image.big]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\n\
         [[image.big.layer]]\nname = \"data\"\ncompression_level = 9\n\
         files = [{ src = \"data/\", dst = \"/data/\" }]\n",
    );
    for i in 0..4 {
        p.write(&format!("data/{i}.bin"), noise(24 << 20, i));
    }
    p
}

#[test]
fn a_build_killed_mid_layer_leaves_nothing_the_next_run_keeps() {
    let p = big_project();
    let tmp = p.store.path().join("tmp");
    let mut child = spawn(&p, &["build"]);
    let temp = wait_for("a layer being written", || temp_in(&tmp, "blob-"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(temp.exists(), "the killed build left its temporary");

    let out = p.join("big.tar");
    p.ok(&["build", "-o", out.to_str().unwrap()]);
    assert!(!temp.exists(), "the next run reclaimed {temp:?}");
    assert_eq!(names_in(&tmp, ""), Vec::<String>::new());
    assert_output_sound(&out);
    assert_store_sound(&p);
}

#[test]
fn a_build_killed_mid_output_leaves_nothing_beside_it_after_the_next_run() {
    let p = big_project();
    p.ok(&["build"]);
    let out = p.join("big.tar");
    let mut child = spawn(&p, &["build", "-o", out.to_str().unwrap()]);
    let temp = wait_for("the output being written", || {
        temp_in(p.path(), ".gantry-tmp-")
    });
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(temp.exists());
    assert!(!out.exists());
    p.ok(&["build", "-o", out.to_str().unwrap()]);
    assert_eq!(names_in(p.path(), ".gantry-"), Vec::<String>::new());
    assert_output_sound(&out);
    assert_store_sound(&p);
}

#[test]
fn a_push_killed_mid_upload_is_finished_by_a_clean_run() {
    use common::docker_registry::{DockerRegistry, Options};
    if !common::require(common::docker_registry::BIN) {
        return;
    }
    let registry = DockerRegistry::start(Options::default());
    let p = big_project();
    let reference = format!("{}/big/app:1", registry.host());
    p.ok(&["build"]);
    let uploads = registry
        .dir
        .path()
        .join("data/docker/registry/v2/repositories/big/app/_uploads");
    let mut child = spawn(&p, &["push", "big", "-t", &reference]);
    wait_for("an upload in progress", || {
        fs::read_dir(&uploads).ok()?.flatten().find_map(|e| {
            let data = e.path().join("data");
            (fs::metadata(&data).ok()?.len() > 0).then_some(data)
        })
    });
    child.kill().unwrap();
    child.wait().unwrap();

    let out = p.ok(&["push", "big", "-t", &reference]);
    assert!(out.contains(&reference), "{out}");
    let pulled = p.join("pulled.tar");
    p.ok(&["pull", &reference, "-o", pulled.to_str().unwrap()]);
    assert_output_sound(&pulled);
    assert_eq!(
        names_in(&p.store.path().join("tmp"), ""),
        Vec::<String>::new()
    );
    assert_store_sound(&p);
}

#[test]
fn a_damaged_registry_base_layer_is_fetched_again_from_its_registry() {
    use common::docker_registry::{DockerRegistry, Options};
    if !common::require(common::docker_registry::BIN) {
        return;
    }
    let registry = DockerRegistry::start(Options::default());
    let reference = format!("{}/heal/base:1", registry.host());
    let base = app_project(&[&reference]);
    base.ok(&["push"]);
    let p = Project::new();
    p.write(
        "gantry.toml",
        format!(
            "[image.app]\nbase = \"{reference}\"\nplatform = \"linux/amd64\"\n\n\
             [[image.app.layer]]\nfiles = [{{ src = \"x.txt\", dst = \"/x.txt\" }}]\n"
        ),
    );
    p.write("x.txt", "x\n");
    let out = p.join("out.tar");
    p.ok(&["build", "-o", out.to_str().unwrap()]);
    // The base's large layer, as the registry has it.
    let data = layer_digest(&first_build(&base), "data");
    flip_one_byte(&blob(&p, &data));
    let (r, err) = report(&p, &["build", "--json", "-o", out.to_str().unwrap()]);
    assert_eq!(r["repaired"][0]["digest"], data.as_str(), "{r:#}");
    assert!(
        err.contains(&format!("downloaded {}", &data[..19])),
        "downloaded again:\n{err}"
    );
    assert_output_sound(&out);
    assert_store_sound(&p);
}
