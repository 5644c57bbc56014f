//! Checking a downloaded cache hit against the diff_id its source claimed:
//! the blob is decompressed and its tar stream hashed.
//!
//! This is the cost a hit pays instead of compression, so gantry's own gzip
//! layers take a faster path: the recipe says they are 1 MiB blocks, each a
//! complete gzip member with one fixed 10-byte header, so the members can be
//! told apart without inflating them and decompressed in parallel by
//! libdeflate, then hashed in order. Anything else, or a blob on which that
//! path fails (another compressor's members, a header pattern met inside
//! compressed data), is decompressed as one stream, so the verdict never
//! depends on the fast path.

use std::io::{self, Read};

use libdeflater::Decompressor;

use crate::digest::{Digest, Hasher};
use crate::layer::compress::GZIP_BLOCK_SIZE;
use crate::media::Compression;

/// The header gantry writes on every gzip member.
const MEMBER_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];

/// Read at a time when looking for members.
const CHUNK: usize = 4 << 20;

/// The digest of the uncompressed stream of `blob` (read twice at most:
/// `open` gives it from the start), decompressed on up to `threads` threads.
pub fn diff_id(
    compression: Compression,
    open: impl Fn() -> io::Result<Box<dyn Read>>,
    threads: usize,
) -> io::Result<Digest> {
    if compression == Compression::Gzip {
        if let Some(d) = gzip_members(open()?, threads.max(1))? {
            return Ok(d);
        }
    }
    let mut plain = crate::rootfs::uncompressed(compression, open()?)?;
    let mut h = Hasher::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = plain.read(&mut buf)?;
        if n == 0 {
            return Ok(h.finish().0);
        }
        h.update(&buf[..n]);
    }
}

/// The digest through the member path; `None` when the blob is not made
/// of gantry's members as far as this path can tell.
pub(super) fn gzip_members(mut blob: Box<dyn Read>, threads: usize) -> io::Result<Option<Digest>> {
    let mut h = Hasher::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut eof = false;
    let mut decompressors: Vec<Decompressor> = (0..threads).map(|_| Decompressor::new()).collect();
    let mut outs: Vec<Vec<u8>> = Vec::new();
    loop {
        if !eof {
            let start = buf.len();
            buf.resize(start + CHUNK, 0);
            let n = crate::fsutil::read_up_to(&mut blob, &mut buf[start..])?;
            buf.truncate(start + n);
            eof = n == 0;
        }
        if !buf.starts_with(&MEMBER_HEADER) {
            return Ok(if buf.is_empty() && eof {
                Some(h.finish().0)
            } else {
                None
            });
        }
        let members = boundaries(&buf, eof);
        if members.is_empty() {
            if eof {
                return Ok(None);
            }
            continue;
        }
        outs.resize_with(members.len(), || vec![0u8; GZIP_BLOCK_SIZE]);
        let Some(sizes) = inflate_all(&buf, &members, &mut outs, &mut decompressors) else {
            return Ok(None);
        };
        for (out, n) in outs.iter().zip(sizes) {
            h.update(&out[..n]);
        }
        let consumed = members.last().map_or(0, |m| m.1);
        buf.drain(..consumed);
        if eof && buf.is_empty() {
            return Ok(Some(h.finish().0));
        }
    }
}

/// The complete members at the start of `buf`: (start, end) each; the last
/// one runs to the end of `buf` only at `eof`.
fn boundaries(buf: &[u8], eof: bool) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = 0;
    loop {
        let from = start + MEMBER_HEADER.len();
        let next = buf
            .get(from..)
            .and_then(|rest| memchr::memmem::find(rest, &MEMBER_HEADER))
            .map(|i| from + i);
        match next {
            Some(end) => {
                out.push((start, end));
                start = end;
            }
            None => {
                if eof && start < buf.len() {
                    out.push((start, buf.len()));
                }
                return out;
            }
        }
    }
}

/// Inflates every member into its own buffer, the members dealt out to
/// the decompressors; the size of each member's output, or `None` when any
/// fails.
fn inflate_all(
    buf: &[u8],
    members: &[(usize, usize)],
    outs: &mut [Vec<u8>],
    decompressors: &mut [Decompressor],
) -> Option<Vec<usize>> {
    let n = decompressors.len();
    let mut jobs: Vec<Vec<(usize, &mut Vec<u8>)>> = (0..n).map(|_| Vec::new()).collect();
    for (i, out) in outs.iter_mut().enumerate().take(members.len()) {
        jobs[i % n].push((i, out));
    }
    let sizes: Vec<Option<Vec<(usize, usize)>>> = std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .into_iter()
            .zip(decompressors.iter_mut())
            .map(|(mine, d)| {
                s.spawn(move || {
                    mine.into_iter()
                        .map(|(i, out)| {
                            let (a, b) = members[i];
                            d.gzip_decompress(&buf[a..b], out).ok().map(|n| (i, n))
                        })
                        .collect::<Option<Vec<_>>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect()
    });
    let mut out = vec![0usize; members.len()];
    for got in sizes {
        for (i, n) in got? {
            out[i] = n;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layer::compress::{CompressOptions, Encoder};
    use std::io::Write;

    fn data(len: usize) -> Vec<u8> {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..len)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Half text, half noise: members of varied compressed sizes.
                if (i / 4096) % 2 == 0 {
                    b"gantry layer "[i % 13]
                } else {
                    (x >> 24) as u8
                }
            })
            .collect()
    }

    fn gantry_gzip(input: &[u8]) -> Vec<u8> {
        let opts = CompressOptions {
            compression: Compression::Gzip,
            level: 4,
            threads: 2,
        };
        let mut e = Encoder::new(opts, Vec::new()).unwrap();
        e.write_all(input).unwrap();
        e.finish().unwrap()
    }

    fn digest_of(blob: &[u8], compression: Compression, threads: usize) -> io::Result<Digest> {
        let blob = blob.to_vec();
        diff_id(
            compression,
            || Ok(Box::new(io::Cursor::new(blob.clone())) as Box<dyn Read>),
            threads,
        )
    }

    #[test]
    fn gantry_members_are_checked_in_parallel_to_the_tar_stream_digest() {
        for len in [0, 10, GZIP_BLOCK_SIZE, 9 * GZIP_BLOCK_SIZE + 77] {
            let input = data(len);
            let blob = gantry_gzip(&input);
            assert!(gzip_members(Box::new(io::Cursor::new(blob.clone())), 3)
                .unwrap()
                .is_some());
            for threads in [1, 3] {
                assert_eq!(
                    digest_of(&blob, Compression::Gzip, threads).unwrap(),
                    Digest::of(&input),
                    "{len} bytes on {threads} threads"
                );
            }
        }
    }

    #[test]
    fn another_compressors_gzip_is_read_as_one_stream() {
        let input = data(3 * GZIP_BLOCK_SIZE);
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(&input).unwrap();
        let blob = e.finish().unwrap();
        assert_eq!(
            digest_of(&blob, Compression::Gzip, 2).unwrap(),
            Digest::of(&input)
        );
    }

    #[test]
    fn a_member_header_that_is_not_a_member_falls_back_to_the_stream_verdict() {
        let input = data(2 * GZIP_BLOCK_SIZE);
        let mut blob = gantry_gzip(&input);
        // Garbage after a header: the member path refuses it, and the stream
        // decoder, which decides, fails on it too.
        blob.extend_from_slice(&MEMBER_HEADER);
        blob.extend_from_slice(b"not deflate at all");
        assert!(gzip_members(Box::new(io::Cursor::new(blob.clone())), 2)
            .unwrap()
            .is_none());
        assert!(digest_of(&blob, Compression::Gzip, 2).is_err());
    }
}
