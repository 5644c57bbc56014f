//! What installs gantry into a shell and a system: completion scripts
//! (checked by the shells themselves, and run to complete image names),
//! man pages (checked by man), and the version line and JSON.

mod common;

use std::fs;
use std::process::Command;

use common::{require, sh, Project};

const SHELLS: &[&str] = &["bash", "zsh", "fish", "powershell"];

/// Two images, so completion has a choice to offer.
fn project() -> Project {
    let p = Project::new();
    p.write(
        "gantry.toml",
        "[image.api]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n\n\
         [image.worker]\nbase = \":api\"\n",
    );
    p.write(
        "other.toml",
        "[image.tool]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\n",
    );
    p
}

#[test]
fn every_shell_gets_a_script_naming_the_verbs() {
    let p = project();
    for shell in SHELLS {
        let script = p.ok(&["completions", shell]);
        for verb in ["build", "push", "lock", "completions", "man", "version"] {
            assert!(script.contains(verb), "{shell} script names {verb}");
        }
        // Only the scripts' own calls name the image lister: it is not
        // offered as a verb.
        let calls = usize::from(*shell != "powershell");
        assert_eq!(script.matches("__images").count(), calls, "{shell}");
    }
}

#[test]
fn the_bash_script_passes_bash_n_and_completes_image_names() {
    if !require("bash") {
        return;
    }
    let p = project();
    let script = p.join("gantry.bash");
    fs::write(&script, p.ok(&["completions", "bash"])).unwrap();
    sh(Command::new("bash").arg("-n").arg(&script));

    // complete -F calls the function with the command, the word and the
    // word before it, and COMP_WORDS/COMP_CWORD set; so does this.
    let complete = |words: &str| -> Vec<String> {
        let body = format!(
            "source {script:?}\n\
             COMP_WORDS=({words}); COMP_CWORD=$((${{#COMP_WORDS[@]}} - 1))\n\
             _gantry_with_images gantry \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"\n\
             printf '%s\\n' \"${{COMPREPLY[@]}}\""
        );
        let out = sh(Command::new("bash")
            .arg("-c")
            .arg(body)
            .current_dir(p.path())
            .env("PATH", path_with_gantry()));
        out.lines()
            .filter(|l| !l.starts_with('-'))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(complete("gantry build ''"), ["api", "worker"]);
    assert_eq!(complete("gantry --store /tmp/s push w"), ["worker"]);
    assert_eq!(complete("gantry build -f other.toml ''"), ["tool"]);
    assert_eq!(complete("gantry b"), ["build"]);
    // After a flag that takes a value, the word is that value.
    assert!(!complete("gantry build --platform ''").contains(&"api".to_string()));
    assert!(complete("gantry inspect ''").iter().all(|w| w != "api"));
}

#[test]
fn the_zsh_script_passes_zsh_n_and_completes_images_with_a_function() {
    let p = project();
    let text = p.ok(&["completions", "zsh"]);
    assert_eq!(
        text.matches(":_gantry_images'").count(),
        3,
        "the images of build, load and push"
    );
    assert!(text.contains("_gantry_images() {"));
    if !require("zsh") {
        return;
    }
    let script = p.join("_gantry");
    fs::write(&script, text).unwrap();
    sh(Command::new("zsh").arg("-n").arg(&script));

    // The image function, run in zsh with what it calls outside a
    // completion (compdef, _describe) standing in: _describe gets the
    // count and the names it would offer.
    let offered = |words: &str| -> String {
        let body = format!(
            "compdef() {{ :; }}\nsource {script:?}\n\
             _describe() {{ print -r -- \"${{#${{(P)4}}}}:${{(P)4}}\"; }}\n\
             words=({words}); _gantry_images"
        );
        let out = sh(Command::new("zsh")
            .arg("-fc")
            .arg(body)
            .current_dir(p.path())
            .env("PATH", path_with_gantry()));
        out.trim_end().to_string()
    };
    assert_eq!(offered("gantry build ''"), "2:api worker");
    assert_eq!(offered("gantry push -f other.toml ''"), "1:tool");
    assert_eq!(offered("gantry push -f missing.toml ''"), "0:");
}

/// PATH with the gantry under test first, as the scripts call `gantry`.
fn path_with_gantry() -> String {
    let bin_dir = common::gantry_bin().parent().unwrap().to_path_buf();
    format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap())
}

#[test]
fn the_fish_script_passes_fish_n_and_completes_image_names() {
    if !require("fish") {
        return;
    }
    let p = project();
    let script = p.join("gantry.fish");
    fs::write(&script, p.ok(&["completions", "fish"])).unwrap();
    sh(Command::new("fish").arg("-n").arg(&script));

    // fish's own `complete -C` completes a command line as a user's TAB
    // would; image names come described as `image`.
    let images = |line: &str| -> Vec<String> {
        let body = format!("source {script:?}; complete -C {line:?}");
        let out = sh(Command::new("fish")
            .arg("--no-config")
            .arg("-c")
            .arg(body)
            .current_dir(p.path())
            .env("PATH", path_with_gantry()));
        out.lines()
            .filter_map(|l| l.strip_suffix("\timage"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(images("gantry build "), ["api", "worker"]);
    assert_eq!(images("gantry push -f other.toml "), ["tool"]);
    assert_eq!(images("gantry --store /tmp/s push w"), ["worker"]);
    assert!(images("gantry inspect ").is_empty());
    assert!(images("gantry build -f missing.toml ").is_empty());
}

#[test]
fn the_image_lister_prints_names_and_is_silent_on_a_bad_file() {
    let p = project();
    let lister = |args: &[&str]| {
        Command::new(common::gantry_bin())
            .arg("__images")
            .args(args)
            .current_dir(p.path())
            .output()
            .unwrap()
    };
    let out = lister(&[]);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "api\nworker\n");
    assert_eq!(
        String::from_utf8_lossy(&lister(&["-f", "other.toml"]).stdout),
        "tool\n"
    );
    p.write("bad.toml", "[image.x]\nbsae = \"scratch\"\n");
    let out = lister(&["-f", "bad.toml"]);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
}

#[test]
fn each_verb_has_a_man_page_with_every_flag_of_its_help() {
    let p = project();
    let dir = p.join("man");
    p.ok(&["man", "--dir", dir.to_str().unwrap()]);
    let verbs = [
        "build",
        "inspect",
        "load",
        "lock",
        "pull",
        "push",
        "gc",
        "completions",
        "man",
        "version",
    ];
    let mut names: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut expected: Vec<String> = verbs.iter().map(|v| format!("gantry-{v}.1")).collect();
    expected.push("gantry.1".into());
    expected.sort();
    assert_eq!(names, expected);

    for verb in verbs {
        let page = p.ok(&["man", verb]);
        assert_eq!(
            page,
            fs::read_to_string(dir.join(format!("gantry-{verb}.1"))).unwrap()
        );
        assert!(page.contains(&format!(".TH gantry-{verb} 1")), "{page}");
        let text = unroff(&page);
        let help = p.ok(&[verb, "--help"]);
        for flag in help_flags(&help) {
            assert!(text.contains(&flag), "gantry-{verb}.1 lacks {flag}");
        }
        let about = help.lines().next().unwrap();
        assert!(text.contains(about), "gantry-{verb}.1 lacks {about:?}");
    }

    // groff, which man runs, reads every page without a warning.
    if require("groff") {
        for name in &names {
            let out = Command::new("groff")
                .args(["-man", "-ww", "-z", "-Kutf8", "-Tutf8"])
                .arg(dir.join(name))
                .output()
                .unwrap();
            assert!(out.status.success(), "{name}");
            assert!(
                out.stderr.is_empty(),
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    if require("man") {
        let out = Command::new("man")
            .arg("-l")
            .arg(dir.join("gantry-push.1"))
            .env("MANPAGER", "cat")
            .env("MANWIDTH", "200")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("--metadata-file"), "{text}");
        assert!(text.contains("NAME") && text.contains("OPTIONS"), "{text}");
    }
}

/// The page's text with roff's escapes of `-` and `'` undone.
fn unroff(page: &str) -> String {
    page.replace("\\-", "-").replace("\\*(Aq", "'")
}

/// The long flags (`--name`) `--help` lists.
fn help_flags(help: &str) -> Vec<String> {
    let mut flags: Vec<String> = help
        .split(|c: char| c.is_whitespace() || c == ',' || c == '=' || c == '[')
        .filter(|w| w.starts_with("--") && w.len() > 2)
        .map(|w| {
            w.trim_end_matches(|c: char| !c.is_ascii_alphanumeric())
                .to_string()
        })
        .collect();
    flags.sort();
    flags.dedup();
    assert!(flags.contains(&"--help".to_string()), "{help}");
    flags
}

#[test]
fn an_unknown_verb_has_no_man_page_and_the_error_lists_the_verbs() {
    let p = project();
    let err = p.fails(&["man", "nope"]);
    assert!(
        err.contains("no such verb") && err.contains("build, inspect"),
        "{err}"
    );
}

#[test]
fn version_names_the_release_and_the_commit() {
    let p = project();
    let line = p.ok(&["--version"]);
    let version = env!("CARGO_PKG_VERSION");
    assert!(
        line.starts_with(&format!("gantry {version} (commit ")),
        "{line}"
    );
    assert_eq!(p.ok(&["version"]), line);
    let commit = line
        .trim_end()
        .strip_prefix(&format!("gantry {version} (commit "))
        .and_then(|r| r.strip_suffix(')'))
        .unwrap();
    // Built from this checkout, the commit is HEAD's; from a tarball, unknown.
    let root = env!("CARGO_MANIFEST_DIR");
    if std::path::Path::new(root).join(".git").exists() {
        assert_eq!(commit.len(), 40, "{line}");
        assert!(commit.bytes().all(|b| b.is_ascii_hexdigit()), "{line}");
    } else {
        assert_eq!(commit, "unknown");
    }
}

#[test]
fn version_json_names_the_layer_format_and_the_pinned_compressors() {
    let p = project();
    let v: serde_json::Value = serde_json::from_str(&p.ok(&["version", "--json"])).unwrap();
    assert_eq!(v["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["layer_format"], gantry::layer::FORMAT_VERSION);
    let lock = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.lock")).unwrap();
    let compressors = v["compressors"].as_array().unwrap();
    let names: Vec<&str> = compressors
        .iter()
        .map(|c| c["crate"].as_str().unwrap())
        .collect();
    for name in [
        "libdeflater",
        "libdeflate-sys",
        "zstd",
        "zstd-sys",
        "flate2",
        "zlib-rs",
    ] {
        assert!(names.contains(&name), "{name} in {names:?}");
    }
    for c in compressors {
        let entry = format!(
            "name = \"{}\"\nversion = \"{}\"\n",
            c["crate"].as_str().unwrap(),
            c["version"].as_str().unwrap()
        );
        assert!(lock.contains(&entry), "Cargo.lock pins {entry}");
    }
    match v["commit"].as_str() {
        Some(c) => assert!(p.ok(&["--version"]).contains(c)),
        None => assert!(p.ok(&["--version"]).contains("commit unknown")),
    }
}
