//! How a failure reads on stderr: one `error:` line naming what is at
//! fault, one `Caused by:` line per nested failure under it, then a `hint:`
//! when gantry knows what to do about it.

mod common;

use std::io::{Read, Write};
use std::net::{IpAddr, TcpListener, UdpSocket};

use common::host::host_platform;
use common::Project;

fn project(build_file: &str) -> Project {
    let p = Project::new();
    p.write("gantry.toml", build_file);
    p
}

/// The lines from the `error:` line on; asserts there is exactly one.
fn report(stderr: &str) -> Vec<&str> {
    let starts: Vec<usize> = stderr
        .lines()
        .enumerate()
        .filter(|(_, l)| l.starts_with("error: "))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(starts.len(), 1, "one `error:` line:\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr.lines().skip(starts[0]).collect()
}

#[test]
fn a_base_that_cannot_be_read_shows_each_cause_on_its_own_line() {
    let p = project("[image.a]\nbase = \"oci:missing\"\nplatform = \"linux/amd64\"\n");
    let err = p.fails(&["build"]);
    let lines = report(&err);
    assert!(
        lines[0].contains("gantry.toml:1") && lines[0].contains("image \"a\": base"),
        "{err}"
    );
    let causes: Vec<&str> = lines[1..]
        .iter()
        .filter_map(|l| l.strip_prefix("  Caused by: "))
        .collect();
    assert_eq!(causes.len(), lines.len() - 1, "only causes follow: {err}");
    assert!(causes.len() >= 2, "{err}");
    assert!(causes[0].contains("missing"), "the path first: {err}");
    assert!(
        causes.last().unwrap().contains("No such file or directory"),
        "the system's reason last: {err}"
    );
}

#[test]
fn a_misspelt_key_is_answered_with_the_nearest_known_key() {
    let p = project(
        "[image.x]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\nentrypiont = [\"/a\"]\n",
    );
    let err = p.fails(&["build"]);
    let lines = report(&err);
    assert!(
        lines[0].contains("gantry.toml:4:") && lines[0].contains("unknown field `entrypiont`"),
        "{err}"
    );
    assert_eq!(
        lines.last(),
        Some(&"hint: did you mean \"entrypoint\"?"),
        "{err}"
    );

    let p = project("[images.x]\nbase = \"scratch\"\n");
    let err = p.fails(&["build"]);
    assert_eq!(
        report(&err).last(),
        Some(&"hint: did you mean \"image\"?"),
        "{err}"
    );
}

#[test]
fn a_key_near_no_known_key_gets_no_hint() {
    let p = project("[image.x]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\nzzzzzz = 1\n");
    let err = p.fails(&["build"]);
    let lines = report(&err);
    assert!(lines[0].contains("unknown field `zzzzzz`"), "{err}");
    assert!(!err.contains("hint:"), "{err}");
}

#[test]
fn a_docker_tarball_of_an_image_for_other_machines_names_the_platforms_to_choose_from() {
    let others: Vec<&str> = ["linux/s390x", "linux/ppc64le", "linux/riscv64"]
        .into_iter()
        .filter(|p| *p != host_platform())
        .take(2)
        .collect();
    let p = project(&format!(
        "[image.a]\nbase = \"scratch\"\nplatforms = [\"{}\", \"{}\"]\n",
        others[0], others[1]
    ));
    let err = p.fails(&["build", "-o", "a.tar"]);
    let lines = report(&err);
    assert!(
        lines[0].contains("image \"a\"")
            && lines[0].contains("a docker tarball holds one platform"),
        "{err}"
    );
    assert_eq!(
        lines.last().copied(),
        Some(
            format!(
                "hint: choose one with --platform: {}, {}",
                others[0], others[1]
            )
            .as_str()
        ),
        "{err}"
    );
    assert!(!p.join("a.tar").exists());
    // Choosing one is the way out.
    p.ok(&["build", "-o", "a.tar", "--platform", others[0]]);
}

/// An address of this machine that is not loopback (gantry talks plain HTTP
/// to loopback registries unasked), found without sending anything.
fn non_loopback_address() -> Option<IpAddr> {
    let s = UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("192.0.2.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[test]
fn a_plain_http_registry_reached_over_https_suggests_insecure_registry() {
    let Some(ip) = non_loopback_address() else {
        eprintln!("skipped: this machine has no address but loopback");
        return;
    };
    let listener = TcpListener::bind((ip, 0)).unwrap();
    let host = format!("{ip}:{}", listener.local_addr().unwrap().port());
    // A plain HTTP server: whatever comes, a 400 in plain text.
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut buf = [0u8; 1024];
            let _ = conn.read(&mut buf);
            let _ = conn.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        }
    });
    let p = Project::new();
    let err = p.fails(&["pull", &format!("{host}/test/app:1"), "-o", "out.tar"]);
    let lines = report(&err);
    assert!(lines[0].contains(&format!("registry {host}")), "{err}");
    assert_eq!(
        lines.last().copied(),
        Some(
            format!("hint: the registry may speak plain HTTP: pass --insecure-registry {host}")
                .as_str()
        ),
        "{err}"
    );
    assert!(!p.join("out.tar").exists());
}

#[test]
fn a_registry_that_cannot_be_reached_shows_the_http_client_chain_under_the_request() {
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let host = format!("127.0.0.1:{port}");
    let p = Project::new();
    let err = p.fails(&["pull", &format!("{host}/test/app:1"), "-o", "out.tar"]);
    let lines = report(&err);
    assert!(
        lines[0].contains(&format!("registry {host}"))
            && lines[0].contains(&format!("GET http://{host}/v2/"))
            && lines[0].contains("gave up after"),
        "{err}"
    );
    assert!(lines.len() > 2, "{err}");
    assert!(
        lines[1..].iter().all(|l| l.starts_with("  Caused by: ")),
        "{err}"
    );
    assert!(
        lines
            .last()
            .unwrap()
            .to_lowercase()
            .contains("connection refused"),
        "{err}"
    );
}
