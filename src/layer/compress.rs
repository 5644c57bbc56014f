//! Layer compression with pinned implementations and deterministic output.
//!
//! The compressed bytes depend only on the input bytes, the compression, its
//! level and the pinned library versions: never on the thread count, the
//! machine, how the input was split into `write` calls, or `flush` calls.
//!
//! Gzip is written pigz-style: the input is cut into fixed [`GZIP_BLOCK_SIZE`]
//! blocks, each compressed on its own as raw deflate primed with the last
//! 32 KiB of the previous block. Every block but the last ends with a sync
//! flush (an empty stored block, `00 00 ff ff`, ending on a byte boundary)
//! and the last one with the final-block bit, so the pieces concatenate into
//! one deflate stream inside a single gzip member. Because the cut points are
//! a constant, any number of threads gives the same bytes. The header is
//! always `1f 8b 08 00 00 00 00 00 00 ff` (no name, MTIME 0, XFL 0, OS 255);
//! the trailer is the CRC-32 and the length modulo 2^32 of the input, both
//! little-endian.
//!
//! Zstd is one frame from the pinned libzstd at the given level, without a
//! checksum, dictionary id or content size.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use flate2::{Compress, FlushCompress, Status};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

impl Compression {
    pub fn media_type(self) -> &'static str {
        match self {
            Compression::None => crate::spec::OCI_LAYER_TAR,
            Compression::Gzip => crate::spec::OCI_LAYER_GZIP,
            Compression::Zstd => crate::spec::OCI_LAYER_ZSTD,
        }
    }

    pub fn default_level(self) -> i32 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 6,
            Compression::Zstd => 3,
        }
    }

    /// Valid levels, for build-file validation.
    pub fn level_range(self) -> std::ops::RangeInclusive<i32> {
        match self {
            Compression::None => 0..=0,
            Compression::Gzip => 1..=9,
            Compression::Zstd => 1..=19,
        }
    }
}

/// How to compress. `threads` changes speed only, never output bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressOptions {
    pub compression: Compression,
    pub level: i32,
    pub threads: usize,
}

/// Size of the independently compressed gzip blocks. Part of the output
/// format: changing it changes every gzip layer's bytes.
pub const GZIP_BLOCK_SIZE: usize = 1 << 20;

/// The most a deflate stream can refer back, and so the most of the previous
/// block worth giving each block as a dictionary.
const DICT_SIZE: usize = 32 * 1024;

const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0xff];

/// A streaming compressor; `finish` flushes everything and returns the sink.
///
/// `flush` passes completed output on and flushes the sink, but does not
/// force out data still buffered inside the compressor: doing so would end a
/// compressed block early and make the bytes depend on when `flush` was
/// called. All data is written by `finish`.
pub struct Encoder<W: Write> {
    inner: Inner<W>,
}

enum Inner<W: Write> {
    None(W),
    Gzip(GzipWriter<W>),
    Zstd(zstd::stream::write::Encoder<'static, W>),
}

impl<W: Write> Encoder<W> {
    /// Starts a compressed stream on `out`. Fails if the level is outside
    /// [`Compression::level_range`] (the level is ignored for `None`).
    /// A `threads` of 0 is taken as 1.
    pub fn new(opts: CompressOptions, out: W) -> io::Result<Encoder<W>> {
        let range = opts.compression.level_range();
        if opts.compression != Compression::None && !range.contains(&opts.level) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "{:?} compression level {} is outside {}..={}",
                    opts.compression,
                    opts.level,
                    range.start(),
                    range.end()
                ),
            ));
        }
        let inner = match opts.compression {
            Compression::None => Inner::None(out),
            Compression::Gzip => Inner::Gzip(GzipWriter::new(
                out,
                opts.level,
                opts.threads.max(1),
                deflate_block,
            )?),
            Compression::Zstd => {
                let mut z = zstd::stream::write::Encoder::new(out, opts.level)?;
                // Stated explicitly rather than left to library defaults, so
                // a default changing upstream cannot change the frame header.
                z.include_checksum(false)?;
                z.include_contentsize(false)?;
                z.include_dictid(false)?;
                Inner::Zstd(z)
            }
        };
        Ok(Encoder { inner })
    }

    pub fn finish(self) -> io::Result<W> {
        match self.inner {
            Inner::None(w) => Ok(w),
            Inner::Gzip(g) => g.finish(),
            Inner::Zstd(z) => z.finish(),
        }
    }
}

impl<W: Write> Write for Encoder<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match &mut self.inner {
            Inner::None(w) => w.write(buf),
            Inner::Gzip(g) => g.write(buf),
            Inner::Zstd(z) => z.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match &mut self.inner {
            Inner::None(w) => w.write_all(buf),
            Inner::Gzip(g) => g.write(buf).map(drop),
            Inner::Zstd(z) => z.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Inner::None(w) => w.flush(),
            Inner::Gzip(g) => g.flush(),
            Inner::Zstd(z) => z.get_mut().flush(),
        }
    }
}

/// One block of gzip input on its way through compression.
struct Block {
    seq: u64,
    /// The previous block's last `dict_len` bytes, then this block's input.
    input: Vec<u8>,
    dict_len: usize,
    last: bool,
    /// Raw deflate output for this block.
    output: Vec<u8>,
}

/// What compresses one block; a parameter only so tests can inject failures
/// into the worker threads.
type BlockFn = fn(&mut Block, flate2::Compression) -> io::Result<()>;

struct Done {
    seq: u64,
    block: Option<Block>,
    result: io::Result<()>,
}

/// Compresses one block with a fresh compressor. A reset compressor is not
/// enough: it carries state over from whichever block it compressed before,
/// and which block that was depends on thread scheduling. (Reusing one reset
/// compressor per worker was tried and gave output that changed with the
/// thread count and from run to run; the fresh one costs no measurable
/// throughput against 1 MiB of compression work.)
fn deflate_block(block: &mut Block, level: flate2::Compression) -> io::Result<()> {
    let mut z = Compress::new(level, false);
    if block.dict_len > 0 {
        z.set_dictionary(&block.input[..block.dict_len])
            .map_err(|e| io::Error::other(format!("gzip: setting deflate dictionary: {e}")))?;
    }
    let input = &block.input[block.dict_len..];
    let flush = if block.last {
        FlushCompress::Finish
    } else {
        FlushCompress::Sync
    };

    // Larger than deflate's worst case (stored blocks, 5 bytes per 64 KiB,
    // plus the flush marker), so one call normally finishes the block. The
    // buffer size depends only on the input length, so even a second call
    // would happen at the same point on every machine.
    let bound = input.len() + input.len() / 16 + 4096;
    let out = &mut block.output;
    out.clear();
    out.resize(bound, 0);
    let mut written = 0;
    loop {
        let consumed = z.total_in() as usize;
        let status = z
            .compress(&input[consumed..], &mut out[written..], flush)
            .map_err(|e| io::Error::other(format!("gzip: deflate failed: {e}")))?;
        written = z.total_out() as usize;
        let all_in = z.total_in() as usize == input.len();
        let done = match flush {
            FlushCompress::Finish => status == Status::StreamEnd,
            // Sync is complete once all input is in and output space was
            // left over (so nothing is still pending inside the compressor).
            _ => all_in && written < out.len(),
        };
        if done {
            break;
        }
        if written == out.len() {
            out.resize(out.len() + 64 * 1024, 0);
        }
    }
    out.truncate(written);
    Ok(())
}

/// The pigz-style gzip writer. Compression runs on worker threads (or inline
/// for one thread); output is reordered and written from the caller's thread
/// so the sink need not be `Send`.
struct GzipWriter<W: Write> {
    out: W,
    level: flate2::Compression,
    compress: BlockFn,
    crc: crc32fast::Hasher,
    total_in: u64,
    /// Dictionary prefix plus the input of the block being filled.
    cur: Vec<u8>,
    cur_dict: usize,
    next_seq: u64,
    next_write: u64,
    pool: Option<Pool>,
    max_in_flight: u64,
    /// Finished blocks waiting for an earlier one before being written.
    ready: BTreeMap<u64, Block>,
    spare_inputs: Vec<Vec<u8>>,
    spare_outputs: Vec<Vec<u8>>,
    /// Set after any error: the stream is broken and must not be continued.
    failed: bool,
}

impl<W: Write> GzipWriter<W> {
    fn new(mut out: W, level: i32, threads: usize, compress: BlockFn) -> io::Result<Self> {
        out.write_all(&GZIP_HEADER)?;
        let level = flate2::Compression::new(level as u32);
        let pool = if threads > 1 {
            Some(Pool::start(threads, level, compress)?)
        } else {
            None
        };
        Ok(GzipWriter {
            out,
            level,
            compress,
            crc: crc32fast::Hasher::new(),
            total_in: 0,
            cur: Vec::with_capacity(DICT_SIZE + GZIP_BLOCK_SIZE),
            cur_dict: 0,
            next_seq: 0,
            next_write: 0,
            pool,
            // Enough to keep every worker busy while the caller's thread
            // writes output, yet a few MiB whatever the layer size.
            max_in_flight: 2 * threads as u64 + 1,
            ready: BTreeMap::new(),
            spare_inputs: Vec::new(),
            spare_outputs: Vec::new(),
            failed: false,
        })
    }

    fn check(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "gzip: the stream is unusable after an earlier error",
            ));
        }
        Ok(())
    }

    /// Marks the writer failed if `result` is an error.
    fn guard<T>(&mut self, result: io::Result<T>) -> io::Result<T> {
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.check()?;
        let mut rest = buf;
        while !rest.is_empty() {
            // A full block is only sent once more input shows it is not the
            // last one, so the final block never ends up empty.
            if self.cur.len() - self.cur_dict == GZIP_BLOCK_SIZE {
                let r = self.dispatch(false);
                self.guard(r)?;
            }
            let room = GZIP_BLOCK_SIZE - (self.cur.len() - self.cur_dict);
            let take = room.min(rest.len());
            self.cur.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        self.crc.update(buf);
        self.total_in += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        let r = self.drain(0).and_then(|()| self.out.flush());
        self.guard(r)
    }

    fn finish(mut self) -> io::Result<W> {
        self.check()?;
        let r = self.dispatch(true).and_then(|()| self.drain(0));
        self.guard(r)?;
        let mut trailer = [0u8; 8];
        trailer[..4].copy_from_slice(&self.crc.clone().finalize().to_le_bytes());
        // ISIZE is the input length modulo 2^32, by definition.
        trailer[4..].copy_from_slice(&(self.total_in as u32).to_le_bytes());
        self.out.write_all(&trailer)?;
        if let Some(pool) = self.pool.take() {
            pool.shutdown()?;
        }
        Ok(self.out)
    }

    /// Hands the current block over for compression and starts the next one
    /// with its dictionary.
    fn dispatch(&mut self, last: bool) -> io::Result<()> {
        let mut next = self.spare_inputs.pop().unwrap_or_default();
        next.clear();
        next.reserve(DICT_SIZE + GZIP_BLOCK_SIZE);
        let data = &self.cur[self.cur_dict..];
        let dict = &data[data.len().saturating_sub(DICT_SIZE)..];
        next.extend_from_slice(dict);
        let next_dict = dict.len();

        let mut output = self.spare_outputs.pop().unwrap_or_default();
        output.clear();
        let block = Block {
            seq: self.next_seq,
            input: std::mem::replace(&mut self.cur, next),
            dict_len: self.cur_dict,
            last,
            output,
        };
        self.cur_dict = next_dict;
        self.next_seq += 1;

        if self.pool.is_none() {
            let mut block = block;
            (self.compress)(&mut block, self.level)?;
            return self.write_block(block);
        }
        // `next_seq` already counts this block, so this leaves room for it.
        self.drain(self.max_in_flight)?;
        self.pool
            .as_ref()
            .expect("pool checked above")
            .submit(block)
    }

    /// Receives and writes finished blocks until at most `limit` are still
    /// outstanding.
    fn drain(&mut self, limit: u64) -> io::Result<()> {
        while self.next_seq - self.next_write > limit {
            let Some(pool) = &self.pool else {
                return Ok(());
            };
            let done = pool.recv()?;
            done.result?;
            let block = done.block.ok_or_else(|| {
                io::Error::other(format!("gzip: block {} came back without data", done.seq))
            })?;
            self.ready.insert(done.seq, block);
            while let Some(block) = self.ready.remove(&self.next_write) {
                self.write_block(block)?;
            }
        }
        Ok(())
    }

    fn write_block(&mut self, block: Block) -> io::Result<()> {
        debug_assert_eq!(block.seq, self.next_write);
        self.out.write_all(&block.output)?;
        self.next_write += 1;
        self.spare_inputs.push(block.input);
        self.spare_outputs.push(block.output);
        Ok(())
    }
}

/// Worker threads compressing blocks taken from a shared queue.
struct Pool {
    jobs: Option<Sender<Block>>,
    results: Receiver<Done>,
    workers: Vec<JoinHandle<()>>,
    /// Tells workers to drop queued blocks when the writer is abandoned.
    cancel: Arc<AtomicBool>,
}

impl Pool {
    fn start(threads: usize, level: flate2::Compression, compress: BlockFn) -> io::Result<Pool> {
        let (job_tx, job_rx) = mpsc::channel::<Block>();
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let job_rx = Arc::new(Mutex::new(job_rx));
        // Built before spawning so that, if a spawn fails, dropping it stops
        // the threads already started.
        let mut pool = Pool {
            jobs: Some(job_tx),
            results: done_rx,
            workers: Vec::with_capacity(threads),
            cancel: Arc::new(AtomicBool::new(false)),
        };
        for i in 0..threads {
            let jobs = Arc::clone(&job_rx);
            let done = done_tx.clone();
            let cancel = Arc::clone(&pool.cancel);
            let handle = std::thread::Builder::new()
                .name(format!("gzip-{i}"))
                .spawn(move || worker(&jobs, &done, &cancel, level, compress))
                .map_err(|e| io::Error::new(e.kind(), format!("gzip: starting thread: {e}")))?;
            pool.workers.push(handle);
        }
        Ok(pool)
    }

    fn submit(&self, block: Block) -> io::Result<()> {
        self.jobs
            .as_ref()
            .and_then(|jobs| jobs.send(block).ok())
            .ok_or_else(|| io::Error::other("gzip: compression threads have stopped"))
    }

    /// Every worker holds a sender, so this returns an error rather than
    /// blocking forever once they have all gone.
    fn recv(&self) -> io::Result<Done> {
        self.results
            .recv()
            .map_err(|_| io::Error::other("gzip: compression threads stopped unexpectedly"))
    }

    fn shutdown(mut self) -> io::Result<()> {
        self.jobs = None;
        let mut panicked = false;
        for handle in self.workers.drain(..) {
            panicked |= handle.join().is_err();
        }
        if panicked {
            return Err(io::Error::other("gzip: a compression thread panicked"));
        }
        Ok(())
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
        self.jobs = None;
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

fn worker(
    jobs: &Mutex<Receiver<Block>>,
    done: &Sender<Done>,
    cancel: &AtomicBool,
    level: flate2::Compression,
    compress: BlockFn,
) {
    loop {
        // No code panics while holding the lock, but a poisoned lock still
        // guards a usable receiver.
        let next = jobs.lock().unwrap_or_else(|e| e.into_inner()).recv();
        let Ok(mut block) = next else {
            return;
        };
        if cancel.load(Ordering::Relaxed) {
            continue;
        }
        let seq = block.seq;
        // A panic must reach the caller as an error: without a reply for
        // this block the caller would wait for it forever.
        let reply = match panic::catch_unwind(AssertUnwindSafe(|| compress(&mut block, level))) {
            Ok(result) => Done {
                seq,
                block: Some(block),
                result,
            },
            Err(_) => Done {
                seq,
                block: None,
                result: Err(io::Error::other(format!(
                    "gzip: compression thread panicked on block {seq}"
                ))),
            },
        };
        if done.send(reply).is_err() {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::read::GzDecoder;
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

    /// LCG output over a four-letter alphabet (DNA-like). Such data makes a
    /// reset-and-reused deflate compressor primed with a dictionary produce
    /// different bytes from a fresh one, so it catches scheduling-dependent
    /// compressor state that `mixed_data` does not.
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

    fn gunzip_single_member(gz: &[u8]) -> Vec<u8> {
        let mut dec = GzDecoder::new(gz);
        let mut out = Vec::new();
        dec.read_to_end(&mut out).unwrap();
        assert!(dec.into_inner().is_empty(), "bytes after the first member");
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
            assert_eq!(gunzip_single_member(&reference), data, "{n} bytes");
        }
    }

    #[test]
    fn gzip_output_is_identical_for_any_write_pattern() {
        let small = mixed_data(70_000, 6);
        assert!(
            compress_with(gzip_opts(1), &small, 1) == compress_with(gzip_opts(2), &small, 70_000)
        );

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
        assert_eq!(&gz[n - 8..n - 4], &crc32fast::hash(&data).to_le_bytes());
        assert_eq!(&gz[n - 4..], &(data.len() as u32).to_le_bytes());

        let empty = compress_with(gzip_opts(4), b"", 1);
        assert_eq!(
            empty,
            [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
    }

    #[test]
    fn gzip_blocks_are_cut_at_fixed_offsets() {
        // Two blocks: the first ends with a sync marker (empty stored block)
        // exactly where the second block's own deflate data begins.
        let data = mixed_data(MIB + 10, 3);
        let gz = compress_with(gzip_opts(2), &data, 4096);
        let first = {
            let mut b = Block {
                seq: 0,
                input: data[..MIB].to_vec(),
                dict_len: 0,
                last: false,
                output: Vec::new(),
            };
            deflate_block(&mut b, flate2::Compression::new(6)).unwrap();
            b.output
        };
        assert_eq!(&first[first.len() - 4..], &[0, 0, 0xff, 0xff]);
        assert_eq!(&gz[10..10 + first.len()], &first[..]);
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
            assert!(gunzip_single_member(&gz) == data, "level {level}");
        }
    }

    /// Fixed input for the pinned-digest tests: 3 MiB + 1 byte, so the
    /// output has full blocks, dictionaries and a short last block.
    fn golden_input() -> Vec<u8> {
        mixed_data(3 * MIB + 1, 42)
    }

    #[test]
    fn gzip_output_bytes_are_pinned() {
        let gz = compress_with(gzip_opts(2), &golden_input(), 65536);
        assert_eq!(
            sha256_hex(&gz),
            "5a7eb718b15518492bcabbc1a7a93d594ff120cd1870b0dc55362ffb1a4cbdfe",
            "gzip output changed: the deflate implementation or the block layout is different"
        );
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

    fn panic_on_block_2(block: &mut Block, level: flate2::Compression) -> io::Result<()> {
        if block.seq == 2 {
            panic!("injected failure");
        }
        deflate_block(block, level)
    }

    fn fail_on_block_1(block: &mut Block, level: flate2::Compression) -> io::Result<()> {
        if block.seq == 1 {
            return Err(io::Error::other("injected error"));
        }
        deflate_block(block, level)
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
        let err = Encoder::new(gzip_opts(2), Broken).err().unwrap();
        assert!(err.to_string().contains("disk full"));

        /// Accepts the header, then fails.
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
}
