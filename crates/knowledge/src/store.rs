//! The document store port and its local-folder adapter.
//!
//! Knowledge documents live under relative, `/`-separated paths with the
//! seed's layout (see [`DocPath`]'s constructors):
//!
//! ```text
//! notebooks/{lab_id}/{researcher_id}/…                    notebooks as Markdown
//! package-manifests/{environment_id}/{snapshot_id}.txt    pip freeze
//! experiment-logs/{lab_id}/{experiment_id}.json
//! installation-history/{environment_id}/history.jsonl     why/when installed
//! environment-docs/{environment_id}/summary.md            generated summary
//! ```
//!
//! [`DocumentStore`] is the port (the S3 adapter is `westtek-knowledge-aws`);
//! [`LocalFolderStore`] keeps documents as plain files under a root folder,
//! so the folder *is* the knowledge base, readable without the platform.
//!
//! Policy: paths are validated once, by [`DocPath::parse`]: relative, no
//! empty, `.` or `..` segments, no segment starting with `.` (reserved for
//! the store's own files), no backslash, NUL or other control character, at
//! most 1024 bytes. Writes are atomic: a temporary file in the target
//! folder, `fsync`, `rename`, `fsync` of the folder; a reader sees the old
//! document or the new one, never a mix.

use crate::error::{Error, Result};
use async_trait::async_trait;
use serde::Serialize;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use westtek_domain::{EnvironmentId, LabId, SnapshotId, UserId};

/// Longest accepted path, in bytes.
pub const MAX_PATH_LEN: usize = 1024;

/// A validated document path (see the module docs for the rules).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct DocPath(String);

impl DocPath {
    /// Validates a path.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] naming the rule broken.
    pub fn parse(path: &str) -> Result<Self> {
        check_path(path, false)?;
        Ok(DocPath(path.to_string()))
    }

    /// A notebook's Markdown: `notebooks/{lab_id}/{researcher_id}/{relative}`,
    /// where `relative` is the notebook's path in the researcher's home
    /// (`analysis/growth.md`).
    ///
    /// # Errors
    /// [`Error::InvalidPath`] when `relative` breaks a path rule.
    pub fn notebook(lab_id: LabId, researcher_id: UserId, relative: &str) -> Result<Self> {
        Self::parse(&format!("notebooks/{lab_id}/{researcher_id}/{relative}"))
    }

    /// A snapshot's `pip freeze`: `package-manifests/{environment_id}/{snapshot_id}.txt`.
    pub fn package_manifest(environment_id: EnvironmentId, snapshot_id: SnapshotId) -> Self {
        DocPath(format!(
            "package-manifests/{environment_id}/{snapshot_id}.txt"
        ))
    }

    /// An experiment log: `experiment-logs/{lab_id}/{experiment_id}.json`.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] when `experiment_id` is empty or contains `/`
    /// or breaks a path rule.
    pub fn experiment_log(lab_id: LabId, experiment_id: &str) -> Result<Self> {
        if experiment_id.is_empty() || experiment_id.contains('/') {
            return Err(Error::InvalidPath {
                path: experiment_id.to_string(),
                reason: "an experiment id is one non-empty path segment",
            });
        }
        Self::parse(&format!("experiment-logs/{lab_id}/{experiment_id}.json"))
    }

    /// The install history: `installation-history/{environment_id}/history.jsonl`.
    pub fn installation_history(environment_id: EnvironmentId) -> Self {
        DocPath(format!(
            "installation-history/{environment_id}/history.jsonl"
        ))
    }

    /// The generated summary: `environment-docs/{environment_id}/summary.md`.
    pub fn environment_summary(environment_id: EnvironmentId) -> Self {
        DocPath(format!("environment-docs/{environment_id}/summary.md"))
    }

    /// The path as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last segment.
    pub fn file_name(&self) -> &str {
        self.0.rsplit('/').next().unwrap_or(&self.0)
    }
}

impl std::fmt::Display for DocPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<&str> for DocPath {
    type Error = Error;
    fn try_from(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// Checks a listing prefix as [`DocumentStore::list`] must: it may be
/// empty, end with `/` or in the middle of a segment, and otherwise follows
/// the path rules. For adapters outside this crate.
///
/// # Errors
/// [`Error::InvalidPath`] naming the rule broken.
pub fn check_prefix(prefix: &str) -> Result<()> {
    check_path(prefix, true)
}

/// Checks a path, or a listing prefix (which may be empty, end with `/`, or
/// end in the middle of a segment).
fn check_path(path: &str, prefix: bool) -> Result<()> {
    let refuse = |reason: &'static str| {
        Err(Error::InvalidPath {
            path: path.chars().take(200).collect(),
            reason,
        })
    };
    if path.is_empty() {
        return if prefix { Ok(()) } else { refuse("empty") };
    }
    if path.len() > MAX_PATH_LEN {
        return refuse("longer than 1024 bytes");
    }
    if path.contains('\0') {
        return refuse("contains NUL");
    }
    if path.contains('\\') {
        return refuse("contains a backslash");
    }
    if path.chars().any(char::is_control) {
        return refuse("contains a control character");
    }
    if path.starts_with('/') {
        return refuse("absolute");
    }
    let segments: Vec<&str> = path.split('/').collect();
    let last = segments.len() - 1;
    for (i, segment) in segments.iter().enumerate() {
        if *segment == ".." {
            return refuse("contains `..`");
        }
        if segment.is_empty() {
            if prefix && i == last {
                continue;
            }
            return refuse("has an empty segment");
        }
        if segment.starts_with('.') {
            return refuse("has a segment starting with `.`");
        }
    }
    Ok(())
}

/// A stored document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Document {
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its media type, as given to `put`.
    pub content_type: String,
}

/// A document in a listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DocumentInfo {
    /// Its path.
    pub path: DocPath,
    /// Its size in bytes.
    pub size: u64,
}

/// Where knowledge documents are kept.
#[async_trait]
pub trait DocumentStore: Send + Sync {
    /// Stores a document, replacing any document at the same path, atomically.
    ///
    /// # Errors
    /// [`Error::InvalidContentType`] for a content type that is not a media type;
    /// [`Error::Io`] or [`Error::Backend`] when the write fails.
    async fn put(&self, path: &DocPath, bytes: &[u8], content_type: &str) -> Result<()>;

    /// The document at `path`, or `None`.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Backend`] when the read fails.
    async fn get(&self, path: &DocPath) -> Result<Option<Document>>;

    /// Documents whose path starts with `prefix` (plain string prefix, as S3
    /// has it: `notebooks/` lists all notebooks), sorted by path.
    ///
    /// # Errors
    /// [`Error::InvalidPath`] for a prefix breaking a path rule; [`Error::Io`]
    /// or [`Error::Backend`] when listing fails.
    async fn list(&self, prefix: &str) -> Result<Vec<DocumentInfo>>;

    /// Deletes the document at `path`; `false` if there was none.
    ///
    /// # Errors
    /// [`Error::Io`] or [`Error::Backend`] when the delete fails.
    async fn delete(&self, path: &DocPath) -> Result<bool>;
}

/// Name of the folder, under the root, that keeps each document's content type.
const META_DIR: &str = ".meta";

/// Documents as files under a root folder: `{root}/{path}`, with the content
/// type in `{root}/.meta/{path}.json`. Temporary files are `.tmp-*` beside
/// their target; the dot keeps them (and `.meta`) out of listings and out of
/// reach of any valid path.
#[derive(Clone, Debug)]
pub struct LocalFolderStore {
    root: PathBuf,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    content_type: String,
}

impl LocalFolderStore {
    /// A store rooted at `root`, created if missing.
    ///
    /// # Errors
    /// [`Error::Io`] when the folder cannot be created.
    pub fn new(root: impl Into<PathBuf>) -> Result<Self> {
        let root = root.into();
        fs::create_dir_all(&root).map_err(|e| Error::io("creating", &root, e))?;
        Ok(LocalFolderStore { root })
    }

    /// The root folder.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn file(&self, path: &DocPath) -> PathBuf {
        self.root.join(path.as_str())
    }

    fn meta_file(&self, path: &DocPath) -> PathBuf {
        self.root
            .join(META_DIR)
            .join(format!("{}.json", path.as_str()))
    }
}

/// Checks a content type as [`DocumentStore::put`] must: `type/subtype`
/// (parameters allowed), printable ASCII, at most 255 bytes. For adapters
/// outside this crate.
///
/// # Errors
/// [`Error::InvalidContentType`].
pub fn check_content_type(content_type: &str) -> Result<()> {
    let valid = !content_type.is_empty()
        && content_type.len() <= 255
        && content_type.contains('/')
        && content_type.bytes().all(|b| (0x20..0x7f).contains(&b));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidContentType(
            content_type.chars().take(100).collect(),
        ))
    }
}

/// Writes `bytes` to `target` through a synced temporary file and a rename,
/// then syncs the folder so the rename itself survives a crash.
fn write_atomically(target: &Path, bytes: &[u8]) -> Result<()> {
    let dir = target
        .parent()
        .ok_or_else(|| Error::Backend("a document path has no parent folder".into()))?;
    fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(|e| Error::io("creating a temporary file in", dir, e))?;
    tmp.write_all(bytes)
        .map_err(|e| Error::io("writing", tmp.path().to_path_buf(), e))?;
    tmp.as_file()
        .sync_all()
        .map_err(|e| Error::io("syncing", tmp.path().to_path_buf(), e))?;
    tmp.persist(target)
        .map_err(|e| Error::io("renaming into place", target, e.error))?;
    sync_dir(dir)
}

fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io("syncing", dir, e))
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T> + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| Error::Task(e.to_string()))?
}

#[async_trait]
impl DocumentStore for LocalFolderStore {
    #[tracing::instrument(skip(self, bytes), fields(path = %path, size = bytes.len()))]
    async fn put(&self, path: &DocPath, bytes: &[u8], content_type: &str) -> Result<()> {
        check_content_type(content_type)?;
        let file = self.file(path);
        let meta_file = self.meta_file(path);
        let bytes = bytes.to_vec();
        let meta = serde_json::to_vec(&Meta {
            content_type: content_type.to_string(),
        })
        .map_err(|e| Error::Backend(e.to_string()))?;
        blocking(move || {
            // The document first: a crash in between leaves the right bytes
            // with the previous (or a guessed) content type, never the reverse.
            write_atomically(&file, &bytes)?;
            write_atomically(&meta_file, &meta)
        })
        .await
    }

    #[tracing::instrument(skip(self), fields(path = %path))]
    async fn get(&self, path: &DocPath) -> Result<Option<Document>> {
        let file = self.file(path);
        let meta_file = self.meta_file(path);
        let name = path.file_name().to_string();
        blocking(move || {
            let bytes = match fs::read(&file) {
                Ok(bytes) => bytes,
                Err(e) if absent(&e) => return Ok(None),
                Err(e) => return Err(Error::io("reading", &file, e)),
            };
            let content_type = fs::read(&meta_file)
                .ok()
                .and_then(|m| serde_json::from_slice::<Meta>(&m).ok())
                .map(|m| m.content_type)
                .unwrap_or_else(|| guess_content_type(&name).to_string());
            Ok(Some(Document {
                bytes,
                content_type,
            }))
        })
        .await
    }

    #[tracing::instrument(skip(self))]
    async fn list(&self, prefix: &str) -> Result<Vec<DocumentInfo>> {
        check_path(prefix, true)?;
        let root = self.root.clone();
        let prefix = prefix.to_string();
        blocking(move || {
            // From the root down, entering only folders the prefix can
            // match, so no folder on the way can be a link leading out.
            let mut out = Vec::new();
            walk(&root, "", &prefix, &mut out)?;
            out.sort_by(|a, b| a.path.cmp(&b.path));
            Ok(out)
        })
        .await
    }

    #[tracing::instrument(skip(self), fields(path = %path))]
    async fn delete(&self, path: &DocPath) -> Result<bool> {
        let file = self.file(path);
        let meta_file = self.meta_file(path);
        let root = self.root.clone();
        blocking(move || {
            let existed = match fs::remove_file(&file) {
                Ok(()) => true,
                Err(e) if absent(&e) => false,
                Err(e) => return Err(Error::io("deleting", &file, e)),
            };
            match fs::remove_file(&meta_file) {
                Ok(()) => {}
                Err(e) if e.kind() == ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io("deleting", &meta_file, e)),
            }
            if existed {
                prune_empty_dirs(&root, &file);
                prune_empty_dirs(&root.join(META_DIR), &meta_file);
            }
            Ok(existed)
        })
        .await
    }
}

/// No document there: nothing, a folder, or a file where a folder was expected.
fn absent(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NotFound | ErrorKind::IsADirectory | ErrorKind::NotADirectory
    )
}

/// Removes the folders left empty between `file` and `root` (best effort:
/// a concurrent writer may have just created one, which then stays).
fn prune_empty_dirs(root: &Path, file: &Path) {
    let mut dir = file.parent();
    while let Some(d) = dir {
        if d == root || !d.starts_with(root) || fs::remove_dir(d).is_err() {
            break;
        }
        dir = d.parent();
    }
}

fn walk(root: &Path, rel: &str, prefix: &str, out: &mut Vec<DocumentInfo>) -> Result<()> {
    let dir = if rel.is_empty() {
        root.to_path_buf()
    } else {
        root.join(rel)
    };
    let entries = match fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if matches!(e.kind(), ErrorKind::NotFound | ErrorKind::NotADirectory) => {
            return Ok(())
        }
        Err(e) => return Err(Error::io("listing", &dir, e)),
    };
    for entry in entries {
        let entry = entry.map_err(|e| Error::io("listing", &dir, e))?;
        let Ok(name) = entry.file_name().into_string() else {
            continue; // not UTF-8: not ours
        };
        if name.starts_with('.') {
            continue; // temporary files and the metadata folder
        }
        let child = if rel.is_empty() {
            name
        } else {
            format!("{rel}/{name}")
        };
        // The walk may only descend where the prefix can still match.
        let relevant = child.starts_with(prefix) || prefix.starts_with(&format!("{child}/"));
        if !relevant {
            continue;
        }
        // Symbolic links are not followed: a link could lead out of the root.
        let file_type = entry
            .file_type()
            .map_err(|e| Error::io("listing", entry.path(), e))?;
        if file_type.is_dir() {
            walk(root, &child, prefix, out)?;
        } else if file_type.is_file() && child.starts_with(prefix) {
            let size = entry
                .metadata()
                .map_err(|e| Error::io("listing", entry.path(), e))?
                .len();
            if let Ok(path) = DocPath::parse(&child) {
                out.push(DocumentInfo { path, size });
            }
        }
    }
    Ok(())
}

/// Content type of a document whose metadata is missing, from its name.
pub fn guess_content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("md") => "text/markdown; charset=utf-8",
        Some("txt") => "text/plain; charset=utf-8",
        Some("json") => "application/json",
        Some("jsonl") => "application/jsonl",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_the_seed_layout_are_accepted() {
        let lab = LabId::new();
        let user = UserId::new();
        let env = EnvironmentId::new();
        let snap = SnapshotId::new();
        for p in [
            DocPath::notebook(lab, user, "analysis/growth curves.md").unwrap(),
            DocPath::package_manifest(env, snap),
            DocPath::experiment_log(lab, "exp-42").unwrap(),
            DocPath::installation_history(env),
            DocPath::environment_summary(env),
        ] {
            assert_eq!(DocPath::parse(p.as_str()).unwrap(), p);
        }
        assert_eq!(
            DocPath::environment_summary(env).as_str(),
            format!("environment-docs/{env}/summary.md")
        );
        assert!(DocPath::experiment_log(lab, "a/b").is_err());
        assert!(DocPath::experiment_log(lab, "..").is_err());
    }

    #[test]
    fn traversal_absolute_backslash_and_nul_are_refused() {
        for bad in [
            "",
            "../etc/passwd",
            "notebooks/../../x",
            "notebooks/./x",
            "/etc/passwd",
            "notebooks\\x.md",
            "notebooks/x\0.md",
            "notebooks//x.md",
            "notebooks/x/",
            "notebooks/.hidden",
            ".meta/x.json",
            "notebooks/x\n.md",
        ] {
            let err = DocPath::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidPath { .. }), "{bad:?}: {err}");
        }
        assert!(DocPath::parse(&"a/".repeat(600)).is_err());
    }

    #[test]
    fn prefixes_may_be_empty_or_partial_but_not_escape() {
        assert!(check_path("", true).is_ok());
        assert!(check_path("notebooks/", true).is_ok());
        assert!(check_path("notebooks/ab", true).is_ok());
        assert!(check_path("../", true).is_err());
        assert!(check_path("/notebooks", true).is_err());
        assert!(check_path("notebooks//", true).is_err());
    }
}
