use super::*;

const PASSWD: &[u8] = b"root:x:0:0:root:/root:/bin/bash\n\
# a comment, kept\n\
\n\
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
broken line without fields\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin";

const GROUP: &[u8] = b"root:x:0:\n\
daemon:x:1:\n\
staff:x:50:alice\n\
audio:x:29\n\
nogroup:x:65534:\n";

fn group(name: &str, gid: u32) -> Group {
    Group {
        name: name.into(),
        gid,
        location: format!("gantry.toml:{gid}:1"),
    }
}

fn user(name: &str, uid: u32, gid: u32) -> User {
    User {
        name: name.into(),
        uid,
        gid,
        home: format!("/home/{name}"),
        shell: "/bin/sh".into(),
        gecos: String::new(),
        groups: Vec::new(),
        create_home: true,
        home_mode: None,
        location: format!("gantry.toml:{uid}:5"),
    }
}

fn olympia() -> Accounts {
    let mut u = user("olympia", 9500, 9500);
    u.home = "/data/olympia".into();
    Accounts {
        groups: vec![group("olympia", 9500)],
        users: vec![u],
    }
}

fn debian() -> BaseFiles<'static> {
    BaseFiles {
        passwd: Some(PASSWD),
        group: Some(GROUP),
        shadow: Some(b"root:*:19000:0:99999:7:::\n"),
        gshadow: Some(b"root:*::\nstaff:!::alice\n"),
    }
}

fn text(plan: &Plan, file: AccountFile) -> &str {
    std::str::from_utf8(plan.contents(file).expect("file changes")).unwrap()
}

#[test]
fn base_lines_stay_byte_identical_and_new_lines_follow() {
    let plan = plan(&olympia(), &debian()).unwrap();
    let passwd = plan.contents(AccountFile::Passwd).unwrap();
    // The base's last line had no newline: it gets one, nothing else changes.
    assert_eq!(&passwd[..PASSWD.len()], PASSWD);
    assert_eq!(
        &passwd[PASSWD.len()..],
        b"\nolympia:x:9500:9500::/data/olympia:/bin/sh\n"
    );
    let group = plan.contents(AccountFile::Group).unwrap();
    assert_eq!(&group[..GROUP.len()], GROUP);
    assert_eq!(&group[GROUP.len()..], b"olympia:x:9500:\n");
    assert!(plan.files.iter().all(|w| !w.created));
}

#[test]
fn shadow_and_gshadow_get_locked_entries_when_the_base_has_them() {
    let plan = plan(&olympia(), &debian()).unwrap();
    assert_eq!(
        text(&plan, AccountFile::Shadow),
        "root:*:19000:0:99999:7:::\nolympia:!:::::::\n"
    );
    assert_eq!(
        text(&plan, AccountFile::Gshadow),
        "root:*::\nstaff:!::alice\nolympia:!::\n"
    );
    let no_shadow = BaseFiles {
        shadow: None,
        gshadow: None,
        ..debian()
    };
    let plan = super::plan(&olympia(), &no_shadow).unwrap();
    let files: Vec<_> = plan.files.iter().map(|w| w.file).collect();
    assert_eq!(files, [AccountFile::Passwd, AccountFile::Group]);
}

#[test]
fn on_scratch_passwd_and_group_are_created_and_shadow_is_not() {
    let plan = plan(&olympia(), &BaseFiles::default()).unwrap();
    assert_eq!(
        text(&plan, AccountFile::Passwd),
        "olympia:x:9500:9500::/data/olympia:/bin/sh\n"
    );
    assert_eq!(text(&plan, AccountFile::Group), "olympia:x:9500:\n");
    assert!(plan.files.iter().all(|w| w.created));
    assert!(plan.contents(AccountFile::Shadow).is_none());
}

#[test]
fn homes_are_owned_by_the_user_and_0700_unless_given() {
    let mut accounts = olympia();
    let mut svc = user("svc", 9501, 9500);
    svc.home = "/srv/svc/".into();
    svc.home_mode = Some(0o750);
    let mut sys = user("sys", 9502, 9500);
    sys.create_home = false;
    accounts.users.extend([svc, sys]);
    let plan = plan(&accounts, &debian()).unwrap();
    assert_eq!(
        plan.homes,
        [
            Home {
                path: "/data/olympia".into(),
                uid: 9500,
                gid: 9500,
                mode: 0o700
            },
            Home {
                path: "/srv/svc".into(),
                uid: 9501,
                gid: 9500,
                mode: 0o750
            },
        ]
    );
}

#[test]
fn a_uid_the_base_uses_for_another_user_is_an_error_naming_both() {
    let accounts = Accounts {
        groups: vec![],
        users: vec![user("olympia", 1, 1)],
    };
    let err = plan(&accounts, &debian()).unwrap_err().to_string();
    assert!(err.starts_with("gantry.toml:1:5: "), "{err}");
    assert!(err.contains("user \"olympia\" (uid 1"), "{err}");
    assert!(
        err.contains("/etc/passwd line 4: user \"daemon\" (uid 1"),
        "{err}"
    );
}

#[test]
fn a_name_the_base_uses_with_other_values_is_an_error_naming_both() {
    let accounts = Accounts {
        groups: vec![group("staff", 9500)],
        users: vec![],
    };
    let err = plan(&accounts, &debian()).unwrap_err().to_string();
    assert!(err.contains("group \"staff\" (gid 9500)"), "{err}");
    assert!(
        err.contains("/etc/group line 3: group \"staff\" (gid 50)"),
        "{err}"
    );
    let mut nobody = user("nobody", 65534, 65534);
    nobody.home = "/home/nobody".into();
    let accounts = Accounts {
        groups: vec![],
        users: vec![nobody],
    };
    let err = plan(&accounts, &debian()).unwrap_err().to_string();
    assert!(err.contains("/etc/passwd line 6: user \"nobody\""), "{err}");
    assert!(err.contains("\"/nonexistent\""), "{err}");
}

#[test]
fn entries_identical_to_the_base_are_not_added_again() {
    let mut nobody = user("nobody", 65534, 65534);
    nobody.home = "/nonexistent".into();
    nobody.shell = "/usr/sbin/nologin".into();
    nobody.gecos = "nobody".into();
    nobody.create_home = false;
    let accounts = Accounts {
        groups: vec![group("nogroup", 65534)],
        users: vec![nobody],
    };
    // Without a final newline: nothing is appended, so nothing changes.
    let base = BaseFiles {
        shadow: Some(b"nobody:*:19000:0:99999:7:::"),
        gshadow: Some(b"nogroup:*::"),
        ..debian()
    };
    let plan = plan(&accounts, &base).unwrap();
    assert_eq!(plan, Plan::default());
}

#[test]
fn declared_entries_clashing_with_each_other_name_both_declarations() {
    let accounts = Accounts {
        groups: vec![group("a", 9000), group("b", 9000)],
        users: vec![],
    };
    let err = plan(&accounts, &BaseFiles::default())
        .unwrap_err()
        .to_string();
    assert!(err.contains("declared at gantry.toml:9000:1"), "{err}");
}

#[test]
fn supplementary_groups_join_base_and_declared_groups() {
    let mut accounts = olympia();
    accounts.users[0].groups = vec!["staff".into(), "audio".into(), "olympia".into()];
    let mut bob = user("bob", 9501, 9500);
    bob.groups = vec!["olympia".into(), "staff".into()];
    accounts.users.push(bob);
    let plan = plan(&accounts, &debian()).unwrap();
    assert_eq!(
        text(&plan, AccountFile::Group),
        "root:x:0:\n\
         daemon:x:1:\n\
         staff:x:50:alice,olympia,bob\n\
         audio:x:29:olympia\n\
         nogroup:x:65534:\n\
         olympia:x:9500:olympia,bob\n"
    );
    assert_eq!(
        text(&plan, AccountFile::Gshadow),
        "root:*::\nstaff:!::alice,olympia,bob\nolympia:!::olympia,bob\n"
    );
}

#[test]
fn an_unknown_supplementary_group_is_an_error() {
    let mut accounts = olympia();
    accounts.users[0].groups = vec!["wheel".into()];
    let err = plan(&accounts, &debian()).unwrap_err().to_string();
    assert!(err.contains("group \"wheel\" is neither declared"), "{err}");
}

#[test]
fn names_and_fields_the_files_cannot_hold_are_refused() {
    for (name, why) in [
        ("", "is empty"),
        ("1000", "all digits"),
        ("-x", "starts with"),
        ("a:b", "holds ':'"),
        ("a b", "holds ':'"),
    ] {
        let accounts = Accounts {
            groups: vec![],
            users: vec![user(name, 9500, 9500)],
        };
        let err = plan(&accounts, &BaseFiles::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(why), "{name:?}: {err}");
    }
    let mut u = user("olympia", 9500, 9500);
    u.home = "data".into();
    let err = plan(
        &Accounts {
            groups: vec![],
            users: vec![u.clone()],
        },
        &BaseFiles::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("not absolute"), "{err}");
    u.home = "/x".into();
    u.gecos = "a:b".into();
    let err = plan(
        &Accounts {
            groups: vec![],
            users: vec![u],
        },
        &BaseFiles::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("gecos holds"), "{err}");
}

#[test]
fn parsing_skips_what_glibc_skips() {
    let users = parse_passwd(PASSWD);
    let names: Vec<_> = users.iter().map(|u| (u.line, u.name.as_str())).collect();
    assert_eq!(names, [(1, "root"), (4, "daemon"), (6, "nobody")]);
    assert_eq!(users[2].shell, "/usr/sbin/nologin");
    let odd = b"  # indented comment\n+nis::::::\nshort:x:7:7\nbad:x:u:0::/:/bin/sh\n";
    let users = parse_passwd(odd);
    assert_eq!(users.len(), 1);
    assert_eq!(
        (users[0].name.as_str(), users[0].home.as_str()),
        ("short", "")
    );
    let groups = parse_group(GROUP);
    assert_eq!(groups[2].members, ["alice"]);
    assert_eq!((groups[3].name.as_str(), groups[3].gid), ("audio", 29));
    assert!(parse_passwd(b"").is_empty());
}

#[test]
fn a_group_line_without_its_member_field_gets_one() {
    let mut accounts = olympia();
    accounts.users[0].groups = vec!["audio".into()];
    let base = BaseFiles {
        group: Some(b"audio:x:29"),
        ..BaseFiles::default()
    };
    let plan = plan(&accounts, &base).unwrap();
    assert_eq!(
        text(&plan, AccountFile::Group),
        "audio:x:29:olympia\nolympia:x:9500:\n"
    );
}

#[test]
fn resolve_user_takes_names_from_the_files_and_ids_as_they_are() {
    let (p, g) = (Some(PASSWD), Some(GROUP));
    assert_eq!(resolve_user("daemon", p, g), Ok(Some((1, 1))));
    assert_eq!(resolve_user("daemon:staff", p, g), Ok(Some((1, 50))));
    assert_eq!(resolve_user("daemon:7", p, g), Ok(Some((1, 7))));
    assert_eq!(resolve_user("1000:staff", p, g), Ok(Some((1000, 50))));
    assert_eq!(resolve_user("1000", None, None), Ok(None));
    assert_eq!(resolve_user("1000:1000", None, None), Ok(None));
}

#[test]
fn resolve_user_names_what_is_missing_and_where_it_looked() {
    let (p, g) = (Some(PASSWD), Some(GROUP));
    let err = resolve_user("olympia", p, g).unwrap_err();
    assert_eq!(
        err.to_string(),
        "user \"olympia\" is not in the image's /etc/passwd"
    );
    let err = resolve_user("root:wheel", p, g).unwrap_err();
    assert_eq!(
        err.to_string(),
        "group \"wheel\" is not in the image's /etc/group"
    );
    let err = resolve_user("olympia", None, None).unwrap_err();
    assert!(
        err.to_string().contains("the image has no /etc/passwd"),
        "{err}"
    );
    let err = err.into_error("web", "gantry.toml:3:8").to_string();
    assert_eq!(
        err,
        "gantry.toml:3:8: image \"web\": user \"olympia\" cannot be found: the image has no /etc/passwd"
    );
    for bad in ["", ":x", "a:", "a:b:c"] {
        assert!(
            matches!(
                resolve_user(bad, p, g),
                Err(UnknownAccount::Malformed { .. })
            ),
            "{bad:?}"
        );
    }
}

#[test]
fn resolve_user_reads_the_planned_files() {
    let plan = plan(&olympia(), &debian()).unwrap();
    let got = resolve_user(
        "olympia:olympia",
        plan.contents(AccountFile::Passwd),
        plan.contents(AccountFile::Group),
    );
    assert_eq!(got, Ok(Some((9500, 9500))));
}
