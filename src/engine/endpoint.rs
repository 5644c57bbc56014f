//! Where the engine is, found as the docker CLI finds it: `DOCKER_HOST`,
//! else the docker context (`DOCKER_CONTEXT`, else `currentContext` of
//! `config.json`), else the default socket. Nothing here runs `docker`.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::digest::Digest;
use crate::error::{Error, Result};

/// The socket the engine listens on when nothing says otherwise.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// How to reach an engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Address {
    /// A Unix socket (`unix:///var/run/docker.sock`).
    Unix(PathBuf),
    /// `host:port` over TCP, in the clear or with TLS.
    Tcp {
        /// `host:port`.
        authority: String,
        /// TLS settings; `None` for plain HTTP.
        tls: Option<Tls>,
    },
}

/// TLS towards a TCP engine, as `DOCKER_TLS_VERIFY`/`DOCKER_CERT_PATH` or a
/// context's TLS directory give it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tls {
    /// Whether the engine's certificate is checked (against `ca` when it
    /// exists, else the system roots).
    pub verify: bool,
    /// The directory holding `ca.pem`, `cert.pem` and `key.pem` (each optional).
    pub dir: PathBuf,
}

/// An engine address and what named it, so errors can say what was tried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Where to connect.
    pub address: Address,
    /// What chose it: `DOCKER_HOST`, a docker context, or the default.
    pub found_by: String,
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.address {
            Address::Unix(p) => write!(f, "unix://{}", p.display())?,
            Address::Tcp { authority, tls } => {
                let scheme = if tls.is_some() { "tcp+tls" } else { "tcp" };
                write!(f, "{scheme}://{authority}")?
            }
        }
        write!(f, " (from {})", self.found_by)
    }
}

/// The environment the engine is found from; [`Lookup::from_process`]
/// reads the real one, tests build their own.
#[derive(Debug, Clone, Default)]
pub struct Lookup {
    /// `DOCKER_HOST`.
    pub docker_host: Option<String>,
    /// `DOCKER_CONTEXT`.
    pub docker_context: Option<String>,
    /// `DOCKER_TLS_VERIFY`: TLS with the engine's certificate checked.
    pub tls_verify: bool,
    /// `DOCKER_TLS`: TLS without checking the engine's certificate.
    pub tls: bool,
    /// `DOCKER_CERT_PATH` (default: the config directory).
    pub cert_path: Option<PathBuf>,
    /// `DOCKER_CONFIG`, else `~/.docker`.
    pub config_dir: PathBuf,
}

impl Lookup {
    /// The lookup the docker CLI would do in this process.
    pub fn from_process() -> Lookup {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let config_dir = var("DOCKER_CONFIG").map(PathBuf::from).unwrap_or_else(|| {
            dirs::home_dir()
                .unwrap_or_else(|| PathBuf::from("/"))
                .join(".docker")
        });
        Lookup {
            docker_host: var("DOCKER_HOST"),
            docker_context: var("DOCKER_CONTEXT"),
            tls_verify: var("DOCKER_TLS_VERIFY").is_some(),
            tls: var("DOCKER_TLS").is_some(),
            cert_path: var("DOCKER_CERT_PATH").map(PathBuf::from),
            config_dir,
        }
    }

    /// The engine this environment names. A context or `DOCKER_HOST` that
    /// cannot be used is an error, not a reason to try the default socket:
    /// the docker CLI would not either.
    pub fn endpoint(&self) -> Result<Endpoint> {
        // DOCKER_CONTEXT wins over DOCKER_HOST; DOCKER_HOST over the
        // context config.json selects, as in the docker CLI.
        if let Some(name) = &self.docker_context {
            return self.context(name, "DOCKER_CONTEXT");
        }
        if self.docker_host.is_some() {
            return self.host_or_default();
        }
        if let Some(name) = self.current_context()? {
            return self.context(&name, "config.json currentContext");
        }
        self.host_or_default()
    }

    /// `DOCKER_HOST` if set, else the default socket.
    fn host_or_default(&self) -> Result<Endpoint> {
        let Some(host) = &self.docker_host else {
            return Ok(Endpoint {
                address: Address::Unix(PathBuf::from(DEFAULT_SOCKET)),
                found_by: "the default socket; DOCKER_HOST and a docker context are unset".into(),
            });
        };
        let tls = (self.tls_verify || self.tls).then(|| Tls {
            verify: self.tls_verify,
            dir: self
                .cert_path
                .clone()
                .unwrap_or_else(|| self.config_dir.clone()),
        });
        Ok(Endpoint {
            address: parse_host(host, tls, "DOCKER_HOST")?,
            found_by: format!("DOCKER_HOST={host}"),
        })
    }

    fn current_context(&self) -> Result<Option<String>> {
        #[derive(Deserialize)]
        struct Config {
            #[serde(rename = "currentContext", default)]
            current_context: Option<String>,
        }
        let path = self.config_dir.join("config.json");
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io(&path, e)),
        };
        let config: Config = serde_json::from_slice(&bytes).map_err(|e| {
            Error::format(path.display().to_string(), crate::error::json_problem(&e))
        })?;
        Ok(config.current_context.filter(|c| !c.is_empty()))
    }

    /// The endpoint of context `name`; `default` is the default socket (or
    /// `DOCKER_HOST`), as the docker CLI has it.
    fn context(&self, name: &str, why: &str) -> Result<Endpoint> {
        if name == "default" {
            let mut e = self.host_or_default()?;
            e.found_by = format!("docker context \"default\" ({why}): {}", e.found_by);
            return Ok(e);
        }
        #[derive(Deserialize)]
        struct Meta {
            #[serde(rename = "Endpoints", default)]
            endpoints: std::collections::BTreeMap<String, MetaEndpoint>,
        }
        #[derive(Deserialize)]
        struct MetaEndpoint {
            #[serde(rename = "Host", default)]
            host: Option<String>,
            #[serde(rename = "SkipTLSVerify", default)]
            skip_tls_verify: bool,
        }
        let hash = Digest::of(name.as_bytes()).hex().to_string();
        let path = self
            .config_dir
            .join("contexts/meta")
            .join(&hash)
            .join("meta.json");
        let what = format!("docker context {name:?} ({why})");
        let bytes = std::fs::read(&path).map_err(|e| {
            Error::environment(format!("{what}: cannot read {}", path.display()), e)
        })?;
        let meta: Meta = serde_json::from_slice(&bytes).map_err(|e| {
            Error::format(path.display().to_string(), crate::error::json_problem(&e))
        })?;
        let Some(host) = meta.endpoints.get("docker").and_then(|e| e.host.clone()) else {
            return Err(Error::format(
                path.display().to_string(),
                format!("{what} has no docker endpoint"),
            ));
        };
        let skip = meta.endpoints["docker"].skip_tls_verify;
        let tls_dir = self
            .config_dir
            .join("contexts/tls")
            .join(&hash)
            .join("docker");
        let tls = (tls_dir.is_dir() || skip).then_some(Tls {
            verify: !skip,
            dir: tls_dir,
        });
        Ok(Endpoint {
            address: parse_host(&host, tls, &what)?,
            found_by: what,
        })
    }
}

/// Parses a `DOCKER_HOST`-style address; `why` names where it came from.
pub fn parse_host(host: &str, tls: Option<Tls>, why: &str) -> Result<Address> {
    let bad = |reason: &str| {
        Error::Usage(format!(
            "{why}: engine address {:?}: {reason}",
            crate::redact::mask_userinfo(host)
        ))
    };
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(bad("no socket path"));
        }
        return Ok(Address::Unix(PathBuf::from(path)));
    }
    if let Some(rest) = host.strip_prefix("tcp://") {
        let authority = rest.trim_end_matches('/');
        if authority.is_empty() || authority.contains('/') || authority.contains('@') {
            return Err(bad("expected tcp://HOST[:PORT]"));
        }
        let has_port = authority
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.ends_with(']') || !p.is_empty())
            && !authority.ends_with(']');
        let authority = if has_port {
            authority.to_string()
        } else {
            // The engine's registered ports: 2376 with TLS, 2375 without.
            let port = if tls.is_some() { 2376 } else { 2375 };
            format!("{authority}:{port}")
        };
        return Ok(Address::Tcp { authority, tls });
    }
    if host.starts_with('/') {
        return Ok(Address::Unix(Path::new(host).to_path_buf()));
    }
    let scheme = host.split("://").next().unwrap_or(host);
    Err(bad(&format!(
        "the {scheme} scheme is not supported; use unix:// or tcp://"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(dir: &Path) -> Lookup {
        Lookup {
            config_dir: dir.to_path_buf(),
            ..Lookup::default()
        }
    }

    #[test]
    fn nothing_set_means_the_default_socket() {
        let dir = tempfile::tempdir().unwrap();
        let e = lookup(dir.path()).endpoint().unwrap();
        assert_eq!(e.address, Address::Unix(PathBuf::from(DEFAULT_SOCKET)));
        assert!(e.found_by.contains("default socket"));
    }

    #[test]
    fn docker_host_tcp_takes_the_tls_port_and_cert_path() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = lookup(dir.path());
        l.docker_host = Some("tcp://engine.example".into());
        l.tls_verify = true;
        l.cert_path = Some("/certs".into());
        let e = l.endpoint().unwrap();
        assert_eq!(
            e.address,
            Address::Tcp {
                authority: "engine.example:2376".into(),
                tls: Some(Tls {
                    verify: true,
                    dir: "/certs".into()
                })
            }
        );
        l.tls_verify = false;
        l.docker_host = Some("tcp://10.0.0.1:4243".into());
        assert_eq!(
            l.endpoint().unwrap().address,
            Address::Tcp {
                authority: "10.0.0.1:4243".into(),
                tls: None
            }
        );
    }

    #[test]
    fn unsupported_schemes_are_named() {
        let err = parse_host("ssh://me@box", None, "DOCKER_HOST").unwrap_err();
        assert!(err.to_string().contains("ssh scheme"), "{err}");
    }

    #[test]
    fn current_context_is_read_from_its_meta_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{},"currentContext":"colima"}"#,
        )
        .unwrap();
        let hash = Digest::of(b"colima").hex().to_string();
        let meta = dir.path().join("contexts/meta").join(hash);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            r#"{"Name":"colima","Endpoints":{"docker":{"Host":"unix:///run/colima.sock","SkipTLSVerify":false}}}"#,
        )
        .unwrap();
        let e = lookup(dir.path()).endpoint().unwrap();
        assert_eq!(e.address, Address::Unix("/run/colima.sock".into()));
        assert!(e.found_by.contains("colima"), "{}", e.found_by);
        // DOCKER_HOST wins over the context config.json selects.
        let mut l = lookup(dir.path());
        l.docker_host = Some("unix:///elsewhere.sock".into());
        assert_eq!(
            l.endpoint().unwrap().address,
            Address::Unix("/elsewhere.sock".into())
        );
    }

    #[test]
    fn a_missing_context_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut l = lookup(dir.path());
        l.docker_context = Some("gone".into());
        let err = l.endpoint().unwrap_err().to_string();
        assert!(err.contains("\"gone\""), "{err}");
    }
}
