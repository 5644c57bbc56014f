//! Layer compression with pinned implementations and deterministic output.
//!
//! The compressed bytes depend only on the input bytes, the compression, its
//! level and the pinned library versions: never on the thread count, the
//! machine, how the input was split into `write` calls, or `flush` calls.
//!
//! Gzip is a series of gzip members (RFC 1952 §2.2: a gzip file is one or
//! more members, and readers decompress them in turn). The input is cut into
//! fixed [`GZIP_BLOCK_SIZE`] blocks and each block becomes one complete
//! member, compressed on its own by libdeflate. Because the cut points are a
//! constant and a member depends on nothing but its block, any number of
//! threads gives the same bytes. Every member has the header
//! `1f 8b 08 00 00 00 00 00 00 ff` (no name, MTIME 0, XFL 0, OS 255) and the
//! trailer of its own block: CRC-32 and length, both little-endian. A full
//! block is only closed once more input arrives, so the last member is never
//! empty; empty input gives one member with an empty deflate stream.
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

use crate::error::io_because;
pub use crate::media::Compression;
use libdeflater::{CompressionLvl, Compressor};

/// How to compress a layer. `compression` and `level` are part of the
/// output: with the pinned libraries they decide every byte, and a layer's
/// cache key includes them. `threads` changes speed only, never output
/// bytes, so a build on a laptop and one on a 64-core runner agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompressOptions {
    /// The algorithm, which also decides the layer's media type.
    pub compression: Compression,
    /// The algorithm's level, within [`Compression::level_range`] (1..=9 for
    /// gzip, 1..=19 for zstd); ignored for [`Compression::None`].
    pub level: i32,
    /// Gzip blocks compressed at once; 0 is taken as 1. Zstd and no
    /// compression use one thread whatever this says.
    pub threads: usize,
}

/// Size of the blocks compressed into one gzip member each. Part of the
/// output format: changing it changes every gzip layer's bytes.
pub const GZIP_BLOCK_SIZE: usize = 1 << 20;

/// The libdeflate release libdeflate-sys vendors (pinned in Cargo.toml); a
/// test checks it against Cargo.lock, so an upgrade changes the recipe.
pub const LIBDEFLATE_VERSION: &str = "1.26.1";

/// The libzstd release zstd-sys vendors (pinned in Cargo.toml); checked
/// against Cargo.lock like [`LIBDEFLATE_VERSION`].
pub const LIBZSTD_VERSION: &str = "1.5.7";

/// Everything besides the uncompressed tar stream that decides a layer's
/// compressed bytes: algorithm, level, compressor and its version, block
/// size and [`super::FORMAT_VERSION`]. Two layers with the same diff_id and
/// the same recipe are the same blob, which is what lets a registry serve
/// as a build cache: gantry writes the recipe on every layer descriptor it
/// produces, and trusts a blob named by a matching (diff_id, recipe) pair
/// instead of compressing again. The thread count is not part of it.
pub fn recipe(opts: &CompressOptions) -> String {
    let format = super::FORMAT_VERSION;
    match opts.compression {
        Compression::None => format!("none;format={format}"),
        Compression::Gzip => format!(
            "gzip;level={};libdeflate={LIBDEFLATE_VERSION};block={GZIP_BLOCK_SIZE};format={format}",
            opts.level
        ),
        Compression::Zstd => format!(
            "zstd;level={};libzstd={LIBZSTD_VERSION};format={format}",
            opts.level
        ),
    }
}

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
                gzip_member,
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

    /// Compresses what is still buffered, writes the end of the stream (the
    /// last gzip member, the zstd frame's end) and returns the sink. Without
    /// it the output is truncated: dropping an `Encoder` does not finish it.
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
    input: Vec<u8>,
    /// The whole gzip member for `input`: header, deflate data, trailer.
    output: Vec<u8>,
}

/// What compresses one block; a parameter only so tests can inject failures
/// into the worker threads.
type BlockFn = fn(&mut Block, &mut Compressor) -> io::Result<()>;

struct Done {
    seq: u64,
    block: Option<Block>,
    result: io::Result<()>,
}

/// Writes one block as a complete gzip member.
///
/// libdeflate keeps no state from one call to the next (each call compresses
/// a whole buffer from scratch), so a compressor can be reused for blocks in
/// any order; `gzip_output_is_identical_for_any_thread_count` checks this
/// with data that exposed carried-over state in a streaming deflate.
fn gzip_member(block: &mut Block, deflater: &mut Compressor) -> io::Result<()> {
    let input = &block.input;
    // The bound depends only on the compressor and the input length, and a
    // buffer of that size never runs short, so the output never depends on
    // how much room happened to be left.
    let bound = deflater.deflate_compress_bound(input.len());
    let head = GZIP_HEADER.len();
    let out = &mut block.output;
    out.clear();
    out.resize(head + bound, 0);
    out[..head].copy_from_slice(&GZIP_HEADER);
    let n = deflater
        .deflate_compress(input, &mut out[head..])
        .map_err(|e| {
            io_because(
                io::ErrorKind::Other,
                format!("gzip: block {}", block.seq),
                e,
            )
        })?;
    out.truncate(head + n);
    out.extend_from_slice(&libdeflater::crc32(input).to_le_bytes());
    // ISIZE is the length modulo 2^32 by definition; a block always fits.
    out.extend_from_slice(&(input.len() as u32).to_le_bytes());
    Ok(())
}

fn compression_level(level: i32) -> io::Result<CompressionLvl> {
    CompressionLvl::new(level).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("gzip compression level {level} is not supported by libdeflate"),
        )
    })
}

/// The block-parallel gzip writer. Compression runs on worker threads (or
/// inline for one thread); output is reordered and written from the caller's
/// thread so the sink need not be `Send`.
struct GzipWriter<W: Write> {
    out: W,
    compress: BlockFn,
    /// The compressor for one thread; workers have their own.
    inline: Option<Compressor>,
    /// Input of the block being filled.
    cur: Vec<u8>,
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
    fn new(out: W, level: i32, threads: usize, compress: BlockFn) -> io::Result<Self> {
        let level = compression_level(level)?;
        let (pool, inline) = if threads > 1 {
            (Some(Pool::start(threads, level, compress)?), None)
        } else {
            (None, Some(Compressor::new(level)))
        };
        Ok(GzipWriter {
            out,
            compress,
            inline,
            cur: Vec::with_capacity(GZIP_BLOCK_SIZE),
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
            // last one, so the last member never ends up empty.
            if self.cur.len() == GZIP_BLOCK_SIZE {
                let r = self.dispatch();
                self.guard(r)?;
            }
            let take = (GZIP_BLOCK_SIZE - self.cur.len()).min(rest.len());
            self.cur.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.check()?;
        let r = self.drain(0).and_then(|()| self.out.flush());
        self.guard(r)
    }

    fn finish(mut self) -> io::Result<W> {
        self.check()?;
        // Empty input still needs one member to be a gzip file at all.
        let r = if !self.cur.is_empty() || self.next_seq == 0 {
            self.dispatch()
        } else {
            Ok(())
        };
        let r = r.and_then(|()| self.drain(0));
        self.guard(r)?;
        if let Some(pool) = self.pool.take() {
            pool.shutdown()?;
        }
        Ok(self.out)
    }

    /// Hands the current block over for compression and starts the next one.
    fn dispatch(&mut self) -> io::Result<()> {
        let mut next = self.spare_inputs.pop().unwrap_or_default();
        next.clear();
        next.reserve(GZIP_BLOCK_SIZE);
        let mut output = self.spare_outputs.pop().unwrap_or_default();
        output.clear();
        let mut block = Block {
            seq: self.next_seq,
            input: std::mem::replace(&mut self.cur, next),
            output,
        };
        self.next_seq += 1;

        if let Some(deflater) = &mut self.inline {
            (self.compress)(&mut block, deflater)?;
            return self.write_block(block);
        }
        // `next_seq` already counts this block, so this leaves room for it.
        self.drain(self.max_in_flight)?;
        self.pool
            .as_ref()
            .ok_or_else(|| io::Error::other("gzip: no compressor"))?
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
    fn start(threads: usize, level: CompressionLvl, compress: BlockFn) -> io::Result<Pool> {
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
                .map_err(|e| io_because(e.kind(), "gzip: starting thread", e))?;
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
    level: CompressionLvl,
    compress: BlockFn,
) {
    let mut deflater = Compressor::new(level);
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
        let reply =
            match panic::catch_unwind(AssertUnwindSafe(|| compress(&mut block, &mut deflater))) {
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
#[path = "compress_tests.rs"]
mod tests;
