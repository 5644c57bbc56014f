//! The image under test: its config, and its file system as the merged
//! layer indexes, with file bytes read back from the layer streams.

use std::io::{self, Read};

use crate::config::ContainerConfig;
use crate::digest::Digest;
use crate::error::{Error, Result};
use crate::image::Image;
use crate::layout::read::BlobReader;
use crate::media::Compression;
use crate::rootfs::{self, Content, Kind, LayerIndex, Node, RootFs};
use crate::store::Store;

/// Files bigger than this are not read into memory for a content test.
pub const MAX_READ: u64 = 64 << 20;

/// Where an image's layer blobs are read from.
#[derive(Clone, Copy)]
pub enum Blobs<'a> {
    /// The store (images built or imported).
    Store(&'a Store),
    /// An opened layout, archive or tarball; the store, when given, keeps
    /// the layer indexes so that the next run reads no layer for them.
    Local(&'a dyn BlobReader, Option<&'a Store>),
}

impl<'a> Blobs<'a> {
    fn open(&self, digest: &Digest) -> Result<Box<dyn Read + 'a>> {
        match *self {
            Blobs::Store(s) => Ok(Box::new(s.open_blob(digest)?)),
            Blobs::Local(b, _) => b.open_blob(digest),
        }
    }

    fn store(&self) -> Option<&'a Store> {
        match *self {
            Blobs::Store(s) | Blobs::Local(_, Some(s)) => Some(s),
            Blobs::Local(_, None) => None,
        }
    }
}

/// An image as tests see it.
pub struct ImageUnderTest<'a> {
    /// How reports name the image.
    pub name: String,
    /// The image's config (`config` of the config blob; empty when absent).
    pub config: ContainerConfig,
    /// The merged file system.
    pub fs: RootFs,
    layers: Vec<(Compression, Digest)>,
    blobs: Blobs<'a>,
}

impl<'a> ImageUnderTest<'a> {
    /// Indexes `image`'s layers (from the store's records when kept there)
    /// and merges them.
    pub fn new(name: &str, image: &Image, blobs: Blobs<'a>) -> Result<ImageUnderTest<'a>> {
        let mut layers = Vec::new();
        for l in &image.layers {
            let compression = Compression::of_layer_media_type(&l.media_type).ok_or_else(|| {
                Error::format(
                    name,
                    format!(
                        "layer {} has media type {:?}, which is not a layer gantry reads",
                        l.digest, l.media_type
                    ),
                )
            })?;
            layers.push((compression, l.digest, l.diff_id));
        }
        let mut indexes: Vec<Option<LayerIndex>> = layers
            .iter()
            .map(|(_, _, diff_id)| blobs.store().and_then(|s| LayerIndex::load(s, diff_id)))
            .collect();
        let missing: Vec<usize> = (0..layers.len())
            .filter(|i| indexes[*i].is_none())
            .collect();
        let built = match blobs {
            // Indexing is decompressing and hashing: store layers are
            // indexed in parallel, each thread opening its own blob.
            Blobs::Store(store) if missing.len() > 1 => {
                index_in_parallel(store, &layers, &missing)?
            }
            _ => missing
                .iter()
                .map(|i| index_layer(&blobs, layers[*i]))
                .collect::<Result<Vec<_>>>()?,
        };
        for (i, index) in missing.into_iter().zip(built) {
            if let Some(s) = blobs.store() {
                index.save(s)?;
            }
            indexes[i] = Some(index);
        }
        let indexes: Vec<LayerIndex> = indexes.into_iter().flatten().collect();
        Ok(ImageUnderTest {
            name: name.to_string(),
            config: image.config.config.clone().unwrap_or_default(),
            fs: RootFs::new(&indexes),
            layers: layers.iter().map(|(c, d, _)| (*c, *d)).collect(),
            blobs,
        })
    }

    /// The environment as `KEY=value` pairs split at the first `=`; a later
    /// entry wins, as in a container.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = Vec::new();
        for e in self.config.env.iter().flatten() {
            let (k, v) = e.split_once('=').unwrap_or((e, ""));
            out.retain(|(key, _)| key != k);
            out.push((k.to_string(), v.to_string()));
        }
        out
    }

    /// The value of `key` in the image's environment.
    pub fn env_var(&self, key: &str) -> Option<String> {
        self.env()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// The entry at `path` as `lstat` sees it: see [`lstat`].
    pub fn lstat(&self, path: &str) -> Option<&Node> {
        lstat(&self.fs, path)
    }

    /// The bytes of the file `path` leads to (symlinks followed); `Ok(None)`
    /// when nothing is there, an error string for what cannot be read.
    pub fn read(&self, path: &str) -> Result<std::result::Result<Vec<u8>, String>> {
        let Some(node) = self.fs.resolve(path) else {
            return Ok(Err(format!("{path}: no such file or directory")));
        };
        let Some(content) = node.content() else {
            return Ok(Err(format!("{path} is not a regular file")));
        };
        if node.entry.sparse {
            return Ok(Err(format!("{path} is a sparse file, which is not read")));
        }
        if content.size > MAX_READ {
            return Ok(Err(format!(
                "{path} is {} bytes, over the {MAX_READ} bytes read for a test",
                content.size
            )));
        }
        self.read_content(&content).map(Ok)
    }

    fn read_content(&self, c: &Content) -> Result<Vec<u8>> {
        let (compression, digest) = self.layers[c.layer];
        let what = digest.to_string();
        let blob = self.blobs.open(&digest)?;
        let mut stream =
            rootfs::uncompressed(compression, blob).map_err(|e| Error::io(&what, e))?;
        let skipped = io::copy(&mut (&mut stream).take(c.offset), &mut io::sink())
            .map_err(|e| Error::io(&what, e))?;
        let mut out = Vec::with_capacity(c.size as usize);
        (&mut stream)
            .take(c.size)
            .read_to_end(&mut out)
            .map_err(|e| Error::io(&what, e))?;
        if skipped != c.offset || out.len() as u64 != c.size {
            return Err(Error::format(
                what,
                "layer ended before a file its index names",
            ));
        }
        Ok(out)
    }
}

type LayerRef = (Compression, Digest, Digest);

fn index_layer(blobs: &Blobs<'_>, (compression, digest, diff_id): LayerRef) -> Result<LayerIndex> {
    let stream = rootfs::uncompressed(compression, blobs.open(&digest)?)
        .map_err(|e| Error::io(digest.to_string(), e))?;
    LayerIndex::build(stream, &diff_id)
}

/// The indexes of `layers[missing]`, in that order, built by as many
/// threads as there are cores.
fn index_in_parallel(
    store: &Store,
    layers: &[LayerRef],
    missing: &[usize],
) -> Result<Vec<LayerIndex>> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut out = Vec::with_capacity(missing.len());
    for chunk in missing.chunks(threads.max(1)) {
        let results: Vec<Result<LayerIndex>> = std::thread::scope(|scope| {
            let handles: Vec<_> = chunk
                .iter()
                .map(|i| {
                    let layer = layers[*i];
                    scope.spawn(move || index_layer(&Blobs::Store(store), layer))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a layer indexing thread panicked"))
                .collect()
        });
        for r in results {
            out.push(r?);
        }
    }
    Ok(out)
}

fn join(dir: &str, base: &str) -> String {
    if dir.is_empty() {
        base.to_string()
    } else {
        format!("{dir}/{base}")
    }
}

/// The entry at `path` as `lstat` sees it in a container: the last
/// component is not followed when it is a symlink, but symlinks among the
/// parents are, within the image.
pub fn lstat<'f>(fs: &'f RootFs, path: &str) -> Option<&'f Node> {
    let norm = rootfs::normalise_query(path);
    match norm.rsplit_once('/') {
        None => fs.lookup(&norm),
        Some((parent, base)) => {
            let dir = fs.resolve(parent)?;
            fs.lookup(&join(&dir.entry.path, base))
        }
    }
}

/// What `stat` says of a node: a hard link is the file it links to.
pub fn stat(node: &Node) -> (Kind, u32, u64, u64) {
    let e = &node.entry;
    match (e.kind, node.content()) {
        (Kind::Hardlink, Some(c)) => (Kind::File, c.mode, c.uid, c.gid),
        _ => (e.kind, e.mode, e.uid, e.gid),
    }
}

/// How Go's `FileMode.String` shows an entry of `kind` and `mode`: type
/// letters, or `-`, then the nine permission places.
pub fn mode_string(kind: Kind, mode: u32) -> String {
    let mut s = String::new();
    // Go's letters come in the order of its mode bits: d L D p u g c t.
    match kind {
        Kind::Dir => s.push('d'),
        Kind::Symlink => s.push('L'),
        Kind::Block | Kind::Char => s.push('D'),
        Kind::Fifo => s.push('p'),
        _ => {}
    }
    if mode & 0o4000 != 0 {
        s.push('u');
    }
    if mode & 0o2000 != 0 {
        s.push('g');
    }
    if kind == Kind::Char {
        s.push('c');
    }
    if mode & 0o1000 != 0 {
        s.push('t');
    }
    if s.is_empty() {
        s.push('-');
    }
    for (i, c) in "rwxrwxrwx".chars().enumerate() {
        s.push(if mode & (1 << (8 - i)) != 0 { c } else { '-' });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer() -> LayerIndex {
        let mut b = tar::Builder::new(Vec::new());
        let mut add =
            |kind: tar::EntryType, path: &str, mode: u32, uid: u64, link: Option<&str>| {
                let mut h = tar::Header::new_gnu();
                h.set_entry_type(kind);
                h.set_mode(mode);
                h.set_uid(uid);
                h.set_gid(uid);
                h.set_mtime(0);
                let data: &[u8] = if kind == tar::EntryType::Regular {
                    b"x\n"
                } else {
                    b""
                };
                h.set_size(data.len() as u64);
                match link {
                    Some(t) => b.append_link(&mut h, path, t).unwrap(),
                    None => b.append_data(&mut h, path, data).unwrap(),
                }
            };
        add(tar::EntryType::Directory, "etc/", 0o755, 0, None);
        add(tar::EntryType::Regular, "etc/real", 0o640, 7, None);
        add(tar::EntryType::Link, "etc/hard", 0o777, 0, Some("etc/real"));
        add(tar::EntryType::Symlink, "conf", 0o777, 0, Some("/etc"));
        add(tar::EntryType::Symlink, "etc/soft", 0o777, 0, Some("real"));
        let bytes = b.into_inner().unwrap();
        LayerIndex::build(std::io::Cursor::new(&bytes), &Digest::of(&bytes)).unwrap()
    }

    #[test]
    fn lstat_follows_parent_links_but_not_the_last() {
        let index = layer();
        let fs = RootFs::new([&index]);
        let soft = lstat(&fs, "/conf/soft").unwrap();
        assert_eq!(soft.entry.kind, Kind::Symlink);
        assert_eq!(mode_string(stat(soft).0, stat(soft).1), "Lrwxrwxrwx");
        assert_eq!(lstat(&fs, "/conf").unwrap().entry.kind, Kind::Symlink);
        assert!(lstat(&fs, "/conf/missing").is_none());
    }

    #[test]
    fn a_hard_link_stats_as_the_file_it_links_to() {
        let index = layer();
        let fs = RootFs::new([&index]);
        let (kind, mode, uid, gid) = stat(lstat(&fs, "/etc/hard").unwrap());
        assert_eq!((kind, mode, uid, gid), (Kind::File, 0o640, 7, 7));
    }

    #[test]
    fn modes_print_as_go_prints_them() {
        assert_eq!(mode_string(Kind::File, 0o755), "-rwxr-xr-x");
        assert_eq!(mode_string(Kind::Dir, 0o755), "drwxr-xr-x");
        assert_eq!(mode_string(Kind::Dir, 0o1777), "dtrwxrwxrwx");
        assert_eq!(mode_string(Kind::File, 0o4755), "urwxr-xr-x");
        assert_eq!(mode_string(Kind::Symlink, 0o777), "Lrwxrwxrwx");
        assert_eq!(mode_string(Kind::Char, 0o666), "Dcrw-rw-rw-");
        assert_eq!(mode_string(Kind::Fifo, 0o644), "prw-r--r--");
    }
}
