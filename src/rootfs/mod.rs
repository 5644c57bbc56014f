//! A view of an image's file system without extracting it: each layer's tar
//! headers are indexed once ([`LayerIndex`], kept in the store by diff_id),
//! the indexes are merged bottom to top with the OCI whiteout rules
//! ([`RootFs`]), and a single file is read back from the layer that holds it
//! by its offset in that layer's uncompressed stream.
//!
//! Nothing here decompresses: callers hand in uncompressed tar streams (the
//! layer's [`crate::media::Compression`] says which decoder to put in front).

mod headers;
mod index;
mod merge;

pub use index::{normalise_member, normalise_query, Entry, Kind, LayerIndex, INDEX_META};
pub use merge::{Content, Node, RootFs};

#[cfg(test)]
mod tests;
