//! Just enough HTTP/1.1 for the Engine API: one request per connection
//! (`Connection: close`), a request body streamed in chunks, a response
//! read whole (the API's answers here are small JSON documents).
//!
//! Unix sockets and plain TCP speak it by hand over std streams: a
//! blocking client, since every call is one request and its answer, and
//! std's per-read and per-write timeouts bound every wait. TLS goes
//! through reqwest (already the registry client), fed from a bounded
//! channel so the archive is still streamed.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::os::unix::net::UnixStream;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::Duration;

use super::endpoint::{Address, Tls};

/// Connecting over TCP; a Unix socket connects at once or fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest silence of a short request (ping, info, inspect).
const SHORT_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest stall of a write of the archive: the engine unpacks what it
/// reads as it reads it, so a slow disk can hold it up a while.
const WRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// Longest wait for the answer to a load once the archive is sent: the
/// engine registers every layer it was sent first.
const LOAD_ANSWER_TIMEOUT: Duration = Duration::from_secs(900);
/// More than any answer the API gives to the calls made here.
const MAX_BODY: usize = 64 << 20;
const MAX_HEAD: usize = 64 << 10;

/// An answer: the status and the whole body.
#[derive(Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// Receives the request body; `sent` counts body bytes (not framing).
pub(crate) type BodyWriter<'a> = dyn FnMut(&mut dyn Write) -> crate::Result<()> + 'a;

/// What went wrong with a request: reaching the engine, or the body's
/// producer (whose error is kept as it is).
#[derive(Debug)]
pub(crate) enum Failure {
    /// Connecting, sending or reading the answer.
    Io(io::Error),
    /// The body's producer failed; the engine did not answer otherwise.
    Body(crate::Error),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

pub(crate) enum Client {
    Raw(Address),
    Tls {
        client: reqwest::blocking::Client,
        base: String,
    },
}

impl Client {
    pub fn new(address: &Address) -> io::Result<Client> {
        match address {
            Address::Tcp {
                authority,
                tls: Some(tls),
            } => Ok(Client::Tls {
                client: tls_client(tls)?,
                base: format!("https://{authority}"),
            }),
            a => Ok(Client::Raw(a.clone())),
        }
    }

    pub fn get(&self, path: &str) -> Result<Response, Failure> {
        match self {
            Client::Raw(a) => {
                let mut s = connect(a)?;
                s.set_timeouts(SHORT_TIMEOUT, SHORT_TIMEOUT)?;
                s.write_all(head("GET", path, None).as_bytes())?;
                s.flush()?;
                Ok(read_response(&mut *s)?)
            }
            Client::Tls { client, base } => {
                let r = client
                    .get(format!("{base}{path}"))
                    .timeout(SHORT_TIMEOUT)
                    .send()
                    .map_err(io::Error::other)?;
                let status = r.status().as_u16();
                let body = r.bytes().map_err(io::Error::other)?.to_vec();
                Ok(Response { status, body })
            }
        }
    }

    /// POSTs a body written by `body` as it goes, chunked.
    pub fn post_stream(
        &self,
        path: &str,
        content_type: &str,
        body: &mut BodyWriter<'_>,
    ) -> Result<Response, Failure> {
        match self {
            Client::Raw(a) => post_raw(a, path, content_type, body),
            Client::Tls { client, base } => {
                post_tls(client, &format!("{base}{path}"), content_type, body)
            }
        }
    }
}

trait Stream: Read + Write + Send {
    fn set_timeouts(&self, read: Duration, write: Duration) -> io::Result<()>;
}

impl Stream for UnixStream {
    fn set_timeouts(&self, read: Duration, write: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(read))?;
        self.set_write_timeout(Some(write))
    }
}

impl Stream for TcpStream {
    fn set_timeouts(&self, read: Duration, write: Duration) -> io::Result<()> {
        self.set_read_timeout(Some(read))?;
        self.set_write_timeout(Some(write))
    }
}

fn connect(address: &Address) -> io::Result<Box<dyn Stream>> {
    match address {
        // A Unix socket connects at once or fails: no timeout to set.
        Address::Unix(path) => Ok(Box::new(UnixStream::connect(path)?)),
        Address::Tcp { authority, .. } => {
            let mut last = io::Error::new(io::ErrorKind::NotFound, "no address");
            for a in authority.to_socket_addrs()? {
                match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
                    Ok(s) => {
                        s.set_nodelay(true)?;
                        return Ok(Box::new(s));
                    }
                    Err(e) => last = e,
                }
            }
            Err(last)
        }
    }
}

fn head(method: &str, path: &str, content_type: Option<&str>) -> String {
    let mut h = format!(
        "{method} {path} HTTP/1.1\r\nHost: docker\r\nUser-Agent: gantry/{}\r\n\
         Connection: close\r\n",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(ct) = content_type {
        h.push_str(&format!(
            "Content-Type: {ct}\r\nTransfer-Encoding: chunked\r\n"
        ));
    }
    h.push_str("\r\n");
    h
}

fn post_raw(
    address: &Address,
    path: &str,
    content_type: &str,
    body: &mut BodyWriter<'_>,
) -> Result<Response, Failure> {
    let mut s = connect(address)?;
    s.set_timeouts(LOAD_ANSWER_TIMEOUT, WRITE_TIMEOUT)?;
    let sent = (|| -> Result<(), Failure> {
        s.write_all(head("POST", path, Some(content_type)).as_bytes())?;
        let mut chunked = Chunked { inner: &mut *s };
        body(&mut chunked).map_err(Failure::Body)?;
        s.write_all(b"0\r\n\r\n")?;
        s.flush()?;
        Ok(())
    })();
    match sent {
        Ok(()) => Ok(read_response(&mut *s)?),
        Err(failure) => {
            // An engine that refuses the archive part way answers and
            // closes; its answer says why better than a broken pipe.
            let _ = s.set_timeouts(Duration::from_secs(5), WRITE_TIMEOUT);
            match read_response(&mut *s) {
                Ok(r) if r.status >= 400 => Ok(r),
                _ => Err(failure),
            }
        }
    }
}

/// HTTP/1.1 chunked framing over a stream; each write is one chunk (the
/// archive writer's buffer makes them large).
struct Chunked<'a> {
    inner: &'a mut dyn Stream,
}

impl Write for Chunked<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.inner
            .write_all(format!("{:x}\r\n", buf.len()).as_bytes())?;
        self.inner.write_all(buf)?;
        self.inner.write_all(b"\r\n")?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn read_response(stream: &mut dyn Stream) -> io::Result<Response> {
    let mut r = BufReader::new(stream);
    let bad = |m: &str| io::Error::new(io::ErrorKind::InvalidData, format!("bad HTTP answer: {m}"));
    let mut line = String::new();
    let mut head_len = 0;
    let mut read_line = |r: &mut BufReader<&mut dyn Stream>, line: &mut String| {
        line.clear();
        let n = r.by_ref().take(MAX_HEAD as u64).read_line(line)?;
        head_len += n;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the engine closed the connection without an answer",
            ));
        }
        if head_len > MAX_HEAD {
            return Err(bad("headers too long"));
        }
        Ok(())
    };
    let status = loop {
        read_line(&mut r, &mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad("no status line"))?;
        // 1xx answers come before the real one.
        if !(100..200).contains(&status) {
            break status;
        }
        loop {
            read_line(&mut r, &mut line)?;
            if line.trim().is_empty() {
                break;
            }
        }
    };
    let mut length: Option<usize> = None;
    let mut chunked = false;
    loop {
        read_line(&mut r, &mut line)?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        let Some((k, v)) = l.split_once(':') else {
            return Err(bad("a header without a colon"));
        };
        let v = v.trim();
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.parse().map_err(|_| bad("bad Content-Length"))?);
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            line.clear();
            r.by_ref().take(1024).read_line(&mut line)?;
            let size = line.trim().split(';').next().unwrap_or("");
            let size = usize::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
            if size == 0 {
                break;
            }
            if body.len() + size > MAX_BODY {
                return Err(bad("answer too large"));
            }
            let start = body.len();
            body.resize(start + size, 0);
            r.read_exact(&mut body[start..])?;
            let mut crlf = [0u8; 2];
            r.read_exact(&mut crlf)?;
        }
    } else if let Some(n) = length {
        if n > MAX_BODY {
            return Err(bad("answer too large"));
        }
        body.resize(n, 0);
        r.read_exact(&mut body)?;
    } else {
        r.take(MAX_BODY as u64 + 1).read_to_end(&mut body)?;
        if body.len() > MAX_BODY {
            return Err(bad("answer too large"));
        }
    }
    Ok(Response { status, body })
}

fn tls_client(tls: &Tls) -> io::Result<reqwest::blocking::Client> {
    let read = |name: &str| -> io::Result<Option<Vec<u8>>> {
        let p = tls.dir.join(name);
        match std::fs::read(&p) {
            Ok(b) => Ok(Some(b)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io::Error::new(e.kind(), format!("{}: {e}", p.display()))),
        }
    };
    let invalid = |what: &str, e: reqwest::Error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {what}: {e}", tls.dir.display()),
        )
    };
    let mut b = reqwest::blocking::Client::builder()
        .connect_timeout(CONNECT_TIMEOUT)
        .timeout(None::<Duration>)
        .danger_accept_invalid_certs(!tls.verify);
    if let Some(ca) = read("ca.pem")? {
        let certs = reqwest::Certificate::from_pem_bundle(&ca).map_err(|e| invalid("ca.pem", e))?;
        b = b.tls_certs_only(certs);
    }
    if let (Some(mut cert), Some(key)) = (read("cert.pem")?, read("key.pem")?) {
        cert.push(b'\n');
        cert.extend_from_slice(&key);
        let id = reqwest::Identity::from_pem(&cert).map_err(|e| invalid("cert.pem/key.pem", e))?;
        b = b.identity(id);
    }
    b.build().map_err(io::Error::other)
}

fn post_tls(
    client: &reqwest::blocking::Client,
    url: &str,
    content_type: &str,
    body: &mut BodyWriter<'_>,
) -> Result<Response, Failure> {
    // A few chunks in flight bound the memory the body takes.
    let (tx, rx) = sync_channel::<Vec<u8>>(4);
    std::thread::scope(|scope| {
        let request = client
            .post(url)
            .header("Content-Type", content_type)
            .timeout(LOAD_ANSWER_TIMEOUT)
            .body(reqwest::blocking::Body::new(ChannelReader {
                rx,
                chunk: Vec::new(),
                at: 0,
            }));
        let answer = scope.spawn(move || -> io::Result<Response> {
            let r = request.send().map_err(io::Error::other)?;
            let status = r.status().as_u16();
            let body = r.bytes().map_err(io::Error::other)?.to_vec();
            Ok(Response { status, body })
        });
        let mut w = ChannelWriter { tx: Some(tx) };
        let produced = body(&mut w);
        drop(w);
        let answer = answer
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("the request thread panicked")));
        match (produced, answer) {
            (_, Ok(r)) if r.status >= 400 => Ok(r),
            (Err(e), _) => Err(Failure::Body(e)),
            (Ok(()), a) => Ok(a?),
        }
    })
}

struct ChannelWriter {
    tx: Option<SyncSender<Vec<u8>>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let tx = self.tx.as_ref().expect("open until dropped");
        tx.send(buf.to_vec()).map_err(|_| {
            io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the engine stopped reading the archive",
            )
        })?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct ChannelReader {
    rx: Receiver<Vec<u8>>,
    chunk: Vec<u8>,
    at: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.at == self.chunk.len() {
            match self.rx.recv_timeout(WRITE_TIMEOUT) {
                Ok(c) => {
                    self.chunk = c;
                    self.at = 0;
                }
                // The writer is done (dropped): the end of the body.
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return Ok(0),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "the archive stalled",
                    ))
                }
            }
        }
        let n = buf.len().min(self.chunk.len() - self.at);
        buf[..n].copy_from_slice(&self.chunk[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixListener;

    /// A one-shot server on a Unix socket answering `answer` after reading
    /// the request head and, if chunked, its body; returns the bytes read.
    fn serve(answer: &'static [u8]) -> (tempfile::TempDir, std::thread::JoinHandle<Vec<u8>>) {
        let dir = tempfile::tempdir().unwrap();
        let listener = UnixListener::bind(dir.path().join("s")).unwrap();
        let h = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.ends_with(b"\r\n\r\n")
                || (got.windows(7).any(|w| w == b"chunked") && !got.ends_with(b"0\r\n\r\n"))
            {
                let n = c.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                got.extend_from_slice(&buf[..n]);
            }
            c.write_all(answer).unwrap();
            got
        });
        (dir, h)
    }

    #[test]
    fn chunked_answers_are_reassembled() {
        let (dir, h) = serve(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
        );
        let c = Client::new(&Address::Unix(dir.path().join("s"))).unwrap();
        let r = c.get("/_ping").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"abcde"[..]));
        assert!(h.join().unwrap().starts_with(b"GET /_ping HTTP/1.1\r\n"));
    }

    #[test]
    fn plain_tcp_speaks_the_same_http() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let authority = listener.local_addr().unwrap().to_string();
        let h = std::thread::spawn(move || {
            let (mut c, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut b = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                c.read_exact(&mut b).unwrap();
                head.push(b[0]);
            }
            c.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\n{}")
                .unwrap();
            head
        });
        let c = Client::new(&Address::Tcp {
            authority,
            tls: None,
        })
        .unwrap();
        let r = c.get("/images/x/json").unwrap();
        assert_eq!((r.status, r.body.as_slice()), (404, &b"{}"[..]));
        let head = String::from_utf8(h.join().unwrap()).unwrap();
        assert!(
            head.starts_with("GET /images/x/json HTTP/1.1\r\n"),
            "{head}"
        );
    }

    #[test]
    fn a_streamed_body_goes_out_in_chunks() {
        let (dir, h) = serve(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
        let c = Client::new(&Address::Unix(dir.path().join("s"))).unwrap();
        let r = c
            .post_stream("/images/load", "application/x-tar", &mut |w| {
                w.write_all(b"hello").unwrap();
                w.write_all(b"world!").unwrap();
                Ok(())
            })
            .unwrap();
        assert_eq!(r.body, b"ok");
        let got = String::from_utf8(h.join().unwrap()).unwrap();
        assert!(
            got.ends_with("\r\n\r\n5\r\nhello\r\n6\r\nworld!\r\n0\r\n\r\n"),
            "{got:?}"
        );
    }
}
