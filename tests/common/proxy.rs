//! A reverse proxy on 127.0.0.1 in front of a real registry, for what the
//! registry will not do on demand: it logs every request (to count them),
//! injects seeded faults (dropped connections before or after the registry
//! saw the request, truncated answers, 500, 503, 429, revoked tokens), and
//! can stand in as a bearer-token service that grants exactly the scopes
//! asked for and refuses requests, mounts included, that their token does
//! not cover. One request per connection: every answer says
//! `Connection: close`.

use std::collections::{BTreeSet, HashMap};
use std::io::{BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;

use super::http::{read_request, respond, Request};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Read the request, close without forwarding or answering.
    DropBefore,
    /// Forward the request, then close without answering: the registry
    /// did the work, the client does not know.
    DropAfter,
    /// Forward, then send half of the answer.
    Truncate,
    Status(u16),
    /// 429 with `Retry-After: 0`.
    TooMany,
    /// 401, and the token presented is forgotten: revoked mid-push (bearer
    /// mode), so only a new token gets through.
    Revoke,
    /// Forward, then answer with other bytes of the same length.
    Lie,
    /// Read the request, then keep the connection open and answer nothing
    /// for a minute: a registry that took an upload and never replies.
    Stall,
}

#[derive(Clone, Debug)]
pub struct Logged {
    pub method: String,
    pub path: String,
    pub query: String,
    /// The status the client got (0 when the connection was dropped).
    pub status: u16,
    pub fault: Option<Fault>,
    /// Whether the request carried an `Authorization` header.
    pub authorization: bool,
}

#[derive(Default, Clone)]
pub struct Options {
    /// Require bearer tokens from `/token` and check their scopes.
    pub bearer: bool,
    /// Seeded random faults on repository requests, with this probability
    /// per request (0 for none).
    pub fault_rate: f64,
    pub seed: u64,
    /// Faults to inject, in order, on requests whose method and path
    /// contain the given strings (before any random ones).
    pub scripted: Vec<(String, String, Fault)>,
    /// Turn the registry's absolute `Location` answers into relative ones
    /// (`/v2/…?…`), as some registries send them.
    pub relative_locations: bool,
    /// Answer blob `GET`s with a 307 to this origin (same path), as a
    /// registry whose storage serves blobs from elsewhere does.
    pub blobs_redirect_to: Option<String>,
    /// Point the `Location` of upload sessions (`POST …/blobs/uploads/`
    /// answers) at this origin (`http://host:port`), path and query kept:
    /// an upload handed to another host.
    pub upload_locations_to: Option<String>,
}

/// How `forward` rewrites a `Location` answer.
enum Rewrite<'a> {
    None,
    Relative,
    Origin(&'a str),
}

struct State {
    log: Vec<Logged>,
    rng: u64,
    opts: Options,
    tokens: HashMap<String, BTreeSet<(String, String)>>,
    issued: u64,
}

pub struct Proxy {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    pub fn start(upstream: u16, opts: Options) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().unwrap().port();
        let state = Arc::new(Mutex::new(State {
            log: Vec::new(),
            rng: opts.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            opts,
            tokens: HashMap::new(),
            issued: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let (st, sp) = (state.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if sp.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let st = st.clone();
                thread::spawn(move || serve(conn, upstream, port, &st));
            }
        });
        Proxy { port, state, stop }
    }

    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn log(&self) -> Vec<Logged> {
        self.state.lock().unwrap().log.clone()
    }

    /// The `PUT`s that carried blob bytes (one per uploaded blob).
    pub fn upload_puts(&self) -> Vec<Logged> {
        self.log()
            .into_iter()
            .filter(|l| l.method == "PUT" && l.path.contains("/blobs/uploads/"))
            .collect()
    }

    pub fn clear_log(&self) {
        self.state.lock().unwrap().log.clear();
    }

    pub fn tokens_issued(&self) -> u64 {
        self.state.lock().unwrap().issued
    }

    /// Requests to a repository (`/v2/<name>/...`), not pings or tokens.
    pub fn repo_requests(&self) -> Vec<Logged> {
        self.log()
            .into_iter()
            .filter(|l| l.path.starts_with("/v2/") && l.path != "/v2/")
            .collect()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn next_random(state: &mut State) -> u64 {
    // xorshift64*: the same seed gives the same fault sequence.
    let mut x = state.rng;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    state.rng = x;
    x.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn choose_fault(state: &mut State, req: &Request, path: &str) -> Option<Fault> {
    if let Some(i) = state
        .opts
        .scripted
        .iter()
        .position(|(m, p, _)| req.method == *m && path.contains(p.as_str()))
    {
        return Some(state.opts.scripted.remove(i).2);
    }
    if state.opts.fault_rate <= 0.0 || path == "/v2/" || !path.starts_with("/v2/") {
        return None;
    }
    let roll = (next_random(state) >> 11) as f64 / (1u64 << 53) as f64;
    if roll >= state.opts.fault_rate {
        return None;
    }
    let mut kinds = vec![
        Fault::DropBefore,
        Fault::DropAfter,
        Fault::Truncate,
        Fault::Status(500),
        Fault::Status(503),
        Fault::TooMany,
    ];
    if state.opts.bearer {
        kinds.push(Fault::Revoke);
    }
    let pick = next_random(state) as usize % kinds.len();
    Some(kinds[pick].clone())
}

/// `/v2/<name>/(blobs|manifests|tags)/...` → name.
fn repository_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/v2/")?;
    for marker in ["/blobs/", "/manifests/", "/tags/"] {
        if let Some(i) = rest.find(marker) {
            return Some(rest[..i].to_string());
        }
    }
    None
}

fn query_params(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|s| !s.is_empty())
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
            (decode(k), decode(v))
        })
        .collect()
}

fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("00");
                out.push(u8::from_str_radix(h, 16).unwrap_or(b'?'));
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The scopes a token request asks for, as (repository, action) pairs.
fn granted(query: &str) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    for (k, v) in query_params(query) {
        if k != "scope" {
            continue;
        }
        for scope in v.split(' ') {
            let parts: Vec<&str> = scope.split(':').collect();
            if parts.len() == 3 && parts[0] == "repository" {
                for action in parts[2].split(',') {
                    out.insert((parts[1].to_string(), action.to_string()));
                }
            }
        }
    }
    out
}

fn serve(conn: TcpStream, upstream: u16, port: u16, state: &Arc<Mutex<State>>) {
    let mut reader = BufReader::new(conn.try_clone().expect("clone"));
    let Some(mut req) = read_request(&mut reader) else {
        return;
    };
    let (path, query) = match req.target.split_once('?') {
        Some((p, q)) => (p.to_string(), q.to_string()),
        None => (req.target.clone(), String::new()),
    };
    let authorization = req.header("authorization").is_some();
    let log = |status: u16, fault: Option<Fault>| {
        state.lock().unwrap().log.push(Logged {
            method: req.method.clone(),
            path: path.clone(),
            query: query.clone(),
            status,
            fault,
            authorization,
        });
    };

    let bearer = state.lock().unwrap().opts.bearer;
    if bearer && path == "/token" {
        let mut st = state.lock().unwrap();
        st.issued += 1;
        let token = format!("t{}", st.issued);
        st.tokens.insert(token.clone(), granted(&query));
        drop(st);
        let body = format!("{{\"token\":\"{token}\",\"expires_in\":300}}");
        respond(
            &conn,
            200,
            &[("Content-Type", "application/json".into())],
            body.as_bytes(),
        );
        log(200, None);
        return;
    }
    let challenge = |scope: &str| {
        (
            "WWW-Authenticate",
            format!(
                "Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"proxy\",scope=\"{scope}\""
            ),
        )
    };
    let unauthorized = |scope: &str| {
        respond(
            &conn,
            401,
            &[
                challenge(scope),
                ("Content-Type", "application/json".into()),
            ],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        );
    };
    let token = req
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    if bearer {
        let scopes = token
            .as_ref()
            .and_then(|t| state.lock().unwrap().tokens.get(t).cloned());
        if let Some(repo) = repository_of(&path) {
            let action = if req.method == "GET" || req.method == "HEAD" {
                "pull"
            } else {
                "push"
            };
            let mut needed = vec![(repo.clone(), action.to_string())];
            // distribution's rule: a mount needs pull on its source.
            if let Some((_, from)) = query_params(&query).into_iter().find(|(k, _)| k == "from") {
                needed.push((from, "pull".to_string()));
            }
            let ok = scopes
                .as_ref()
                .is_some_and(|s| needed.iter().all(|n| s.contains(n)));
            if !ok {
                unauthorized(&format!("repository:{repo}:{action}"));
                log(401, None);
                return;
            }
        } else if scopes.is_none() && path == "/v2/" {
            unauthorized("");
            log(401, None);
            return;
        }
        req.headers
            .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
    }

    let redirect = state.lock().unwrap().opts.blobs_redirect_to.clone();
    if let Some(origin) = redirect.filter(|_| req.method == "GET" && path.contains("/blobs/")) {
        respond(
            &conn,
            307,
            &[("Location", format!("{origin}{}", req.target))],
            b"",
        );
        log(307, None);
        return;
    }

    let fault = {
        let mut st = state.lock().unwrap();
        choose_fault(&mut st, &req, &path)
    };
    match &fault {
        Some(Fault::DropBefore) => {
            let _ = conn.shutdown(Shutdown::Both);
            log(0, fault);
            return;
        }
        Some(Fault::Status(s)) => {
            respond(
                &conn,
                *s,
                &[],
                br#"{"errors":[{"code":"UNKNOWN","message":"injected"}]}"#,
            );
            log(*s, fault);
            return;
        }
        Some(Fault::Stall) => {
            log(0, fault);
            thread::sleep(std::time::Duration::from_secs(60));
            return;
        }
        Some(Fault::TooMany) => {
            respond(&conn, 429, &[("Retry-After", "0".into())], b"");
            log(429, fault);
            return;
        }
        Some(Fault::Revoke) => {
            // Revoked for good: only a new token gets past the check above.
            if let Some(t) = &token {
                state.lock().unwrap().tokens.remove(t);
            }
            let repo = repository_of(&path).unwrap_or_default();
            unauthorized(&format!("repository:{repo}:pull"));
            log(401, fault);
            return;
        }
        _ => {}
    }

    let (relative, upload_origin) = {
        let st = state.lock().unwrap();
        (
            st.opts.relative_locations,
            st.opts.upload_locations_to.clone(),
        )
    };
    let rewrite = match &upload_origin {
        Some(o) if req.method == "POST" && path.ends_with("/blobs/uploads/") => Rewrite::Origin(o),
        _ if relative => Rewrite::Relative,
        _ => Rewrite::None,
    };
    let Some((status, head, body)) = forward(&req, upstream, rewrite) else {
        let _ = conn.shutdown(Shutdown::Both);
        log(0, fault);
        return;
    };
    match &fault {
        Some(Fault::DropAfter) => {
            let _ = conn.shutdown(Shutdown::Both);
            log(0, fault);
        }
        Some(Fault::Lie) => {
            let mut c = &conn;
            let other: Vec<u8> = body.iter().map(|b| b ^ 0x5a).collect();
            let _ = c.write_all(&head);
            let _ = c.write_all(&other);
            let _ = c.flush();
            log(status, fault);
        }
        Some(Fault::Truncate) => {
            let mut c = &conn;
            let _ = c.write_all(&head);
            let _ = c.write_all(&body[..body.len() / 2]);
            let _ = conn.shutdown(Shutdown::Both);
            log(0, fault);
        }
        _ => {
            let mut c = &conn;
            let _ = c.write_all(&head);
            let _ = c.write_all(&body);
            let _ = c.flush();
            log(status, fault);
        }
    }
}

/// Sends the request to the registry and reads its whole answer. The Host
/// header is passed through, so the Locations the registry builds point at
/// the proxy. Returns the status, the rewritten head and the body.
fn forward(req: &Request, upstream: u16, rewrite: Rewrite<'_>) -> Option<(u16, Vec<u8>, Vec<u8>)> {
    let mut up = TcpStream::connect(("127.0.0.1", upstream)).ok()?;
    let mut head = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        if k.eq_ignore_ascii_case("connection") {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes()).ok()?;
    up.write_all(&req.body).ok()?;
    let mut answer = Vec::new();
    up.read_to_end(&mut answer).ok()?;
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head_text = String::from_utf8_lossy(&answer[..split]).into_owned();
    let body = answer[split + 4..].to_vec();
    let mut lines = head_text.lines();
    let status_line = lines.next()?;
    let status: u16 = status_line.split_whitespace().nth(1)?.parse().ok()?;
    let mut out = format!("{status_line}\r\n");
    let mut has_length = false;
    for l in lines {
        let lower = l.to_ascii_lowercase();
        if lower.starts_with("connection:") || lower.starts_with("transfer-encoding:") {
            continue;
        }
        has_length |= lower.starts_with("content-length:");
        match (l.split_once("://"), &rewrite) {
            (Some((_, rest)), Rewrite::Relative | Rewrite::Origin(_))
                if lower.starts_with("location:") =>
            {
                let path = rest.find('/').map_or("/", |i| &rest[i..]);
                let origin = match rewrite {
                    Rewrite::Origin(o) => o,
                    _ => "",
                };
                out.push_str(&format!("Location: {origin}{path}"));
            }
            _ => out.push_str(l),
        }
        out.push_str("\r\n");
    }
    let body = if head_text
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(&body)
    } else {
        body
    };
    if !has_length && req.method != "HEAD" {
        out.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    out.push_str("Connection: close\r\n\r\n");
    Some((status, out.into_bytes(), body))
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(nl) = b.windows(2).position(|w| w == b"\r\n") {
        let n = usize::from_str_radix(String::from_utf8_lossy(&b[..nl]).trim(), 16).unwrap_or(0);
        if n == 0 || b.len() < nl + 2 + n {
            break;
        }
        out.extend_from_slice(&b[nl + 2..nl + 2 + n]);
        b = &b[(nl + 4 + n).min(b.len())..];
    }
    out
}
