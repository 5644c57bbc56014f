use std::cell::Cell;
use std::fs;
use std::io::{Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

use super::*;
use crate::buildfile::BuildFile;
use crate::layer::compress::{CompressOptions, Compression};
use crate::layer::{build_from, BuiltLayer};
use crate::progress::Silent;
use crate::store::Store;

/// Bigger than the tar writer's copy buffer, so a file is read in several
/// pieces and can change between two of them.
const SIZE: usize = 600 << 10;

/// Reads the real files, and the first `tears` times a file has given its
/// first piece, rewrites all of it in place (same size) with `next`'s bytes
/// through another descriptor: the rest of that read sees the new bytes, as
/// it would with another process writing.
struct Tearing {
    tears: Cell<usize>,
    next: Vec<u8>,
}

struct TornFile<'t> {
    file: File,
    path: PathBuf,
    pieces: usize,
    tearing: &'t Tearing,
}

impl<'t> Sources for &'t Tearing {
    type File = TornFile<'t>;

    fn open(&self, path: &Path) -> io::Result<TornFile<'t>> {
        Ok(TornFile {
            file: File::open(path)?,
            path: path.to_path_buf(),
            pieces: 0,
            tearing: self,
        })
    }

    fn identity(&self, f: &TornFile<'t>) -> io::Result<FileStat> {
        Fs.identity(&f.file)
    }
}

impl Read for TornFile<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.file.read(buf)?;
        self.pieces += 1;
        let tears = &self.tearing.tears;
        if self.pieces == 1 && tears.get() > 0 && self.path.ends_with("big") {
            tears.set(tears.get() - 1);
            let w = fs::OpenOptions::new().write(true).open(&self.path)?;
            w.write_all_at(&self.tearing.next, 0)?;
        }
        Ok(n)
    }
}

fn job_entries(dir: &Path) -> Vec<Entry> {
    let text = "[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\
                [[image.a.layer]]\nfiles = [{ src = \"src/\", dst = \"/s/\" }]\n";
    let bf = BuildFile::parse(text, &dir.join("gantry.toml")).unwrap();
    crate::layer::fileset::resolve("a", &bf.images["a"].layers[0], 0).unwrap()
}

fn build_with(store: &Store, entries: &[Entry], sources: &Tearing) -> Result<BuiltLayer> {
    let job = LayerJob {
        image: "a",
        name: "l",
        entries,
        compress: CompressOptions {
            compression: Compression::None,
            level: 0,
            threads: 1,
        },
        cache: None,
        cold: false,
        checksums: true,
        spare: None,
    };
    build_from(store, &job, &Silent, &sources)
}

/// The content of `s/big` in an uncompressed layer blob.
fn big_file(store: &Store, layer: &BuiltLayer) -> Vec<u8> {
    let blob = store.read(&layer.desc.digest).unwrap();
    let mut archive = ::tar::Archive::new(&blob[..]);
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

fn setup() -> (tempfile::TempDir, tempfile::TempDir, Store) {
    let (d, s) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    fs::create_dir_all(d.path().join("src")).unwrap();
    fs::write(d.path().join("src/big"), vec![b'a'; SIZE]).unwrap();
    fs::write(d.path().join("src/small"), "small").unwrap();
    let store = Store::open(s.path()).unwrap();
    (d, s, store)
}

#[test]
fn a_file_rewritten_while_read_is_read_again_whole() {
    let (d, _s, store) = setup();
    let entries = job_entries(d.path());
    let tearing = Tearing {
        tears: Cell::new(1),
        next: vec![b'b'; SIZE],
    };
    let built = build_with(&store, &entries, &tearing).unwrap();
    assert_eq!(tearing.tears.get(), 0, "the read was torn");
    let got = big_file(&store, &built);
    assert!(
        got == vec![b'b'; SIZE],
        "the layer holds a mix of both versions"
    );
}

#[test]
fn a_file_rewritten_at_every_read_fails_the_layer_naming_it() {
    let (d, s, store) = setup();
    let entries = job_entries(d.path());
    let tearing = Tearing {
        tears: Cell::new(usize::MAX),
        next: vec![b'b'; SIZE],
    };
    let err = build_with(&store, &entries, &tearing)
        .unwrap_err()
        .to_string();
    let path = d.path().join("src/big");
    assert!(err.contains(&path.display().to_string()), "{err}");
    assert!(err.contains("changed each of the 3 times"), "{err}");
    assert_eq!(usize::MAX - tearing.tears.get(), ATTEMPTS);
    let leftovers: Vec<_> = fs::read_dir(s.path().join("tmp")).unwrap().collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_file_changed_after_the_scan_is_read_as_it_now_is() {
    let (d, _s, store) = setup();
    let entries = job_entries(d.path());
    let mut f = fs::OpenOptions::new()
        .write(true)
        .open(d.path().join("src/big"))
        .unwrap();
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(&vec![b'c'; SIZE]).unwrap();
    let untouched = Tearing {
        tears: Cell::new(0),
        next: Vec::new(),
    };
    let built = build_with(&store, &entries, &untouched).unwrap();
    assert!(big_file(&store, &built) == vec![b'c'; SIZE]);
}

#[test]
fn a_file_whose_size_changed_since_the_scan_fails_the_layer_naming_it() {
    let (d, _s, store) = setup();
    let entries = job_entries(d.path());
    // The tar header already holds the planned size: reading again cannot
    // help, so it fails at once.
    let path = d.path().join("src/small");
    fs::write(&path, "smallest").unwrap();
    let untouched = Tearing {
        tears: Cell::new(0),
        next: Vec::new(),
    };
    let err = build_with(&store, &entries, &untouched)
        .unwrap_err()
        .to_string();
    assert!(err.contains(&path.display().to_string()), "{err}");
}
