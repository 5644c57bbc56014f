//! What a layer tar looks like inside: exactly the declared entries, sorted
//! with parents first, in ustar headers with a PAX record only where a value
//! does not fit, and nothing after the two end-of-archive blocks.

mod common;

use common::digest::sha256_hex;
use common::fixture::build_repro_layout;
use common::oci::Layout;
use common::run::{assert_ok, run_with_store};
use common::tarball::{lines, tar_entries, TarEntry};
use common::{digest_of, Project};

const TOOLS: &[&str] = &[
    r#"usr/ dir 0755 0:0 "":"""#,
    r#"usr/bin/ dir 0755 0:0 "":"""#,
    r#"usr/bin/tool file 25 0755 0:0 "":"""#,
    r#"usr/local/ dir 0755 0:0 "":"""#,
    r#"usr/local/bin/ dir 0755 0:0 "":"""#,
    r#"usr/local/bin/helper.sh file 27 0755 0:0 "":"""#,
    r#"usr/local/bin/tool file 25 0755 0:0 "":"""#,
];

const CONFIG: &[&str] = &[
    r#"etc/ dir 0755 0:0 "":"""#,
    r#"etc/demo/ dir 0750 1000:1000 "":"""#,
    r#"etc/demo/app.conf file 27 0644 1000:1000 "":"""#,
    r#"etc/demo/current symlink -> app.conf 0777 1000:1000 "":"""#,
    r#"etc/demo/nested/ dir 0750 1000:1000 "":"""#,
    r#"etc/demo/nested/deep.conf file 18 0644 1000:1000 "":"""#,
];

const DATA: &[&str] = &[
    r#"srv/ dir 0700 65532:65532 "app":"app""#,
    r#"srv/readme symlink -> /usr/share/demo/README.txt 0777 65532:65532 "app":"app""#,
    r#"usr/ dir 0755 0:0 "":"""#,
    r#"usr/share/ dir 0755 0:0 "":"""#,
    r#"usr/share/demo/ dir 0755 65532:65532 "app":"app""#,
    r#"usr/share/demo-extra.txt file 6 0600 65532:65532 "app":"app""#,
    r#"usr/share/demo/README.txt file 25 0644 65532:65532 "app":"app""#,
    r#"usr/share/demo/docs/ dir 0755 65532:65532 "app":"app""#,
    r#"usr/share/demo/docs/page.md file 13 0644 65532:65532 "app":"app""#,
    r#"var/ dir 0755 0:0 "":"""#,
    r#"var/lib/ dir 0755 0:0 "":"""#,
    r#"var/lib/demo/ dir 0755 65532:65532 "app":"app""#,
];

const PLAIN: &[&str] = &[r#"README file 25 0644 0:0 "":"""#];

#[test]
fn layer_tars_hold_exactly_the_declared_entries_sorted_with_parents_first() {
    let (_p, layout, out) = build_repro_layout(&[]);
    let manifest = layout.manifest(&digest_of(&out, "app"));
    let config = layout.config(&manifest);
    let layers = layout.layers(&manifest);
    let media: Vec<&str> = layers.iter().map(|l| l.0.as_str()).collect();
    assert_eq!(
        media,
        [
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar",
        ]
    );
    let diff_ids = config["rootfs"]["diff_ids"].as_array().unwrap();
    for (i, ((_, _, tar), want)) in layers.iter().zip([TOOLS, CONFIG, DATA, PLAIN]).enumerate() {
        assert_eq!(
            diff_ids[i].as_str().unwrap(),
            format!("sha256:{}", sha256_hex(tar)),
            "layer {i}: diff_id is not the digest of the uncompressed tar"
        );
        let (raw, resolved) = tar_entries(tar);
        assert_eq!(lines(&resolved), want, "layer {i} entries");

        let paths: Vec<&str> = resolved
            .iter()
            .map(|e| e.path.trim_end_matches('/'))
            .collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted, "layer {i} is not sorted by path");
        for (n, path) in paths.iter().enumerate() {
            if let Some((parent, _)) = path.rsplit_once('/') {
                assert!(
                    paths[..n].contains(&parent),
                    "layer {i}: {path} comes before its parent {parent}"
                );
            }
        }

        for e in &raw {
            assert!(
                !matches!(e.raw_type, b'x' | b'g' | b'L' | b'K'),
                "layer {i}: {} has an extension header ({}) it does not need",
                e.path,
                e.raw_type as char
            );
            assert!(e.ustar, "layer {i}: {} is not a POSIX ustar header", e.path);
        }
        assert_end_of_archive(tar, &raw, i);
    }
}

/// The archive ends right after its last entry with exactly two zero
/// blocks: no record padding to 10 KiB as tar(1) writes.
fn assert_end_of_archive(tar: &[u8], raw: &[TarEntry], layer: usize) {
    let end = raw.last().map_or(0, |e| e.data_end) as usize;
    assert_eq!(
        tar.len(),
        end + 1024,
        "layer {layer}: {} bytes after the last entry, expected two 512-byte blocks",
        tar.len() - end
    );
    assert!(
        tar[end..].iter().all(|b| *b == 0),
        "layer {layer}: end-of-archive blocks are not zero"
    );
    let mut pos = 0;
    for e in raw {
        assert_eq!(
            e.header_pos as usize, pos,
            "layer {layer}: gap before {}",
            e.path
        );
        pos = e.data_end as usize;
    }
}

#[test]
fn a_name_too_long_for_ustar_gets_one_pax_record_and_builds_reproducibly() {
    let long = format!("{}.txt", "n".repeat(120));
    let p = Project::new();
    p.write(&format!("tree/{long}"), "long\n");
    p.write("tree/short.txt", "short\n");
    p.write(
        "gantry.toml",
        r#"[image.long]
base = "scratch"
platform = "linux/amd64"

[[image.long.layer]]
files = [{ src = "tree/", dst = "/t/" }]
"#,
    );
    let out = p.ok(&["build", "-o", "layout/"]);
    let other = tempfile::tempdir().unwrap();
    let again = assert_ok(
        &run_with_store(&p, other.path(), &["build"], &[]),
        "second build",
    );
    assert_eq!(out, again, "the PAX header made the layer differ per run");

    let layout = Layout(p.join("layout"));
    let manifest = layout.manifest(&digest_of(&out, "long"));
    let (_, _, tar) = &layout.layers(&manifest)[0];
    let (raw, resolved) = tar_entries(tar);
    assert_eq!(
        resolved.iter().map(|e| e.path.as_str()).collect::<Vec<_>>(),
        ["t/", &format!("t/{long}"), "t/short.txt"]
    );
    let pax: Vec<usize> = raw
        .iter()
        .enumerate()
        .filter(|(_, e)| e.raw_type == b'x')
        .map(|(i, _)| i)
        .collect();
    assert_eq!(pax.len(), 1, "exactly the long name needs a PAX record");
    assert!(raw[pax[0] + 1].path.starts_with("t/nnnn"));
    assert!(
        !raw.iter().any(|e| matches!(e.raw_type, b'g' | b'L' | b'K')),
        "no global or GNU headers"
    );
    assert_end_of_archive(tar, &raw, 0);
}

#[test]
fn ids_and_owner_names_that_do_not_fit_ustar_get_pax_records() {
    // ustar holds ids up to 0o7777777 and names up to 31 bytes plus a NUL;
    // past that the value must survive in a PAX record, not be truncated.
    let fits = "u".repeat(31);
    let too_long = "g".repeat(32);
    let p = Project::new();
    p.write("a.txt", "a\n");
    p.write("b.txt", "b\n");
    p.write(
        "gantry.toml",
        format!(
            r#"[image.ids]
base = "scratch"
platform = "linux/amd64"

[[image.ids.layer]]
files = [
  {{ src = "a.txt", dst = "/a", owner = "2097151:2097151", uname = "{fits}", gname = "{fits}" }},
  {{ src = "b.txt", dst = "/b", owner = "3000000:2097152", uname = "{too_long}", gname = "{fits}" }},
]
"#
        ),
    );
    let out = p.ok(&["build", "-o", "layout/"]);
    let layout = Layout(p.join("layout"));
    let manifest = layout.manifest(&digest_of(&out, "ids"));
    let (_, _, tar) = &layout.layers(&manifest)[0];
    let (raw, resolved) = tar_entries(tar);
    assert_eq!(
        lines(&resolved),
        [
            format!(r#"a file 2 0644 2097151:2097151 "{fits}":"{fits}""#),
            format!(r#"b file 2 0644 3000000:2097152 "{too_long}":"{fits}""#),
        ]
    );
    let kinds: Vec<u8> = raw.iter().map(|e| e.raw_type).collect();
    assert_eq!(
        kinds,
        [b'0', b'x', b'0'],
        "only the entry that does not fit has a PAX header"
    );
    assert_end_of_archive(tar, &raw, 0);
}
