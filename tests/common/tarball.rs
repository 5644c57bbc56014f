//! Reading tar files: docker tarballs and OCI archives as a whole, and the
//! entries of an uncompressed layer tar header by header.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::path::Path;

use super::digest::sha256_digest;
use super::oci::parse_json;

/// Member names of a tar, in archive order.
pub fn member_names(bytes: &[u8]) -> Vec<String> {
    let mut ar = tar::Archive::new(bytes);
    ar.entries()
        .expect("a tar")
        .map(|e| e.unwrap().path().unwrap().display().to_string())
        .collect()
}

/// The content of the member `name`.
pub fn member(bytes: &[u8], name: &str) -> Vec<u8> {
    let mut ar = tar::Archive::new(bytes);
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some(name) {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            return v;
        }
    }
    panic!("no member {name} in the tar");
}

/// Every member of a tar file, by name.
pub fn members(path: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut archive = tar::Archive::new(fs::File::open(path).unwrap());
    let mut members = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let name = entry.path().unwrap().display().to_string();
        let mut data = Vec::new();
        entry.read_to_end(&mut data).unwrap();
        members.insert(name, data);
    }
    members
}

/// The config digest of the only image of a docker tarball, computed from
/// the bytes `manifest.json` points at (so it holds whatever the members are
/// called).
pub fn only_config_digest(path: &Path) -> String {
    let members = members(path);
    let manifest = parse_json(std::str::from_utf8(&members["manifest.json"]).unwrap());
    let items = manifest.as_array().expect("manifest.json is an array");
    assert_eq!(items.len(), 1, "{manifest}");
    let config = items[0]["Config"].as_str().unwrap();
    sha256_digest(&members[config])
}

/// One tar entry as the tests compare it.
#[derive(Debug)]
pub struct TarEntry {
    /// As stored, before any PAX record is applied.
    pub raw_type: u8,
    pub path: String,
    pub line: String,
    pub mtime: u64,
    pub header_pos: u64,
    pub data_end: u64,
    pub ustar: bool,
}

/// Every entry of an uncompressed tar, PAX headers included as entries of
/// their own (the raw view), and the same without them (the resolved view).
pub fn tar_entries(tar: &[u8]) -> (Vec<TarEntry>, Vec<TarEntry>) {
    let read = |raw: bool| -> Vec<TarEntry> {
        let mut ar = tar::Archive::new(tar);
        let mut v = Vec::new();
        for e in ar.entries().unwrap().raw(raw) {
            let mut e = e.unwrap();
            let h = e.header().clone();
            let path = String::from_utf8(e.path_bytes().into_owned()).unwrap();
            let kind = match h.entry_type() {
                tar::EntryType::Regular => format!("file {}", e.size()),
                tar::EntryType::Directory => "dir".to_string(),
                tar::EntryType::Symlink => format!(
                    "symlink -> {}",
                    String::from_utf8(e.link_name_bytes().unwrap().into_owned()).unwrap()
                ),
                other => format!("{other:?}"),
            };
            let mut uname =
                String::from_utf8(h.username_bytes().unwrap_or_default().to_vec()).unwrap();
            let mut gname =
                String::from_utf8(h.groupname_bytes().unwrap_or_default().to_vec()).unwrap();
            let mut mtime = h.mtime().unwrap();
            // The tar crate applies PAX path, size, uid and gid, but leaves
            // the names and mtime to the reader.
            if let Some(pax) = e.pax_extensions().unwrap() {
                for ext in pax {
                    let ext = ext.unwrap();
                    let value = ext.value().unwrap().to_string();
                    match ext.key().unwrap() {
                        "uname" => uname = value,
                        "gname" => gname = value,
                        "mtime" => mtime = value.parse().unwrap(),
                        _ => {}
                    }
                }
            }
            let line = format!(
                "{path} {kind} {:04o} {}:{} {uname:?}:{gname:?}",
                h.mode().unwrap() & 0o7777,
                h.uid().unwrap(),
                h.gid().unwrap(),
            );
            let data_end = e.raw_file_position() + e.size().div_ceil(512) * 512;
            v.push(TarEntry {
                raw_type: h.entry_type().as_byte(),
                path,
                line,
                mtime,
                header_pos: e.raw_header_position(),
                data_end,
                ustar: h.as_ustar().is_some(),
            });
        }
        v
    };
    (read(true), read(false))
}

pub fn lines(entries: &[TarEntry]) -> Vec<&str> {
    entries.iter().map(|e| e.line.as_str()).collect()
}
