//! The base's OS packages, read from its file system view: which of the
//! package databases it has, read in one pass per layer, parsed.

use std::io::Read;

use super::ospkg::{self, OsPackage, OsRelease, Parsed};
use crate::error::Result;
use crate::rootfs::RootFs;

/// What a base's package databases say.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BaseScan {
    /// The distribution, from its os-release (empty when it has none).
    pub os: OsRelease,
    /// Installed packages of every database found, in database order.
    pub packages: Vec<OsPackage>,
    /// Entries skipped as malformed, plus database paths that are there
    /// but are not a readable file (a directory, a device, or over
    /// [`ospkg::MAX_DB_SIZE`]).
    pub skipped: usize,
    /// The databases read, as absolute paths, sorted.
    pub databases: Vec<String>,
}

enum Db {
    OsRelease,
    Dpkg,
    DpkgD,
    Apk,
}

/// Reads the package databases `fs` has. `open_layer(i)` gives the
/// uncompressed stream of layer `i`, as for [`RootFs::read_files`]; it is
/// called at most once per layer that holds a database, and not at all
/// for an image that has none (`scratch`-like bases cost nothing).
pub fn scan(
    fs: &RootFs,
    open_layer: impl FnMut(usize) -> Result<Box<dyn Read>>,
) -> Result<BaseScan> {
    let mut wanted: Vec<(String, Db)> = vec![
        (ospkg::OS_RELEASE.to_string(), Db::OsRelease),
        (ospkg::OS_RELEASE_FALLBACK.to_string(), Db::OsRelease),
        (ospkg::DPKG_STATUS.to_string(), Db::Dpkg),
        (ospkg::APK_INSTALLED.to_string(), Db::Apk),
    ];
    if let Some(dir) = fs.resolve(ospkg::DPKG_STATUS_D) {
        let prefix = format!("{}/", dir.entry.path);
        for node in fs.iter() {
            let Some(name) = node.entry.path.strip_prefix(&prefix) else {
                continue;
            };
            if !name.contains('/') && ospkg::is_status_d_entry(name) {
                wanted.push((format!("/{}", node.entry.path), Db::DpkgD));
            }
        }
    }
    let mut out = BaseScan::default();
    // Only regular files within the bound are asked for: one that is not
    // would fail the whole read, and a base's odd file must not fail a build.
    wanted.retain(|(path, _)| match fs.resolve(path) {
        None => false,
        Some(node) => match node.content() {
            Some(c) if c.size <= ospkg::MAX_DB_SIZE => true,
            _ => {
                out.skipped += 1;
                false
            }
        },
    });
    let paths: Vec<&str> = wanted.iter().map(|(p, _)| p.as_str()).collect();
    let contents = fs.read_files(&paths, ospkg::MAX_DB_SIZE, open_layer)?;
    let mut parsed = Parsed::default();
    let mut have_os_release = false;
    for ((path, db), bytes) in wanted.iter().zip(contents) {
        let Some(bytes) = bytes else { continue };
        match db {
            Db::OsRelease if have_os_release => continue,
            Db::OsRelease => {
                out.os = ospkg::parse_os_release(&bytes);
                have_os_release = true;
            }
            Db::Dpkg => parsed.extend(ospkg::parse_dpkg_status(&bytes)),
            Db::DpkgD => parsed.extend(ospkg::parse_dpkg_status_d(&bytes)),
            Db::Apk => parsed.extend(ospkg::parse_apk_installed(&bytes)),
        }
        out.databases.push(path.clone());
    }
    out.databases.sort();
    out.packages = parsed.packages;
    out.skipped += parsed.skipped;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;
    use crate::digest::Digest;
    use crate::rootfs::LayerIndex;

    fn tar(entries: &[(&str, Option<&[u8]>)]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (path, data) in entries {
            let mut h = tar::Header::new_ustar();
            match data {
                Some(d) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(d.len() as u64);
                    h.set_mode(0o644);
                    h.set_cksum();
                    b.append_data(&mut h, path, *d).unwrap();
                }
                None => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    h.set_mode(0o755);
                    h.set_cksum();
                    b.append_data(&mut h, path, &[][..]).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    fn scan_layers(layers: Vec<Vec<u8>>) -> (BaseScan, usize) {
        let indexes: Vec<LayerIndex> = layers
            .iter()
            .map(|t| LayerIndex::build(Cursor::new(t.clone()), &Digest::of(t)).unwrap())
            .collect();
        let fs = RootFs::new(&indexes);
        let mut opened = 0;
        let out = scan(&fs, |i| {
            opened += 1;
            Ok(Box::new(Cursor::new(layers[i].clone())))
        })
        .unwrap();
        (out, opened)
    }

    #[test]
    fn reads_distroless_status_d_and_os_release() {
        let layer = tar(&[
            ("etc/os-release", Some(b"ID=debian\nVERSION_ID=12\n")),
            ("var/lib/dpkg/status.d/", None),
            (
                "var/lib/dpkg/status.d/libc6",
                Some(b"Package: libc6\nVersion: 2.36-9\nArchitecture: amd64\n"),
            ),
            ("var/lib/dpkg/status.d/libc6.md5sums", Some(b"abc  lib/x\n")),
            (
                "var/lib/dpkg/status.d/tzdata",
                Some(b"Package: tzdata\nVersion: 2024a-0\nArchitecture: all\n"),
            ),
        ]);
        let (out, opened) = scan_layers(vec![layer]);
        assert_eq!(opened, 1);
        assert_eq!(out.os.distro().as_deref(), Some("debian-12"));
        let names: Vec<&str> = out.packages.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["libc6", "tzdata"]);
        assert_eq!(out.skipped, 0);
        assert_eq!(
            out.databases,
            [
                "/etc/os-release",
                "/var/lib/dpkg/status.d/libc6",
                "/var/lib/dpkg/status.d/tzdata"
            ]
        );
    }

    #[test]
    fn reads_apk_and_skips_a_database_path_that_is_a_directory() {
        let layer = tar(&[
            ("usr/lib/os-release", Some(b"ID=alpine\n")),
            (
                "lib/apk/db/installed",
                Some(b"P:musl\nV:1.2.5-r0\nA:x86_64\n"),
            ),
            ("var/lib/dpkg/status/", None),
        ]);
        let (out, _) = scan_layers(vec![layer]);
        assert_eq!(out.os.id.as_deref(), Some("alpine"));
        assert_eq!(out.packages.len(), 1);
        assert_eq!(out.skipped, 1);
    }

    #[test]
    fn an_image_without_databases_opens_no_layer() {
        let (out, opened) = scan_layers(vec![tar(&[("app/bin", Some(b"x"))])]);
        assert_eq!(opened, 0);
        assert_eq!(out, BaseScan::default());
    }
}
