//! Helpers shared by the fuzz targets.
//!
//! Documents that name each other by digest (an index naming a manifest, a
//! manifest naming its config, a layout naming its blobs) are out of reach
//! of a byte-level mutator: one changed byte breaks every digest. The
//! targets that read such documents therefore take several parts and let a
//! part refer to an earlier one with a token the harness replaces:
//!
//! - `$Dn`: `sha256:<hex>` of part n (0-based),
//! - `$Hn`: the bare hex of part n,
//! - `$Sn`: the size of part n in bytes, in decimal.
//!
//! Parts are resolved in order, so a token names a part already resolved;
//! a token naming a later part, or none, is left as written.

use gantry::Digest;

/// Replaces the tokens of `text` with the digests and sizes of `done`.
pub fn substitute(text: &[u8], done: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        if text[i] == b'$' && i + 1 < text.len() {
            let kind = text[i + 1];
            let digits = text[i + 2..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
                .min(3);
            if matches!(kind, b'D' | b'H' | b'S') && digits > 0 {
                let n: usize = std::str::from_utf8(&text[i + 2..i + 2 + digits])
                    .unwrap()
                    .parse()
                    .unwrap();
                if let Some(part) = done.get(n) {
                    let value = match kind {
                        b'D' => Digest::of(part).to_string(),
                        b'H' => Digest::of(part).hex(),
                        _ => part.len().to_string(),
                    };
                    out.extend_from_slice(value.as_bytes());
                    i += 2 + digits;
                    continue;
                }
            }
        }
        out.push(text[i]);
        i += 1;
    }
    out
}

/// Splits `data` at NUL bytes (which JSON text never holds) and resolves
/// each part's tokens against the parts before it.
pub fn resolve_parts(data: &[u8]) -> Vec<Vec<u8>> {
    let mut done: Vec<Vec<u8>> = Vec::new();
    for raw in data.split(|&b| b == 0) {
        let part = substitute(raw, &done);
        done.push(part);
    }
    done
}

/// Writes `archive` to a temp file and reads it every way gantry does:
/// `inspect` (index first, then the image), and an import into a temp store
/// as both kinds of local base. Only panics, hangs and runaway memory are
/// failures; errors are the expected outcome for most inputs.
pub fn read_archive(archive: &[u8], select: Option<&str>) {
    use gantry::buildfile::LocalSource;
    use gantry::layout::read;
    use gantry::platform::Platform;
    use gantry::store::Store;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("image.tar");
    std::fs::write(&path, archive).unwrap();
    let amd64 = Platform::parse("linux/amd64").unwrap();
    let _ = gantry::inspect::inspect_any(&path, select, None);
    let _ = gantry::inspect::inspect_any(&path, select, Some(&amd64));
    let store = Store::open(dir.path().join("store")).unwrap();
    let tag = select.map(str::to_string);
    for source in [
        LocalSource::OciLayout {
            path: path.clone(),
            tag: tag.clone(),
        },
        LocalSource::DockerArchive {
            path: path.clone(),
            tag,
        },
    ] {
        if let Ok(image) = read::import(&source, &store) {
            // What was imported is what the store holds, verified.
            for layer in &image.layers {
                assert!(
                    store.has(&layer.digest),
                    "layer {} not stored",
                    layer.digest
                );
            }
            assert!(store.has(&image.manifest_digest));
            assert!(store.has(&image.config_digest));
        }
    }
    let bad = store.verify().expect("store verifies");
    assert!(bad.is_empty(), "an import left bad blobs: {bad:?}");
}

/// Builds a tar archive from a small text script, so that the mutator works
/// on names, link targets, sizes and JSON rather than on tar checksums.
///
/// The script is a list of members, each a header line then its body:
///
/// ```text
/// =KIND[z][+N|-N] NAME[ -> LINK]
/// body bytes, up to the next line that starts with `=`
/// ```
///
/// KIND is `f` (file), `d` (directory), `l` (symlink), `h` (hard link), `c`
/// (character device), `p` (fifo) or `x` (a pax header, the body its
/// records). `z` gzips the body. `+N` / `-N` make the header claim N bytes
/// more or fewer than the body holds. NAME and LINK are written into the
/// header as they are (`..`, absolute paths and all), with a GNU long-name
/// member first when longer than the header holds. Bodies are resolved as
/// [`resolve_parts`] does, members numbered from 0; NAME and LINK may also
/// name the member's own body (`blobs/sha256/$H3` on member 3). A first line
/// `#select TEXT` gives the image to select.
pub fn build_tar(script: &[u8]) -> (Vec<u8>, Option<String>) {
    let mut select = None;
    let mut rest = script;
    if let Some(line) = rest.strip_prefix(b"#select ") {
        let end = line.iter().position(|&b| b == b'\n').unwrap_or(line.len());
        select = Some(String::from_utf8_lossy(&line[..end]).into_owned());
        rest = line.get(end + 1..).unwrap_or(&[]);
    }
    let mut members: Vec<&[u8]> = Vec::new();
    let mut start = None;
    for i in 0..rest.len() {
        if rest[i] == b'=' && (i == 0 || rest[i - 1] == b'\n') {
            if let Some(s) = start {
                members.push(&rest[s..i.saturating_sub(1).max(s)]);
            }
            start = Some(i + 1);
        }
    }
    if let Some(s) = start {
        members.push(&rest[s..]);
    }
    let mut out = Vec::new();
    let mut done: Vec<Vec<u8>> = Vec::new();
    for m in members {
        let (head, body) = match m.iter().position(|&b| b == b'\n') {
            Some(i) => (&m[..i], &m[i + 1..]),
            None => (m, &[][..]),
        };
        let (spec, names) = match head.iter().position(|&b| b == b' ') {
            Some(i) => (&head[..i], &head[i + 1..]),
            None => (head, &[][..]),
        };
        let Some((&kind, mut flags)) = spec.split_first() else {
            continue;
        };
        let mut body = substitute(body, &done);
        if let Some(f) = flags.strip_prefix(b"z") {
            body = gzip(&body);
            flags = f;
        }
        let lie: i64 = std::str::from_utf8(flags)
            .ok()
            .and_then(|f| f.parse().ok())
            .unwrap_or(0)
            .clamp(-(1 << 20), 1 << 20);
        done.push(body.clone());
        let names = substitute(names, &done);
        let (name, link) = match names.windows(4).position(|w| w == b" -> ") {
            Some(i) => (&names[..i], &names[i + 4..]),
            None => (&names[..], &[][..]),
        };
        let entry_type = match kind {
            b'd' => tar::EntryType::Directory,
            b'l' => tar::EntryType::Symlink,
            b'h' => tar::EntryType::Link,
            b'c' => tar::EntryType::Char,
            b'p' => tar::EntryType::Fifo,
            b'x' => tar::EntryType::XHeader,
            _ => tar::EntryType::Regular,
        };
        if name.len() > 100 {
            push_member(
                &mut out,
                b"././@LongLink",
                b"",
                tar::EntryType::GNULongName,
                name,
                0,
            );
        }
        if link.len() > 100 {
            push_member(
                &mut out,
                b"././@LongLink",
                b"",
                tar::EntryType::GNULongLink,
                link,
                0,
            );
        }
        push_member(&mut out, name, link, entry_type, &body, lie);
    }
    out.extend_from_slice(&[0u8; 1024]);
    (out, select)
}

fn push_member(
    out: &mut Vec<u8>,
    name: &[u8],
    link: &[u8],
    entry_type: tar::EntryType,
    body: &[u8],
    lie: i64,
) {
    let mut h = tar::Header::new_gnu();
    {
        let gnu = h.as_gnu_mut().unwrap();
        let n = name.len().min(gnu.name.len());
        gnu.name[..n].copy_from_slice(&name[..n]);
        let l = link.len().min(gnu.linkname.len());
        gnu.linkname[..l].copy_from_slice(&link[..l]);
    }
    h.set_entry_type(entry_type);
    h.set_mode(if entry_type.is_dir() { 0o755 } else { 0o644 });
    h.set_mtime(0);
    h.set_size((body.len() as i64 + lie).max(0) as u64);
    h.set_cksum();
    out.extend_from_slice(h.as_bytes());
    out.extend_from_slice(body);
    let pad = (512 - body.len() % 512) % 512;
    out.extend(std::iter::repeat_n(0u8, pad));
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}
