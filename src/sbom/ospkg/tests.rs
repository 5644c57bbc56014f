use super::*;

const STATUS: &str = "\
Package: libc6
Status: install ok installed
Priority: optional
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries that are used by nearly all programs on
 .
 the system.

Package: old-thing
Status: deinstall ok config-files
Architecture: amd64
Version: 1.0-1

Package: zlib1g
Status: hold ok installed
Architecture: amd64
Source: zlib (1:1.2.13.dfsg-1)
Version: 1:1.2.13.dfsg-1+b1

Package: broken
Status: install reinstreq half-installed
Architecture: amd64
Version: 2.0

Package: base-files
Status: install ok installed
Architecture: amd64
Version: 12.4+deb12u5
";

#[test]
fn dpkg_status_keeps_installed_packages_only() {
    let parsed = parse_dpkg_status(STATUS.as_bytes());
    assert_eq!(parsed.skipped, 0);
    let names: Vec<&str> = parsed.packages.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["libc6", "zlib1g", "base-files"]);
    let libc = &parsed.packages[0];
    assert_eq!(libc.version, "2.36-9+deb12u4");
    assert_eq!(libc.arch.as_deref(), Some("amd64"));
    assert_eq!(libc.source.as_deref(), Some("glibc"));
    assert_eq!(libc.source_version, None);
    let zlib = &parsed.packages[1];
    assert_eq!(zlib.source.as_deref(), Some("zlib"));
    assert_eq!(zlib.source_version.as_deref(), Some("1:1.2.13.dfsg-1"));
}

#[test]
fn dpkg_malformed_entries_are_skipped_and_counted() {
    let text = "\
Package: Bad_Name
Status: install ok installed
Version: 1.0

Package: noversion
Status: install ok installed

Package: badversion
Status: install ok installed
Version: v1 0

Package: nostatus
Version: 1.0

just some text

Package: badsource
Status: install ok installed
Version: 1.0
Source: src (1.0

Package: good
Status: install ok installed
Version: 1.0
";
    let parsed = parse_dpkg_status(text.as_bytes());
    assert_eq!(parsed.skipped, 6);
    assert_eq!(parsed.packages.len(), 1);
    assert_eq!(parsed.packages[0].name, "good");
}

#[test]
fn dpkg_reads_crlf_non_utf8_and_truncated_input_without_panicking() {
    let mut bytes = b"Package: a1\r\nStatus: install ok installed\r\nVersion: 1.0\r\n\r\n".to_vec();
    bytes.extend_from_slice(b"Package: \xff\xfe\nStatus: install ok installed\nVersion: 1\n\n");
    bytes.extend_from_slice(b"Package: b2\nStatus: install ok inst");
    let parsed = parse_dpkg_status(&bytes);
    assert_eq!(parsed.packages.len(), 1);
    assert_eq!(parsed.packages[0].name, "a1");
    assert_eq!(parsed.skipped, 1, "a cut-short Status is not installed");
    for cut in 0..bytes.len() {
        let _ = parse_dpkg_status(&bytes[..cut]);
        let _ = parse_apk_installed(&bytes[..cut]);
        let _ = parse_os_release(&bytes[..cut]);
    }
    assert_eq!(parse_dpkg_status(b""), Parsed::default());
}

#[test]
fn distroless_status_d_files_need_no_status_field() {
    let text = "Package: tzdata\nVersion: 2024a-0+deb12u1\nArchitecture: all\n";
    let parsed = parse_dpkg_status_d(text.as_bytes());
    assert_eq!(parsed.skipped, 0);
    assert_eq!(parsed.packages[0].name, "tzdata");
    assert_eq!(parse_dpkg_status(text.as_bytes()).skipped, 1);
    assert!(is_status_d_entry("libssl3"));
    assert!(is_status_d_entry("python3.11"));
    assert!(!is_status_d_entry("libssl3.md5sums"));
    assert!(!is_status_d_entry(""));
}

#[test]
fn parsed_results_add_up_across_status_d_files() {
    let mut all = Parsed::default();
    all.extend(parse_dpkg_status_d(b"Package: aa\nVersion: 1\n"));
    all.extend(parse_dpkg_status_d(b"Package: bb\n"));
    assert_eq!(all.packages.len(), 1);
    assert_eq!(all.skipped, 1);
}

const APK: &str = "\
C:Q1abc=
P:musl
V:1.2.5-r0
A:x86_64
S:403000
I:700000
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Someone <someone@example.org>
t:1712000000
F:lib
R:ld-musl-x86_64.so.1

C:Q1def=
P:busybox-binsh
V:1.36.1-r29
A:x86_64
L:GPL-2.0-only
o:busybox

P:noversion
A:x86_64

P:bad name
V:1.0
";

#[test]
fn apk_installed_gives_name_version_arch_license_and_origin() {
    let parsed = parse_apk_installed(APK.as_bytes());
    assert_eq!(parsed.skipped, 2);
    assert_eq!(parsed.packages.len(), 2);
    let musl = &parsed.packages[0];
    assert_eq!(
        (
            musl.name.as_str(),
            musl.version.as_str(),
            musl.arch.as_deref()
        ),
        ("musl", "1.2.5-r0", Some("x86_64"))
    );
    assert_eq!(musl.license.as_deref(), Some("MIT"));
    assert_eq!(
        musl.source, None,
        "origin equal to the name is not repeated"
    );
    let binsh = &parsed.packages[1];
    assert_eq!(binsh.source.as_deref(), Some("busybox"));
    assert_eq!(binsh.license.as_deref(), Some("GPL-2.0-only"));
}

#[test]
fn os_release_values_are_unquoted() {
    let text = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nNAME=\"Debian GNU/Linux\"\n\
                VERSION_ID=\"12\"\nID=debian\n# comment\nbroken line\n";
    let os = parse_os_release(text.as_bytes());
    assert_eq!(os.id.as_deref(), Some("debian"));
    assert_eq!(os.version_id.as_deref(), Some("12"));
    assert_eq!(
        os.pretty_name.as_deref(),
        Some("Debian GNU/Linux 12 (bookworm)")
    );
    assert_eq!(os.distro().as_deref(), Some("debian-12"));
    let alpine = parse_os_release(b"ID='alpine'\nVERSION_ID=3.20.3\n");
    assert_eq!(alpine.distro().as_deref(), Some("alpine-3.20.3"));
    let odd = parse_os_release(b"ID=\"unterminated\nVERSION_ID=\"a b\"\nPRETTY_NAME=\"x\\\"y\"\n");
    assert_eq!(odd.id, None);
    assert_eq!(odd.version_id, None, "white space is no version");
    assert_eq!(odd.pretty_name.as_deref(), Some("x\"y"));
    assert_eq!(parse_os_release(b"").distro(), None);
}

#[test]
fn purls_take_vendor_and_distro_from_os_release() {
    let deb = &parse_dpkg_status(STATUS.as_bytes()).packages[1];
    let os = parse_os_release(b"ID=debian\nVERSION_ID=12\n");
    assert_eq!(
        deb.purl(&os),
        "pkg:deb/debian/zlib1g@1:1.2.13.dfsg-1%2Bb1?arch=amd64&distro=debian-12"
    );
    let apk = &parse_apk_installed(APK.as_bytes()).packages[0];
    assert_eq!(
        apk.purl(&OsRelease::default()),
        "pkg:apk/alpine/musl@1.2.5-r0?arch=x86_64"
    );
    let wolfi = parse_os_release(b"ID=wolfi\n");
    assert_eq!(
        apk.purl(&wolfi),
        "pkg:apk/wolfi/musl@1.2.5-r0?arch=x86_64&distro=wolfi"
    );
}

#[test]
fn packages_past_the_bound_are_skipped() {
    let mut text = String::new();
    for i in 0..(MAX_PACKAGES + 3) {
        text.push_str(&format!("P:p{i}\nV:1\n\n"));
    }
    let parsed = parse_apk_installed(text.as_bytes());
    assert_eq!(parsed.packages.len(), MAX_PACKAGES);
    assert_eq!(parsed.skipped, 3);
}
