//! Process groups, pid files and logs of the child processes the runtime
//! starts.
//!
//! Every child (uv, Jupyter) is started as the leader of its own process
//! group, so one signal reaches it and everything it spawned. Liveness is
//! read from `/proc`: a zombie counts as gone, because a zombie does nothing
//! and is reaped by whoever its parent is.

use chrono::{DateTime, Utc};
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;
use std::time::{Duration, Instant};

/// Sends `sig` to process group `pgid`; false when the group is gone.
pub(crate) fn signal_group(pgid: u32, sig: Signal) -> bool {
    match i32::try_from(pgid) {
        Ok(raw) if raw > 1 => killpg(Pid::from_raw(raw), sig).is_ok(),
        _ => false,
    }
}

/// Sends `sig` to one process; false when it is gone.
pub(crate) fn signal_process(pid: u32, sig: Signal) -> bool {
    match i32::try_from(pid) {
        Ok(raw) if raw > 1 => nix::sys::signal::kill(Pid::from_raw(raw), sig).is_ok(),
        _ => false,
    }
}

/// State letter and process group of a process, from `/proc/<pid>/stat`.
fn stat(pid: &str) -> Option<(char, u32)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `comm` may contain spaces and parentheses; the fields after it do not.
    let after = &text[text.rfind(')')? + 1..];
    let mut fields = after.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let _ppid = fields.next()?;
    let pgrp = fields.next()?.parse().ok()?;
    Some((state, pgrp))
}

fn is_dead(state: char) -> bool {
    matches!(state, 'Z' | 'X' | 'x')
}

/// Whether a process with this pid exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    stat(&pid.to_string()).is_some_and(|(state, _)| !is_dead(state))
}

/// The process group of a live process.
pub(crate) fn process_group_of(pid: u32) -> Option<u32> {
    stat(&pid.to_string()).and_then(|(state, pgrp)| (!is_dead(state)).then_some(pgrp))
}

/// Whether any live (non-zombie) process belongs to group `pgid`.
pub fn group_alive(pgid: u32) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|e| {
        let name = e.file_name();
        let Some(name) = name.to_str() else {
            return false;
        };
        name.bytes().all(|b| b.is_ascii_digit())
            && stat(name).is_some_and(|(state, pgrp)| pgrp == pgid && !is_dead(state))
    })
}

/// The command line of a process, arguments joined by spaces.
pub(crate) fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    Some(
        String::from_utf8_lossy(&raw)
            .split('\0')
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    )
}

/// Kills every process (with its process group, unless that is ours) whose
/// command line mentions `root`: a uv or Jupyter left writing into an
/// environment by a crashed platform. Returns how many were found.
pub(crate) fn kill_processes_mentioning(root: &Path) -> usize {
    let needle = root.to_string_lossy().to_string();
    let me = std::process::id();
    let my_group = process_group_of(me);
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut found = 0;
    for pid in entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
    {
        if pid == me || !cmdline(pid).is_some_and(|c| c.contains(&needle)) {
            continue;
        }
        found += 1;
        match process_group_of(pid) {
            Some(g) if Some(g) != my_group => {
                signal_group(g, Signal::SIGKILL);
            }
            _ => {
                signal_process(pid, Signal::SIGKILL);
            }
        }
    }
    found
}

/// Waits until group `pgid` has no live member; false on timeout.
pub(crate) async fn wait_group_gone(pgid: u32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !group_alive(pgid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// SIGTERM to the group, up to `grace` for it to go, then SIGKILL. For
/// groups whose leader is not our child (orphans of an earlier run).
pub(crate) async fn terminate_group(pgid: u32, grace: Duration) {
    if !signal_group(pgid, Signal::SIGTERM) {
        return;
    }
    if !wait_group_gone(pgid, grace).await {
        tracing::warn!(pgid, "process group ignored SIGTERM; killing it");
        signal_group(pgid, Signal::SIGKILL);
        wait_group_gone(pgid, Duration::from_secs(2)).await;
    }
}

/// What the pid file of a running server records.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct PidRecord {
    pub pid: u32,
    pub started_at: DateTime<Utc>,
}

/// Writes `record` to `path` atomically (temporary file, then rename).
pub(crate) fn write_pid_file(path: &Path, record: &PidRecord) -> std::io::Result<()> {
    use std::io::Write as _;
    let json = serde_json::to_vec(record).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.tmp");
    // The folder is writable by the environment's code: never write
    // through a name it may have planted (a symlink to a file of the host).
    remove_file_quietly(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&tmp)?;
    f.write_all(&json)?;
    drop(f);
    std::fs::rename(&tmp, path)
}

/// Reads a pid file (never through a symlink); `None` when absent or
/// unreadable.
pub(crate) fn read_pid_file(path: &Path) -> Option<PidRecord> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt;
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let mut bytes = Vec::new();
    f.take(64 * 1024).read_to_end(&mut bytes).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Removes a file; a missing one is fine.
pub(crate) fn remove_file_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %e, "could not remove file");
        }
    }
}

/// Longest log line kept in an error message.
const MAX_LINE: usize = 300;

/// The last `n` lines written to `path` after byte `from`.
pub(crate) fn log_tail(path: &Path, from: u64, n: usize) -> Vec<String> {
    let mut text = String::new();
    let read = std::fs::File::open(path).and_then(|mut f| {
        let len = f.metadata()?.len();
        // Only the last 64 KiB matter for a few lines.
        let start = from.max(len.saturating_sub(64 * 1024));
        f.seek(SeekFrom::Start(start))?;
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes)?;
        text = String::from_utf8_lossy(&bytes).into_owned();
        Ok(())
    });
    if read.is_err() {
        return Vec::new();
    }
    let lines: Vec<String> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
        .map(|l| {
            if l.len() > MAX_LINE {
                let mut cut = MAX_LINE;
                while !l.is_char_boundary(cut) {
                    cut -= 1;
                }
                format!("{}…", &l[..cut])
            } else {
                l.to_string()
            }
        })
        .collect();
    let skip = lines.len().saturating_sub(n);
    lines.into_iter().skip(skip).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_in_a_live_group() {
        let me = std::process::id();
        assert!(process_alive(me));
        let (_, pgrp) = stat(&me.to_string()).unwrap();
        assert!(group_alive(pgrp));
        assert!(cmdline(me).is_some());
    }

    #[test]
    fn a_pid_file_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("westtek-server.json");
        let rec = PidRecord {
            pid: 42,
            started_at: Utc::now(),
        };
        write_pid_file(&path, &rec).unwrap();
        assert_eq!(read_pid_file(&path), Some(rec));
        remove_file_quietly(&path);
        remove_file_quietly(&path);
        assert_eq!(read_pid_file(&path), None);
    }

    #[test]
    fn the_log_tail_starts_at_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        std::fs::write(&path, "old\nold 2\nnew 1\n\nnew 2\nnew 3\n").unwrap();
        assert_eq!(log_tail(&path, 10, 2), ["new 2", "new 3"]);
        assert_eq!(log_tail(&path, 10, 10), ["new 1", "new 2", "new 3"]);
        assert!(log_tail(&dir.path().join("missing"), 0, 5).is_empty());
    }
}
