//! The base's file system as far as a build needs it, and the generated
//! `accounts` layer: `[image.NAME.accounts]` planned against the base's
//! `/etc/passwd`, `/etc/group`, `/etc/shadow` and `/etc/gshadow`, and named
//! users checked against the image's final account files.
//!
//! The base is looked into only for an image that declares accounts or
//! runs as a named user; any other keeps a registry base shallow. Looking
//! in means indexing every base layer's tar headers (whiteouts of an upper
//! layer decide what a lower one still shows), which for a layer whose
//! index the store lacks means downloading it once; the index is then kept
//! by diff_id, and later builds download only the layers that hold the
//! files read.

use std::io::Read;

use super::assemble::Base;
use super::{lay_down, BuildOptions, LayerReport};
use crate::accounts::{self, AccountFile, Accounts, BaseFiles, Plan};
use crate::buildfile::{ImageSpec, LayerSpec, Owner, ACCOUNTS_LAYER};
use crate::error::{Error, Result};
use crate::image::{Image, LayerDesc};
use crate::layer::fileset::{self, DIR_MODE, FILE_MODE};
use crate::layer::tar::{EntryHeader, EntryKind};
use crate::media::Compression;
use crate::progress::Reporter;
use crate::rootfs::{self, Kind, LayerIndex, RootFs};
use crate::store::Store;

/// Largest account file read from a base; real ones are kilobytes.
const MAX_ACCOUNT_FILE: u64 = 16 << 20;

/// Mode of a created `/etc/shadow` or `/etc/gshadow`.
const SHADOW_MODE: u32 = 0o640;

/// The files of the base, in [`AccountFile`] order.
const FILES: [AccountFile; 4] = [
    AccountFile::Passwd,
    AccountFile::Group,
    AccountFile::Shadow,
    AccountFile::Gshadow,
];

/// What the base's file system says, for the image built on it.
pub(super) struct BaseView {
    /// The merged view of the base's layers (empty for `scratch`).
    pub(super) rootfs: RootFs,
    /// The base's account files, in [`FILES`] order; `None` where missing.
    pub(super) files: [Option<Vec<u8>>; 4],
}

/// Whether building `spec` needs to look into its base.
pub(super) fn needs_view(spec: &ImageSpec) -> bool {
    spec.accounts.is_some() || spec.user.as_deref().is_some_and(is_named)
}

/// Whether a `user` value names a user or group (which must then exist).
fn is_named(user: &str) -> bool {
    !matches!(accounts::resolve_user(user, Some(b""), Some(b"")), Ok(None))
}

/// The uncompressed stream of one base layer, fetched first when only its
/// registry has it.
fn open_layer(
    image: &str,
    l: &LayerDesc,
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<Box<dyn Read>> {
    opts.registry.fetch_layer(image, l, store, reporter)?;
    let compression =
        Compression::of_layer_media_type(&l.media_type).ok_or_else(|| Error::Layer {
            image: image.to_string(),
            layer: l.digest.to_string(),
            message: format!(
                "the base's layer has media type {:?}, which is not a layer",
                l.media_type
            ),
            cause: None,
        })?;
    let blob = store.open_blob(&l.digest)?;
    rootfs::uncompressed(compression, blob).map_err(|e| Error::Layer {
        image: image.to_string(),
        layer: l.digest.to_string(),
        message: "cannot read the base's layer".into(),
        cause: Some(e.into()),
    })
}

/// Indexes the base's layers (from the store's indexes where it has them)
/// and, for an image that declares accounts or runs as a named user, reads
/// its account files.
pub(super) fn view(
    spec: &ImageSpec,
    base: &Base,
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<BaseView> {
    let Some(image) = &base.image else {
        return Ok(BaseView {
            rootfs: RootFs::new([]),
            files: Default::default(),
        });
    };
    let name = &spec.name;
    let mut indexes = Vec::with_capacity(image.layers.len());
    for l in &image.layers {
        let open = || open_layer(name, l, store, opts, reporter);
        indexes.push(LayerIndex::cached(store, &l.diff_id, open)?);
    }
    let rootfs = RootFs::new(&indexes);
    if !needs_view(spec) {
        // Only directories are asked about: no layer is opened again.
        return Ok(BaseView {
            rootfs,
            files: Default::default(),
        });
    }
    let paths = FILES.map(AccountFile::path);
    let read = rootfs.read_files(&paths, MAX_ACCOUNT_FILE, |k| {
        open_layer(name, &image.layers[k], store, opts, reporter)
    })?;
    let mut files: [Option<Vec<u8>>; 4] = Default::default();
    for (slot, contents) in files.iter_mut().zip(read) {
        *slot = contents;
    }
    Ok(BaseView { rootfs, files })
}

impl BaseView {
    fn base_files(&self) -> BaseFiles<'_> {
        BaseFiles {
            passwd: self.files[0].as_deref(),
            group: self.files[1].as_deref(),
            shadow: self.files[2].as_deref(),
            gshadow: self.files[3].as_deref(),
        }
    }
}

/// The `accounts` layer, laid down.
pub(super) struct AccountsLayer {
    /// The layer and how it was made.
    pub(super) built: (LayerDesc, LayerReport),
    /// The directories it makes, which the layers above find as the
    /// base's own.
    dirs: Vec<(String, (u32, u64, u64))>,
}

/// What a node learnt of its base before its layers go on it.
pub(super) struct Prepared {
    /// The base's file system and account files.
    pub(super) view: BaseView,
    /// The `accounts` layer, when the image declares accounts.
    pub(super) layer: Option<AccountsLayer>,
}

impl Prepared {
    /// The mode and owner (`(mode, uid, gid)`) of the directory at `path`
    /// (layer-writer form) in the image below the declared layers: the
    /// `accounts` layer's, else the base's.
    pub(super) fn dir(&self, path: &str) -> Option<(u32, u64, u64)> {
        if let Some(d) = self
            .layer
            .as_ref()
            .and_then(|l| l.dirs.iter().find(|d| d.0 == path))
        {
            return Some(d.1);
        }
        base_dir(&self.view.rootfs, path)
    }
}

/// The mode and owner of a directory of the base.
fn base_dir(rootfs: &RootFs, path: &str) -> Option<(u32, u64, u64)> {
    let n = rootfs.lookup(path).filter(|n| n.entry.kind == Kind::Dir)?;
    Some((n.entry.mode, n.entry.uid, n.entry.gid))
}

/// Plans `declared` against the base and lays the layer down.
pub(super) fn lay_accounts(
    spec: &ImageSpec,
    label: &str,
    declared: &Accounts,
    view: &mut BaseView,
    store: &Store,
    opts: &BuildOptions,
    reporter: &dyn Reporter,
) -> Result<AccountsLayer> {
    let plan = accounts::plan(declared, &view.base_files())?;
    let entries = entries(declared, &plan, view, store, opts.epoch)?;
    let layer = LayerSpec {
        name: ACCOUNTS_LAYER.to_string(),
        location: spec.location.clone(),
        owner: Owner::default(),
        mtime: None,
        compression: spec.compression,
        compression_level: spec.compression_level,
        entries: Vec::new(),
    };
    let built = lay_down(
        label,
        &layer,
        &entries,
        super::Cores::only(opts.threads),
        store,
        opts,
        reporter,
    )?;
    for w in &plan.files {
        let k = FILES
            .iter()
            .position(|f| *f == w.file)
            .expect("a known file");
        view.files[k] = Some(w.contents.clone());
    }
    let dirs = entries
        .iter()
        .filter(|e| e.header.kind == EntryKind::Dir)
        .map(|e| {
            let h = &e.header;
            (h.path.clone(), (h.mode, h.uid, h.gid))
        })
        .collect();
    Ok(AccountsLayer { built, dirs })
}

/// The layer's entries, sorted by path: parents the base lacks, the
/// account files that change and the homes.
fn entries(
    declared: &Accounts,
    plan: &Plan,
    view: &BaseView,
    store: &Store,
    mtime: u64,
) -> Result<Vec<fileset::Entry>> {
    let header = |path: &str, kind: EntryKind, mode: u32, uid: u64, gid: u64| EntryHeader {
        path: path.to_string(),
        kind,
        mode,
        uid,
        gid,
        uname: String::new(),
        gname: String::new(),
        mtime,
    };
    let mut out: Vec<fileset::Entry> = Vec::new();
    let shadow_gid = shadow_gid(plan, view);
    for w in &plan.files {
        let path = w.file.path().trim_start_matches('/');
        // A file the base has keeps its owner and mode; a new one gets
        // what distributions give it.
        let (mode, uid, gid) = match view.rootfs.resolve(path).and_then(|n| n.content()) {
            Some(c) => (c.mode, c.uid, c.gid),
            None if matches!(w.file, AccountFile::Shadow | AccountFile::Gshadow) => {
                (SHADOW_MODE, 0, shadow_gid)
            }
            None => (FILE_MODE, 0, 0),
        };
        let (digest, size) = store.put(&w.contents)?;
        let source = store.blob_path(&digest);
        let meta = std::fs::metadata(&source).map_err(|e| Error::io(&source, e))?;
        out.push(fileset::Entry {
            header: header(path, EntryKind::File { size }, mode, uid, gid),
            source: Some(source),
            stat: Some(fileset::file_stat(&meta)),
        });
    }
    for (home, user) in plan
        .homes
        .iter()
        .zip(declared.users.iter().filter(|u| u.create_home))
    {
        let path = home.path.trim_start_matches('/');
        if let Some(node) = view.rootfs.lookup(path) {
            if node.entry.kind != Kind::Dir {
                return Err(Error::BuildFile {
                    location: user.location.clone(),
                    message: format!(
                        "user {:?}: home {:?} is not a directory in the base (it is a {}); \
                         give another `home`, or `create_home = false`",
                        user.name,
                        home.path,
                        kind_name(node.entry.kind)
                    ),
                });
            }
        }
        out.push(fileset::Entry {
            header: header(
                path,
                EntryKind::Dir,
                home.mode,
                u64::from(home.uid),
                u64::from(home.gid),
            ),
            source: None,
            stat: None,
        });
    }
    // Every parent gets an entry: a directory the base has keeps its owner
    // and mode (see [`fileset::Resolved::over_base`]), one it lacks is made
    // root-owned 0755.
    let mut parents: Vec<String> = Vec::new();
    for e in &out {
        let mut p = e.header.path.as_str();
        while let Some((parent, _)) = p.rsplit_once('/') {
            p = parent;
            if !parents.iter().any(|q| q == p) {
                parents.push(p.to_string());
            }
        }
    }
    for p in parents {
        if !out.iter().any(|e| e.header.path == p) {
            let (mode, uid, gid) = base_dir(&view.rootfs, &p).unwrap_or((DIR_MODE, 0, 0));
            out.push(fileset::Entry {
                header: header(&p, EntryKind::Dir, mode, uid, gid),
                source: None,
                stat: None,
            });
        }
    }
    out.sort_by(|a, b| a.header.path.cmp(&b.header.path));
    Ok(out)
}

/// The gid of the `shadow` group (0 when there is none), which owns a
/// created `/etc/shadow` as on Debian.
fn shadow_gid(plan: &Plan, view: &BaseView) -> u64 {
    let group = plan
        .contents(AccountFile::Group)
        .or(view.files[1].as_deref())
        .unwrap_or_default();
    accounts::parse_group(group)
        .iter()
        .find(|g| g.name == "shadow")
        .map_or(0, |g| u64::from(g.gid))
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::File | Kind::Hardlink => "file",
        Kind::Dir => "directory",
        Kind::Symlink => "symlink",
        _ => "special file",
    }
}

/// Checks that a named `user` of `spec` is in the image's final account
/// files: the base's, as the accounts layer left them, with any declared
/// layer's own `/etc/passwd` or `/etc/group` over them.
pub(super) fn check_user(
    spec: &ImageSpec,
    view: &BaseView,
    layers: &[&[fileset::Entry]],
    base: Option<&Image>,
) -> Result<()> {
    let Some(user) = spec.user.as_deref().filter(|u| is_named(u)) else {
        return Ok(());
    };
    let mut passwd = view.files[0].clone();
    let mut group = view.files[1].clone();
    let mut looked_at = vec![describe_base(base)];
    if spec.accounts.is_some() {
        looked_at.push(format!("the {ACCOUNTS_LAYER:?} layer"));
    }
    for entries in layers {
        for e in entries.iter() {
            let slot = match e.header.path.as_str() {
                "etc/passwd" => &mut passwd,
                "etc/group" => &mut group,
                _ => continue,
            };
            let Some(src) = &e.source else { continue };
            let bytes = std::fs::read(src).map_err(|e| Error::io(src, e))?;
            *slot = Some(bytes);
            looked_at.push(src.display().to_string());
        }
    }
    accounts::resolve_user(user, passwd.as_deref(), group.as_deref())
        .map(|_| ())
        .map_err(|why| Error::BuildFile {
            location: spec.location.clone(),
            message: format!(
                "image {:?}: `user = {user:?}`: {why} (looked at /etc/passwd and /etc/group \
                     of {}); declare it under [image.{}.accounts]",
                spec.name,
                looked_at.join(", "),
                spec.name
            ),
        })
}

fn describe_base(base: Option<&Image>) -> String {
    match base {
        Some(b) => format!("the base {}", b.manifest_digest),
        None => "the scratch base (none)".to_string(),
    }
}
