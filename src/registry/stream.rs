//! Sending a large request body (a blob upload) in large pieces.
//!
//! reqwest's blocking client reads a streamed body 8 KiB at a time and
//! hands each piece to its runtime thread through a channel with room for
//! one: two thread switches per 8 KiB, which for a 170 MB layer made up
//! half of gantry's CPU time during a push, on machines where the registry
//! (hashing and storing what it receives) wants the same cores. Here the
//! uploading thread reads the source in 1 MiB pieces into a queue of four,
//! and the request is sent by reqwest's async client on a runtime of one
//! thread shared by every upload. Memory stays bounded: per upload, the
//! four queued pieces, the one being read and the one being sent.
//!
//! Only the body differs: headers, retries and the reading of the answer
//! stay with the caller, which gets a blocking `Response` as from any other
//! request.
//!
//! A registry that stops taking the body, or never answers once it has it,
//! is given up after the client's timeout of silence. reqwest's own
//! `read_timeout` cannot do this: it runs from the start of the request to
//! the answer's headers, so it would cut off any upload that takes longer.
//! Here the clock restarts whenever the connection takes a frame of the
//! body (64 KiB, so a slow link still shows progress), and stops while the
//! connection waits for the source (a base layer streamed from another
//! registry, which has a timeout of its own).

use std::io::{self, Read};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use http_body::{Frame, SizeHint};
use reqwest::blocking::Response;
use reqwest::header::HeaderMap;
use reqwest::Url;

use super::Client;
use crate::error::Result;

/// Bytes per piece read from the source.
const PIECE: usize = 1 << 20;
/// Bytes per frame handed to the connection.
const FRAME: usize = 64 << 10;
/// Pieces read ahead of the connection.
const QUEUE: usize = 4;
/// Bytes of an error answer kept for the error message.
const ERROR_BODY_LIMIT: usize = 64 * 1024;

/// Why a streamed request failed.
pub(super) enum StreamError {
    /// Reading the body's source failed (the caller decides whether that is
    /// worth another attempt).
    Source(io::Error),
    /// The request failed.
    Send(reqwest::Error),
    /// The runtime lost the request.
    Lost(String),
    /// The connection took no byte of the body, or sent no byte of an
    /// answer, for the timeout.
    Stalled,
}

/// When the connection last made progress, and whether it is waiting for
/// the source (which is then what is slow, not the registry).
struct Activity {
    state: Mutex<(Instant, bool)>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            state: Mutex::new((Instant::now(), false)),
        }
    }

    fn mark(&self, starved: bool) {
        *self.state.lock().expect("activity lock") = (Instant::now(), starved);
    }

    /// When the connection will have been silent for `timeout`, or `None`
    /// if it already has.
    fn deadline(&self, timeout: Duration) -> Option<Instant> {
        let (last, starved) = *self.state.lock().expect("activity lock");
        if starved {
            return Some(Instant::now() + timeout);
        }
        let at = last + timeout;
        (Instant::now() < at).then_some(at)
    }
}

/// What the upload task ends with.
enum Answer {
    Http(reqwest::Error),
    Stalled,
}

impl From<reqwest::Error> for Answer {
    fn from(e: reqwest::Error) -> Answer {
        Answer::Http(e)
    }
}

impl Client {
    /// `PUT`s `size` bytes of `source` to `url` with `headers`. The answer
    /// comes back whole for an error status (up to 64 KiB of body), with
    /// its headers only otherwise.
    pub(super) fn put_streamed(
        &self,
        url: &Url,
        headers: HeaderMap,
        size: u64,
        mut source: Box<dyn Read + Send>,
    ) -> Result<std::result::Result<Response, StreamError>> {
        let streamer = self.streamer()?;
        let client = self.async_http(streamer, url)?;
        let timeout = self.opts.timeout;
        let (tx, rx) = tokio::sync::mpsc::channel(QUEUE);
        let activity = Arc::new(Activity::new());
        let request = client
            .put(url.clone())
            .headers(headers)
            .body(reqwest::Body::wrap(Pieces {
                rx,
                size,
                current: Bytes::new(),
                activity: activity.clone(),
            }))
            .send();
        let answer = streamer.runtime.spawn(async move {
            let mut request = Box::pin(request);
            let resp = loop {
                let Some(deadline) = activity.deadline(timeout) else {
                    return Err(Answer::Stalled);
                };
                let deadline = tokio::time::Instant::from_std(deadline);
                if let Ok(r) = tokio::time::timeout_at(deadline, &mut request).await {
                    break r?;
                }
            };
            let mut answer = http::Response::builder().status(resp.status());
            if let Some(h) = answer.headers_mut() {
                *h = resp.headers().clone();
            }
            let mut body = Vec::new();
            if !resp.status().is_success() {
                let mut resp = resp;
                loop {
                    let chunk = tokio::time::timeout(timeout, resp.chunk())
                        .await
                        .map_err(|_| Answer::Stalled)??;
                    let Some(chunk) = chunk else { break };
                    body.extend_from_slice(&chunk);
                    if body.len() >= ERROR_BODY_LIMIT {
                        body.truncate(ERROR_BODY_LIMIT);
                        break;
                    }
                }
            }
            Ok::<_, Answer>(answer.body(body).expect("status and headers are valid"))
        });

        let mut failed = None;
        loop {
            match read_piece(&mut source) {
                Ok(piece) if piece.is_empty() => break,
                Ok(piece) => {
                    // The request has ended early (refused, or the
                    // connection failed): its answer says why.
                    if tx.blocking_send(Ok(piece)).is_err() {
                        break;
                    }
                }
                Err(e) => {
                    let _ = tx.blocking_send(Err(io::Error::new(e.kind(), e.to_string())));
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(tx);
        let answer = streamer.runtime.block_on(answer);
        if let Some(e) = failed {
            return Ok(Err(StreamError::Source(e)));
        }
        Ok(match answer {
            Ok(Ok(resp)) => Ok(Response::from(resp)),
            Ok(Err(Answer::Http(e))) => Err(StreamError::Send(e)),
            Ok(Err(Answer::Stalled)) => Err(StreamError::Stalled),
            Err(e) => Err(StreamError::Lost(e.to_string())),
        })
    }
}

/// Up to [`PIECE`] bytes of `source`; empty at its end.
fn read_piece(source: &mut dyn Read) -> io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(PIECE);
    let mut filled = 0;
    while filled < PIECE {
        match source.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf.freeze())
}

/// The request body: pieces as the uploading thread reads them, handed on
/// in frames, of a size known in advance (so the request carries a
/// `Content-Length`).
struct Pieces {
    rx: tokio::sync::mpsc::Receiver<io::Result<Bytes>>,
    size: u64,
    /// What is left of the piece being sent.
    current: Bytes,
    activity: Arc<Activity>,
}

impl http_body::Body for Pieces {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<std::result::Result<Frame<Bytes>, io::Error>>> {
        let this = &mut *self;
        if this.current.is_empty() {
            match this.rx.poll_recv(cx) {
                Poll::Pending => {
                    this.activity.mark(true);
                    return Poll::Pending;
                }
                Poll::Ready(Some(Ok(piece))) => this.current = piece,
                Poll::Ready(other) => {
                    this.activity.mark(false);
                    return Poll::Ready(other.map(|r| r.map(Frame::data)));
                }
            }
        }
        this.activity.mark(false);
        let n = this.current.len().min(FRAME);
        Poll::Ready(Some(Ok(Frame::data(this.current.split_to(n)))))
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.size)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::ClientOptions;
    use std::io::{BufRead, BufReader, Cursor, Write};
    use std::net::TcpListener;

    /// Serves one request: returns its head and body, answers 201.
    fn serve_one() -> (Url, std::thread::JoinHandle<(String, Vec<u8>)>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!(
            "http://{}/up?digest=x",
            listener.local_addr().unwrap()
        ))
        .unwrap();
        let server = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            let mut r = BufReader::new(conn.try_clone().unwrap());
            let mut head = String::new();
            loop {
                let mut line = String::new();
                if r.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                    break;
                }
                head.push_str(&line.to_ascii_lowercase());
            }
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            let mut body = Vec::new();
            let _ = r.by_ref().take(len as u64).read_to_end(&mut body);
            if body.len() == len {
                (&conn)
                    .write_all(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
                    .unwrap();
            }
            (head, body)
        });
        (url, server)
    }

    fn client() -> Client {
        client_with(crate::registry::DEFAULT_TIMEOUT)
    }

    fn client_with(timeout: Duration) -> Client {
        Client::new(ClientOptions {
            ca_certs: Vec::new(),
            timeout,
            ..ClientOptions::from_env()
        })
        .unwrap()
    }

    /// Reads one request whole, then says nothing until the client goes.
    fn never_answers() -> Url {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = Url::parse(&format!("http://{}/up", listener.local_addr().unwrap())).unwrap();
        std::thread::spawn(move || {
            let (mut conn, _) = listener.accept().unwrap();
            let mut sink = [0u8; 64 << 10];
            while conn.read(&mut sink).is_ok_and(|n| n > 0) {}
        });
        url
    }

    #[test]
    fn an_upload_whose_answer_never_comes_is_given_up_after_the_timeout() {
        let url = never_answers();
        let start = Instant::now();
        let got = client_with(Duration::from_millis(500)).put_streamed(
            &url,
            HeaderMap::new(),
            3 << 20,
            Box::new(Cursor::new(vec![7u8; 3 << 20])),
        );
        assert!(matches!(got.unwrap(), Err(StreamError::Stalled)));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{:?}",
            start.elapsed()
        );
    }

    /// Gives a piece every `every`, `pieces` times.
    struct Slow {
        every: Duration,
        pieces: usize,
    }

    impl Read for Slow {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.pieces == 0 {
                return Ok(0);
            }
            std::thread::sleep(self.every);
            self.pieces -= 1;
            let n = buf.len().min(1000);
            buf[..n].fill(3);
            Ok(n)
        }
    }

    #[test]
    fn a_slow_source_is_not_taken_for_a_stalled_registry() {
        // The upload takes three times the timeout, all of it waiting for
        // the source; a clock from the start of the request (reqwest's
        // read_timeout) would cut it off.
        let (url, server) = serve_one();
        let resp = client_with(Duration::from_millis(400))
            .put_streamed(
                &url,
                HeaderMap::new(),
                4000,
                Box::new(Slow {
                    every: Duration::from_millis(300),
                    pieces: 4,
                }),
            )
            .unwrap()
            .unwrap_or_else(|_| panic!("upload failed"));
        assert_eq!(resp.status().as_u16(), 201);
        assert_eq!(server.join().unwrap().1, vec![3u8; 4000]);
    }

    #[test]
    fn a_body_of_several_pieces_arrives_whole_with_its_length() {
        let data: Vec<u8> = (0..PIECE * 5 / 2).map(|i| (i * 7 % 251) as u8).collect();
        let (url, server) = serve_one();
        let resp = client()
            .put_streamed(
                &url,
                HeaderMap::new(),
                data.len() as u64,
                Box::new(Cursor::new(data.clone())),
            )
            .unwrap()
            .unwrap_or_else(|_| panic!("upload failed"));
        assert_eq!(resp.status().as_u16(), 201);
        let (head, body) = server.join().unwrap();
        assert!(head.starts_with("put /up?digest=x "), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", data.len())),
            "{head}"
        );
        assert!(!head.contains("transfer-encoding"), "{head}");
        assert!(body == data, "the body arrived changed");
    }

    /// Fails after `ok` bytes.
    struct Breaks {
        ok: usize,
    }

    impl Read for Breaks {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.ok == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "digest mismatch",
                ));
            }
            let n = buf.len().min(self.ok);
            buf[..n].fill(1);
            self.ok -= n;
            Ok(n)
        }
    }

    #[test]
    fn a_source_that_fails_part_way_is_told_apart_from_the_network() {
        let (url, server) = serve_one();
        let got = client().put_streamed(
            &url,
            HeaderMap::new(),
            4 << 20,
            Box::new(Breaks { ok: 3 << 19 }),
        );
        match got.unwrap() {
            Err(StreamError::Source(e)) => {
                assert_eq!(e.kind(), io::ErrorKind::InvalidData);
                assert!(e.to_string().contains("digest mismatch"), "{e}");
            }
            _ => panic!("expected the source's error"),
        }
        let (_, body) = server.join().unwrap();
        assert!(body.len() < 4 << 20, "no complete body was sent");
    }
}
