//! A view of an image's file system without extracting it: each layer's tar
//! headers are indexed once ([`LayerIndex`], kept in the store by diff_id),
//! the indexes are merged bottom to top with the OCI whiteout rules
//! ([`RootFs`]), and a single file is read back from the layer that holds it
//! by its offset in that layer's uncompressed stream.
//!
//! Indexing and reading take uncompressed tar streams; [`uncompressed`] puts
//! the decoder a layer's [`Compression`] calls for in front of its blob.

use std::io::{self, Read};

use crate::media::Compression;

mod headers;
mod index;
mod merge;

pub use index::{normalise_member, normalise_query, Entry, Kind, LayerIndex};
pub use merge::{Content, Node, RootFs};

/// The uncompressed tar stream of a layer blob compressed with
/// `compression`. A gzip blob may be several members (gantry writes one per
/// block) and a zstd blob several frames; all are read.
pub fn uncompressed<'a>(
    compression: Compression,
    blob: impl Read + 'a,
) -> io::Result<Box<dyn Read + 'a>> {
    Ok(match compression {
        Compression::None => Box::new(blob),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(blob)),
        Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(blob)?),
    })
}

#[cfg(test)]
mod tests;
