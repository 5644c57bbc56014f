//! The file system an image's layers add up to.

use std::collections::BTreeMap;
use std::io::{self, Read};
use std::path::PathBuf;

use super::index::{layer_name, normalise_query, Entry, Kind, LayerIndex};
use crate::digest::Digest;
use crate::error::{Error, Result};

/// How many symlinks one path may go through, as Linux allows (`ELOOP`).
const MAX_SYMLINKS: usize = 40;

/// Where a regular file's bytes are, and the metadata of the file itself
/// (for a hard link, the file it links to).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Content {
    /// Index (bottom first) of the layer that holds the bytes.
    pub layer: usize,
    /// Byte offset of the bytes in that layer's uncompressed stream.
    pub offset: u64,
    /// Number of bytes.
    pub size: u64,
    /// Permission bits of the file.
    pub mode: u32,
    /// Owner user id of the file.
    pub uid: u64,
    /// Owner group id of the file.
    pub gid: u64,
}

/// One path of the merged file system.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// Index (bottom first) of the layer the entry comes from.
    pub layer: usize,
    /// The entry as that layer has it; its `path` is where it ended up
    /// (after parent symlinks were followed, as extraction follows them).
    pub entry: Entry,
    /// A directory no layer declares, made because a layer put something
    /// under it (extraction creates those root-owned, mode 0755).
    pub implied: bool,
    content: Option<Content>,
}

impl Node {
    /// Where the bytes of a regular file (or of the file a hard link links
    /// to) are; `None` for other kinds, sparse files and dangling links.
    pub fn content(&self) -> Option<Content> {
        self.content
    }
}

/// The merge of an image's layers, bottom to top, following the OCI layer
/// changeset rules: an entry replaces what a lower layer has at its path (a
/// directory over a directory keeps the lower contents), a non-directory
/// replaces a lower directory with everything under it, `.wh.NAME` removes
/// NAME and everything under it from the lower layers, and `.wh..wh..opq`
/// hides the lower contents of its directory. Whiteouts never hide entries
/// of their own layer.
#[derive(Debug, Clone)]
pub struct RootFs {
    layers: Vec<Digest>,
    nodes: BTreeMap<String, Node>,
}

impl RootFs {
    /// Merges `layers`, bottom first (the order of an image's diff_ids).
    pub fn new<'a>(layers: impl IntoIterator<Item = &'a LayerIndex>) -> RootFs {
        let mut fs = RootFs {
            layers: Vec::new(),
            nodes: BTreeMap::new(),
        };
        fs.nodes
            .insert(String::new(), implied_dir(String::new(), 0));
        for index in layers {
            let layer = fs.layers.len();
            fs.layers.push(*index.diff_id());
            fs.apply(layer, index);
        }
        fs
    }

    /// The diff_ids of the merged layers, bottom first; a [`Node::layer`]
    /// indexes this.
    pub fn layers(&self) -> &[Digest] {
        &self.layers
    }

    /// The entry at `path` itself (a symlink there is not followed, nor are
    /// symlinks among its parents). `/etc/passwd`, `etc/passwd` and
    /// `./etc/passwd` name the same path; `/` or the empty path is the root.
    pub fn lookup(&self, path: &str) -> Option<&Node> {
        self.nodes.get(&normalise_query(path))
    }

    /// The entry `path` leads to once every symlink on the way, the last
    /// one included, is followed within the image (absolute targets start
    /// at the image's root, `..` stops there). `None` when nothing is there
    /// or the links loop.
    pub fn resolve(&self, path: &str) -> Option<&Node> {
        let resolved = self.follow(&normalise_query(path), true)?;
        self.nodes.get(&resolved)
    }

    /// Every path of the file system, the root first, in byte order of the
    /// paths (so a directory comes before what it holds).
    pub fn iter(&self) -> impl Iterator<Item = &Node> {
        self.nodes.values()
    }

    /// Number of paths, the root included.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Never true: the root is always there.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// The bytes of the regular file `path` resolves to (symlinks followed
    /// as [`RootFs::resolve`] does, hard links to the file they link to),
    /// read from the layer that holds them. `None` when nothing is at
    /// `path`. `open_layer(i)` must give the uncompressed stream of layer
    /// `i` (an index of [`RootFs::layers`]); it is called once, and only when
    /// the file is there and at most `max_size` bytes long, so a file that
    /// is too big costs no read.
    pub fn read_file(
        &self,
        path: &str,
        max_size: u64,
        open_layer: impl FnMut(usize) -> Result<Box<dyn Read>>,
    ) -> Result<Option<Vec<u8>>> {
        let mut out = self.read_files(&[path], max_size, open_layer)?;
        Ok(out.pop().flatten())
    }

    /// [`RootFs::read_file`] for several paths at once, the answers in the
    /// order of `paths`: each layer that holds some of them is opened once
    /// and read in one pass, however many files it holds. Any path that
    /// is there but cannot be read (a directory, a file over `max_size`)
    /// fails the whole call before a layer is opened.
    pub fn read_files(
        &self,
        paths: &[&str],
        max_size: u64,
        mut open_layer: impl FnMut(usize) -> Result<Box<dyn Read>>,
    ) -> Result<Vec<Option<Vec<u8>>>> {
        let mut wanted: Vec<(Content, usize, String)> = Vec::new();
        for (i, path) in paths.iter().enumerate() {
            if let Some(node) = self.resolve(path) {
                let (content, shown) = self.readable(node, max_size)?;
                wanted.push((content, i, shown));
            }
        }
        wanted.sort_by_key(|(c, i, _)| (c.layer, c.offset, *i));
        let mut out: Vec<Option<Vec<u8>>> = vec![None; paths.len()];
        let mut k = 0;
        while k < wanted.len() {
            let layer = wanted[k].0.layer;
            let label = self.layer_label(layer);
            let io_err = |source| Error::Io {
                path: PathBuf::from(&label),
                source,
            };
            let mut stream = open_layer(layer)?;
            let mut at = 0u64;
            let mut last: Option<(u64, Vec<u8>)> = None;
            while let Some((c, i, shown)) = wanted.get(k).filter(|w| w.0.layer == layer) {
                // Hard links to one file share its bytes: read them once.
                if let Some((offset, bytes)) = &last {
                    if *offset == c.offset {
                        out[*i] = Some(bytes.clone());
                        k += 1;
                        continue;
                    }
                }
                let gap = c.offset.saturating_sub(at);
                let skipped =
                    io::copy(&mut (&mut stream).take(gap), &mut io::sink()).map_err(io_err)?;
                // Bounded by `max_size`, which the caller chose to hold.
                let mut bytes = Vec::with_capacity(usize::try_from(c.size).unwrap_or(0));
                (&mut stream)
                    .take(c.size)
                    .read_to_end(&mut bytes)
                    .map_err(io_err)?;
                if skipped != gap || bytes.len() as u64 != c.size {
                    return Err(Error::format(
                        label,
                        format!("the stream ends before the bytes of {shown}"),
                    ));
                }
                at = c.offset + c.size;
                out[*i] = Some(bytes.clone());
                last = Some((c.offset, bytes));
                k += 1;
            }
        }
        Ok(out)
    }

    /// Where the bytes `node` shows are, or why they cannot be read; with
    /// the path as messages show it.
    fn readable(&self, node: &Node, max_size: u64) -> Result<(Content, String)> {
        let shown = format!("/{}", node.entry.path);
        let Some(content) = node.content else {
            let what = match node.entry.kind {
                Kind::File if node.entry.sparse => "a sparse file, which is not read back",
                Kind::File => "a file without contents",
                Kind::Hardlink => "a hard link to nothing the image has",
                Kind::Dir => "a directory",
                _ => "not a regular file",
            };
            return Err(Error::format(
                self.layer_label(node.layer),
                format!("{shown} is {what}"),
            ));
        };
        if content.size > max_size {
            return Err(Error::format(
                self.layer_label(content.layer),
                format!(
                    "{shown} is {} bytes, over the {max_size} bytes it may be read with",
                    content.size
                ),
            ));
        }
        Ok((content, shown))
    }

    fn layer_label(&self, layer: usize) -> String {
        match self.layers.get(layer) {
            Some(d) => layer_name(d),
            None => "the image's root".to_string(),
        }
    }

    fn apply(&mut self, layer: usize, index: &LayerIndex) {
        // A hard link may name a lower file that its own layer whites out
        // (extraction links it before the whiteout comes): what the links
        // point at below is taken before any whiteout applies.
        let below: Vec<Option<Content>> = index
            .entries()
            .iter()
            .map(|e| match e.kind {
                Kind::Hardlink => self.link_content(e),
                _ => None,
            })
            .collect();
        // Whiteouts first: they hide only what the lower layers have, even
        // when they come after entries of their own layer in the stream.
        for e in index.entries() {
            match e.kind {
                Kind::Whiteout => {
                    if let Some(path) = self.place(&e.path) {
                        if !path.is_empty() {
                            self.remove_tree(&path, true);
                            // The marker itself sits in the parent.
                            self.make_parents(layer, &path);
                        }
                    }
                }
                Kind::Opaque => {
                    if let Some(path) = self.place(&e.path) {
                        self.remove_tree(&path, false);
                        // The marker sits inside: the directory is there.
                        self.make_parents(layer, &format!("{path}/"));
                    }
                }
                _ => {}
            }
        }
        for (e, below) in index.entries().iter().zip(below) {
            if !matches!(e.kind, Kind::Whiteout | Kind::Opaque) {
                self.add(layer, e, below);
            }
        }
    }

    fn link_content(&self, e: &Entry) -> Option<Content> {
        let target = self.place(e.link.as_deref()?)?;
        self.nodes.get(&target)?.content
    }

    fn add(&mut self, layer: usize, e: &Entry, below: Option<Content>) {
        let Some(path) = self.place(&e.path) else {
            return;
        };
        // The root can only ever be a directory.
        if path.is_empty() && e.kind != Kind::Dir {
            return;
        }
        self.make_parents(layer, &path);
        let content = match e.kind {
            Kind::File if !e.sparse => Some(Content {
                layer,
                offset: e.offset,
                size: e.size,
                mode: e.mode,
                uid: e.uid,
                gid: e.gid,
            }),
            Kind::Hardlink => self.link_content(e).or(below),
            _ => None,
        };
        let keeps_children = e.kind == Kind::Dir
            && self
                .nodes
                .get(&path)
                .is_some_and(|n| n.entry.kind == Kind::Dir);
        if !keeps_children {
            self.remove_tree(&path, true);
        }
        let mut entry = e.clone();
        entry.path.clone_from(&path);
        self.nodes.insert(
            path,
            Node {
                layer,
                entry,
                implied: false,
                content,
            },
        );
    }

    /// Makes every missing parent of `path` a directory, replacing parents
    /// that are not directories (extraction could not go through them).
    fn make_parents(&mut self, layer: usize, path: &str) {
        let mut end = 0;
        while let Some(i) = path[end..].find('/') {
            let parent = &path[..end + i];
            end += i + 1;
            if self
                .nodes
                .get(parent)
                .is_some_and(|n| n.entry.kind == Kind::Dir)
            {
                continue;
            }
            self.remove_tree(parent, true);
            self.nodes
                .insert(parent.to_string(), implied_dir(parent.to_string(), layer));
        }
    }

    /// Removes everything under `path`, and `path` itself when `itself`.
    fn remove_tree(&mut self, path: &str, itself: bool) {
        // Every path's parents are directories (`make_parents` sees to it),
        // so only a directory can have anything under it.
        if !self
            .nodes
            .get(path)
            .is_some_and(|n| n.entry.kind == Kind::Dir)
        {
            if itself && !path.is_empty() {
                self.nodes.remove(path);
            }
            return;
        }
        let doomed: Vec<String> = if path.is_empty() {
            self.nodes
                .keys()
                .filter(|k| !k.is_empty())
                .cloned()
                .collect()
        } else {
            let prefix = format!("{path}/");
            self.nodes
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .map(|(k, _)| k.clone())
                .collect()
        };
        for k in doomed {
            self.nodes.remove(&k);
        }
        if itself && !path.is_empty() {
            self.nodes.remove(path);
        }
    }

    /// Where an entry named `path` lands: its parents resolved through the
    /// symlinks the layers below have, its last component kept as is.
    fn place(&self, path: &str) -> Option<String> {
        self.follow(path, false)
    }

    /// Resolves `path` component by component through symlinks, as a
    /// chrooted process would; the last component only when `last`. Runs
    /// for every entry merged, so it builds one string and borrows the rest.
    fn follow<'a>(&'a self, path: &'a str, last: bool) -> Option<String> {
        // Components still to walk, the next one last.
        let mut todo: Vec<&'a str> = path.split('/').rev().filter(|p| !p.is_empty()).collect();
        let mut here = String::with_capacity(path.len());
        // Length of `here` before each of its components.
        let mut marks: Vec<usize> = Vec::new();
        let mut hops = 0;
        while let Some(part) = todo.pop() {
            match part {
                "." => continue,
                ".." => {
                    if let Some(m) = marks.pop() {
                        here.truncate(m);
                    }
                    continue;
                }
                _ => {}
            }
            let mark = here.len();
            if !here.is_empty() {
                here.push('/');
            }
            here.push_str(part);
            if !last && todo.is_empty() {
                marks.push(mark);
                continue;
            }
            let link = self
                .nodes
                .get(&here)
                .filter(|n| n.entry.kind == Kind::Symlink)
                .and_then(|n| n.entry.link.as_deref());
            let Some(target) = link else {
                marks.push(mark);
                continue;
            };
            here.truncate(mark);
            hops += 1;
            if hops > MAX_SYMLINKS {
                return None;
            }
            if target.starts_with('/') {
                here.clear();
                marks.clear();
            }
            todo.extend(target.split('/').rev().filter(|p| !p.is_empty()));
        }
        Some(here)
    }
}

fn implied_dir(path: String, layer: usize) -> Node {
    Node {
        layer,
        entry: Entry {
            path,
            kind: Kind::Dir,
            mode: 0o755,
            uid: 0,
            gid: 0,
            size: 0,
            link: None,
            offset: 0,
            sparse: false,
        },
        implied: true,
        content: None,
    }
}
