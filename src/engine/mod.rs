//! A local container engine as a sink: the Docker Engine API (`docker`'s
//! own daemon, or podman's compatible service) reached over its socket,
//! without the `docker` binary.
//!
//! [`endpoint`] finds the engine as the docker CLI does; [`Engine`] speaks
//! the few API calls a load needs (`/_ping`, `/version`, `/info`, image
//! inspect, `POST /images/load`); [`load()`] sends images, leaving out the
//! layers the engine already holds; [`build_and_load`] is `gantry load`.
//!
//! The classic image store registers a layer by its chain ID and opens a
//! layer file of a loaded tarball only for a chain it lacks, so a tarball
//! without the files of the chains it holds loads the whole image. The
//! containerd image store imports by `index.json` into its content store,
//! where a missing blob fails the import: it is sent the full archive.
//! podman's service looks for each layer in its storage by digest before
//! reading the archive's file, and refuses an archive missing one it
//! lacks, so it takes the smaller archive too.

pub mod endpoint;
mod http;
mod load;
mod targets;

pub use endpoint::{Endpoint, Lookup};
pub use load::{load, LoadReport};
pub use targets::{build_and_load, BuildLoadReport};

use std::io;

use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Error, Result};
use http::{Client, Failure, Response};

/// How the engine keeps images, which decides what a load may leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageStore {
    /// The Docker Engine's graph-driver store: layers by chain ID.
    Classic,
    /// The Docker Engine's containerd image store (`driver-type
    /// io.containerd.snapshotter.v1`).
    Containerd,
    /// podman's storage behind its Docker-compatible service (`podman
    /// system service`).
    Podman,
}

/// A connected engine.
pub struct Engine {
    endpoint: Endpoint,
    client: Client,
    version: String,
    store: ImageStore,
}

/// What an engine holds under a reference: the image ID (its config
/// digest) and its layers' diff IDs in order (`RootFS.Layers`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The image ID, `sha256:` and the config's digest.
    pub id: String,
    /// `RootFS.Layers`: the uncompressed digests of its layers, base first.
    pub layers: Vec<String>,
}

impl Engine {
    /// Finds the engine as the docker CLI would and connects to it.
    pub fn from_env() -> Result<Engine> {
        Engine::connect(Lookup::from_process().endpoint()?)
    }

    /// Connects to the engine at `endpoint` and asks what it is.
    pub fn connect(endpoint: Endpoint) -> Result<Engine> {
        let client = Client::new(&endpoint.address).map_err(|e| unreachable(&endpoint, e))?;
        let mut engine = Engine {
            endpoint,
            client,
            version: String::new(),
            store: ImageStore::Classic,
        };
        let ping = engine.call("/_ping")?;
        if ping.status != 200 {
            return Err(engine.refused("/_ping", &ping));
        }
        #[derive(Deserialize)]
        struct Component {
            #[serde(rename = "Name", default)]
            name: String,
        }
        #[derive(Deserialize)]
        struct Version {
            #[serde(rename = "Version", default)]
            version: String,
            #[serde(rename = "Components", default)]
            components: Vec<Component>,
        }
        let v: Version = engine.json("/version")?;
        let podman = v.components.iter().any(|c| c.name.contains("Podman"));
        #[derive(Deserialize)]
        struct Info {
            #[serde(rename = "DriverStatus", default)]
            driver_status: Option<Vec<Vec<String>>>,
        }
        let info: Info = engine.json("/info")?;
        let containerd = info
            .driver_status
            .unwrap_or_default()
            .iter()
            .any(|kv| kv.len() == 2 && kv[0] == "driver-type" && kv[1].contains("containerd"));
        engine.store = match (podman, containerd) {
            (true, _) => ImageStore::Podman,
            (false, true) => ImageStore::Containerd,
            (false, false) => ImageStore::Classic,
        };
        engine.version = if podman {
            format!("Podman Engine {}", v.version)
        } else {
            format!("Docker Engine {}", v.version)
        };
        Ok(engine)
    }

    /// Where the engine was found, and how.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `Docker Engine 20.10.24`, `Podman Engine 4.3.1`.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// How it keeps images.
    pub fn image_store(&self) -> ImageStore {
        self.store
    }

    /// The image the engine holds under `reference` (a tag, or
    /// `name@digest`), if any.
    pub fn inspect(&self, reference: &str) -> Result<Option<Held>> {
        #[derive(Deserialize)]
        struct RootFs {
            #[serde(rename = "Layers", default)]
            layers: Vec<String>,
        }
        #[derive(Deserialize)]
        struct Inspect {
            #[serde(rename = "Id")]
            id: String,
            #[serde(rename = "RootFS")]
            root_fs: Option<RootFs>,
        }
        let path = format!("/images/{}/json", escape(reference));
        let r = self.call(&path)?;
        match r.status {
            404 => Ok(None),
            200 => {
                let i: Inspect = serde_json::from_slice(&r.body)
                    .map_err(|e| self.bad_answer(&path, &crate::error::json_problem(&e)))?;
                Ok(Some(Held {
                    id: i.id,
                    layers: i.root_fs.map(|r| r.layers).unwrap_or_default(),
                }))
            }
            _ => Err(self.refused(&path, &r)),
        }
    }

    /// `POST /images/load` of the archive `body` writes; returns the
    /// references the engine says it loaded (`Loaded image: REF`; an
    /// image without tags is loaded by ID and named by none).
    pub(crate) fn post_load(&self, body: &mut http::BodyWriter<'_>) -> Result<Vec<String>> {
        let path = "/images/load?quiet=1";
        let r = match self.client.post_stream(path, "application/x-tar", body) {
            Ok(r) => r,
            Err(Failure::Body(e)) => return Err(e),
            Err(Failure::Io(e)) => return Err(unreachable(&self.endpoint, e)),
        };
        if r.status != 200 {
            return Err(self.refused("the archive", &r));
        }
        // The answer is a stream of JSON messages; an error can come after
        // a 200 status, once the engine has read the archive.
        let mut loaded = Vec::new();
        for m in serde_json::Deserializer::from_slice(&r.body).into_iter::<serde_json::Value>() {
            let m = m.map_err(|e| self.bad_answer(path, &crate::error::json_problem(&e)))?;
            if let Some(err) = m.get("error").and_then(|e| e.as_str()) {
                return Err(self.refusal("the archive", err));
            }
            if let Some(s) = m.get("stream").and_then(|s| s.as_str()) {
                for line in s.lines() {
                    if let Some(r) = line.strip_prefix("Loaded image: ") {
                        loaded.push(r.trim().to_string());
                    }
                }
            }
        }
        Ok(loaded)
    }

    fn call(&self, path: &str) -> Result<Response> {
        match self.client.get(path) {
            Ok(r) => Ok(r),
            Err(Failure::Io(e)) => Err(unreachable(&self.endpoint, e)),
            Err(Failure::Body(e)) => Err(e),
        }
    }

    fn json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T> {
        let r = self.call(path)?;
        if r.status != 200 {
            return Err(self.refused(path, &r));
        }
        serde_json::from_slice(&r.body)
            .map_err(|e| self.bad_answer(path, &crate::error::json_problem(&e)))
    }

    fn name(&self) -> String {
        if self.version.is_empty() {
            format!("engine at {}", self.endpoint)
        } else {
            format!("{} at {}", self.version, self.endpoint)
        }
    }

    fn bad_answer(&self, what: &str, problem: &str) -> Error {
        Error::format(self.name(), format!("{what}: unexpected answer: {problem}"))
    }

    fn refused(&self, what: &str, r: &Response) -> Error {
        #[derive(Deserialize)]
        struct Message {
            message: String,
        }
        let text = serde_json::from_slice::<Message>(&r.body)
            .map(|m| m.message)
            .unwrap_or_else(|_| String::from_utf8_lossy(&r.body).trim().to_string());
        let text: String = text.chars().take(2000).collect();
        self.refusal(what, &format!("HTTP {}: {text}", r.status))
    }

    fn refusal(&self, what: &str, message: &str) -> Error {
        Error::format(self.name(), format!("refused {what}: {message}"))
    }
}

/// An engine that cannot be reached, named with how it was found; the
/// system's error is the cause.
fn unreachable(endpoint: &Endpoint, e: io::Error) -> Error {
    let what = match e.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "permission denied on the engine's socket {endpoint} (is this user in the docker group?)"
        ),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => {
            format!("no engine answers at {endpoint}")
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            format!("the engine at {endpoint} did not answer in time")
        }
        _ => format!("cannot talk to the engine at {endpoint}"),
    };
    Error::environment(what, e)
}

/// Escapes a reference for a URL path: `/` stays (the API routes image
/// names with slashes), `:` and `@` are allowed in paths; anything else
/// outside the reference grammar is percent-encoded.
fn escape(reference: &str) -> String {
    let mut out = String::new();
    for b in reference.bytes() {
        if b.is_ascii_alphanumeric() || b"/:@._-".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `sha256:<hex>` of a digest, as the API writes image IDs and diff IDs.
fn api_digest(d: &Digest) -> String {
    d.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn at(socket: &str) -> Endpoint {
        Endpoint {
            address: endpoint::Address::Unix(PathBuf::from(socket)),
            found_by: "DOCKER_HOST=unix:///s".into(),
        }
    }

    #[test]
    fn permission_denied_on_the_socket_says_so_and_names_it() {
        let e =
            unreachable(&at("/s"), io::Error::from(io::ErrorKind::PermissionDenied)).to_string();
        assert!(
            e.starts_with(
                "permission denied on the engine's socket unix:///s (from DOCKER_HOST=unix:///s)"
            ),
            "{e}"
        );
    }

    #[test]
    fn a_socket_nobody_listens_on_is_no_engine() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dead.sock");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        let Err(e) = Engine::connect(at(path.to_str().unwrap())) else {
            panic!("connected to a closed socket");
        };
        assert!(
            e.to_string().starts_with("no engine answers at unix://"),
            "{e}"
        );
    }

    #[test]
    fn references_keep_their_slashes_and_separators_in_the_path() {
        assert_eq!(escape("ghcr.io/a/b:1.0"), "ghcr.io/a/b:1.0");
        assert_eq!(escape("a/b@sha256:00"), "a/b@sha256:00");
        assert_eq!(escape("a b?"), "a%20b%3F");
    }
}
