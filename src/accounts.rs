//! Declared users and groups, and the account files they turn into: the
//! base's `/etc/passwd`, `/etc/group`, `/etc/shadow` and `/etc/gshadow` with
//! lines appended (every line of the base kept byte for byte, bar the member
//! list of a group a declared user joins), or new files on a base without
//! them. Pure logic: the caller reads the base's files and lays the result
//! down as a layer.
//!
//! Files are read the way glibc's `files` database reads them: lines whose
//! first non-blank byte is `#`, blank lines and lines that do not parse are
//! not entries (and are kept as they are), the first entry of a name or id
//! is the one lookups find, and a last line without a newline still counts.

use std::collections::HashMap;
use std::fmt;

use crate::error::{Error, Result};

/// A group to declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Where it is declared (`file:line:column`), for error messages.
    pub location: String,
}

/// A user to declare.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id (it need not be a group the image has, as with
    /// `useradd -g` of a numeric id it is not checked).
    pub gid: u32,
    /// Home directory, absolute.
    pub home: String,
    /// Login shell (may be empty, which means `/bin/sh` to most tools).
    pub shell: String,
    /// The comment field (full name).
    pub gecos: String,
    /// Names of supplementary groups, declared here or already in the base.
    pub groups: Vec<String>,
    /// Whether the home directory is created, owned by the user.
    pub create_home: bool,
    /// Mode of the created home directory; 0700 when `None`.
    pub home_mode: Option<u32>,
    /// Where it is declared (`file:line:column`), for error messages.
    pub location: String,
}

/// The users and groups an image declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    /// Groups, in the order their lines are appended.
    pub groups: Vec<Group>,
    /// Users, in the order their lines are appended.
    pub users: Vec<User>,
}

/// The base's account files; `None` for a file the base does not have.
#[derive(Debug, Clone, Copy, Default)]
pub struct BaseFiles<'a> {
    /// Contents of `/etc/passwd`.
    pub passwd: Option<&'a [u8]>,
    /// Contents of `/etc/group`.
    pub group: Option<&'a [u8]>,
    /// Contents of `/etc/shadow`.
    pub shadow: Option<&'a [u8]>,
    /// Contents of `/etc/gshadow`.
    pub gshadow: Option<&'a [u8]>,
}

/// One of the account files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AccountFile {
    /// `/etc/passwd`.
    Passwd,
    /// `/etc/group`.
    Group,
    /// `/etc/shadow`.
    Shadow,
    /// `/etc/gshadow`.
    Gshadow,
}

impl AccountFile {
    /// The file's path in the image.
    pub fn path(self) -> &'static str {
        match self {
            AccountFile::Passwd => "/etc/passwd",
            AccountFile::Group => "/etc/group",
            AccountFile::Shadow => "/etc/shadow",
            AccountFile::Gshadow => "/etc/gshadow",
        }
    }
}

/// A file to write, in full.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    /// Which file.
    pub file: AccountFile,
    /// Its whole new contents.
    pub contents: Vec<u8>,
    /// The base has no such file (so there is no mode or owner to keep:
    /// `/etc/passwd` and `/etc/group` are conventionally root-owned 0644).
    pub created: bool,
}

/// A home directory to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Home {
    /// Absolute path, without a trailing `/`.
    pub path: String,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Permission bits.
    pub mode: u32,
}

/// What declaring the accounts changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The files whose contents change, in [`AccountFile`] order; a file
    /// every declared entry of which the base already has is not listed.
    pub files: Vec<Written>,
    /// Home directories to create, in the order the users are declared.
    pub homes: Vec<Home>,
}

impl Plan {
    /// The new contents of `file`, if it changes.
    pub fn contents(&self, file: AccountFile) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|w| w.file == file)
            .map(|w| w.contents.as_slice())
    }
}

/// A user entry of a passwd file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    /// Line number, from 1.
    pub line: usize,
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// The comment field.
    pub gecos: String,
    /// Home directory.
    pub home: String,
    /// Login shell.
    pub shell: String,
}

/// A group entry of a group file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    /// Line number, from 1.
    pub line: usize,
    /// Group name.
    pub name: String,
    /// Group id.
    pub gid: u32,
    /// Names of the members (beyond the users whose primary group it is).
    pub members: Vec<String>,
}

/// The lines of a file, each without its `\n`, numbered from 1.
fn lines(contents: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    let body = contents.strip_suffix(b"\n").unwrap_or(contents);
    let all = (!contents.is_empty()).then(|| body.split(|&b| b == b'\n'));
    all.into_iter()
        .flatten()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
}

/// The fields of a line that may be an entry: not blank, not a comment,
/// not a NIS `+`/`-` line, split at `:` into at most `max` fields.
fn fields(line: &[u8], max: usize) -> Option<Vec<String>> {
    let start = line.iter().position(|b| !b.is_ascii_whitespace())?;
    let line = &line[start..];
    if matches!(line.first(), Some(b'#' | b'+' | b'-')) {
        return None;
    }
    Some(
        line.splitn(max, |&b| b == b':')
            .map(|f| String::from_utf8_lossy(f).into_owned())
            .collect(),
    )
}

fn id(field: Option<&String>) -> Option<u32> {
    let f = field?;
    if f.is_empty() || !f.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    f.parse().ok()
}

fn field(fields: &[String], i: usize) -> String {
    fields.get(i).cloned().unwrap_or_default()
}

/// The user entries of a passwd file.
pub fn parse_passwd(contents: &[u8]) -> Vec<PasswdEntry> {
    lines(contents)
        .filter_map(|(line, l)| {
            let f = fields(l, 7)?;
            Some(PasswdEntry {
                line,
                name: f.first().filter(|n| !n.is_empty())?.clone(),
                uid: id(f.get(2))?,
                gid: id(f.get(3))?,
                gecos: field(&f, 4),
                home: field(&f, 5),
                shell: field(&f, 6),
            })
        })
        .collect()
}

/// The group entries of a group file.
pub fn parse_group(contents: &[u8]) -> Vec<GroupEntry> {
    lines(contents)
        .filter_map(|(line, l)| {
            let f = fields(l, 4)?;
            Some(GroupEntry {
                line,
                name: f.first().filter(|n| !n.is_empty())?.clone(),
                gid: id(f.get(2))?,
                members: member_list(&field(&f, 3)),
            })
        })
        .collect()
}

fn member_list(field: &str) -> Vec<String> {
    field
        .split(',')
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .map(str::to_string)
        .collect()
}

/// The names a shadow or gshadow file has entries for, with their lines.
fn shadow_names(contents: &[u8]) -> HashMap<String, usize> {
    let mut out = HashMap::new();
    for (line, l) in lines(contents) {
        if let Some(name) = fields(l, 2).and_then(|f| f.into_iter().next()) {
            if !name.is_empty() {
                out.entry(name).or_insert(line);
            }
        }
    }
    out
}

fn declared_error(location: &str, message: String) -> Error {
    Error::BuildFile {
        location: location.to_string(),
        message,
    }
}

/// Refuses what the account files cannot hold, or that tools would read
/// as something else (a numeric name reads as an id).
fn check_name(what: &str, name: &str, location: &str) -> Result<()> {
    let bad = if name.is_empty() {
        Some("is empty")
    } else if name.bytes().all(|b| b.is_ascii_digit()) {
        Some("is all digits, which reads as an id")
    } else if name.starts_with(['-', '+', '#']) {
        Some("starts with '-', '+' or '#'")
    } else if name.bytes().any(|b| {
        b == b':' || b == b',' || b == b'/' || b.is_ascii_whitespace() || b.is_ascii_control()
    }) {
        Some("holds ':', ',', '/', white space or a control character")
    } else {
        None
    };
    match bad {
        Some(why) => Err(declared_error(
            location,
            format!("{what} name {name:?} {why}"),
        )),
        None => Ok(()),
    }
}

fn check_field(user: &User, what: &str, value: &str) -> Result<()> {
    if value.contains([':', '\n']) {
        return Err(declared_error(
            &user.location,
            format!("user {:?}: {what} holds ':' or a newline", user.name),
        ));
    }
    Ok(())
}

fn check_user(u: &User) -> Result<()> {
    check_name("user", &u.name, &u.location)?;
    check_field(u, "home", &u.home)?;
    check_field(u, "shell", &u.shell)?;
    check_field(u, "gecos", &u.gecos)?;
    if !u.home.starts_with('/') {
        return Err(declared_error(
            &u.location,
            format!("user {:?}: home {:?} is not absolute", u.name, u.home),
        ));
    }
    if u.create_home && home_path(&u.home).is_empty() {
        return Err(declared_error(
            &u.location,
            format!("user {:?}: home \"/\" cannot be created", u.name),
        ));
    }
    if let Some(mode) = u.home_mode.filter(|m| *m > 0o7777) {
        return Err(declared_error(
            &u.location,
            format!(
                "user {:?}: home mode {mode:o} is not a permission mode",
                u.name
            ),
        ));
    }
    Ok(())
}

/// The home path without `.`, empty components and a trailing `/`.
fn home_path(home: &str) -> String {
    let parts: Vec<&str> = home
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .collect();
    parts.join("/")
}

fn describe_passwd(e: &PasswdEntry) -> String {
    format!(
        "{} line {}: user {:?} (uid {}, gid {}, home {:?}, shell {:?}, gecos {:?})",
        AccountFile::Passwd.path(),
        e.line,
        e.name,
        e.uid,
        e.gid,
        e.home,
        e.shell,
        e.gecos
    )
}

fn describe_user(u: &User) -> String {
    format!(
        "user {:?} (uid {}, gid {}, home {:?}, shell {:?}, gecos {:?})",
        u.name, u.uid, u.gid, u.home, u.shell, u.gecos
    )
}

/// The declared entries checked against the base and each other: which
/// are new, and which base groups gain members.
struct Checked<'a> {
    new_groups: Vec<&'a Group>,
    new_users: Vec<&'a User>,
    /// Group name → users joining it, in declaration order.
    joins: Vec<(String, Vec<String>)>,
}

fn check_groups<'a>(declared: &'a [Group], base: &[GroupEntry]) -> Result<Vec<&'a Group>> {
    let mut new = Vec::new();
    for (i, g) in declared.iter().enumerate() {
        check_name("group", &g.name, &g.location)?;
        if let Some(o) = declared[..i]
            .iter()
            .find(|o| o.name == g.name || o.gid == g.gid)
        {
            return Err(declared_error(
                &g.location,
                format!(
                    "group {:?} (gid {}) has the name or gid of group {:?} (gid {}) declared at {}",
                    g.name, g.gid, o.name, o.gid, o.location
                ),
            ));
        }
        let same_name = base.iter().find(|b| b.name == g.name);
        let same_gid = base.iter().find(|b| b.gid == g.gid);
        match (same_name, same_gid) {
            (Some(b), _) if b.gid == g.gid => {}
            (Some(b), _) | (None, Some(b)) => {
                return Err(declared_error(
                    &g.location,
                    format!(
                    "group {:?} (gid {}) clashes with the base's {} line {}: group {:?} (gid {})",
                    g.name,
                    g.gid,
                    AccountFile::Group.path(),
                    b.line,
                    b.name,
                    b.gid
                ),
                ))
            }
            (None, None) => new.push(g),
        }
    }
    Ok(new)
}

fn check_users<'a>(declared: &'a [User], base: &[PasswdEntry]) -> Result<Vec<&'a User>> {
    let mut new = Vec::new();
    for (i, u) in declared.iter().enumerate() {
        check_user(u)?;
        if let Some(o) = declared[..i]
            .iter()
            .find(|o| o.name == u.name || o.uid == u.uid)
        {
            return Err(declared_error(
                &u.location,
                format!(
                    "{} has the name or uid of {} declared at {}",
                    describe_user(u),
                    describe_user(o),
                    o.location
                ),
            ));
        }
        let same_name = base.iter().find(|b| b.name == u.name);
        let same_uid = base.iter().find(|b| b.uid == u.uid);
        let identical = |b: &PasswdEntry| {
            (
                b.uid,
                b.gid,
                b.home.as_str(),
                b.shell.as_str(),
                b.gecos.as_str(),
            ) == (
                u.uid,
                u.gid,
                u.home.as_str(),
                u.shell.as_str(),
                u.gecos.as_str(),
            )
        };
        match (same_name, same_uid) {
            (Some(b), _) if identical(b) => {}
            (Some(b), _) | (None, Some(b)) => {
                return Err(declared_error(
                    &u.location,
                    format!(
                        "{} clashes with the base's {}",
                        describe_user(u),
                        describe_passwd(b)
                    ),
                ))
            }
            (None, None) => new.push(u),
        }
    }
    Ok(new)
}

fn check<'a>(
    declared: &'a Accounts,
    passwd: &[PasswdEntry],
    group: &[GroupEntry],
) -> Result<Checked<'a>> {
    let new_groups = check_groups(&declared.groups, group)?;
    let new_users = check_users(&declared.users, passwd)?;
    let mut joins: Vec<(String, Vec<String>)> = Vec::new();
    for u in &declared.users {
        for g in &u.groups {
            let known =
                declared.groups.iter().any(|d| &d.name == g) || group.iter().any(|b| &b.name == g);
            if !known {
                return Err(declared_error(
                    &u.location,
                    format!(
                        "user {:?}: group {g:?} is neither declared nor in the base's {}",
                        u.name,
                        AccountFile::Group.path()
                    ),
                ));
            }
            let already = group
                .iter()
                .find(|b| &b.name == g)
                .is_some_and(|b| b.members.contains(&u.name));
            let slot = match joins.iter_mut().position(|(n, _)| n == g) {
                Some(i) => &mut joins[i].1,
                None => {
                    joins.push((g.clone(), Vec::new()));
                    &mut joins.last_mut().expect("just pushed").1
                }
            };
            if !already && !slot.contains(&u.name) {
                slot.push(u.name.clone());
            }
        }
    }
    Ok(Checked {
        new_groups,
        new_users,
        joins,
    })
}

/// The base's contents with `extra` lines appended, a newline put after a
/// last line that lacks one (only when there is something to append).
fn appended(base: Option<&[u8]>, extra: &[String]) -> Vec<u8> {
    let mut out = base.unwrap_or_default().to_vec();
    if !extra.is_empty() && !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    for l in extra {
        out.extend_from_slice(l.as_bytes());
        out.push(b'\n');
    }
    out
}

/// `contents` with members added to the last field (the `field`th, from 0)
/// of the lines named in `adds`; every other byte is kept.
fn with_members(contents: &[u8], field: usize, adds: &HashMap<usize, Vec<String>>) -> Vec<u8> {
    if adds.is_empty() {
        return contents.to_vec();
    }
    let mut out = Vec::with_capacity(contents.len() + 64);
    let ends_with_newline = contents.ends_with(b"\n");
    let mut numbered = lines(contents).peekable();
    while let Some((n, line)) = numbered.next() {
        out.extend_from_slice(line);
        if let Some(names) = adds.get(&n) {
            let colons = line.iter().filter(|&&b| b == b':').count();
            out.extend(std::iter::repeat_n(b':', field.saturating_sub(colons)));
            let last = line.rsplit(|&b| b == b':').next().unwrap_or_default();
            let has_members = colons >= field && last.iter().any(|b| !b.is_ascii_whitespace());
            if has_members && !last.ends_with(b",") {
                out.push(b',');
            }
            out.extend_from_slice(names.join(",").as_bytes());
        }
        if numbered.peek().is_some() || ends_with_newline {
            out.push(b'\n');
        }
    }
    out
}

/// Checks the declared accounts against the base's files and gives the new
/// files and the homes to create.
///
/// A declared user or group that the base already has with the same values
/// is not added again; one whose name or id the base uses with other values
/// is an error at the declaration, naming the base's line. Lines of the base
/// are kept byte for byte, except that a group a declared user joins gets
/// the user appended to its member list (in `/etc/gshadow` too). New users
/// and groups get locked (`!`) entries in `/etc/shadow` and `/etc/gshadow`
/// when the base has those files; `/etc/passwd` and `/etc/group` are created
/// when it has not.
pub fn plan(declared: &Accounts, base: &BaseFiles<'_>) -> Result<Plan> {
    let passwd = parse_passwd(base.passwd.unwrap_or_default());
    let group = parse_group(base.group.unwrap_or_default());
    let checked = check(declared, &passwd, &group)?;
    let mut files = Vec::new();
    let mut push = |file: AccountFile, old: Option<&[u8]>, contents: Option<Vec<u8>>| {
        if let Some(contents) = contents.filter(|c| old != Some(c.as_slice())) {
            files.push(Written {
                file,
                contents,
                created: old.is_none(),
            });
        }
    };
    let user_lines: Vec<String> = checked
        .new_users
        .iter()
        .map(|u| {
            format!(
                "{}:x:{}:{}:{}:{}:{}",
                u.name, u.uid, u.gid, u.gecos, u.home, u.shell
            )
        })
        .collect();
    let passwd_file = (!user_lines.is_empty()).then(|| appended(base.passwd, &user_lines));
    push(AccountFile::Passwd, base.passwd, passwd_file);
    push(
        AccountFile::Group,
        base.group,
        checked.group_file(&group, base.group),
    );
    if let Some(shadow) = base.shadow {
        let have = shadow_names(shadow);
        let lines: Vec<String> = declared
            .users
            .iter()
            .filter(|u| !have.contains_key(&u.name))
            .map(|u| format!("{}:!:::::::", u.name))
            .collect();
        push(
            AccountFile::Shadow,
            Some(shadow),
            Some(appended(Some(shadow), &lines)),
        );
    }
    if let Some(gshadow) = base.gshadow {
        let contents = checked.gshadow_file(&declared.groups, gshadow);
        push(AccountFile::Gshadow, Some(gshadow), Some(contents));
    }
    let homes = declared
        .users
        .iter()
        .filter(|u| u.create_home)
        .map(|u| Home {
            path: format!("/{}", home_path(&u.home)),
            uid: u.uid,
            gid: u.gid,
            mode: u.home_mode.unwrap_or(0o700),
        })
        .collect();
    Ok(Plan { files, homes })
}

impl Checked<'_> {
    /// The users joining group `name`, in declaration order.
    fn members_of(&self, name: &str) -> Vec<String> {
        self.joins
            .iter()
            .find(|(g, _)| g == name)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }

    /// The new `/etc/group`, if anything is added to it.
    fn group_file(&self, entries: &[GroupEntry], base: Option<&[u8]>) -> Option<Vec<u8>> {
        let adds: HashMap<usize, Vec<String>> = entries
            .iter()
            // Only the first entry of a name is the group lookups find.
            .filter(|g| entries.iter().find(|o| o.name == g.name).map(|o| o.line) == Some(g.line))
            .map(|g| (g.line, self.members_of(&g.name)))
            .filter(|(_, m)| !m.is_empty())
            .collect();
        let lines: Vec<String> = self
            .new_groups
            .iter()
            .map(|g| {
                format!(
                    "{}:x:{}:{}",
                    g.name,
                    g.gid,
                    self.members_of(&g.name).join(",")
                )
            })
            .collect();
        if lines.is_empty() && adds.is_empty() {
            return None;
        }
        let edited = base.map(|g| with_members(g, 3, &adds));
        Some(appended(edited.as_deref(), &lines))
    }

    /// The base's `/etc/gshadow` with the declared groups it lacks (locked)
    /// and the new members of the groups it has.
    fn gshadow_file(&self, declared: &[Group], gshadow: &[u8]) -> Vec<u8> {
        let have = shadow_names(gshadow);
        let adds: HashMap<usize, Vec<String>> = self
            .joins
            .iter()
            .filter_map(|(g, m)| Some((*have.get(g)?, m.clone())))
            .filter(|(_, m)| !m.is_empty())
            .collect();
        let lines: Vec<String> = declared
            .iter()
            .filter(|g| !have.contains_key(&g.name))
            .map(|g| format!("{}:!::{}", g.name, self.members_of(&g.name).join(",")))
            .collect();
        appended(Some(&with_members(gshadow, 3, &adds)), &lines)
    }
}

/// Why a `user` value names an account the image does not have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnknownAccount {
    /// The value is not `user`, `user:group`, `uid` or `uid:gid`.
    Malformed {
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The user name is not in `/etc/passwd`.
    NoUser {
        /// The name asked for.
        name: String,
        /// Whether the image has an `/etc/passwd` at all.
        file_exists: bool,
    },
    /// The group name is not in `/etc/group`.
    NoGroup {
        /// The name asked for.
        name: String,
        /// Whether the image has an `/etc/group` at all.
        file_exists: bool,
    },
}

impl fmt::Display for UnknownAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, name, exists, file) = match self {
            UnknownAccount::Malformed { reason } => return write!(f, "user value {reason}"),
            UnknownAccount::NoUser { name, file_exists } => {
                ("user", name, file_exists, AccountFile::Passwd.path())
            }
            UnknownAccount::NoGroup { name, file_exists } => {
                ("group", name, file_exists, AccountFile::Group.path())
            }
        };
        if *exists {
            write!(f, "{what} {name:?} is not in the image's {file}")
        } else {
            write!(
                f,
                "{what} {name:?} cannot be found: the image has no {file}"
            )
        }
    }
}

impl UnknownAccount {
    /// The build-file error for the `user` of `image` declared at `location`.
    pub fn into_error(self, image: &str, location: &str) -> Error {
        declared_error(location, format!("image {image:?}: {self}"))
    }
}

fn numeric(s: &str) -> Option<u32> {
    if s.bytes().all(|b| b.is_ascii_digit()) {
        s.parse().ok()
    } else {
        None
    }
}

/// The uid and gid a `user` value (`name`, `name:group`, `uid`, `uid:gid`,
/// or a mix) stands for in an image with these `passwd` and `group` files
/// (`None` for a file the image lacks). Names must be there; numeric ids are
/// taken as they are, and a value with no name at all is `Ok(None)`: nothing
/// to check. A named user's gid is its primary group unless a group is given.
pub fn resolve_user(
    spec: &str,
    passwd: Option<&[u8]>,
    group: Option<&[u8]>,
) -> std::result::Result<Option<(u32, u32)>, UnknownAccount> {
    let (user, grp) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    if user.is_empty() || grp.is_some_and(|g| g.is_empty() || g.contains(':')) {
        return Err(UnknownAccount::Malformed {
            reason: "is not user, user:group, uid or uid:gid",
        });
    }
    let uid_only = numeric(user);
    let gid_only = grp.and_then(numeric);
    if uid_only.is_some() && (grp.is_none() || gid_only.is_some()) {
        return Ok(None);
    }
    let (uid, primary) =
        match uid_only {
            Some(uid) => (uid, 0),
            None => {
                let entries = parse_passwd(passwd.unwrap_or_default());
                let e = entries.iter().find(|e| e.name == user).ok_or_else(|| {
                    UnknownAccount::NoUser {
                        name: user.to_string(),
                        file_exists: passwd.is_some(),
                    }
                })?;
                (e.uid, e.gid)
            }
        };
    let gid = match (grp, gid_only) {
        (None, _) => primary,
        (Some(_), Some(gid)) => gid,
        (Some(name), None) => {
            parse_group(group.unwrap_or_default())
                .iter()
                .find(|e| e.name == name)
                .ok_or_else(|| UnknownAccount::NoGroup {
                    name: name.to_string(),
                    file_exists: group.is_some(),
                })?
                .gid
        }
    };
    Ok(Some((uid, gid)))
}

#[cfg(test)]
mod tests;
