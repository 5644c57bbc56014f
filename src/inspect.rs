//! A summary of an image on disk, for `gantry inspect`.

use std::path::Path;

use serde::Serialize;

use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct Inspection {}

pub fn inspect(path: &Path, select: Option<&str>) -> Result<Inspection> {
    let _ = (path, select);
    todo!()
}

impl std::fmt::Display for Inspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{self:?}")
    }
}
