//! Platforms: the `os/architecture[/variant]` an image is built for, the
//! host's, normalisation of the usual aliases, and choosing one platform's
//! manifest from an index or manifest list.

use std::str::FromStr;

use crate::digest::Digest;
use crate::error::{Error, JsonError, Result};
use crate::media;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    pub os: String,
    pub architecture: String,
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
        let ok = |p: &str| {
            p.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.')
        };
        if !parts.iter().all(|p| ok(p)) {
            return Err(format!(
                "platform {s:?} may hold only lowercase letters, digits, '_' and '.'"
            ));
        }
        let os = parts[0].to_string();
        let mut architecture = parts[1].to_string();
        let mut variant = parts.get(2).map(|v| v.to_string());
        match architecture.as_str() {
            "x86_64" | "x86-64" => architecture = "amd64".into(),
            "aarch64" => architecture = "arm64".into(),
            _ => {}
        }
        // arm64 images carry no variant or v8; containerd treats them alike,
        // and so does the rest of gantry by dropping the default.
        if architecture == "arm64" && variant.as_deref() == Some("v8") {
            variant = None;
        }
        Ok(Platform {
            os,
            architecture,
            variant,
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
    pub digest: Digest,
    pub size: u64,
    pub media_type: String,
    pub platform: Option<Platform>,
}

/// The manifests of an index that are images (not attestations), with their
/// platforms normalised as `Platform::parse` does (so `arm64/v8` = `arm64`).
pub fn candidates(index_bytes: &[u8], what: &str) -> Result<Vec<Candidate>> {
    let index = parse_index(index_bytes, what)?;
    let mut out = Vec::new();
    for d in index.manifests() {
        let mt = d.media_type().to_string();
        if mt != media::OCI_MANIFEST && mt != media::DOCKER_MANIFEST {
            continue;
        }
        let attestation = d
            .annotations()
            .as_ref()
            .is_some_and(|a| a.contains_key("vnd.docker.reference.type"));
        let platform = d.platform().as_ref().map(|p| {
            let s = oci_platform_string(p);
            Platform::parse(&s).unwrap_or(Platform {
                os: p.os().to_string(),
                architecture: p.architecture().to_string(),
                variant: p.variant().clone(),
            })
        });
        if attestation || platform.as_ref().is_some_and(|p| p.os == "unknown") {
            continue;
        }
        let digest = Digest::from_str(d.digest().as_ref()).map_err(|_| {
            Error::format(
                what,
                format!("digest {} is not supported (only sha256 is)", d.digest()),
            )
        })?;
        out.push(Candidate {
            digest,
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

fn parse_index(bytes: &[u8], what: &str) -> Result<oci_spec::image::ImageIndex> {
    serde_json::from_slice(bytes)
        .map_err(|e| Error::format_because(what, "not an image index", JsonError::from(e)))
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
