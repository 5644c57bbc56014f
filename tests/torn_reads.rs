//! A source file rewritten in place while gantry reads it: the layer holds
//! one version of it whole, or the build fails naming the file; never a mix.

mod common;

use std::fs;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use common::oci::Layout;
use common::{digest_of, Project};

/// Large enough that reading and hashing it takes longer than rewriting it.
const SIZE: usize = 24 << 20;

/// The bytes of `s/big` in the image's only layer.
fn big_file(layout: &Layout, stdout: &str) -> Vec<u8> {
    let manifest = layout.manifest(&digest_of(stdout, "t"));
    let layers = layout.layers(&manifest);
    let mut archive = tar::Archive::new(&layers[0].2[..]);
    for e in archive.entries().unwrap() {
        let mut e = e.unwrap();
        if e.path().unwrap().to_str() == Some("s/big") {
            let mut v = Vec::new();
            e.read_to_end(&mut v).unwrap();
            return v;
        }
    }
    panic!("no s/big in the layer");
}

#[test]
fn a_file_rewritten_in_place_during_a_build_is_never_half_of_each_version() {
    let p = Project::new();
    let (a, b) = (vec![b'a'; SIZE], vec![b'b'; SIZE]);
    let big = p.write("src/big", &a);
    p.write("src/small", "small\n");
    p.write(
        "gantry.toml",
        "[image.t]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\ncompression = \"none\"\n\
         [[image.t.layer]]\nfiles = [{ src = \"src/\", dst = \"/s/\" }]\n",
    );

    let stop = AtomicBool::new(false);
    // Stops the writer however the builds end, a failed assertion included,
    // or the scope would wait for it forever.
    struct Stop<'a>(&'a AtomicBool);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Relaxed);
        }
    }
    let rewrites = AtomicU64::new(0);
    let (mut built, mut refused) = (0, 0);
    std::thread::scope(|s| {
        s.spawn(|| {
            // In place, at the same size, alternating versions with pauses
            // of varying length, so that some reads overlap a rewrite and
            // some fall between two.
            let f = fs::OpenOptions::new().write(true).open(&big).unwrap();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                f.write_all_at(if i % 2 == 0 { &b } else { &a }, 0).unwrap();
                rewrites.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(i * 53 % 300));
                i += 1;
            }
        });
        let _stop = Stop(&stop);
        // At least 12 builds, and more while the writer has hardly run: a
        // fast machine finishes 12 builds within a dozen rewrites.
        let mut run = 0;
        while run < 12 || (rewrites.load(Ordering::Relaxed) <= 24 && run < 400) {
            let dir = format!("out{run}");
            let out = p.run(&["build", "--format", "oci", "-o", &dir]);
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
            if out.status.success() {
                let got = big_file(&Layout(p.join(&dir)), &stdout);
                assert!(
                    got == a || got == b,
                    "run {run}: the layer holds neither version of src/big whole \
                     ({} bytes 'a', {} bytes 'b')",
                    got.iter().filter(|&&c| c == b'a').count(),
                    got.iter().filter(|&&c| c == b'b').count(),
                );
                built += 1;
            } else {
                assert!(
                    stderr.contains("src/big: the file changed"),
                    "run {run}: a failure must name the file that changed:\n{stderr}"
                );
                refused += 1;
            }
            run += 1;
        }
    });
    eprintln!(
        "{built} builds kept one version whole, {refused} refused, over {} rewrites",
        rewrites.load(Ordering::Relaxed)
    );
    assert!(
        rewrites.load(Ordering::Relaxed) > 12,
        "the file was hardly rewritten"
    );
}
