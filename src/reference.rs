//! Image references, parsed and normalised exactly as docker does.

use std::fmt;
use std::str::FromStr;

use crate::digest::Digest;
use crate::error::Error;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// Registry host, with port if any; `docker.io` for Docker Hub.
    pub registry: String,
    /// Repository path; `library/` is added for official Docker Hub images.
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl FromStr for Reference {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let _ = s;
        todo!()
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let _ = f;
        todo!()
    }
}
