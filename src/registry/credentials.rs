//! Registry credentials, found where docker and podman keep them, so that a
//! `docker login` or `podman login` done earlier is all gantry needs.
//!
//! Order (docker/cli's): in `$DOCKER_CONFIG/config.json` (or
//! `~/.docker/config.json`), a `credHelpers` entry for the host, then
//! `credsStore`, then `auths`; then podman's `auth.json`
//! (`$REGISTRY_AUTH_FILE`, else `$XDG_RUNTIME_DIR/containers/auth.json`).
//!
//! `Debug` on the types here never shows a secret, so a credential cannot
//! leak through a log line or an error built with `{:?}`.

use std::collections::BTreeMap;
use std::fmt;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use base64::Engine;
use serde::Deserialize;

use crate::error::{Error, JsonError, Result};

/// The key Docker Hub credentials are stored under, a relic of the v1 API.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// How long a credential helper may take, unless the client says otherwise.
const HELPER_TIMEOUT: Duration = super::DEFAULT_TIMEOUT;
const DOCKER_HUB_HOSTS: [&str; 4] = [
    "docker.io",
    "index.docker.io",
    "registry-1.docker.io",
    "registry.hub.docker.com",
];

/// What a login left for one registry. A secret: `Debug` shows at most the
/// user name.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// A user name and password (or a personal access token in its place),
    /// sent as Basic auth or exchanged for a bearer token.
    Basic {
        /// The account name.
        username: String,
        /// The password or access token.
        password: String,
    },
    /// An OAuth2 refresh token, exchanged at the token endpoint.
    IdentityToken(String),
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credential::IdentityToken(_) => f.write_str("IdentityToken(<redacted>)"),
        }
    }
}

/// Where to look; [`CredentialSources::from_env`] is what users get, tests
/// point it at temp files.
#[derive(Debug, Clone, Default)]
pub struct CredentialSources {
    /// Docker's `config.json`, read first; `None` skips it.
    pub docker_config: Option<PathBuf>,
    /// Podman's `auth.json`, read when docker's has nothing for the host;
    /// `None` skips it.
    pub podman_auth: Option<PathBuf>,
}

impl CredentialSources {
    /// The files docker and podman would read: `$DOCKER_CONFIG/config.json`
    /// (else `~/.docker/config.json`) and `$REGISTRY_AUTH_FILE` (else
    /// `$XDG_RUNTIME_DIR/containers/auth.json`). Files that do not exist
    /// are skipped when looked up, not here.
    pub fn from_env() -> CredentialSources {
        let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
        let docker_config = env("DOCKER_CONFIG")
            .map(PathBuf::from)
            .or_else(|| dirs::home_dir().map(|h| h.join(".docker")))
            .map(|d| d.join("config.json"));
        let podman_auth = env("REGISTRY_AUTH_FILE").map(PathBuf::from).or_else(|| {
            env("XDG_RUNTIME_DIR").map(|d| PathBuf::from(d).join("containers/auth.json"))
        });
        CredentialSources {
            docker_config,
            podman_auth,
        }
    }

    /// The credential for `host` (as contacted, e.g. `registry-1.docker.io`),
    /// or `None` for anonymous access.
    pub fn lookup(&self, host: &str) -> Result<Option<Credential>> {
        self.lookup_within(host, HELPER_TIMEOUT)
    }

    /// [`lookup`](Self::lookup), with a credential helper given `timeout`
    /// to answer.
    pub fn lookup_within(&self, host: &str, timeout: Duration) -> Result<Option<Credential>> {
        if let Some(path) = &self.docker_config {
            if let Some(cfg) = read_config(path)? {
                if let Some(c) = cfg.lookup(host, path, timeout)? {
                    return Ok(Some(c));
                }
            }
        }
        if let Some(path) = &self.podman_auth {
            if let Some(cfg) = read_config(path)? {
                if let Some(c) = cfg.lookup(host, path, timeout)? {
                    return Ok(Some(c));
                }
            }
        }
        Ok(None)
    }
}

/// A credentials file as read: `config.json` or `auth.json`.
#[derive(Default)]
struct ConfigFile {
    auths: BTreeMap<String, AuthEntry>,
    creds_store: Option<String>,
    cred_helpers: BTreeMap<String, String>,
}

#[derive(Default)]
struct AuthEntry {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
    identity_token: Option<String>,
}

fn read_config(path: &Path) -> Result<Option<ConfigFile>> {
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(path, e)),
    };
    parse_config(&bytes, path).map(Some)
}

/// Walks the file's JSON by hand rather than through serde's derive: a value
/// of the wrong type makes serde quote it (`invalid type: string "..."`),
/// and in this file the values are passwords. Errors name the file and the
/// JSON path at fault only. Keys docker or podman write that gantry does
/// not use (`email`, `HttpHeaders`, ...) are ignored.
fn parse_config(bytes: &[u8], path: &Path) -> Result<ConfigFile> {
    use serde_json::Value;
    let bad = |at: &str, what: &str| {
        Error::format(
            path.display().to_string(),
            format!("not a credentials file: {at} {what}"),
        )
    };
    let root: Value = serde_json::from_slice(bytes).map_err(|e| {
        Error::format_because(
            path.display().to_string(),
            "not a credentials file",
            JsonError::from(e),
        )
    })?;
    let Value::Object(root) = root else {
        return Err(bad("the document", "is not a JSON object"));
    };
    let object = |v: Option<&Value>, at: &str| match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m.clone())),
        Some(_) => Err(bad(at, "is not an object")),
    };
    let string = |v: Option<&Value>, at: &str| match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad(at, "is not a string")),
    };
    let mut cfg = ConfigFile {
        creds_store: string(root.get("credsStore"), "credsStore")?,
        ..ConfigFile::default()
    };
    for (host, v) in object(root.get("auths"), "auths")?.unwrap_or_default() {
        let at = format!("auths.{host:?}");
        let Some(e) = object(Some(&v), &at)? else {
            continue;
        };
        let field = |k: &str| string(e.get(k), &format!("{at}.{k}"));
        let entry = AuthEntry {
            auth: field("auth")?,
            username: field("username")?,
            password: field("password")?,
            identity_token: field("identitytoken")?,
        };
        cfg.auths.insert(host, entry);
    }
    for (host, v) in object(root.get("credHelpers"), "credHelpers")?.unwrap_or_default() {
        if let Some(helper) = string(Some(&v), &format!("credHelpers.{host:?}"))? {
            cfg.cred_helpers.insert(host, helper);
        }
    }
    Ok(cfg)
}

fn is_docker_hub(host: &str) -> bool {
    DOCKER_HUB_HOSTS.contains(&host)
}

/// `https://host:port/v1/` and `host:port` are the same key to docker.
fn key_host(key: &str) -> &str {
    let k = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    k.split('/').next().unwrap_or(k)
}

fn same_registry(key: &str, host: &str) -> bool {
    let k = key_host(key);
    k == host || (is_docker_hub(host) && is_docker_hub(k))
}

/// What a credential helper is asked for: docker/cli passes the hub's v1 URL
/// for Docker Hub and the bare host otherwise.
fn server_url(host: &str) -> String {
    if is_docker_hub(host) {
        DOCKER_HUB_KEY.to_string()
    } else {
        host.to_string()
    }
}

impl ConfigFile {
    fn lookup(&self, host: &str, path: &Path, timeout: Duration) -> Result<Option<Credential>> {
        if let Some((_, helper)) = self
            .cred_helpers
            .iter()
            .find(|(k, _)| same_registry(k, host))
        {
            return run_helper(helper, &server_url(host), timeout);
        }
        if let Some(store) = self.creds_store.as_deref().filter(|s| !s.is_empty()) {
            if let Some(c) = run_helper(store, &server_url(host), timeout)? {
                return Ok(Some(c));
            }
        }
        // An exact key wins over one that only names the same host.
        let entry = self
            .auths
            .get_key_value(host)
            .or_else(|| self.auths.iter().find(|(k, _)| same_registry(k, host)));
        let Some((key, entry)) = entry else {
            return Ok(None);
        };
        if let Some(t) = entry.identity_token.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credential::IdentityToken(t.to_string())));
        }
        if let Some(auth) = entry.auth.as_deref().filter(|a| !a.is_empty()) {
            // Neither the text nor what it decodes to is quoted: both hold
            // the password.
            let bad = |why: &str| {
                Error::format(
                    path.display().to_string(),
                    format!("auths.{key:?}.auth {why}; it must be base64 of user:password"),
                )
            };
            let decoded = base64::engine::general_purpose::STANDARD
                .decode(auth.trim())
                .map_err(|_| bad("is not valid base64"))?;
            let decoded =
                String::from_utf8(decoded).map_err(|_| bad("does not decode to UTF-8 text"))?;
            let (user, pass) = decoded
                .split_once(':')
                .ok_or_else(|| bad("decodes to text without a ':'"))?;
            return Ok(Some(Credential::Basic {
                username: user.to_string(),
                password: pass.to_string(),
            }));
        }
        if let (Some(u), Some(p)) = (&entry.username, &entry.password) {
            return Ok(Some(Credential::Basic {
                username: u.clone(),
                password: p.clone(),
            }));
        }
        Ok(None)
    }
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Runs `docker-credential-<name> get` with the server URL on stdin. A
/// helper that has not answered and exited within `timeout` (one waiting
/// for a keyring that never unlocks, say) is killed.
fn run_helper(name: &str, server: &str, timeout: Duration) -> Result<Option<Credential>> {
    let program = format!("docker-credential-{name}");
    let helper_err = |message: String, cause: Option<std::io::Error>| Error::Registry {
        registry: server.to_string(),
        reference: format!("credential helper {program}"),
        status: None,
        code: None,
        message,
        cause: cause.map(Into::into),
    };
    let mut child = Command::new(&program)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| helper_err("cannot run it".into(), Some(e)))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading its input is judged by its
        // exit status below, so a broken pipe here is not an error.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = wait_within(child, timeout).map_err(|e| match e {
        Waited::TimedOut => helper_err(
            format!("no answer within {} s; stopped it", timeout.as_secs_f64()),
            None,
        ),
        Waited::Io(e) => helper_err("cannot run it".into(), Some(e)),
    })?;
    if !out.status.success() {
        // Helpers answer "credentials not found" on stdout with a failure
        // status; that means anonymous access, not an error. Anything else
        // is not quoted, since a helper's output is where secrets live.
        let text = String::from_utf8_lossy(&out.stdout);
        if text.to_ascii_lowercase().contains("credentials not found") {
            return Ok(None);
        }
        return Err(helper_err(format!("`get` failed ({})", out.status), None));
    }
    let answer: HelperAnswer = serde_json::from_slice(&out.stdout)
        .map_err(|_| helper_err("`get` did not answer with the expected JSON".into(), None))?;
    if answer.secret.is_empty() {
        return Ok(None);
    }
    if answer.username == "<token>" {
        return Ok(Some(Credential::IdentityToken(answer.secret)));
    }
    Ok(Some(Credential::Basic {
        username: answer.username,
        password: answer.secret,
    }))
}

enum Waited {
    TimedOut,
    Io(std::io::Error),
}

/// The child's exit status and stdout, if it exits within `timeout`; else
/// it is killed. Its stdout is read on a thread of its own, so that a
/// helper writing more than a pipe holds cannot block on gantry.
fn wait_within(mut child: Child, timeout: Duration) -> std::result::Result<Output, Waited> {
    let deadline = Instant::now() + timeout;
    let (tx, rx) = mpsc::channel();
    if let Some(mut stdout) = child.stdout.take() {
        std::thread::spawn(move || {
            let mut out = Vec::new();
            let read = stdout.read_to_end(&mut out).map(|_| out);
            let _ = tx.send(read);
        });
    } else {
        let _ = tx.send(Ok(Vec::new()));
    }
    let give_up = |mut child: Child| {
        let _ = child.kill();
        let _ = child.wait();
        Waited::TimedOut
    };
    // The end of its output comes with its exit, normally.
    let stdout = match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(read) => read.map_err(Waited::Io)?,
        Err(_) => return Err(give_up(child)),
    };
    loop {
        if let Some(status) = child.try_wait().map_err(Waited::Io)? {
            return Ok(Output {
                status,
                stdout,
                stderr: Vec::new(),
            });
        }
        if Instant::now() >= deadline {
            return Err(give_up(child));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sources(dir: &Path, docker: &str) -> CredentialSources {
        std::fs::write(dir.join("config.json"), docker).unwrap();
        CredentialSources {
            docker_config: Some(dir.join("config.json")),
            podman_auth: Some(dir.join("auth.json")),
        }
    }

    #[test]
    fn auths_by_host_and_hub_key() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(
            dir.path(),
            r#"{"auths":{
                "https://index.docker.io/v1/":{"auth":"dXNlcjpwYXNz"},
                "registry.internal:5000":{"identitytoken":"refresh"}}}"#,
        );
        assert_eq!(
            s.lookup("registry-1.docker.io").unwrap(),
            Some(Credential::Basic {
                username: "user".into(),
                password: "pass".into()
            })
        );
        assert_eq!(
            s.lookup("registry.internal:5000").unwrap(),
            Some(Credential::IdentityToken("refresh".into()))
        );
        assert_eq!(s.lookup("ghcr.io").unwrap(), None);
    }

    #[test]
    fn podman_auth_file_is_the_fallback() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(dir.path(), r#"{"auths":{}}"#);
        std::fs::write(
            dir.path().join("auth.json"),
            r#"{"auths":{"quay.io":{"auth":"YTpi"}}}"#,
        )
        .unwrap();
        assert_eq!(
            s.lookup("quay.io").unwrap(),
            Some(Credential::Basic {
                username: "a".into(),
                password: "b".into()
            })
        );
    }

    #[test]
    fn helpers_are_asked_for_docker_hub_by_its_v1_key() {
        assert_eq!(server_url("registry-1.docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_url("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_url("ghcr.io"), "ghcr.io");
        assert!(same_registry(
            "https://index.docker.io/v1/",
            "registry-1.docker.io"
        ));
        assert!(same_registry(
            "https://registry.internal:5000",
            "registry.internal:5000"
        ));
        assert!(!same_registry(
            "registry.internal",
            "registry.internal:5000"
        ));
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credential::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        let t = Credential::IdentityToken("tok-123".into());
        assert!(!format!("{t:?}").contains("tok-123"));
    }

    #[test]
    fn malformed_files_name_the_json_path_never_the_value() {
        let dir = tempfile::tempdir().unwrap();
        for (file, path) in [
            (
                r#"{"auths":{"r.example":{"password":["hunter2"]}}}"#,
                r#"auths."r.example".password"#,
            ),
            (
                r#"{"auths":{"r.example":{"username":"u","password":7}}}"#,
                r#"auths."r.example".password"#,
            ),
            (
                r#"{"auths":{"r.example":"hunter2"}}"#,
                r#"auths."r.example""#,
            ),
            (r#"{"auths":["hunter2"]}"#, "auths"),
            (
                r#"{"credHelpers":{"r.example":{"hunter2":1}}}"#,
                r#"credHelpers."r.example""#,
            ),
            (r#"{"credsStore":["hunter2"]}"#, "credsStore"),
            (r#"["hunter2"]"#, "the document"),
        ] {
            let s = sources(dir.path(), file);
            let e = s.lookup("r.example").unwrap_err().display_chain();
            assert!(e.contains("config.json") && e.contains(path), "{file}: {e}");
            assert!(!e.contains("hunter2"), "{e}");
        }
        // A syntax error: its line and column, no bytes.
        let s = sources(
            dir.path(),
            "{\"auths\": {\"r.example\": {\"auth\": \"hunter2\" x}}}",
        );
        let e = s.lookup("r.example").unwrap_err().display_chain();
        assert!(e.contains("line 1") && !e.contains("hunter2"), "{e}");
    }

    #[test]
    fn a_bad_auth_says_what_is_wrong_without_the_value() {
        use base64::Engine;
        let dir = tempfile::tempdir().unwrap();
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        for (auth, why) in [
            ("!!hunter2!!".to_string(), "not valid base64"),
            (b64(b"hunter2"), "without a ':'"),
            (b64(b"hunter2\xff:x"), "UTF-8"),
        ] {
            let s = sources(
                dir.path(),
                &format!(r#"{{"auths":{{"https://r.example/v1/":{{"auth":"{auth}"}}}}}}"#),
            );
            let e = s.lookup("r.example").unwrap_err().display_chain();
            assert!(
                e.contains(r#"auths."https://r.example/v1/".auth"#) && e.contains(why),
                "{e}"
            );
            assert!(!e.contains("hunter2") && !e.contains(&auth), "{e}");
        }
    }

    #[test]
    fn bad_auth_names_the_file_not_the_value() {
        let dir = tempfile::tempdir().unwrap();
        let s = sources(
            dir.path(),
            r#"{"auths":{"r.example":{"auth":"!!secret!!"}}}"#,
        );
        let e = s.lookup("r.example").unwrap_err().display_chain();
        assert!(e.contains("config.json") && !e.contains("secret"), "{e}");
    }
}
