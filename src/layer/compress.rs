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
            Compression::Gzip => 4,
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
#[path = "compress_tests.rs"]
mod tests;
