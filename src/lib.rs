#![warn(missing_docs)]
//! gantry: a daemonless, reproducible OCI image assembler.
//!
//! Data flows source → image → sink: a base image is read from a registry
//! ([`bases`]) or a local [`layout`] (or is `scratch`), [`layer`]s are laid
//! down from declared file sets into the [`store`], the [`config`] and
//! manifest are written, and the result goes to a sink: an OCI layout, an
//! OCI archive or a docker-load tarball ([`layout`]), or a registry
//! ([`push`]). The library never prints; it reports through
//! [`progress::Reporter`].
//!
//! Modules, leaves first:
//!
//! - names and values: [`digest`], [`reference`](mod@reference),
//!   [`platform`], [`media`] (media types and [`media::Compression`]),
//!   [`json`], [`fsutil`], [`error`];
//! - documents: [`config`], [`manifest`], [`image`] (an image ready for any
//!   sink);
//! - local state and events: [`store`] (content-addressed blobs and records),
//!   [`progress`];
//! - looking into images: [`rootfs`] (an image's file system from its
//!   layers' tar headers, without extracting it), [`accounts`] (declared
//!   users and groups → the account files), [`sbom`] (the documents of an
//!   image's SBOM and provenance);
//! - inputs: [`buildfile`] (`gantry.toml` as plain values), [`stamp`],
//!   [`layer`] (file sets → tar → compressed blobs);
//! - the network: [`registry`] (the distribution protocol client only);
//! - sources and sinks: [`bases`], [`layout`], [`push`], [`engine`] (the
//!   local Docker Engine or podman, loaded with the layers it lacks);
//! - orchestration: [`build`], with [`lock`] (`gantry.lock` and when it is
//!   stale) and [`jobs`] (the parallel task runner); [`project`] (a build
//!   file with its lock, built), [`output`] (a build or a pulled image
//!   written to a sink) and [`push::build_and_push`], one per verb;
//!   [`inspect`] summarises an image and [`structure`] checks one against
//!   container-structure-test configs (`gantry test`).

pub mod accounts;
pub mod attest;
pub mod bases;
pub mod build;
pub mod buildfile;
pub mod cache;
pub mod config;
pub mod digest;
pub mod engine;
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
pub mod output;
pub mod platform;
pub mod progress;
pub mod project;
pub mod push;
pub mod redact;
pub mod reference;
pub mod registry;
pub mod rootfs;
pub mod sbom;
pub mod stamp;
pub mod store;
pub mod structure;

pub use digest::Digest;
pub use error::{Error, Result};
