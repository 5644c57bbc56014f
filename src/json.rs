//! Canonical JSON: keys sorted at every level, no insignificant white space.
//! Every JSON document gantry hashes goes through here, so that map types with
//! unstable iteration order (oci-spec uses `HashMap`) cannot change a digest.

use serde::Serialize;

/// Serialises `value` canonically. serde_json's `Map` is a `BTreeMap` (the
/// `preserve_order` feature is never enabled; `tests/golden.rs` would notice),
/// so a round trip through `Value` sorts every object's keys. Numbers are
/// kept as their text (`arbitrary_precision`), so the round trip never
/// rounds one; a number serialised from a Rust integer is written as before.
pub fn canonical<T: Serialize>(value: &T) -> Vec<u8> {
    let value = serde_json::to_value(value).expect("in-memory JSON serialisation cannot fail");
    serde_json::to_vec(&value).expect("in-memory JSON serialisation cannot fail")
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    #[test]
    fn sorts_keys_of_hash_maps_at_every_level() {
        let mut inner = HashMap::new();
        for k in ["zeta", "alpha", "mid"] {
            inner.insert(k.to_string(), 1);
        }
        let mut outer = HashMap::new();
        outer.insert("b", inner.clone());
        outer.insert("a", inner);
        let out = String::from_utf8(super::canonical(&outer)).unwrap();
        assert_eq!(
            out,
            r#"{"a":{"alpha":1,"mid":1,"zeta":1},"b":{"alpha":1,"mid":1,"zeta":1}}"#
        );
    }
}
