//! A tar writer that owns every output byte: ustar headers, PAX records only
//! where a field does not fit, fixed names, no sparse entries, two zero
//! blocks at the end. (See docs/design.md for why the `tar` crate's Builder
//! is not used here.)
//!
//! Byte-level conventions, all fixed so that the same entries always give the
//! same archive:
//!
//! - numeric fields are zero-padded octal followed by one NUL, filling the
//!   field (`mode`, `uid`, `gid`, `devmajor`, `devminor`: 7 digits; `size`,
//!   `mtime`: 11 digits); `devmajor`/`devminor` are always `0000000\0`;
//! - the checksum is 6 octal digits, a NUL and a space, computed with the
//!   checksum field taken as eight spaces;
//! - text fields are NUL-padded; `name`, `linkname` and `prefix` may fill
//!   their field without a terminating NUL (as POSIX allows), `uname` and
//!   `gname` always keep one;
//! - directories are named with a trailing `/` (typeflag `5`), files have
//!   typeflag `0`, symlinks `2` with the target in `linkname`; directories
//!   and symlinks have size 0;
//! - a name longer than 100 bytes is split into `prefix` and `name` at the
//!   first `/` that leaves at most 100 bytes for `name` (the split GNU tar
//!   and Python's tarfile make), if the prefix then fits in 155 bytes;
//! - a value that does not fit its field goes into a PAX extended header
//!   (`typeflag 'x'`, named [`PAX_HEADER_NAME`], mode 0644, uid/gid 0, empty
//!   owner names, the entry's mtime) placed just before the entry, with its
//!   records in key order; the ustar field then holds the value cut to the
//!   field's width (text) or zero (numbers). That happens for paths that
//!   cannot be split, link targets over 100 bytes, uid/gid over 0o7777777,
//!   sizes and mtimes over 0o77777777777, and owner names over 31 bytes.

use std::io::{self, Read, Write};

/// What a tar entry is; the three kinds a layer can hold (no hard links,
/// devices or fifos, which gantry refuses when it resolves a layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    /// A regular file (typeflag `0`) followed by its content.
    File {
        /// The content's length in bytes; the data read must match it.
        size: u64,
    },
    /// A directory (typeflag `5`), with no content.
    Dir,
    /// A symbolic link (typeflag `2`), with no content.
    Symlink {
        /// Where it points, written as given (relative or absolute, not
        /// empty); never resolved, so it may dangle.
        target: String,
    },
}

/// One tar entry's metadata. `path` is relative (no leading `/`), uses `/`
/// separators, and has no trailing `/` (the writer adds it for directories).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryHeader {
    /// Where the entry goes in the image's file system, relative to `/`;
    /// no empty, `.` or `..` component.
    pub path: String,
    /// File, directory or symlink, with what each needs.
    pub kind: EntryKind,
    /// Permission bits, at most 0o7777.
    pub mode: u32,
    /// Numeric owner; what runtimes use.
    pub uid: u64,
    /// Numeric group; what runtimes use.
    pub gid: u64,
    /// Owner name, informative only (runtimes go by `uid`); empty for none.
    pub uname: String,
    /// Group name, informative only (runtimes go by `gid`); empty for none.
    pub gname: String,
    /// Modification time, seconds since the Unix epoch. In layers gantry
    /// builds, the build's epoch unless the layer sets its own, never the
    /// source file's.
    pub mtime: u64,
}

/// Size of a tar block; headers and padded data are made of these.
pub const BLOCK_SIZE: usize = 512;

/// Name of every PAX extended header entry. It is a constant so that it never
/// carries a process id or the entry's own name, as other tools' names do.
pub const PAX_HEADER_NAME: &str = "././@PaxHeader";

/// Largest values the ustar numeric fields can hold.
const MAX_OCTAL_7: u64 = 0o7777777;
const MAX_OCTAL_11: u64 = 0o77777777777;

const NAME_LEN: usize = 100;
const PREFIX_LEN: usize = 155;
const LINKNAME_LEN: usize = 100;
/// POSIX requires `uname`/`gname` to be NUL-terminated, so 31 bytes is the
/// longest name that can stay in the 32-byte field.
const OWNER_NAME_MAX: usize = 31;

/// Every byte of every layer passes through this buffer; 128 KiB keeps the
/// number of read and write calls low without costing much memory.
const COPY_BUF_SIZE: usize = 128 * 1024;

const TYPE_FILE: u8 = b'0';
const TYPE_SYMLINK: u8 = b'2';
const TYPE_DIR: u8 = b'5';
const TYPE_PAX: u8 = b'x';

/// Where a tar stream goes, told where each regular file's content begins
/// and ends, so that it can hash the content on its own as it passes.
pub trait TarSink: Write {
    /// The bytes written from now on are a regular file's content.
    fn content_begins(&mut self) {}
    /// The file's content was all written (its padding is not part of it).
    fn content_ends(&mut self) {}
}

impl TarSink for Vec<u8> {}

/// Writes a tar archive entry by entry, in the order given, with the fixed
/// byte conventions of this module. Nothing is sorted or checked across
/// entries (duplicate paths, missing parents): the caller's entry list
/// decides the archive, so the same list always gives the same bytes.
pub struct TarWriter<W: TarSink> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: TarSink> TarWriter<W> {
    /// Starts an archive on `inner`. Nothing is written before the first
    /// entry, and the archive is complete only after [`TarWriter::finish`].
    pub fn new(inner: W) -> Self {
        TarWriter {
            inner,
            buf: Vec::new(),
        }
    }

    /// Appends one entry. For files, `data` must yield exactly `size` bytes;
    /// anything else (a file that changed while being read) is an error.
    /// `data` is not read for directories and symlinks.
    ///
    /// An invalid header is rejected before anything is written. Any later
    /// error leaves a partial entry behind, so the archive must be discarded.
    pub fn append(&mut self, header: &EntryHeader, data: &mut dyn Read) -> io::Result<()> {
        let blocks = encode_header(header)?;
        self.inner.write_all(&blocks)?;
        if let EntryKind::File { size } = header.kind {
            self.inner.content_begins();
            self.copy_data(&header.path, size, data)?;
        }
        Ok(())
    }

    /// The sink, to look at what it has taken so far; writing to it
    /// directly would corrupt the archive.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.inner
    }

    /// Writes the end-of-archive marker and returns the inner writer.
    ///
    /// The marker is exactly two zero blocks; the archive is not padded to a
    /// record size.
    pub fn finish(mut self) -> io::Result<W> {
        self.inner.write_all(&[0u8; 2 * BLOCK_SIZE])?;
        Ok(self.inner)
    }

    fn copy_data(&mut self, path: &str, size: u64, data: &mut dyn Read) -> io::Result<()> {
        if self.buf.is_empty() {
            self.buf = vec![0u8; COPY_BUF_SIZE];
        }
        let mut remaining = size;
        while remaining > 0 {
            let want = usize::try_from(remaining).map_or(self.buf.len(), |r| r.min(self.buf.len()));
            let n = match data.read(&mut self.buf[..want]) {
                Ok(0) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        format!(
                            "{path}: file shrank while being read (expected {size} bytes, got {})",
                            size - remaining
                        ),
                    ))
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(path, e)),
            };
            self.inner.write_all(&self.buf[..n])?;
            remaining -= n as u64;
        }

        // The header already promised `size` bytes, so extra data cannot be
        // archived; a one-byte probe is enough to notice it.
        let mut probe = [0u8; 1];
        loop {
            match data.read(&mut probe) {
                Ok(0) => break,
                Ok(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{path}: file grew while being read (expected {size} bytes)"),
                    ))
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(read_error(path, e)),
            }
        }

        self.inner.content_ends();
        let pad = padding(size);
        if pad > 0 {
            self.inner.write_all(&[0u8; BLOCK_SIZE][..pad])?;
        }
        Ok(())
    }
}

/// Zero bytes needed after `len` bytes of data to reach a block boundary.
fn padding(len: u64) -> usize {
    let rem = (len % BLOCK_SIZE as u64) as usize;
    if rem == 0 {
        0
    } else {
        BLOCK_SIZE - rem
    }
}

fn read_error(path: &str, e: io::Error) -> io::Error {
    crate::error::io_because(e.kind(), format!("{path}: reading file data"), e)
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

fn validate(header: &EntryHeader) -> io::Result<()> {
    let path = &header.path;
    if path.is_empty() {
        return Err(invalid("tar entry has an empty path".into()));
    }
    if path.starts_with('/') || path.ends_with('/') {
        return Err(invalid(format!(
            "tar entry path {path:?} must be relative and have no trailing '/'"
        )));
    }
    if path.contains('\0') {
        return Err(invalid(format!(
            "tar entry path {path:?} contains a NUL byte"
        )));
    }
    // Readers resolve these components differently (and `..` can escape the
    // extraction directory), so the same layer could unpack differently.
    if path
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
    {
        return Err(invalid(format!(
            "tar entry path {path:?} has an empty, '.' or '..' component"
        )));
    }
    if header.mode > 0o7777 {
        return Err(invalid(format!(
            "{path}: mode {:o} has bits outside 0o7777",
            header.mode
        )));
    }
    if let EntryKind::Symlink { target } = &header.kind {
        if target.is_empty() || target.contains('\0') {
            return Err(invalid(format!(
                "{path}: symlink target {target:?} is empty or contains a NUL byte"
            )));
        }
    }
    for (what, name) in [("uname", &header.uname), ("gname", &header.gname)] {
        if name.contains('\0') {
            return Err(invalid(format!(
                "{path}: {what} {name:?} contains a NUL byte"
            )));
        }
    }
    Ok(())
}

/// Encodes the header block(s) of one entry: an optional PAX header with its
/// data, then the ustar header.
fn encode_header(header: &EntryHeader) -> io::Result<Vec<u8>> {
    validate(header)?;

    let (typeflag, size, link) = match &header.kind {
        EntryKind::File { size } => (TYPE_FILE, *size, ""),
        EntryKind::Dir => (TYPE_DIR, 0, ""),
        EntryKind::Symlink { target } => (TYPE_SYMLINK, 0, target.as_str()),
    };
    let full_name = match header.kind {
        EntryKind::Dir => format!("{}/", header.path),
        _ => header.path.clone(),
    };

    // Keys are pushed in byte order so the records come out sorted.
    let mut pax: Vec<(&str, String)> = Vec::new();
    if header.gid > MAX_OCTAL_7 {
        pax.push(("gid", header.gid.to_string()));
    }
    if header.gname.len() > OWNER_NAME_MAX {
        pax.push(("gname", header.gname.clone()));
    }
    if link.len() > LINKNAME_LEN {
        pax.push(("linkpath", link.to_string()));
    }
    if header.mtime > MAX_OCTAL_11 {
        pax.push(("mtime", header.mtime.to_string()));
    }
    let split = split_name(&full_name);
    if split.is_none() {
        pax.push(("path", full_name.clone()));
    }
    if size > MAX_OCTAL_11 {
        pax.push(("size", size.to_string()));
    }
    if header.uid > MAX_OCTAL_7 {
        pax.push(("uid", header.uid.to_string()));
    }
    if header.uname.len() > OWNER_NAME_MAX {
        pax.push(("uname", header.uname.clone()));
    }
    debug_assert!(pax.windows(2).all(|w| w[0].0 < w[1].0));

    let mtime_field = fit_number(header.mtime, MAX_OCTAL_11);
    let mut out = Vec::with_capacity(BLOCK_SIZE * 2);

    if !pax.is_empty() {
        let mut records = Vec::new();
        for (key, value) in &pax {
            records.extend_from_slice(&pax_record(key, value));
        }
        let pax_header = Ustar {
            name: PAX_HEADER_NAME.as_bytes(),
            prefix: b"",
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: records.len() as u64,
            mtime: mtime_field,
            typeflag: TYPE_PAX,
            linkname: b"",
            uname: b"",
            gname: b"",
        };
        out.extend_from_slice(&pax_header.encode());
        out.extend_from_slice(&records);
        out.resize(out.len() + padding(records.len() as u64), 0);
    }

    let (prefix, name) = match split {
        Some((prefix, name)) => (prefix.as_bytes(), name.as_bytes()),
        None => (&b""[..], truncate(full_name.as_bytes(), NAME_LEN)),
    };
    let ustar = Ustar {
        name,
        prefix,
        mode: header.mode,
        uid: fit_number(header.uid, MAX_OCTAL_7),
        gid: fit_number(header.gid, MAX_OCTAL_7),
        size: fit_number(size, MAX_OCTAL_11),
        mtime: mtime_field,
        typeflag,
        linkname: truncate(link.as_bytes(), LINKNAME_LEN),
        uname: truncate(header.uname.as_bytes(), OWNER_NAME_MAX),
        gname: truncate(header.gname.as_bytes(), OWNER_NAME_MAX),
    };
    out.extend_from_slice(&ustar.encode());
    Ok(out)
}

/// A number that does not fit its field is carried by a PAX record and the
/// field holds zero.
fn fit_number(value: u64, max: u64) -> u64 {
    if value > max {
        0
    } else {
        value
    }
}

/// Cuts at a byte count, not a character boundary: the field is raw bytes
/// and the full value is in the PAX record anyway.
fn truncate(bytes: &[u8], len: usize) -> &[u8] {
    &bytes[..bytes.len().min(len)]
}

/// Splits a name into ustar `prefix` and `name` fields, or `None` when it
/// needs a PAX `path` record. Names of up to 100 bytes go whole into `name`;
/// longer ones are split at the first `/` that leaves at most 100 bytes
/// (and at least one) for `name`, if the prefix then fits in 155 bytes.
fn split_name(full: &str) -> Option<(&str, &str)> {
    if full.len() <= NAME_LEN {
        return Some(("", full));
    }
    let bytes = full.as_bytes();
    let first = full.len() - NAME_LEN - 1;
    let at = (first..bytes.len()).find(|&i| bytes[i] == b'/')?;
    let (prefix, name) = (&full[..at], &full[at + 1..]);
    if prefix.len() > PREFIX_LEN || name.is_empty() {
        return None;
    }
    Some((prefix, name))
}

/// One PAX record, `"<len> <key>=<value>\n"`, where `<len>` counts the whole
/// record including its own digits.
fn pax_record(key: &str, value: &str) -> Vec<u8> {
    let rest = 1 + key.len() + 1 + value.len() + 1;
    let mut len = rest + decimal_digits(rest);
    // Adding the digits can carry into one more digit (e.g. 98 -> 100).
    if decimal_digits(len) + rest != len {
        len = rest + decimal_digits(len);
    }
    let record = format!("{len} {key}={value}\n");
    debug_assert_eq!(record.len(), len);
    record.into_bytes()
}

fn decimal_digits(n: usize) -> usize {
    n.to_string().len()
}

/// The fields of one 512-byte ustar header, already fitted to their widths.
struct Ustar<'a> {
    name: &'a [u8],
    prefix: &'a [u8],
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    mtime: u64,
    typeflag: u8,
    linkname: &'a [u8],
    uname: &'a [u8],
    gname: &'a [u8],
}

impl Ustar<'_> {
    fn encode(&self) -> [u8; BLOCK_SIZE] {
        let mut b = [0u8; BLOCK_SIZE];
        put_bytes(&mut b[0..100], self.name);
        put_octal(&mut b[100..108], u64::from(self.mode));
        put_octal(&mut b[108..116], self.uid);
        put_octal(&mut b[116..124], self.gid);
        put_octal(&mut b[124..136], self.size);
        put_octal(&mut b[136..148], self.mtime);
        b[156] = self.typeflag;
        put_bytes(&mut b[157..257], self.linkname);
        b[257..263].copy_from_slice(b"ustar\0");
        b[263..265].copy_from_slice(b"00");
        put_bytes(&mut b[265..297], self.uname);
        put_bytes(&mut b[297..329], self.gname);
        put_octal(&mut b[329..337], 0);
        put_octal(&mut b[337..345], 0);
        put_bytes(&mut b[345..500], self.prefix);

        b[148..156].fill(b' ');
        let sum: u32 = b.iter().map(|&x| u32::from(x)).sum();
        // The sum of 512 bytes is below 0o777777, so six digits always fit.
        b[148..154].copy_from_slice(format!("{sum:06o}").as_bytes());
        b[154] = 0;
        b[155] = b' ';
        b
    }
}

fn put_bytes(field: &mut [u8], value: &[u8]) {
    debug_assert!(value.len() <= field.len());
    field[..value.len()].copy_from_slice(value);
}

/// Zero-padded octal filling all but the last byte of the field, which is
/// NUL. Callers have already checked that the value fits.
fn put_octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    debug_assert_eq!(text.len(), digits);
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

#[cfg(test)]
#[path = "tar_tests.rs"]
mod tests;
