//! The OCI image configuration.
//!
//! Owned rather than taken from oci-spec: oci-spec's `ImageConfiguration`
//! drops fields it does not know on a round trip, and a base image's Docker
//! extensions (Healthcheck, OnBuild, Shell, ArgsEscaped, anything newer) must
//! survive a rebuild unchanged. Unknown fields land in `extra` at every level.
//! Their numbers keep every digit (serde_json's `arbitrary_precision`):
//! `18446744073709551616` or a 30-digit decimal is copied as written, never
//! through an f64; only an exponent comes out spelled `e+N`/`e-N`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// An image's configuration blob: the platform it runs on, how a container
/// starts, the uncompressed digests of its layers and their history. Its
/// canonical JSON ([`ImageConfig::to_canonical_json`]) is what the manifest's
/// config descriptor hashes; a field left `None` is absent from that JSON,
/// not `null`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// RFC 3339 time the image was made (the build's epoch, or a stamped
    /// value); `None` leaves it out, as some bases do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// Free-form name of the person or entity that made the image.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// CPU architecture in Go's `GOARCH` spelling (`amd64`, `arm64`).
    pub architecture: String,
    /// Operating system in Go's `GOOS` spelling (`linux`).
    pub os: String,
    /// CPU variant (`v7` for `arm`, `v8` for `arm64`); `None` when the
    /// architecture has none or the base did not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// Operating system version, as Windows images carry it.
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    /// Operating system features the image requires, as Windows images
    /// carry them.
    #[serde(
        default,
        rename = "os.features",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    /// How a container runs; `None` when the image sets nothing (see
    /// [`ImageConfig::container`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    /// The uncompressed digests of the layers, in the manifest's order.
    pub rootfs: RootFs,
    /// One entry per layer and per step that made no layer, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    /// Fields this type does not name (Docker's `container`,
    /// `docker_version`, newer ones), kept so they survive a rebuild.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The `config` object: how a container from this image runs. Field names
/// are Docker's (PascalCase), as the OCI specification adopted them.
///
/// Every `None` means "not set", which a runtime reads as its default; an
/// empty list or map is written out and means "set to nothing".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    /// `user`, `uid`, `user:group` or `uid:gid` the process runs as; `None`
    /// is root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// `port/protocol` keys (`8080/tcp`), each with an empty object, as the
    /// specification spells a set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    /// `NAME=value` entries, in order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    /// The program and first arguments every container runs; `cmd` follows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// Default arguments after `entrypoint` (or the program, without one),
    /// replaced by any the user gives to the runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// Paths of anonymous volumes, each with an empty object (a set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    /// The absolute directory the process starts in; `None` is `/`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    /// Image labels (`org.opencontainers.image.*` and the user's own).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// The signal that stops the container (`SIGTERM`, `SIGINT`, `15`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// Fields this type does not name (`Healthcheck`, `OnBuild`, `Shell`,
    /// `ArgsEscaped`, newer ones), kept so they survive a rebuild.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The layers as a runtime unpacks them. Its `diff_ids` must match the
/// manifest's layers one for one, which is what ties a config to the blobs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    /// Always `layers` (the only type the specification defines).
    #[serde(rename = "type")]
    pub kind: String,
    /// `sha256:<hex>` of each layer's uncompressed tar, bottom layer first.
    #[serde(default)]
    pub diff_ids: Vec<String>,
}

impl Default for RootFs {
    fn default() -> Self {
        RootFs {
            kind: "layers".into(),
            diff_ids: Vec::new(),
        }
    }
}

/// One step of how the image was made. Entries with `empty_layer` unset
/// correspond, in order, to the layers of [`RootFs::diff_ids`].
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// RFC 3339 time of the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// What made it, for people reading `docker history` (a command line,
    /// or gantry's name for the layer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// Who made it, free-form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Free-form remark.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// The step changed only the config and has no layer; omitted from the
    /// JSON when false.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    /// Fields this type does not name, kept so they survive a rebuild.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl ImageConfig {
    /// Reads a config blob, keeping unknown fields and every digit of
    /// every number. Only the shape is checked (`architecture`, `os` and
    /// `rootfs` present, fields of the right JSON types), not the values.
    pub fn parse(bytes: &[u8]) -> serde_json::Result<ImageConfig> {
        serde_json::from_slice(bytes)
    }

    /// The bytes to store and hash: keys sorted, no white space (see
    /// [`crate::json::canonical`]). The same config always gives the same bytes.
    pub fn to_canonical_json(&self) -> Vec<u8> {
        crate::json::canonical(self)
    }

    /// The container config, created empty on first use.
    pub fn container(&mut self) -> &mut ContainerConfig {
        self.config.get_or_insert_with(Default::default)
    }

    /// The `NAME=value` environment entries; empty when none are set.
    pub fn env(&self) -> &[String] {
        self.config
            .as_ref()
            .and_then(|c| c.env.as_deref())
            .unwrap_or(&[])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_docker_fields_survive_a_round_trip() {
        let base = br#"{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],
            "Healthcheck":{"Test":["CMD","true"],"Interval":1000000000},"OnBuild":["RUN x"],
            "Shell":["/bin/sh","-c"],"ArgsEscaped":true},"container":"abc",
            "docker_version":"20.10","rootfs":{"type":"layers","diff_ids":[]},
            "history":[{"created_by":"x","empty_layer":true,"future":1}]}"#;
        let cfg = ImageConfig::parse(base).unwrap();
        let out: Value = serde_json::from_slice(&cfg.to_canonical_json()).unwrap();
        let inp: Value = serde_json::from_slice(base).unwrap();
        assert_eq!(out, inp);
    }

    #[test]
    fn numbers_no_float_holds_keep_every_digit() {
        let base = br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"},
            "big":18446744073709551616,"config":{"X":{"n":0.1000000000000000000000000001}},
            "history":[{"w":-123456789012345678901234567890}],"e":1E400}"#;
        let out = ImageConfig::parse(base).unwrap().to_canonical_json();
        let out = String::from_utf8(out).unwrap();
        for kept in [
            r#""big":18446744073709551616"#,
            r#""n":0.1000000000000000000000000001"#,
            r#""w":-123456789012345678901234567890"#,
            r#""e":1e+400"#,
        ] {
            assert!(out.contains(kept), "{kept} not in {out}");
        }
    }
}
