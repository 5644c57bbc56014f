//! The build's provenance: an in-toto Statement v1 whose predicate is SLSA
//! Provenance v1, naming the image manifest as its subject.
//!
//! `buildType` is [`BUILD_TYPE`]; its `externalParameters` are what the
//! user asked for (`buildFile` with its path and digest, `images` by name,
//! `platform`), its `internalParameters` the stamp values used (`stamp`),
//! and `resolvedDependencies` every base by reference and manifest digest.
//! `runDetails.builder.id` names gantry and its version; `metadata` carries
//! times only for a stamped build, so an unstamped one gives the same bytes
//! everywhere.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::digest::Digest;

/// The media type of the statement, and the artifact type of its manifest.
pub const MEDIA_TYPE: &str = "application/vnd.in-toto+json";
/// The in-toto statement type.
pub const STATEMENT_TYPE: &str = "https://in-toto.io/Statement/v1";
/// The SLSA provenance predicate type.
pub const PREDICATE_TYPE: &str = "https://slsa.dev/provenance/v1";
/// What a gantry build is, for readers of `buildDefinition`: version 1 of
/// these parameters' shape. It changes only when their meaning does.
pub const BUILD_TYPE: &str = "https://gantry.dev/build/v1";
/// The builder id, followed by `@VERSION`.
pub const BUILDER_ID: &str = "https://gantry.dev/gantry";

/// A base the build used.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Dependency {
    /// The reference as resolved (`docker.io/library/debian:12`).
    pub reference: String,
    /// The image manifest the build used.
    pub digest: Digest,
    /// Whether the digest came from `gantry.lock`.
    pub locked: bool,
}

/// Everything the provenance says, as plain values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvenanceInput {
    /// The image's name (its first tag).
    pub image_name: String,
    /// The image manifest's digest.
    pub image_digest: Digest,
    /// The build file's path as given (relative to the project, so that
    /// the statement does not depend on where the checkout is).
    pub build_file: String,
    /// The build file's digest.
    pub build_file_digest: Digest,
    /// The images asked for, by name.
    pub images: Vec<String>,
    /// The platform built (`linux/amd64`).
    pub platform: String,
    /// Stamp keys and the values used; empty for an unstamped build.
    pub stamp: BTreeMap<String, String>,
    /// The bases, with their digests.
    pub dependencies: Vec<Dependency>,
    /// Start and end of a stamped build, in seconds; `None` for an
    /// unstamped one, whose statement carries no time.
    pub times: Option<(u64, u64)>,
}

#[derive(Serialize)]
struct Statement<'a> {
    #[serde(rename = "_type")]
    kind: &'static str,
    subject: Vec<ResourceDescriptor>,
    #[serde(rename = "predicateType")]
    predicate_type: &'static str,
    predicate: Predicate<'a>,
}

#[derive(Serialize)]
struct ResourceDescriptor {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    uri: Option<String>,
    digest: BTreeMap<&'static str, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    annotations: Option<BTreeMap<&'static str, bool>>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Predicate<'a> {
    build_definition: BuildDefinition<'a>,
    run_details: RunDetails,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BuildDefinition<'a> {
    build_type: &'static str,
    external_parameters: ExternalParameters<'a>,
    internal_parameters: InternalParameters<'a>,
    resolved_dependencies: Vec<ResourceDescriptor>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ExternalParameters<'a> {
    build_file: ResourceDescriptor,
    images: &'a [String],
    platform: &'a str,
}

#[derive(Serialize)]
struct InternalParameters<'a> {
    stamp: &'a BTreeMap<String, String>,
}

#[derive(Serialize)]
struct RunDetails {
    builder: Builder,
    #[serde(skip_serializing_if = "Option::is_none")]
    metadata: Option<Metadata>,
}

#[derive(Serialize)]
struct Builder {
    id: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Metadata {
    started_on: String,
    finished_on: String,
}

fn sha256(d: &Digest) -> BTreeMap<&'static str, String> {
    BTreeMap::from([("sha256", d.hex())])
}

/// The statement's bytes: canonical JSON, the same for the same input on
/// any machine. Images and dependencies are sorted, dependencies deduplicated.
pub fn statement(input: &ProvenanceInput) -> Vec<u8> {
    let mut images = input.images.clone();
    images.sort();
    images.dedup();
    let mut deps: Vec<&Dependency> = input.dependencies.iter().collect();
    deps.sort();
    deps.dedup();
    let resolved_dependencies = deps
        .into_iter()
        .map(|d| ResourceDescriptor {
            name: None,
            uri: Some(format!("oci://{}", d.reference)),
            digest: sha256(&d.digest),
            annotations: d.locked.then(|| BTreeMap::from([("locked", true)])),
        })
        .collect();
    let statement = Statement {
        kind: STATEMENT_TYPE,
        subject: vec![ResourceDescriptor {
            name: Some(input.image_name.clone()),
            uri: None,
            digest: sha256(&input.image_digest),
            annotations: None,
        }],
        predicate_type: PREDICATE_TYPE,
        predicate: Predicate {
            build_definition: BuildDefinition {
                build_type: BUILD_TYPE,
                external_parameters: ExternalParameters {
                    build_file: ResourceDescriptor {
                        name: Some(input.build_file.clone()),
                        uri: None,
                        digest: sha256(&input.build_file_digest),
                        annotations: None,
                    },
                    images: &images,
                    platform: &input.platform,
                },
                internal_parameters: InternalParameters {
                    stamp: &input.stamp,
                },
                resolved_dependencies,
            },
            run_details: RunDetails {
                builder: Builder {
                    id: format!("{BUILDER_ID}@{}", env!("CARGO_PKG_VERSION")),
                },
                metadata: input.times.map(|(start, end)| Metadata {
                    started_on: crate::epoch::rfc3339(start),
                    finished_on: crate::epoch::rfc3339(end),
                }),
            },
        },
    };
    crate::json::canonical(&statement)
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn fixture() -> ProvenanceInput {
        ProvenanceInput {
            image_name: "registry.example/team/app:1.0".into(),
            image_digest: Digest::of(b"manifest"),
            build_file: "gantry.toml".into(),
            build_file_digest: Digest::of(b"build file"),
            images: vec!["worker".into(), "app".into()],
            platform: "linux/amd64".into(),
            stamp: BTreeMap::new(),
            dependencies: vec![
                Dependency {
                    reference: "docker.io/library/debian:12".into(),
                    digest: Digest::of(b"base"),
                    locked: true,
                },
                Dependency {
                    reference: "docker.io/library/alpine:3.20".into(),
                    digest: Digest::of(b"alpine"),
                    locked: false,
                },
            ],
            times: None,
        }
    }

    #[test]
    fn same_input_gives_the_same_bytes() {
        let a = statement(&fixture());
        assert_eq!(a, statement(&fixture()));
        let mut reordered = fixture();
        reordered.images.reverse();
        reordered.dependencies.reverse();
        assert_eq!(statement(&reordered), a);
        let text = String::from_utf8(a).unwrap();
        let text = text.replace(env!("CARGO_PKG_VERSION"), "VERSION");
        assert_eq!(
            Digest::of(text.as_bytes()).to_string(),
            "sha256:a21857233b15d32482c232cd5dc5935d953c7652af27e4d1e2af64f49379f4b1",
            "provenance bytes changed:\n{text}"
        );
    }

    #[test]
    fn statement_has_the_in_toto_and_slsa_shape() {
        let v: Value = serde_json::from_slice(&statement(&fixture())).unwrap();
        assert_eq!(v["_type"], STATEMENT_TYPE);
        assert_eq!(v["predicateType"], PREDICATE_TYPE);
        assert_eq!(v["subject"][0]["name"], "registry.example/team/app:1.0");
        assert_eq!(
            v["subject"][0]["digest"]["sha256"],
            Digest::of(b"manifest").hex()
        );
        let def = &v["predicate"]["buildDefinition"];
        assert_eq!(def["buildType"], BUILD_TYPE);
        assert_eq!(
            def["externalParameters"]["buildFile"]["name"],
            "gantry.toml"
        );
        assert_eq!(
            def["externalParameters"]["images"],
            serde_json::json!(["app", "worker"])
        );
        assert_eq!(def["externalParameters"]["platform"], "linux/amd64");
        assert_eq!(def["internalParameters"]["stamp"], serde_json::json!({}));
        let deps = def["resolvedDependencies"].as_array().unwrap();
        assert_eq!(deps[0]["uri"], "oci://docker.io/library/alpine:3.20");
        assert!(deps[0].get("annotations").is_none());
        assert_eq!(deps[1]["annotations"]["locked"], true);
        let run = &v["predicate"]["runDetails"];
        assert_eq!(
            run["builder"]["id"],
            format!("https://gantry.dev/gantry@{}", env!("CARGO_PKG_VERSION"))
        );
        assert!(run.get("metadata").is_none(), "unstamped: no times");
    }

    #[test]
    fn a_stamped_build_carries_its_values_and_times() {
        let mut input = fixture();
        input.stamp.insert("GIT_COMMIT".into(), "abc123".into());
        input.times = Some((1_700_000_000, 1_700_000_060));
        let v: Value = serde_json::from_slice(&statement(&input)).unwrap();
        assert_eq!(
            v["predicate"]["buildDefinition"]["internalParameters"]["stamp"]["GIT_COMMIT"],
            "abc123"
        );
        let meta = &v["predicate"]["runDetails"]["metadata"];
        assert_eq!(meta["startedOn"], "2023-11-14T22:13:20Z");
        assert_eq!(meta["finishedOn"], "2023-11-14T22:14:20Z");
    }
}
