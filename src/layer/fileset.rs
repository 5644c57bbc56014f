//! Resolving a layer's declarations into the exact, sorted list of tar
//! entries: directories walked, excludes applied, modes normalised, every
//! parent directory made explicit, conflicts refused.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::buildfile::{EntrySpec, EntrySpecKind, LayerSpec, Owner};
use crate::error::{Error, Result};
use crate::layer::scan::Kind;
use crate::layer::tar::{EntryHeader, EntryKind};
use rustix::fs::FileType;

/// One entry of a layer, with where its content comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The tar header to write: path, kind, mode, owner, mtime.
    pub header: EntryHeader,
    /// The file to read, for regular files.
    pub source: Option<PathBuf>,
    /// Identity of the source file (device, inode, size, mtime, ctime), so
    /// incremental builds can tell an unchanged file without reading it.
    pub stat: Option<FileStat>,
}

/// What `stat` says of a source file, enough to tell it changed without
/// reading it: any write moves `ctime` and a replaced file has another
/// inode. It is part of a layer's cache key, so an unchanged tree reuses
/// the layer unread, and it is compared again after the file is read, so a
/// file that changed meanwhile is read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileStat {
    /// The device holding the file.
    pub dev: u64,
    /// Its inode number on that device.
    pub ino: u64,
    /// Its length in bytes, which the tar entry is written with.
    pub size: u64,
    /// Last content change, nanoseconds since the Unix epoch.
    pub mtime_ns: i128,
    /// Last content or metadata change, nanoseconds since the Unix epoch;
    /// unlike `mtime`, no tool can set it back.
    pub ctime_ns: i128,
}

/// Mode for regular files whose declaration gives none: only the executable
/// bit of the source survives, so umask and checkout modes never matter.
pub const FILE_MODE: u32 = 0o644;
/// Mode for regular files whose declaration gives none and whose source
/// has any executable bit.
pub const EXEC_MODE: u32 = 0o755;
/// Mode for directories whose declaration gives none, and for the parent
/// directories added for entries below them.
pub const DIR_MODE: u32 = 0o755;
/// Mode of every symlink, as Linux reports them; a symlink's own mode is
/// never used for access.
pub const SYMLINK_MODE: u32 = 0o777;

#[derive(Debug)]
struct Slot<'a> {
    entry: Entry,
    /// The declaration it comes from (for a parent directory made up for
    /// it, the first declaration below it).
    location: &'a str,
}

/// Resolves `layer` into entries sorted by path, parents first.
pub fn resolve(image: &str, layer: &LayerSpec, mtime: u64) -> Result<Vec<Entry>> {
    Ok(resolve_marked(image, layer, mtime)?.entries)
}

/// A layer's entries, and which of them are parents no declaration names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// Sorted by path, parents first, as [`resolve`] gives them.
    pub entries: Vec<Entry>,
    /// One flag per entry: a directory made only because something is
    /// declared below it (root-owned, [`DIR_MODE`]).
    pub implied: Vec<bool>,
}

impl Resolved {
    /// Whether any entry is an implied parent.
    pub fn has_implied(&self) -> bool {
        self.implied.iter().any(|i| *i)
    }

    /// The entries with each implied parent that the image below already
    /// has as a directory given that directory's owner and mode, as
    /// `base_dir` reports them (`(mode, uid, gid)`). Leaving the entry out
    /// would not do: Docker and containerd create a parent a layer lacks
    /// root-owned 0755 in that layer's own directory, which then hides the
    /// base's.
    pub fn over_base(&self, base_dir: impl Fn(&str) -> Option<(u32, u64, u64)>) -> Vec<Entry> {
        self.entries
            .iter()
            .zip(&self.implied)
            .map(|(e, implied)| {
                let mut e = e.clone();
                if let Some((mode, uid, gid)) = implied.then(|| base_dir(&e.header.path)).flatten()
                {
                    e.header.mode = mode;
                    e.header.uid = uid;
                    e.header.gid = gid;
                }
                e
            })
            .collect()
    }
}

/// [`resolve`], saying which entries are implied parents.
pub fn resolve_marked(image: &str, layer: &LayerSpec, mtime: u64) -> Result<Resolved> {
    let mut set = Resolver {
        image,
        layer: &layer.name,
        mtime,
        slots: Vec::new(),
    };
    for spec in &layer.entries {
        set.declare(spec)?;
    }
    set.finish()
}

struct Resolver<'a> {
    image: &'a str,
    layer: &'a str,
    mtime: u64,
    /// In declaration order until [`Resolver::finish`] sorts them.
    slots: Vec<Slot<'a>>,
}

impl<'a> Resolver<'a> {
    fn err(&self, location: &str, message: impl std::fmt::Display) -> Error {
        Error::Layer {
            image: self.image.to_string(),
            layer: self.layer.to_string(),
            message: format!("{location}: {message}"),
            cause: None,
        }
    }

    fn err_because(
        &self,
        location: &str,
        message: impl std::fmt::Display,
        cause: std::io::Error,
    ) -> Error {
        Error::Layer {
            image: self.image.to_string(),
            layer: self.layer.to_string(),
            message: format!("{location}: {message}"),
            cause: Some(cause.into()),
        }
    }

    fn header(&self, path: String, kind: EntryKind, mode: u32, owner: &Owner) -> EntryHeader {
        EntryHeader {
            path,
            kind,
            mode,
            uid: owner.uid,
            gid: owner.gid,
            uname: owner.uname.clone(),
            gname: owner.gname.clone(),
            mtime: self.mtime,
        }
    }

    fn declare(&mut self, spec: &'a EntrySpec) -> Result<()> {
        match &spec.kind {
            EntrySpecKind::Dir { path, mode } => {
                let h = self.header(
                    path.clone(),
                    EntryKind::Dir,
                    mode.unwrap_or(DIR_MODE),
                    &spec.owner,
                );
                self.insert(h, None, None, &spec.location);
                Ok(())
            }
            EntrySpecKind::Symlink { path, target } => {
                let h = self.header(
                    path.clone(),
                    EntryKind::Symlink {
                        target: target.clone(),
                    },
                    SYMLINK_MODE,
                    &spec.owner,
                );
                self.insert(h, None, None, &spec.location);
                Ok(())
            }
            EntrySpecKind::Copy {
                src_text,
                src,
                dst,
                dst_is_dir,
                mode,
                dir_mode,
                exclude,
            } => {
                // A top-level `src` that is a symlink is followed, as
                // `COPY` does; links inside a directory tree are kept.
                let meta = fs::metadata(src).map_err(|e| {
                    let what = format!("src {src_text:?} ({})", src.display());
                    if e.kind() == std::io::ErrorKind::NotFound {
                        self.err(&spec.location, format!("{what} does not exist"))
                    } else {
                        self.err_because(&spec.location, format!("{what} cannot be read"), e)
                    }
                })?;
                if meta.is_dir() {
                    if !dst.is_empty() {
                        let h = self.header(
                            dst.clone(),
                            EntryKind::Dir,
                            dir_mode.unwrap_or(DIR_MODE),
                            &spec.owner,
                        );
                        self.insert(h, None, None, &spec.location);
                    }
                    self.walk(spec, src, dst, *mode, *dir_mode, exclude.as_ref())
                } else {
                    let st_mode = std::os::unix::fs::MetadataExt::mode(&meta);
                    check_file_type(st_mode).map_err(|m| {
                        self.err(&spec.location, format!("src {}: {m}", src.display()))
                    })?;
                    let path = if *dst_is_dir {
                        let base = src.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
                            self.err(&spec.location, "src has no UTF-8 file name")
                        })?;
                        join(dst, base)
                    } else {
                        dst.clone()
                    };
                    let source = (src.clone(), st_mode, file_stat(&meta));
                    self.add_file(path, source, *mode, &spec.owner, &spec.location);
                    Ok(())
                }
            }
        }
    }

    fn walk(
        &mut self,
        spec: &'a EntrySpec,
        root: &Path,
        dst: &str,
        mode: Option<u32>,
        dir_mode: Option<u32>,
        exclude: Option<&globset::GlobSet>,
    ) -> Result<()> {
        let items = super::scan::scan(root, exclude)
            .map_err(|(p, e)| self.err_because(&spec.location, p.display(), e))?;
        self.slots.reserve(items.len());
        for item in items {
            let rel_str = item.rel().to_str().ok_or_else(|| {
                self.err(
                    &spec.location,
                    format!("{}: file name is not valid UTF-8", item.path.display()),
                )
            })?;
            let path = join(dst, rel_str);
            match item.kind {
                Kind::Dir => {
                    let h = self.header(
                        path,
                        EntryKind::Dir,
                        dir_mode.unwrap_or(DIR_MODE),
                        &spec.owner,
                    );
                    self.insert(h, None, None, &spec.location);
                }
                Kind::Symlink { target } => {
                    let target = target.into_os_string().into_string().map_err(|_| {
                        self.err(
                            &spec.location,
                            format!("{}: symlink target is not valid UTF-8", item.path.display()),
                        )
                    })?;
                    let h = self.header(
                        path,
                        EntryKind::Symlink { target },
                        SYMLINK_MODE,
                        &spec.owner,
                    );
                    self.insert(h, None, None, &spec.location);
                }
                Kind::Other {
                    mode: st_mode,
                    stat,
                } => {
                    check_file_type(st_mode).map_err(|m| {
                        self.err(&spec.location, format!("{}: {m}", item.path.display()))
                    })?;
                    let source = (item.path, st_mode, stat);
                    self.add_file(path, source, mode, &spec.owner, &spec.location);
                }
            }
        }
        Ok(())
    }

    /// `source` is the file, its `st_mode` and its identity.
    fn add_file(
        &mut self,
        path: String,
        (src, st_mode, stat): (PathBuf, u32, FileStat),
        mode: Option<u32>,
        owner: &Owner,
        location: &'a str,
    ) {
        let mode = mode.unwrap_or(if st_mode & 0o111 != 0 {
            EXEC_MODE
        } else {
            FILE_MODE
        });
        let h = self.header(path, EntryKind::File { size: stat.size }, mode, owner);
        self.insert(h, Some(src), Some(stat), location);
    }

    /// Conflicts are found by [`Resolver::finish`], once everything is in.
    fn insert(
        &mut self,
        header: EntryHeader,
        source: Option<PathBuf>,
        stat: Option<FileStat>,
        location: &'a str,
    ) {
        self.slots.push(Slot {
            entry: Entry {
                header,
                source,
                stat,
            },
            location,
        });
    }

    /// Sorts by path, merges identical declarations of one path, refuses
    /// different ones, and adds the missing parents.
    fn finish(mut self) -> Result<Resolved> {
        // A stable sort keeps the first declaration of a path first. A
        // directory walk yields its entries in order already, and the sort
        // finds such runs in linear time.
        self.sort();
        let mut conflict = None;
        // `dedup_by` hands over (later, earlier) and drops the later one
        // when told the two are the same path.
        self.slots.dedup_by(|later, first| {
            if later.entry.header.path != first.entry.header.path {
                return false;
            }
            if conflict.is_none() && !same_content(&first.entry, &later.entry) {
                conflict = Some((
                    later.entry.header.path.clone(),
                    later.location,
                    first.location,
                ));
            }
            true
        });
        if let Some((path, location, first)) = conflict {
            return Err(self.err(
                location,
                format!("/{path} is declared twice with different content (first at {first})"),
            ));
        }
        let added = self.add_parents()?;
        let implied = self
            .slots
            .iter()
            .map(|s| added.contains(&s.entry.header.path))
            .collect();
        Ok(Resolved {
            entries: self.slots.into_iter().map(|s| s.entry).collect(),
            implied,
        })
    }

    fn sort(&mut self) {
        self.slots
            .sort_by(|a, b| a.entry.header.path.cmp(&b.entry.header.path));
    }

    /// Emits every missing parent directory as 0755 root-owned, and refuses
    /// a path whose parent was declared as something other than a directory.
    /// The slots are sorted and unique. Returns the paths added.
    fn add_parents(&mut self) -> Result<std::collections::BTreeSet<String>> {
        let slots = &self.slots;
        // The ancestors found for the path before: in path order, most
        // entries share their parent with the one before or sit in a
        // directory just above it, so most lookups end here.
        let mut chain: Vec<(&str, usize)> = Vec::new();
        let mut find = |path: &str| {
            let i = match chain.iter().rev().find(|(p, _)| *p == path) {
                Some(&(_, i)) => i,
                None => {
                    let i = slots
                        .binary_search_by(|s| s.entry.header.path.as_str().cmp(path))
                        .ok()?;
                    chain.retain(|(p, _)| {
                        path.len() > p.len()
                            && path.starts_with(p)
                            && path.as_bytes()[p.len()] == b'/'
                    });
                    chain.push((&slots[i].entry.header.path, i));
                    i
                }
            };
            Some(&slots[i])
        };
        let mut missing: BTreeMap<String, &'a str> = BTreeMap::new();
        for slot in slots {
            let mut cur = slot.entry.header.path.as_str();
            while let Some((parent, _)) = cur.rsplit_once('/') {
                match find(parent) {
                    Some(p) if p.entry.header.kind != EntryKind::Dir => {
                        return Err(self.err(
                            slot.location,
                            format!(
                                "/{} is inside /{parent}, which is declared as a {} at {}",
                                slot.entry.header.path,
                                kind_name(&p.entry.header.kind),
                                p.location
                            ),
                        ));
                    }
                    Some(_) => break,
                    // Its own parents were looked at when it was first missed.
                    None if missing.contains_key(parent) => break,
                    None => {
                        missing.insert(parent.to_string(), slot.location);
                    }
                }
                cur = parent;
            }
        }
        let added = missing.keys().cloned().collect();
        if missing.is_empty() {
            return Ok(added);
        }
        for (path, location) in missing {
            let header = self.header(path, EntryKind::Dir, DIR_MODE, &Owner::default());
            self.slots.push(Slot {
                entry: Entry {
                    header,
                    source: None,
                    stat: None,
                },
                location,
            });
        }
        self.sort();
        Ok(added)
    }
}

fn kind_name(k: &EntryKind) -> &'static str {
    match k {
        EntryKind::File { .. } => "file",
        EntryKind::Dir => "directory",
        EntryKind::Symlink { .. } => "symlink",
    }
}

/// Two declarations of one path agree when their headers agree and, for
/// files, the bytes agree (the same source, or sources with equal content).
fn same_content(a: &Entry, b: &Entry) -> bool {
    if a.header != b.header {
        return false;
    }
    match (&a.source, &b.source) {
        (Some(x), Some(y)) => {
            x == y
                || match (fs::canonicalize(x), fs::canonicalize(y)) {
                    (Ok(cx), Ok(cy)) if cx == cy => true,
                    _ => matches!((fs::read(x), fs::read(y)), (Ok(bx), Ok(by)) if bx == by),
                }
        }
        (None, None) => true,
        _ => false,
    }
}

fn join(dst: &str, rel: &str) -> String {
    if dst.is_empty() {
        rel.to_string()
    } else {
        format!("{dst}/{rel}")
    }
}

fn check_file_type(st_mode: u32) -> std::result::Result<(), String> {
    let what = match FileType::from_raw_mode(st_mode as _) {
        FileType::RegularFile => return Ok(()),
        FileType::Socket => "a socket",
        FileType::Fifo => "a fifo",
        FileType::BlockDevice => "a block device",
        FileType::CharacterDevice => "a character device",
        _ => "not a regular file, directory or symlink",
    };
    Err(format!("is {what}, which cannot be put in a layer"))
}

/// The identity [`FileStat`] records, from a file's metadata.
pub fn file_stat(meta: &fs::Metadata) -> FileStat {
    use std::os::unix::fs::MetadataExt;
    FileStat {
        dev: meta.dev(),
        ino: meta.ino(),
        size: meta.len(),
        mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        ctime_ns: i128::from(meta.ctime()) * 1_000_000_000 + i128::from(meta.ctime_nsec()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buildfile::BuildFile;

    fn layer_of(dir: &Path, files: &str) -> LayerSpec {
        let text = format!(
            "[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n[[image.a.layer]]\nname = \"l\"\nfiles = [\n{files}\n]\n"
        );
        let bf = BuildFile::parse(&text, &dir.join("gantry.toml")).unwrap();
        bf.images["a"].layers[0].clone()
    }

    fn paths(entries: &[Entry]) -> Vec<String> {
        entries
            .iter()
            .map(|e| match &e.header.kind {
                EntryKind::Dir => format!("{}/ {:o}", e.header.path, e.header.mode),
                EntryKind::File { size } => format!("{} {:o} {size}", e.header.path, e.header.mode),
                EntryKind::Symlink { target } => format!("{} -> {target}", e.header.path),
            })
            .collect()
    }

    #[cfg(unix)]
    fn chmod(p: &Path, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
    }

    #[test]
    fn implied_parents_take_the_base_directory_owner_and_declared_dirs_win() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("f"), "x").unwrap();
        let layer = layer_of(
            d.path(),
            r#"{ src = "f", dst = "/home/olympia/app/f" },
               { dir = "/home/olympia/app", mode = "0700" }"#,
        );
        let r = resolve_marked("a", &layer, 0).unwrap();
        assert_eq!(
            paths(&r.entries),
            [
                "home/ 755",
                "home/olympia/ 755",
                "home/olympia/app/ 700",
                "home/olympia/app/f 644 1"
            ]
        );
        assert_eq!(r.implied, [true, true, false, false]);
        // The base has every directory, owned by 9500; only the implied ones
        // follow it.
        let kept = r.over_base(|p| (p != "home").then_some((0o750, 9500, 9500)));
        let owners: Vec<(u32, u64, u64)> = kept
            .iter()
            .map(|e| (e.header.mode, e.header.uid, e.header.gid))
            .collect();
        assert_eq!(
            owners,
            [
                (0o755, 0, 0),
                (0o750, 9500, 9500),
                (0o700, 0, 0),
                (0o644, 0, 0)
            ]
        );
        assert_eq!(r.over_base(|_| None), r.entries, "a base without them");
    }

    #[test]
    #[cfg(unix)]
    fn parents_come_first_and_modes_are_normalised() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir_all(d.path().join("cfg/sub")).unwrap();
        fs::write(d.path().join("cfg/a.conf"), "a").unwrap();
        fs::write(d.path().join("cfg/old.bak"), "x").unwrap();
        fs::write(d.path().join("cfg/sub/run.sh"), "#!/bin/sh").unwrap();
        chmod(&d.path().join("cfg/sub/run.sh"), 0o700);
        chmod(&d.path().join("cfg/a.conf"), 0o600);
        fs::write(d.path().join("bin"), "elf").unwrap();
        let layer = layer_of(
            d.path(),
            r#"{ src = "bin", dst = "/app/bin/worker", mode = "0755" },
               { src = "cfg/", dst = "/etc/w/", exclude = ["**/*.bak"] },
               { dir = "/var/lib/w", mode = "0700" },
               { symlink = "/app/bin/w", target = "worker" }"#,
        );
        let entries = resolve("a", &layer, 0).unwrap();
        assert_eq!(
            paths(&entries),
            [
                "app/ 755",
                "app/bin/ 755",
                "app/bin/w -> worker",
                "app/bin/worker 755 3",
                "etc/ 755",
                "etc/w/ 755",
                "etc/w/a.conf 644 1",
                "etc/w/sub/ 755",
                "etc/w/sub/run.sh 755 9",
                "var/ 755",
                "var/lib/ 755",
                "var/lib/w/ 700",
            ]
        );
    }

    #[test]
    fn missing_src_names_the_declaration() {
        let d = tempfile::tempdir().unwrap();
        let layer = layer_of(d.path(), r#"{ src = "nope", dst = "/x" }"#);
        let e = resolve("a", &layer, 0).unwrap_err().to_string();
        assert!(
            e.contains("image.a.layer[0].files[0]") && e.contains("does not exist"),
            "{e}"
        );
    }

    #[test]
    fn conflicting_duplicates_are_refused_and_identical_ones_merged() {
        let d = tempfile::tempdir().unwrap();
        fs::write(d.path().join("a"), "one").unwrap();
        fs::write(d.path().join("b"), "two").unwrap();
        fs::write(d.path().join("c"), "one").unwrap();
        let ok = layer_of(
            d.path(),
            r#"{ src = "a", dst = "/x" }, { src = "c", dst = "/x" }"#,
        );
        assert_eq!(resolve("a", &ok, 0).unwrap().len(), 1);
        let bad = layer_of(
            d.path(),
            r#"{ src = "a", dst = "/x" }, { src = "b", dst = "/x" }"#,
        );
        let e = resolve("a", &bad, 0).unwrap_err().to_string();
        assert!(e.contains("declared twice"), "{e}");
        let under_file = layer_of(d.path(), r#"{ src = "a", dst = "/x" }, { dir = "/x/y" }"#);
        let e = resolve("a", &under_file, 0).unwrap_err().to_string();
        assert!(e.contains("declared as a file"), "{e}");
    }

    #[test]
    #[cfg(unix)]
    fn fifos_are_refused() {
        let d = tempfile::tempdir().unwrap();
        fs::create_dir(d.path().join("t")).unwrap();
        let fifo = d.path().join("t/pipe");
        let status = std::process::Command::new("mkfifo").arg(&fifo).status();
        if !matches!(status, Ok(s) if s.success()) {
            eprintln!("skipping: mkfifo unavailable");
            return;
        }
        let layer = layer_of(d.path(), r#"{ src = "t", dst = "/t" }"#);
        let e = resolve("a", &layer, 0).unwrap_err().to_string();
        assert!(e.contains("a fifo"), "{e}");
    }
}
