//! Local image locations: OCI layout directories, OCI archives and
//! docker-load tarballs, read as base images ([`read`]) and written as
//! build outputs ([`write`]).

pub mod read;
pub mod write;
