//! Tests of `tar`, kept apart so the module reads as one concept.

use super::*;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::process::Command;

fn file(path: &str, size: u64) -> EntryHeader {
    EntryHeader {
        path: path.into(),
        kind: EntryKind::File { size },
        mode: 0o644,
        uid: 0,
        gid: 0,
        uname: String::new(),
        gname: String::new(),
        mtime: 1_700_000_000,
    }
}

fn dir(path: &str) -> EntryHeader {
    EntryHeader {
        kind: EntryKind::Dir,
        mode: 0o755,
        ..file(path, 0)
    }
}

fn symlink(path: &str, target: &str) -> EntryHeader {
    EntryHeader {
        kind: EntryKind::Symlink {
            target: target.into(),
        },
        mode: 0o777,
        ..file(path, 0)
    }
}

/// Builds an archive from entries; file contents are given alongside.
fn archive(entries: &[(EntryHeader, &[u8])]) -> Vec<u8> {
    let mut w = TarWriter::new(Vec::new());
    for (h, data) in entries {
        w.append(h, &mut &data[..]).unwrap();
    }
    w.finish().unwrap()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

fn header_block(bytes: &[u8], index: usize) -> &[u8] {
    &bytes[index * BLOCK_SIZE..(index + 1) * BLOCK_SIZE]
}

/// Long path (>255 bytes), long symlink target, big uid/gid, long
/// owner names: every field that needs a PAX record.
fn pax_entries() -> Vec<(EntryHeader, Vec<u8>)> {
    let long_dir = format!("{}/{}", "d".repeat(120), "e".repeat(140));
    let long_file = format!("{long_dir}/{}", "f".repeat(90));
    assert!(long_file.len() > 255);
    let long_target = format!("../{}", "t/".repeat(80)) + "end";
    vec![
        (dir(&"d".repeat(120)), vec![]),
        (dir(&long_dir), vec![]),
        (file(&long_file, 5), b"hello".to_vec()),
        (symlink("link", &long_target), vec![]),
        (
            EntryHeader {
                uid: 3_000_000,
                gid: 4_000_000,
                ..file("bigid", 3)
            },
            b"abc".to_vec(),
        ),
        (
            EntryHeader {
                uname: "u".repeat(40),
                gname: "g".repeat(33),
                uid: 1000,
                gid: 1000,
                ..file("longowner", 0)
            },
            vec![],
        ),
    ]
}

fn pax_archive() -> Vec<u8> {
    let entries = pax_entries();
    let borrowed: Vec<(EntryHeader, &[u8])> = entries
        .iter()
        .map(|(h, d)| (h.clone(), d.as_slice()))
        .collect();
    archive(&borrowed)
}

/// The entries of the pinned archive, followed by `extra`.
fn tiny_archive_with(extra: &[(EntryHeader, &[u8])]) -> Vec<u8> {
    let mut entries: Vec<(EntryHeader, &[u8])> = vec![
        (dir("etc"), b""),
        (
            EntryHeader {
                uid: 1000,
                gid: 1000,
                uname: "app".into(),
                gname: "app".into(),
                ..file("etc/hello.txt", 6)
            },
            b"hello\n",
        ),
        (symlink("etc/link", "hello.txt"), b""),
    ];
    entries.extend_from_slice(extra);
    archive(&entries)
}

#[test]
fn tiny_archive_bytes_are_pinned() {
    let bytes = tiny_archive_with(&[]);
    assert_eq!(bytes.len(), 6 * BLOCK_SIZE);
    assert_eq!(
        sha256_hex(&bytes),
        "06b4abdd96ab5b18c24b8a4bb15ceb9c0988fc00a3328dd96f211d507aef2ce4",
        "tar header bytes changed"
    );
}

/// Python's tarfile in USTAR mode writes the same field encodings except
/// `devmajor`/`devminor`, which it leaves as NULs for non-device entries;
/// those two fields (and so the checksum) are rewritten the way GNU tar
/// and Go's archive/tar write them before comparing.
#[test]
fn python_ustar_headers_match_byte_for_byte() {
    if !have("python3") {
        eprintln!("skipped: python3 not found");
        return;
    }
    let script = r#"
import io, sys, tarfile
buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w", format=tarfile.USTAR_FORMAT) as t:
    def add(name, typ, mode, uid=0, gid=0, uname="", gname="", data=b"", link=""):
        ti = tarfile.TarInfo(name)
        ti.type, ti.mode, ti.uid, ti.gid = typ, mode, uid, gid
        ti.uname, ti.gname, ti.mtime, ti.size, ti.linkname = uname, gname, 1700000000, len(data), link
        t.addfile(ti, io.BytesIO(data) if typ == tarfile.REGTYPE else None)
    add("etc", tarfile.DIRTYPE, 0o755)
    add("etc/hello.txt", tarfile.REGTYPE, 0o644, 1000, 1000, "app", "app", b"hello\n")
    add("etc/link", tarfile.SYMTYPE, 0o777, link="hello.txt")
    add("p" * 60 + "/" + "q" * 60 + "/" + "n" * 90, tarfile.REGTYPE, 0o4755, 7, 8, "u" * 31, "g")
b = bytearray(buf.getvalue())
for off in range(0, len(b), 512):
    h = b[off:off + 512]
    if h[257:263] != b"ustar\0":
        continue
    h[329:345] = b"0000000\0" * 2
    h[148:156] = b" " * 8
    h[148:156] = b"%06o\0 " % sum(h)
    b[off:off + 512] = h
sys.stdout.buffer.write(bytes(b))
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let ours = tiny_archive_with(&[(
        EntryHeader {
            mode: 0o4755,
            uid: 7,
            gid: 8,
            uname: "u".repeat(31),
            gname: "g".into(),
            ..file(
                &format!("{}/{}/{}", "p".repeat(60), "q".repeat(60), "n".repeat(90)),
                0,
            )
        },
        b"",
    )]);
    let theirs = output.stdout;
    // Python pads the archive to a 10 KiB record; the extra bytes are zeros.
    assert!(theirs.len() >= ours.len());
    assert!(theirs[ours.len()..].iter().all(|&b| b == 0));
    assert_eq!(&theirs[..ours.len()], &ours[..]);
}

#[test]
fn header_fields_are_laid_out_exactly() {
    let bytes = archive(&[(file("a", 1), b"x")]);
    let h = header_block(&bytes, 0);
    assert_eq!(&h[0..2], b"a\0");
    assert_eq!(&h[100..108], b"0000644\0");
    assert_eq!(&h[108..116], b"0000000\0");
    assert_eq!(&h[116..124], b"0000000\0");
    assert_eq!(&h[124..136], b"00000000001\0");
    assert_eq!(&h[136..148], format!("{:011o}\0", 1_700_000_000).as_bytes());
    assert_eq!(h[156], b'0');
    assert_eq!(&h[257..263], b"ustar\0");
    assert_eq!(&h[263..265], b"00");
    assert_eq!(&h[329..337], b"0000000\0");
    assert_eq!(&h[337..345], b"0000000\0");
    assert!(h[345..].iter().all(|&b| b == 0));

    let mut copy = h.to_vec();
    copy[148..156].fill(b' ');
    let sum: u32 = copy.iter().map(|&b| u32::from(b)).sum();
    assert_eq!(&h[148..156], format!("{sum:06o}\0 ").as_bytes());

    assert_eq!(&bytes[BLOCK_SIZE..BLOCK_SIZE + 1], b"x");
    assert!(bytes[BLOCK_SIZE + 1..].iter().all(|&b| b == 0));
}

#[test]
fn finish_writes_exactly_two_zero_blocks() {
    let empty = TarWriter::new(Vec::new()).finish().unwrap();
    assert_eq!(empty, vec![0u8; 2 * BLOCK_SIZE]);
    let one = archive(&[(file("f", 513), &[7u8; 513])]);
    assert_eq!(one.len(), BLOCK_SIZE + 2 * BLOCK_SIZE + 2 * BLOCK_SIZE);
}

#[test]
fn directory_gets_trailing_slash_and_typeflag_5() {
    let bytes = archive(&[(dir("usr/lib"), b"")]);
    let h = header_block(&bytes, 0);
    assert_eq!(&h[0..9], b"usr/lib/\0");
    assert_eq!(h[156], b'5');
    assert_eq!(&h[124..136], b"00000000000\0");
}

#[test]
fn symlink_has_typeflag_2_and_linkname() {
    let bytes = archive(&[(symlink("bin/sh", "busybox"), b"")]);
    let h = header_block(&bytes, 0);
    assert_eq!(h[156], b'2');
    assert_eq!(&h[157..165], b"busybox\0");
    assert_eq!(&h[124..136], b"00000000000\0");
}

#[test]
fn medium_path_uses_ustar_prefix_not_pax() {
    let d = "p".repeat(60);
    let path = format!("{d}/{d}/{}", "n".repeat(90));
    let bytes = archive(&[(file(&path, 0), b"")]);
    assert_eq!(bytes.len(), 3 * BLOCK_SIZE, "no PAX header expected");
    let h = header_block(&bytes, 0);
    // The shortest prefix that leaves at most 100 bytes for the name.
    let name = "n".repeat(90);
    let prefix = format!("{d}/{d}");
    assert_eq!(&h[..name.len()], name.as_bytes());
    assert_eq!(h[name.len()], 0);
    assert_eq!(&h[345..345 + prefix.len()], prefix.as_bytes());
    assert_eq!(h[345 + prefix.len()], 0);

    let mut ar = ::tar::Archive::new(&bytes[..]);
    let entry = ar.entries().unwrap().next().unwrap().unwrap();
    assert_eq!(entry.path().unwrap(), Path::new(&path));
}

#[test]
fn name_of_exactly_100_bytes_fills_field_without_pax() {
    let path = "x".repeat(100);
    let bytes = archive(&[(file(&path, 0), b"")]);
    assert_eq!(bytes.len(), 3 * BLOCK_SIZE);
    assert_eq!(&header_block(&bytes, 0)[..100], path.as_bytes());
}

#[test]
fn no_pax_header_when_everything_fits() {
    let bytes = archive(&[
        (
            EntryHeader {
                uid: MAX_OCTAL_7,
                gid: MAX_OCTAL_7,
                uname: "u".repeat(31),
                gname: "g".repeat(31),
                mtime: MAX_OCTAL_11,
                ..file("f", 0)
            },
            b"",
        ),
        (symlink("l", &"t".repeat(100)), b""),
    ]);
    assert_eq!(bytes.len(), 4 * BLOCK_SIZE);
    assert!(bytes.chunks(BLOCK_SIZE).all(|b| b[156] != b'x'));
}

/// POSIX requires a NUL after `uname`/`gname`, so a 32-byte name does
/// not fit the 32-byte field (Python's tarfile would write it unterminated
/// and GNU tar truncates it).
#[test]
fn owner_name_of_32_bytes_goes_to_pax() {
    let uname = "u".repeat(32);
    let bytes = archive(&[(
        EntryHeader {
            uname: uname.clone(),
            ..file("f", 0)
        },
        b"",
    )]);
    assert_eq!(header_block(&bytes, 0)[156], b'x');
    let record = format!("42 uname={uname}\n");
    assert_eq!(
        &bytes[BLOCK_SIZE..BLOCK_SIZE + record.len()],
        record.as_bytes()
    );
    let ustar = header_block(&bytes, 2);
    assert_eq!(&ustar[265..296], &uname.as_bytes()[..31]);
    assert_eq!(ustar[296], 0);
}

#[test]
fn pax_record_length_counts_its_own_digits() {
    assert_eq!(pax_record("path", "abc"), b"12 path=abc\n");
    // 1+4+1+v+1 = 97 with v=90: 97+2 = 99 fits in two digits.
    let r = pax_record("path", &"a".repeat(90));
    assert!(r.starts_with(b"99 path="));
    assert_eq!(r.len(), 99);
    // v=91: 98+2 = 100 needs three digits, so the length is 101.
    let r = pax_record("path", &"a".repeat(91));
    assert!(r.starts_with(b"101 path="));
    assert_eq!(r.len(), 101);
    let r = pax_record("path", &"a".repeat(92));
    assert!(r.starts_with(b"102 path="));
    assert_eq!(r.len(), 102);
    // v=2: 1+4+1+2+1 = 9, plus one digit is 10, which has two digits.
    let r = pax_record("path", "ab");
    assert_eq!(r, b"11 path=ab\n");
}

#[test]
fn pax_header_is_fixed_and_records_sorted() {
    let bytes = archive(&[(
        EntryHeader {
            uid: 3_000_000,
            gid: 3_000_001,
            uname: "u".repeat(40),
            gname: "g".repeat(40),
            ..file("z/".repeat(200).trim_end_matches('/'), 0)
        },
        b"",
    )]);
    let h = header_block(&bytes, 0);
    assert_eq!(&h[..PAX_HEADER_NAME.len() + 1], b"././@PaxHeader\0");
    assert_eq!(h[156], b'x');
    assert_eq!(&h[100..108], b"0000644\0");
    assert_eq!(&h[108..124], b"0000000\x000000000\x00");
    assert_eq!(&h[136..148], format!("{:011o}\0", 1_700_000_000).as_bytes());
    let size = usize::from_str_radix(std::str::from_utf8(&h[124..135]).unwrap(), 8).unwrap();
    let data = &bytes[BLOCK_SIZE..BLOCK_SIZE + size];
    let text = std::str::from_utf8(data).unwrap();
    let keys: Vec<&str> = text
        .lines()
        .map(|l| l.split_once(' ').unwrap().1.split_once('=').unwrap().0)
        .collect();
    assert_eq!(keys, ["gid", "gname", "path", "uid", "uname"]);
    for line in text.split_inclusive('\n') {
        let (len, _) = line.split_once(' ').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), line.len());
    }

    let ustar = header_block(&bytes, 1 + size.div_ceil(BLOCK_SIZE));
    assert_eq!(ustar[156], b'0');
    assert_eq!(&ustar[108..124], b"0000000\x000000000\x00");
    assert_eq!(
        &ustar[265..297],
        "u".repeat(31)
            .as_bytes()
            .iter()
            .chain(&[0])
            .copied()
            .collect::<Vec<u8>>()
    );
}

#[test]
fn size_beyond_ustar_limit_uses_pax_size() {
    // Only the header is checked; no 8 GiB of data is produced.
    let size = MAX_OCTAL_11 + 1;
    let blocks = encode_header(&file("huge", size)).unwrap();
    assert_eq!(blocks.len(), 3 * BLOCK_SIZE);
    let record = format!("{} size={size}\n", 6 + size.to_string().len() + 3);
    assert_eq!(
        &blocks[BLOCK_SIZE..BLOCK_SIZE + record.len()],
        record.as_bytes()
    );
    assert_eq!(
        &blocks[2 * BLOCK_SIZE + 124..2 * BLOCK_SIZE + 136],
        b"00000000000\0"
    );
}

#[test]
fn mtime_beyond_ustar_limit_uses_pax_mtime() {
    let mtime = MAX_OCTAL_11 + 1;
    let bytes = archive(&[(
        EntryHeader {
            mtime,
            ..file("late", 0)
        },
        b"",
    )]);
    let mut ar = ::tar::Archive::new(&bytes[..]);
    let mut entry = ar.entries().unwrap().next().unwrap().unwrap();
    let pax: Vec<(String, String)> = entry
        .pax_extensions()
        .unwrap()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.key().unwrap().to_string(), e.value().unwrap().to_string())
        })
        .collect();
    assert_eq!(pax, [("mtime".to_string(), mtime.to_string())]);
    assert_eq!(entry.header().mtime().unwrap(), 0);
}

#[test]
fn file_that_shrank_is_an_error() {
    let mut w = TarWriter::new(Vec::new());
    let err = w.append(&file("f", 10), &mut &b"short"[..]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    assert!(err.to_string().contains("shrank while being read"), "{err}");
    assert!(err.to_string().contains("f:"), "{err}");
}

#[test]
fn file_that_grew_is_an_error() {
    let mut w = TarWriter::new(Vec::new());
    let err = w.append(&file("f", 3), &mut &b"longer"[..]).unwrap_err();
    assert!(err.to_string().contains("grew while being read"), "{err}");
}

#[test]
fn data_arriving_in_small_reads_is_copied_whole() {
    struct Trickle<'a>(&'a [u8]);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let n = buf.len().min(self.0.len()).min(3);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut w = TarWriter::new(Vec::new());
    w.append(&file("f", data.len() as u64), &mut Trickle(&data))
        .unwrap();
    let bytes = w.finish().unwrap();
    let mut ar = ::tar::Archive::new(&bytes[..]);
    let mut entry = ar.entries().unwrap().next().unwrap().unwrap();
    let mut got = Vec::new();
    entry.read_to_end(&mut got).unwrap();
    assert_eq!(got, data);
}

#[test]
fn invalid_headers_are_rejected() {
    let mut w = TarWriter::new(Vec::new());
    let cases = [
        EntryHeader {
            mode: 0o10000,
            ..file("f", 0)
        },
        file("", 0),
        file("/abs", 0),
        file("dir/", 0),
        file("a//b", 0),
        file("a/../b", 0),
        file("./a", 0),
        file("nul\0", 0),
        symlink("l", ""),
    ];
    for h in cases {
        let err = w.append(&h, &mut io::empty()).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput, "{h:?}");
    }
    assert!(
        w.get_mut().is_empty(),
        "nothing written for rejected entries"
    );
}

#[test]
fn tar_crate_reads_everything_back() {
    let entries = pax_entries();
    let bytes = pax_archive();
    let mut ar = ::tar::Archive::new(&bytes[..]);
    let mut seen = 0;
    for (entry, (want, data)) in ar.entries().unwrap().zip(&entries) {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        assert_eq!(path.trim_end_matches('/'), want.path);
        let mut pax = std::collections::BTreeMap::new();
        if let Some(exts) = entry.pax_extensions().unwrap() {
            for e in exts {
                let e = e.unwrap();
                pax.insert(e.key().unwrap().to_string(), e.value().unwrap().to_string());
            }
        }
        let uid = pax
            .get("uid")
            .map_or_else(|| entry.header().uid().unwrap(), |v| v.parse().unwrap());
        let gid = pax
            .get("gid")
            .map_or_else(|| entry.header().gid().unwrap(), |v| v.parse().unwrap());
        assert_eq!((uid, gid), (want.uid, want.gid));
        let uname = pax.get("uname").cloned().unwrap_or_else(|| {
            String::from_utf8(entry.header().username_bytes().unwrap().to_vec()).unwrap()
        });
        assert_eq!(uname, want.uname);
        assert_eq!(entry.header().mode().unwrap(), want.mode);
        assert_eq!(entry.header().mtime().unwrap(), want.mtime);
        match &want.kind {
            EntryKind::Dir => assert!(entry.header().entry_type().is_dir()),
            EntryKind::File { size } => {
                assert!(entry.header().entry_type().is_file());
                assert_eq!(entry.size(), *size);
                let mut got = Vec::new();
                entry.read_to_end(&mut got).unwrap();
                assert_eq!(&got, data);
            }
            EntryKind::Symlink { target } => {
                assert!(entry.header().entry_type().is_symlink());
                let link = entry.link_name().unwrap().unwrap();
                assert_eq!(link.to_str().unwrap(), target);
            }
        }
        seen += 1;
    }
    assert_eq!(seen, entries.len());
}

#[test]
fn python_tarfile_reads_pax_entries() {
    if !have("python3") {
        eprintln!("skipped: python3 not found");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("a.tar");
    std::fs::write(&path, pax_archive()).unwrap();
    let script = r#"
import json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], "r:") as t:
    for m in t.getmembers():
        data = t.extractfile(m).read().decode() if m.isfile() else None
        out.append([m.name, m.type.decode(), m.linkname, m.uid, m.gid,
                    m.uname, m.gname, m.size, m.mtime, m.mode, data])
print(json.dumps(out))
"#;
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let got: Vec<serde_json::Value> = serde_json::from_slice(&output.stdout).unwrap();
    let entries = pax_entries();
    assert_eq!(got.len(), entries.len());
    for (m, (want, data)) in got.iter().zip(&entries) {
        let (typ, link, size) = match &want.kind {
            EntryKind::File { size } => ("0", "", *size),
            EntryKind::Dir => ("5", "", 0),
            EntryKind::Symlink { target } => ("2", target.as_str(), 0),
        };
        let content = match want.kind {
            EntryKind::File { .. } => {
                serde_json::json!(String::from_utf8(data.clone()).unwrap())
            }
            _ => serde_json::Value::Null,
        };
        let expected = serde_json::json!([
            want.path, typ, link, want.uid, want.gid, want.uname, want.gname, size, want.mtime,
            want.mode, content
        ]);
        assert_eq!(m, &expected);
    }
}

#[test]
fn gnu_tar_lists_and_extracts() {
    if !have("tar") {
        eprintln!("skipped: tar not found");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let ar = tmp.path().join("a.tar");
    let mut entries: Vec<(EntryHeader, Vec<u8>)> = vec![
        (dir("etc"), vec![]),
        (
            EntryHeader {
                mode: 0o600,
                ..file("etc/secret", 4)
            },
            b"1234".to_vec(),
        ),
        (
            EntryHeader {
                mode: 0o755,
                ..file("etc/run.sh", 10)
            },
            b"#!/bin/sh\n".to_vec(),
        ),
        (symlink("etc/alias", "secret"), vec![]),
    ];
    entries.extend(pax_entries());
    let borrowed: Vec<(EntryHeader, &[u8])> = entries
        .iter()
        .map(|(h, d)| (h.clone(), d.as_slice()))
        .collect();
    std::fs::write(&ar, archive(&borrowed)).unwrap();

    let list = Command::new("tar")
        .args(["--numeric-owner", "-tvf"])
        .arg(&ar)
        .output()
        .unwrap();
    assert!(
        list.status.success(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert!(
        list.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&list.stderr)
    );
    let listing = String::from_utf8(list.stdout).unwrap();
    let lines: Vec<&str> = listing.lines().collect();
    assert_eq!(lines.len(), entries.len(), "{listing}");
    assert!(lines[0].starts_with("drwxr-xr-x 0/0"), "{listing}");
    assert!(lines[0].ends_with(" etc/"), "{listing}");
    assert!(lines[1].starts_with("-rw------- 0/0"), "{listing}");
    assert!(lines[3].ends_with("etc/alias -> secret"), "{listing}");
    assert!(listing.contains("3000000/4000000"), "{listing}");
    assert!(!listing.contains("PaxHeader"), "{listing}");

    let out = tmp.path().join("x");
    std::fs::create_dir(&out).unwrap();
    let status = Command::new("tar")
        .args(["--no-same-owner", "-xf"])
        .arg(&ar)
        .arg("-C")
        .arg(&out)
        .status()
        .unwrap();
    assert!(status.success());
    for (h, data) in &entries {
        let p = out.join(&h.path);
        match &h.kind {
            EntryKind::File { .. } => {
                assert_eq!(&std::fs::read(&p).unwrap(), data, "{}", h.path);
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&p).unwrap().permissions().mode();
                assert_eq!(mode & 0o7777, h.mode, "{}", h.path);
            }
            EntryKind::Dir => assert!(p.is_dir(), "{}", h.path),
            EntryKind::Symlink { target } => {
                assert_eq!(std::fs::read_link(&p).unwrap(), Path::new(target));
            }
        }
    }
}
