//! The files a build reads, so that an output path naming one of them is
//! refused before any work: a tarball written over the build file, or a
//! layout directory that replaces a `src` tree, would destroy the inputs.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

use crate::buildfile::{BaseSpec, BuildFile, EntrySpecKind, ImageSpec, LayerSpec, Platforms};
use crate::error::{Error, Result};
use crate::platform::Platform;

/// `{os}`, `{arch}` and `{variant}` in a `src` stand for any text.
const PLACEHOLDERS: [&str; 3] = ["{os}", "{arch}", "{variant}"];

/// Refuses `output` (given to the flag `flag`) when it is, holds, or lies
/// inside a file or directory that building `targets` of `file` reads: the
/// build file, `lock` (the lock file), a local base, or any `src`. Paths
/// are compared resolved (symlinks followed, `..` removed); the output may
/// not exist yet, so its parent is resolved and its own name kept.
pub fn check_output(
    file: &BuildFile,
    targets: &[String],
    lock: &Path,
    flag: &str,
    output: &Path,
) -> Result<()> {
    if output == Path::new("-") {
        return Ok(());
    }
    let out = resolve_output(output);
    let refuse = |what: String, input: &Path| {
        Error::Usage(format!(
            "{flag} {}: the output would overwrite {} ({what}), which the build reads \
             (an output may not be an input, hold one, or lie inside one)",
            output.display(),
            input.display()
        ))
    };
    for (what, input) in [
        ("the build file", &file.path),
        ("the lock file", &lock.to_path_buf()),
    ] {
        if overlaps(&out, &literal(&resolve_input(input))) {
            return Err(refuse(what.to_string(), input));
        }
    }
    for image in file.build_order(targets)? {
        if let BaseSpec::Local(local) = &image.base {
            if overlaps(&out, &literal(&resolve_input(local.path()))) {
                return Err(refuse(
                    format!("the base of image {:?}", image.name),
                    local.path(),
                ));
            }
        }
        // Placeholders are filled for each platform the image is built for;
        // when its base decides, they stand for any text.
        let layers: Vec<LayerSpec> = match platforms_of(file, image, 0) {
            Some(platforms) => platforms
                .iter()
                .flat_map(|p| image.layers.iter().map(|l| l.for_platform(p)))
                .collect(),
            None => image.layers.clone(),
        };
        for layer in &layers {
            for entry in &layer.entries {
                let EntrySpecKind::Copy { src, .. } = &entry.kind else {
                    continue;
                };
                if overlaps(&out, &pattern(src)) {
                    return Err(refuse(format!("the `src` at {}", entry.location), src));
                }
            }
        }
    }
    Ok(())
}

/// The platforms `image` is built for, when the build file says: its own,
/// or those of the image of the file it is based on.
fn platforms_of(file: &BuildFile, image: &ImageSpec, depth: usize) -> Option<Vec<Platform>> {
    if image.platforms != Platforms::Base {
        return Some(image.platforms.declared().to_vec());
    }
    match &image.base {
        BaseSpec::Image(name) if depth < file.images.len() => {
            platforms_of(file, file.images.get(name)?, depth + 1)
        }
        _ => None,
    }
}

/// One component of an input path: literal, or with placeholders.
enum Part {
    Literal(OsString),
    Pattern(String),
}

fn literal(p: &Path) -> Vec<Part> {
    p.components()
        .map(|c| Part::Literal(c.as_os_str().to_owned()))
        .collect()
}

/// A `src` path: the part before its first placeholder is resolved, the
/// rest kept as patterns.
fn pattern(src: &Path) -> Vec<Part> {
    let parts: Vec<Component> = src.components().collect();
    let first = parts
        .iter()
        .position(|c| {
            let s = c.as_os_str().to_string_lossy();
            PLACEHOLDERS.iter().any(|p| s.contains(p))
        })
        .unwrap_or(parts.len());
    let head: PathBuf = parts[..first].iter().collect();
    let mut out = literal(&resolve_input(&head));
    for c in &parts[first..] {
        let s = c.as_os_str().to_string_lossy();
        if PLACEHOLDERS.iter().any(|p| s.contains(p)) {
            out.push(Part::Pattern(s.into_owned()));
        } else {
            out.push(Part::Literal(c.as_os_str().to_owned()));
        }
    }
    out
}

/// Whether one path is the other or lies under it.
fn overlaps(out: &Path, input: &[Part]) -> bool {
    out.components().zip(input).all(|(o, i)| match i {
        Part::Literal(l) => o.as_os_str() == l,
        Part::Pattern(p) => wildcard(p, &o.as_os_str().to_string_lossy()),
    })
}

/// Matches `name` against `pattern` with every placeholder standing for any
/// text (including none).
fn wildcard(pattern: &str, name: &str) -> bool {
    let mut literals = vec![pattern.to_string()];
    for p in PLACEHOLDERS {
        literals = literals
            .iter()
            .flat_map(|l| l.split(p).map(str::to_string).collect::<Vec<_>>())
            .collect();
    }
    let (first, rest) = literals.split_first().expect("split yields one piece");
    let Some(mut left) = name.strip_prefix(first.as_str()) else {
        return false;
    };
    let Some((last, middle)) = rest.split_last() else {
        return left.is_empty();
    };
    for m in middle {
        match left.find(m.as_str()) {
            Some(i) => left = &left[i + m.len()..],
            None => return false,
        }
    }
    left.ends_with(last.as_str())
}

/// An input as the file system sees it; one that does not exist (a build
/// that reads it fails anyway) is resolved as far as its parent.
fn resolve_input(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| resolve_output(p))
}

/// The output's parent resolved and its own name kept: the output itself
/// is replaced by a rename, never written through a symlink it may be.
fn resolve_output(p: &Path) -> PathBuf {
    let absolute = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
    let mut clean = PathBuf::new();
    for c in absolute.components() {
        match c {
            Component::ParentDir => {
                clean.pop();
            }
            Component::CurDir => {}
            c => clean.push(c),
        }
    }
    match (clean.parent(), clean.file_name()) {
        (Some(parent), Some(name)) => std::fs::canonicalize(parent)
            .map(|d| d.join(name))
            .unwrap_or(clean),
        _ => clean,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_match_any_text() {
        assert!(wildcard("app-{arch}", "app-amd64"));
        assert!(wildcard("{os}-{arch}{variant}", "linux-armv7"));
        assert!(wildcard("{variant}", ""));
        assert!(!wildcard("app-{arch}", "lib-amd64"));
        assert!(!wildcard("{arch}.bin", "amd64.txt"));
    }

    #[test]
    fn an_output_overlaps_an_input_it_is_holds_or_is_inside() {
        let input = pattern(Path::new("/p/dist/{arch}/app"));
        for (out, hit) in [
            ("/p/dist/amd64/app", true),
            ("/p/dist/amd64", true),
            ("/p/dist", true),
            ("/p", true),
            ("/p/dist/amd64/app/x", true),
            ("/p/image.tar", false),
            ("/p/dist/amd64/other", false),
            ("/q", false),
        ] {
            assert_eq!(overlaps(Path::new(out), &input), hit, "{out}");
        }
    }
}
