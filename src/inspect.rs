//! A summary of an image on disk, for `gantry inspect`.
//!
//! The serialised form is an interface for scripts: field names are
//! snake_case and stable, and every field is always present (`null` or empty
//! when the image does not set it) so that `jq .config.user` never has to
//! guess. The `Display` form is for people and may change.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Serialize;

use crate::digest::Digest;
use crate::error::Result;
use crate::image::Image;
use crate::layout::read::{self, LocationReferrer};
use crate::media;
use crate::media::Compression;

/// What `gantry inspect` shows of one image: its manifest, config and layers.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    /// What names the image.
    pub manifest_digest: Digest,
    /// The manifest's media type (OCI or Docker).
    pub manifest_media_type: String,
    /// The config blob's digest (Docker's image ID).
    pub config_digest: Digest,
    /// `os/arch[/variant]`.
    pub platform: String,
    /// When the config says the image was made (RFC 3339), if it says.
    pub created: Option<String>,
    /// The names the location gives the image.
    pub tags: Vec<String>,
    /// How a container from it runs.
    pub config: ConfigSummary,
    /// Manifest annotations, sorted.
    pub annotations: BTreeMap<String, String>,
    /// In manifest order, base layers first.
    pub layers: Vec<LayerSummary>,
    /// The config's history, one entry per step that made the image.
    pub history: Vec<HistorySummary>,
    /// The documents the location holds about the image (its SBOM and
    /// provenance, signatures): manifests whose `subject` is this one.
    pub referrers: Vec<LocationReferrer>,
}

/// How a container from the image runs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ConfigSummary {
    /// The user (`name`, `uid` or `uid:gid`) the process runs as.
    pub user: Option<String>,
    /// `KEY=value` pairs, in the config's order.
    pub env: Vec<String>,
    /// `None` (unset) and `Some([])` (explicitly empty) differ when the
    /// image is used as a base, so both are kept.
    pub entrypoint: Option<Vec<String>>,
    /// The arguments to the entrypoint, or the command when it has none.
    pub cmd: Option<Vec<String>>,
    /// The directory the process starts in.
    pub working_dir: Option<String>,
    /// Config labels, sorted.
    pub labels: BTreeMap<String, String>,
    /// `port/protocol`, sorted.
    pub exposed_ports: Vec<String>,
    /// Paths a container mounts a volume at, sorted.
    pub volumes: Vec<String>,
    /// The signal that asks the process to stop.
    pub stop_signal: Option<String>,
}

/// One layer as the manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LayerSummary {
    /// Says how the layer is compressed.
    pub media_type: String,
    /// The digest of the layer blob.
    pub digest: Digest,
    /// The blob's size in bytes.
    pub size: u64,
    /// The digest of the uncompressed tar.
    pub diff_id: Digest,
}

/// One step of the config's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HistorySummary {
    /// What made this step, as the tool that made it wrote it.
    pub created_by: Option<String>,
    /// A note the step carries.
    pub comment: Option<String>,
    /// The step made no layer (a config change only).
    pub empty_layer: bool,
}

/// Opens the image at `path` (see [`read::open`] for what `select` matches)
/// and summarises it. Only the manifest and config are read.
pub fn inspect(path: &Path, select: Option<&str>) -> Result<Inspection> {
    let (image, _) = read::open(path, select)?;
    let mut info = Inspection::of(&image);
    info.referrers = read::referrers(path)?
        .remove(&image.manifest_digest)
        .unwrap_or_default();
    Ok(info)
}

/// A multi-platform image: its index and the platforms it offers.
#[derive(Debug, Clone, Serialize)]
pub struct IndexInspection {
    /// What names the multi-platform image.
    pub index_digest: Digest,
    /// The index's media type (OCI index or Docker manifest list).
    pub media_type: String,
    /// The names the location gives the index.
    pub tags: Vec<String>,
    /// Index annotations, sorted.
    pub annotations: BTreeMap<String, String>,
    /// The images it offers, attestations left out, in index order.
    pub manifests: Vec<IndexEntry>,
}

/// One image an index offers.
#[derive(Debug, Clone, Serialize)]
pub struct IndexEntry {
    /// `os/arch[/variant]`, or `null` when the index names none.
    pub platform: Option<String>,
    /// The digest of its manifest.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
    /// The manifest's media type.
    pub media_type: String,
    /// The documents the location holds about this image.
    pub referrers: Vec<LocationReferrer>,
}

/// What `gantry inspect` shows: an image, or an index over several.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Summary {
    /// A single-platform image.
    Image(Box<Inspection>),
    /// A multi-platform image.
    Index(IndexInspection),
}

/// Like [`inspect`], but a multi-platform image is summarised as its index,
/// unless `platform` chooses one of its images.
pub fn inspect_any(
    path: &Path,
    select: Option<&str>,
    platform: Option<&crate::platform::Platform>,
) -> Result<Summary> {
    let mut referrers = read::referrers(path)?;
    if platform.is_none() {
        if let Some(x) = read::open_index(path, select)? {
            return Ok(Summary::Index(IndexInspection {
                index_digest: x.digest,
                media_type: x.media_type,
                tags: x.tags,
                annotations: x.annotations,
                manifests: x
                    .manifests
                    .into_iter()
                    .map(|c| IndexEntry {
                        platform: c.platform.map(|p| p.to_string()),
                        digest: c.digest,
                        size: c.size,
                        media_type: c.media_type,
                        referrers: referrers.remove(&c.digest).unwrap_or_default(),
                    })
                    .collect(),
            }));
        }
    }
    let (image, _) = read::open_for(path, select, platform)?;
    let mut info = Inspection::of(&image);
    info.referrers = referrers.remove(&image.manifest_digest).unwrap_or_default();
    Ok(Summary::Image(Box::new(info)))
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Summary::Image(i) => i.fmt(f),
            Summary::Index(x) => x.fmt(f),
        }
    }
}

impl fmt::Display for IndexInspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{:<LABEL$}{} (OCI index)", "digest", self.index_digest)?;
        for (i, t) in self.tags.iter().enumerate() {
            writeln!(f, "{:<LABEL$}{t}", if i == 0 { "tags" } else { "" })?;
        }
        writeln!(f, "{:<LABEL$}{}", "platforms", self.manifests.len())?;
        for m in &self.manifests {
            let p = m.platform.as_deref().unwrap_or("(no platform)");
            writeln!(f, "  {p:<16}{}", m.digest)?;
            referrer_lines(f, &m.referrers, "    ")?;
        }
        writeln!(f, "(`--platform OS/ARCH` shows one of them)")
    }
}

impl Inspection {
    /// Summarises an image already in memory, such as one just built.
    pub fn of(image: &Image) -> Inspection {
        let c = image.config.config.clone().unwrap_or_default();
        let keys = |m: Option<BTreeMap<String, serde_json::Value>>| -> Vec<String> {
            m.map(|m| m.into_keys().collect()).unwrap_or_default()
        };
        Inspection {
            manifest_digest: image.manifest_digest,
            manifest_media_type: image.manifest_media_type.clone(),
            config_digest: image.config_digest,
            platform: image.platform(),
            created: image.config.created.clone(),
            tags: image.tags.clone(),
            config: ConfigSummary {
                user: c.user,
                env: c.env.unwrap_or_default(),
                entrypoint: c.entrypoint,
                cmd: c.cmd,
                working_dir: c.working_dir,
                labels: c.labels.unwrap_or_default(),
                exposed_ports: keys(c.exposed_ports),
                volumes: keys(c.volumes),
                stop_signal: c.stop_signal,
            },
            annotations: image.annotations.clone(),
            layers: image
                .layers
                .iter()
                .map(|l| LayerSummary {
                    media_type: l.media_type.clone(),
                    digest: l.digest,
                    size: l.size,
                    diff_id: l.diff_id,
                })
                .collect(),
            history: image
                .config
                .history
                .iter()
                .map(|h| HistorySummary {
                    created_by: h.created_by.clone(),
                    comment: h.comment.clone(),
                    empty_layer: h.empty_layer,
                })
                .collect(),
            referrers: Vec::new(),
        }
    }
}

/// Width of the label column of the human summary.
const LABEL: usize = 11;

impl fmt::Display for Inspection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let line = |f: &mut fmt::Formatter<'_>, label: &str, value: &str| {
            writeln!(f, "{label:<LABEL$}{value}")
        };
        let lines = |f: &mut fmt::Formatter<'_>, label: &str, values: &[String]| {
            for (i, v) in values.iter().enumerate() {
                line(f, if i == 0 { label } else { "" }, v)?;
            }
            Ok(())
        };
        line(
            f,
            "digest",
            &format!(
                "{} ({})",
                self.manifest_digest,
                short_media_type(&self.manifest_media_type)
            ),
        )?;
        line(f, "config", &self.config_digest.to_string())?;
        line(f, "platform", &self.platform)?;
        if let Some(created) = &self.created {
            line(f, "created", created)?;
        }
        lines(f, "tags", &self.tags)?;
        let c = &self.config;
        if let Some(e) = &c.entrypoint {
            line(f, "entrypoint", &json_array(e))?;
        }
        if let Some(cmd) = &c.cmd {
            line(f, "cmd", &json_array(cmd))?;
        }
        lines(f, "env", &c.env)?;
        if let Some(u) = &c.user {
            line(f, "user", u)?;
        }
        if let Some(w) = &c.working_dir {
            line(f, "workdir", w)?;
        }
        let total: u64 = self.layers.iter().map(|l| l.size).sum();
        line(
            f,
            "layers",
            &format!("{}, {} in total", self.layers.len(), human_size(total)),
        )?;
        for l in &self.layers {
            writeln!(
                f,
                "  {}  {:>10}  {}",
                l.digest,
                human_size(l.size),
                compression_name(&l.media_type)
            )?;
        }
        referrer_lines(f, &self.referrers, "")
    }
}

/// `referrers  N`, then one line per referrer, indented by `indent`.
fn referrer_lines(
    f: &mut fmt::Formatter<'_>,
    list: &[LocationReferrer],
    indent: &str,
) -> fmt::Result {
    if list.is_empty() {
        return Ok(());
    }
    writeln!(f, "{indent}{:<LABEL$}{}", "referrers", list.len())?;
    for r in list {
        writeln!(
            f,
            "{indent}  {}  {}",
            r.digest,
            r.artifact_type.as_deref().unwrap_or("(no artifact type)")
        )?;
    }
    Ok(())
}

fn json_array(items: &[String]) -> String {
    serde_json::to_string(items).unwrap_or_default()
}

fn short_media_type(media: &str) -> &str {
    match media {
        media::OCI_MANIFEST => "OCI manifest",
        media::DOCKER_MANIFEST => "Docker manifest",
        other => other,
    }
}

fn compression_name(media: &str) -> &str {
    match Compression::of_layer_media_type(media) {
        Some(Compression::None) => "uncompressed",
        Some(Compression::Gzip) => "gzip",
        Some(Compression::Zstd) => "zstd",
        None => media,
    }
}

/// Binary units with one decimal, the way `ls -lh` and `du -h` users read
/// sizes: `512 B`, `1.5 KiB`, `3.2 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use std::str::FromStr;

    use super::*;
    use crate::image::Artifact;
    use crate::layout::testutil::{host_arch, sample_image, temp_store};
    use crate::layout::write::write_oci_dir;

    #[test]
    fn inspection_summarises_an_image_on_disk() {
        let (tmp, store) = temp_store();
        let image = sample_image(&store, &["example.com/worker:dev"], true);
        let dir = tmp.path().join("layout");
        write_oci_dir(&[&Artifact::Image(image.clone())], &store, &dir).unwrap();
        let i = inspect(&dir, Some("dev")).unwrap();
        assert_eq!(i.manifest_digest, image.manifest_digest);
        assert_eq!(i.manifest_media_type, media::OCI_MANIFEST);
        assert_eq!(i.config_digest, image.config_digest);
        assert_eq!(i.platform, format!("linux/{}", host_arch()));
        assert_eq!(i.created.as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(i.tags, ["example.com/worker:dev"]);
        assert_eq!(i.config.user.as_deref(), Some("0:0"));
        assert_eq!(
            i.config.entrypoint.as_deref(),
            Some(&["/bin/busybox".to_string()][..])
        );
        assert_eq!(i.config.cmd.as_ref().unwrap().len(), 2);
        assert!(i.config.env.contains(&"GREETING=hello world".to_string()));
        assert_eq!(i.config.exposed_ports, ["8080/tcp"]);
        assert_eq!(i.config.volumes, ["/data"]);
        assert_eq!(i.config.labels["org.example.team"], "build");
        assert_eq!(i.config.stop_signal.as_deref(), Some("SIGTERM"));
        assert_eq!(i.config.working_dir.as_deref(), Some("/"));
        assert_eq!(i.annotations, image.annotations);
        assert_eq!(i.layers.len(), 2);
        assert_eq!(i.layers[1].digest, image.layers[1].digest);
        assert_eq!(i.layers[1].diff_id, image.layers[1].diff_id);
        assert_eq!(i.layers[1].media_type, media::OCI_LAYER_GZIP);
        assert_eq!(i.history.len(), 3);
        assert!(i.history[2].empty_layer);
        assert_eq!(i.history[2].comment.as_deref(), Some("metadata only"));

        let text = i.to_string();
        assert!(text.contains(&image.manifest_digest.to_string()), "{text}");
        assert!(text.contains(&image.layers[0].digest.to_string()), "{text}");
        assert_eq!(text.matches("gzip").count(), 2, "{text}");

        let err = inspect(&dir, Some("other")).err().unwrap().to_string();
        assert!(err.contains("no image named \"other\""), "{err}");
    }

    fn d(c: char) -> Digest {
        Digest::from_str(&format!("sha256:{}", c.to_string().repeat(64))).unwrap()
    }

    fn fixed() -> Inspection {
        Inspection {
            manifest_digest: d('a'),
            manifest_media_type: media::OCI_MANIFEST.into(),
            config_digest: d('b'),
            platform: "linux/arm64/v8".into(),
            created: Some("2024-01-02T03:04:05Z".into()),
            tags: vec!["example.com/app:1".into(), "example.com/app:latest".into()],
            config: ConfigSummary {
                user: Some("app".into()),
                env: vec!["PATH=/bin".into(), "MODE=prod".into()],
                entrypoint: Some(vec!["/app".into(), "--flag".into()]),
                cmd: None,
                working_dir: Some("/srv".into()),
                labels: BTreeMap::from([("k".to_string(), "v".to_string())]),
                exposed_ports: vec!["80/tcp".into()],
                volumes: vec![],
                stop_signal: None,
            },
            annotations: BTreeMap::new(),
            layers: vec![
                LayerSummary {
                    media_type: media::OCI_LAYER_GZIP.into(),
                    digest: d('c'),
                    size: 3_500_000,
                    diff_id: d('d'),
                },
                LayerSummary {
                    media_type: media::OCI_LAYER_TAR.into(),
                    digest: d('e'),
                    size: 512,
                    diff_id: d('e'),
                },
            ],
            history: vec![HistorySummary {
                created_by: Some("gantry".into()),
                comment: None,
                empty_layer: false,
            }],
            referrers: vec![LocationReferrer {
                digest: d('f'),
                size: 600,
                artifact_type: Some("application/spdx+json".into()),
            }],
        }
    }

    #[test]
    fn display_is_a_compact_human_summary() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let c = "c".repeat(64);
        let e = "e".repeat(64);
        let f = "f".repeat(64);
        let want = format!(
            "\
digest     sha256:{a} (OCI manifest)
config     sha256:{b}
platform   linux/arm64/v8
created    2024-01-02T03:04:05Z
tags       example.com/app:1
           example.com/app:latest
entrypoint [\"/app\",\"--flag\"]
env        PATH=/bin
           MODE=prod
user       app
workdir    /srv
layers     2, 3.3 MiB in total
  sha256:{c}     3.3 MiB  gzip
  sha256:{e}       512 B  uncompressed
referrers  1
  sha256:{f}  application/spdx+json
"
        );
        assert_eq!(fixed().to_string(), want);
    }

    #[test]
    fn json_field_names_are_stable() {
        let v = serde_json::to_value(fixed()).unwrap();
        let keys =
            |v: &serde_json::Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
        assert_eq!(
            keys(&v),
            [
                "annotations",
                "config",
                "config_digest",
                "created",
                "history",
                "layers",
                "manifest_digest",
                "manifest_media_type",
                "platform",
                "referrers",
                "tags"
            ]
        );
        assert_eq!(
            keys(&v["referrers"][0]),
            ["artifact_type", "digest", "size"]
        );
        assert_eq!(
            keys(&v["config"]),
            [
                "cmd",
                "entrypoint",
                "env",
                "exposed_ports",
                "labels",
                "stop_signal",
                "user",
                "volumes",
                "working_dir"
            ]
        );
        assert_eq!(
            keys(&v["layers"][0]),
            ["diff_id", "digest", "media_type", "size"]
        );
        assert_eq!(
            keys(&v["history"][0]),
            ["comment", "created_by", "empty_layer"]
        );
        assert_eq!(v["manifest_digest"], format!("sha256:{}", "a".repeat(64)));
        assert_eq!(v["config"]["cmd"], serde_json::Value::Null);
        assert_eq!(v["layers"][0]["size"], 3_500_000);
    }

    #[test]
    fn sizes_read_like_du() {
        assert_eq!(human_size(0), "0 B");
        assert_eq!(human_size(1023), "1023 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(5 << 30), "5.0 GiB");
    }
}
