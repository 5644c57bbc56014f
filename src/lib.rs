//! gantry: a daemonless, reproducible OCI image assembler.
//!
//! Data flows source → image → sink: a base image is read from a
//! [`layout`] source (or is `scratch`), [`layer`]s are laid down from declared
//! file sets into the [`store`], the [`config`] is written, and the result
//! goes to a sink (an OCI layout, an OCI archive or a docker-load tarball).
//! The library never prints; it reports through [`progress::Reporter`].

pub mod bases;
pub mod build;
pub mod buildfile;
pub mod config;
pub mod digest;
pub mod epoch;
pub mod error;
pub mod fsutil;
pub mod image;
pub mod inspect;
pub mod jobs;
pub mod json;
pub mod layer;
pub mod layout;
pub mod lock;
pub mod manifest;
pub mod media;
pub mod platform;
pub mod progress;
pub mod push;
pub mod redact;
pub mod reference;
pub mod registry;
pub mod stamp;
pub mod store;

pub use digest::Digest;
pub use error::{Error, Result};
