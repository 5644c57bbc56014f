//! A tar header reader that keeps only headers. It reads every byte once and
//! holds no file data: extension records (PAX, GNU long names) are the only
//! data it keeps, and those are capped, so a hostile layer cannot make it
//! allocate. Data offsets are counted here rather than taken from a tar
//! library, because they are what lets one file be read back later.

use std::io::{self, Read};

use crate::digest::{Digest, HashingReader};

const BLOCK: u64 = 512;

/// Largest PAX or GNU long-name record kept; real ones are a path or two.
pub(super) const MAX_EXTENSION: u64 = 1 << 20;

/// One member of the archive, with its extension headers applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct RawHeader {
    pub name: Vec<u8>,
    pub link: Vec<u8>,
    pub typeflag: u8,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    /// The file's size; for a sparse file, its size once expanded.
    pub size: u64,
    /// Where the member's data starts in the stream.
    pub offset: u64,
    /// The data is a GNU sparse map, not the file's bytes in one run.
    pub sparse: bool,
}

/// Why the stream is not a tar archive, with the byte offset of the header.
#[derive(Debug)]
pub(super) enum ReadError {
    Io(io::Error),
    Format { at: u64, message: String },
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        ReadError::Io(e)
    }
}

fn bad(at: u64, message: impl Into<String>) -> ReadError {
    ReadError::Format {
        at,
        message: message.into(),
    }
}

/// One PAX record: key and value, as bytes.
type PaxRecord = (Vec<u8>, Vec<u8>);

/// The extension records waiting for the member they describe.
#[derive(Default)]
struct Pending {
    long_name: Option<Vec<u8>>,
    long_link: Option<Vec<u8>>,
    pax: Vec<PaxRecord>,
}

impl Pending {
    fn pax(&self, key: &[u8]) -> Option<&[u8]> {
        // A later record for the same key wins, as in every reader.
        self.pax
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_slice())
    }
}

/// Reads the archive to its end (and the stream past it, which the diff_id
/// covers), calling `each` per member. Returns the stream's digest.
pub(super) fn read_headers<R: Read>(
    reader: R,
    mut each: impl FnMut(RawHeader),
) -> Result<Digest, ReadError> {
    let mut r = HashingReader::new(reader);
    let mut pos = 0u64;
    let mut pending = Pending::default();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut block = [0u8; BLOCK as usize];
        let at = pos;
        match read_block(&mut r, &mut block)? {
            Block::Eof if pending_is_empty(&pending) => break,
            Block::Eof => return Err(bad(at, "extension header with no member after it")),
            Block::Short => return Err(bad(at, "the stream ends inside a header")),
            Block::Full => {}
        }
        pos += BLOCK;
        if block.iter().all(|&b| b == 0) {
            if !pending_is_empty(&pending) {
                return Err(bad(at, "extension header with no member after it"));
            }
            break;
        }
        check_sum(&block).map_err(|m| bad(at, m))?;
        let typeflag = block[156];
        let stored = numeric(&block[124..136]).map_err(|m| bad(at, format!("size: {m}")))?;
        match typeflag {
            b'x' | b'L' | b'K' => {
                let data = read_extension(&mut r, stored, at)?;
                pos += padded(stored);
                match typeflag {
                    b'x' => pending
                        .pax
                        .extend(parse_pax(&data).map_err(|m| bad(at, m))?),
                    b'L' => pending.long_name = Some(until_nul(&data)),
                    _ => pending.long_link = Some(until_nul(&data)),
                }
                continue;
            }
            // Global records set defaults nothing here needs.
            b'g' => {
                skip(&mut r, padded(stored), &mut buf, at)?;
                pos += padded(stored);
                continue;
            }
            _ => {}
        }
        let mut header = member(&block, &pending, typeflag).map_err(|m| bad(at, m))?;
        if typeflag == b'S' && block[482] != 0 {
            // Old GNU sparse maps continue in blocks before the data.
            loop {
                let mut ext = [0u8; BLOCK as usize];
                if !matches!(read_block(&mut r, &mut ext)?, Block::Full) {
                    return Err(bad(at, "the stream ends inside a sparse map"));
                }
                pos += BLOCK;
                if ext[504] == 0 {
                    break;
                }
            }
        }
        let data_len = match pending.pax(b"size") {
            Some(v) => decimal(v).ok_or_else(|| bad(at, "PAX size is not a number"))?,
            None => stored,
        };
        header.offset = pos;
        skip(&mut r, data_len, &mut buf, at)?;
        // Some writers (umoci 0.4) end the stream right after the last
        // member's data, with neither its padding nor the end marker; the
        // member is whole, so that is read as the end of the archive.
        let pad = padded(data_len) - data_len;
        let ended = skip_up_to(&mut r, pad, &mut buf)? < pad;
        pos += padded(data_len);
        pending = Pending::default();
        each(header);
        if ended {
            break;
        }
    }
    // Whatever follows the end marker (padding to a record) is hashed too.
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(r.finish().0)
}

fn pending_is_empty(p: &Pending) -> bool {
    p.long_name.is_none() && p.long_link.is_none() && p.pax.is_empty()
}

/// The member a header block describes, with the pending extension records.
fn member(
    block: &[u8; BLOCK as usize],
    pending: &Pending,
    typeflag: u8,
) -> Result<RawHeader, String> {
    let posix = &block[257..263] == b"ustar\0";
    let mut name = if let Some(p) = pending
        .pax(b"GNU.sparse.name")
        .or_else(|| pending.pax(b"path"))
    {
        p.to_vec()
    } else if let Some(n) = &pending.long_name {
        n.clone()
    } else {
        let short = until_nul(&block[..100]);
        let prefix = if posix {
            until_nul(&block[345..500])
        } else {
            Vec::new()
        };
        if prefix.is_empty() {
            short
        } else {
            let mut joined = prefix;
            joined.push(b'/');
            joined.extend_from_slice(&short);
            joined
        }
    };
    if name.is_empty() {
        return Err("member with an empty name".into());
    }
    let link = match (pending.pax(b"linkpath"), &pending.long_link) {
        (Some(l), _) => l.to_vec(),
        (None, Some(l)) => l.clone(),
        (None, None) => until_nul(&block[157..257]),
    };
    let number = |key: &[u8], field: &[u8], what: &str| -> Result<u64, String> {
        match pending.pax(key) {
            Some(v) => decimal(v).ok_or_else(|| format!("PAX {what} is not a number")),
            None => numeric(field).map_err(|m| format!("{what}: {m}")),
        }
    };
    let mode = numeric(&block[100..108]).map_err(|m| format!("mode: {m}"))?;
    let uid = number(b"uid", &block[108..116], "uid")?;
    let gid = number(b"gid", &block[116..124], "gid")?;
    let mut size = number(b"size", &block[124..136], "size")?;
    let mut sparse = false;
    if typeflag == b'S' {
        sparse = true;
        size = numeric(&block[483..495]).map_err(|m| format!("sparse size: {m}"))?;
    } else if pending
        .pax
        .iter()
        .any(|(k, _)| k.starts_with(b"GNU.sparse."))
    {
        sparse = true;
        if let Some(v) = pending
            .pax(b"GNU.sparse.realsize")
            .or_else(|| pending.pax(b"GNU.sparse.size"))
        {
            size = decimal(v).ok_or("PAX sparse size is not a number")?;
        }
    }
    // Old archives mark directories only by a trailing slash.
    let typeflag = if matches!(typeflag, b'0' | 0) && name.ends_with(b"/") {
        b'5'
    } else {
        typeflag
    };
    while name.len() > 1 && name.ends_with(b"/") {
        name.pop();
    }
    Ok(RawHeader {
        name,
        link,
        typeflag,
        mode: (mode & 0o7777) as u32,
        uid,
        gid,
        size,
        offset: 0,
        sparse,
    })
}

enum Block {
    Full,
    Eof,
    Short,
}

fn read_block(r: &mut impl Read, block: &mut [u8]) -> io::Result<Block> {
    let mut filled = 0;
    while filled < block.len() {
        match r.read(&mut block[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(match filled {
        0 => Block::Eof,
        n if n == block.len() => Block::Full,
        _ => Block::Short,
    })
}

fn skip(r: &mut impl Read, mut len: u64, buf: &mut [u8], at: u64) -> Result<(), ReadError> {
    while len > 0 {
        let want = usize::try_from(len).map_or(buf.len(), |l| l.min(buf.len()));
        match r.read(&mut buf[..want]) {
            Ok(0) => return Err(bad(at, "the stream ends inside a member's data")),
            Ok(n) => len -= n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

/// Skips at most `len` bytes; how many there were before the stream ended.
fn skip_up_to(r: &mut impl Read, len: u64, buf: &mut [u8]) -> io::Result<u64> {
    let mut done = 0;
    while done < len {
        let want = usize::try_from(len - done).map_or(buf.len(), |l| l.min(buf.len()));
        match r.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => done += n as u64,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn read_extension(r: &mut impl Read, len: u64, at: u64) -> Result<Vec<u8>, ReadError> {
    if len > MAX_EXTENSION {
        return Err(bad(
            at,
            format!("extension header of {len} bytes (at most {MAX_EXTENSION} are read)"),
        ));
    }
    // Bounded by the check above, so the cast cannot truncate.
    let mut data = vec![0u8; padded(len) as usize];
    match read_block(r, &mut data)? {
        Block::Full => {}
        _ if data.is_empty() => {}
        _ => return Err(bad(at, "the stream ends inside an extension header")),
    }
    data.truncate(len as usize);
    Ok(data)
}

fn padded(len: u64) -> u64 {
    len.div_ceil(BLOCK) * BLOCK
}

fn until_nul(field: &[u8]) -> Vec<u8> {
    let end = field.iter().position(|&b| b == 0).unwrap_or(field.len());
    field[..end].to_vec()
}

/// A numeric field: octal text (space or NUL padded), or GNU base-256 when
/// the high bit of its first byte is set.
fn numeric(field: &[u8]) -> Result<u64, String> {
    if let Some((&first, rest)) = field.split_first() {
        if first & 0x80 != 0 {
            if first == 0xff {
                return Err("negative base-256 number".into());
            }
            let mut v = u64::from(first & 0x7f);
            for &b in rest {
                v = v
                    .checked_mul(256)
                    .and_then(|v| v.checked_add(u64::from(b)))
                    .ok_or("base-256 number out of range")?;
            }
            return Ok(v);
        }
    }
    let text: &[u8] = {
        let start = field
            .iter()
            .position(|&b| b != b' ' && b != 0)
            .unwrap_or(field.len());
        let end = field[start..]
            .iter()
            .position(|&b| b == b' ' || b == 0)
            .map_or(field.len(), |e| start + e);
        if field[end..].iter().any(|&b| b != b' ' && b != 0) {
            return Err("not an octal number".into());
        }
        &field[start..end]
    };
    let mut v = 0u64;
    for &b in text {
        if !(b'0'..=b'7').contains(&b) {
            return Err("not an octal number".into());
        }
        v = v
            .checked_mul(8)
            .and_then(|v| v.checked_add(u64::from(b - b'0')))
            .ok_or("octal number out of range")?;
    }
    Ok(v)
}

fn decimal(v: &[u8]) -> Option<u64> {
    if v.is_empty() || !v.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(v).ok()?.parse().ok()
}

/// The header checksum, taken as unsigned bytes (POSIX) or signed ones (what
/// some old writers computed).
fn check_sum(block: &[u8; BLOCK as usize]) -> Result<(), String> {
    let stored = numeric(&block[148..156]).map_err(|m| format!("checksum: {m}"))?;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if (148..156).contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if stored == unsigned || i64::try_from(stored).is_ok_and(|s| s == signed) {
        Ok(())
    } else {
        Err("header checksum does not match".into())
    }
}

/// PAX records: `LEN KEY=VALUE\n`, LEN counting the whole record.
fn parse_pax(data: &[u8]) -> Result<Vec<PaxRecord>, String> {
    let mut out = Vec::new();
    let mut rest = data;
    while !rest.is_empty() {
        // Writers pad the last block with NULs after the records.
        if rest.iter().all(|&b| b == 0) {
            break;
        }
        let space = rest
            .iter()
            .position(|&b| b == b' ')
            .ok_or("malformed PAX record")?;
        let len = decimal(&rest[..space])
            .and_then(|l| usize::try_from(l).ok())
            .filter(|&l| l > space + 1 && l <= rest.len())
            .ok_or("malformed PAX record length")?;
        let record = &rest[space + 1..len];
        let record = record
            .strip_suffix(b"\n")
            .ok_or("PAX record without its newline")?;
        let eq = record
            .iter()
            .position(|&b| b == b'=')
            .ok_or("PAX record without '='")?;
        out.push((record[..eq].to_vec(), record[eq + 1..].to_vec()));
        rest = &rest[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_fields_take_octal_with_padding_and_base_256() {
        assert_eq!(numeric(b"0000644\0"), Ok(0o644));
        assert_eq!(numeric(b"   644 \0"), Ok(0o644));
        assert_eq!(numeric(b"\0\0\0\0\0\0\0\0"), Ok(0));
        assert_eq!(numeric(&[0x80, 0, 0, 0, 0, 0, 1, 0]), Ok(256));
        assert!(numeric(b"0000694\0").is_err());
        assert!(numeric(b"12 34\0\0\0").is_err());
        assert!(numeric(&[0xff; 8]).is_err());
    }

    #[test]
    fn pax_records_are_split_by_their_lengths() {
        let recs = parse_pax(b"14 path=a/b=c\n11 uid=123\n\0\0").unwrap();
        assert_eq!(
            recs,
            vec![
                (b"path".to_vec(), b"a/b=c".to_vec()),
                (b"uid".to_vec(), b"123".to_vec())
            ]
        );
        assert!(parse_pax(b"99 path=x\n").is_err());
        assert!(parse_pax(b"9 pathx\n\n").is_err());
    }
}
