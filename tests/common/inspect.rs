//! What `gantry inspect --json` says about an image.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Project;

/// `gantry inspect ARGS --json`, parsed.
pub fn inspect_json(p: &Project, args: &[&str]) -> Value {
    let mut all = vec!["inspect"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = p.ok(&all);
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("inspect --json: {e}:\n{out}"))
}

pub fn labels(info: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(info["config"]["labels"].clone()).unwrap()
}

pub fn annotations(info: &Value) -> BTreeMap<String, String> {
    serde_json::from_value(info["annotations"].clone()).unwrap()
}

pub fn env_of(info: &Value) -> Vec<String> {
    serde_json::from_value(info["config"]["env"].clone()).unwrap()
}
