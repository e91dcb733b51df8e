//! A complete change journal of environment folders (issue 13, part 2).
//!
//! [`Journal`] watches **every directory** under each journaled root with
//! inotify (new directories are watched as they appear) and keeps, per
//! environment, the set of paths changed since the last snapshot's mark.
//! A snapshot takes a [`Ticket`] at its start ([`Journal::begin`]): the
//! ticket holds the paths changed since the previous mark and says whether
//! that set is complete; events that arrive while the snapshot runs belong
//! to the next ticket. The snapshot then reports back with
//! [`Journal::commit`] (the set now counts from the new snapshot) or
//! [`Journal::abort`] (the paths go back into the journal).
//!
//! Policy: the full walk is the default whenever in doubt. A ticket is
//! *incomplete* — and the snapshot must walk the whole tree — when the
//! environment was not journaled since the parent snapshot (first capture,
//! platform restart), when the kernel's event queue overflowed, a watch
//! was refused (`fs.inotify.max_user_watches`) or a folder could not be
//! listed, when the same folder is reachable at two paths (bind mounts:
//! inotify would report only one), when more than
//! [`JournalConfig::max_paths`] paths changed, when another snapshot of the
//! environment ran concurrently, and periodically
//! ([`JournalConfig::full_walk_every`]), which bounds what inotify cannot
//! see: writes through a shared `mmap` that is still mapped, writes through a
//! hard-link name outside the journaled root, changes made by another host
//! on a network file system.
//!
//! Why nothing is missed between two marks: inotify queues an event in the
//! same system call that makes the change, and [`Journal::begin`] drains the
//! queue under the lock before it takes the set, so every change that
//! completed before the mark is in the ticket. A directory is watched
//! before it is listed, and a new directory is itself recorded as changed
//! (the snapshot rescans it with everything below it), so files created in
//! it before its watch existed are covered. A renamed directory is recorded
//! at both ends, and its watch descriptors are re-mapped to the new paths.
//! A file written through one hard-link name is reported under that name
//! only; the vault's hint mode rescans the other names of a changed inode
//! it finds in the tree, through the name written. So the journal notes the
//! inode of every multi-link file changed, and a ticket is incomplete when
//! such a name no longer holds that inode at the mark (moved out or
//! deleted after the write; new link names are noted when created, too).
//! Left to the periodic walk: a multi-link name written and then moved out
//! of the tree or deleted before the reader thread saw the write (it reads
//! events as they come, usually within a millisecond) while another name
//! of the inode stays in the tree.
//! A path recorded covers everything below it, so the set stays small when
//! whole packages are installed.

use inotify::{EventMask, Inotify, WatchDescriptor, WatchMask};
use nix::poll::{PollFd, PollFlags, PollTimeout};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ffi::OsString;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use westtek_domain::EnvironmentId;

/// Why a journal could not be started or a root not journaled.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// inotify cannot be initialised (e.g. `fs.inotify.max_user_instances`).
    #[error("inotify is unavailable: {0}")]
    Init(std::io::Error),
    /// The reader thread could not be spawned.
    #[error("cannot start the journal thread: {0}")]
    Thread(std::io::Error),
}

/// Bounds of a [`Journal`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JournalConfig {
    /// Changed paths kept per environment (default 100,000); beyond that the
    /// environment's next snapshot walks the whole tree.
    pub max_paths: usize,
    /// A full walk at least this often per environment (default 24 h),
    /// whatever the journal says.
    pub full_walk_every: Duration,
}

impl Default for JournalConfig {
    fn default() -> Self {
        Self {
            max_paths: 100_000,
            full_walk_every: Duration::from_secs(24 * 3600),
        }
    }
}

/// What a snapshot learns from the journal at its start; see the module
/// documentation. Hand it back with [`Journal::commit`] or [`Journal::abort`].
#[derive(Debug)]
pub struct Ticket {
    env: EnvironmentId,
    epoch: u64,
    root: Option<PathBuf>,
    paths: Vec<PathBuf>,
    since: Option<String>,
    lost: Option<String>,
    last_full_walk: Option<Instant>,
    /// When the mark was taken.
    started: Instant,
}

impl Ticket {
    /// A ticket for an environment that cannot be journaled: always a full walk.
    pub fn unavailable(env: EnvironmentId, reason: impl Into<String>) -> Self {
        Ticket {
            env,
            epoch: 0,
            root: None,
            paths: Vec::new(),
            since: None,
            lost: Some(reason.into()),
            last_full_walk: None,
            started: Instant::now(),
        }
    }

    /// The environment.
    pub fn env(&self) -> EnvironmentId {
        self.env
    }

    /// Whether the snapshot must walk the whole tree, and why.
    pub fn incomplete(&self) -> Option<&str> {
        self.lost.as_deref()
    }

    /// Paths changed since the previous mark (absolute, under the canonical
    /// root, sorted; none below another).
    pub fn paths(&self) -> &[PathBuf] {
        &self.paths
    }

    /// The change hints for an incremental snapshot of `layer_roots` on top
    /// of `parent`, or why the snapshot must walk the whole tree.
    ///
    /// Hints are absolute paths spelled under each layer root as given. A
    /// layer outside the journaled root, or one whose root (or a folder
    /// above it) changed, is hinted by its root: the vault walks it whole.
    ///
    /// # Errors
    /// The reason for a full walk: no parent, the journal does not count
    /// from `parent`, or the ticket is incomplete.
    pub fn hints_for(
        &self,
        parent: Option<&str>,
        layer_roots: &[PathBuf],
    ) -> Result<Vec<PathBuf>, String> {
        if let Some(lost) = &self.lost {
            return Err(lost.clone());
        }
        let Some(parent) = parent else {
            return Err("no parent snapshot".into());
        };
        match &self.since {
            Some(since) if since == parent => {}
            Some(since) => {
                return Err(format!(
                    "the journal counts from snapshot {since}, not from the parent {parent}"
                ))
            }
            None => return Err("not journaled since the parent snapshot".into()),
        }
        let Some(root) = &self.root else {
            return Err("the environment is not journaled".into());
        };
        let mut out = Vec::new();
        for layer in layer_roots {
            let Ok(canonical) = layer.canonicalize() else {
                out.push(layer.clone());
                continue;
            };
            if !canonical.starts_with(root) || self.paths.iter().any(|p| canonical.starts_with(p)) {
                out.push(layer.clone());
                continue;
            }
            for p in &self.paths {
                if let Ok(rel) = p.strip_prefix(&canonical) {
                    out.push(layer.join(rel));
                }
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }
}

/// The events that matter: anything that changes a path's content, metadata
/// or existence. Never follow symlinks; only directories are watched.
fn mask() -> WatchMask {
    WatchMask::MODIFY
        | WatchMask::ATTRIB
        | WatchMask::CLOSE_WRITE
        | WatchMask::CREATE
        | WatchMask::DELETE
        | WatchMask::DELETE_SELF
        | WatchMask::MOVE_SELF
        | WatchMask::MOVED_FROM
        | WatchMask::MOVED_TO
        | WatchMask::DONT_FOLLOW
        | WatchMask::ONLYDIR
}

struct Watch {
    wd: WatchDescriptor,
    env: EnvironmentId,
    path: PathBuf,
}

struct EnvState {
    root: PathBuf,
    /// Watched folders → watch descriptor id.
    dirs: HashMap<PathBuf, i32>,
    changed: HashSet<PathBuf>,
    /// Files with several hard-link names written or changed since the
    /// mark: name → (device, inode) when the event was read.
    linked: HashMap<PathBuf, (u64, u64)>,
    /// The snapshot the set counts from (`None` while a snapshot runs, or
    /// before the first one).
    since: Option<String>,
    /// Why the current set is incomplete.
    lost: Option<String>,
    /// Every folder is watched.
    armed: bool,
    epoch: u64,
    last_full_walk: Option<Instant>,
}

#[derive(Default)]
struct State {
    envs: BTreeMap<EnvironmentId, EnvState>,
    wds: HashMap<i32, Watch>,
}

impl State {
    fn lose(&mut self, env: EnvironmentId, reason: &str) {
        if let Some(e) = self.envs.get_mut(&env) {
            lose(e, reason);
        }
    }
}

fn lose(e: &mut EnvState, reason: &str) {
    if e.lost.is_none() {
        tracing::warn!(root = %e.root.display(), reason, "change journal incomplete: the next snapshot walks the whole tree");
        e.lost = Some(reason.to_string());
    }
    e.changed.clear();
    e.linked.clear();
}

fn note(e: &mut EnvState, path: PathBuf, max: usize) {
    if e.lost.is_some() {
        return;
    }
    // A recorded folder is rescanned with everything below it.
    for a in path.ancestors() {
        if e.changed.contains(a) {
            return;
        }
        if a == e.root {
            break;
        }
    }
    e.changed.insert(path);
    if e.changed.len() > max {
        lose(e, &format!("more than {max} paths changed"));
    }
}

struct Inner {
    ino: Mutex<Inotify>,
    state: Mutex<State>,
    config: JournalConfig,
    stop: AtomicBool,
}

/// A poisoned lock only means another thread panicked mid-update; a
/// journal in doubt is marked incomplete by [`Journal::begin`]'s callers
/// falling back, and the maps stay usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The change journal of many environment roots; see the module
/// documentation. One inotify instance and one reader thread serve all of
/// them. Dropping it stops journaling.
pub struct Journal {
    inner: Arc<Inner>,
    thread: Option<JoinHandle<()>>,
}

impl Journal {
    /// Starts the journal (no environment journaled yet).
    ///
    /// # Errors
    /// [`JournalError::Init`] when inotify is unavailable,
    /// [`JournalError::Thread`] when the reader thread cannot start.
    pub fn new(config: JournalConfig) -> Result<Self, JournalError> {
        let ino = Inotify::init().map_err(JournalError::Init)?;
        let poll_fd: OwnedFd = ino
            .as_fd()
            .try_clone_to_owned()
            .map_err(JournalError::Init)?;
        let inner = Arc::new(Inner {
            ino: Mutex::new(ino),
            state: Mutex::new(State::default()),
            config,
            stop: AtomicBool::new(false),
        });
        let reader = Arc::clone(&inner);
        let thread = std::thread::Builder::new()
            .name("westtek-journal".into())
            .spawn(move || reader.run(&poll_fd))
            .map_err(JournalError::Thread)?;
        Ok(Journal {
            inner,
            thread: Some(thread),
        })
    }

    /// Starts journaling `env` at `root` if it is not journaled there yet.
    /// The first snapshot after this walks the whole tree (the journal does
    /// not count from any snapshot yet). Failures do not error: they leave
    /// the environment incomplete, so its snapshots walk the whole tree.
    pub fn watch(&self, env: EnvironmentId, root: &Path) {
        let mut ino = lock(&self.inner.ino);
        let mut st = lock(&self.inner.state);
        self.inner.drain(&mut ino, &mut st);
        self.inner.ensure(&mut ino, &mut st, env, root);
    }

    /// Stops journaling `env`; returns whether it was journaled.
    pub fn unwatch(&self, env: EnvironmentId) -> bool {
        let mut ino = lock(&self.inner.ino);
        let mut st = lock(&self.inner.state);
        Inner::remove(&mut ino, &mut st, env)
    }

    /// Whether `env` is journaled.
    pub fn is_watched(&self, env: EnvironmentId) -> bool {
        lock(&self.inner.state).envs.contains_key(&env)
    }

    /// Folders watched for `env` (0 when not journaled).
    pub fn watched_dirs(&self, env: EnvironmentId) -> usize {
        lock(&self.inner.state)
            .envs
            .get(&env)
            .map_or(0, |e| e.dirs.len())
    }

    /// Takes the mark for a snapshot of `env` at `root` that starts now:
    /// the ticket holds every change since the previous mark; changes from
    /// now on go to the next ticket. Starts journaling `env` when it is not
    /// (that ticket is incomplete).
    pub fn begin(&self, env: EnvironmentId, root: &Path) -> Ticket {
        let mut ino = lock(&self.inner.ino);
        let mut st = lock(&self.inner.state);
        // Every change that completed before this point is in the queue.
        self.inner.drain(&mut ino, &mut st);
        let fresh = self.inner.ensure(&mut ino, &mut st, env, root);
        let every = self.inner.config.full_walk_every;
        let Some(e) = st.envs.get_mut(&env) else {
            return Ticket::unavailable(env, "the environment folder cannot be journaled");
        };
        e.epoch += 1;
        let mut all: Vec<PathBuf> = e.changed.drain().collect();
        // Sorted by component, a folder comes right before what is below it.
        all.sort();
        let mut paths: Vec<PathBuf> = Vec::with_capacity(all.len());
        for p in all {
            if !paths.last().is_some_and(|last| p.starts_with(last)) {
                paths.push(p);
            }
        }
        let mut lost = e.lost.take();
        for (path, (dev, ino)) in e.linked.drain() {
            let same =
                std::fs::symlink_metadata(&path).is_ok_and(|m| m.dev() == dev && m.ino() == ino);
            if !same && lost.is_none() {
                lost = Some(format!(
                    "a file with several hard-link names changed through {}, which no longer holds it (its other names are unknown)",
                    path.display()
                ));
            }
        }
        if fresh && lost.is_none() {
            lost = Some("not journaled since the parent snapshot (journal started now)".into());
        }
        if lost.is_none()
            && e.since.is_some()
            && e.last_full_walk.is_none_or(|t| t.elapsed() >= every)
        {
            lost = Some(format!(
                "periodic full walk (at least every {} h)",
                every.as_secs() / 3600
            ));
        }
        let ticket = Ticket {
            env,
            epoch: e.epoch,
            root: Some(e.root.clone()),
            paths,
            since: e.since.take(),
            lost,
            last_full_walk: e.last_full_walk,
            started: Instant::now(),
        };
        let needs_arming = !e.armed;
        let root = e.root.clone();
        if needs_arming {
            // Before the snapshot walks: what changes in a folder before its
            // watch exists is seen by that walk.
            self.inner.arm(&mut ino, &mut st, env, &root);
        }
        ticket
    }

    /// The snapshot taken with `ticket` was committed as `snapshot_id`;
    /// `full_walk` says whether it walked the whole tree. From now on the
    /// journal counts from it (unless another snapshot began meanwhile).
    pub fn commit(&self, ticket: Ticket, snapshot_id: &str, full_walk: bool) {
        let mut st = lock(&self.inner.state);
        let Some(e) = st.envs.get_mut(&ticket.env) else {
            return;
        };
        if e.epoch != ticket.epoch {
            lose(
                e,
                "another snapshot of the environment ran at the same time",
            );
            return;
        }
        e.since = Some(snapshot_id.to_string());
        e.last_full_walk = if full_walk {
            // Counted from the mark: the walk's view is at least that recent.
            Some(ticket.started)
        } else {
            ticket.last_full_walk
        };
    }

    /// The snapshot taken with `ticket` failed: its paths return to the journal.
    pub fn abort(&self, ticket: Ticket) {
        let max = self.inner.config.max_paths;
        let mut st = lock(&self.inner.state);
        let Some(e) = st.envs.get_mut(&ticket.env) else {
            return;
        };
        if e.epoch != ticket.epoch {
            lose(
                e,
                "another snapshot of the environment ran at the same time",
            );
            return;
        }
        e.since = ticket.since;
        e.last_full_walk = ticket.last_full_walk;
        match ticket.lost {
            Some(reason) => lose(e, &reason),
            None => {
                for p in ticket.paths {
                    note(e, p, max);
                }
            }
        }
    }

    /// Applies every event queued so far (what [`Journal::begin`] does
    /// before its mark), without taking a mark.
    pub fn settle(&self) {
        let mut ino = lock(&self.inner.ino);
        let mut st = lock(&self.inner.state);
        self.inner.drain(&mut ino, &mut st);
    }

    /// Stops the reader while the returned guard lives, so the kernel's
    /// queue fills up (tests of the overflow fallback).
    #[doc(hidden)]
    pub fn hold_reader(&self) -> ReaderHold<'_> {
        ReaderHold(lock(&self.inner.ino))
    }

    /// Marks every journaled environment incomplete, as a kernel queue
    /// overflow does (for tests and operators).
    pub fn mark_all_incomplete(&self, reason: &str) {
        let mut st = lock(&self.inner.state);
        for e in st.envs.values_mut() {
            lose(e, reason);
        }
    }
}

/// See [`Journal::hold_reader`].
#[doc(hidden)]
pub struct ReaderHold<'a>(#[allow(dead_code)] MutexGuard<'a, Inotify>);

impl Drop for Journal {
    fn drop(&mut self) {
        self.inner.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Inner {
    fn run(&self, fd: &OwnedFd) {
        while !self.stop.load(Ordering::SeqCst) {
            let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
            match nix::poll::poll(&mut fds, PollTimeout::from(200u16)) {
                Ok(0) => continue,
                Ok(_) => {}
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => {
                    tracing::error!(error = %e, "change journal: poll failed; journaling stops");
                    let mut st = lock(&self.state);
                    for e in st.envs.values_mut() {
                        lose(e, "the journal's reader stopped");
                    }
                    return;
                }
            }
            let mut ino = lock(&self.ino);
            let mut st = lock(&self.state);
            self.drain(&mut ino, &mut st);
        }
    }

    /// Reads and applies every queued event.
    fn drain(&self, ino: &mut Inotify, st: &mut State) {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let events: Vec<(i32, EventMask, Option<OsString>)> = match ino.read_events(&mut buf) {
                Ok(events) => events
                    .map(|ev| {
                        (
                            ev.wd.get_watch_descriptor_id(),
                            ev.mask,
                            ev.name.map(|n| n.to_os_string()),
                        )
                    })
                    .collect(),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    let reason = format!("reading inotify events failed: {e}");
                    for env in st.envs.values_mut() {
                        lose(env, &reason);
                    }
                    return;
                }
            };
            if events.is_empty() {
                return;
            }
            for (wd, mask, name) in events {
                self.apply(ino, st, wd, mask, name);
            }
        }
    }

    fn apply(
        &self,
        ino: &mut Inotify,
        st: &mut State,
        wd: i32,
        mask: EventMask,
        name: Option<OsString>,
    ) {
        if mask.contains(EventMask::Q_OVERFLOW) {
            for e in st.envs.values_mut() {
                lose(e, "the kernel's inotify queue overflowed (events lost)");
            }
            return;
        }
        let Some(w) = st.wds.get(&wd) else {
            return;
        };
        let (env, dir) = (w.env, w.path.clone());
        let path = match &name {
            Some(n) => dir.join(n),
            None => dir.clone(),
        };
        let max = self.config.max_paths;
        if mask.contains(EventMask::IGNORED) {
            // The folder is gone (deleted, or its file system unmounted).
            st.wds.remove(&wd);
            let Some(e) = st.envs.get_mut(&env) else {
                return;
            };
            if e.dirs.get(&dir) == Some(&wd) {
                e.dirs.remove(&dir);
            }
            if dir == e.root {
                e.armed = false;
                lose(e, "the environment folder was removed");
            } else {
                note(e, dir, max);
            }
            return;
        }
        let Some(e) = st.envs.get_mut(&env) else {
            return;
        };
        if name.is_none()
            && dir == e.root
            && mask.intersects(EventMask::DELETE_SELF | EventMask::MOVE_SELF | EventMask::UNMOUNT)
        {
            e.armed = false;
            lose(e, "the environment folder was moved, deleted or unmounted");
            return;
        }
        if mask.contains(EventMask::UNMOUNT) {
            lose(e, "a file system inside the environment was unmounted");
            return;
        }
        if name.is_some()
            && !mask.contains(EventMask::ISDIR)
            && mask.intersects(
                EventMask::MODIFY | EventMask::CLOSE_WRITE | EventMask::ATTRIB | EventMask::CREATE,
            )
            && e.lost.is_none()
        {
            // The snapshot rescans this name; the vault finds the inode's
            // other names in the tree only if this name still holds it.
            if let Ok(m) = std::fs::symlink_metadata(&path) {
                if m.is_file() && m.nlink() > 1 && e.linked.len() < max {
                    e.linked.insert(path.clone(), (m.dev(), m.ino()));
                }
            }
        }
        note(e, path.clone(), max);
        if mask.contains(EventMask::ISDIR)
            && mask.intersects(EventMask::CREATE | EventMask::MOVED_TO)
        {
            self.arm(ino, st, env, &path);
        }
    }

    /// Watches `start` and every folder below it (symlinks are not
    /// followed). A folder is watched before it is listed, so a child made
    /// meanwhile shows either in the listing or as an event.
    fn arm(&self, ino: &mut Inotify, st: &mut State, env: EnvironmentId, start: &Path) {
        let mut stack = vec![start.to_path_buf()];
        while let Some(dir) = stack.pop() {
            let wd = match ino.watches().add(&dir, mask()) {
                Ok(wd) => wd,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(nix::libc::ENOENT) | Some(nix::libc::ENOTDIR)
                    ) =>
                {
                    // Gone or replaced meanwhile: its parent's event covers it.
                    continue;
                }
                Err(e) => {
                    let reason = if e.raw_os_error() == Some(nix::libc::ENOSPC) {
                        "inotify watch limit reached (fs.inotify.max_user_watches)".to_string()
                    } else {
                        format!("cannot watch {}: {e}", dir.display())
                    };
                    if let Some(s) = st.envs.get_mut(&env) {
                        s.armed = false;
                    }
                    st.lose(env, &reason);
                    return;
                }
            };
            let id = wd.get_watch_descriptor_id();
            if let Some(old) = st.wds.get(&id) {
                if old.env != env || old.path != dir {
                    // Same inode seen at another path: moved here, or
                    // reachable twice (bind mount).
                    let twice = old.path.exists() && same_inode(&old.path, &dir);
                    if twice || old.env != env {
                        if let Some(s) = st.envs.get_mut(&env) {
                            s.armed = false;
                        }
                        st.lose(
                            env,
                            &format!(
                                "the folder {} is also reachable as {} (inotify reports one path)",
                                dir.display(),
                                old.path.display()
                            ),
                        );
                        return;
                    }
                    let old_path = old.path.clone();
                    if let Some(s) = st.envs.get_mut(&env) {
                        if s.dirs.get(&old_path) == Some(&id) {
                            s.dirs.remove(&old_path);
                        }
                    }
                }
            }
            st.wds.insert(
                id,
                Watch {
                    wd,
                    env,
                    path: dir.clone(),
                },
            );
            if let Some(s) = st.envs.get_mut(&env) {
                s.dirs.insert(dir.clone(), id);
            }
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => {
                    st.lose(env, &format!("cannot list {}: {e}", dir.display()));
                    continue;
                }
            };
            for entry in rd {
                match entry {
                    Ok(entry) => {
                        if entry.file_type().is_ok_and(|t| t.is_dir()) {
                            stack.push(entry.path());
                        }
                    }
                    Err(e) => st.lose(env, &format!("cannot list {}: {e}", dir.display())),
                }
            }
        }
    }

    /// Journals `env` at `root`; returns whether it was (re)started now.
    fn ensure(&self, ino: &mut Inotify, st: &mut State, env: EnvironmentId, root: &Path) -> bool {
        let canonical = match root.canonicalize() {
            Ok(c) if c.is_dir() => c,
            _ => {
                Self::remove(ino, st, env);
                return true;
            }
        };
        if st.envs.get(&env).is_some_and(|e| e.root == canonical) {
            return false;
        }
        Self::remove(ino, st, env);
        if let Some((other, _)) = st
            .envs
            .iter()
            .find(|(_, e)| e.root.starts_with(&canonical) || canonical.starts_with(&e.root))
        {
            tracing::warn!(%env, %other, root = %canonical.display(), "change journal: roots overlap; not journaled");
            return true;
        }
        st.envs.insert(
            env,
            EnvState {
                root: canonical.clone(),
                dirs: HashMap::new(),
                changed: HashSet::new(),
                linked: HashMap::new(),
                since: None,
                lost: None,
                armed: true,
                epoch: 0,
                last_full_walk: None,
            },
        );
        self.arm(ino, st, env, &canonical);
        tracing::debug!(%env, root = %canonical.display(), dirs = st.envs.get(&env).map_or(0, |e| e.dirs.len()), "change journal started");
        true
    }

    fn remove(ino: &mut Inotify, st: &mut State, env: EnvironmentId) -> bool {
        let Some(e) = st.envs.remove(&env) else {
            return false;
        };
        for id in e.dirs.values() {
            if let Some(w) = st.wds.remove(id) {
                // The folder may be gone already.
                let _ = ino.watches().remove(w.wd);
            }
        }
        true
    }
}

fn same_inode(a: &Path, b: &Path) -> bool {
    match (std::fs::symlink_metadata(a), std::fs::symlink_metadata(b)) {
        (Ok(x), Ok(y)) => x.dev() == y.dev() && x.ino() == y.ino(),
        _ => false,
    }
}
