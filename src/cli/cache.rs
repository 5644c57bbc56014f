//! The build cache flags shared by the verbs that build.

use clap::Args;

use gantry::error::Result;
use gantry::project::CacheInputs;
use gantry::reference::Reference;

#[derive(Args, Clone, Default)]
pub struct CacheArgs {
    /// Before compressing a layer the store lacks, look for it in this image
    /// or cache manifest (a registry reference by tag or digest;
    /// repeatable). A source is trusted to hold what its manifests say:
    /// name only repositories you trust.
    #[arg(long = "cache-from", value_name = "REF")]
    pub from: Vec<String>,

    /// Build cold: reuse no layer from the store or a cache source.
    #[arg(long = "no-cache")]
    pub no_cache: bool,
}

impl CacheArgs {
    pub fn inputs(&self) -> Result<CacheInputs> {
        Ok(CacheInputs {
            from: parse_refs(&self.from)?,
            no_cache: self.no_cache,
        })
    }
}

/// `--cache-to`: where to push the cache manifest of the layers built.
pub fn parse_cache_to(r: Option<&str>) -> Result<Option<Reference>> {
    r.map(Reference::parse_tagged).transpose()
}

fn parse_refs(refs: &[String]) -> Result<Vec<Reference>> {
    refs.iter().map(|r| r.parse::<Reference>()).collect()
}
