//! The Docker Engine as a peer: loading, running and inspecting images, and
//! removing them again however a test ends.

use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value;

use super::oci::parse_json;
use super::sh;

/// Removes images from the Docker Engine when dropped, so that a test that
/// fails half way leaves nothing behind either.
pub struct DockerImages(Vec<String>);

impl DockerImages {
    pub fn new() -> DockerImages {
        DockerImages(Vec::new())
    }

    pub fn track(&mut self, reference: &str) {
        self.0.push(reference.to_string());
    }
}

impl Drop for DockerImages {
    fn drop(&mut self) {
        for r in self.0.iter().rev() {
            let _ = Command::new("docker")
                .args(["image", "rm", "--force", r])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

pub fn docker(args: &[&str]) -> String {
    sh(Command::new("docker").args(args))
}

/// `docker load -i`, tracked for removal, which must load `reference`.
pub fn docker_load(images: &mut DockerImages, tarball: &Path, reference: &str) {
    images.track(reference);
    let out = docker(&["load", "-i", &tarball.display().to_string()]);
    assert!(
        out.contains(&format!("Loaded image: {reference}")),
        "docker load said {out:?}, expected it to load {reference}"
    );
}

/// `docker run --rm` without a network.
pub fn docker_run(flags: &[&str], reference: &str, cmd: &[&str]) -> String {
    let mut args = vec!["run", "--rm", "--network", "none"];
    args.extend_from_slice(flags);
    args.push(reference);
    args.extend_from_slice(cmd);
    docker(&args)
}

pub fn docker_inspect(reference: &str) -> Value {
    let v = parse_json(&docker(&["image", "inspect", reference]));
    v[0].clone()
}
