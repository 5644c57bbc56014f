//! The graph of a build: which platforms each image is built for, and which
//! child of an `:other` base each of them stands on.

use crate::buildfile::{BaseSpec, ImageSpec, Platforms};
use crate::error::{Error, Result};
use crate::platform::Platform;

/// One platform of one image.
pub(super) struct Node {
    /// Index of the image in build order.
    pub(super) image: usize,
    /// The platform, when known before the base is loaded.
    pub(super) platform: Option<Platform>,
    /// The image's spec as built for that platform.
    pub(super) spec: ImageSpec,
    /// The node of the `:other` image this one is based on.
    pub(super) base: Option<usize>,
    /// How the node names itself in progress and errors: the image's name,
    /// with the platform for a child of an index.
    pub(super) label: String,
}

/// Every image of a build and its nodes.
pub(super) struct Plan {
    pub(super) nodes: Vec<Node>,
    /// Per image in build order: its nodes, and whether it is an index.
    pub(super) images: Vec<(Vec<usize>, bool)>,
}

/// Plans `order` (bases first). With `only`, multi-platform images are
/// built for that platform alone, as a single image.
pub(super) fn plan(order: &[&ImageSpec], only: Option<&Platform>) -> Result<Plan> {
    let mut plan = Plan {
        nodes: Vec::new(),
        images: Vec::new(),
    };
    for (i, spec) in order.iter().enumerate() {
        let other = match &spec.base {
            BaseSpec::Image(name) => Some(
                order
                    .iter()
                    .position(|s| &s.name == name)
                    .expect("build order puts bases first"),
            ),
            _ => None,
        };
        let (mut platforms, mut multi): (Vec<Option<Platform>>, bool) =
            match (&spec.platforms, other) {
                (Platforms::Base, Some(o)) => {
                    // Without a platform of its own, an image is built for every
                    // platform its base in this file is built for.
                    let (nodes, multi) = &plan.images[o];
                    (
                        nodes
                            .iter()
                            .map(|&n| plan.nodes[n].platform.clone())
                            .collect(),
                        *multi,
                    )
                }
                (ps, _) => (ps.build_for(), spec.is_multi_platform()),
            };
        if let (Some(want), true) = (only, multi) {
            if !platforms.contains(&Some(want.clone())) {
                return Err(Error::BuildFile {
                    location: spec.location.clone(),
                    message: format!(
                        "image {:?} is not built for {want} (it is built for {})",
                        spec.name,
                        list(&platforms)
                    ),
                });
            }
            platforms = vec![Some(want.clone())];
            multi = false;
        }
        let mut nodes = Vec::new();
        for p in platforms {
            let base = match other {
                Some(o) => Some(base_node(&plan, o, order, spec, p.as_ref())?),
                None => None,
            };
            let label = match (&p, multi) {
                (Some(p), true) => format!("{} ({p})", spec.name),
                _ => spec.name.clone(),
            };
            let spec = match &p {
                Some(p) => spec.for_platform(p),
                None => (*spec).clone(),
            };
            plan.nodes.push(Node {
                image: i,
                platform: p,
                spec,
                base,
                label,
            });
            nodes.push(plan.nodes.len() - 1);
        }
        plan.images.push((nodes, multi));
    }
    Ok(plan)
}

/// The node of image `o` that a node of `spec` for `p` stands on.
fn base_node(
    plan: &Plan,
    o: usize,
    order: &[&ImageSpec],
    spec: &ImageSpec,
    p: Option<&Platform>,
) -> Result<usize> {
    let offered = &plan.images[o].0;
    let platform_of = |n: usize| plan.nodes[n].platform.as_ref();
    if let Some(&n) = offered.iter().find(|&&n| platform_of(n) == p) {
        return Ok(n);
    }
    // A base whose platform is known only once its own base is loaded is
    // checked then (`finish` compares the platforms).
    if let [n] = offered[..] {
        if platform_of(n).is_none() {
            return Ok(n);
        }
    }
    let offers: Vec<Option<Platform>> = offered
        .iter()
        .map(|&n| plan.nodes[n].platform.clone())
        .collect();
    Err(Error::BuildFile {
        location: spec.location.clone(),
        message: format!(
            "image {:?} is built for {}, but its base \":{}\" is built only for {}",
            spec.name,
            p.map_or("the base's platform".to_string(), |p| p.to_string()),
            order[o].name,
            list(&offers)
        ),
    })
}

fn list(platforms: &[Option<Platform>]) -> String {
    platforms
        .iter()
        .map(|p| {
            p.as_ref()
                .map_or("its base's platform".into(), |p| p.to_string())
        })
        .collect::<Vec<_>>()
        .join(", ")
}
