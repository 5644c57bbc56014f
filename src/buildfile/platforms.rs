//! One platform's view of an image: `{os}`, `{arch}` and `{variant}` filled
//! in `src` paths, and the platform's `overrides` applied.

use std::path::PathBuf;

use super::{EntrySpecKind, ImageSpec, LayerSpec, Platform, Platforms};

/// The placeholders a `src` path may hold. They are always placeholders:
/// a file whose name holds one literally cannot be named in `src`.
const PLACEHOLDERS: [&str; 3] = ["{os}", "{arch}", "{variant}"];

impl Platforms {
    /// The one platform of a single-platform image that declares it.
    pub fn single(&self) -> Option<&Platform> {
        match self {
            Platforms::One(p) => Some(p),
            _ => None,
        }
    }

    /// Every platform declared, in the order written; none for
    /// [`Platforms::Base`].
    pub fn declared(&self) -> &[Platform] {
        match self {
            Platforms::Base => &[],
            Platforms::One(p) => std::slice::from_ref(p),
            Platforms::Many(ps) => ps,
        }
    }

    /// The platforms one build of the image is made for: `None` for the
    /// base's, which is known only once the base is loaded.
    pub fn build_for(&self) -> Vec<Option<Platform>> {
        match self {
            Platforms::Base => vec![None],
            ps => ps.declared().iter().cloned().map(Some).collect(),
        }
    }
}

impl ImageSpec {
    /// Whether the image is built once per platform under an index.
    pub fn is_multi_platform(&self) -> bool {
        matches!(self.platforms, Platforms::Many(_))
    }

    /// The image as built for `p`: a single-platform spec with `p` as its
    /// platform, the placeholders of every `src` filled, and the overrides
    /// for `p` applied.
    pub fn for_platform(&self, p: &Platform) -> ImageSpec {
        let mut spec = self.clone();
        spec.platforms = Platforms::One(p.clone());
        spec.overrides = Default::default();
        spec.layers = self.layers.iter().map(|l| l.for_platform(p)).collect();
        if let Some(o) = self.overrides.get(p) {
            if let Some(e) = &o.entrypoint {
                spec.entrypoint = Some(e.clone());
            }
            if let Some(c) = &o.cmd {
                spec.cmd = Some(c.clone());
            }
            if let Some(h) = &o.healthcheck {
                spec.healthcheck = Some(h.clone());
            }
            if let Some(sh) = &o.shell {
                spec.shell = Some(sh.clone());
            }
            if let Some(ob) = &o.onbuild {
                spec.onbuild = Some(ob.clone());
            }
            spec.env.extend(o.env.clone());
            spec.labels.extend(o.labels.clone());
        }
        spec
    }
}

impl LayerSpec {
    /// Whether any `src` of the layer names a placeholder.
    pub fn has_placeholders(&self) -> bool {
        self.entries.iter().any(|e| match &e.kind {
            EntrySpecKind::Copy { src_text, .. } => {
                PLACEHOLDERS.iter().any(|ph| src_text.contains(ph))
            }
            _ => false,
        })
    }

    /// The layer with `{os}`, `{arch}` and `{variant}` (empty when the
    /// platform has none) filled from `p` in every `src`.
    pub fn for_platform(&self, p: &Platform) -> LayerSpec {
        let mut layer = self.clone();
        if !self.has_placeholders() {
            return layer;
        }
        let fill = |s: &str| {
            s.replace("{os}", &p.os)
                .replace("{arch}", &p.architecture)
                .replace("{variant}", p.variant.as_deref().unwrap_or(""))
        };
        for e in &mut layer.entries {
            if let EntrySpecKind::Copy { src_text, src, .. } = &mut e.kind {
                let filled = fill(src_text);
                // `src` is the build file's directory joined with the text
                // as written; only the written part is filled, so a
                // directory above the build file is never rewritten.
                if let Some(prefix) = src.to_str().and_then(|s| s.strip_suffix(src_text.as_str())) {
                    *src = PathBuf::from(format!("{prefix}{filled}"));
                }
                *src_text = filled;
            }
        }
        layer
    }
}

#[cfg(test)]
mod tests {
    use super::super::BuildFile;
    use super::*;
    use std::path::Path;

    #[test]
    fn placeholders_fill_src_and_overrides_apply_per_platform() {
        let bf = BuildFile::parse(
            r#"
[image.api]
base = "scratch"
platforms = ["linux/amd64", "linux/arm/v7"]
env = { A = "1", B = "2" }
cmd = ["serve"]
[image.api.overrides."linux/arm/v7"]
env = { B = "arm" }
cmd = ["serve", "--small"]
[[image.api.layer]]
files = [{ src = "target/{os}-{arch}{variant}/api", dst = "/api" }]
"#,
            Path::new("/proj/gantry.toml"),
        )
        .unwrap();
        let api = &bf.images["api"];
        let arm = api.for_platform(&Platform::parse("linux/arm/v7").unwrap());
        let amd = api.for_platform(&Platform::parse("linux/amd64").unwrap());
        let src = |s: &ImageSpec| match &s.layers[0].entries[0].kind {
            EntrySpecKind::Copy { src, .. } => src.clone(),
            _ => unreachable!(),
        };
        assert_eq!(src(&arm), Path::new("/proj/target/linux-armv7/api"));
        assert_eq!(src(&amd), Path::new("/proj/target/linux-amd64/api"));
        assert_eq!(arm.env["B"], "arm");
        assert_eq!(amd.env["B"], "2");
        assert_eq!(
            arm.cmd.as_deref(),
            Some(&["serve".into(), "--small".into()][..])
        );
        assert!(!arm.is_multi_platform());
    }

    #[test]
    fn platform_platforms_or_neither_make_one_platforms_value() {
        let bf = BuildFile::parse(
            "[image.a]\nbase = \"alpine\"\n\
             [image.b]\nbase = \"alpine\"\nplatform = \"linux/aarch64\"\n\
             [image.c]\nbase = \"alpine\"\nplatforms = [\"linux/amd64\", \"linux/arm64\"]\n",
            Path::new("/p/gantry.toml"),
        )
        .unwrap();
        let (amd, arm) = (
            Platform::parse("linux/amd64").unwrap(),
            Platform::parse("linux/arm64").unwrap(),
        );
        assert_eq!(bf.images["a"].platforms, Platforms::Base);
        assert_eq!(bf.images["a"].platforms.build_for(), [None]);
        assert_eq!(bf.images["b"].platforms, Platforms::One(arm.clone()));
        assert_eq!(bf.images["b"].platforms.single(), Some(&arm));
        let c = &bf.images["c"];
        assert_eq!(c.platforms.declared(), [amd.clone(), arm.clone()]);
        assert!(c.is_multi_platform() && c.platforms.single().is_none());
        assert_eq!(c.for_platform(&arm).platforms, Platforms::One(arm));
    }

    #[test]
    fn platform_and_platforms_exclude_each_other() {
        let e = BuildFile::parse(
            "[image.a]\nbase = \"scratch\"\nplatform = \"linux/amd64\"\nplatforms = [\"linux/arm64\"]\n",
            Path::new("/p/gantry.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("exclude each other") && e.contains(":4:"), "{e}");
        let e = BuildFile::parse(
            "[image.a]\nbase = \"scratch\"\nplatforms = [\"linux/amd64\"]\n[image.a.overrides.\"linux/s390x\"]\ncmd = []\n",
            Path::new("/p/gantry.toml"),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("not built for linux/s390x"), "{e}");
    }
}
