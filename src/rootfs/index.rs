//! The headers of one layer, and keeping them in the store by diff_id.

use std::io::Read;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::headers::{read_headers, RawHeader, ReadError};
use crate::digest::Digest;
use crate::error::{Error, JsonError, Result};
use crate::store::{Record, Store};

/// Bumped whenever what an index holds for the same layer changes, so that a
/// record written by another version is rebuilt rather than trusted.
const INDEX_VERSION: u32 = 1;

/// What a layer entry is. Whiteouts are kept as their own kinds, named by
/// what they hide, so that merging needs no second look at names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A regular file; its bytes are at [`Entry::offset`].
    File,
    /// A directory.
    Dir,
    /// A symbolic link; [`Entry::link`] is its target as written.
    Symlink,
    /// A hard link; [`Entry::link`] is the (normalised) path it links to.
    Hardlink,
    /// A character device.
    Char,
    /// A block device.
    Block,
    /// A named pipe.
    Fifo,
    /// A `.wh.NAME` whiteout: [`Entry::path`] is the path it removes from
    /// the layers below.
    Whiteout,
    /// A `.wh..wh..opq` marker: [`Entry::path`] is the directory whose
    /// contents in the layers below are hidden.
    Opaque,
}

/// One tar header of a layer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Relative, `/`-separated, without `./`, `.` or empty components and
    /// without a trailing `/`; the root directory is the empty path. This is
    /// the form the layer writer gives its own entries.
    pub path: String,
    /// What the entry is.
    pub kind: Kind,
    /// Permission bits (at most `0o7777`).
    pub mode: u32,
    /// Owner user id.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub uid: u64,
    /// Owner group id.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub gid: u64,
    /// Size of a regular file's contents (0 for other kinds).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub size: u64,
    /// Target of a symlink (as written) or of a hard link (normalised like
    /// `path`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// Byte offset of the entry's data in the uncompressed layer stream.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub offset: u64,
    /// The data is stored as a GNU sparse file, so it cannot be read back as
    /// one run of bytes.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sparse: bool,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// The tar headers of one layer, in stream order, with the diff_id of the
/// stream they were read from. File contents are never kept.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerIndex {
    version: u32,
    diff_id: Digest,
    entries: Vec<Entry>,
}

/// Kept in the store under `meta/layer-index/`, keyed by diff_id hex.
impl Record for LayerIndex {
    const KIND: &'static str = "layer-index";
}

impl LayerIndex {
    /// Indexes one layer from its uncompressed tar stream, read once to the
    /// end. The stream must hash to `diff_id`: an index is kept by diff_id,
    /// so one built from other bytes would answer for the wrong layer.
    pub fn build(reader: impl Read, diff_id: &Digest) -> Result<LayerIndex> {
        let layer = layer_name(diff_id);
        let mut entries = Vec::new();
        let mut problem = None;
        let digest = read_headers(reader, |raw| {
            if problem.is_some() {
                return;
            }
            match entry_of(raw) {
                Ok(Some(e)) => entries.push(e),
                Ok(None) => {}
                Err(m) => problem = Some(m),
            }
        })
        .map_err(|e| match e {
            ReadError::Io(source) => Error::Io {
                path: PathBuf::from(&layer),
                source,
            },
            ReadError::Format { at, message } => {
                Error::format(&layer, format!("tar header at byte {at}: {message}"))
            }
        })?;
        if let Some(m) = problem {
            return Err(Error::format(&layer, m));
        }
        if digest != *diff_id {
            return Err(Error::Mismatch {
                what: format!("uncompressed {layer}"),
                expected: diff_id.to_string(),
                actual: digest.to_string(),
            });
        }
        Ok(LayerIndex {
            version: INDEX_VERSION,
            diff_id: *diff_id,
            entries,
        })
    }

    /// The diff_id of the layer (the digest of its uncompressed stream).
    pub fn diff_id(&self) -> &Digest {
        &self.diff_id
    }

    /// The layer's entries in stream order; a path may appear more than once
    /// (the last one wins when the layer is applied).
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The index as canonical JSON, the form it is kept in.
    pub fn to_bytes(&self) -> Vec<u8> {
        crate::json::canonical(self)
    }

    /// Reads an index written by [`LayerIndex::to_bytes`].
    pub fn from_bytes(bytes: &[u8]) -> Result<LayerIndex> {
        let index: LayerIndex = serde_json::from_slice(bytes).map_err(|e| {
            Error::format_because("layer index", "not a layer index", JsonError::from(e))
        })?;
        if index.version != INDEX_VERSION {
            return Err(Error::format(
                "layer index",
                format!(
                    "version {} (this gantry reads version {INDEX_VERSION})",
                    index.version
                ),
            ));
        }
        Ok(index)
    }

    /// The index kept in the store for `diff_id`, if there is a usable one.
    pub fn load(store: &Store, diff_id: &Digest) -> Option<LayerIndex> {
        let index: LayerIndex = store.record(&diff_id.hex())?;
        (index.version == INDEX_VERSION && index.diff_id == *diff_id).then_some(index)
    }

    /// Keeps the index in the store under its diff_id.
    pub fn save(&self, store: &Store) -> Result<()> {
        store.put_record(&self.diff_id.hex(), self)
    }

    /// The index of `diff_id` from the store, or built from the stream
    /// `open` gives (called only then, so that a layer is fetched only when
    /// its index is not kept) and kept.
    pub fn cached(
        store: &Store,
        diff_id: &Digest,
        open: impl FnOnce() -> Result<Box<dyn Read>>,
    ) -> Result<LayerIndex> {
        if let Some(index) = LayerIndex::load(store, diff_id) {
            return Ok(index);
        }
        let index = LayerIndex::build(open()?, diff_id)?;
        index.save(store)?;
        Ok(index)
    }
}

/// How errors name a layer.
pub(super) fn layer_name(diff_id: &Digest) -> String {
    format!("layer {diff_id}")
}

const WHITEOUT: &str = ".wh.";
const OPAQUE: &str = ".wh..wh..opq";

/// The entry a header stands for; `None` for headers that are not part of
/// the file system (aufs bookkeeping, unknown types).
fn entry_of(raw: RawHeader) -> Result<Option<Entry>, String> {
    let name = String::from_utf8_lossy(&raw.name);
    let path = normalise_member(&name)
        .ok_or_else(|| format!("member {name:?} points outside the layer's root"))?;
    let (parent, last) = match path.rsplit_once('/') {
        Some((p, l)) => (p, l),
        None => ("", path.as_str()),
    };
    let mut kind = match raw.typeflag {
        b'0' | 0 | b'7' | b'S' => Kind::File,
        b'1' => Kind::Hardlink,
        b'2' => Kind::Symlink,
        b'3' => Kind::Char,
        b'4' => Kind::Block,
        b'5' => Kind::Dir,
        b'6' => Kind::Fifo,
        // Vendor types (GNU volume labels, Solaris ACLs) carry no file.
        _ => return Ok(None),
    };
    let mut path = path.clone();
    if last == OPAQUE {
        kind = Kind::Opaque;
        path = parent.to_string();
    } else if let Some(hidden) = last.strip_prefix(WHITEOUT) {
        // `.wh..wh.*` names are aufs bookkeeping (hard-link pool, its
        // metadata), not whiteouts of files named `.wh.*`.
        if hidden.starts_with(WHITEOUT) || hidden.is_empty() {
            return Ok(None);
        }
        kind = Kind::Whiteout;
        path = join(parent, hidden);
    }
    let link = match kind {
        Kind::Symlink => Some(String::from_utf8_lossy(&raw.link).into_owned()),
        Kind::Hardlink => {
            let target = String::from_utf8_lossy(&raw.link);
            Some(
                normalise_member(&target)
                    .ok_or_else(|| format!("hard link {path:?} points outside the layer's root"))?,
            )
        }
        _ => None,
    };
    let has_data = kind == Kind::File;
    Ok(Some(Entry {
        path,
        kind,
        mode: raw.mode,
        uid: raw.uid,
        gid: raw.gid,
        size: if has_data { raw.size } else { 0 },
        link,
        offset: if has_data { raw.offset } else { 0 },
        sparse: has_data && raw.sparse,
    }))
}

/// A member name in the form entries are kept in, or `None` when `..`
/// climbs above the root (which extraction refuses).
pub fn normalise_member(name: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            p => parts.push(p),
        }
    }
    Some(parts.join("/"))
}

/// A path asked about, in the form entries are kept in: leading `/`, `./`
/// and trailing `/` do not matter, and `..` stops at the root.
pub fn normalise_query(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    parts.join("/")
}

pub(super) fn join(parent: &str, name: &str) -> String {
    if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}/{name}")
    }
}
