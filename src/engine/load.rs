//! Loading images into an engine, sending only the layers it lacks.

use std::collections::BTreeSet;
use std::io::{self, Write};

use super::{api_digest, Engine, Held, ImageStore};
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::{Artifact, Image};
use crate::layout::write;
use crate::progress::{Event, Reporter};
use crate::reference::Reference;
use crate::store::Store;

/// Progress is reported each time this many more bytes are sent.
const PROGRESS_STEP: u64 = 1 << 20;

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// What the engine now holds the images under, as `docker load` says
    /// it (`Loaded image: REF`).
    pub loaded: Vec<String>,
    /// Bytes of archive sent, over every attempt.
    pub sent: u64,
    /// Layer files in the archive that loaded the images.
    pub layers_sent: usize,
    /// Layers of the images, each distinct layer once.
    pub layers_total: usize,
    /// Every tag already named the image: nothing was sent.
    pub unchanged: bool,
    /// Why the full archive was sent after a smaller one, if it was.
    pub fell_back: Option<String>,
}

/// Loads single-platform `images` (whose layers are all in `store`) into
/// `engine`. `hints` are more references the engine may hold their bases
/// under (a base's tag, `name@digest`): with the images' own tags, they
/// tell which layer chains the engine has, and the archive leaves those
/// layer files out. The result is checked against the images' diff IDs;
/// a refused or wrong smaller load is followed by the full archive.
pub fn load(
    engine: &Engine,
    images: &[&Image],
    hints: &[String],
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<LoadReport> {
    if images.is_empty() {
        return Err(Error::Usage("no images to load".into()));
    }
    let mut report = LoadReport {
        layers_total: distinct_layers(images).len(),
        ..LoadReport::default()
    };
    // podman reuses the layers it holds by digest, and refuses an archive
    // missing one it lacks, so it takes the same smaller archive.
    if engine.image_store() == ImageStore::Containerd {
        send(
            engine,
            images,
            &BTreeSet::new(),
            store,
            reporter,
            &mut report,
        )?;
        return Ok(report);
    }

    let mut asked: Vec<String> = Vec::new();
    for r in images.iter().flat_map(|i| i.tags.iter()).chain(hints) {
        if !asked.contains(r) {
            asked.push(r.clone());
        }
    }
    let mut held: Vec<(String, Held)> = Vec::new();
    for r in &asked {
        if let Some(h) = engine.inspect(r)? {
            held.push((r.clone(), h));
        }
    }
    if images.iter().all(|i| in_place(i, &held)) {
        report.unchanged = true;
        report.loaded = images.iter().flat_map(|i| familiar_tags(i)).collect();
        return Ok(report);
    }

    let omit = held_layers(images, held.iter().map(|(_, h)| h));
    if omit.is_empty() {
        send(engine, images, &omit, store, reporter, &mut report)?;
        return Ok(report);
    }
    let why = match send(engine, images, &omit, store, reporter, &mut report) {
        Ok(()) => match check(engine, images)? {
            None => return Ok(report),
            Some(wrong) => wrong,
        },
        // Only the engine's refusal is worth a second try; a store or
        // connection failure would fail the same way again.
        Err(e @ Error::Format { .. }) => e.to_string(),
        Err(e) => return Err(e),
    };
    reporter.report(Event::Warning {
        message: &format!(
            "the engine did not take the archive without its layers ({why}); sending every layer"
        ),
    });
    report.fell_back = Some(why);
    send(
        engine,
        images,
        &BTreeSet::new(),
        store,
        reporter,
        &mut report,
    )?;
    if let Some(wrong) = check(engine, images)? {
        return Err(Error::format(
            engine.name(),
            format!("the loaded image is not the one sent: {wrong}"),
        ));
    }
    Ok(report)
}

fn distinct_layers(images: &[&Image]) -> BTreeSet<Digest> {
    images
        .iter()
        .flat_map(|i| i.layers.iter().map(|l| l.digest))
        .collect()
}

/// Whether every tag of `image` already names it in the engine.
fn in_place(image: &Image, held: &[(String, Held)]) -> bool {
    !image.tags.is_empty()
        && image.tags.iter().all(|t| {
            held.iter()
                .any(|(r, h)| r == t && h.id == api_digest(&image.config_digest))
        })
}

/// The layer blobs no image needs sent: those of the longest prefix of
/// each image's layers the engine holds as a chain (the first layers of
/// one of `held`), and needed by no image beyond its held prefix.
fn held_layers<'a>(
    images: &[&Image],
    held: impl Iterator<Item = &'a Held> + Clone,
) -> BTreeSet<Digest> {
    let mut needed = BTreeSet::new();
    for image in images {
        let diff_ids: Vec<String> = image
            .layers
            .iter()
            .map(|l| api_digest(&l.diff_id))
            .collect();
        let prefix = held
            .clone()
            .map(|h| {
                h.layers
                    .iter()
                    .zip(&diff_ids)
                    .take_while(|(a, b)| a == b)
                    .count()
            })
            .max()
            .unwrap_or(0);
        needed.extend(image.layers[prefix..].iter().map(|l| l.digest));
    }
    distinct_layers(images)
        .into_iter()
        .filter(|d| !needed.contains(d))
        .collect()
}

/// Streams one archive of `images` without the layers in `omit`.
fn send(
    engine: &Engine,
    images: &[&Image],
    omit: &BTreeSet<Digest>,
    store: &Store,
    reporter: &dyn Reporter,
    report: &mut LoadReport,
) -> Result<()> {
    let sent_layers: BTreeSet<Digest> = distinct_layers(images)
        .into_iter()
        .filter(|d| !omit.contains(d))
        .collect();
    let layer_bytes: u64 = images
        .iter()
        .flat_map(|i| &i.layers)
        .filter(|l| sent_layers.contains(&l.digest))
        .map(|l| (l.digest, l.size))
        .collect::<BTreeSet<_>>()
        .iter()
        .map(|(_, s)| s)
        .sum();
    let name = engine.endpoint().to_string();
    reporter.report(Event::LoadStarted {
        engine: &name,
        layers: sent_layers.len(),
        of: report.layers_total,
        bytes: layer_bytes,
    });
    let artifacts: Vec<Artifact> = images
        .iter()
        .map(|i| Artifact::Image((*i).clone()))
        .collect();
    let artifacts: Vec<&Artifact> = artifacts.iter().collect();
    let mut sent = 0u64;
    let loaded = engine.post_load(&mut |out: &mut dyn Write| {
        let counting = Counting {
            inner: out,
            sent: &mut sent,
            next_report: PROGRESS_STEP,
            engine: &name,
            reporter,
        };
        write::write_docker_archive_omitting(&artifacts, store, omit, counting)?;
        Ok(())
    });
    report.sent += sent;
    reporter.report(Event::LoadFinished {
        engine: &name,
        sent,
        ok: loaded.is_ok(),
    });
    report.loaded = loaded?;
    report.layers_sent = sent_layers.len();
    Ok(())
}

/// Checks that every tag names the image sent, with its layers; returns
/// what is wrong, if anything.
fn check(engine: &Engine, images: &[&Image]) -> Result<Option<String>> {
    for image in images {
        let want: Vec<String> = image
            .layers
            .iter()
            .map(|l| api_digest(&l.diff_id))
            .collect();
        for tag in &image.tags {
            match engine.inspect(tag)? {
                None => return Ok(Some(format!("{tag} is not there"))),
                Some(h) if h.id != api_digest(&image.config_digest) => {
                    return Ok(Some(format!(
                        "{tag} is {}, not {}",
                        h.id, image.config_digest
                    )))
                }
                Some(h) if h.layers != want => {
                    return Ok(Some(format!("{tag} has other layers than the image")))
                }
                Some(_) => {}
            }
        }
    }
    Ok(None)
}

/// The tags as `docker load` names them (`name:tag`, `docker.io/library/`
/// left out).
fn familiar_tags(image: &Image) -> Vec<String> {
    image
        .tags
        .iter()
        .map(|t| match t.parse::<Reference>() {
            Ok(r) => r.familiar(),
            Err(_) => t.clone(),
        })
        .collect()
}

/// Counts the body bytes going to the engine and reports them now and then.
struct Counting<'a> {
    inner: &'a mut dyn Write,
    sent: &'a mut u64,
    next_report: u64,
    engine: &'a str,
    reporter: &'a dyn Reporter,
}

impl Write for Counting<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        *self.sent += n as u64;
        if *self.sent >= self.next_report {
            self.next_report = *self.sent + PROGRESS_STEP;
            self.reporter.report(Event::LoadProgress {
                engine: self.engine,
                sent: *self.sent,
            });
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::LayerDesc;

    fn layer(n: u8) -> LayerDesc {
        LayerDesc {
            media_type: crate::media::OCI_LAYER_GZIP.into(),
            digest: Digest::of(&[n]),
            size: 10,
            diff_id: Digest::of(&[n, n]),
            annotations: Default::default(),
            location: Default::default(),
        }
    }

    fn image(layers: &[u8]) -> Image {
        Image::with_oci_manifest(
            "x".into(),
            Default::default(),
            b"{}".to_vec(),
            layers.iter().map(|n| layer(*n)).collect(),
            Default::default(),
            vec![],
        )
    }

    fn held(layers: &[u8]) -> Held {
        Held {
            id: String::new(),
            layers: layers
                .iter()
                .map(|n| api_digest(&layer(*n).diff_id))
                .collect(),
        }
    }

    #[test]
    fn the_longest_held_prefix_is_left_out() {
        let i = image(&[1, 2, 3]);
        let h = [held(&[1, 9]), held(&[1, 2, 4])];
        let omit = held_layers(&[&i], h.iter());
        assert_eq!(omit, [layer(1).digest, layer(2).digest].into());
    }

    #[test]
    fn a_layer_held_in_another_chain_is_still_sent() {
        // Layer 2 on top of 1 is held, but the image has it on top of 3:
        // another chain, which the engine lacks.
        let i = image(&[3, 2]);
        let omit = held_layers(&[&i], [held(&[1, 2])].iter());
        assert!(omit.is_empty());
    }

    #[test]
    fn a_blob_one_image_needs_is_sent_though_another_holds_it() {
        let a = image(&[1, 2]);
        let b = image(&[5, 1]);
        let omit = held_layers(&[&a, &b], [held(&[1, 2])].iter());
        assert_eq!(omit, [layer(2).digest].into());
    }
}
