//! The little reference handling that local image locations need: turning
//! the names archives carry (`busybox:latest`, `docker.io/library/busybox:latest`,
//! `example.com/worker:dev`) into one comparable form, and back into the
//! short form `docker save` writes. Deliberately lenient: these names come
//! from files other tools wrote, and a name that is odd but unambiguous
//! should still select its image. Full validation belongs to
//! `crate::reference`.

const DOCKER_HUB: &str = "docker.io";

/// A reference split into its parts, normalised the way docker does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    pub domain: String,
    pub path: String,
    pub tag: Option<String>,
    pub digest: Option<String>,
}

impl Name {
    pub fn parse(reference: &str) -> Option<Name> {
        let (rest, digest) = match reference.split_once('@') {
            Some((r, d)) => (r, Some(d.to_string())),
            None => (reference, None),
        };
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (repo, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if repo.is_empty() || tag.as_deref() == Some("") || digest.as_deref() == Some("") {
            return None;
        }
        let (domain, path) = match repo.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (first.to_string(), path.to_string())
            }
            _ => (DOCKER_HUB.to_string(), repo.to_string()),
        };
        let domain = match domain.as_str() {
            "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
            _ => domain,
        };
        let path = if domain == DOCKER_HUB && !path.contains('/') {
            format!("library/{path}")
        } else {
            path
        };
        if path.is_empty() || path.split('/').any(str::is_empty) {
            return None;
        }
        let tag = match (tag, &digest) {
            (None, None) => Some("latest".to_string()),
            (tag, _) => tag,
        };
        Some(Name {
            domain,
            path,
            tag,
            digest,
        })
    }

    /// `registry/repository[:tag][@digest]`, as containerd names images.
    pub fn full(&self) -> String {
        let mut s = format!("{}/{}", self.domain, self.path);
        self.push_suffix(&mut s);
        s
    }

    /// The short form docker prints and writes in `RepoTags`:
    /// `busybox:latest`, `someone/tool:1`, `example.com/worker:dev`.
    pub fn familiar(&self) -> String {
        let mut s = if self.domain == DOCKER_HUB {
            match self.path.strip_prefix("library/") {
                Some(short) if !short.contains('/') => short.to_string(),
                _ => self.path.clone(),
            }
        } else {
            format!("{}/{}", self.domain, self.path)
        };
        self.push_suffix(&mut s);
        s
    }

    fn push_suffix(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(d);
        }
    }
}

/// The normalised full form of `reference`, or the text itself when it does
/// not look like a reference at all.
pub(crate) fn full_or_raw(reference: &str) -> String {
    Name::parse(reference).map_or_else(|| reference.to_string(), |n| n.full())
}

/// Whether a user's `select` names the same image as `name`, a full or
/// familiar reference found in an archive.
pub(crate) fn same_reference(select: &str, name: &str) -> bool {
    if select == name {
        return true;
    }
    match (Name::parse(select), Name::parse(name)) {
        (Some(a), Some(b)) => a == b,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_docker_hub_short_names() {
        let n = Name::parse("busybox").unwrap();
        assert_eq!(n.full(), "docker.io/library/busybox:latest");
        assert_eq!(n.familiar(), "busybox:latest");
        let n = Name::parse("someone/tool:1").unwrap();
        assert_eq!(n.full(), "docker.io/someone/tool:1");
        assert_eq!(n.familiar(), "someone/tool:1");
        let n = Name::parse("index.docker.io/library/alpine:3").unwrap();
        assert_eq!(n.familiar(), "alpine:3");
    }

    #[test]
    fn keeps_registries_with_ports_and_localhost() {
        let n = Name::parse("localhost:5000/a/b:dev").unwrap();
        assert_eq!(n.domain, "localhost:5000");
        assert_eq!(n.path, "a/b");
        assert_eq!(n.tag.as_deref(), Some("dev"));
        assert_eq!(n.familiar(), "localhost:5000/a/b:dev");
        let n = Name::parse("example.com/worker").unwrap();
        assert_eq!(n.full(), "example.com/worker:latest");
    }

    #[test]
    fn digest_references_get_no_default_tag() {
        let d = format!("sha256:{}", "a".repeat(64));
        let n = Name::parse(&format!("alpine@{d}")).unwrap();
        assert_eq!(n.tag, None);
        assert_eq!(n.full(), format!("docker.io/library/alpine@{d}"));
    }

    #[test]
    fn matches_full_and_familiar_forms() {
        assert!(same_reference(
            "busybox",
            "docker.io/library/busybox:latest"
        ));
        assert!(same_reference("busybox:latest", "busybox:latest"));
        assert!(!same_reference("busybox:1", "busybox:latest"));
        assert!(!same_reference("a/busybox", "busybox"));
    }

    #[test]
    fn rejects_empty_parts() {
        assert!(Name::parse("").is_none());
        assert!(Name::parse("a:").is_none());
        assert!(Name::parse("a//b").is_none());
        assert_eq!(full_or_raw(":"), ":");
    }
}
