//! Local image locations: OCI layout directories, OCI archives and
//! docker-load tarballs, read as base images ([`read`]) and written as
//! build outputs ([`write`](mod@write)).

mod container;
mod docker_save;
pub mod read;
#[cfg(test)]
pub(crate) mod testutil;
pub mod write;
