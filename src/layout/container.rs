//! Uniform access to the files of an image location, whether it is a
//! directory or a tar archive. A tar is indexed once (member name → data
//! offset and size) and members are then read by seeking, so a multi-gigabyte
//! archive is never unpacked or held in memory.
//!
//! Member names are only ever looked up, never used to create files, but
//! they still go through [`clean`]: a name that climbs out of the archive
//! (`../x`, `/etc/passwd`) is not indexed and cannot be asked for, so a
//! manifest cannot point a reader at a file outside the location.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};
use crate::media::Compression;

/// The largest JSON document (index, manifest, config) read into memory.
/// Real configs with long histories stay well under a megabyte; the limit
/// only stops a hostile archive from making the reader allocate without
/// bound.
pub(crate) const MAX_JSON: u64 = 32 << 20;

/// Symlink hops followed before giving up; `docker save` links duplicate
/// layers once, so anything deeper is a loop or a trick.
const MAX_LINK_HOPS: usize = 16;

pub(crate) enum Container {
    Dir(PathBuf),
    Tar(TarIndex),
}

pub(crate) struct TarIndex {
    path: PathBuf,
    entries: HashMap<String, TarEntry>,
}

#[derive(Debug, Clone)]
enum TarEntry {
    File {
        offset: u64,
        size: u64,
    },
    /// A symlink, target relative to the link's directory.
    Symlink(String),
    /// A hard link, target relative to the archive root.
    Hardlink(String),
}

impl Container {
    pub fn open(path: &Path) -> Result<Container> {
        let meta = fs::metadata(path).at(path)?;
        if meta.is_dir() {
            return Ok(Container::Dir(path.to_path_buf()));
        }
        if !meta.is_file() {
            return Err(Error::format(
                path.display().to_string(),
                "not a directory or a regular file (archives are read with random access, \
                 so pipes and devices cannot be used)",
            ));
        }
        let mut file = File::open(path).at(path)?;
        let mut magic = [0u8; 6];
        let n = crate::fsutil::read_up_to(&mut file, &mut magic).at(path)?;
        let kind = match compression_of(&magic[..n]) {
            Ok(Compression::None) => None,
            Ok(c) => Some(c.name()),
            Err(other) => Some(other),
        };
        if let Some(kind) = kind {
            return Err(Error::format(
                path.display().to_string(),
                format!(
                    "is a {kind}-compressed file; image archives are read uncompressed \
                     (decompress it first)"
                ),
            ));
        }
        file.seek(SeekFrom::Start(0)).at(path)?;
        Ok(Container::Tar(TarIndex::build(path, file, meta.len())?))
    }

    pub fn path(&self) -> &Path {
        match self {
            Container::Dir(p) => p,
            Container::Tar(t) => &t.path,
        }
    }

    /// How error messages name the location.
    pub fn source_name(&self) -> String {
        self.path().display().to_string()
    }

    /// How error messages name one file of the location.
    pub fn member_name(&self, name: &str) -> String {
        match self {
            Container::Dir(p) => p.join(name).display().to_string(),
            Container::Tar(t) => format!("{} (member {name})", t.path.display()),
        }
    }

    pub fn has(&self, name: &str) -> bool {
        match self {
            Container::Dir(root) => clean(name).is_some_and(|n| root.join(n).is_file()),
            Container::Tar(t) => t.resolve(name).is_ok(),
        }
    }

    /// Opens one file; returns the reader and the file's size.
    pub fn open_member(&self, name: &str) -> Result<(Box<dyn Read>, u64)> {
        match self {
            Container::Dir(root) => {
                let rel = clean(name).ok_or_else(|| self.escapes(name))?;
                let path = root.join(rel);
                let file = File::open(&path).at(&path)?;
                let size = file.metadata().at(&path)?.len();
                Ok((Box::new(file), size))
            }
            Container::Tar(t) => {
                let (offset, size) = t
                    .resolve(name)
                    .map_err(|e| self.tar_lookup_error(name, e))?;
                let mut file = File::open(&t.path).at(&t.path)?;
                file.seek(SeekFrom::Start(offset)).at(&t.path)?;
                Ok((Box::new(file.take(size)), size))
            }
        }
    }

    /// The names of the regular files (or links to them) directly in the
    /// directory `dir` (`blobs/sha256`), with that prefix, sorted.
    pub fn files_in(&self, dir: &str) -> Result<Vec<String>> {
        let prefix = format!("{}/", dir.trim_end_matches('/'));
        let mut out: Vec<String> = match self {
            Container::Dir(root) => {
                let Some(rel) = clean(dir) else {
                    return Err(self.escapes(dir));
                };
                let path = root.join(rel);
                match fs::read_dir(&path) {
                    Err(e) if e.kind() == io::ErrorKind::NotFound => Vec::new(),
                    Err(e) => return Err(Error::io(&path, e)),
                    Ok(list) => list
                        .filter_map(|e| e.ok())
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
                        .filter_map(|e| e.file_name().to_str().map(|n| format!("{prefix}{n}")))
                        .collect(),
                }
            }
            Container::Tar(t) => t
                .entries
                .keys()
                .filter(|k| k.strip_prefix(&prefix).is_some_and(|n| !n.contains('/')))
                .filter(|k| t.resolve(k).is_ok())
                .cloned()
                .collect(),
        };
        out.sort();
        Ok(out)
    }

    /// Size of one file, without opening it.
    pub fn size(&self, name: &str) -> Result<u64> {
        match self {
            Container::Dir(root) => {
                let rel = clean(name).ok_or_else(|| self.escapes(name))?;
                let path = root.join(rel);
                Ok(fs::metadata(&path).at(&path)?.len())
            }
            Container::Tar(t) => t
                .resolve(name)
                .map(|(_, size)| size)
                .map_err(|e| self.tar_lookup_error(name, e)),
        }
    }

    /// Reads a small file (a JSON document) whole.
    pub fn read_small(&self, name: &str) -> Result<Vec<u8>> {
        let (reader, size) = self.open_member(name)?;
        if size > MAX_JSON {
            return Err(Error::format(
                self.member_name(name),
                format!("is {size} bytes, more than the {MAX_JSON} allowed for a JSON document"),
            ));
        }
        let mut out = Vec::with_capacity(size as usize);
        reader
            .take(MAX_JSON + 1)
            .read_to_end(&mut out)
            .map_err(|e| Error::io(self.member_name(name), e))?;
        Ok(out)
    }

    /// Reads the first bytes of a file, for sniffing its compression.
    pub fn read_head(&self, name: &str, buf: &mut [u8]) -> Result<usize> {
        let (mut reader, _) = self.open_member(name)?;
        crate::fsutil::read_up_to(&mut reader, buf)
            .map_err(|e| Error::io(self.member_name(name), e))
    }

    fn escapes(&self, name: &str) -> Error {
        Error::format(
            self.source_name(),
            format!("{name:?} is not a plain relative path inside the image location"),
        )
    }

    fn tar_lookup_error(&self, name: &str, e: Lookup) -> Error {
        let msg = match e {
            Lookup::Escapes => {
                return self.escapes(name);
            }
            Lookup::Missing => format!("{name} is not in the archive"),
            Lookup::Dangling(target) => {
                format!("{name} is a link to {target}, which is not a file in the archive")
            }
            Lookup::TooDeep => format!("{name}: too many levels of links"),
        };
        Error::format(self.source_name(), msg)
    }
}

#[derive(Debug)]
enum Lookup {
    Escapes,
    Missing,
    Dangling(String),
    TooDeep,
}

impl TarIndex {
    fn build(path: &Path, file: File, file_len: u64) -> Result<TarIndex> {
        // The tar crate's messages quote what it found (a numeric header
        // field that is not a number is printed as read, with the entry's
        // name), and a file that is not a tar is often one full of secrets
        // (a `.env`): only the system's own errors are passed on.
        let not_tar = |e: io::Error| {
            let (name, what) = (
                path.display().to_string(),
                "not a tar archive, or a damaged one",
            );
            match e.raw_os_error() {
                Some(code) => Error::format_because(name, what, io::Error::from_raw_os_error(code)),
                None => Error::format(name, what),
            }
        };
        let mut archive = tar::Archive::new(BufReader::with_capacity(64 * 1024, file));
        let mut entries = HashMap::new();
        for entry in archive.entries_with_seek().map_err(not_tar)? {
            let entry = entry.map_err(not_tar)?;
            let Ok(raw) = std::str::from_utf8(&entry.path_bytes()).map(str::to_owned) else {
                continue;
            };
            let Some(name) = clean(&raw) else {
                continue;
            };
            let header = entry.header();
            let kind = header.entry_type();
            let value = if kind.is_file() || kind.is_contiguous() {
                let offset = entry.raw_file_position();
                let size = entry.size();
                if offset.checked_add(size).is_none_or(|end| end > file_len) {
                    return Err(Error::format(
                        path.display().to_string(),
                        format!("truncated: member {name} extends past the end of the file"),
                    ));
                }
                TarEntry::File { offset, size }
            } else if kind.is_symlink() || kind.is_hard_link() {
                let Some(target) = entry
                    .link_name_bytes()
                    .and_then(|b| String::from_utf8(b.into_owned()).ok())
                else {
                    continue;
                };
                if kind.is_symlink() {
                    TarEntry::Symlink(target)
                } else {
                    TarEntry::Hardlink(target)
                }
            } else {
                // Directories, devices, sparse files: nothing an image
                // location refers to.
                continue;
            };
            entries.insert(name, value);
        }
        if entries.is_empty() {
            return Err(Error::format(
                path.display().to_string(),
                "not a tar archive, or an empty one",
            ));
        }
        Ok(TarIndex {
            path: path.to_path_buf(),
            entries,
        })
    }

    fn resolve(&self, name: &str) -> std::result::Result<(u64, u64), Lookup> {
        let mut current = clean(name).ok_or(Lookup::Escapes)?;
        for hop in 0..MAX_LINK_HOPS {
            let target = match self.entries.get(&current) {
                None if hop == 0 => return Err(Lookup::Missing),
                None => return Err(Lookup::Dangling(current)),
                Some(TarEntry::File { offset, size }) => return Ok((*offset, *size)),
                Some(TarEntry::Hardlink(t)) => t.clone(),
                Some(TarEntry::Symlink(t)) => {
                    if t.starts_with('/') {
                        return Err(Lookup::Dangling(t.clone()));
                    }
                    match current.rsplit_once('/') {
                        Some((dir, _)) => format!("{dir}/{t}"),
                        None => t.clone(),
                    }
                }
            };
            current = clean(&target).ok_or(Lookup::Dangling(target))?;
        }
        Err(Lookup::TooDeep)
    }
}

/// Normalises a relative member name: drops `.` and empty components (so
/// `./blobs//x` and `blobs/x` are one name) and resolves `..` lexically.
/// `None` for anything that is absolute, empty, or climbs above the root.
pub(crate) fn clean(name: &str) -> Option<String> {
    if name.starts_with('/') || name.contains('\\') || name.contains('\0') {
        return None;
    }
    crate::rootfs::normalise_member(name).filter(|n| !n.is_empty())
}

/// The compression a file's first bytes show: one a layer may have, or
/// (`Err`) the name of a format that no layer gantry reads has.
pub(crate) fn compression_of(head: &[u8]) -> std::result::Result<Compression, &'static str> {
    if head.starts_with(&[0x1f, 0x8b]) {
        Ok(Compression::Gzip)
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Ok(Compression::Zstd)
    } else if head.starts_with(b"BZh") {
        Err("bzip2")
    } else if head.starts_with(&[0xfd, b'7', b'z', b'X', b'Z', 0]) {
        Err("xz")
    } else {
        Ok(Compression::None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_with(entries: &[(&str, tar::EntryType, &[u8], Option<&str>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, kind, data, link) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(*kind);
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            // set_path refuses `..`, which is exactly what these tests need
            // to write, so the name goes into the header bytes directly.
            let gnu = h.as_gnu_mut().unwrap();
            gnu.name[..name.len()].copy_from_slice(name.as_bytes());
            if let Some(l) = link {
                gnu.linkname[..l.len()].copy_from_slice(l.as_bytes());
            }
            h.set_cksum();
            b.append(&h, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn open_tar(bytes: &[u8]) -> (tempfile::TempDir, Container) {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.tar");
        fs::write(&p, bytes).unwrap();
        let c = Container::open(&p).unwrap();
        (dir, c)
    }

    #[test]
    fn clean_normalises_and_refuses_escapes() {
        assert_eq!(
            clean("./blobs//sha256/x").as_deref(),
            Some("blobs/sha256/x")
        );
        assert_eq!(clean("a/../b").as_deref(), Some("b"));
        assert_eq!(clean("../b"), None);
        assert_eq!(clean("/etc/passwd"), None);
        assert_eq!(clean("."), None);
    }

    #[test]
    fn tar_members_are_read_by_offset_and_links_followed() {
        use tar::EntryType::*;
        let bytes = tar_with(&[
            ("./a/layer.tar", Regular, b"first", None),
            ("b/layer.tar", Symlink, b"", Some("../a/layer.tar")),
            ("c", Link, b"", Some("a/layer.tar")),
            ("../evil", Regular, b"x", None),
            ("d", Symlink, b"", Some("../../outside")),
            ("e", Symlink, b"", Some("e")),
        ]);
        let (_d, c) = open_tar(&bytes);
        assert_eq!(c.read_small("a/layer.tar").unwrap(), b"first");
        assert_eq!(c.read_small("b/layer.tar").unwrap(), b"first");
        assert_eq!(c.read_small("c").unwrap(), b"first");
        assert_eq!(c.size("./a//layer.tar").unwrap(), 5);
        assert!(!c.has("../evil") && !c.has("evil"));
        let err = c.open_member("d").err().unwrap().to_string();
        assert!(err.contains("not a file in the archive"), "{err}");
        let err = c.open_member("e").err().unwrap().to_string();
        assert!(err.contains("too many levels"), "{err}");
        let err = c.open_member("nope").err().unwrap().to_string();
        assert!(err.contains("nope is not in the archive"), "{err}");
    }

    #[test]
    fn directory_lookups_cannot_escape() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("f"), b"x").unwrap();
        let c = Container::open(dir.path()).unwrap();
        assert!(c.has("f") && c.has("./f"));
        let err = c.open_member("../f").err().unwrap().to_string();
        assert!(err.contains("not a plain relative path"), "{err}");
    }

    #[test]
    fn compressed_and_truncated_archives_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x.tar.gz");
        fs::write(&p, [0x1f, 0x8b, 8, 0, 0, 0, 0, 0]).unwrap();
        let err = Container::open(&p).err().unwrap().to_string();
        assert!(err.contains("gzip-compressed"), "{err}");

        let mut bytes = tar_with(&[("big", tar::EntryType::Regular, &[7u8; 4000], None)]);
        bytes.truncate(1024);
        let p = dir.path().join("t.tar");
        fs::write(&p, &bytes).unwrap();
        let err = Container::open(&p).err().unwrap().to_string();
        assert!(err.contains("t.tar") && err.contains("truncated"), "{err}");

        let p = dir.path().join("junk");
        fs::write(&p, vec![b'j'; 1024]).unwrap();
        let err = Container::open(&p).err().unwrap().to_string();
        assert!(err.contains("junk") && err.contains("tar"), "{err}");
    }

    #[test]
    fn a_file_that_is_not_a_tar_is_named_never_quoted() {
        let dir = tempfile::tempdir().unwrap();
        // Long enough for a header block: the checksum field (bytes 148..156)
        // holds text, which the tar crate quotes with the "name" (bytes 0..100).
        let mut env = b"PASSWORD=hunter2 ".repeat(60);
        env.truncate(1200);
        let p = dir.path().join("prod.env");
        fs::write(&p, &env).unwrap();
        let err = Container::open(&p).err().unwrap().to_string();
        assert!(
            err.contains("prod.env") && err.contains("not a tar archive"),
            "{err}"
        );
        assert!(
            !err.contains("hunter2") && !err.contains("PASSWORD"),
            "{err}"
        );

        // A real tar header whose size field is not a number.
        let mut bytes = tar_with(&[("f", tar::EntryType::Regular, b"x", None)]);
        bytes[124..136].copy_from_slice(b"hunter2pass\0");
        let mut h = tar::Header::new_old();
        h.as_mut_bytes().copy_from_slice(&bytes[..512]);
        h.set_cksum();
        bytes[..512].copy_from_slice(h.as_bytes());
        let p = dir.path().join("bad.tar");
        fs::write(&p, &bytes).unwrap();
        let err = Container::open(&p).err().unwrap().to_string();
        assert!(err.contains("bad.tar") && !err.contains("hunter2"), "{err}");
    }
}
