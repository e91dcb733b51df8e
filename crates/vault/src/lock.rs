//! Lock objects (`locks/<uuid>`), which keep garbage collection from
//! deleting data a running snapshot, restore or verify relies on.
//!
//! Snapshots, restores and verifies take a *shared* lock, garbage
//! collection an *exclusive* one. Taking a lock writes its object first and
//! only then lists the others, so of two racing processes at least one sees
//! the other and backs off (removes its own object, waits, retries until the
//! lock timeout). `delete` of a snapshot needs no lock: it only removes the
//! snapshot object, and gc never runs while a snapshot that might still use
//! the deleted snapshot's chunks is running.
//!
//! A lock is stale — removed by whoever finds it — when its process is gone:
//! same boot (Linux boot id) and the pid no longer exists (or, for our own
//! pid, the lock is not held by this process any more), or when it was not
//! refreshed for 30 minutes (other hosts; holders refresh every 5 minutes).

use crate::error::{Result, StorageError, VaultError};
use crate::storage::Storage;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

const REFRESH_EVERY: Duration = Duration::from_secs(300);
const STALE_AFTER: chrono::TimeDelta = chrono::TimeDelta::minutes(30);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum LockKind {
    Shared,
    Exclusive,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct LockDoc {
    pub kind: LockKind,
    pub operation: String,
    pub token: String,
    pub pid: u32,
    pub boot_id: String,
    pub hostname: String,
    pub created_at: DateTime<Utc>,
    pub refreshed_at: DateTime<Utc>,
}

fn live_tokens() -> &'static Mutex<HashSet<String>> {
    static LIVE: OnceLock<Mutex<HashSet<String>>> = OnceLock::new();
    LIVE.get_or_init(|| Mutex::new(HashSet::new()))
}

fn read_first_line(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

pub(crate) fn boot_id() -> String {
    read_first_line("/proc/sys/kernel/random/boot_id").unwrap_or_default()
}

pub(crate) fn hostname() -> String {
    read_first_line("/proc/sys/kernel/hostname")
        .or_else(|| read_first_line("/etc/hostname"))
        .unwrap_or_else(|| "unknown".into())
}

fn pid_alive(pid: u32) -> bool {
    let Ok(raw) = i32::try_from(pid) else {
        return false;
    };
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(raw), None) {
        Ok(()) => true,
        Err(nix::errno::Errno::ESRCH) => false,
        Err(_) => true,
    }
}

impl LockDoc {
    /// Whether the holder is certainly gone.
    pub(crate) fn is_stale(&self, my_boot: &str) -> bool {
        if !my_boot.is_empty() && self.boot_id == my_boot {
            if self.pid == std::process::id() {
                return live_tokens()
                    .lock()
                    .map(|s| !s.contains(&self.token))
                    .unwrap_or(false);
            }
            return !pid_alive(self.pid);
        }
        Utc::now() - self.refreshed_at > STALE_AFTER
    }

    fn describe(&self) -> String {
        format!(
            "{} lock for {} by pid {} on {} since {}",
            match self.kind {
                LockKind::Shared => "shared",
                LockKind::Exclusive => "exclusive",
            },
            self.operation,
            self.pid,
            self.hostname,
            self.created_at.to_rfc3339()
        )
    }
}

/// A held lock; dropping it removes the lock object.
pub(crate) struct LockGuard {
    storage: Arc<dyn Storage>,
    key: Arc<Mutex<String>>,
    token: String,
    stop: Option<mpsc::Sender<()>>,
    refresher: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(h) = self.refresher.take() {
            let _ = h.join();
        }
        if let Ok(k) = self.key.lock() {
            let _ = self.storage.delete_ephemeral(&k);
        }
        if let Ok(mut s) = live_tokens().lock() {
            s.remove(&self.token);
        }
    }
}

/// Lists the lock objects, removing stale ones; returns the live ones
/// (except `mine`) and how many stale ones were removed.
pub(crate) fn live_locks(storage: &dyn Storage, mine: Option<&str>) -> Result<(Vec<LockDoc>, u64)> {
    let my_boot = boot_id();
    let mut live = Vec::new();
    let mut removed = 0;
    for o in storage.list("locks/")? {
        let doc: LockDoc = match storage.get(&o.key) {
            Ok(b) => match serde_json::from_slice(&b) {
                Ok(d) => d,
                // Unreadable lock objects are treated as held (safe side),
                // unless old enough to be garbage.
                Err(_) => {
                    let d = LockDoc {
                        kind: LockKind::Exclusive,
                        operation: format!("unreadable lock object {}", o.key),
                        token: o.key.clone(),
                        pid: 0,
                        boot_id: String::new(),
                        hostname: "unknown".into(),
                        created_at: Utc::now(),
                        refreshed_at: Utc::now(),
                    };
                    live.push(d);
                    continue;
                }
            },
            Err(StorageError::NotFound(_)) => continue,
            Err(e) => return Err(e.into()),
        };
        if Some(doc.token.as_str()) == mine {
            continue;
        }
        if doc.is_stale(&my_boot) {
            storage.delete_ephemeral(&o.key)?;
            removed += 1;
        } else {
            live.push(doc);
        }
    }
    Ok((live, removed))
}

/// Takes a lock, waiting up to `timeout` for conflicting holders.
pub(crate) fn acquire(
    storage: &Arc<dyn Storage>,
    kind: LockKind,
    operation: &str,
    timeout: Duration,
) -> Result<LockGuard> {
    let token = uuid::Uuid::new_v4().simple().to_string();
    let boot = boot_id();
    let host = hostname();
    let started = Instant::now();
    let mut wait = Duration::from_millis(20);
    if let Ok(mut s) = live_tokens().lock() {
        s.insert(token.clone());
    }
    let mut seq = 0u64;
    loop {
        let now = Utc::now();
        let doc = LockDoc {
            kind,
            operation: operation.to_string(),
            token: token.clone(),
            pid: std::process::id(),
            boot_id: boot.clone(),
            hostname: host.clone(),
            created_at: now,
            refreshed_at: now,
        };
        let key = format!("locks/{token}-{seq}");
        seq += 1;
        let put = serde_json::to_vec(&doc)
            .map_err(|e| VaultError::Internal(format!("lock: {e}")))
            .and_then(|b| storage.put_ephemeral(&key, &b).map_err(VaultError::from));
        if let Err(e) = put {
            forget(&token);
            return Err(e);
        }
        let conflicts = match live_locks(storage.as_ref(), Some(&token)) {
            Ok((live, _)) => live
                .into_iter()
                .filter(|d| kind == LockKind::Exclusive || d.kind == LockKind::Exclusive)
                .collect::<Vec<_>>(),
            Err(e) => {
                let _ = storage.delete_ephemeral(&key);
                forget(&token);
                return Err(e);
            }
        };
        if conflicts.is_empty() {
            return Ok(start_refresher(storage, key, token, doc, seq));
        }
        let _ = storage.delete_ephemeral(&key);
        if started.elapsed() >= timeout {
            forget(&token);
            return Err(VaultError::Locked(
                conflicts
                    .iter()
                    .map(LockDoc::describe)
                    .collect::<Vec<_>>()
                    .join("; "),
            ));
        }
        std::thread::sleep(wait.min(timeout.saturating_sub(started.elapsed())));
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

fn forget(token: &str) {
    if let Ok(mut s) = live_tokens().lock() {
        s.remove(token);
    }
}

fn start_refresher(
    storage: &Arc<dyn Storage>,
    key: String,
    token: String,
    doc: LockDoc,
    mut seq: u64,
) -> LockGuard {
    let (tx, rx) = mpsc::channel::<()>();
    let key = Arc::new(Mutex::new(key));
    let st = Arc::clone(storage);
    let k2 = Arc::clone(&key);
    let refresher = std::thread::Builder::new()
        .name("vault-lock".into())
        .spawn(move || {
            let mut doc = doc;
            // Any message or a closed channel ends the refresher.
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(REFRESH_EVERY) {
                doc.refreshed_at = Utc::now();
                let new_key = format!("locks/{}-{seq}", doc.token);
                seq += 1;
                let Ok(bytes) = serde_json::to_vec(&doc) else {
                    continue;
                };
                if st.put_ephemeral(&new_key, &bytes).is_ok() {
                    if let Ok(mut k) = k2.lock() {
                        let _ = st.delete_ephemeral(&k);
                        *k = new_key;
                    }
                }
            }
        })
        .ok();
    LockGuard {
        storage: Arc::clone(storage),
        key,
        token,
        stop: Some(tx),
        refresher,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::LocalStorage;

    fn store() -> (tempfile::TempDir, Arc<dyn Storage>) {
        let d = tempfile::tempdir().unwrap();
        let s: Arc<dyn Storage> = Arc::new(LocalStorage::new(d.path()));
        (d, s)
    }

    #[test]
    fn shared_locks_coexist_and_block_an_exclusive_one() {
        let (_d, s) = store();
        let a = acquire(&s, LockKind::Shared, "snapshot", Duration::ZERO).unwrap();
        let _b = acquire(&s, LockKind::Shared, "restore", Duration::ZERO).unwrap();
        let err = acquire(&s, LockKind::Exclusive, "gc", Duration::from_millis(50));
        assert!(matches!(err, Err(VaultError::Locked(m)) if m.contains("snapshot")));
        drop(a);
        drop(_b);
        let g = acquire(&s, LockKind::Exclusive, "gc", Duration::ZERO).unwrap();
        assert!(acquire(&s, LockKind::Shared, "snapshot", Duration::from_millis(30)).is_err());
        drop(g);
        assert!(s.list("locks/").unwrap().is_empty());
    }

    #[test]
    fn a_lock_of_a_dead_process_is_stale() {
        let (_d, s) = store();
        let mut doc = LockDoc {
            kind: LockKind::Exclusive,
            operation: "gc".into(),
            token: "t".into(),
            pid: 0,
            boot_id: boot_id(),
            hostname: "h".into(),
            created_at: Utc::now(),
            refreshed_at: Utc::now(),
        };
        // Our own pid but a token no guard holds: a crashed in-process holder.
        doc.pid = std::process::id();
        s.put("locks/t-0", &serde_json::to_vec(&doc).unwrap())
            .unwrap();
        let g = acquire(&s, LockKind::Shared, "snapshot", Duration::ZERO).unwrap();
        drop(g);
        assert!(s.list("locks/").unwrap().is_empty());
    }

    #[test]
    fn a_lock_from_another_host_is_stale_only_when_not_refreshed() {
        let doc = LockDoc {
            kind: LockKind::Shared,
            operation: "snapshot".into(),
            token: "x".into(),
            pid: 1,
            boot_id: "other-boot".into(),
            hostname: "h".into(),
            created_at: Utc::now(),
            refreshed_at: Utc::now(),
        };
        assert!(!doc.is_stale(&boot_id()));
        let old = LockDoc {
            refreshed_at: Utc::now() - chrono::TimeDelta::hours(1),
            ..doc
        };
        assert!(old.is_stale(&boot_id()));
    }
}
