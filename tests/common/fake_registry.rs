//! A small distribution registry for tests: HTTP/1.1 on 127.0.0.1 in a
//! thread, serving manifests and blobs from memory, with optional bearer or
//! basic auth and scripted faults (statuses, dropped connections, wrong
//! bytes). Every request is logged so tests can count them.

use std::collections::{HashMap, VecDeque};
use std::io::{BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use base64::Engine;

use super::http::{read_request, respond};

#[derive(Clone, Debug)]
pub enum Auth {
    None,
    /// Token service at `/token`; with `user`, it wants those credentials.
    Bearer {
        user: Option<(String, String)>,
        expires_in: u64,
    },
    Basic {
        user: String,
        password: String,
    },
    /// Token service at `/token` that wants an OAuth2 refresh token POSTed.
    Refresh {
        refresh_token: String,
    },
}

#[derive(Clone, Debug)]
pub enum Fault {
    Status {
        status: u16,
        retry_after: Option<String>,
    },
    /// Close the connection without answering.
    Drop,
    /// Send the headers and half the body, then close.
    Truncate,
    /// Serve other bytes of the same length.
    Lie,
    /// Answer 401 as if the token had been revoked.
    Revoke,
    /// Wait before answering normally.
    Delay(Duration),
    /// Keep the connection open and send nothing, for a minute: a
    /// registry that accepted the request and hangs.
    Stall,
    /// Send the headers and half the body, then hang as `Stall` does.
    StallMidway,
    /// Answer 307 to the same path on this origin (`http://host:port`).
    Redirect(String),
}

/// How long a stalled answer hangs: far longer than any test waits.
const STALL: Duration = Duration::from_secs(60);

#[derive(Default)]
struct State {
    manifests: HashMap<String, (String, Vec<u8>)>,
    blobs: HashMap<String, Vec<u8>>,
    faults: Vec<(String, VecDeque<Fault>)>,
    tokens: HashMap<String, Instant>,
    issued: u64,
    log: Vec<String>,
}

pub struct FakeRegistry {
    pub port: u16,
    auth: Auth,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl FakeRegistry {
    pub fn start(auth: Auth) -> FakeRegistry {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, a, st) = (state.clone(), auth.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (s, a) = (s.clone(), a.clone());
                thread::spawn(move || serve(conn, port, &a, &s));
            }
        });
        FakeRegistry {
            port,
            auth,
            state,
            stop,
        }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn auth(&self) -> &Auth {
        &self.auth
    }

    /// Serves `bytes` as the manifest `repo:reference` (a tag or digest),
    /// and by its digest too.
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) {
        let digest = sha256(bytes);
        let mut s = self.state.lock().unwrap();
        for r in [reference.to_string(), digest] {
            s.manifests.insert(
                format!("{repo}:{r}"),
                (media_type.to_string(), bytes.to_vec()),
            );
        }
    }

    pub fn put_blob(&self, bytes: &[u8]) -> String {
        let digest = sha256(bytes);
        self.state
            .lock()
            .unwrap()
            .blobs
            .insert(digest.clone(), bytes.to_vec());
        digest
    }

    /// The next requests whose path contains `path_part` meet these faults,
    /// one each, in order.
    pub fn fault(&self, path_part: &str, faults: Vec<Fault>) {
        self.state
            .lock()
            .unwrap()
            .faults
            .push((path_part.to_string(), faults.into()));
    }

    /// `METHOD path auth` for every request so far (auth is `-`, `basic`,
    /// or `bearer`; never the secret itself).
    pub fn log(&self) -> Vec<String> {
        self.state.lock().unwrap().log.clone()
    }

    pub fn count(&self, part: &str) -> usize {
        self.log().iter().filter(|l| l.contains(part)).count()
    }

    pub fn tokens_issued(&self) -> u64 {
        self.state.lock().unwrap().issued
    }
}

impl Drop for FakeRegistry {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

pub fn sha256(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)))
}

fn error_body(code: &str, message: &str) -> Vec<u8> {
    format!(r#"{{"errors":[{{"code":"{code}","message":"{message}","detail":null}}]}}"#)
        .into_bytes()
}

fn serve(conn: TcpStream, port: u16, auth: &Auth, state: &Mutex<State>) {
    let mut reader = BufReader::new(conn.try_clone().unwrap());
    let Some(req) = read_request(&mut reader) else {
        return;
    };
    let auth_header = req.header("authorization").unwrap_or_default().to_string();
    let kind = if auth_header.starts_with("Bearer ") {
        "bearer"
    } else if auth_header.starts_with("Basic ") {
        "basic"
    } else {
        "-"
    };
    let fault = {
        let mut s = state.lock().unwrap();
        s.log.push(format!("{} {} {kind}", req.method, req.target));
        s.faults
            .iter_mut()
            .find(|(p, q)| req.target.contains(p.as_str()) && !q.is_empty())
            .and_then(|(_, q)| q.pop_front())
    };
    let c = &conn;
    let challenge = match auth {
        Auth::None => None,
        Auth::Bearer { .. } | Auth::Refresh { .. } => Some(format!(
            r#"Bearer realm="http://127.0.0.1:{port}/token",service="fake-registry""#
        )),
        Auth::Basic { .. } => Some(r#"Basic realm="fake""#.to_string()),
    };
    let unauthorized = |code: &str| {
        let h = challenge
            .clone()
            .map(|v| vec![("WWW-Authenticate", v)])
            .unwrap_or_default();
        respond(c, 401, &h, &error_body(code, "authentication required"));
    };

    if req.target.starts_with("/token") {
        if let Auth::Refresh { refresh_token } = auth {
            let form = String::from_utf8_lossy(&req.body).to_string();
            let fields: Vec<&str> = form.split('&').collect();
            let good = req.method == "POST"
                && fields.contains(&"grant_type=refresh_token")
                && fields.contains(&format!("refresh_token={refresh_token}").as_str());
            if !good {
                respond(
                    c,
                    401,
                    &[],
                    &error_body("UNAUTHORIZED", "bad refresh token"),
                );
                return;
            }
            let mut s = state.lock().unwrap();
            s.issued += 1;
            let token = format!("tok-{}", s.issued);
            s.tokens
                .insert(token.clone(), Instant::now() + Duration::from_secs(60));
            let body = format!(r#"{{"access_token":"{token}","expires_in":60}}"#);
            respond(
                c,
                200,
                &[("Content-Type", "application/json".into())],
                body.as_bytes(),
            );
            return;
        }
        if let Auth::Bearer { user, expires_in } = auth {
            if let Some((u, p)) = user {
                let want = format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"))
                );
                if auth_header != want {
                    respond(c, 401, &[], &error_body("UNAUTHORIZED", "bad credentials"));
                    return;
                }
            }
            let mut s = state.lock().unwrap();
            s.issued += 1;
            let token = format!("tok-{}", s.issued);
            s.tokens.insert(
                token.clone(),
                Instant::now() + Duration::from_secs(*expires_in),
            );
            let body = format!(r#"{{"token":"{token}","expires_in":{expires_in}}}"#);
            respond(
                c,
                200,
                &[("Content-Type", "application/json".into())],
                body.as_bytes(),
            );
        }
        return;
    }

    match fault {
        Some(Fault::Status {
            status,
            retry_after,
        }) => {
            let h = retry_after
                .map(|r| vec![("Retry-After", r)])
                .unwrap_or_default();
            respond(
                c,
                status,
                &h,
                &error_body("FAULT", &format!("scripted {status}")),
            );
            return;
        }
        Some(Fault::Drop) => {
            let _ = conn.shutdown(Shutdown::Both);
            return;
        }
        Some(Fault::Revoke) => {
            unauthorized("UNAUTHORIZED");
            return;
        }
        Some(Fault::Delay(d)) => thread::sleep(d),
        Some(Fault::Stall) => {
            thread::sleep(STALL);
            return;
        }
        Some(Fault::Redirect(origin)) => {
            respond(
                c,
                307,
                &[("Location", format!("{origin}{}", req.target))],
                b"",
            );
            return;
        }
        _ => {}
    }

    let authorized = match auth {
        Auth::None => true,
        Auth::Bearer { .. } | Auth::Refresh { .. } => auth_header
            .strip_prefix("Bearer ")
            .and_then(|t| state.lock().unwrap().tokens.get(t).copied())
            .is_some_and(|exp| Instant::now() < exp),
        Auth::Basic { user, password } => {
            auth_header
                == format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
                )
        }
    };
    if !authorized {
        unauthorized("UNAUTHORIZED");
        return;
    }
    if req.target == "/v2/" {
        respond(c, 200, &[], b"{}");
        return;
    }
    let Some(rest) = req.target.strip_prefix("/v2/") else {
        respond(c, 404, &[], b"");
        return;
    };
    let (body, headers) = if let Some((repo, r)) = rest.split_once("/manifests/") {
        let found = state
            .lock()
            .unwrap()
            .manifests
            .get(&format!("{repo}:{r}"))
            .cloned();
        match found {
            Some((mt, bytes)) => {
                let d = sha256(&bytes);
                (
                    bytes,
                    vec![("Content-Type", mt), ("Docker-Content-Digest", d)],
                )
            }
            None => {
                respond(
                    c,
                    404,
                    &[],
                    &error_body("MANIFEST_UNKNOWN", "manifest unknown"),
                );
                return;
            }
        }
    } else if let Some((_, d)) = rest.split_once("/blobs/") {
        let found = state.lock().unwrap().blobs.get(d).cloned();
        match found {
            Some(bytes) => (
                bytes,
                vec![("Content-Type", "application/octet-stream".into())],
            ),
            None => {
                respond(
                    c,
                    404,
                    &[],
                    &error_body("BLOB_UNKNOWN", "blob unknown to registry"),
                );
                return;
            }
        }
    } else {
        respond(c, 404, &[], b"");
        return;
    };
    match fault {
        Some(Fault::Lie) => {
            let mut other = body.clone();
            if let Some(b) = other.last_mut() {
                *b ^= 0xff;
            }
            respond(c, 200, &headers, &other);
        }
        Some(f @ (Fault::Truncate | Fault::StallMidway)) => {
            let mut head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n",
                body.len()
            );
            for (k, v) in &headers {
                head.push_str(&format!("{k}: {v}\r\n"));
            }
            head.push_str("\r\n");
            let mut w = &conn;
            let _ = w.write_all(head.as_bytes());
            let _ = w.write_all(&body[..body.len() / 2]);
            let _ = w.flush();
            if matches!(f, Fault::StallMidway) {
                thread::sleep(STALL);
            }
            let _ = conn.shutdown(Shutdown::Both);
        }
        _ => respond(c, 200, &headers, &body),
    }
}
