//! When the journal cannot vouch for its set, the snapshot walks the whole
//! tree and says why.

use crate::helpers::*;
use std::fs;
use std::path::Path;
use std::time::Duration;
use westtek_domain::EnvironmentId;
use westtek_journal::{Journal, JournalConfig};

fn tree(root: &Path) {
    fs::create_dir_all(root.join("venv/lib")).unwrap();
    fs::create_dir_all(root.join("home/data")).unwrap();
    fs::write(root.join("venv/lib/a.py"), b"a = 1\n").unwrap();
    fs::write(root.join("home/nb.ipynb"), b"{}").unwrap();
}

#[test]
fn a_restart_means_a_full_walk_then_journaled_snapshots_again() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("env");
    tree(&root);
    let v = vault(&t.path().join("vault"));
    let env = EnvironmentId::new();
    let j = Journal::new(JournalConfig::default()).unwrap();
    let (s1, mode) = journaled(&j, env, &v, &root, None);
    assert!(mode.is_err());
    fs::write(root.join("home/nb.ipynb"), b"{\"cells\": []}").unwrap();
    let (s2, mode) = journaled(&j, env, &v, &root, Some(&s1.id));
    assert_eq!(mode, Ok(1), "one changed path");
    drop(j);

    // The platform restarts: a new journal knows nothing since s2.
    fs::write(root.join("venv/lib/b.py"), b"b = 2\n").unwrap();
    let j = Journal::new(JournalConfig::default()).unwrap();
    let (s3, mode) = journaled(&j, env, &v, &root, Some(&s2.id));
    let why = mode.unwrap_err();
    assert!(why.contains("not journaled since"), "{why}");
    assert_eq!(s3.root_hash, snapshot(&v, &root, None, None).root_hash);
    fs::write(root.join("venv/lib/c.py"), b"c = 3\n").unwrap();
    let (s4, mode) = journaled(&j, env, &v, &root, Some(&s3.id));
    assert_eq!(mode, Ok(1));
    assert_eq!(s4.root_hash, snapshot(&v, &root, None, None).root_hash);
}

#[test]
fn a_kernel_queue_overflow_means_a_full_walk() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("env");
    tree(&root);
    let v = vault(&t.path().join("vault"));
    let env = EnvironmentId::new();
    let j = Journal::new(JournalConfig::default()).unwrap();
    let (s1, _) = journaled(&j, env, &v, &root, None);

    // More distinct events than the kernel queues, while the reader is held.
    let max: usize = fs::read_to_string("/proc/sys/fs/inotify/max_queued_events")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(16384);
    let burst = root.join("home/data/burst");
    fs::create_dir_all(&burst).unwrap();
    let (s2, _) = journaled(&j, env, &v, &root, Some(&s1.id));
    if max > 200_000 {
        eprintln!("max_queued_events is {max}: simulating the overflow");
        j.mark_all_incomplete("the kernel's inotify queue overflowed (events lost)");
    } else {
        let held = j.hold_reader();
        for i in 0..max + 100 {
            fs::write(burst.join(format!("f{i}")), b"x").unwrap();
        }
        drop(held);
    }
    let (s3, mode) = journaled(&j, env, &v, &root, Some(&s2.id));
    let why = mode.unwrap_err();
    assert!(why.contains("overflow"), "{why}");
    assert_eq!(s3.root_hash, snapshot(&v, &root, None, None).root_hash);
    // Complete again from the full walk on.
    fs::remove_dir_all(&burst).unwrap();
    let (s4, mode) = journaled(&j, env, &v, &root, Some(&s3.id));
    assert_eq!(mode, Ok(1));
    assert_eq!(s4.root_hash, snapshot(&v, &root, None, None).root_hash);
}

#[test]
fn a_parent_other_than_the_journals_last_snapshot_means_a_full_walk() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("env");
    tree(&root);
    let v = vault(&t.path().join("vault"));
    let env = EnvironmentId::new();
    let j = Journal::new(JournalConfig::default()).unwrap();
    let (s1, _) = journaled(&j, env, &v, &root, None);
    let (_s2, _) = journaled(&j, env, &v, &root, Some(&s1.id));
    let (_, mode) = journaled(&j, env, &v, &root, Some(&s1.id));
    assert!(mode.unwrap_err().contains("not from the parent"));
}

#[test]
fn two_snapshots_at_once_and_a_failed_one_never_lose_a_change() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("env");
    tree(&root);
    let v = vault(&t.path().join("vault"));
    let env = EnvironmentId::new();
    let j = Journal::new(JournalConfig::default()).unwrap();
    let (s1, _) = journaled(&j, env, &v, &root, None);
    let roots = layer_roots(&root);

    // A failed snapshot hands its paths back.
    fs::write(root.join("venv/lib/a.py"), b"a = 2\n").unwrap();
    let failed = j.begin(env, &root);
    assert_eq!(failed.paths().len(), 1);
    j.abort(failed);
    let ticket = j.begin(env, &root);
    let hints = ticket.hints_for(Some(s1.id.as_str()), &roots).unwrap();
    assert_eq!(hints, vec![root.join("venv/lib/a.py")]);

    // A second snapshot begun before the first commits: incomplete.
    let second = j.begin(env, &root);
    assert!(second.hints_for(Some(s1.id.as_str()), &roots).is_err());
    let s2 = snapshot(&v, &root, Some(&s1.id), None);
    j.commit(ticket, s2.id.as_str(), false);
    let s3 = snapshot(&v, &root, Some(&s2.id), None);
    j.commit(second, s3.id.as_str(), true);
    let (_, mode) = journaled(&j, env, &v, &root, Some(&s3.id));
    assert!(mode.unwrap_err().contains("at the same time"));
}

#[test]
fn a_periodic_full_walk_bounds_what_inotify_cannot_see() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("env");
    tree(&root);
    let v = vault(&t.path().join("vault"));
    let env = EnvironmentId::new();
    let j = Journal::new(JournalConfig {
        full_walk_every: Duration::ZERO,
        ..JournalConfig::default()
    })
    .unwrap();
    let (s1, _) = journaled(&j, env, &v, &root, None);
    let (_, mode) = journaled(&j, env, &v, &root, Some(&s1.id));
    assert!(mode.unwrap_err().contains("periodic"));
}

#[test]
fn a_change_to_the_environment_folder_itself_walks_every_layer_under_it() {
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("env");
    tree(&root);
    let v = vault(&t.path().join("vault"));
    let env = EnvironmentId::new();
    let j = Journal::new(JournalConfig::default()).unwrap();
    let (s1, _) = journaled(&j, env, &v, &root, None);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&root, fs::Permissions::from_mode(0o750)).unwrap();
    fs::write(root.join("home/nb.ipynb"), b"{\"changed\": 1}").unwrap();
    let ticket = j.begin(env, &root);
    let hints = ticket
        .hints_for(Some(s1.id.as_str()), &layer_roots(&root))
        .unwrap();
    assert_eq!(
        hints,
        vec![root.clone(), root.join("home")],
        "both layers walked whole"
    );
}
