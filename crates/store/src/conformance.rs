//! The conformance suite of the `MetadataStore` port: one test body that
//! every adapter runs (SQLite always; MongoDB when `WESTTEK_TEST_MONGO_URL`
//! is set). It asserts what services rely on: uniqueness, quotas,
//! optimistic concurrency, all-or-nothing commits and an intact audit chain.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use chrono::Utc;
use std::sync::Arc;
use westtek_domain::audit::verify_chain;
use westtek_domain::ports::{MetadataStore, Write};
use westtek_domain::*;

fn audit(action: &str, lab: Option<LabId>, target: &str) -> AuditDraft {
    AuditDraft {
        actor_id: None,
        actor_name: "conformance".into(),
        lab_id: lab,
        action: action.into(),
        target_kind: "test".into(),
        target_id: target.into(),
        request_id: "req-1".into(),
        details: serde_json::json!({"why": "conformance"}),
    }
}

fn lab(name: &str) -> Lab {
    Lab {
        id: LabId::new(),
        name: Slug::parse_field(name, "name").unwrap(),
        display_name: name.to_uppercase(),
        created_at: Utc::now(),
        quotas: LabQuotas::default(),
    }
}

fn user(name: &str) -> User {
    User {
        id: UserId::new(),
        username: Slug::parse_field(name, "username").unwrap(),
        display_name: name.into(),
        it_admin: false,
        created_at: Utc::now(),
    }
}

/// An environment in `lab` named `name`.
pub fn environment(lab: LabId, owner: UserId, name: &str) -> Environment {
    let now = Utc::now();
    Environment {
        id: EnvironmentId::new(),
        lab_id: lab,
        researcher_id: owner,
        name: Slug::parse_field(name, "name").unwrap(),
        python_version: "3.11".into(),
        packages: vec![PackageSpec::parse("numpy==1.26.4").unwrap()],
        status: EnvironmentStatus::Provisioning,
        jupyter_status: JupyterStatus::Stopped,
        created_at: now,
        updated_at: now,
        last_snapshot: None,
        drift_status: DriftStatus::Stable,
        configuration_hash: None,
        container_info: ContainerInfo::default(),
        metadata: EnvironmentMetadata::default(),
        baseline_snapshot_id: None,
        retention: RetentionPolicy::default(),
        drill_interval_days: None,
        version: 0,
    }
}

/// A snapshot record of `env`.
pub fn snapshot(env: &Environment, status: SnapshotStatus, stored: u64) -> Snapshot {
    Snapshot {
        id: SnapshotId::new(),
        lab_id: env.lab_id,
        environment_id: env.id,
        created_by: env.researcher_id,
        timestamp: Utc::now(),
        status,
        s3_location: "file:///vault".into(),
        vault_snapshot_id: None,
        size_bytes: stored * 3,
        stored_bytes_added: stored,
        checksum: None,
        container_image: None,
        efs_snapshot_id: None,
        ebs_snapshot_id: None,
        metadata: SnapshotMetadata {
            jupyter_version: Some("4.2.0".into()),
            installed_packages: vec!["numpy==1.26.4".into()],
            notebook_count: 2,
            configuration_files: vec![],
            notes: Some("before the rerun".into()),
        },
        parent_id: None,
        drill: None,
    }
}

/// Runs every conformance check against a fresh, empty store.
pub async fn run_all(store: Arc<dyn MetadataStore>) {
    labs_and_users(&*store).await;
    tokens_are_single_use(&*store).await;
    environments(&*store).await;
    commits_are_all_or_nothing(&*store).await;
    jobs(&*store).await;
    events_are_handled_once(&*store).await;
    snapshots(&*store).await;
    audit_trail(&*store).await;
}

async fn labs_and_users(store: &dyn MetadataStore) {
    let a = lab("alpha");
    store
        .commit(
            vec![Write::InsertLab(a.clone())],
            vec![audit("lab.create", Some(a.id), "alpha")],
        )
        .await
        .unwrap();
    assert_eq!(store.get_lab(a.id).await.unwrap(), a);
    assert_eq!(
        store.find_lab_by_name("alpha").await.unwrap(),
        Some(a.clone())
    );
    assert_eq!(store.find_lab_by_name("nope").await.unwrap(), None);
    let dup = store
        .commit(vec![Write::InsertLab(lab("alpha"))], vec![])
        .await;
    assert!(
        matches!(dup, Err(DomainError::Conflict(_))),
        "duplicate lab name: {dup:?}"
    );
    assert!(matches!(
        store.get_lab(LabId::new()).await,
        Err(DomainError::NotFound { .. })
    ));

    let u = user("ada");
    store
        .commit(
            vec![
                Write::InsertUser {
                    user: u.clone(),
                    password_hash: Some("h1".into()),
                },
                Write::PutMembership(Membership {
                    lab_id: a.id,
                    user_id: u.id,
                    role: Role::Researcher,
                }),
            ],
            vec![audit("user.create", Some(a.id), "ada")],
        )
        .await
        .unwrap();
    let creds = store.find_user_by_username("ada").await.unwrap().unwrap();
    assert_eq!(creds.user, u);
    assert_eq!(creds.password_hash.as_deref(), Some("h1"));
    let dup = store
        .commit(
            vec![Write::InsertUser {
                user: user("ada"),
                password_hash: None,
            }],
            vec![],
        )
        .await;
    assert!(matches!(dup, Err(DomainError::Conflict(_))));

    // Promote: PutMembership replaces the role.
    store
        .commit(
            vec![
                Write::PutMembership(Membership {
                    lab_id: a.id,
                    user_id: u.id,
                    role: Role::LabAdmin,
                }),
                Write::SetPassword {
                    user_id: u.id,
                    password_hash: "h2".into(),
                },
            ],
            vec![],
        )
        .await
        .unwrap();
    let ms = store.memberships_of(u.id).await.unwrap();
    assert_eq!(
        ms,
        vec![Membership {
            lab_id: a.id,
            user_id: u.id,
            role: Role::LabAdmin
        }]
    );
    let creds = store.find_user_by_username("ada").await.unwrap().unwrap();
    assert_eq!(creds.password_hash.as_deref(), Some("h2"));
    assert_eq!(store.list_users(Some(a.id)).await.unwrap(), vec![u.clone()]);
    assert!(store.count_users().await.unwrap() >= 1);
    let stray = store
        .commit(
            vec![Write::PutMembership(Membership {
                lab_id: LabId::new(),
                user_id: u.id,
                role: Role::Researcher,
            })],
            vec![],
        )
        .await;
    assert!(stray.is_err(), "membership in a missing lab accepted");
}

async fn tokens_are_single_use(store: &dyn MetadataStore) {
    let u = user("tok-user");
    store
        .commit(
            vec![Write::InsertUser {
                user: u.clone(),
                password_hash: None,
            }],
            vec![],
        )
        .await
        .unwrap();
    let t = StoredToken {
        hash: "abc123".into(),
        kind: TokenKind::OneTimeLogin,
        user_id: u.id,
        expires_at: Utc::now(),
        created_at: Utc::now(),
    };
    store
        .commit(vec![Write::InsertToken(t.clone())], vec![])
        .await
        .unwrap();
    assert_eq!(
        store
            .get_token("abc123", TokenKind::OneTimeLogin)
            .await
            .unwrap(),
        Some(t)
    );
    assert_eq!(
        store.get_token("abc123", TokenKind::Refresh).await.unwrap(),
        None
    );
    store
        .commit(
            vec![Write::DeleteToken {
                hash: "abc123".into(),
            }],
            vec![],
        )
        .await
        .unwrap();
    let again = store
        .commit(
            vec![Write::DeleteToken {
                hash: "abc123".into(),
            }],
            vec![],
        )
        .await;
    assert!(
        matches!(again, Err(DomainError::NotFound { .. })),
        "second use of a one-time token: {again:?}"
    );
}

async fn environments(store: &dyn MetadataStore) {
    let mut l1 = lab("env-lab-1");
    l1.quotas.max_environments = 3;
    let l2 = lab("env-lab-2");
    let owner = user("env-owner");
    store
        .commit(
            vec![
                Write::InsertLab(l1.clone()),
                Write::InsertLab(l2.clone()),
                Write::InsertUser {
                    user: owner.clone(),
                    password_hash: None,
                },
            ],
            vec![],
        )
        .await
        .unwrap();
    let e1 = environment(l1.id, owner.id, "genomics");
    let ins = |e: &Environment| Write::InsertEnvironment {
        env: e.clone(),
        max_in_lab: Some(3),
    };
    store
        .commit(
            vec![ins(&e1)],
            vec![audit("environment.create", Some(l1.id), "e1")],
        )
        .await
        .unwrap();
    assert_eq!(store.get_environment(e1.id).await.unwrap(), e1);

    let same_name = environment(l1.id, owner.id, "genomics");
    assert!(matches!(
        store.commit(vec![ins(&same_name)], vec![]).await,
        Err(DomainError::Conflict(_))
    ));
    let other_lab = environment(l2.id, owner.id, "genomics");
    store.commit(vec![ins(&other_lab)], vec![]).await.unwrap();

    store
        .commit(
            vec![ins(&environment(l1.id, owner.id, "proteomics"))],
            vec![],
        )
        .await
        .unwrap();
    store
        .commit(vec![ins(&environment(l1.id, owner.id, "imaging"))], vec![])
        .await
        .unwrap();
    let over = store
        .commit(vec![ins(&environment(l1.id, owner.id, "fourth"))], vec![])
        .await;
    assert!(
        matches!(over, Err(DomainError::QuotaExceeded(_))),
        "quota: {over:?}"
    );

    let page = store
        .list_environments(&EnvironmentFilter {
            lab_id: Some(l1.id),
            limit: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert_eq!(page.items.len(), 2);
    assert!(page.items.iter().all(|e| e.lab_id == l1.id));
    let rest = store
        .list_environments(&EnvironmentFilter {
            lab_id: Some(l1.id),
            limit: 2,
            offset: 2,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rest.items.len(), 1);
    let named = store
        .list_environments(&EnvironmentFilter {
            lab_id: Some(l1.id),
            name_contains: Some("OMICS".into()),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    let mut names: Vec<_> = named.items.iter().map(|e| e.name.to_string()).collect();
    names.sort();
    assert_eq!(names, vec!["genomics", "proteomics"]);

    // Optimistic concurrency: the version read must match.
    let mut ready = e1.clone();
    ready.status = EnvironmentStatus::Ready;
    ready.drift_status = DriftStatus::MinorDrift;
    store
        .commit(vec![Write::UpdateEnvironment(ready.clone())], vec![])
        .await
        .unwrap();
    let stored = store.get_environment(e1.id).await.unwrap();
    assert_eq!(stored.version, 1);
    assert_eq!(stored.status, EnvironmentStatus::Ready);
    let stale = store
        .commit(vec![Write::UpdateEnvironment(ready)], vec![])
        .await;
    assert!(
        matches!(stale, Err(DomainError::Conflict(_))),
        "stale update: {stale:?}"
    );
    let drifted = store
        .list_environments(&EnvironmentFilter {
            lab_id: Some(l1.id),
            drift_status: Some(DriftStatus::MinorDrift),
            limit: 50,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(drifted.total, 1);

    store
        .commit(vec![Write::DeleteEnvironment(e1.id)], vec![])
        .await
        .unwrap();
    assert!(matches!(
        store.get_environment(e1.id).await,
        Err(DomainError::NotFound { .. })
    ));
    let missing = store
        .commit(vec![Write::DeleteEnvironment(e1.id)], vec![])
        .await;
    assert!(matches!(missing, Err(DomainError::NotFound { .. })));
}

async fn commits_are_all_or_nothing(store: &dyn MetadataStore) {
    let before = store.audit_chain().await.unwrap().0.len();
    let l = lab("atomic-lab");
    let r = store
        .commit(
            vec![
                Write::InsertLab(l.clone()),
                Write::DeleteEnvironment(EnvironmentId::new()),
            ],
            vec![audit("lab.create", Some(l.id), "atomic")],
        )
        .await;
    assert!(r.is_err());
    assert_eq!(
        store.find_lab_by_name("atomic-lab").await.unwrap(),
        None,
        "half a commit was applied"
    );
    assert_eq!(
        store.audit_chain().await.unwrap().0.len(),
        before,
        "audit written for a failed commit"
    );
}

async fn jobs(store: &dyn MetadataStore) {
    let now = Utc::now();
    let mut job = Job {
        id: JobId::new(),
        lab_id: LabId::new(),
        kind: "environment.create".into(),
        target_id: "x".into(),
        status: JobStatus::Running,
        progress: 0.5,
        message: "installing".into(),
        error: None,
        created_by: UserId::new(),
        created_at: now,
        updated_at: now,
    };
    store
        .commit(vec![Write::InsertJob(job.clone())], vec![])
        .await
        .unwrap();
    assert_eq!(store.get_job(job.id).await.unwrap(), job);
    assert!(store
        .list_jobs(Some(JobStatus::Running))
        .await
        .unwrap()
        .iter()
        .any(|j| j.id == job.id));
    job.status = JobStatus::Failed;
    job.error = Some(JobError {
        code: "interrupted".into(),
        message: "restart".into(),
    });
    store
        .commit(vec![Write::UpdateJob(job.clone())], vec![])
        .await
        .unwrap();
    assert_eq!(store.get_job(job.id).await.unwrap(), job);
    assert!(!store
        .list_jobs(Some(JobStatus::Running))
        .await
        .unwrap()
        .iter()
        .any(|j| j.id == job.id));
}

async fn events_are_handled_once(store: &dyn MetadataStore) {
    let mark = || Write::MarkEventHandled {
        consumer: "knowledge".into(),
        event_id: "ev-1".into(),
    };
    store.commit(vec![mark()], vec![]).await.unwrap();
    assert!(matches!(
        store.commit(vec![mark()], vec![]).await,
        Err(DomainError::Conflict(_))
    ));
    let other = Write::MarkEventHandled {
        consumer: "drift".into(),
        event_id: "ev-1".into(),
    };
    store.commit(vec![other], vec![]).await.unwrap();
}

async fn audit_trail(store: &dyn MetadataStore) {
    let l = lab("audit-lab");
    store
        .commit(
            vec![Write::InsertLab(l.clone())],
            vec![audit("lab.create", Some(l.id), "a")],
        )
        .await
        .unwrap();
    let appended = store
        .append(vec![
            audit("auth.login", Some(l.id), "u1"),
            audit("auth.login", None, "u2"),
        ])
        .await
        .unwrap();
    assert_eq!(appended.len(), 2);
    assert_eq!(appended[1].prev_hash, appended[0].hash);

    let (entries, head) = store.audit_chain().await.unwrap();
    assert!(entries.windows(2).all(|w| w[1].seq == w[0].seq + 1));
    assert_eq!(head.as_ref().map(|h| h.seq), entries.last().map(|e| e.seq));
    assert_eq!(verify_chain(&entries, head.as_ref()), vec![]);

    let lab_page = store
        .list_audit(&AuditFilter {
            lab_id: Some(l.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(lab_page.total, 2);
    assert_eq!(lab_page.items[0].action, "auth.login", "newest first");
    assert!(lab_page.items.iter().all(|e| e.lab_id == Some(l.id)));
    let logins = store
        .list_audit(&AuditFilter {
            action: Some("auth.login".into()),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(logins.total, 2);
    // Entries read back equal what was sealed (times survive the round trip).
    let stored = entries.iter().find(|e| e.id == appended[0].id).unwrap();
    assert_eq!(stored, &appended[0]);
}

async fn snapshots(store: &dyn MetadataStore) {
    let l = lab("snap-lab");
    let other = lab("snap-other");
    let owner = user("snap-owner");
    store
        .commit(
            vec![
                Write::InsertLab(l.clone()),
                Write::InsertLab(other.clone()),
                Write::InsertUser {
                    user: owner.clone(),
                    password_hash: None,
                },
            ],
            vec![],
        )
        .await
        .unwrap();
    let e1 = environment(l.id, owner.id, "snapped");
    let e2 = environment(other.id, owner.id, "elsewhere");
    store
        .commit(
            vec![
                Write::InsertEnvironment {
                    env: e1.clone(),
                    max_in_lab: None,
                },
                Write::InsertEnvironment {
                    env: e2.clone(),
                    max_in_lab: None,
                },
            ],
            vec![],
        )
        .await
        .unwrap();
    let mut s1 = snapshot(&e1, SnapshotStatus::Creating, 1000);
    let s2 = snapshot(&e1, SnapshotStatus::Complete, 200);
    let s3 = snapshot(&e2, SnapshotStatus::Complete, 50);
    let failed = snapshot(&e1, SnapshotStatus::Failed, 7);
    for s in [&s1, &s2, &s3, &failed] {
        store
            .commit(
                vec![Write::InsertSnapshot(s.clone())],
                vec![audit("snapshot.create", Some(s.lab_id), "s")],
            )
            .await
            .unwrap();
    }
    assert_eq!(store.get_snapshot(s2.id).await.unwrap(), s2);
    let dup = store
        .commit(vec![Write::InsertSnapshot(s2.clone())], vec![])
        .await;
    assert!(matches!(dup, Err(DomainError::Conflict(_))));

    s1.status = SnapshotStatus::Complete;
    s1.checksum = Some("abc".into());
    store
        .commit(vec![Write::UpdateSnapshot(s1.clone())], vec![])
        .await
        .unwrap();
    assert_eq!(store.get_snapshot(s1.id).await.unwrap(), s1);

    let page = store
        .list_snapshots(&SnapshotFilter {
            environment_id: Some(e1.id),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(page.total, 3);
    assert!(
        page.items
            .windows(2)
            .all(|w| w[0].timestamp >= w[1].timestamp),
        "newest first"
    );
    let complete = store
        .list_snapshots(&SnapshotFilter {
            lab_id: Some(l.id),
            status: Some(SnapshotStatus::Complete),
            limit: 10,
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(complete.total, 2);
    // Failed snapshots hold no storage.
    assert_eq!(store.lab_storage_bytes(l.id).await.unwrap(), 1200);
    assert_eq!(store.lab_storage_bytes(other.id).await.unwrap(), 50);

    store
        .commit(vec![Write::DeleteSnapshot(s1.id)], vec![])
        .await
        .unwrap();
    assert!(matches!(
        store.get_snapshot(s1.id).await,
        Err(DomainError::NotFound { .. })
    ));
    assert!(matches!(
        store
            .commit(vec![Write::DeleteSnapshot(s1.id)], vec![])
            .await,
        Err(DomainError::NotFound { .. })
    ));
    assert!(matches!(
        store.commit(vec![Write::UpdateSnapshot(s1)], vec![]).await,
        Err(DomainError::NotFound { .. })
    ));
    assert_eq!(store.lab_storage_bytes(l.id).await.unwrap(), 200);
}
