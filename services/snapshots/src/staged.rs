//! The files an adopted environment's agent uploads, unpacked for capture.
//!
//! The upload is one zstd-compressed tar with these members:
//!
//! | member | what |
//! |---|---|
//! | `inventory.json` | the agent's inventory of the environment (required) |
//! | `env/venv/…`, `env/home/…` | the venv and the notebooks folder, in the environment layout |
//! | `closure.json`, `base/…` | the interpreter's closure and its files at their absolute paths (optional) |
//!
//! Policy: the uploader is trusted about its own environment, not about
//! this host. So nothing is written outside the staging folder (no `..`,
//! no absolute member paths, no writing through a symlink, which `tar`'s
//! `unpack_in` refuses), only files, folders and symlinks are accepted (no
//! devices, fifos or hard links), set-id bits are dropped, the unpacked
//! size is bounded, and the platform never reads the files beyond storing
//! them: the folders the vault starts from must be real folders, not
//! symlinks, so a symlink in the upload is stored as a symlink and never
//! followed here. The inventory comes from the agent for the same reason.

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use westtek_domain::{DomainError, EnvironmentId, Result};
use westtek_inventory::InterpreterClosure;
use westtek_vault::LayerSource;

/// What an upload held besides the files.
#[derive(Debug)]
pub struct Unpacked {
    /// The agent's inventory.
    pub inventory: serde_json::Value,
    /// The interpreter's closure, when the agent sent its files.
    pub closure: Option<serde_json::Value>,
    /// Bytes unpacked.
    pub bytes: u64,
    /// Entries unpacked.
    pub entries: u64,
}

/// Largest `inventory.json` (an environment with many data files).
const MAX_INVENTORY: u64 = 64 << 20;
/// Largest `closure.json`.
const MAX_CLOSURE: u64 = 16 << 20;
/// Most entries one upload may unpack (inodes on the vault's disk).
const MAX_ENTRIES: u64 = 2_000_000;

fn bad(msg: impl Into<String>) -> DomainError {
    DomainError::invalid("upload", msg.into())
}

/// Counts what passes through and stops at `limit`.
struct Bounded<R> {
    inner: R,
    read: u64,
    limit: u64,
}

impl<R: Read> Read for Bounded<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.limit {
            return Err(std::io::Error::other(format!(
                "the upload unpacks to more than {} bytes (WESTTEK_AGENT_UPLOAD_MAX_BYTES)",
                self.limit
            )));
        }
        Ok(n)
    }
}

/// An error with its causes (`tar` wraps the reader's).
fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}

/// A member path made safe: relative, no `..`, no empty name.
fn clean(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

/// Unpacks the zstd-compressed tar `body` into `dir` (see the module docs):
/// `env/…` into `dir/<env>/`, the rest as named.
///
/// # Errors
/// `invalid_input` for a malformed upload, a member outside the allowed
/// names, an entry type that is not a file, folder or symlink, or more than
/// `limit` bytes unpacked; I/O failures as internal errors.
pub fn unpack(body: impl Read, dir: &Path, env: EnvironmentId, limit: u64) -> Result<Unpacked> {
    let decoder = zstd::stream::read::Decoder::new(body)
        .map_err(|e| bad(format!("not a zstd stream: {e}")))?;
    let mut archive = tar::Archive::new(Bounded {
        inner: decoder,
        read: 0,
        limit,
    });
    archive.set_preserve_permissions(true);
    archive.set_preserve_mtime(true);
    archive.set_unpack_xattrs(false);
    archive.set_overwrite(false);
    // Set-id and sticky bits never come from an upload.
    archive.set_mask(0o7000);
    fs::create_dir_all(dir).map_err(DomainError::internal)?;
    let mut inventory: Option<serde_json::Value> = None;
    let mut closure: Option<serde_json::Value> = None;
    let (mut bytes, mut entries) = (0u64, 0u64);
    let iter = archive
        .entries()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?;
    for entry in iter {
        let mut entry = entry.map_err(|e| bad(format!("damaged archive: {e}")))?;
        let raw = entry
            .path()
            .map_err(|e| bad(format!("a member's name is unreadable: {e}")))?
            .into_owned();
        let path = clean(&raw).ok_or_else(|| {
            bad(format!(
                "member {} is not a relative path inside the upload",
                raw.display()
            ))
        })?;
        let kind = entry.header().entry_type();
        // The two documents are read into memory (bounded), never written:
        // nothing the platform reads may be a symlink or a device.
        let doc = if path == Path::new("inventory.json") {
            Some(("inventory.json", &mut inventory, MAX_INVENTORY))
        } else if path == Path::new("closure.json") {
            Some(("closure.json", &mut closure, MAX_CLOSURE))
        } else {
            None
        };
        if let Some((name, slot, max)) = doc {
            if !kind.is_file() {
                return Err(bad(format!("{name} must be a regular file")));
            }
            let mut text = String::new();
            (&mut entry)
                .take(max + 1)
                .read_to_string(&mut text)
                .map_err(|e| bad(format!("{name}: {e}")))?;
            if text.len() as u64 > max {
                return Err(bad(format!("{name} is larger than {max} bytes")));
            }
            *slot = Some(
                serde_json::from_str(&text).map_err(|e| bad(format!("{name} is not JSON: {e}")))?,
            );
            continue;
        }
        if !(kind.is_file() || kind.is_dir() || kind.is_symlink()) {
            return Err(bad(format!(
                "member {} is a {:?}: only files, folders and symlinks are taken",
                path.display(),
                kind
            )));
        }
        // Only the venv and the notebooks under env/ (nothing the engine
        // would take for another layer, such as env/base), and the
        // interpreter's files under base/.
        let mut comps = path.components();
        let top = comps.next().map(|c| c.as_os_str().to_owned());
        let second = comps.next().map(|c| c.as_os_str().to_owned());
        let allowed = match top.as_deref().and_then(|t| t.to_str()) {
            Some("env") => match second.as_deref().and_then(|t| t.to_str()) {
                None => kind.is_dir(),
                Some("venv" | "home") => path.components().count() > 2 || kind.is_dir(),
                Some(_) => false,
            },
            Some("base") => second.is_some() || kind.is_dir(),
            _ => false,
        };
        if !allowed {
            return Err(bad(format!(
                "member {} is not allowed: an upload holds env/venv/…, env/home/…, base/…, inventory.json and closure.json (folders at the top)",
                path.display()
            )));
        }
        entries += 1;
        if entries > MAX_ENTRIES {
            return Err(bad(format!(
                "the upload has more than {MAX_ENTRIES} entries"
            )));
        }
        bytes += entry.size();
        // `unpack_in` refuses paths that leave `dir` and writing through a
        // symlink an earlier member made.
        let ok = entry
            .unpack_in(dir)
            .map_err(|e| bad(format!("member {}: {}", path.display(), chain(&e))))?;
        if !ok {
            return Err(bad(format!("member {} escapes the upload", path.display())));
        }
    }
    let inventory = inventory.ok_or_else(|| bad("the upload has no inventory.json"))?;
    // The environment layout the engine reads: `dir/<env>/`.
    let env_dir = dir.join(env.to_string());
    match fs::symlink_metadata(dir.join("env")) {
        Ok(m) if m.is_dir() => {
            fs::rename(dir.join("env"), &env_dir).map_err(DomainError::internal)?;
        }
        _ => return Err(bad("the upload has no env/ folder")),
    }
    for (name, p) in [
        ("env/venv", env_dir.join("venv")),
        ("env/home", env_dir.join("home")),
    ] {
        match fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(bad(format!(
                    "{name} must be a folder, not a symlink or file"
                )))
            }
            Err(_) if name == "env/home" => {
                fs::create_dir_all(&p).map_err(DomainError::internal)?;
            }
            Err(_) => return Err(bad(format!("the upload has no {name}/"))),
        }
    }
    Ok(Unpacked {
        inventory,
        closure,
        bytes,
        entries,
    })
}

/// Whether every folder from `base` down to `path` (exclusive) is a real
/// folder: the vault opens `path` through them, so none may be a symlink.
fn no_symlink_between(base: &Path, path: &Path) -> bool {
    let Ok(rel) = path.strip_prefix(base) else {
        return false;
    };
    let mut at = base.to_path_buf();
    let comps: Vec<_> = rel.components().collect();
    for c in comps.iter().take(comps.len().saturating_sub(1)) {
        at.push(c);
        match fs::symlink_metadata(&at) {
            Ok(m) if m.is_dir() => {}
            _ => return false,
        }
    }
    true
}

/// The uploaded interpreter's closure (`closure.json`, read by [`unpack`])
/// and its `base` layer, when the agent sent one.
///
/// # Errors
/// `invalid_input` for a damaged `closure.json`, a path in it that is not
/// absolute or has `..`, or one reached through a symlink.
pub fn base_of(
    dir: &Path,
    closure: Option<&serde_json::Value>,
) -> Result<(Option<InterpreterClosure>, Option<LayerSource>)> {
    let Some(closure) = closure else {
        return Ok((None, None));
    };
    let closure: InterpreterClosure =
        serde_json::from_value(closure.clone()).map_err(|e| bad(format!("closure.json: {e}")))?;
    let base = dir.join("base");
    for p in closure.paths.iter().chain(closure.exclude.iter()) {
        let ok = p.is_absolute()
            && p.components().all(|c| !matches!(c, Component::ParentDir))
            && p.as_os_str().len() > 1;
        if !ok {
            return Err(bad(format!(
                "closure.json names {}: only absolute paths without .. are taken",
                p.display()
            )));
        }
        let inside = base.join(p.strip_prefix("/").unwrap_or(p));
        if !no_symlink_between(&base, &inside) {
            return Err(bad(format!(
                "closure path {} is reached through a symlink in the upload",
                p.display()
            )));
        }
    }
    let mut layer = crate::engine::closure_layer(&closure);
    layer.root = base;
    Ok((Some(closure), Some(layer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upload(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        let raw = b.into_inner().unwrap();
        zstd::encode_all(&raw[..], 1).unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8], mode: u32) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    }

    fn dir(b: &mut tar::Builder<Vec<u8>>, path: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        b.append_data(&mut h, path, &[][..]).unwrap();
    }

    fn symlink(b: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_mode(0o777);
        b.append_link(&mut h, path, target).unwrap();
    }

    fn minimal(b: &mut tar::Builder<Vec<u8>>) {
        file(b, "inventory.json", b"{}", 0o644);
        dir(b, "env/venv");
        file(b, "env/venv/pyvenv.cfg", b"home = /usr/bin\n", 0o644);
        dir(b, "env/home");
        file(b, "env/home/a.ipynb", b"{}", 0o4755);
    }

    #[test]
    fn a_good_upload_lands_in_the_layout_without_set_id_bits() {
        use std::os::unix::fs::PermissionsExt;
        let t = tempfile::tempdir().unwrap();
        let env = EnvironmentId::new();
        let body = upload(minimal);
        let u = unpack(&body[..], t.path(), env, 1 << 20).unwrap();
        assert_eq!(u.inventory, serde_json::json!({}));
        let nb = t.path().join(env.to_string()).join("home/a.ipynb");
        assert_eq!(fs::read(&nb).unwrap(), b"{}");
        assert_eq!(
            fs::metadata(&nb).unwrap().permissions().mode() & 0o7777,
            0o755
        );
    }

    #[test]
    fn members_outside_the_layout_or_escaping_are_refused() {
        let env = EnvironmentId::new();
        for (what, body) in [
            (
                "other top-level",
                upload(|b| {
                    minimal(b);
                    file(b, "etc/passwd", b"x", 0o644);
                }),
            ),
            (
                "device",
                upload(|b| {
                    minimal(b);
                    let mut h = tar::Header::new_gnu();
                    h.set_entry_type(tar::EntryType::Char);
                    h.set_size(0);
                    b.append_data(&mut h, "env/home/dev", &[][..]).unwrap();
                }),
            ),
            (
                "write through a symlink",
                upload(|b| {
                    minimal(b);
                    symlink(b, "env/home/out", "/tmp");
                    file(b, "env/home/out/pwned", b"x", 0o644);
                }),
            ),
            (
                "venv is a symlink",
                upload(|b| {
                    file(b, "inventory.json", b"{}", 0o644);
                    symlink(b, "env/venv", "/");
                }),
            ),
            (
                "no inventory",
                upload(|b| {
                    dir(b, "env/venv");
                }),
            ),
        ] {
            let t = tempfile::tempdir().unwrap();
            let r = unpack(&body[..], t.path(), env, 1 << 20);
            assert!(r.is_err(), "{what} was accepted");
            assert!(!Path::new("/tmp/pwned").exists());
        }
    }

    #[test]
    fn an_upload_bigger_than_the_limit_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let body = upload(|b| {
            minimal(b);
            file(b, "env/home/big", &vec![0u8; 200_000], 0o644);
        });
        let e = unpack(&body[..], t.path(), EnvironmentId::new(), 100_000).unwrap_err();
        assert!(e.to_string().contains("more than 100000 bytes"), "{e}");
    }

    #[test]
    fn a_closure_reached_through_a_symlink_is_refused() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("base")).unwrap();
        std::os::unix::fs::symlink("/", t.path().join("base/usr")).unwrap();
        let closure = InterpreterClosure {
            prefix: "/usr".into(),
            paths: vec!["/usr/lib/python3.11".into()],
            exclude: vec![],
            libraries: vec![],
            host: Default::default(),
        };
        let value = serde_json::to_value(&closure).unwrap();
        let e = base_of(t.path(), Some(&value)).err().unwrap();
        assert!(e.to_string().contains("symlink"), "{e}");
        fs::remove_file(t.path().join("base/usr")).unwrap();
        fs::create_dir_all(t.path().join("base/usr/lib/python3.11")).unwrap();
        let (c, layer) = base_of(t.path(), Some(&value)).unwrap();
        assert_eq!(c.unwrap().paths.len(), 1);
        assert_eq!(layer.unwrap().root, t.path().join("base"));
    }
}
