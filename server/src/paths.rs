//! Every path a request names, resolved under the workspace root or
//! refused. Ids are folder paths relative to the root with `/` separators
//! (`runs/demo`); a request may not name an absolute path, a `..`, an empty
//! or hidden component, or a path whose real location (symlinks followed)
//! lies outside the root. The root itself is canonical, so comparing
//! canonical prefixes is exact.

use std::path::{Component, Path, PathBuf};

/// Why a path was refused (answered as 400, or 404 when it is merely absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRefusal {
    /// The text is not a relative path of plain components.
    Invalid(String),
    /// It resolves (through a symlink) outside the root.
    Outside(String),
    /// Nothing is there.
    Missing(String),
}

impl std::fmt::Display for PathRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PathRefusal::Invalid(why) => write!(f, "{why}"),
            PathRefusal::Outside(p) => write!(f, "`{p}` leads outside the workspace root"),
            PathRefusal::Missing(p) => write!(f, "`{p}` does not exist under the workspace root"),
        }
    }
}

/// The workspace root, canonical.
#[derive(Debug, Clone)]
pub struct Root {
    dir: PathBuf,
}

/// Longest id accepted (bytes).
const MAX_ID_BYTES: usize = 1024;

impl Root {
    /// The canonical form of `dir`, which must be a readable folder.
    pub fn new(dir: &Path) -> std::io::Result<Root> {
        let dir = dir.canonicalize()?;
        if !dir.is_dir() {
            return Err(std::io::Error::other(format!("{} is not a folder", dir.display())));
        }
        Ok(Root { dir })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The components of `id`, checked: relative, plain names only.
    fn components(id: &str) -> Result<Vec<&str>, PathRefusal> {
        if id.len() > MAX_ID_BYTES {
            return Err(PathRefusal::Invalid(format!(
                "a path may have at most {MAX_ID_BYTES} bytes"
            )));
        }
        if id.starts_with('/') || id.starts_with('\\') {
            return Err(PathRefusal::Invalid(format!(
                "`{id}` is absolute; name a path relative to the workspace root"
            )));
        }
        let parts: Vec<&str> = id.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        for part in &parts {
            let bad = *part == ".."
                || part.starts_with('.')
                || part.contains('\0')
                || part.contains('\\')
                || Path::new(part).components().count() != 1
                || !matches!(Path::new(part).components().next(), Some(Component::Normal(_)));
            if bad {
                return Err(PathRefusal::Invalid(format!(
                    "`{id}`: the component `{part}` is not allowed (no `..`, hidden or special names)"
                )));
            }
        }
        Ok(parts)
    }

    /// `id` joined to the root without touching the disk (checked syntax only).
    pub fn join(&self, id: &str) -> Result<PathBuf, PathRefusal> {
        let mut path = self.dir.clone();
        for part in Self::components(id)? {
            path.push(part);
        }
        Ok(path)
    }

    /// An existing path under the root: syntax checked, then its real
    /// location (every symlink followed) must lie inside the root.
    pub fn existing(&self, id: &str) -> Result<PathBuf, PathRefusal> {
        let joined = self.join(id)?;
        let real = joined.canonicalize().map_err(|_| PathRefusal::Missing(id.to_string()))?;
        if real.starts_with(&self.dir) {
            Ok(real)
        } else {
            Err(PathRefusal::Outside(id.to_string()))
        }
    }

    /// A path to create under the root: it must not exist yet, and its
    /// nearest existing ancestor must lie inside the root.
    pub fn new_path(&self, id: &str) -> Result<PathBuf, PathRefusal> {
        let joined = self.join(id)?;
        if joined == self.dir {
            return Err(PathRefusal::Invalid("name a folder under the workspace root".into()));
        }
        if joined.symlink_metadata().is_ok() {
            return Err(PathRefusal::Invalid(format!(
                "`{id}` exists already; choose another name"
            )));
        }
        let mut ancestor = joined.parent();
        while let Some(dir) = ancestor {
            if dir.symlink_metadata().is_ok() {
                let real = dir.canonicalize().map_err(|_| PathRefusal::Missing(id.to_string()))?;
                return if real.starts_with(&self.dir) {
                    Ok(joined)
                } else {
                    Err(PathRefusal::Outside(id.to_string()))
                };
            }
            ancestor = dir.parent();
        }
        Err(PathRefusal::Outside(id.to_string()))
    }

    /// A path recorded in a file (run.json, a manifest): relative ones are
    /// taken from the root (where the server runs its jobs); answered only
    /// when it exists and its real location lies under the root.
    pub fn recorded(&self, path: &Path) -> Option<PathBuf> {
        let joined = if path.is_absolute() { path.to_path_buf() } else { self.dir.join(path) };
        let real = joined.canonicalize().ok()?;
        real.starts_with(&self.dir).then_some(real)
    }

    /// The id of a [`Root::recorded`] path.
    pub fn recorded_id(&self, path: &Path) -> Option<String> {
        self.recorded(path).and_then(|p| self.id_of(&p))
    }

    /// The id of a path under the root (`/`-separated), `None` outside it.
    pub fn id_of(&self, path: &Path) -> Option<String> {
        let rel = path.strip_prefix(&self.dir).ok()?;
        let parts: Option<Vec<&str>> = rel
            .components()
            .map(|c| match c {
                Component::Normal(s) => s.to_str(),
                _ => None,
            })
            .collect();
        Some(parts?.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_traversal_absolute_hidden_and_symlinks_out() {
        let outside = tempfile::tempdir().unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("runs/a")).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("out")).unwrap();
        let root = Root::new(dir.path()).unwrap();
        assert!(root.existing("runs/a").is_ok());
        assert!(root.existing("runs//a/").is_ok());
        for bad in ["../etc", "runs/../../x", "/etc/passwd", ".lvc/jobs", "runs/.git", "a\\..\\b"] {
            assert!(matches!(root.existing(bad), Err(PathRefusal::Invalid(_))), "{bad}");
        }
        assert_eq!(root.existing("out"), Err(PathRefusal::Outside("out".into())));
        assert_eq!(root.new_path("out/new"), Err(PathRefusal::Outside("out/new".into())));
        assert!(matches!(root.existing("runs/none"), Err(PathRefusal::Missing(_))));
        assert!(root.new_path("runs/b/c").is_ok());
        assert!(root.new_path("runs/a").is_err());
        assert_eq!(root.id_of(&root.dir().join("runs/a")).as_deref(), Some("runs/a"));
        assert_eq!(root.recorded_id(Path::new("runs/a")).as_deref(), Some("runs/a"));
        assert_eq!(root.recorded_id(&root.dir().join("runs/../runs/a")).as_deref(), Some("runs/a"));
        assert_eq!(root.recorded(Path::new("out")), None);
        assert_eq!(root.recorded(Path::new("/etc")), None);
    }
}
