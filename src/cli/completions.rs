//! `gantry completions SHELL`, and the hidden `gantry __images` that the
//! bash, zsh and fish scripts call to complete the image names of the
//! build file.

use std::ffi::OsString;
use std::io::{self, Write};
use std::path::PathBuf;

use clap::{Args, Parser, ValueEnum};

use gantry::buildfile::{BuildFile, DEFAULT_FILE_NAME};
use gantry::error::{Error, Result};

/// The hidden verb the scripts run; it is not part of the documented
/// command line and may change with the scripts.
pub const IMAGES_VERB: &str = "__images";

/// The verbs whose positional arguments are image names of the build file.
const IMAGE_VERBS: &[&str] = &["build", "load", "push"];

#[derive(Args)]
pub struct CompletionsArgs {
    /// The shell to print a completion script for.
    #[arg(value_enum)]
    shell: Shell,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
    Powershell,
}

/// `gantry __images [-f PATH]`.
#[derive(Parser)]
#[command(name = IMAGES_VERB)]
struct ImagesArgs {
    /// The build file whose image names to list.
    #[arg(short, long, value_name = "PATH", default_value = DEFAULT_FILE_NAME)]
    file: PathBuf,
}

pub fn run(args: CompletionsArgs, mut cmd: clap::Command) -> Result<()> {
    let script = script(args.shell, &mut cmd);
    write_stdout(script.as_bytes())
}

/// Prints the image names of the build file, one a line; returns the exit
/// status. Nothing is said on stderr, even of a file that does not parse:
/// a completion must never print into the user's command line.
pub fn list_images(args: impl Iterator<Item = OsString>) -> i32 {
    let Ok(args) = ImagesArgs::try_parse_from(args) else {
        return 2;
    };
    let Ok(file) = BuildFile::load(&args.file) else {
        return 1;
    };
    let mut text = String::new();
    for name in file.images.keys() {
        text.push_str(name);
        text.push('\n');
    }
    i32::from(write_stdout(text.as_bytes()).is_err())
}

fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(bytes)
        .and_then(|_| out.flush())
        .map_err(|e| Error::io("<stdout>", e))
}

/// The script clap_complete generates for verbs and flags, with image
/// names added where the shell has a place for them.
fn script(shell: Shell, cmd: &mut clap::Command) -> String {
    let generator = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
        Shell::Powershell => clap_complete::Shell::PowerShell,
    };
    let mut buf = Vec::new();
    clap_complete::generate(generator, cmd, "gantry", &mut buf);
    let generated = String::from_utf8(buf).expect("clap_complete writes UTF-8");
    match shell {
        Shell::Bash => bash(generated, cmd),
        Shell::Zsh => zsh(generated),
        Shell::Fish => fish(generated),
        // Its completer is one script block keyed by the command path; there
        // is no hook to add dynamic values to without rewriting it.
        Shell::Powershell => generated,
    }
}

/// The flags among `args` that take a value: after one of them the word is
/// that value, not an image name.
fn value_flags<'a>(args: impl Iterator<Item = &'a clap::Arg>) -> Vec<String> {
    let mut flags = Vec::new();
    for arg in args {
        if arg.is_positional() || !arg.get_action().takes_values() {
            continue;
        }
        flags.extend(arg.get_long().map(|l| format!("--{l}")));
        flags.extend(arg.get_short().map(|s| format!("-{s}")));
    }
    flags.sort();
    flags.dedup();
    flags
}

/// bash: a function run after clap's that adds image names for the
/// positional words of the image verbs, registered in place of clap's.
fn bash(generated: String, cmd: &clap::Command) -> String {
    // Another clap_complete may write another script: then it is kept as
    // it is, completing verbs and flags (tests/shell.rs notices).
    let registration = "complete -F _gantry ";
    if !generated.contains(registration) {
        return generated;
    }
    let mut out = generated.replace(registration, "complete -F _gantry_with_images ");
    let globals = value_flags(cmd.get_arguments()).join("|");
    let mut cases = String::new();
    for verb in IMAGE_VERBS {
        let sub = cmd.find_subcommand(verb).expect("an image verb");
        cases.push_str(&format!(
            "        {verb}) case \"$prev\" in {}) return 0 ;; esac ;;\n",
            value_flags(sub.get_arguments()).join("|")
        ));
    }
    out.push_str(&format!(
        r#"
# Image names of the build file (-f, else ./gantry.toml) for the positional
# words of {verbs}.
_gantry_with_images() {{
    _gantry "$@"
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local i word verb="" file="gantry.toml"
    [[ "$cur" == -* ]] && return 0
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        case "$word" in
            {globals}) ((i++)) ;;
            -f|--file) [[ -n "$verb" ]] && file="${{COMP_WORDS[i+1]}}"; ((i++)) ;;
            --file=*) file="${{word#--file=}}" ;;
            -*) ;;
            *) [[ -z "$verb" ]] && verb="$word" ;;
        esac
    done
    case "$verb" in
{cases}        *) return 0 ;;
    esac
    local names
    names="$(gantry {images} --file "$file" 2>/dev/null)" || return 0
    COMPREPLY+=($(compgen -W "$names" -- "$cur"))
}}
"#,
        verbs = IMAGE_VERBS.join(" and "),
        images = IMAGES_VERB,
    ));
    out
}

/// zsh: clap describes the image positional with `_default`; it is given
/// a function that lists the build file's images instead.
fn zsh(generated: String) -> String {
    let mut out = String::new();
    let mut replaced = 0;
    for line in generated.split_inclusive('\n') {
        if line.contains("::images -- ") && line.contains(":_default'") {
            out.push_str(&line.replace(":_default'", ":_gantry_images'"));
            replaced += 1;
        } else {
            out.push_str(line);
        }
    }
    if replaced != IMAGE_VERBS.len() {
        return generated; // as for bash
    }
    let helper = format!(
        r#"
(( $+functions[_gantry_images] )) ||
_gantry_images() {{
    local file=gantry.toml i
    for ((i = 1; i < $#words; i++)); do
        case "$words[i]" in
            -f|--file) file="$words[i+1]" ;;
            --file=*) file="${{words[i]#--file=}}" ;;
        esac
    done
    local -a names
    names=(${{${{(f)"$(gantry {IMAGES_VERB} --file "$file" 2>/dev/null)"}}:#}})
    _describe -t images 'image' names
}}
"#
    );
    // The helper must be defined before the script's last line calls
    // `_gantry` when the file is sourced rather than autoloaded.
    match out.rfind("\nif [ \"$funcstack[1]\" = \"_gantry\" ]") {
        Some(at) => out.insert_str(at + 1, helper.trim_start()),
        None => out.push_str(&helper),
    }
    out
}

/// fish: image names for the positional words of the image verbs, next
/// to the files fish offers there anyway.
fn fish(mut generated: String) -> String {
    let condition = IMAGE_VERBS
        .iter()
        .map(|v| format!("__fish_gantry_using_subcommand {v}"))
        .collect::<Vec<_>>()
        .join("; or ");
    generated.push_str(&format!(
        r#"
# Image names of the build file (-f, else ./gantry.toml).
function __fish_gantry_images
    set -l tokens (commandline -opc)
    set -l file gantry.toml
    for i in (seq (count $tokens))
        switch $tokens[$i]
            case -f --file
                if test $i -lt (count $tokens)
                    set file $tokens[(math $i + 1)]
                end
            case '--file=*'
                set file (string replace -- --file= '' $tokens[$i])
        end
    end
    gantry {IMAGES_VERB} --file $file 2>/dev/null
end
complete -c gantry -n "{condition}" -a "(__fish_gantry_images)" -d image
"#
    ));
    generated
}
