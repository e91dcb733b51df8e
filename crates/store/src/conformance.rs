//! The conformance suite of the `MetadataStore` port: one test body that
//! every adapter runs (SQLite always; MongoDB when `WESTTEK_TEST_MONGO_URL`
//! is set). It asserts what services rely on: uniqueness, quotas,
//! optimistic concurrency, all-or-nothing commits and an intact audit chain.
//!
//! [`run_drift`] does the same for the `DriftStore` port: idempotent,
//! race-free recording, a strictly increasing `seq` that streams can resume
//! from, the listing filters and lab isolation, and the webhook, dead-letter
//! and recommendation records.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use chrono::{DateTime, TimeDelta, Utc};
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
        idp_managed: false,
        disabled: false,
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
        current_baseline_id: None,
        retention: RetentionPolicy::default(),
        drill_interval_days: None,
        adopted: None,
        agent_credential: None,
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
    collaboration(&*store).await;
    memberships_keep_the_join_order(&*store).await;
    invitations(&*store).await;
    provisioned_users(Arc::clone(&store)).await;
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

    // Removal: into a second lab and out of it again.
    let b = lab("alpha-two");
    store
        .commit(
            vec![
                Write::InsertLab(b.clone()),
                Write::PutMembership(Membership {
                    lab_id: b.id,
                    user_id: u.id,
                    role: Role::Researcher,
                }),
            ],
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(store.memberships_of(u.id).await.unwrap().len(), 2);
    store
        .commit(
            vec![Write::DeleteMembership {
                lab_id: b.id,
                user_id: u.id,
            }],
            vec![],
        )
        .await
        .unwrap();
    let ms = store.memberships_of(u.id).await.unwrap();
    assert_eq!(ms.len(), 1);
    assert_eq!(ms[0].lab_id, a.id);
    let again = store
        .commit(
            vec![Write::DeleteMembership {
                lab_id: b.id,
                user_id: u.id,
            }],
            vec![],
        )
        .await;
    assert!(matches!(again, Err(DomainError::NotFound { .. })));
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

/// Users created from an identity provider's token: their flags round-trip,
/// a second insert of the same id (two first requests at once) is a
/// `Conflict` that leaves nothing of its commit, of two racing inserts
/// exactly one commits, and disabling / IT admin changes apply, move the
/// access generation, and refuse unknown users.
async fn provisioned_users(store: Arc<dyn MetadataStore>) {
    let l = lab("idp-lab");
    store
        .commit(vec![Write::InsertLab(l.clone())], vec![])
        .await
        .unwrap();
    let mut u = user("idp-ada");
    u.idp_managed = true;
    let member = |user_id, role| {
        Write::PutMembership(Membership {
            lab_id: l.id,
            user_id,
            role,
        })
    };
    store
        .commit(
            vec![
                Write::InsertUser {
                    user: u.clone(),
                    password_hash: None,
                },
                member(u.id, Role::Researcher),
            ],
            vec![audit("user.provisioned", Some(l.id), "idp-ada")],
        )
        .await
        .unwrap();
    let read = store.get_user(u.id).await.unwrap();
    assert!(read.idp_managed && !read.disabled, "{read:?}");
    assert_eq!(read.id, u.id);
    assert!(store
        .list_users(Some(l.id))
        .await
        .unwrap()
        .iter()
        .any(|x| x.id == u.id && x.idp_managed));

    // The same id again, under another name: refused as a whole.
    let users = store.count_users().await.unwrap();
    let audits = store.audit_chain().await.unwrap().0.len();
    let mut again = u.clone();
    again.username = Slug::parse_field("idp-ada-2", "username").unwrap();
    let r = store
        .commit(
            vec![
                Write::InsertUser {
                    user: again,
                    password_hash: None,
                },
                member(u.id, Role::LabAdmin),
            ],
            vec![audit("user.provisioned", Some(l.id), "idp-ada")],
        )
        .await;
    assert!(matches!(r, Err(DomainError::Conflict(_))), "{r:?}");
    assert_eq!(store.count_users().await.unwrap(), users);
    assert_eq!(store.audit_chain().await.unwrap().0.len(), audits);
    assert_eq!(
        store.memberships_of(u.id).await.unwrap()[0].role,
        Role::Researcher,
        "half of a refused commit was applied"
    );

    // Two first requests at once: one user.
    let twin = user("idp-twin");
    let insert = |name: &str| {
        let mut t = twin.clone();
        t.username = Slug::parse_field(name, "username").unwrap();
        let store = Arc::clone(&store);
        async move {
            store
                .commit(
                    vec![
                        Write::InsertUser {
                            user: t.clone(),
                            password_hash: None,
                        },
                        member(t.id, Role::Researcher),
                    ],
                    vec![audit(
                        "user.provisioned",
                        Some(l.id),
                        t.id.to_string().as_str(),
                    )],
                )
                .await
        }
    };
    let (a, b) = tokio::join!(insert("idp-twin"), insert("idp-twin-b"));
    assert_eq!(
        usize::from(a.is_ok()) + usize::from(b.is_ok()),
        1,
        "{a:?} / {b:?}"
    );
    assert!(matches!(
        a.err().or(b.err()),
        Some(DomainError::Conflict(_))
    ));
    assert_eq!(store.memberships_of(twin.id).await.unwrap().len(), 1);

    // Disabling and the IT admin flag.
    let g0 = store.access_generation();
    store
        .commit(
            vec![Write::SetUserDisabled {
                user_id: u.id,
                disabled: true,
            }],
            vec![],
        )
        .await
        .unwrap();
    let read = store.get_user(u.id).await.unwrap();
    assert!(
        read.disabled && read.idp_managed && !read.it_admin,
        "{read:?}"
    );
    assert_eq!(read.username, u.username);
    if let (Some(a), Some(b)) = (g0, store.access_generation()) {
        assert_ne!(a, b, "disabling a user must drop access caches");
    }
    store
        .commit(
            vec![
                Write::SetItAdmin {
                    user_id: u.id,
                    it_admin: true,
                },
                Write::SetUserDisabled {
                    user_id: u.id,
                    disabled: false,
                },
            ],
            vec![],
        )
        .await
        .unwrap();
    let read = store.get_user(u.id).await.unwrap();
    assert!(read.it_admin && !read.disabled, "{read:?}");
    assert!(store
        .find_user_by_username("idp-ada")
        .await
        .unwrap()
        .is_some_and(|c| c.user.it_admin && c.password_hash.is_none()));

    // Unknown users are refused, and the commit with them.
    let r = store
        .commit(
            vec![
                Write::SetItAdmin {
                    user_id: u.id,
                    it_admin: false,
                },
                Write::SetUserDisabled {
                    user_id: UserId::new(),
                    disabled: true,
                },
            ],
            vec![],
        )
        .await;
    assert!(matches!(r, Err(DomainError::NotFound { .. })), "{r:?}");
    let r = store
        .commit(
            vec![Write::SetItAdmin {
                user_id: UserId::new(),
                it_admin: true,
            }],
            vec![],
        )
        .await;
    assert!(matches!(r, Err(DomainError::NotFound { .. })), "{r:?}");
    assert!(store.get_user(u.id).await.unwrap().it_admin);
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

/// A drift event of `env` in `lab` with `fingerprint`, detected now; the
/// store assigns its `seq`.
pub fn drift_event(lab: LabId, env: EnvironmentId, fingerprint: &str) -> DriftEvent {
    DriftEvent {
        id: DriftEventId::new(),
        seq: 0,
        lab_id: lab,
        environment_id: env,
        detected_at: Utc::now(),
        source: DriftSource::Watcher,
        baseline_snapshot_id: Some(SnapshotId::new()),
        previous_status: DriftStatus::Stable,
        status: DriftStatus::MinorDrift,
        severity: Some("MINOR".into()),
        fingerprint: fingerprint.into(),
        // Free-form JSON must come back exactly, odd keys and floats too.
        findings: serde_json::json!([{
            "kind": "package_added",
            "package": "pandas",
            "severity": "MINOR",
            "details": { "pandas.version": "2.2.1", "ratio": 0.5, "count": 3 },
            "notebooks": ["analysis/a.ipynb"],
        }]),
        affected_notebooks: vec!["analysis/a.ipynb".into()],
    }
}

/// `drift_event` detected at `at`.
fn drift_event_at(
    lab: LabId,
    env: EnvironmentId,
    fingerprint: &str,
    at: DateTime<Utc>,
) -> DriftEvent {
    DriftEvent {
        detected_at: at,
        ..drift_event(lab, env, fingerprint)
    }
}

/// Records `event` and returns it as stored, failing the test when stale.
async fn record(store: &dyn DriftStore, event: DriftEvent, expected: Option<&str>) -> DriftEvent {
    match store
        .record_drift(event.clone(), expected.map(str::to_string))
        .await
        .unwrap()
    {
        RecordOutcome::Recorded(stored) => {
            assert_eq!(
                stored,
                DriftEvent {
                    seq: stored.seq,
                    ..event
                },
                "the recorded event differs from the one given"
            );
            stored
        }
        RecordOutcome::Stale(state) => panic!("expected Recorded, got Stale({state:?})"),
    }
}

/// The page of events `f` selects.
async fn events_of(store: &dyn DriftStore, f: DriftEventFilter) -> Page<DriftEvent> {
    store.list_drift_events(&f).await.unwrap()
}

fn ids(events: &[DriftEvent]) -> Vec<DriftEventId> {
    events.iter().map(|e| e.id).collect()
}

/// Runs every drift conformance check against a fresh, empty store.
pub async fn run_drift(store: Arc<dyn DriftStore>) {
    recording_drift_is_idempotent(&*store).await;
    concurrent_records_store_one_event(&*store).await;
    concurrent_writers_get_distinct_ordered_seqs(store.clone()).await;
    drift_state_without_events(&*store).await;
    drift_events_are_listed_filtered_and_resumable(&*store).await;
    webhooks(&*store).await;
    dead_letters(&*store).await;
    recommendations(&*store).await;
}

async fn recording_drift_is_idempotent(store: &dyn DriftStore) {
    let lab = LabId::new();
    let env = EnvironmentId::new();
    let first = drift_event(lab, env, "fp-a");
    let stored = record(store, first.clone(), None).await;
    assert!(stored.seq > 0, "seq is assigned: {}", stored.seq);
    assert_eq!(store.get_drift_event(first.id).await.unwrap(), stored);

    let state = store.get_drift_state(env).await.unwrap().unwrap();
    assert_eq!(
        state,
        DriftStateRecord {
            environment_id: env,
            lab_id: lab,
            status: first.status,
            fingerprint: "fp-a".into(),
            baseline_snapshot_id: first.baseline_snapshot_id,
            last_event_id: Some(first.id),
            updated_at: first.detected_at,
        }
    );

    // The sweep sees the change the watcher already recorded.
    let again = drift_event(lab, env, "fp-a");
    let outcome = store.record_drift(again.clone(), None).await.unwrap();
    assert_eq!(outcome, RecordOutcome::Stale(Some(state.clone())));
    assert!(
        matches!(
            store.get_drift_event(again.id).await,
            Err(DomainError::NotFound { .. })
        ),
        "a stale record stored its event"
    );
    let page = events_of(
        store,
        DriftEventFilter {
            environment_id: Some(env),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(page.total, 1, "one change, one event");
    assert_eq!(ids(&page.items), vec![first.id]);

    // The next change moves from the stored fingerprint.
    let mut second = drift_event(lab, env, "fp-b");
    second.previous_status = DriftStatus::MinorDrift;
    second.status = DriftStatus::CriticalDrift;
    second.severity = Some("CRITICAL".into());
    second.baseline_snapshot_id = None;
    second.detected_at = first.detected_at + TimeDelta::seconds(1);
    let stored2 = record(store, second.clone(), Some("fp-a")).await;
    assert!(stored2.seq > stored.seq);
    let state2 = store.get_drift_state(env).await.unwrap().unwrap();
    assert_eq!(state2.fingerprint, "fp-b");
    assert_eq!(state2.status, DriftStatus::CriticalDrift);
    assert_eq!(state2.baseline_snapshot_id, None);
    assert_eq!(state2.last_event_id, Some(second.id));
    assert_eq!(state2.updated_at, second.detected_at);

    // A caller still holding the old fingerprint is told the current state.
    let late = store
        .record_drift(drift_event(lab, env, "fp-c"), Some("fp-a".into()))
        .await
        .unwrap();
    assert_eq!(late, RecordOutcome::Stale(Some(state2.clone())));
    // Expecting a state where there is none is stale too.
    let nothing = EnvironmentId::new();
    let none = store
        .record_drift(drift_event(lab, nothing, "fp-x"), Some("fp-a".into()))
        .await
        .unwrap();
    assert_eq!(none, RecordOutcome::Stale(None));
    assert_eq!(store.get_drift_state(nothing).await.unwrap(), None);

    // Reusing an event id is a conflict, and writes nothing.
    let reused = DriftEvent {
        id: first.id,
        ..drift_event(lab, env, "fp-d")
    };
    let r = store.record_drift(reused, Some("fp-b".into())).await;
    assert!(
        matches!(r, Err(DomainError::Conflict(_))),
        "reused id: {r:?}"
    );
    assert_eq!(store.get_drift_state(env).await.unwrap(), Some(state2));
    assert_eq!(store.get_drift_event(first.id).await.unwrap(), stored);

    assert!(matches!(
        store.get_drift_event(DriftEventId::new()).await,
        Err(DomainError::NotFound { .. })
    ));

    // Deleting the state keeps the events; deleting it twice is fine.
    store.delete_drift_state(env).await.unwrap();
    assert_eq!(store.get_drift_state(env).await.unwrap(), None);
    store.delete_drift_state(env).await.unwrap();
    assert_eq!(store.get_drift_event(second.id).await.unwrap(), stored2);
    // With the state gone, the environment starts over from `None`.
    record(store, drift_event(lab, env, "fp-a"), None).await;
}

async fn concurrent_records_store_one_event(store: &dyn DriftStore) {
    let lab = LabId::new();
    for round in 0..3 {
        let env = EnvironmentId::new();
        // First detection of the environment: nobody has stored a state.
        let a = drift_event(lab, env, "fp-1");
        let b = drift_event(lab, env, "fp-1");
        let c = drift_event(lab, env, "fp-1");
        let (ra, rb, rc) = tokio::join!(
            store.record_drift(a.clone(), None),
            store.record_drift(b.clone(), None),
            store.record_drift(c.clone(), None),
        );
        let outcomes = [ra.unwrap(), rb.unwrap(), rc.unwrap()];
        let winners: Vec<_> = outcomes
            .iter()
            .filter_map(|o| match o {
                RecordOutcome::Recorded(e) => Some(e.id),
                RecordOutcome::Stale(_) => None,
            })
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {outcomes:?}");
        let state = store.get_drift_state(env).await.unwrap().unwrap();
        assert_eq!(state.last_event_id, Some(winners[0]));
        for o in &outcomes {
            if let RecordOutcome::Stale(s) = o {
                assert_eq!(
                    s.as_ref(),
                    Some(&state),
                    "round {round}: the loser sees the winner"
                );
            }
        }

        // Two different changes racing from the same stored fingerprint.
        let (r1, r2) = tokio::join!(
            store.record_drift(drift_event(lab, env, "fp-2"), Some("fp-1".into())),
            store.record_drift(drift_event(lab, env, "fp-3"), Some("fp-1".into())),
        );
        let (r1, r2) = (r1.unwrap(), r2.unwrap());
        let recorded = [&r1, &r2]
            .iter()
            .filter(|o| matches!(o, RecordOutcome::Recorded(_)))
            .count();
        assert_eq!(recorded, 1, "round {round}: {r1:?} / {r2:?}");

        let page = events_of(
            store,
            DriftEventFilter {
                environment_id: Some(env),
                ..Default::default()
            },
        )
        .await;
        assert_eq!(page.total, 2, "round {round}: one event per winner");
    }
}

async fn concurrent_writers_get_distinct_ordered_seqs(store: Arc<dyn DriftStore>) {
    const WRITERS: usize = 6;
    const CHANGES: usize = 5;
    let lab = LabId::new();
    let start = events_of(
        &*store,
        DriftEventFilter {
            limit: 1,
            ..Default::default()
        },
    )
    .await
    .items
    .first()
    .map_or(0, |e| e.seq);
    let tasks: Vec<_> = (0..WRITERS)
        .map(|w| {
            let store = store.clone();
            tokio::spawn(async move {
                let env = EnvironmentId::new();
                let mut expected: Option<String> = None;
                let mut mine = Vec::new();
                for c in 0..CHANGES {
                    let fp = format!("w{w}-c{c}");
                    let e = record(&*store, drift_event(lab, env, &fp), expected.as_deref()).await;
                    mine.push(e);
                    expected = Some(fp);
                }
                mine
            })
        })
        .collect();
    let mut per_writer = Vec::new();
    for t in tasks {
        per_writer.push(t.await.unwrap());
    }
    for mine in &per_writer {
        assert!(
            mine.windows(2).all(|w| w[1].seq > w[0].seq),
            "one writer's events in order"
        );
    }
    let resumed = events_of(
        &*store,
        DriftEventFilter {
            lab_id: Some(lab),
            after_seq: Some(start),
            limit: 1000,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(resumed.total, (WRITERS * CHANGES) as u64);
    assert!(
        resumed.items.windows(2).all(|w| w[1].seq > w[0].seq),
        "distinct seqs, oldest first"
    );
    let mut recorded: Vec<_> = per_writer.into_iter().flatten().collect();
    recorded.sort_by_key(|e| e.seq);
    assert_eq!(resumed.items, recorded);
}

async fn drift_state_without_events(store: &dyn DriftStore) {
    let lab = LabId::new();
    let env = EnvironmentId::new();
    let baseline = DriftStateRecord {
        environment_id: env,
        lab_id: lab,
        status: DriftStatus::Stable,
        fingerprint: "fp-empty".into(),
        baseline_snapshot_id: Some(SnapshotId::new()),
        last_event_id: None,
        updated_at: Utc::now(),
    };
    store.put_drift_state(baseline.clone()).await.unwrap();
    assert_eq!(
        store.get_drift_state(env).await.unwrap(),
        Some(baseline.clone())
    );
    // Putting again replaces it.
    let moved = DriftStateRecord {
        fingerprint: "fp-new-baseline".into(),
        baseline_snapshot_id: Some(SnapshotId::new()),
        ..baseline.clone()
    };
    store.put_drift_state(moved.clone()).await.unwrap();
    assert_eq!(store.get_drift_state(env).await.unwrap(), Some(moved));
    // A record must expect the fingerprint that was put.
    assert!(matches!(
        store
            .record_drift(drift_event(lab, env, "fp-x"), Some("fp-empty".into()))
            .await
            .unwrap(),
        RecordOutcome::Stale(Some(_))
    ));
    assert!(matches!(
        store
            .record_drift(drift_event(lab, env, "fp-x"), None)
            .await
            .unwrap(),
        RecordOutcome::Stale(Some(_))
    ));
    record(
        store,
        drift_event(lab, env, "fp-x"),
        Some("fp-new-baseline"),
    )
    .await;

    let other_lab = LabId::new();
    let other = DriftStateRecord {
        environment_id: EnvironmentId::new(),
        lab_id: other_lab,
        ..baseline
    };
    store.put_drift_state(other.clone()).await.unwrap();
    let mine = store.list_drift_states(Some(lab)).await.unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].environment_id, env);
    assert_eq!(mine[0].fingerprint, "fp-x");
    assert_eq!(
        store.list_drift_states(Some(other_lab)).await.unwrap(),
        vec![other]
    );
    let all = store.list_drift_states(None).await.unwrap();
    assert!(all.iter().any(|s| s.lab_id == lab) && all.iter().any(|s| s.lab_id == other_lab));
    assert!(
        all.windows(2)
            .all(|w| w[0].environment_id <= w[1].environment_id),
        "ordered by environment"
    );
}

async fn drift_events_are_listed_filtered_and_resumable(store: &dyn DriftStore) {
    let l1 = LabId::new();
    let l2 = LabId::new();
    let (env_a, env_b, env_c) = (
        EnvironmentId::new(),
        EnvironmentId::new(),
        EnvironmentId::new(),
    );
    let t0 = Utc::now() - TimeDelta::hours(1);
    let at = |minutes: i64| t0 + TimeDelta::minutes(minutes);
    // Recorded in this order, so their seqs ascend in it.
    let a0 = record(store, drift_event_at(l1, env_a, "a0", at(0)), None).await;
    let b5 = record(store, drift_event_at(l1, env_b, "b5", at(5)), None).await;
    let a10 = record(store, drift_event_at(l1, env_a, "a10", at(10)), Some("a0")).await;
    let c15 = record(store, drift_event_at(l2, env_c, "c15", at(15)), None).await;
    let a20 = record(store, drift_event_at(l1, env_a, "a20", at(20)), Some("a10")).await;
    let all = [&a0, &b5, &a10, &c15, &a20];
    assert!(
        all.windows(2).all(|w| w[1].seq > w[0].seq),
        "seq strictly increases: {:?}",
        all.iter().map(|e| e.seq).collect::<Vec<_>>()
    );

    let lab1 = |f: DriftEventFilter| DriftEventFilter {
        lab_id: Some(l1),
        ..f
    };
    // Newest first, and the items are the stored events.
    let page = events_of(store, lab1(DriftEventFilter::default())).await;
    assert_eq!(page.total, 4);
    assert_eq!(
        page.items,
        vec![a20.clone(), a10.clone(), b5.clone(), a0.clone()]
    );
    assert_eq!((page.limit, page.offset), (50, 0), "limit 0 means 50");

    // Paging.
    let first = events_of(
        store,
        lab1(DriftEventFilter {
            limit: 2,
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(ids(&first.items), vec![a20.id, a10.id]);
    assert_eq!((first.total, first.limit), (4, 2));
    let second = events_of(
        store,
        lab1(DriftEventFilter {
            limit: 2,
            offset: 2,
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(ids(&second.items), vec![b5.id, a0.id]);
    assert_eq!((second.total, second.offset), (4, 2));
    let capped = events_of(
        store,
        lab1(DriftEventFilter {
            limit: 1_000_000,
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(capped.limit, 1000, "limits are capped");
    assert_eq!(capped.items.len(), 4);

    // Environment, since (inclusive) and until (exclusive).
    let env = events_of(
        store,
        DriftEventFilter {
            environment_id: Some(env_a),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&env.items), vec![a20.id, a10.id, a0.id]);
    let since = events_of(
        store,
        lab1(DriftEventFilter {
            since: Some(at(5)),
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(ids(&since.items), vec![a20.id, a10.id, b5.id]);
    assert_eq!(since.total, 3);
    let until = events_of(
        store,
        lab1(DriftEventFilter {
            until: Some(at(10)),
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(ids(&until.items), vec![b5.id, a0.id]);
    let window = events_of(
        store,
        DriftEventFilter {
            environment_id: Some(env_a),
            since: Some(at(10)),
            until: Some(at(20)),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&window.items), vec![a10.id]);
    assert_eq!(window.total, 1);

    // Lab isolation.
    let other = events_of(
        store,
        DriftEventFilter {
            lab_id: Some(l2),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(other.items, vec![c15.clone()]);
    let cross = events_of(
        store,
        DriftEventFilter {
            lab_id: Some(l2),
            environment_id: Some(env_a),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(cross.total, 0);
    assert!(cross.items.is_empty());

    // Resuming a stream: oldest first after the given seq, across labs
    // when no lab is given; `total` counts what is still to come.
    let resumed = events_of(
        store,
        DriftEventFilter {
            after_seq: Some(b5.seq),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(ids(&resumed.items), vec![a10.id, c15.id, a20.id]);
    assert_eq!(resumed.total, 3);
    let resumed_lab = events_of(
        store,
        lab1(DriftEventFilter {
            after_seq: Some(b5.seq),
            limit: 1,
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(ids(&resumed_lab.items), vec![a10.id]);
    assert_eq!(resumed_lab.total, 2);
    let caught_up = events_of(
        store,
        DriftEventFilter {
            after_seq: Some(a20.seq),
            ..Default::default()
        },
    )
    .await;
    assert!(caught_up.items.is_empty());
    assert_eq!(caught_up.total, 0);
    let huge = events_of(
        store,
        DriftEventFilter {
            after_seq: Some(u64::MAX),
            ..Default::default()
        },
    )
    .await;
    assert!(huge.items.is_empty());
}

fn webhook(lab: LabId, url: &str, created_at: DateTime<Utc>) -> Webhook {
    Webhook {
        id: WebhookId::new(),
        lab_id: lab,
        url: url.into(),
        secret: "s3cret".into(),
        format: WebhookFormat::Slack,
        min_severity: "MINOR".into(),
        created_by: UserId::new(),
        created_at,
    }
}

async fn webhooks(store: &dyn DriftStore) {
    let lab = LabId::new();
    let other = LabId::new();
    let now = Utc::now();
    let late = webhook(lab, "https://hooks.example/a", now);
    let early = webhook(lab, "https://hooks.example/b", now - TimeDelta::minutes(5));
    let elsewhere = webhook(other, "https://hooks.example/a", now);
    // Inserted newest first, listed by creation.
    for h in [&late, &early, &elsewhere] {
        store.insert_webhook(h.clone()).await.unwrap();
    }
    assert_eq!(store.get_webhook(late.id).await.unwrap(), late);
    assert_eq!(
        store.list_webhooks(lab).await.unwrap(),
        vec![early.clone(), late.clone()]
    );
    assert_eq!(
        store.list_webhooks(other).await.unwrap(),
        vec![elsewhere.clone()]
    );
    assert_eq!(store.list_webhooks(LabId::new()).await.unwrap(), vec![]);

    let dup = store
        .insert_webhook(webhook(lab, "https://hooks.example/a", now))
        .await;
    assert!(
        matches!(dup, Err(DomainError::Conflict(_))),
        "same lab, same url: {dup:?}"
    );
    assert_eq!(store.list_webhooks(lab).await.unwrap().len(), 2);

    store.delete_webhook(late.id).await.unwrap();
    assert_eq!(
        store.get_webhook(late.id).await,
        Err(DomainError::NotFound { kind: "webhook" })
    );
    assert_eq!(
        store.delete_webhook(late.id).await,
        Err(DomainError::NotFound { kind: "webhook" })
    );
    assert_eq!(store.list_webhooks(lab).await.unwrap(), vec![early]);
    // The url is free again once its webhook is gone.
    store
        .insert_webhook(webhook(lab, "https://hooks.example/a", now))
        .await
        .unwrap();
    assert_eq!(store.get_webhook(elsewhere.id).await.unwrap(), elsewhere);
}

fn dead_letter(lab: LabId, at: DateTime<Utc>) -> DeadLetterRecord {
    DeadLetterRecord {
        id: uuid::Uuid::now_v7(),
        lab_id: lab,
        channel: "webhook".into(),
        target: WebhookId::new().to_string(),
        event_id: DriftEventId::new().to_string(),
        attempts: 5,
        last_error: "connection refused".into(),
        last_status: Some(503),
        payload: serde_json::json!({ "text": "drift", "blocks": [{ "type": "section" }] }),
        at,
    }
}

async fn dead_letters(store: &dyn DriftStore) {
    let lab = LabId::new();
    let other = LabId::new();
    let now = Utc::now();
    let middle = dead_letter(lab, now - TimeDelta::minutes(1));
    let newest = dead_letter(lab, now);
    let oldest = dead_letter(lab, now - TimeDelta::minutes(2));
    let theirs = dead_letter(other, now);
    for d in [&middle, &newest, &oldest, &theirs] {
        store.insert_dead_letter(d.clone()).await.unwrap();
    }
    assert_eq!(
        store.list_dead_letters(lab, 10).await.unwrap(),
        vec![newest.clone(), middle.clone(), oldest]
    );
    assert_eq!(
        store.list_dead_letters(lab, 2).await.unwrap(),
        vec![newest, middle]
    );
    assert_eq!(
        store.list_dead_letters(other, 10).await.unwrap(),
        vec![theirs]
    );
    assert_eq!(
        store.list_dead_letters(LabId::new(), 10).await.unwrap(),
        vec![]
    );
}

fn recommendation(env: EnvironmentId, at: DateTime<Utc>) -> RecommendationRecord {
    RecommendationRecord {
        id: RecommendationId::new(),
        lab_id: LabId::new(),
        environment_id: env,
        agent: "drift_analyzer".into(),
        body: serde_json::json!({ "action": "rollback", "confidence": 0.75, "to": "snap-1" }),
        analysis: Some("pandas was upgraded outside the lockfile".into()),
        drift_event_id: Some(DriftEventId::new()),
        created_by: None,
        created_at: at,
    }
}

async fn recommendations(store: &dyn DriftStore) {
    let env = EnvironmentId::new();
    let other = EnvironmentId::new();
    let now = Utc::now();
    let older = recommendation(env, now - TimeDelta::minutes(3));
    let newer = RecommendationRecord {
        analysis: None,
        drift_event_id: None,
        created_by: Some(UserId::new()),
        ..recommendation(env, now)
    };
    let theirs = recommendation(other, now);
    for r in [&newer, &older, &theirs] {
        store.insert_recommendation(r.clone()).await.unwrap();
    }
    assert_eq!(
        store.list_recommendations(env, 10).await.unwrap(),
        vec![newer.clone(), older]
    );
    assert_eq!(
        store.list_recommendations(env, 1).await.unwrap(),
        vec![newer]
    );
    assert_eq!(
        store.list_recommendations(other, 10).await.unwrap(),
        vec![theirs]
    );
    assert_eq!(
        store
            .list_recommendations(EnvironmentId::new(), 10)
            .await
            .unwrap(),
        vec![]
    );
}

fn share(owner: LabId, target: LabId, resource_id: &str, expires: Option<DateTime<Utc>>) -> Share {
    Share {
        id: ShareId::new(),
        owner_lab: owner,
        target_lab: target,
        resource: ShareResource::Environment,
        resource_id: resource_id.to_string(),
        permission: SharePermission::Read,
        created_by: UserId::new(),
        created_at: micros(Utc::now()),
        expires_at: expires.map(micros),
        revoked_at: None,
        revoked_by: None,
    }
}

fn micros(t: DateTime<Utc>) -> DateTime<Utc> {
    westtek_domain::audit::truncate_micros(t)
}

/// Shares (filters, activity at a time, revoke = replace), templates
/// (withdrawn ones hidden unless asked for) and handovers (by environment,
/// by either user, checklist progress kept), each written with its audit.
async fn collaboration(store: &dyn MetadataStore) {
    let a = lab("collab-a");
    let b = lab("collab-b");
    let c = lab("collab-c");
    store
        .commit(
            vec![
                Write::InsertLab(a.clone()),
                Write::InsertLab(b.clone()),
                Write::InsertLab(c.clone()),
            ],
            vec![],
        )
        .await
        .unwrap();
    let now = Utc::now();
    let env = EnvironmentId::new().to_string();
    let forever = share(a.id, b.id, &env, None);
    let soon = share(a.id, c.id, &env, Some(now + TimeDelta::hours(1)));
    let mut other = share(b.id, a.id, "other-resource", None);
    other.resource = ShareResource::Snapshot;
    let entries = store
        .commit(
            vec![
                Write::PutShare(forever.clone()),
                Write::PutShare(soon.clone()),
                Write::PutShare(other.clone()),
            ],
            vec![
                audit("share.create", Some(a.id), &forever.id.to_string()),
                audit("share.create", Some(b.id), &forever.id.to_string()),
            ],
        )
        .await
        .unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(store.get_share(forever.id).await.unwrap(), forever);
    assert!(matches!(
        store.get_share(ShareId::new()).await,
        Err(DomainError::NotFound { .. })
    ));
    let owned = store
        .list_shares(&ShareFilter {
            owner_lab: Some(a.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(owned.len(), 2);
    let to_b = store
        .list_shares(&ShareFilter {
            target_lab: Some(b.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(to_b, vec![forever.clone()]);
    let of_env = |at| ShareFilter {
        resource: Some(ShareResource::Environment),
        resource_id: Some(env.clone()),
        active_at: Some(at),
        ..Default::default()
    };
    assert_eq!(store.list_shares(&of_env(now)).await.unwrap().len(), 2);
    // After the expiry only the open-ended share is active.
    let later = store
        .list_shares(&of_env(now + TimeDelta::hours(2)))
        .await
        .unwrap();
    assert_eq!(later, vec![forever.clone()]);
    // Revoking replaces the record.
    let mut revoked = forever.clone();
    revoked.revoked_at = Some(micros(now));
    revoked.revoked_by = Some(UserId::new());
    store
        .commit(vec![Write::PutShare(revoked.clone())], vec![])
        .await
        .unwrap();
    assert_eq!(store.get_share(forever.id).await.unwrap(), revoked);
    let active = store.list_shares(&of_env(now)).await.unwrap();
    assert_eq!(active, vec![soon.clone()]);

    // Templates.
    let snap = SnapshotId::new();
    let t1 = Template {
        id: TemplateId::new(),
        lab_id: a.id,
        snapshot_id: snap,
        environment_id: EnvironmentId::new(),
        name: "baseline-ml".into(),
        description: "numpy + pandas".into(),
        python_version: "3.11.7".into(),
        packages: vec!["numpy==2.0.0".into()],
        published_by: UserId::new(),
        published_at: micros(now),
        withdrawn_at: None,
    };
    let mut t2 = t1.clone();
    t2.id = TemplateId::new();
    t2.lab_id = b.id;
    t2.snapshot_id = SnapshotId::new();
    t2.published_at = micros(now + TimeDelta::seconds(1));
    store
        .commit(
            vec![
                Write::PutTemplate(t1.clone()),
                Write::PutTemplate(t2.clone()),
            ],
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(store.get_template(t1.id).await.unwrap(), t1);
    assert_eq!(
        store.list_templates(None, None, false).await.unwrap(),
        vec![t2.clone(), t1.clone()]
    );
    assert_eq!(
        store.list_templates(Some(a.id), None, false).await.unwrap(),
        vec![t1.clone()]
    );
    assert_eq!(
        store.list_templates(None, Some(snap), false).await.unwrap(),
        vec![t1.clone()]
    );
    let mut withdrawn = t1.clone();
    withdrawn.withdrawn_at = Some(micros(now));
    store
        .commit(vec![Write::PutTemplate(withdrawn.clone())], vec![])
        .await
        .unwrap();
    assert!(store
        .list_templates(Some(a.id), None, false)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.list_templates(Some(a.id), None, true).await.unwrap(),
        vec![withdrawn]
    );

    // Handovers.
    let from = UserId::new();
    let to = UserId::new();
    let env_id = EnvironmentId::new();
    let mut h = Handover {
        id: HandoverId::new(),
        lab_id: a.id,
        environment_id: env_id,
        from_user: from,
        to_user: to,
        note: "leaving in May".into(),
        read_until: micros(now + TimeDelta::days(30)),
        created_by: from,
        created_at: micros(now),
        checklist: vec![ChecklistItem {
            key: "restore".into(),
            text: "Restore the snapshot".into(),
            source: Some("environment-docs/x/summary.md".into()),
            done_at: None,
            done_by: None,
        }],
    };
    store
        .commit(vec![Write::PutHandover(h.clone())], vec![])
        .await
        .unwrap();
    assert_eq!(store.get_handover(h.id).await.unwrap(), h);
    h.set_done("restore", true, to, micros(now)).unwrap();
    store
        .commit(vec![Write::PutHandover(h.clone())], vec![])
        .await
        .unwrap();
    assert_eq!(store.get_handover(h.id).await.unwrap().progress(), (1, 1));
    for f in [
        HandoverFilter {
            environment_id: Some(env_id),
            ..Default::default()
        },
        HandoverFilter {
            user: Some(from),
            ..Default::default()
        },
        HandoverFilter {
            user: Some(to),
            lab_id: Some(a.id),
            ..Default::default()
        },
    ] {
        assert_eq!(store.list_handovers(&f).await.unwrap(), vec![h.clone()]);
    }
    assert!(store
        .list_handovers(&HandoverFilter {
            user: Some(UserId::new()),
            ..Default::default()
        })
        .await
        .unwrap()
        .is_empty());
    assert!(matches!(
        store.get_handover(HandoverId::new()).await,
        Err(DomainError::NotFound { .. })
    ));
}

/// A user's memberships come in the order they joined (the first is their
/// default lab), whatever the labs' ids; a role change keeps the place; and
/// every change of users or memberships moves `access_generation`.
async fn memberships_keep_the_join_order(store: &dyn MetadataStore) {
    // `older` is created first, so its id sorts first: joining it later must
    // still not put it first.
    let older = lab("join-older");
    let newer = lab("join-newer");
    let u = user("joiner");
    store
        .commit(
            vec![
                Write::InsertLab(older.clone()),
                Write::InsertLab(newer.clone()),
            ],
            vec![],
        )
        .await
        .unwrap();
    let g0 = store.access_generation();
    store
        .commit(
            vec![
                Write::InsertUser {
                    user: u.clone(),
                    password_hash: None,
                },
                Write::PutMembership(Membership {
                    lab_id: newer.id,
                    user_id: u.id,
                    role: Role::Researcher,
                }),
            ],
            vec![],
        )
        .await
        .unwrap();
    let g1 = store.access_generation();
    if let (Some(a), Some(b)) = (g0, g1) {
        assert_ne!(a, b, "adding a user moves the access generation");
    }
    store
        .commit(
            vec![Write::PutMembership(Membership {
                lab_id: older.id,
                user_id: u.id,
                role: Role::LabAdmin,
            })],
            vec![],
        )
        .await
        .unwrap();
    let order = |ms: Vec<Membership>| ms.iter().map(|m| m.lab_id).collect::<Vec<_>>();
    assert_eq!(
        order(store.memberships_of(u.id).await.unwrap()),
        vec![newer.id, older.id],
        "the lab joined first stays first"
    );
    // A role change keeps the place.
    store
        .commit(
            vec![Write::PutMembership(Membership {
                lab_id: newer.id,
                user_id: u.id,
                role: Role::LabAdmin,
            })],
            vec![],
        )
        .await
        .unwrap();
    let ms = store.memberships_of(u.id).await.unwrap();
    assert_eq!(order(ms.clone()), vec![newer.id, older.id]);
    assert_eq!(ms[0].role, Role::LabAdmin);
    // Leaving and joining again puts the lab last.
    let g2 = store.access_generation();
    store
        .commit(
            vec![Write::DeleteMembership {
                lab_id: newer.id,
                user_id: u.id,
            }],
            vec![],
        )
        .await
        .unwrap();
    if let (Some(a), Some(b)) = (g2, store.access_generation()) {
        assert_ne!(a, b, "removing a membership moves the access generation");
    }
    store
        .commit(
            vec![Write::PutMembership(Membership {
                lab_id: newer.id,
                user_id: u.id,
                role: Role::Researcher,
            })],
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        order(store.memberships_of(u.id).await.unwrap()),
        vec![older.id, newer.id]
    );
    // Changes of other records leave it alone.
    let g3 = store.access_generation();
    store
        .commit(vec![], vec![audit("noop", None, "x")])
        .await
        .unwrap();
    assert_eq!(g3, store.access_generation());
}

async fn invitations(store: &dyn MetadataStore) {
    let l = lab("inviting");
    let other = lab("inviting-other");
    let admin = user("inviter");
    let invitee = user("invitee");
    store
        .commit(
            vec![
                Write::InsertLab(l.clone()),
                Write::InsertLab(other.clone()),
                Write::InsertUser {
                    user: admin.clone(),
                    password_hash: None,
                },
                Write::InsertUser {
                    user: invitee.clone(),
                    password_hash: None,
                },
            ],
            vec![],
        )
        .await
        .unwrap();
    let now = Utc::now();
    let first = Invitation::new(l.id, invitee.id, Role::Researcher, admin.id, now).unwrap();
    let mut second = Invitation::new(
        other.id,
        invitee.id,
        Role::LabAdmin,
        admin.id,
        now + TimeDelta::seconds(1),
    )
    .unwrap();
    second.expires_at = now + TimeDelta::hours(1);
    let entries = store
        .commit(
            vec![
                Write::InsertInvitation(first.clone()),
                Write::InsertInvitation(second.clone()),
            ],
            vec![audit(
                "lab.invitation_create",
                Some(l.id),
                &first.id.to_string(),
            )],
        )
        .await
        .unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(store.get_invitation(first.id).await.unwrap(), first);
    assert!(matches!(
        store.get_invitation(InvitationId::new()).await,
        Err(DomainError::NotFound { .. })
    ));
    // Invitations name an existing lab and user, and ids are unique.
    let stray = Invitation::new(LabId::new(), invitee.id, Role::Researcher, admin.id, now).unwrap();
    let r = store
        .commit(vec![Write::InsertInvitation(stray)], vec![])
        .await;
    assert!(matches!(r, Err(DomainError::NotFound { .. })), "{r:?}");
    let ghost = Invitation::new(l.id, UserId::new(), Role::Researcher, admin.id, now).unwrap();
    let r = store
        .commit(vec![Write::InsertInvitation(ghost)], vec![])
        .await;
    assert!(matches!(r, Err(DomainError::NotFound { .. })), "{r:?}");
    let r = store
        .commit(vec![Write::InsertInvitation(first.clone())], vec![])
        .await;
    assert!(r.is_err(), "duplicate id accepted");

    // Listing: newest first, by lab, by user, open at a time.
    let mine = store
        .list_invitations(&InvitationFilter {
            user_id: Some(invitee.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(mine, vec![second.clone(), first.clone()]);
    let of_lab = store
        .list_invitations(&InvitationFilter {
            lab_id: Some(l.id),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(of_lab, vec![first.clone()]);
    let open_later = store
        .list_invitations(&InvitationFilter {
            user_id: Some(invitee.id),
            open_at: Some(now + TimeDelta::hours(2)),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(open_later, vec![first.clone()], "the second has expired");

    // Closing: once, atomically with the membership; a second decision
    // conflicts and changes nothing.
    let at = now + TimeDelta::minutes(5);
    store
        .commit(
            vec![
                Write::CloseInvitation {
                    id: first.id,
                    state: InvitationState::Accepted,
                    at,
                    by: invitee.id,
                },
                Write::PutMembership(Membership {
                    lab_id: l.id,
                    user_id: invitee.id,
                    role: Role::Researcher,
                }),
            ],
            vec![audit(
                "lab.invitation_accept",
                Some(l.id),
                &first.id.to_string(),
            )],
        )
        .await
        .unwrap();
    let closed = store.get_invitation(first.id).await.unwrap();
    assert_eq!(closed.state, InvitationState::Accepted);
    assert_eq!(closed.closed_at, Some(at));
    assert_eq!(closed.closed_by, Some(invitee.id));
    let r = store
        .commit(
            vec![
                Write::DeleteMembership {
                    lab_id: l.id,
                    user_id: invitee.id,
                },
                Write::CloseInvitation {
                    id: first.id,
                    state: InvitationState::Revoked,
                    at,
                    by: admin.id,
                },
            ],
            vec![],
        )
        .await;
    assert!(matches!(r, Err(DomainError::Conflict(_))), "{r:?}");
    assert_eq!(
        store.memberships_of(invitee.id).await.unwrap().len(),
        1,
        "the failed commit removed nothing"
    );
    assert_eq!(
        store.get_invitation(first.id).await.unwrap().state,
        InvitationState::Accepted
    );
    let r = store
        .commit(
            vec![Write::CloseInvitation {
                id: InvitationId::new(),
                state: InvitationState::Declined,
                at,
                by: invitee.id,
            }],
            vec![],
        )
        .await;
    assert!(matches!(r, Err(DomainError::NotFound { .. })), "{r:?}");
    store
        .commit(
            vec![Write::CloseInvitation {
                id: second.id,
                state: InvitationState::Declined,
                at,
                by: invitee.id,
            }],
            vec![],
        )
        .await
        .unwrap();
    let open_now = store
        .list_invitations(&InvitationFilter {
            user_id: Some(invitee.id),
            open_at: Some(now),
            ..Default::default()
        })
        .await
        .unwrap();
    assert!(open_now.is_empty(), "{open_now:?}");
}
