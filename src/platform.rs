//! Platforms: the `os/architecture[/variant]` an image is built for, the
//! host's, normalisation of the usual aliases, and choosing one platform's
//! manifest from an index or manifest list.

use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::media;

/// An `os/architecture[/variant]`, normalised by [`Platform::parse`].
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// `linux`, `windows`, ...
    pub os: String,
    /// In Go's names: `amd64`, `arm64`, `arm`, ...
    pub architecture: String,
    /// `v7` for arm, say; never `v8` for arm64, which is the default.
    pub variant: Option<String>,
}

impl std::fmt::Display for Platform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(v) = &self.variant {
            write!(f, "/{v}")?;
        }
        Ok(())
    }
}

impl Platform {
    /// Parses `os/arch[/variant]`, normalising the usual aliases.
    pub fn parse(s: &str) -> std::result::Result<Platform, String> {
        let parts: Vec<&str> = s.split('/').collect();
        if !(2..=3).contains(&parts.len()) || parts.iter().any(|p| p.is_empty()) {
            return Err(format!(
                "platform {s:?} is not of the form os/architecture[/variant]"
            ));
        }
        Platform::from_parts(parts[0], parts[1], parts.get(2).copied())
    }

    /// The platform of these fields (a config's or an index entry's),
    /// checked and normalised as [`Platform::parse`] does.
    pub fn from_parts(
        os: &str,
        architecture: &str,
        variant: Option<&str>,
    ) -> std::result::Result<Platform, String> {
        let shown = || {
            let mut s = format!("{os}/{architecture}");
            if let Some(v) = variant {
                s.push('/');
                s.push_str(v);
            }
            s
        };
        if os.is_empty() || architecture.is_empty() || variant.is_some_and(str::is_empty) {
            return Err(format!(
                "platform {:?} is not of the form os/architecture[/variant]",
                shown()
            ));
        }
        let ok = |p: &str| {
            p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        };
        if !ok(os) || !ok(architecture) || variant.is_some_and(|v| !ok(v)) {
            return Err(format!(
                "platform {:?} may hold only lowercase letters, digits, '_' and '.'",
                shown()
            ));
        }
        let architecture = match architecture {
            "x86_64" | "x86-64" => "amd64",
            "aarch64" => "arm64",
            other => other,
        };
        // arm64 images carry no variant or v8; containerd treats them alike,
        // and so does the rest of gantry by dropping the default.
        let variant = variant.filter(|v| !(architecture == "arm64" && *v == "v8"));
        Ok(Platform {
            os: os.to_string(),
            architecture: architecture.to_string(),
            variant: variant.map(str::to_string),
        })
    }
}

/// The platform gantry builds for when the build file names none: Linux on
/// the machine's architecture, as docker pulls by default.
pub fn host_platform() -> Platform {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    };
    Platform {
        os: "linux".into(),
        architecture: arch.into(),
        variant: None,
    }
}

/// One image manifest an index offers.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// The digest of the manifest.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    /// OCI or Docker schema 2 image manifest.
    pub media_type: String,
    /// As the index gives it, normalised; `None` when it gives none.
    pub platform: Option<Platform>,
}

/// Whether an index entry is an attestation (BuildKit's provenance and
/// SBOM manifests) rather than an image: annotated with its reference type,
/// or for the `unknown` os, which no image runs on. Such entries share
/// indexes with images but are never chosen, listed or followed as one.
pub fn is_attestation(d: &oci_spec::image::Descriptor) -> bool {
    let annotated = d
        .annotations()
        .as_ref()
        .is_some_and(|a| a.contains_key(ANNOTATION_REFERENCE_TYPE));
    annotated
        || d.platform()
            .as_ref()
            .is_some_and(|p| p.os().to_string() == "unknown")
}

/// The annotation BuildKit puts on an attestation entry of an index.
const ANNOTATION_REFERENCE_TYPE: &str = "vnd.docker.reference.type";

/// The manifests of an index that are images (not attestations), with their
/// platforms normalised as `Platform::parse` does (so `arm64/v8` = `arm64`).
pub fn candidates(index_bytes: &[u8], what: &str) -> Result<Vec<Candidate>> {
    let index = crate::manifest::parse_index(index_bytes, what)?;
    let mut out = Vec::new();
    for d in index.manifests() {
        let mt = d.media_type().to_string();
        if !media::is_image_manifest(&mt) || is_attestation(d) {
            continue;
        }
        let platform = d.platform().as_ref().map(|p| {
            let (os, arch) = (p.os().to_string(), p.architecture().to_string());
            Platform::from_parts(&os, &arch, p.variant().as_deref()).unwrap_or(Platform {
                os: p.os().to_string(),
                architecture: p.architecture().to_string(),
                variant: p.variant().clone(),
            })
        });
        out.push(Candidate {
            digest: Digest::from_oci(d.digest(), what)?,
            size: d.size(),
            media_type: mt,
            platform,
        });
    }
    Ok(out)
}

/// The candidate for `want`: an exact match, or, when `want` names no
/// variant, the only one with its os and architecture. Otherwise an error
/// listing what the index offers.
pub fn choose<'a>(cands: &'a [Candidate], want: &Platform, what: &str) -> Result<&'a Candidate> {
    if let Some(c) = cands.iter().find(|c| c.platform.as_ref() == Some(want)) {
        return Ok(c);
    }
    if want.variant.is_none() {
        let same: Vec<&Candidate> = cands
            .iter()
            .filter(|c| {
                c.platform
                    .as_ref()
                    .is_some_and(|p| p.os == want.os && p.architecture == want.architecture)
            })
            .collect();
        if let [only] = same[..] {
            return Ok(only);
        }
    }
    let offered: Vec<String> = cands
        .iter()
        .map(|c| {
            c.platform
                .as_ref()
                .map_or("(no platform)".to_string(), |p| p.to_string())
        })
        .collect();
    Err(Error::Usage(format!(
        "{what} offers no image for platform {want}; it has: {}",
        if offered.is_empty() {
            "no images".to_string()
        } else {
            offered.join(", ")
        }
    )))
}

/// `os/arch[/variant]` of an OCI descriptor's platform, the form users
/// write and error messages show.
pub fn oci_platform_string(p: &oci_spec::image::Platform) -> String {
    let mut s = format!("{}/{}", p.os(), p.architecture());
    if let Some(v) = p.variant() {
        s.push('/');
        s.push_str(v);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const INDEX: &str = r#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":1,"platform":{"os":"linux","architecture":"amd64"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":2,"platform":{"os":"linux","architecture":"arm64","variant":"v8"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:3333333333333333333333333333333333333333333333333333333333333333","size":3,"platform":{"os":"linux","architecture":"arm","variant":"v7"}},
      {"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:4444444444444444444444444444444444444444444444444444444444444444","size":4,"platform":{"os":"unknown","architecture":"unknown"},"annotations":{"vnd.docker.reference.type":"attestation-manifest"}}
    ]}"#;

    fn pick(p: &str) -> Result<u64> {
        let c = candidates(INDEX.as_bytes(), "idx")?;
        choose(&c, &Platform::parse(p).unwrap(), "idx").map(|c| c.size)
    }

    #[test]
    fn arm64_v8_is_arm64_and_variants_default() {
        assert_eq!(pick("linux/amd64").unwrap(), 1);
        assert_eq!(pick("linux/arm64/v8").unwrap(), 2);
        assert_eq!(pick("linux/arm64").unwrap(), 2);
        assert_eq!(pick("linux/arm").unwrap(), 3);
        assert_eq!(pick("linux/arm/v7").unwrap(), 3);
    }

    #[test]
    fn attestations_are_known_by_annotation_or_by_the_unknown_os() {
        let entry = |extra: &str| -> oci_spec::image::Descriptor {
            serde_json::from_str(&format!(
                r#"{{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:{}","size":1{extra}}}"#,
                "1".repeat(64)
            ))
            .unwrap()
        };
        assert!(is_attestation(&entry(
            r#","annotations":{"vnd.docker.reference.type":"attestation-manifest"}"#
        )));
        assert!(is_attestation(&entry(
            r#","platform":{"os":"unknown","architecture":"unknown"}"#
        )));
        // Some tools leave the architecture set: the os alone decides.
        assert!(is_attestation(&entry(
            r#","platform":{"os":"unknown","architecture":"amd64"}"#
        )));
        assert!(!is_attestation(&entry(
            r#","platform":{"os":"linux","architecture":"amd64"}"#
        )));
        assert!(!is_attestation(&entry("")));
    }

    #[test]
    fn no_match_lists_what_is_offered() {
        let e = pick("linux/s390x").unwrap_err().to_string();
        assert!(
            e.contains("linux/s390x") && e.contains("linux/amd64, linux/arm64, linux/arm/v7"),
            "{e}"
        );
        assert!(
            !e.contains("unknown"),
            "attestations are not platforms: {e}"
        );
        assert!(pick("linux/arm/v6").is_err());
    }
}
