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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImageConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub architecture: String,
    pub os: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    #[serde(
        default,
        rename = "os.version",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_version: Option<String>,
    #[serde(
        default,
        rename = "os.features",
        skip_serializing_if = "Option::is_none"
    )]
    pub os_features: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config: Option<ContainerConfig>,
    pub rootfs: RootFs,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<History>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

/// The `config` object: how a container from this image runs. Field names
/// are Docker's (PascalCase), as the OCI specification adopted them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContainerConfig {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exposed_ports: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub volumes: Option<BTreeMap<String, Value>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RootFs {
    #[serde(rename = "type")]
    pub kind: String,
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

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub empty_layer: bool,
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

impl ImageConfig {
    pub fn parse(bytes: &[u8]) -> serde_json::Result<ImageConfig> {
        serde_json::from_slice(bytes)
    }

    pub fn to_canonical_json(&self) -> Vec<u8> {
        crate::json::canonical(self)
    }

    /// The container config, created empty on first use.
    pub fn container(&mut self) -> &mut ContainerConfig {
        self.config.get_or_insert_with(Default::default)
    }

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
