//! A vault with cheap key derivation, the platform's two layers, and
//! snapshot helpers that compare a journaled snapshot with a full walk.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use westtek_domain::ports::ProgressSink;
use westtek_journal::{Journal, Ticket};
use westtek_vault::*;

struct Quiet;
impl ProgressSink for Quiet {
    fn update(&self, _: f32, _: &str) {}
}

pub fn progress() -> Arc<dyn ProgressSink> {
    Arc::new(Quiet)
}

pub fn vault(dir: &Path) -> Vault {
    let storage: Arc<dyn Storage> = Arc::new(LocalStorage::new(dir));
    let options = InitOptions {
        zstd_level: 1,
        pack_target: 1024 * 1024,
        argon2: Argon2Params {
            m_cost_kib: 1024,
            t_cost: 1,
            p_cost: 1,
        },
    };
    Vault::init_with(
        storage,
        &KeySource::Password("journal test".into()),
        options,
    )
    .unwrap()
}

fn layer(name: &str, root: &Path, exclude: &[&str]) -> LayerSource {
    LayerSource {
        name: name.into(),
        root: root.to_path_buf(),
        exclude: exclude.iter().map(|s| s.to_string()).collect(),
        include: vec![],
    }
}

/// The platform's layers of an environment root: `env` (without `home/*`
/// and the runtime dir) and `home`.
pub fn layers(root: &Path) -> Vec<LayerSource> {
    vec![
        layer("env", root, &["home/*", "jupyter/runtime"]),
        layer("home", &root.join("home"), &[]),
    ]
}

pub fn layer_roots(root: &Path) -> Vec<PathBuf> {
    layers(root).into_iter().map(|l| l.root).collect()
}

pub fn snapshot(
    v: &Vault,
    root: &Path,
    parent: Option<&SnapshotId>,
    hint: Option<Vec<PathBuf>>,
) -> SnapshotSummary {
    let req = SnapshotRequest {
        layers: layers(root),
        parent: parent.cloned(),
        metadata: serde_json::json!({}),
        changed_hint: hint,
    };
    v.snapshot(&req, progress()).unwrap()
}

/// One journaled snapshot the way the engine takes it: mark, hints (or a
/// full walk), commit. Returns the summary and whether hints were used.
pub fn journaled(
    j: &Journal,
    env: westtek_domain::EnvironmentId,
    v: &Vault,
    root: &Path,
    parent: Option<&SnapshotId>,
) -> (SnapshotSummary, Result<usize, String>) {
    let ticket: Ticket = j.begin(env, root);
    let hints = ticket.hints_for(parent.map(SnapshotId::as_str), &layer_roots(root));
    let s = snapshot(v, root, parent, hints.clone().ok());
    let full = hints.is_err();
    j.commit(ticket, s.id.as_str(), full);
    (s, hints.map(|h| h.len()))
}

/// A readable account of how two snapshots differ.
pub fn explain(v: &Vault, full: &SnapshotId, journaled: &SnapshotId) -> String {
    match v.diff(full, journaled) {
        Ok(d) => {
            let mut out = String::new();
            for l in d.layers {
                for a in l.added {
                    out += &format!("  {}: only in the journaled one: {:?}\n", l.layer, a.path);
                }
                for r in l.removed {
                    out += &format!(
                        "  {}: missing from the journaled one: {:?}\n",
                        l.layer, r.path
                    );
                }
                for c in l.changed {
                    out += &format!(
                        "  {}: differs: {:?} (content {}, metadata {})\n",
                        l.layer, c.path, c.content_changed, c.metadata_changed
                    );
                }
            }
            if out.is_empty() {
                out =
                    "  (no file-level difference: directory metadata or hard-link groups)\n".into();
            }
            out
        }
        Err(e) => format!("  diff failed: {e}"),
    }
}
