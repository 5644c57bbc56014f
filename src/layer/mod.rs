//! Reproducible layers: a declared file set becomes a sorted list of entries
//! ([`fileset`]), written as a tar stream ([`tar`]) and compressed
//! ([`compress`]) into the store in one pass.

pub mod compress;
pub mod fileset;
pub mod tar;
