//! The SHA-256 of a stream together with the SHA-256 and SHA-1 of stretches
//! of it, each 64-byte block fed to the three at once.
//!
//! A layer's tar stream is hashed for its diff_id, and with an SBOM every
//! file in it is hashed twice more (SPDX 2.3 wants SHA-1 beside SHA-256).
//! One SHA-NI hash is bound by the latency of its round instructions, not
//! their throughput: on the machines gantry is measured on, three chains
//! interleaved in one loop cost 1.2 times one chain, where three calls of
//! the sha2 and sha1 crates cost 3 times (docs/design.md). A file's content
//! starts on a 512-byte boundary of its tar stream, so its blocks are the
//! stream's blocks and the three hashes can share them.

use sha1::block_api::compress as compress1;
use sha2::block_api::compress256;

use super::Digest;

type State256 = [u32; 8];
type State1 = [u32; 5];

const INIT256: State256 = [
    0x6a09_e667,
    0xbb67_ae85,
    0x3c6e_f372,
    0xa54f_f53a,
    0x510e_527f,
    0x9b05_688c,
    0x1f83_d9ab,
    0x5be0_cd19,
];
const INIT1: State1 = [
    0x6745_2301,
    0xefcd_ab89,
    0x98ba_dcfe,
    0x1032_5476,
    0xc3d2_e1f0,
];

/// The SHA-256 and SHA-1 of one stretch of a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartSums {
    /// SHA-256 of the stretch.
    pub sha256: Digest,
    /// SHA-1 of the stretch.
    pub sha1: [u8; 20],
}

/// The stretch being hashed on its own.
enum Part {
    /// Started on a block boundary of the stream: it shares its blocks.
    Aligned {
        sha256: State256,
        sha1: State1,
        len: u64,
    },
    /// Started elsewhere (never so in a tar stream): hashed apart.
    Apart(sha2::Sha256, sha1::Sha1),
}

/// SHA-256 of everything written, and of each stretch between
/// [`StreamSums::begin_part`] and [`StreamSums::end_part`] its SHA-256 and
/// SHA-1 too.
pub struct StreamSums {
    state: State256,
    buf: [u8; 64],
    buffered: usize,
    len: u64,
    part: Option<Part>,
}

impl Default for StreamSums {
    fn default() -> Self {
        StreamSums {
            state: INIT256,
            buf: [0; 64],
            buffered: 0,
            len: 0,
            part: None,
        }
    }
}

impl StreamSums {
    /// Hashes `bytes`, into the open stretch too if there is one.
    pub fn update(&mut self, mut bytes: &[u8]) {
        self.len += bytes.len() as u64;
        match &mut self.part {
            Some(Part::Aligned { len, .. }) => *len += bytes.len() as u64,
            Some(Part::Apart(s256, s1)) => {
                sha2::Digest::update(s256, bytes);
                sha1::Digest::update(s1, bytes);
            }
            None => {}
        }
        if self.buffered > 0 {
            let take = (64 - self.buffered).min(bytes.len());
            self.buf[self.buffered..self.buffered + take].copy_from_slice(&bytes[..take]);
            self.buffered += take;
            bytes = &bytes[take..];
            if self.buffered < 64 {
                return;
            }
            let block = self.buf;
            self.compress(&[block]);
            self.buffered = 0;
        }
        let (blocks, rest) = as_blocks(bytes);
        self.compress(blocks);
        self.buf[..rest.len()].copy_from_slice(rest);
        self.buffered = rest.len();
    }

    fn compress(&mut self, blocks: &[[u8; 64]]) {
        if blocks.is_empty() {
            return;
        }
        match &mut self.part {
            Some(Part::Aligned { sha256, sha1, .. }) => {
                compress_three(&mut self.state, sha256, sha1, blocks)
            }
            _ => compress256(&mut self.state, blocks),
        }
    }

    /// Starts a stretch: what is written from now until
    /// [`StreamSums::end_part`] is also hashed on its own. A stretch still
    /// open is ended and forgotten.
    pub fn begin_part(&mut self) {
        self.part = Some(if self.buffered == 0 {
            Part::Aligned {
                sha256: INIT256,
                sha1: INIT1,
                len: 0,
            }
        } else {
            Part::Apart(Default::default(), Default::default())
        });
    }

    /// Ends the stretch begun last, with its sums; `None` if none was open.
    pub fn end_part(&mut self) -> Option<PartSums> {
        Some(match self.part.take()? {
            Part::Aligned {
                mut sha256,
                mut sha1,
                len,
            } => {
                // The stretch began on a block boundary, so its unhashed
                // tail is the stream's.
                let tail = &self.buf[..self.buffered];
                pad(tail, len, |b| compress256(&mut sha256, b));
                pad(tail, len, |b| compress1(&mut sha1, b));
                PartSums {
                    sha256: Digest(be_bytes(&sha256)),
                    sha1: be_bytes(&sha1),
                }
            }
            Part::Apart(s256, s1) => PartSums {
                sha256: Digest(sha2::Digest::finalize(s256).into()),
                sha1: sha1::Digest::finalize(s1).into(),
            },
        })
    }

    /// How many bytes were hashed so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether nothing was hashed yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The SHA-256 and length of everything written.
    pub fn finish(mut self) -> (Digest, u64) {
        let tail = &self.buf[..self.buffered];
        pad(tail, self.len, |b| compress256(&mut self.state, b));
        (Digest(be_bytes(&self.state)), self.len)
    }
}

/// The whole 64-byte blocks at the start of `bytes`, and the rest.
fn as_blocks(bytes: &[u8]) -> (&[[u8; 64]], &[u8]) {
    let whole = bytes.len() / 64;
    // SAFETY: `[u8; 64]` has the alignment of `u8`, and `whole` blocks lie
    // within `bytes`, which stays borrowed for the result's lifetime.
    let blocks = unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<[u8; 64]>(), whole) };
    (blocks, &bytes[whole * 64..])
}

/// Feeds `compress` the last blocks of a message of `len` bytes whose
/// unhashed tail is `tail`: the Merkle–Damgård padding SHA-1 and SHA-256
/// share (a one bit, zeros, the length in bits, big-endian).
fn pad(tail: &[u8], len: u64, mut compress: impl FnMut(&[[u8; 64]])) {
    let mut last = [[0u8; 64]; 2];
    let flat = last.as_flattened_mut();
    flat[..tail.len()].copy_from_slice(tail);
    flat[tail.len()] = 0x80;
    let blocks = if tail.len() < 56 { 1 } else { 2 };
    flat[blocks * 64 - 8..blocks * 64].copy_from_slice(&(len * 8).to_be_bytes());
    compress(&last[..blocks]);
}

fn be_bytes<const W: usize, const B: usize>(state: &[u32; W]) -> [u8; B] {
    let mut out = [0u8; B];
    for (chunk, word) in out.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_be_bytes());
    }
    out
}

/// Two SHA-256 states and one SHA-1 state, each advanced over `blocks`.
fn compress_three(a: &mut State256, b: &mut State256, c: &mut State1, blocks: &[[u8; 64]]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("sha")
        && std::arch::is_x86_feature_detected!("sse4.1")
        && std::arch::is_x86_feature_detected!("ssse3")
    {
        // SAFETY: the CPU has every feature the function is compiled for.
        unsafe { x86::three(a, b, c, blocks) };
        return;
    }
    portable_three(a, b, c, blocks);
}

fn portable_three(a: &mut State256, b: &mut State256, c: &mut State1, blocks: &[[u8; 64]]) {
    compress256(a, blocks);
    compress256(b, blocks);
    compress1(c, blocks);
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! The three hashes with the SHA extensions, their rounds interleaved
    //! so that each chain's latency hides behind the others'. The two
    //! SHA-256 chains hash the same block, so they share the message
    //! schedule.

    use std::arch::x86_64::*;

    use super::{State1, State256};

    const K256: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];

    /// The state as the round instructions take it: ABEF and CDGH.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn load256(s: &State256) -> (__m128i, __m128i) {
        let dcba = _mm_set_epi32(s[3] as i32, s[2] as i32, s[1] as i32, s[0] as i32);
        let hgfe = _mm_set_epi32(s[7] as i32, s[6] as i32, s[5] as i32, s[4] as i32);
        let cdab = _mm_shuffle_epi32(dcba, 0xB1);
        let efgh = _mm_shuffle_epi32(hgfe, 0x1B);
        (
            _mm_alignr_epi8(cdab, efgh, 8),
            _mm_blend_epi16(efgh, cdab, 0xF0),
        )
    }

    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn store256(s: &mut State256, abef: __m128i, cdgh: __m128i) {
        let feba = _mm_shuffle_epi32(abef, 0x1B);
        let dchg = _mm_shuffle_epi32(cdgh, 0xB1);
        let dcba = _mm_blend_epi16(feba, dchg, 0xF0);
        let hgfe = _mm_alignr_epi8(dchg, feba, 8);
        s[0] = _mm_extract_epi32(dcba, 0) as u32;
        s[1] = _mm_extract_epi32(dcba, 1) as u32;
        s[2] = _mm_extract_epi32(dcba, 2) as u32;
        s[3] = _mm_extract_epi32(dcba, 3) as u32;
        s[4] = _mm_extract_epi32(hgfe, 0) as u32;
        s[5] = _mm_extract_epi32(hgfe, 1) as u32;
        s[6] = _mm_extract_epi32(hgfe, 2) as u32;
        s[7] = _mm_extract_epi32(hgfe, 3) as u32;
    }

    /// The three states as the round instructions hold them.
    #[derive(Clone, Copy)]
    struct Lanes {
        /// The first SHA-256 state: ABEF, CDGH.
        a: [__m128i; 2],
        /// The second SHA-256 state.
        b: [__m128i; 2],
        /// The SHA-1 state: ABCD, and E in the top lane.
        abcd: __m128i,
        e: __m128i,
    }

    /// # Safety
    /// The CPU must have the SHA extensions and SSE4.1.
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    pub(super) unsafe fn three(
        a: &mut State256,
        b: &mut State256,
        c: &mut State1,
        blocks: &[[u8; 64]],
    ) {
        let mut k = [_mm_setzero_si128(); 16];
        for (i, k) in k.iter_mut().enumerate() {
            *k = _mm_set_epi32(
                K256[4 * i + 3] as i32,
                K256[4 * i + 2] as i32,
                K256[4 * i + 1] as i32,
                K256[4 * i] as i32,
            );
        }
        let (a0, a1) = load256(a);
        let (b0, b1) = load256(b);
        let mut s = Lanes {
            a: [a0, a1],
            b: [b0, b1],
            abcd: _mm_set_epi32(c[0] as i32, c[1] as i32, c[2] as i32, c[3] as i32),
            e: _mm_set_epi32(c[4] as i32, 0, 0, 0),
        };
        for block in blocks {
            s = one_block(s, &k, block);
        }
        store256(a, s.a[0], s.a[1]);
        store256(b, s.b[0], s.b[1]);
        c[0] = _mm_extract_epi32(s.abcd, 3) as u32;
        c[1] = _mm_extract_epi32(s.abcd, 2) as u32;
        c[2] = _mm_extract_epi32(s.abcd, 1) as u32;
        c[3] = _mm_extract_epi32(s.abcd, 0) as u32;
        c[4] = _mm_extract_epi32(s.e, 3) as u32;
    }

    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn one_block(saved: Lanes, k: &[__m128i; 16], block: &[u8; 64]) -> Lanes {
        let swap256 = _mm_set_epi64x(0x0c0d_0e0f_0809_0a0b, 0x0405_0607_0001_0203);
        let swap1 = _mm_set_epi64x(0x0001_0203_0405_0607, 0x0809_0a0b_0c0d_0e0f);
        // 16 bytes at 16 * i of a 64-byte block; the load needs no alignment.
        let p = block.as_ptr();
        let raw = [
            _mm_loadu_si128(p.cast()),
            _mm_loadu_si128(p.add(16).cast()),
            _mm_loadu_si128(p.add(32).cast()),
            _mm_loadu_si128(p.add(48).cast()),
        ];
        let mut w = [
            _mm_shuffle_epi8(raw[0], swap256),
            _mm_shuffle_epi8(raw[1], swap256),
            _mm_shuffle_epi8(raw[2], swap256),
            _mm_shuffle_epi8(raw[3], swap256),
        ];
        let mut v = [
            _mm_shuffle_epi8(raw[0], swap1),
            _mm_shuffle_epi8(raw[1], swap1),
            _mm_shuffle_epi8(raw[2], swap1),
            _mm_shuffle_epi8(raw[3], swap1),
        ];
        let mut lanes = saved;
        let s = &mut lanes;
        let mut prev = s.abcd;
        // 20 groups of SHA-1 beside 16 of SHA-256: one extra SHA-1 group
        // after every fourth, so that the chains stay side by side.
        sha1_group::<0>(s, &mut prev, &mut v, 0);
        sha256_group(s, &mut w, k[0], 0);
        sha1_group::<0>(s, &mut prev, &mut v, 1);
        sha256_group(s, &mut w, k[1], 1);
        sha1_group::<0>(s, &mut prev, &mut v, 2);
        sha256_group(s, &mut w, k[2], 2);
        sha1_group::<0>(s, &mut prev, &mut v, 3);
        sha256_group(s, &mut w, k[3], 3);
        sha1_group::<0>(s, &mut prev, &mut v, 4);
        sha1_group::<1>(s, &mut prev, &mut v, 5);
        sha256_group(s, &mut w, k[4], 4);
        sha1_group::<1>(s, &mut prev, &mut v, 6);
        sha256_group(s, &mut w, k[5], 5);
        sha1_group::<1>(s, &mut prev, &mut v, 7);
        sha256_group(s, &mut w, k[6], 6);
        sha1_group::<1>(s, &mut prev, &mut v, 8);
        sha256_group(s, &mut w, k[7], 7);
        sha1_group::<1>(s, &mut prev, &mut v, 9);
        sha1_group::<2>(s, &mut prev, &mut v, 10);
        sha256_group(s, &mut w, k[8], 8);
        sha1_group::<2>(s, &mut prev, &mut v, 11);
        sha256_group(s, &mut w, k[9], 9);
        sha1_group::<2>(s, &mut prev, &mut v, 12);
        sha256_group(s, &mut w, k[10], 10);
        sha1_group::<2>(s, &mut prev, &mut v, 13);
        sha256_group(s, &mut w, k[11], 11);
        sha1_group::<2>(s, &mut prev, &mut v, 14);
        sha1_group::<3>(s, &mut prev, &mut v, 15);
        sha256_group(s, &mut w, k[12], 12);
        sha1_group::<3>(s, &mut prev, &mut v, 16);
        sha256_group(s, &mut w, k[13], 13);
        sha1_group::<3>(s, &mut prev, &mut v, 17);
        sha256_group(s, &mut w, k[14], 14);
        sha1_group::<3>(s, &mut prev, &mut v, 18);
        sha256_group(s, &mut w, k[15], 15);
        sha1_group::<3>(s, &mut prev, &mut v, 19);

        s.e = _mm_sha1nexte_epu32(prev, saved.e);
        s.abcd = _mm_add_epi32(s.abcd, saved.abcd);
        for i in 0..2 {
            s.a[i] = _mm_add_epi32(s.a[i], saved.a[i]);
            s.b[i] = _mm_add_epi32(s.b[i], saved.b[i]);
        }
        lanes
    }

    /// Four rounds of both SHA-256 chains with message words `w[i % 4]`
    /// (round constants `k`), then the schedule's next four words into the
    /// slot just used.
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn sha256_group(s: &mut Lanes, w: &mut [__m128i; 4], k: __m128i, i: usize) {
        let msg = _mm_add_epi32(w[i % 4], k);
        s.a[1] = _mm_sha256rnds2_epu32(s.a[1], s.a[0], msg);
        s.b[1] = _mm_sha256rnds2_epu32(s.b[1], s.b[0], msg);
        let msg = _mm_shuffle_epi32(msg, 0x0E);
        s.a[0] = _mm_sha256rnds2_epu32(s.a[0], s.a[1], msg);
        s.b[0] = _mm_sha256rnds2_epu32(s.b[0], s.b[1], msg);
        if i + 4 < 16 {
            w[i % 4] = _mm_sha256msg2_epu32(
                _mm_add_epi32(
                    _mm_sha256msg1_epu32(w[i % 4], w[(i + 1) % 4]),
                    _mm_alignr_epi8(w[(i + 3) % 4], w[(i + 2) % 4], 4),
                ),
                w[(i + 3) % 4],
            );
        }
    }

    /// Four rounds of SHA-1, group `g` (round function `F`), likewise;
    /// `prev` is the state before the last group, from which E comes.
    #[inline]
    #[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
    unsafe fn sha1_group<const F: i32>(
        s: &mut Lanes,
        prev: &mut __m128i,
        v: &mut [__m128i; 4],
        g: usize,
    ) {
        let e = if g == 0 {
            _mm_add_epi32(s.e, v[0])
        } else {
            _mm_sha1nexte_epu32(*prev, v[g % 4])
        };
        *prev = s.abcd;
        s.abcd = _mm_sha1rnds4_epu32(s.abcd, e, F);
        if g + 4 < 20 {
            v[g % 4] = _mm_sha1msg2_epu32(
                _mm_xor_si128(_mm_sha1msg1_epu32(v[g % 4], v[(g + 1) % 4]), v[(g + 2) % 4]),
                v[(g + 3) % 4],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha1::Digest as _;

    fn bytes(n: usize, seed: u32) -> Vec<u8> {
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect()
    }

    fn sha1_of(b: &[u8]) -> [u8; 20] {
        sha1::Sha1::digest(b).into()
    }

    #[test]
    fn the_interleaved_kernel_computes_what_the_crates_compute() {
        let data = bytes(64 * 37, 1);
        let (blocks, _) = data.as_chunks::<64>();
        let mut other = INIT256;
        other[3] ^= 0x1234_5678;
        let (mut a, mut b, mut c) = (INIT256, other, INIT1);
        compress_three(&mut a, &mut b, &mut c, blocks);
        let (mut a2, mut b2, mut c2) = (INIT256, other, INIT1);
        portable_three(&mut a2, &mut b2, &mut c2, blocks);
        assert_eq!((a, b, c), (a2, b2, c2));
    }

    #[test]
    fn stretches_hash_as_their_own_messages_whatever_the_write_sizes() {
        // Headers of 512 bytes, contents of awkward lengths around the
        // block and padding boundaries, written in pieces of every size.
        let lens = [
            0usize, 1, 55, 56, 63, 64, 65, 119, 120, 511, 512, 4097, 70_000,
        ];
        for piece in [1usize, 7, 64, 1000, 1 << 20] {
            let mut s = StreamSums::default();
            let mut whole = Vec::new();
            let mut sums = Vec::new();
            for (i, &len) in lens.iter().enumerate() {
                let header = bytes(512, i as u32 + 100);
                let content = bytes(len, i as u32);
                let padding = vec![0u8; (512 - len % 512) % 512];
                s.update(&header);
                s.begin_part();
                for chunk in content.chunks(piece) {
                    s.update(chunk);
                }
                sums.push(s.end_part().unwrap());
                s.update(&padding);
                whole.extend([header, content.clone(), padding].concat());
                assert_eq!(
                    sums[i].sha256,
                    Digest::of(&content),
                    "len {len} piece {piece}"
                );
                assert_eq!(sums[i].sha1, sha1_of(&content), "len {len} piece {piece}");
            }
            assert_eq!(s.len(), whole.len() as u64);
            assert_eq!(s.finish(), (Digest::of(&whole), whole.len() as u64));
        }
    }

    #[test]
    fn a_stretch_off_the_block_boundary_is_still_right() {
        let data = bytes(1000, 9);
        let mut s = StreamSums::default();
        s.update(&data[..13]);
        s.begin_part();
        s.update(&data[13..900]);
        let part = s.end_part().unwrap();
        s.update(&data[900..]);
        assert_eq!(part.sha256, Digest::of(&data[13..900]));
        assert_eq!(part.sha1, sha1_of(&data[13..900]));
        assert_eq!(s.finish().0, Digest::of(&data));
        assert!(StreamSums::default().end_part().is_none());
    }
}
