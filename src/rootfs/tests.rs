use std::cell::Cell;
use std::io::{self, Cursor, Read};

use super::*;
use crate::digest::Digest;
use crate::error::Error;

/// Builds test layers with the `tar` crate, which writes what other tools
/// write (GNU long names, PAX records), independently of gantry's writer.
struct Layer {
    b: tar::Builder<Vec<u8>>,
}

impl Layer {
    fn new() -> Layer {
        Layer {
            b: tar::Builder::new(Vec::new()),
        }
    }

    fn header(kind: tar::EntryType, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h
    }

    fn file(mut self, path: &str, data: &[u8]) -> Layer {
        self.file_owned(path, data, 0o644, 0, 0);
        self
    }

    fn file_owned(&mut self, path: &str, data: &[u8], mode: u32, uid: u64, gid: u64) {
        let mut h = Layer::header(tar::EntryType::Regular, mode, data.len() as u64);
        h.set_uid(uid);
        h.set_gid(gid);
        self.b.append_data(&mut h, path, data).unwrap();
    }

    fn dir(mut self, path: &str) -> Layer {
        let mut h = Layer::header(tar::EntryType::Directory, 0o755, 0);
        self.b.append_data(&mut h, path, &[][..]).unwrap();
        self
    }

    fn link(mut self, kind: tar::EntryType, path: &str, target: &str) -> Layer {
        let mut h = Layer::header(kind, 0o777, 0);
        self.b.append_link(&mut h, path, target).unwrap();
        self
    }

    fn symlink(self, path: &str, target: &str) -> Layer {
        self.link(tar::EntryType::Symlink, path, target)
    }

    fn hardlink(self, path: &str, target: &str) -> Layer {
        self.link(tar::EntryType::Link, path, target)
    }

    /// A member whose name is written byte for byte, as `tar` would not.
    fn raw(mut self, name: &[u8], kind: tar::EntryType, data: &[u8]) -> Layer {
        let mut h = Layer::header(kind, 0o644, data.len() as u64);
        h.as_old_mut().name[..name.len()].copy_from_slice(name);
        h.set_cksum();
        self.b.append(&h, data).unwrap();
        self
    }

    fn bytes(self) -> Vec<u8> {
        self.b.into_inner().unwrap()
    }

    fn index(self) -> LayerIndex {
        index_of(&self.bytes())
    }
}

fn index_of(bytes: &[u8]) -> LayerIndex {
    LayerIndex::build(bytes, &Digest::of(bytes)).unwrap()
}

fn paths(index: &LayerIndex) -> Vec<(&str, Kind)> {
    index
        .entries()
        .iter()
        .map(|e| (e.path.as_str(), e.kind))
        .collect()
}

fn fs_paths(fs: &RootFs) -> Vec<&str> {
    fs.iter().map(|n| n.entry.path.as_str()).collect()
}

/// `open_layer` over in-memory layers, counting the calls.
fn opener<'a>(
    layers: &'a [Vec<u8>],
    calls: &'a Cell<usize>,
) -> impl FnMut(usize) -> crate::Result<Box<dyn Read>> + 'a {
    move |i| {
        calls.set(calls.get() + 1);
        Ok(Box::new(Cursor::new(layers[i].clone())))
    }
}

#[test]
fn index_keeps_headers_and_data_offsets_of_each_kind() {
    let mut l = Layer::new().dir("etc/");
    l.file_owned("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o600, 7, 8);
    let bytes = l
        .symlink("etc/alt", "passwd")
        .hardlink("etc/hard", "etc/passwd")
        .bytes();
    let index = index_of(&bytes);
    assert_eq!(
        paths(&index),
        [
            ("etc", Kind::Dir),
            ("etc/passwd", Kind::File),
            ("etc/alt", Kind::Symlink),
            ("etc/hard", Kind::Hardlink),
        ]
    );
    let f = &index.entries()[1];
    assert_eq!((f.mode, f.uid, f.gid, f.size), (0o600, 7, 8, 26));
    let at = f.offset as usize;
    assert_eq!(&bytes[at..at + 26], b"root:x:0:0::/root:/bin/sh\n");
    assert_eq!(index.entries()[2].link.as_deref(), Some("passwd"));
    assert_eq!(index.entries()[3].link.as_deref(), Some("etc/passwd"));
    assert_eq!(index.diff_id(), &Digest::of(&bytes));
}

#[test]
fn dot_slash_and_absolute_names_normalise_like_the_layer_writer_names_entries() {
    let index = Layer::new()
        .raw(b"./", tar::EntryType::Directory, b"")
        .raw(b"./etc/", tar::EntryType::Directory, b"")
        .raw(b"/etc//./group", tar::EntryType::Regular, b"g")
        .raw(b"usr/../opt/", tar::EntryType::Regular, b"")
        .index();
    assert_eq!(
        paths(&index),
        [
            ("", Kind::Dir),
            ("etc", Kind::Dir),
            ("etc/group", Kind::File),
            // An old-style directory: a regular type with a trailing slash.
            ("opt", Kind::Dir),
        ]
    );
}

#[test]
fn names_climbing_out_of_the_root_are_refused_naming_the_layer() {
    let bytes = Layer::new()
        .raw(b"../etc/passwd", tar::EntryType::Regular, b"")
        .bytes();
    let err = LayerIndex::build(&bytes[..], &Digest::of(&bytes)).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains(&Digest::of(&bytes).to_string()), "{msg}");
    assert!(msg.contains("outside the layer's root"), "{msg}");
}

#[test]
fn long_names_from_gnu_longname_pax_path_and_ustar_prefix_are_whole() {
    let long_dir = "d".repeat(120);
    let gnu = format!("{long_dir}/gnu-file");
    let mut l = Layer::new();
    // The tar crate writes GNU long-name members for a GNU header.
    l.file_owned(&gnu, b"1", 0o644, 0, 0);
    // A PAX path and link path, as Go's and Python's writers make them.
    let pax_name = format!("{long_dir}/pax-link");
    let pax_target = format!("/{long_dir}/somewhere/else");
    l.b.append_pax_extensions([
        ("path", pax_name.as_bytes()),
        ("linkpath", pax_target.as_bytes()),
        ("uid", b"4294967296".as_slice()),
    ])
    .unwrap();
    let mut h = Layer::header(tar::EntryType::Symlink, 0o777, 0);
    h.set_path("short").unwrap();
    h.set_link_name("short").unwrap();
    h.set_cksum();
    l.b.append(&h, &[][..]).unwrap();
    // A POSIX ustar name split into prefix and name.
    let mut h = tar::Header::new_ustar();
    let split = format!("{}/{}", "p".repeat(130), "ustar-file");
    h.set_path(&split).unwrap();
    h.set_size(0);
    h.set_mode(0o644);
    h.set_cksum();
    l.b.append(&h, &[][..]).unwrap();
    let index = l.index();
    let e = index.entries();
    assert_eq!(e[0].path, gnu);
    assert_eq!(e[1].path, pax_name);
    assert_eq!(e[1].link.as_deref(), Some(pax_target.as_str()));
    assert_eq!(e[1].uid, 1 << 32);
    assert_eq!(e[2].path, split);
}

#[test]
fn whiteouts_and_opaque_markers_are_indexed_by_what_they_hide() {
    let index = Layer::new()
        .file("etc/.wh.motd", b"")
        .file(".wh.tmp", b"")
        .file("var/cache/.wh..wh..opq", b"")
        .file(".wh..wh.plnk/1234.5", b"")
        .file(".wh..wh.aufs", b"")
        .index();
    assert_eq!(
        paths(&index),
        [
            ("etc/motd", Kind::Whiteout),
            ("tmp", Kind::Whiteout),
            ("var/cache", Kind::Opaque),
            // Inside aufs's hard-link pool: kept as a plain file.
            (".wh..wh.plnk/1234.5", Kind::File),
        ]
    );
}

#[test]
fn a_stream_that_does_not_hash_to_the_diff_id_is_refused() {
    let bytes = Layer::new().file("a", b"x").bytes();
    let err = LayerIndex::build(&bytes[..], &Digest::of(b"other")).unwrap_err();
    assert!(matches!(err, Error::Mismatch { .. }), "{err}");
}

#[test]
fn truncated_streams_and_bad_checksums_are_format_errors() {
    let bytes = Layer::new().file("a", &[7u8; 2000]).bytes();
    let cut = &bytes[..1200];
    let err = LayerIndex::build(cut, &Digest::of(cut)).unwrap_err();
    assert!(err.to_string().contains("ends inside"), "{err}");
    let mut bad = bytes.clone();
    bad[0] ^= 1;
    let err = LayerIndex::build(&bad[..], &Digest::of(&bad)).unwrap_err();
    assert!(err.to_string().contains("checksum"), "{err}");
}

#[test]
fn a_stream_ending_right_after_the_last_members_data_is_whole() {
    // As umoci 0.4 writes a layer: no padding after the data, no end marker.
    let full = Layer::new()
        .file("dir/a", b"x")
        .file("b", &[7u8; 700])
        .bytes();
    for end in [512 + 512 + 512 + 700, 512 + 512 + 512 + 700 + 100] {
        let cut = &full[..end];
        assert_eq!(
            paths(&index_of(cut)),
            [("dir/a", Kind::File), ("b", Kind::File)],
            "cut at {end}"
        );
    }
}

#[test]
fn an_oversized_extension_header_is_refused_before_it_is_read() {
    let mut h = Layer::header(tar::EntryType::XHeader, 0o644, 1 << 40);
    h.set_path("././@PaxHeader").unwrap();
    h.set_cksum();
    let bytes = h.as_bytes().to_vec();
    let err = LayerIndex::build(&bytes[..], &Digest::of(&bytes)).unwrap_err();
    assert!(err.to_string().contains("extension header of"), "{err}");
}

#[test]
fn an_archive_without_an_end_marker_and_one_with_trailing_padding_index_alike() {
    let full = Layer::new().file("a", b"x").bytes();
    let bare = &full[..1024];
    assert_eq!(paths(&index_of(bare)), [("a", Kind::File)]);
    let mut padded = full.clone();
    padded.extend_from_slice(&[0u8; 8192]);
    let index = index_of(&padded);
    assert_eq!(index.diff_id(), &Digest::of(&padded));
}

#[test]
fn index_round_trips_through_its_bytes_and_refuses_other_versions() {
    let index = Layer::new()
        .dir("etc")
        .file("etc/passwd", b"x")
        .symlink("bin", "usr/bin")
        .index();
    let bytes = index.to_bytes();
    assert_eq!(bytes, index.to_bytes());
    assert_eq!(LayerIndex::from_bytes(&bytes).unwrap(), index);
    let other = String::from_utf8(bytes)
        .unwrap()
        .replace("\"version\":1", "\"version\":99");
    assert!(LayerIndex::from_bytes(other.as_bytes()).is_err());
    assert!(LayerIndex::from_bytes(b"{").is_err());
}

#[test]
fn the_store_keeps_an_index_by_diff_id_and_cached_opens_the_layer_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = crate::store::Store::open(dir.path()).unwrap();
    let bytes = Layer::new().file("etc/passwd", b"x").bytes();
    let diff_id = Digest::of(&bytes);
    assert!(LayerIndex::load(&store, &diff_id).is_none());
    let opened = Cell::new(0);
    let open = || -> crate::Result<Box<dyn Read>> {
        opened.set(opened.get() + 1);
        Ok(Box::new(Cursor::new(bytes.clone())))
    };
    let first = LayerIndex::cached(&store, &diff_id, open).unwrap();
    let second = LayerIndex::cached(&store, &diff_id, open).unwrap();
    assert_eq!(first, second);
    assert_eq!(opened.get(), 1);
    let kept = dir
        .path()
        .join("meta/layer-index")
        .join(format!("{}.json", diff_id.hex()));
    assert_eq!(std::fs::read(kept).unwrap(), first.to_bytes());
    assert!(LayerIndex::load(&store, &Digest::of(b"other")).is_none());
}

#[test]
fn whiteout_removes_a_lower_file_and_a_lower_tree_but_not_its_own_layer() {
    let lower = Layer::new()
        .file("etc/motd", b"hi")
        .dir("var/lib/apt")
        .file("var/lib/apt/lists", b"x")
        .file("keep", b"")
        .index();
    let upper = Layer::new()
        .file("etc/.wh.motd", b"")
        .file("var/lib/.wh.apt", b"")
        // Written after its own whiteout: the whiteout does not hide it.
        .file("new", b"")
        .file(".wh.new", b"")
        .index();
    let fs = RootFs::new([&lower, &upper]);
    assert_eq!(fs_paths(&fs), ["", "etc", "keep", "new", "var", "var/lib"]);
    assert_eq!(fs.lookup("/new").map(|n| n.layer), Some(1));
    assert_eq!(fs.lookup("keep").map(|n| n.layer), Some(0));
}

#[test]
fn opaque_directory_hides_lower_contents_and_keeps_its_own_layers() {
    let lower = Layer::new()
        .dir("app")
        .file("app/old", b"")
        .dir("app/sub")
        .file("app/sub/deep", b"")
        .file("apple", b"")
        .index();
    let upper = Layer::new()
        .dir("app")
        .file("app/new", b"")
        .file("app/.wh..wh..opq", b"")
        .index();
    let fs = RootFs::new([&lower, &upper]);
    assert_eq!(fs_paths(&fs), ["", "app", "app/new", "apple"]);
    assert_eq!(fs.lookup("app").unwrap().layer, 1);
}

#[test]
fn markers_without_their_directory_entries_still_leave_the_directories() {
    let lower = Layer::new().file("srv/x", b"").index();
    let upper = Layer::new()
        .file("srv/.wh..wh..opq", b"")
        .file("new/.wh..wh..opq", b"")
        .file("gone/.wh.thing", b"")
        .index();
    let fs = RootFs::new([&lower, &upper]);
    assert_eq!(fs_paths(&fs), ["", "gone", "new", "srv"]);
    assert_eq!(fs.lookup("srv").unwrap().layer, 0);
    assert!(fs.lookup("new").unwrap().implied);
}

#[test]
fn an_opaque_marker_at_the_root_hides_every_lower_path() {
    let lower = Layer::new().file("a", b"").dir("b").index();
    let upper = Layer::new()
        .file(".wh..wh..opq", b"")
        .file("c", b"")
        .index();
    assert_eq!(fs_paths(&RootFs::new([&lower, &upper])), ["", "c"]);
}

#[test]
fn a_file_replaced_by_a_directory_and_a_directory_by_a_file() {
    let lower = Layer::new()
        .file("etc/conf", b"file")
        .dir("data")
        .file("data/a", b"")
        .index();
    let upper = Layer::new()
        .dir("etc/conf")
        .file("etc/conf/x", b"")
        .file("data", b"now a file")
        .index();
    let fs = RootFs::new([&lower, &upper]);
    assert_eq!(fs_paths(&fs), ["", "data", "etc", "etc/conf", "etc/conf/x"]);
    assert_eq!(fs.lookup("etc/conf").unwrap().entry.kind, Kind::Dir);
    assert_eq!(fs.lookup("data").unwrap().entry.kind, Kind::File);
}

#[test]
fn a_directory_over_a_directory_takes_the_upper_metadata_and_keeps_the_contents() {
    let lower = Layer::new().dir("home").file("home/a", b"").index();
    let mut upper = Layer::new();
    let mut h = Layer::header(tar::EntryType::Directory, 0o700, 0);
    h.set_uid(9500);
    upper.b.append_data(&mut h, "home", &[][..]).unwrap();
    let fs = RootFs::new([&lower, &upper.index()]);
    let home = fs.lookup("home").unwrap();
    assert_eq!(
        (home.entry.mode, home.entry.uid, home.layer),
        (0o700, 9500, 1)
    );
    assert!(fs.lookup("home/a").is_some());
}

#[test]
fn implied_parents_are_root_owned_0755_directories() {
    let fs = RootFs::new([&Layer::new().file("a/b/c", b"").index()]);
    let a = fs.lookup("a/b").unwrap();
    assert!(a.implied);
    assert_eq!(
        (a.entry.kind, a.entry.mode, a.entry.uid),
        (Kind::Dir, 0o755, 0)
    );
    assert!(!fs.lookup("a/b/c").unwrap().implied);
    assert!(fs.lookup("/").unwrap().implied);
}

#[test]
fn hard_links_read_their_target_in_the_same_or_a_lower_layer_even_once_it_is_whited_out() {
    let mut l0 = Layer::new();
    l0.file_owned("bin/busybox", b"BUSYBOX", 0o4755, 0, 0);
    let l0 = l0.hardlink("bin/sh", "bin/busybox").bytes();
    let l1 = Layer::new()
        .hardlink("usr/bin/env", "bin/busybox")
        .file("bin/.wh.busybox", b"")
        .bytes();
    let layers = [l0, l1];
    let fs = RootFs::new([&index_of(&layers[0]), &index_of(&layers[1])]);
    assert!(fs.lookup("bin/busybox").is_none());
    let calls = Cell::new(0);
    for p in ["/bin/sh", "/usr/bin/env"] {
        let got = fs.read_file(p, 100, opener(&layers, &calls)).unwrap();
        assert_eq!(got.as_deref(), Some(&b"BUSYBOX"[..]), "{p}");
    }
    let c = fs.lookup("usr/bin/env").unwrap().content().unwrap();
    assert_eq!((c.layer, c.mode), (0, 0o4755));
}

#[test]
fn symlinked_parents_are_followed_when_placing_entries_and_reading() {
    let lower = Layer::new()
        .dir("usr/lib")
        .symlink("lib", "usr/lib")
        .dir("etc")
        .symlink("etc/os-release", "../usr/lib/os-release")
        .index();
    let upper = Layer::new().file("lib/os-release", b"ID=test\n").bytes();
    let lower_bytes = Vec::new();
    let fs = RootFs::new([&lower, &index_of(&upper)]);
    assert!(fs.lookup("lib/os-release").is_none());
    assert_eq!(fs.lookup("usr/lib/os-release").unwrap().layer, 1);
    assert_eq!(
        fs.resolve("/etc/os-release").unwrap().entry.path,
        "usr/lib/os-release"
    );
    let layers = [lower_bytes, upper];
    let calls = Cell::new(0);
    let got = fs.read_file("/lib/os-release", 64, opener(&layers, &calls));
    assert_eq!(got.unwrap().as_deref(), Some(&b"ID=test\n"[..]));
    assert_eq!(calls.get(), 1);
}

#[test]
fn symlink_loops_resolve_to_nothing() {
    let fs = RootFs::new([&Layer::new().symlink("a", "b").symlink("b", "/a").index()]);
    assert!(fs.resolve("a").is_none());
    assert_eq!(fs.lookup("a").unwrap().entry.kind, Kind::Symlink);
}

#[test]
fn read_file_refuses_a_file_over_the_cap_without_opening_its_layer() {
    let layers = [Layer::new().file("etc/passwd", &[b'x'; 4096]).bytes()];
    let fs = RootFs::new([&index_of(&layers[0])]);
    let calls = Cell::new(0);
    let err = fs
        .read_file("/etc/passwd", 4095, opener(&layers, &calls))
        .unwrap_err();
    assert!(
        err.to_string().contains("/etc/passwd is 4096 bytes"),
        "{err}"
    );
    assert_eq!(calls.get(), 0);
    let ok = fs.read_file("/etc/passwd", 4096, opener(&layers, &calls));
    assert_eq!(ok.unwrap().map(|b| b.len()), Some(4096));
    assert_eq!(
        fs.read_file("/etc/shadow", 1, opener(&layers, &calls))
            .unwrap(),
        None
    );
    assert_eq!(calls.get(), 1);
}

#[test]
fn read_files_opens_each_layer_once_and_answers_in_the_order_asked() {
    let l0 = Layer::new()
        .file("etc/group", b"root:x:0:\n")
        .file("etc/passwd", b"old\n")
        .bytes();
    let l1 = Layer::new()
        .file("etc/shadow", b"root:*::::::::\n")
        .file("etc/passwd", b"root:x:0:0::/root:/bin/sh\n")
        .hardlink("etc/passwd-", "etc/passwd")
        .bytes();
    let layers = [l0, l1];
    let fs = RootFs::new([&index_of(&layers[0]), &index_of(&layers[1])]);
    let calls = Cell::new(0);
    let paths = [
        "/etc/passwd",
        "/etc/gshadow",
        "/etc/group",
        "/etc/passwd-",
        "/etc/shadow",
    ];
    let got = fs
        .read_files(&paths, 1024, opener(&layers, &calls))
        .unwrap();
    let text: Vec<Option<&str>> = got
        .iter()
        .map(|b| b.as_deref().map(|b| std::str::from_utf8(b).unwrap()))
        .collect();
    assert_eq!(
        text,
        [
            Some("root:x:0:0::/root:/bin/sh\n"),
            None,
            Some("root:x:0:\n"),
            Some("root:x:0:0::/root:/bin/sh\n"),
            Some("root:*::::::::\n"),
        ]
    );
    assert_eq!(calls.get(), 2);
}

#[test]
fn read_file_of_a_directory_or_from_a_short_stream_is_an_error() {
    let layers = [Layer::new().file("etc/passwd", b"abc").bytes()];
    let fs = RootFs::new([&index_of(&layers[0])]);
    let calls = Cell::new(0);
    let err = fs
        .read_file("/etc", 10, opener(&layers, &calls))
        .unwrap_err();
    assert!(err.to_string().contains("/etc is a directory"), "{err}");
    let short = |_| -> crate::Result<Box<dyn Read>> { Ok(Box::new(Cursor::new(vec![0u8; 100]))) };
    let err = fs.read_file("etc/passwd", 10, short).unwrap_err();
    assert!(err.to_string().contains("ends before"), "{err}");
    assert!(RootFs::new([]).read_file("/", 1, short).is_err());
}

#[test]
fn iter_lists_paths_in_byte_order_with_directories_before_their_contents() {
    let fs = RootFs::new([&Layer::new()
        .file("b", b"")
        .file("a/z", b"")
        .file("a-b", b"")
        .file("a/b", b"")
        .index()]);
    assert_eq!(fs_paths(&fs), ["", "a", "a-b", "a/b", "a/z", "b"]);
    assert_eq!(fs.len(), 6);
}

/// The layer writer's own output (ustar prefix splits, PAX records for
/// long link targets and large ids), compressed by its own encoder, as a
/// base built by gantry would come back.
#[test]
fn a_layer_written_and_compressed_by_gantry_indexes_through_uncompressed() {
    use crate::layer::compress::{CompressOptions, Encoder};
    use crate::layer::tar::{EntryHeader, EntryKind, TarWriter};
    use crate::media::Compression;

    let header = |path: &str, kind: EntryKind, uid: u64| EntryHeader {
        path: path.to_string(),
        kind,
        mode: 0o750,
        uid,
        gid: uid,
        uname: String::new(),
        gname: String::new(),
        mtime: 0,
    };
    let split = format!("{}/{}", "s".repeat(120), "f".repeat(60));
    let unsplittable = "u".repeat(180);
    let far = format!("/{}", "t".repeat(150));
    let mut w = TarWriter::new(Vec::new());
    w.append(&header("etc", EntryKind::Dir, 0), &mut io::empty())
        .unwrap();
    let data = b"olympia:x:9500:9500::/data/olympia:/bin/sh\n";
    let file = EntryKind::File {
        size: data.len() as u64,
    };
    w.append(&header("etc/passwd", file, 9500), &mut &data[..])
        .unwrap();
    for (path, uid) in [(split.as_str(), 1 << 40), (unsplittable.as_str(), 0)] {
        w.append(
            &header(path, EntryKind::File { size: 1 }, uid),
            &mut &b"z"[..],
        )
        .unwrap();
    }
    let link = EntryKind::Symlink {
        target: far.clone(),
    };
    w.append(&header("link", link, 0), &mut io::empty())
        .unwrap();
    let plain = w.finish().unwrap();
    let diff_id = Digest::of(&plain);

    for compression in [Compression::None, Compression::Gzip, Compression::Zstd] {
        let opts = CompressOptions {
            compression,
            level: compression.default_level(),
            threads: 1,
        };
        let mut enc = Encoder::new(opts, Vec::new()).unwrap();
        std::io::Write::write_all(&mut enc, &plain).unwrap();
        let blob = enc.finish().unwrap();
        let stream = uncompressed(compression, &blob[..]).unwrap();
        let index = LayerIndex::build(stream, &diff_id).unwrap();
        let fs = RootFs::new([&index]);
        let e = &fs.lookup(&split).unwrap().entry;
        assert_eq!((e.uid, e.mode), (1 << 40, 0o750), "{compression:?}");
        assert!(fs.lookup(&unsplittable).is_some(), "{compression:?}");
        let l = &fs.lookup("/link").unwrap().entry;
        assert_eq!(l.link.as_deref(), Some(far.as_str()));
        let mut open = |_| {
            uncompressed(compression, Cursor::new(blob.clone()))
                .map_err(|e| crate::Error::io("blob", e))
        };
        let got = fs.read_file("/etc/passwd", 1024, &mut open).unwrap();
        assert_eq!(got.as_deref(), Some(&data[..]), "{compression:?}");
    }
}

/// A layer made by the system's GNU tar from a busybox-static tree, in the
/// two formats base images are found in.
#[test]
fn a_busybox_layer_written_by_gnu_tar_indexes_and_reads_back() {
    let busybox = std::path::Path::new("/bin/busybox");
    let has_tar = std::process::Command::new("tar")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !busybox.exists() || !has_tar {
        eprintln!("skipped: needs /bin/busybox and GNU tar");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir_all(root.join("bin")).unwrap();
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::copy(busybox, root.join("bin/busybox")).unwrap();
    std::fs::hard_link(root.join("bin/busybox"), root.join("bin/sh")).unwrap();
    std::os::unix::fs::symlink("busybox", root.join("bin/ls")).unwrap();
    let passwd = b"root:x:0:0:root:/root:/bin/sh\n";
    std::fs::write(root.join("etc/passwd"), passwd).unwrap();
    let deep = format!("etc/{}", "n".repeat(150));
    std::fs::write(root.join(&deep), b"deep").unwrap();
    let want = std::fs::read(busybox).unwrap();
    for format in ["gnu", "posix"] {
        let out = std::process::Command::new("tar")
            .args(["--format", format, "--numeric-owner", "-C"])
            .arg(&root)
            .args(["-cf", "-", "."])
            .output()
            .unwrap();
        assert!(out.status.success(), "{format}");
        let layers = [out.stdout];
        let fs = RootFs::new([&index_of(&layers[0])]);
        // Which of the two names is the link depends on directory order.
        let mut kinds = ["bin/sh", "bin/busybox"].map(|p| fs.lookup(p).unwrap().entry.kind);
        kinds.sort_by_key(|k| *k == Kind::Hardlink);
        assert_eq!(kinds, [Kind::File, Kind::Hardlink], "{format}");
        assert_eq!(
            fs.lookup("./bin/ls").unwrap().entry.link.as_deref(),
            Some("busybox")
        );
        assert!(
            !fs.lookup("/").unwrap().implied,
            "{format}: ./ is the root entry"
        );
        let calls = Cell::new(0);
        let got = fs.read_file("/etc/passwd", 1024, opener(&layers, &calls));
        assert_eq!(got.unwrap().as_deref(), Some(&passwd[..]), "{format}");
        let got = fs.read_file(&deep, 1024, opener(&layers, &calls));
        assert_eq!(got.unwrap().as_deref(), Some(&b"deep"[..]), "{format}");
        for p in ["/bin/sh", "/bin/busybox", "/bin/ls"] {
            let got = fs.read_file(p, 64 << 20, opener(&layers, &calls)).unwrap();
            assert!(got.as_deref() == Some(&want[..]), "{format}: {p}");
        }
    }
}
