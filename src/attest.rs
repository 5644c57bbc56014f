//! Every built image's SBOM and provenance, made after the build from what
//! the store holds, and attached to the image as OCI referrers (blobs in
//! the store, listed in [`BuiltImage::referrers`] for the sinks).
//!
//! Nothing here reads a layer gantry wrote: its files and checksums were
//! recorded while it was laid down ([`layer::files`]). The base's OS
//! packages come from its file system view ([`sbom::scan`]), whose layer
//! indexes the store keeps by diff_id; only a base layer that holds a
//! package database is read, and only when the store has no index of it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::build::{BuildOptions, BuiltImage, ANNOTATION_BASE_DIGEST};
use crate::buildfile::{BaseSpec, BuildFile, ImageSpec, LocalSource};
use crate::digest::{Digest, Hasher};
use crate::error::{Error, Result};
use crate::image::{Image, LayerDesc};
use crate::layer;
use crate::media::Compression;
use crate::progress::{Event, Reporter};
use crate::reference::Reference;
use crate::rootfs::{self, LayerIndex, RootFs};
use crate::sbom::artifact::{self, Referrer, EMPTY_CONFIG};
use crate::sbom::provenance::{self, Dependency, ProvenanceInput};
use crate::sbom::spdx::{self, OciPackage, SbomInput};
use crate::sbom::{self};
use crate::stamp::Stamp;
use crate::store::{self, Store};

/// What the documents of a build say about how it ran.
pub struct Run<'a> {
    /// The build file, as built.
    pub file: &'a BuildFile,
    /// The build's options (epoch, stamping, lock).
    pub options: &'a BuildOptions,
    /// The images asked for by name (empty: every image).
    pub asked: &'a [String],
    /// Start and end of the build in seconds, written only when stamped.
    pub times: (u64, u64),
}

/// Makes the SBOM and provenance of every image of `built` (each child of
/// an index) whose build file entry does not turn them off, puts their
/// blobs into the store and lists them in each [`BuiltImage::referrers`].
pub fn attach(
    run: &Run<'_>,
    built: &mut [BuiltImage],
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<()> {
    let build_file_digest =
        Digest::of(&std::fs::read(&run.file.path).map_err(|e| Error::io(&run.file.path, e))?);
    let stamp = stamp_values(run)?;
    store.put(EMPTY_CONFIG)?;
    for b in built.iter_mut() {
        let Some(spec) = run.file.images.get(&b.name) else {
            continue;
        };
        if !spec.sbom {
            continue;
        }
        let first_tag = b.result.tags().first().cloned();
        let mut referrers = Vec::new();
        for (image, report) in b.result.images().iter().zip(&b.platforms) {
            let own = report.layers.len().min(image.layers.len());
            let (base_layers, own_layers) = image.layers.split_at(image.layers.len() - own);
            let names: Vec<&str> = report.layers.iter().map(|l| l.name.as_str()).collect();
            let described = Described {
                spec,
                image,
                tag: first_tag.as_deref(),
                base_layers,
                own_layers,
                names: &names,
            };
            let prov = provenance_of(run, &described, &build_file_digest, &stamp);
            referrers.extend(documents(run, &described, prov, store, reporter)?);
        }
        b.referrers = referrers;
    }
    Ok(())
}

/// The documents made for an image before, by a digest of everything
/// that decides their bytes: what a no-op rebuild finds instead of
/// reading the file lists and writing the SBOM again.
#[derive(Serialize, Deserialize)]
struct Made {
    /// (artifact type, document digest, document size), SBOM first.
    documents: Vec<(String, Digest, u64)>,
}

impl store::Record for Made {
    const KIND: &'static str = "attest-documents";
}

/// The SBOM and the provenance `prov` of one image, as referrers whose
/// blobs are in the store.
fn documents(
    run: &Run<'_>,
    d: &Described<'_>,
    prov: Vec<u8>,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<Vec<Referrer>> {
    let image = d.image;
    let referrer = |kind: &str, doc: (Digest, u64)| {
        artifact::referrer(
            kind,
            doc,
            &image.manifest_media_type,
            &image.manifest_digest,
            image.manifest_bytes.len() as u64,
        )
    };
    // The provenance holds the image digest (and so its layers, base and
    // platform), the build file, the images asked for and the stamp
    // values; the rest is what the SBOM adds.
    let key = {
        let mut h = Hasher::new();
        h.update(&prov);
        let base = base_of(d).map(|(name, _, _)| name);
        let more = format!(
            "\0{}\0{:?}\0{}\0{base:?}\0{:?}\0{}\0{}",
            sbom::tool_version(),
            d.tag,
            d.spec.name,
            d.names,
            run.options.epoch,
            run.options.stamp.is_some()
        );
        h.update(more.as_bytes());
        h.finish().0.hex()
    };
    let cached = store.record::<Made>(&key).and_then(|m| {
        let sbom = m
            .documents
            .into_iter()
            .find(|(k, _, _)| k == spdx::MEDIA_TYPE)?;
        (store.size(&sbom.1) == Some(sbom.2)).then_some((sbom.1, sbom.2))
    });
    // The SBOM is made and stored on a thread of its own while the
    // provenance is stored: on a cold build nothing else runs by then.
    let (sbom_doc, prov_out) = std::thread::scope(|s| -> Result<_> {
        // Found made before, or being made.
        let sbom = cached.ok_or_else(|| {
            s.spawn(|| -> Result<(Digest, u64)> {
                let sbom = sbom_of(run, d, store, reporter)?;
                store.put(&sbom)
            })
        });
        let prov_out = referrer(provenance::MEDIA_TYPE, store.put(&prov)?);
        store.put(&prov_out.manifest.bytes)?;
        let sbom_doc = match sbom {
            Ok(doc) => doc,
            Err(making) => making
                .join()
                .unwrap_or_else(|p| std::panic::resume_unwind(p))?,
        };
        Ok((sbom_doc, prov_out))
    })?;
    let sbom_out = referrer(spdx::MEDIA_TYPE, sbom_doc);
    store.put(&sbom_out.manifest.bytes)?;
    let out = vec![sbom_out, prov_out];
    if cached.is_none() && run.options.stamp.is_none() {
        let documents = out
            .iter()
            .map(|r| (r.artifact_type.clone(), r.document.0, r.document.1))
            .collect();
        store.put_record(&key, &Made { documents })?;
    }
    Ok(out)
}

/// One image (one platform) being described.
struct Described<'a> {
    spec: &'a ImageSpec,
    image: &'a Image,
    /// The first tag of the image (of its index, for a child).
    tag: Option<&'a str>,
    base_layers: &'a [LayerDesc],
    own_layers: &'a [LayerDesc],
    /// The names of the own layers, in order.
    names: &'a [&'a str],
}

/// The image as a package: named by its first tag, else its build file name.
fn image_package(run: &Run<'_>, d: &Described<'_>) -> OciPackage {
    let reference = d.tag.and_then(|t| Reference::parse_tagged(t).ok());
    OciPackage {
        name: d.tag.map_or_else(|| d.spec.name.clone(), str::to_string),
        repository: reference
            .as_ref()
            .map(|r| format!("{}/{}", r.registry, r.repository)),
        tag: reference.as_ref().and_then(|r| r.tag.clone()),
        version: reference
            .and_then(|r| r.tag)
            .filter(|_| run.options.stamp.is_some()),
        digest: d.image.manifest_digest,
        arch: Some(d.image.config.architecture.clone()),
    }
}

/// The base as written in the build file, its repository when it is a
/// registry's, and the digest of the manifest the image was built on.
fn base_of(d: &Described<'_>) -> Option<(String, Option<Reference>, Digest)> {
    let digest = d
        .image
        .annotations
        .get(ANNOTATION_BASE_DIGEST)
        .and_then(|s| Digest::parse(s).ok())?;
    let (name, reference) = match &d.spec.base {
        BaseSpec::Scratch => return None,
        BaseSpec::Image(n) => (format!(":{n}"), None),
        BaseSpec::Local(src) => (local_name(src), None),
        BaseSpec::Registry(r) => (r.to_string(), Some(r.clone())),
    };
    Some((name, reference, digest))
}

/// A local base by the kind and last component of its path: the path is
/// resolved against the checkout, which differs from machine to machine.
fn local_name(src: &LocalSource) -> String {
    let (kind, path, tag) = match src {
        LocalSource::OciLayout { path, tag } => ("oci", path, tag),
        LocalSource::DockerArchive { path, tag } => ("docker-archive", path, tag),
    };
    let name = path
        .file_name()
        .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    match tag {
        Some(t) => format!("{kind}:{name}:{t}"),
        None => format!("{kind}:{name}"),
    }
}

fn sbom_of(
    run: &Run<'_>,
    d: &Described<'_>,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<Vec<u8>> {
    let base = match base_of(d) {
        None => None,
        Some((name, reference, digest)) => {
            // A base whose layers cannot be read for their package
            // databases still gets its SBOM, without the packages, and
            // the build says why.
            let scan = scan_base(run, d, store, reporter).unwrap_or_else(|e| {
                let message = format!(
                    "image {:?}: the SBOM lists no packages of the base {name}: {e}",
                    d.spec.name
                );
                reporter.report(Event::Warning { message: &message });
                sbom::scan::BaseScan::default()
            });
            Some(spdx::Base {
                image: OciPackage {
                    name,
                    repository: reference
                        .as_ref()
                        .map(|r| format!("{}/{}", r.registry, r.repository)),
                    tag: reference.as_ref().and_then(|r| r.tag.clone()),
                    version: None,
                    digest,
                    arch: Some(d.image.config.architecture.clone()),
                },
                os: scan.os,
                packages: scan.packages,
            })
        }
    };
    let mut layers = Vec::with_capacity(d.own_layers.len());
    for (i, l) in d.own_layers.iter().enumerate() {
        layers.push(spdx::Layer {
            name: d
                .names
                .get(i)
                .map_or_else(|| i.to_string(), |n| n.to_string()),
            digest: l.digest,
            files: layer::files::files_of(store, &d.spec.name, l)?,
        });
    }
    Ok(spdx::document(&SbomInput {
        image: image_package(run, d),
        base,
        layers,
        epoch: run.options.epoch,
    }))
}

/// The base's OS packages, through the layer indexes the store keeps.
fn scan_base(
    run: &Run<'_>,
    d: &Described<'_>,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<sbom::scan::BaseScan> {
    let open = |l: &LayerDesc| open_layer(run, &d.spec.name, l, store, reporter);
    let mut indexes = Vec::with_capacity(d.base_layers.len());
    for l in d.base_layers {
        indexes.push(LayerIndex::cached(store, &l.diff_id, || open(l))?);
    }
    let fs = RootFs::new(&indexes);
    sbom::scan::scan(&fs, |k| open(&d.base_layers[k]))
}

/// The uncompressed stream of a base layer, fetched first when only its
/// registry has it.
fn open_layer(
    run: &Run<'_>,
    image: &str,
    l: &LayerDesc,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<Box<dyn Read>> {
    run.options
        .registry
        .fetch_layer(image, l, store, reporter)?;
    let err = |message: String| Error::Layer {
        image: image.to_string(),
        layer: l.digest.to_string(),
        message,
        cause: None,
    };
    let compression = Compression::of_layer_media_type(&l.media_type).ok_or_else(|| {
        err(format!(
            "the base's layer has media type {:?}, which is not a layer",
            l.media_type
        ))
    })?;
    let blob = store.open_blob(&l.digest)?;
    rootfs::uncompressed(compression, blob).map_err(|e| Error::Layer {
        image: image.to_string(),
        layer: l.digest.to_string(),
        message: "cannot read the base's layer for its package database".into(),
        cause: Some(e.into()),
    })
}

fn provenance_of(
    run: &Run<'_>,
    d: &Described<'_>,
    build_file_digest: &Digest,
    stamp: &BTreeMap<String, String>,
) -> Vec<u8> {
    let lock = run.options.registry.lock.as_ref();
    let dependencies = base_of(d)
        .map(|(name, reference, digest)| Dependency {
            locked: reference
                .as_ref()
                .is_some_and(|r| lock.is_some_and(|l| l.base.contains_key(&r.to_string()))),
            reference: reference.map_or(name, |r| r.to_string()),
            digest,
        })
        .into_iter()
        .collect();
    let build_file = Path::new(&run.file.path).file_name().map_or_else(
        || "gantry.toml".into(),
        |n| n.to_string_lossy().into_owned(),
    );
    let images = if run.asked.is_empty() {
        run.file.images.keys().cloned().collect()
    } else {
        run.asked.to_vec()
    };
    provenance::statement(&ProvenanceInput {
        image_name: d.tag.map_or_else(|| d.spec.name.clone(), str::to_string),
        image_digest: d.image.manifest_digest,
        build_file,
        build_file_digest: *build_file_digest,
        images,
        platform: d.image.platform(),
        stamp: stamp.clone(),
        dependencies,
        times: run.options.stamp.is_some().then_some(run.times),
    })
}

/// For a stamped build, the value of every stamp key its images' tags use.
/// The values are evaluated again from the same sources; an unstamped
/// build states none (its values are the build file's placeholders).
fn stamp_values(run: &Run<'_>) -> Result<BTreeMap<String, String>> {
    let Some(sources) = &run.options.stamp else {
        return Ok(BTreeMap::new());
    };
    let stamp = Stamp::stamped(
        &run.file.stamp,
        sources,
        &run.file.dir,
        run.options.source_date_epoch,
    )?;
    let mut out = BTreeMap::new();
    for spec in run.file.images.values() {
        for tag in &spec.tags {
            for key in crate::stamp::template_keys(&tag.template.text, &tag.template.location)? {
                if let Some(v) = stamp.get(&key)? {
                    out.insert(key, v);
                }
            }
        }
    }
    Ok(out)
}
