//! Tests of `compress`, kept apart so the module reads as one concept.

use super::*;
use flate2::bufread::{GzDecoder, MultiGzDecoder};
use sha2::{Digest, Sha256};
use std::io::Read;
use std::process::{Command, Stdio};

const MIB: usize = 1 << 20;

fn opts(compression: Compression, level: i32, threads: usize) -> CompressOptions {
    CompressOptions {
        compression,
        level,
        threads,
    }
}

fn gzip_opts(threads: usize) -> CompressOptions {
    opts(Compression::Gzip, 6, threads)
}

/// Deterministic test data: runs of repeated text (compressible) mixed
/// with runs of LCG output (incompressible), of varying lengths.
fn mixed_data(len: usize, seed: u64) -> Vec<u8> {
    const TEXT: &[u8] = b"usr/lib/x86_64-linux-gnu/libexample.so.1 -> libexample.so.1.2.3\n\
            The quick brown fox jumps over the lazy dog; 0123456789 ABCDEF.\n";
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut next = move || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) as u32
    };
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        let run = (next() % 200_000) as usize + 1;
        let run = run.min(len - out.len());
        if next() % 3 == 0 {
            out.extend((0..run).map(|_| (next() >> 7) as u8));
        } else {
            let start = (next() as usize) % TEXT.len();
            out.extend(TEXT.iter().cycle().skip(start).take(run));
        }
    }
    out
}

/// LCG output over a four-letter alphabet (DNA-like). Such data made a
/// reset-and-reused streaming deflate compressor primed with a dictionary
/// produce different bytes from a fresh one, so it catches
/// scheduling-dependent compressor state that `mixed_data` does not.
fn four_letter_data(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed;
    (0..len)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            b"ACGT"[(state >> 62) as usize]
        })
        .collect()
}

fn compress_with(o: CompressOptions, data: &[u8], chunk: usize) -> Vec<u8> {
    let mut enc = Encoder::new(o, Vec::new()).unwrap();
    for piece in data.chunks(chunk.max(1)) {
        enc.write_all(piece).unwrap();
    }
    enc.finish().unwrap()
}

fn gunzip(gz: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    MultiGzDecoder::new(gz).read_to_end(&mut out).unwrap();
    out
}

/// The gzip members of `gz`, each as (its bytes, its decompressed bytes).
fn members(gz: &[u8]) -> Vec<(&[u8], Vec<u8>)> {
    let mut rest = gz;
    let mut out = Vec::new();
    while !rest.is_empty() {
        let mut dec = GzDecoder::new(rest);
        let mut data = Vec::new();
        dec.read_to_end(&mut data).unwrap();
        let left = dec.into_inner();
        out.push((&rest[..rest.len() - left.len()], data));
        rest = left;
    }
    out
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

fn system_gunzip(gz: &[u8]) -> Vec<u8> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = gz.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    assert!(out.status.success(), "gzip -dc failed");
    out.stdout
}

fn sizes() -> Vec<(usize, Vec<u8>)> {
    let mut inputs: Vec<(usize, Vec<u8>)> = [0, 1, MIB, 2 * MIB + 1, 20 * MIB + 12_345]
        .into_iter()
        .map(|n| (n, mixed_data(n, n as u64)))
        .collect();
    inputs.push((3 * MIB + 5, four_letter_data(3 * MIB + 5, 1)));
    inputs
}

#[test]
fn gzip_output_is_identical_for_any_thread_count() {
    for (n, data) in sizes() {
        let reference = compress_with(gzip_opts(1), &data, 256 * 1024);
        for threads in [2, 3, 8] {
            let got = compress_with(gzip_opts(threads), &data, 256 * 1024);
            assert!(got == reference, "{n} bytes, {threads} threads differ");
        }
        assert_eq!(gunzip(&reference), data, "{n} bytes");
    }
}

#[test]
fn gzip_output_is_identical_for_any_write_pattern() {
    let small = mixed_data(70_000, 6);
    assert!(compress_with(gzip_opts(1), &small, 1) == compress_with(gzip_opts(2), &small, 70_000));

    let data = mixed_data(3 * MIB + 777, 7);
    let reference = compress_with(gzip_opts(2), &data, MIB);
    for chunk in [511, 4096, MIB - 1, MIB + 1, data.len()] {
        assert!(
            compress_with(gzip_opts(3), &data, chunk) == reference,
            "chunk {chunk}"
        );
    }
    // Flushing part-way changes nothing in the output.
    let mut enc = Encoder::new(gzip_opts(2), Vec::new()).unwrap();
    for piece in data.chunks(700_000) {
        enc.write_all(piece).unwrap();
        enc.flush().unwrap();
    }
    assert!(enc.finish().unwrap() == reference);
}

#[test]
fn gzip_header_and_trailer_are_fixed() {
    let data = b"hello, layer\n".repeat(1000);
    let gz = compress_with(gzip_opts(1), &data, 100);
    assert_eq!(&gz[..10], &[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff]);
    let n = gz.len();
    assert_eq!(&gz[n - 8..n - 4], &libdeflater::crc32(&data).to_le_bytes());
    assert_eq!(&gz[n - 4..], &(data.len() as u32).to_le_bytes());

    // One member whose deflate data is a final, empty stored block.
    let empty = compress_with(gzip_opts(4), b"", 1);
    assert_eq!(
        empty,
        [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 1, 0, 0, 0xff, 0xff, 0, 0, 0, 0, 0, 0, 0, 0]
    );
    assert!(gunzip(&empty).is_empty());
}

#[test]
fn gzip_members_are_cut_at_fixed_offsets() {
    // One member per GZIP_BLOCK_SIZE of input, each complete on its own
    // (fixed header, its block's CRC and length) and equal to that block
    // compressed alone; the last one holds the remainder, never nothing.
    for (len, threads) in [(3 * MIB + 10, 2), (2 * MIB, 3), (MIB - 1, 1)] {
        let data = mixed_data(len, 3);
        let gz = compress_with(gzip_opts(threads), &data, 4096);
        let got = members(&gz);
        let blocks: Vec<&[u8]> = data.chunks(GZIP_BLOCK_SIZE).collect();
        assert_eq!(got.len(), blocks.len(), "{len} bytes");
        let mut deflater = Compressor::new(CompressionLvl::new(6).unwrap());
        for (i, ((member, inflated), block)) in got.iter().zip(&blocks).enumerate() {
            assert!(inflated == block, "{len} bytes, member {i}");
            assert_eq!(&member[..10], &GZIP_HEADER, "{len} bytes, member {i}");
            let n = member.len();
            assert_eq!(
                &member[n - 8..n - 4],
                &libdeflater::crc32(block).to_le_bytes()
            );
            assert_eq!(&member[n - 4..], &(block.len() as u32).to_le_bytes());
            let mut alone = Block {
                seq: i as u64,
                input: block.to_vec(),
                output: Vec::new(),
            };
            gzip_member(&mut alone, &mut deflater).unwrap();
            assert!(alone.output == *member, "{len} bytes, member {i}");
        }
    }
}

#[test]
fn gzip_round_trips_through_system_gzip() {
    if !have("gzip") {
        eprintln!("skipped: gzip not found");
        return;
    }
    for (n, data) in sizes() {
        let gz = compress_with(gzip_opts(3), &data, 100_000);
        assert!(system_gunzip(&gz) == data, "{n} bytes");
    }
}

#[test]
fn gzip_every_level_round_trips() {
    let data = mixed_data(MIB + 5000, 11);
    for level in 1..=9 {
        let gz = compress_with(opts(Compression::Gzip, level, 2), &data, 65536);
        assert!(gunzip(&gz) == data, "level {level}");
    }
}

/// Fixed input for the pinned-digest tests: 3 MiB + 1 byte, so the
/// output has full blocks, dictionaries and a short last block.
fn golden_input() -> Vec<u8> {
    mixed_data(3 * MIB + 1, 42)
}

#[test]
fn gzip_output_bytes_are_pinned() {
    // Level 6 and the default level: the default is what most layers use,
    // and libdeflate switches parsing strategy between levels.
    let input = golden_input();
    for (level, want) in [
        (
            6,
            "46c922199ab2b1315ad41f13fc4d79b6e44046143ba282f73b97a858355a12ae",
        ),
        (
            Compression::Gzip.default_level(),
            "1f9fe194a1d9f7c59a7711af4ae8467a720adb32b3f4624e39f35bd0b0c254c8",
        ),
    ] {
        let gz = compress_with(opts(Compression::Gzip, level, 2), &input, 65536);
        assert_eq!(
            sha256_hex(&gz),
            want,
            "gzip level {level} output changed: the deflate implementation or the \
             block layout is different"
        );
    }
}

#[test]
fn zstd_output_bytes_are_pinned() {
    let zst = compress_with(opts(Compression::Zstd, 3, 1), &golden_input(), 65536);
    assert_eq!(
        sha256_hex(&zst),
        "31b7a8b88e2d4412f34604ffcb7a46fa9edc27e769bc1a4ed74098606efd780c",
        "zstd output changed: the libzstd version or its parameters are different"
    );
}

#[test]
fn zstd_round_trips_and_ignores_write_pattern_and_threads() {
    let data = mixed_data(2 * MIB + 3, 5);
    let a = compress_with(opts(Compression::Zstd, 3, 1), &data, 4096);
    let b = compress_with(opts(Compression::Zstd, 3, 8), &data, 1_000_003);
    assert!(a == b);
    assert!(zstd::decode_all(&a[..]).unwrap() == data);
    // Magic number, then a frame header descriptor with no checksum,
    // no dictionary id and no content size.
    assert_eq!(&a[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    assert_eq!(a[4] & 0b1100_0111, 0);

    let mut enc = Encoder::new(opts(Compression::Zstd, 3, 1), Vec::new()).unwrap();
    enc.write_all(&data[..MIB]).unwrap();
    enc.flush().unwrap();
    enc.write_all(&data[MIB..]).unwrap();
    assert!(enc.finish().unwrap() == a, "flush changed zstd output");
}

#[test]
fn none_passes_bytes_through() {
    let data = mixed_data(100_000, 1);
    let out = compress_with(opts(Compression::None, 0, 4), &data, 777);
    assert!(out == data);
}

#[test]
fn out_of_range_levels_are_rejected() {
    for (c, level) in [
        (Compression::Gzip, 0),
        (Compression::Gzip, 10),
        (Compression::Zstd, 0),
        (Compression::Zstd, 20),
    ] {
        let err = Encoder::new(opts(c, level, 1), Vec::new()).err().unwrap();
        assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
        assert!(err.to_string().contains("level"), "{err}");
    }
}

fn panic_on_block_2(block: &mut Block, deflater: &mut Compressor) -> io::Result<()> {
    if block.seq == 2 {
        panic!("injected failure");
    }
    gzip_member(block, deflater)
}

fn fail_on_block_1(block: &mut Block, deflater: &mut Compressor) -> io::Result<()> {
    if block.seq == 1 {
        return Err(io::Error::other("injected error"));
    }
    gzip_member(block, deflater)
}

fn run_failing(threads: usize, compress: BlockFn) -> io::Error {
    let data = mixed_data(8 * MIB, 9);
    let mut g = GzipWriter::new(Vec::new(), 6, threads, compress).unwrap();
    for piece in data.chunks(100_000) {
        if let Err(e) = g.write(piece) {
            assert!(g.write(b"more").is_err(), "writer must stay failed");
            return e;
        }
    }
    g.finish().expect_err("failure must surface")
}

#[test]
fn worker_panic_is_an_error_not_a_hang() {
    for threads in [2, 8] {
        let e = run_failing(threads, panic_on_block_2);
        assert!(e.to_string().contains("panicked on block 2"), "{e}");
    }
}

#[test]
fn worker_error_is_reported() {
    for threads in [1, 2, 3] {
        let e = run_failing(threads, fail_on_block_1);
        assert!(e.to_string().contains("injected error"), "{e}");
    }
}

#[test]
fn sink_error_is_reported() {
    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> io::Result<usize> {
            Err(io::Error::other("disk full"))
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    // Nothing is written before the first member is complete.
    let enc = Encoder::new(gzip_opts(2), Broken).unwrap();
    let err = enc.finish().err().unwrap();
    assert!(err.to_string().contains("disk full"));

    /// Accepts one write, then fails.
    struct FailsLater(usize);
    impl Write for FailsLater {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.0 == 0 {
                return Err(io::Error::other("disk full"));
            }
            self.0 -= 1;
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }
    let data = mixed_data(12 * MIB, 4);
    let mut enc = Encoder::new(gzip_opts(2), FailsLater(1)).unwrap();
    let mut result = Ok(());
    for piece in data.chunks(MIB / 2) {
        result = enc.write_all(piece);
        if result.is_err() {
            break;
        }
    }
    let err = result.err().unwrap_or_else(|| enc.finish().err().unwrap());
    assert!(err.to_string().contains("disk full"), "{err}");
}

#[test]
fn dropping_an_unfinished_encoder_returns() {
    let data = mixed_data(6 * MIB, 8);
    let mut enc = Encoder::new(gzip_opts(3), Vec::new()).unwrap();
    enc.write_all(&data).unwrap();
    drop(enc);
}

/// Throughput on real files. Run with
/// `cargo test --release --lib layer::compress::tests::gzip_throughput -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark; reads ~200 MB of system files"]
fn gzip_throughput() {
    let data = bench_corpus(200 * MIB);
    let mb = data.len() as f64 / 1e6;
    println!("corpus: {:.1} MB", mb);
    let mut outputs = Vec::new();
    for threads in [1, 2, 1, 2] {
        let start = std::time::Instant::now();
        let gz = compress_with(gzip_opts(threads), &data, 128 * 1024);
        let secs = start.elapsed().as_secs_f64();
        println!(
            "gantry gzip -6, {threads} thread(s): {:.1} MB/s, {:.2} s, {} bytes ({:.2}%)",
            mb / secs,
            secs,
            gz.len(),
            100.0 * gz.len() as f64 / data.len() as f64
        );
        outputs.push(gz);
    }
    assert!(outputs.windows(2).all(|w| w[0] == w[1]));
    let start = std::time::Instant::now();
    let single = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
        e.write_all(&data).unwrap();
        e.finish().unwrap()
    };
    let secs = start.elapsed().as_secs_f64();
    println!(
        "flate2 GzEncoder -6 (one stream): {:.1} MB/s, {:.2} s, {} bytes",
        mb / secs,
        secs,
        single.len()
    );
    if have("gzip") {
        let tmp = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(tmp.path(), &data).unwrap();
        for _ in 0..2 {
            let start = std::time::Instant::now();
            let out = Command::new("gzip")
                .args(["-6", "-n", "-c"])
                .arg(tmp.path())
                .output()
                .unwrap();
            let secs = start.elapsed().as_secs_f64();
            assert!(out.status.success());
            println!(
                "system gzip -6 -n: {:.1} MB/s, {:.2} s, {} bytes",
                mb / secs,
                secs,
                out.stdout.len()
            );
        }
    }
}

/// What the block size trades: every block starts without history, so
/// smaller blocks compress worse. Run with
/// `cargo test --release --lib layer::compress::tests::gzip_block_sizes -- --ignored --nocapture`.
#[test]
#[ignore = "benchmark; reads ~200 MB of system files"]
fn gzip_block_sizes() {
    let data = bench_corpus(200 * MIB);
    let mb = data.len() as f64 / 1e6;
    println!(
        "corpus: {mb:.1} MB, level {}",
        Compression::Gzip.default_level()
    );
    let level = CompressionLvl::new(Compression::Gzip.default_level()).unwrap();
    let mut deflater = Compressor::new(level);
    for size in [256 * 1024, 512 * 1024, MIB, 2 * MIB, 4 * MIB] {
        let start = std::time::Instant::now();
        let mut total = 0;
        for (seq, chunk) in data.chunks(size).enumerate() {
            let mut block = Block {
                seq: seq as u64,
                input: chunk.to_vec(),
                output: Vec::new(),
            };
            gzip_member(&mut block, &mut deflater).unwrap();
            total += block.output.len();
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{:>5} KiB blocks: {:.1} MB/s on one thread, {total} bytes ({:.3}%)",
            size / 1024,
            mb / secs,
            100.0 * total as f64 / data.len() as f64
        );
    }
}

/// Shared libraries and text from /usr, concatenated in sorted path
/// order, up to `limit` bytes.
fn bench_corpus(limit: usize) -> Vec<u8> {
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    for (root, want) in [("/usr/lib/x86_64-linux-gnu", ".so"), ("/usr/share", "")] {
        let walker = walkdir::WalkDir::new(root).sort_by_file_name();
        for entry in walker.into_iter().filter_map(Result::ok) {
            let name = entry.file_name().to_string_lossy();
            if entry.file_type().is_file() && name.contains(want) {
                files.push(entry.into_path());
            }
        }
    }
    let mut lib = Vec::new();
    let mut text = Vec::new();
    for path in files {
        let is_lib = path.starts_with("/usr/lib");
        let target = if is_lib { &mut lib } else { &mut text };
        if target.len() >= limit / 2 {
            continue;
        }
        if let Ok(bytes) = std::fs::read(&path) {
            let is_text = !bytes.iter().take(4096).any(|&b| b == 0);
            if is_lib || is_text {
                target.extend_from_slice(&bytes);
            }
        }
    }
    lib.truncate(limit / 2);
    text.truncate(limit / 2);
    lib.extend_from_slice(&text);
    lib
}

/// The recipe names the compressor versions the lock file builds: an upgrade
/// that forgot to change the constants would let a cache serve blobs the
/// new compressor would not write.
#[test]
fn recipe_names_the_locked_compressor_versions() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let version_of = |name: &str| {
        let at = lock
            .find(&format!("name = \"{name}\"\n"))
            .unwrap_or_else(|| panic!("{name} in Cargo.lock"));
        let rest = &lock[at..];
        let v = rest.split("version = \"").nth(1).unwrap();
        v[..v.find('"').unwrap()].to_string()
    };
    assert_eq!(version_of("libdeflate-sys"), LIBDEFLATE_VERSION);
    let zstd_sys = version_of("zstd-sys");
    assert!(
        zstd_sys.ends_with(&format!("+zstd.{LIBZSTD_VERSION}")),
        "zstd-sys {zstd_sys} vendors another libzstd than {LIBZSTD_VERSION}"
    );
    assert_eq!(
        recipe(&gzip_opts(8)),
        recipe(&gzip_opts(1)),
        "threads never change the bytes, so not the recipe either"
    );
    assert_eq!(
        recipe(&gzip_opts(1)),
        format!("gzip;level=6;libdeflate={LIBDEFLATE_VERSION};block=1048576;format=2")
    );
    assert_ne!(
        recipe(&gzip_opts(1)),
        recipe(&opts(Compression::Gzip, 9, 1))
    );
}
