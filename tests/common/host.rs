//! Facts about the machine the tests run on.

use std::process::Command;

use super::sh;

/// The platform of the host, for images that run a binary copied from it.
pub fn host_platform() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "linux/arm64",
        "x86_64" => "linux/amd64",
        other => panic!("no test platform for host architecture {other}"),
    }
}

pub fn host_architecture() -> &'static str {
    host_platform().trim_start_matches("linux/")
}

pub fn is_root() -> bool {
    sh(Command::new("id").arg("-u")).trim() == "0"
}
