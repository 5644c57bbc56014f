//! Where a build file's images go: the references each built image is
//! pushed to, and a build file built and pushed in one go, asking the
//! registries the early questions while the build runs.

use crate::build::BuiltImage;
use crate::buildfile::BuildFile;
use crate::error::{Error, Result};
use crate::progress::{Event, Reporter};
use crate::project::{self, Inputs};
use crate::reference::Reference;
use crate::store::Store;

use super::{push, Early, LayerStatus, PushOptions, PushReport, PushRequest};

/// What to push of `built`, and where: each image asked for (`images`;
/// every image when empty) to `explicit`, or else to its tags. An image
/// named in `images` without tags is an error; one pushed only because
/// every image is, a warning.
pub fn targets<'a>(
    file: &BuildFile,
    built: &'a [BuiltImage],
    images: &[String],
    explicit: &[Reference],
    reporter: &dyn Reporter,
) -> Result<Vec<PushRequest<'a>>> {
    let mut requests = Vec::new();
    for b in built {
        let named = images.contains(&b.name);
        if !images.is_empty() && !named {
            continue; // a base built for an image asked for
        }
        let targets = if !explicit.is_empty() {
            explicit.to_vec()
        } else if file.images[&b.name].tags.is_empty() {
            if named {
                return Err(Error::BuildFile {
                    location: file.images[&b.name].location.clone(),
                    message: format!(
                        "image {:?} has no tags to push to; add `tags = [...]` or give --tag",
                        b.name
                    ),
                });
            }
            reporter.report(Event::Warning {
                message: &format!("image {:?} has no tags; not pushed", b.name),
            });
            continue;
        } else {
            b.result
                .tags()
                .iter()
                .map(|t| Reference::parse_tagged(t))
                .collect::<Result<_>>()?
        };
        requests.push(PushRequest::new(&b.result, targets).with_referrers(&b.referrers));
    }
    if requests.is_empty() {
        return Err(Error::Usage(format!(
            "{}: no image has tags to push to; add `tags = [...]` to an image or give --tag",
            file.path.display()
        )));
    }
    Ok(requests)
}

/// The references a push of `images` will go to that are known before the
/// build: `explicit`, or the tags without stamp templates (those are known
/// only once expanded).
fn known_targets(file: &BuildFile, images: &[String], explicit: &[Reference]) -> Vec<Reference> {
    if !explicit.is_empty() {
        return explicit.to_vec();
    }
    file.images
        .values()
        .filter(|i| images.is_empty() || images.contains(&i.name))
        .flat_map(|i| &i.tags)
        .filter_map(|t| t.reference.clone())
        .collect()
}

/// Builds the images of a build file (as [`project::build`] does) and
/// pushes them to [`targets`]. While the build runs, the registries are
/// asked what the last push to each target known by then sent, so that a
/// push of an unchanged image waits for no request it can have asked
/// early. The build never waits for those questions: a slow registry must
/// not hold up a build that fails.
pub fn build_and_push(
    inputs: &Inputs<'_>,
    explicit: &[Reference],
    opts: &PushOptions,
    store: &Store,
    reporter: &dyn Reporter,
) -> Result<PushReport> {
    let mut prepared = project::prepare(inputs)?;
    let early_targets = known_targets(&prepared.file, inputs.images, explicit);
    // The images at the tags being pushed, and those this store pushed to
    // the same registries before, are cache sources: a fresh machine finds
    // an unchanged image's layers there instead of compressing them.
    prepared.cache_sources.extend(early_targets.iter().cloned());
    prepared
        .cache_sources
        .extend(super::early::pushed_before(store, &early_targets));
    let early = (!early_targets.is_empty()).then(|| {
        Early::start(
            prepared.options.registry.clone(),
            store.clone(),
            early_targets,
            opts.jobs,
        )
    });
    let built = prepared.build(inputs.images, store, reporter)?;
    let requests = targets(&prepared.file, &built, inputs.images, explicit, reporter)?;
    let client = prepared.options.registry.client("push")?;
    let mut report = push(&requests, store, &client, opts, early, reporter)?;
    for image in &mut report.images {
        if let Some(b) = built.iter().find(|b| b.name == image.name) {
            image.layers = layer_statuses(b);
        }
    }
    if let Some(to) = &opts.cache_to {
        report.cache = Some(super::push_cache(
            &built, to, store, &client, opts, reporter,
        )?);
    }
    Ok(report)
}

/// How the build made each of the image's own layers.
fn layer_statuses(b: &BuiltImage) -> Vec<LayerStatus> {
    b.platforms
        .iter()
        .flat_map(|p| {
            p.layers.iter().map(|l| LayerStatus {
                platform: p.platform.clone(),
                name: l.name.clone(),
                digest: l.digest,
                status: l.status(),
                cached_from: l.cached_from.clone(),
            })
        })
        .collect()
}
