//! The fixtures under `testdata/`, and copies of them made to look as
//! different on disk as two checkouts of one commit can.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use super::oci::Layout;
use super::run::assert_ok;
use super::Project;

pub fn testdata(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(rel)
}

pub fn set_mtime(path: &Path, secs: u64) {
    let f = fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    f.set_modified(UNIX_EPOCH + Duration::from_secs(secs))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

/// How a copy of a fixture differs on disk from another copy. Git carries
/// only the executable bit, so only that is kept from the fixture's modes.
#[derive(Clone, Copy)]
pub struct CopyStyle {
    /// Create files in reverse order (other inode numbers, other readdir order).
    pub reverse: bool,
    pub file_mode: u32,
    pub exec_mode: u32,
    /// `None` leaves directories as the umask makes them.
    pub dir_mode: Option<u32>,
    /// Seconds since 1970 for every file and directory.
    pub mtime: u64,
}

impl CopyStyle {
    pub const WIDE: CopyStyle = CopyStyle {
        reverse: false,
        file_mode: 0o644,
        exec_mode: 0o755,
        dir_mode: Some(0o755),
        mtime: 1_000_000_000,
    };

    /// Other permission bits than 0644/0755, including the special bits a
    /// local build directory can have (setuid, setgid, sticky): none of them
    /// may leak.
    pub const NARROW: CopyStyle = CopyStyle {
        reverse: true,
        file_mode: 0o1600,
        exec_mode: 0o6710,
        dir_mode: Some(0o2700),
        mtime: 2_000_000_000,
    };
}

/// Copies the tree `src` into `dest` in `style`, without changing what a
/// build file can declare about it.
pub fn copy_tree(src: &Path, dest: &Path, style: CopyStyle) {
    let mut items: Vec<walkdir::DirEntry> = walkdir::WalkDir::new(src)
        .min_depth(1)
        .sort_by_file_name()
        .into_iter()
        .map(Result::unwrap)
        .collect();
    if style.reverse {
        items.reverse();
    }
    let mut dirs = Vec::new();
    let mut files = Vec::new();
    for item in &items {
        let rel = item.path().strip_prefix(src).unwrap();
        let to = dest.join(rel);
        fs::create_dir_all(to.parent().unwrap()).unwrap();
        let ft = item.file_type();
        if ft.is_dir() {
            fs::create_dir_all(&to).unwrap();
            dirs.push(to);
        } else if ft.is_symlink() {
            std::os::unix::fs::symlink(fs::read_link(item.path()).unwrap(), &to).unwrap();
        } else {
            fs::write(&to, fs::read(item.path()).unwrap()).unwrap();
            let exec = item.metadata().unwrap().permissions().mode() & 0o111 != 0;
            let mode = if exec {
                style.exec_mode
            } else {
                style.file_mode
            };
            fs::set_permissions(&to, fs::Permissions::from_mode(mode)).unwrap();
            files.push(to);
        }
    }
    // Last, because writing into a directory changes its mtime.
    for f in &files {
        set_mtime(f, style.mtime);
    }
    dirs.sort();
    for d in dirs.iter().rev() {
        set_mtime(d, style.mtime);
        if let Some(mode) = style.dir_mode {
            fs::set_permissions(d, fs::Permissions::from_mode(mode)).unwrap();
        }
    }
}

/// Copies `testdata/repro`, the fixture of the reproducibility tests.
pub fn copy_repro(dest: &Path, style: CopyStyle) {
    copy_tree(&testdata("repro"), dest, style);
}

/// Builds `testdata/repro` in a fresh copy and returns the project, the
/// layout and the printed digests.
pub fn build_repro_layout(env: &[(&str, &str)]) -> (Project, Layout, String) {
    let p = Project::new();
    copy_repro(p.path(), CopyStyle::WIDE);
    let mut c = p.cmd();
    c.args(["build", "-o", "layout/"]);
    for (k, v) in env {
        c.env(k, v);
    }
    let stdout = assert_ok(&c.output().unwrap(), "gantry build -o layout/");
    let layout = Layout(p.join("layout"));
    (p, layout, stdout)
}
