//! [`DriftWatcher`]: inotify on the folders that matter of many environment
//! roots, debounced into one [`ChangeBatch`] per environment and burst.
//!
//! One inotify instance (one `notify` watcher) serves every environment;
//! its callback only forwards events into a bounded queue, and one thread
//! maps them to environments, filters them (see `filter.rs`) and debounces:
//! an environment's batch is sent once its folders have been quiet for
//! [`WatchConfig::quiet`], or [`WatchConfig::max_delay`] after its first
//! event, whichever comes first. So a `uv pip install` of 30 packages is one
//! batch, and a process that writes into `home/` forever still yields one
//! batch every `max_delay`.
//!
//! Memory is bounded: the raw event queue has a fixed capacity, a batch
//! holds at most [`WatchConfig::max_paths`] paths, and batches wait in a
//! channel of [`WatchConfig::channel_capacity`]. Whenever something is
//! lost — the kernel's inotify queue overflowed, our queue was full, a
//! batch grew past its cap, a watch failed — the batch says
//! `overflow: true` and the caller must sweep (full [`crate::evaluate`]).
//! A full output channel delays batches (they keep merging), never drops them.
//!
//! Changes made while an environment is not watched (before [`DriftWatcher::watch`],
//! while the platform was down) are not reported: evaluate once right after
//! `watch`.

use chrono::{DateTime, Utc};
use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver as StdReceiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use westtek_domain::EnvironmentId;

use crate::error::{Error, Result};
use crate::filter::{relevance, watch_set};

/// Debouncing and bounds of a [`DriftWatcher`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WatchConfig {
    /// A batch is sent once an environment has seen no relevant event for
    /// this long (default 500 ms).
    pub quiet: Duration,
    /// …or this long after its first event, even if events keep coming
    /// (default 3 s).
    pub max_delay: Duration,
    /// Batches waiting for the receiver (default 256). When full, batches
    /// keep accumulating per environment instead of being dropped.
    pub channel_capacity: usize,
    /// Paths kept in one batch (default 4,096); beyond that the batch is
    /// marked `overflow` and further paths are dropped.
    pub max_paths: usize,
    /// Raw events queued between inotify and the debouncer (default 65,536);
    /// when full, every watched environment's next batch is an overflow.
    pub event_queue: usize,
}

impl Default for WatchConfig {
    fn default() -> Self {
        Self {
            quiet: Duration::from_millis(500),
            max_delay: Duration::from_secs(3),
            channel_capacity: 256,
            max_paths: 4096,
            event_queue: 65_536,
        }
    }
}

/// Relevant changes seen in one environment during one burst.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChangeBatch {
    /// The environment.
    pub env_id: EnvironmentId,
    /// Absolute paths (under the canonical root) that changed, sorted. A
    /// hint of what changed, not a complete list when `overflow` is set.
    pub paths: BTreeSet<PathBuf>,
    /// Events were lost or a watch failed: do a full sweep rather than trust `paths`.
    pub overflow: bool,
    /// When the first event of the batch was seen.
    pub first_event_at: DateTime<Utc>,
    /// When the batch was closed.
    pub at: DateTime<Utc>,
}

enum Msg {
    Event(notify::Result<notify::Event>),
    Shutdown,
}

struct EnvEntry {
    root: PathBuf,
    /// Armed watches: path → recursive.
    watches: BTreeMap<PathBuf, bool>,
}

#[derive(Default)]
struct Envs {
    by_id: BTreeMap<EnvironmentId, EnvEntry>,
    by_root: BTreeMap<PathBuf, EnvironmentId>,
}

impl Envs {
    /// The environment whose root holds `path`. Roots are not nested, and
    /// `Path` orders by component, so the greatest root `<= path` is the
    /// only candidate.
    fn owner(&self, path: &Path) -> Option<(EnvironmentId, &Path)> {
        let (root, id) = self.by_root.range(..=path.to_path_buf()).next_back()?;
        path.starts_with(root).then_some((*id, root.as_path()))
    }
}

struct Shared {
    watcher: Mutex<RecommendedWatcher>,
    envs: Mutex<Envs>,
}

/// A poisoned lock only means another thread panicked mid-update; the maps
/// stay usable (at worst a watch is missing, which the sweep covers).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Watches environment roots and sends a [`ChangeBatch`] per burst of
/// relevant changes. Runs on its own threads: no tokio runtime is needed to
/// create or drive it, only to receive. Dropping it stops watching.
pub struct DriftWatcher {
    shared: Arc<Shared>,
    tx: SyncSender<Msg>,
    thread: Option<JoinHandle<()>>,
}

impl DriftWatcher {
    /// Start the watcher; batches arrive on the returned receiver.
    ///
    /// # Errors
    /// [`Error::Watch`] when inotify cannot be initialised (e.g.
    /// `max_user_instances` reached), [`Error::Thread`] when the debouncing
    /// thread cannot be spawned.
    pub fn new(config: WatchConfig) -> Result<(Self, mpsc::Receiver<ChangeBatch>)> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Msg>(config.event_queue.max(1));
        let (out_tx, out_rx) = mpsc::channel(config.channel_capacity.max(1));
        let lost = Arc::new(AtomicBool::new(false));

        let handler_tx = tx.clone();
        let handler_lost = Arc::clone(&lost);
        let handler = move |res: notify::Result<notify::Event>| {
            // Reads (Jupyter opening a notebook, Python importing) are never drift.
            if matches!(&res, Ok(e) if matches!(e.kind, EventKind::Access(_))) {
                return;
            }
            if let Err(TrySendError::Full(_)) = handler_tx.try_send(Msg::Event(res)) {
                handler_lost.store(true, Ordering::SeqCst);
            }
        };
        // Never follow symlinks: a link in home/ to `/` must not watch the machine.
        let watcher = RecommendedWatcher::new(
            handler,
            notify::Config::default().with_follow_symlinks(false),
        )
        .map_err(|source| Error::Watch {
            path: PathBuf::new(),
            source,
        })?;
        let shared = Arc::new(Shared {
            watcher: Mutex::new(watcher),
            envs: Mutex::new(Envs::default()),
        });
        let debouncer = Debouncer {
            config,
            shared: Arc::clone(&shared),
            rx,
            out: out_tx,
            lost,
            pending: BTreeMap::new(),
        };
        let thread = std::thread::Builder::new()
            .name("westtek-drift".into())
            .spawn(move || debouncer.run())
            .map_err(Error::Thread)?;
        Ok((
            Self {
                shared,
                tx,
                thread: Some(thread),
            },
            out_rx,
        ))
    }

    /// Start watching the environment rooted at `root` (an environment root
    /// as in `westtek-runtime`'s layout). Folders that do not exist yet are
    /// picked up when they appear.
    ///
    /// # Errors
    /// [`Error::NotAnEnvironment`] when `root` is not a folder,
    /// [`Error::AlreadyWatched`] when `env_id` or `root` is already watched
    /// (the error names the environment that holds it), [`Error::Watch`]
    /// when inotify refuses a watch (e.g. `max_user_watches`); nothing stays
    /// watched for this environment then.
    pub fn watch(&self, env_id: EnvironmentId, root: &Path) -> Result<()> {
        let not_env = |reason: String| Error::NotAnEnvironment {
            path: root.to_path_buf(),
            reason,
        };
        let root = root.canonicalize().map_err(|e| not_env(e.to_string()))?;
        if !root.is_dir() {
            return Err(not_env("not a folder".into()));
        }
        let mut envs = lock(&self.shared.envs);
        if envs.by_id.contains_key(&env_id) {
            return Err(Error::AlreadyWatched(env_id));
        }
        if let Some(other) = envs.by_root.get(&root) {
            return Err(Error::AlreadyWatched(*other));
        }
        let mut watcher = lock(&self.shared.watcher);
        let mut watches = BTreeMap::new();
        if let Err(e) = rearm(&mut watcher, &root, &mut watches) {
            for path in watches.keys() {
                let _ = watcher.unwatch(path);
            }
            return Err(e);
        }
        drop(watcher);
        tracing::debug!(%env_id, root = %root.display(), watches = watches.len(), "drift watch started");
        envs.by_root.insert(root.clone(), env_id);
        envs.by_id.insert(env_id, EnvEntry { root, watches });
        Ok(())
    }

    /// Stop watching `env_id`; returns whether it was watched. Its pending
    /// events are discarded: no batch for it is sent after this returns
    /// (one already in the channel may still be received).
    pub fn unwatch(&self, env_id: EnvironmentId) -> bool {
        let mut envs = lock(&self.shared.envs);
        let Some(entry) = envs.by_id.remove(&env_id) else {
            return false;
        };
        envs.by_root.remove(&entry.root);
        let mut watcher = lock(&self.shared.watcher);
        for path in entry.watches.keys() {
            // The folder may be gone already (environment deleted).
            let _ = watcher.unwatch(path);
        }
        tracing::debug!(%env_id, "drift watch stopped");
        true
    }

    /// The environments being watched, sorted.
    pub fn watched(&self) -> Vec<EnvironmentId> {
        lock(&self.shared.envs).by_id.keys().copied().collect()
    }

    /// The canonical root `env_id` is watched at, if it is.
    pub fn root(&self, env_id: EnvironmentId) -> Option<PathBuf> {
        lock(&self.shared.envs)
            .by_id
            .get(&env_id)
            .map(|e| e.root.clone())
    }
}

impl Drop for DriftWatcher {
    fn drop(&mut self) {
        let _ = self.tx.send(Msg::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Bring `root`'s watches in line with what exists now.
///
/// # Errors
/// Any refused watch except a folder that vanished meanwhile.
fn rearm(
    watcher: &mut RecommendedWatcher,
    root: &Path,
    armed: &mut BTreeMap<PathBuf, bool>,
) -> Result<()> {
    let desired = watch_set(root);
    armed.retain(|path, recursive| {
        if desired.get(path) == Some(recursive) {
            return true;
        }
        let _ = watcher.unwatch(path);
        false
    });
    for (path, recursive) in desired {
        if armed.contains_key(&path) {
            continue;
        }
        let mode = if recursive {
            RecursiveMode::Recursive
        } else {
            RecursiveMode::NonRecursive
        };
        match watcher.watch(&path, mode) {
            Ok(()) => {
                armed.insert(path, recursive);
            }
            Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => {}
            Err(e) if matches!(&e.kind, notify::ErrorKind::Io(io) if io.kind() == std::io::ErrorKind::NotFound) =>
                {}
            Err(source) => return Err(Error::Watch { path, source }),
        }
    }
    Ok(())
}

struct Pending {
    paths: BTreeSet<PathBuf>,
    overflow: bool,
    first: Instant,
    first_wall: DateTime<Utc>,
    last: Instant,
    /// The receiver's channel was full: not before this.
    blocked_until: Option<Instant>,
}

struct Debouncer {
    config: WatchConfig,
    shared: Arc<Shared>,
    rx: StdReceiver<Msg>,
    out: mpsc::Sender<ChangeBatch>,
    lost: Arc<AtomicBool>,
    pending: BTreeMap<EnvironmentId, Pending>,
}

impl Debouncer {
    fn run(mut self) {
        loop {
            let timeout = self
                .next_deadline()
                .map(|d| d.saturating_duration_since(Instant::now()))
                .unwrap_or(Duration::from_secs(3600));
            match self.rx.recv_timeout(timeout) {
                Ok(Msg::Event(res)) => self.on_event(res),
                Ok(Msg::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if self.lost.swap(false, Ordering::SeqCst) {
                tracing::warn!(
                    "drift event queue full: events lost, marking every environment for a sweep"
                );
                let ids: Vec<_> = lock(&self.shared.envs).by_id.keys().copied().collect();
                for id in ids {
                    self.pend(id).overflow = true;
                }
            }
            self.flush_due();
        }
    }

    fn pend(&mut self, id: EnvironmentId) -> &mut Pending {
        let now = Instant::now();
        let p = self.pending.entry(id).or_insert_with(|| Pending {
            paths: BTreeSet::new(),
            overflow: false,
            first: now,
            first_wall: Utc::now(),
            last: now,
            blocked_until: None,
        });
        p.last = now;
        p
    }

    fn on_event(&mut self, res: notify::Result<notify::Event>) {
        let (paths, overflow) = match res {
            Ok(event) => {
                if matches!(event.kind, EventKind::Access(_)) {
                    return;
                }
                let rescan = event.need_rescan();
                if rescan {
                    tracing::warn!("inotify queue overflowed: marking environments for a sweep");
                }
                (event.paths, rescan)
            }
            Err(e) => {
                tracing::warn!(error = %e, "drift watcher error: marking environments for a sweep");
                (e.paths, true)
            }
        };
        let mut hits: Vec<(EnvironmentId, Option<PathBuf>, bool)> = Vec::new();
        {
            let envs = lock(&self.shared.envs);
            if overflow && paths.is_empty() {
                hits.extend(envs.by_id.keys().map(|id| (*id, None, false)));
            }
            for path in paths {
                let Some((id, root)) = envs.owner(&path) else {
                    continue;
                };
                let Ok(rel) = path.strip_prefix(root) else {
                    continue;
                };
                let r = relevance(rel);
                if overflow {
                    hits.push((id, None, r.rearm));
                } else if r.report || r.rearm {
                    hits.push((id, r.report.then_some(path.clone()), r.rearm));
                }
            }
        }
        let max_paths = self.config.max_paths;
        let mut to_rearm = BTreeSet::new();
        for (id, path, rearm) in hits {
            let p = self.pend(id);
            p.overflow |= overflow;
            if let Some(path) = path {
                if p.paths.len() < max_paths {
                    p.paths.insert(path);
                } else if !p.paths.contains(&path) {
                    p.overflow = true;
                }
            }
            if rearm {
                to_rearm.insert(id);
            }
        }
        for id in to_rearm {
            self.rearm(id);
        }
    }

    fn rearm(&mut self, id: EnvironmentId) {
        let result = {
            let mut envs = lock(&self.shared.envs);
            let Some(entry) = envs.by_id.get_mut(&id) else {
                return;
            };
            let mut watcher = lock(&self.shared.watcher);
            rearm(&mut watcher, &entry.root, &mut entry.watches)
        };
        if let Err(e) = result {
            tracing::warn!(env_id = %id, error = %e, "re-arming drift watches failed: marking for a sweep");
            self.pend(id).overflow = true;
        }
    }

    fn deadline(&self, p: &Pending) -> Instant {
        let due = (p.last + self.config.quiet).min(p.first + self.config.max_delay);
        match p.blocked_until {
            Some(b) => due.max(b),
            None => due,
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().map(|p| self.deadline(p)).min()
    }

    fn flush_due(&mut self) {
        let now = Instant::now();
        let due: Vec<EnvironmentId> = self
            .pending
            .iter()
            .filter(|(_, p)| self.deadline(p) <= now)
            .map(|(id, _)| *id)
            .collect();
        if due.is_empty() {
            return;
        }
        let watched: BTreeSet<EnvironmentId> =
            lock(&self.shared.envs).by_id.keys().copied().collect();
        for id in due {
            let Some(p) = self.pending.remove(&id) else {
                continue;
            };
            if !watched.contains(&id) {
                continue;
            }
            let batch = ChangeBatch {
                env_id: id,
                paths: p.paths,
                overflow: p.overflow,
                first_event_at: p.first_wall,
                at: Utc::now(),
            };
            match self.out.try_send(batch) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(batch)) => {
                    // Keep it (and let it absorb later events) until there is room.
                    self.pending.insert(
                        id,
                        Pending {
                            paths: batch.paths,
                            overflow: batch.overflow,
                            first: p.first,
                            first_wall: p.first_wall,
                            last: p.last,
                            blocked_until: Some(now + self.config.quiet),
                        },
                    );
                }
                Err(mpsc::error::TrySendError::Closed(_)) => {
                    self.pending.clear();
                    return;
                }
            }
        }
    }
}
