//! Ports: the traits every adapter implements. Services hold them as
//! `Arc<dyn Port>` and never name an adapter.

use crate::audit::AuditHead;
use crate::{
    AuditDraft, AuditEntry, AuditFilter, DomainEvent, Environment, EnvironmentFilter,
    EnvironmentId, Handover, HandoverFilter, HandoverId, Invitation, InvitationFilter,
    InvitationId, InvitationState, Job, JobId, JobStatus, Lab, LabId, Membership, PackageSpec,
    Page, Principal, Result, Share, ShareFilter, ShareId, Snapshot, SnapshotFilter, SnapshotId,
    StoredToken, Template, TemplateId, TokenKind, User, UserCredentials, UserId,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::path::PathBuf;
use std::sync::Arc;

/// The time source, injectable for tests.
pub trait Clock: Send + Sync {
    /// Now, in UTC.
    fn now(&self) -> DateTime<Utc>;
}

/// The real clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// One change in a unit of work. A `commit` applies all of its writes and
/// audit entries atomically, or none of them.
#[derive(Clone, Debug)]
pub enum Write {
    /// Fails with `Conflict` when the name is taken.
    InsertLab(Lab),
    UpdateLab(Lab),
    /// Fails with `Conflict` when the username is taken.
    InsertUser {
        user: User,
        password_hash: Option<String>,
    },
    SetPassword {
        user_id: UserId,
        password_hash: String,
    },
    /// Disables (or enables again) a user: a disabled user is refused on
    /// every request. Fails with `NotFound` when the user does not exist.
    SetUserDisabled {
        user_id: UserId,
        disabled: bool,
    },
    /// Sets or clears a user's IT admin flag. Fails with `NotFound` when
    /// the user does not exist.
    SetItAdmin {
        user_id: UserId,
        it_admin: bool,
    },
    /// Adds the user to the lab with a role, or changes their role there.
    /// A new membership goes last in the user's join order (see
    /// `MetadataStore::memberships_of`); a role change keeps its place.
    PutMembership(Membership),
    /// Removes the user from the lab; fails with `NotFound` when they are
    /// not a member.
    DeleteMembership {
        lab_id: LabId,
        user_id: UserId,
    },
    InsertToken(StoredToken),
    /// Fails with `NotFound` when the token is already gone, so a one-time
    /// token can only be used once.
    DeleteToken {
        hash: String,
    },
    /// Fails with `Conflict` on a duplicate name in the lab and with
    /// `QuotaExceeded` when the lab already holds `max_in_lab` environments.
    InsertEnvironment {
        env: Environment,
        max_in_lab: Option<u32>,
    },
    /// Fails with `Conflict` when the stored version differs from
    /// `env.version` (someone else changed it); stores `version + 1`.
    UpdateEnvironment(Environment),
    DeleteEnvironment(EnvironmentId),
    InsertJob(Job),
    UpdateJob(Job),
    /// Records that `consumer` handled event `event_id`; fails with
    /// `Conflict` when it already did (idempotent consumers).
    MarkEventHandled {
        consumer: String,
        event_id: String,
    },
    InsertSnapshot(Snapshot),
    /// Fails with `NotFound` when the snapshot is gone.
    UpdateSnapshot(Snapshot),
    /// Fails with `NotFound` when the snapshot is gone.
    DeleteSnapshot(SnapshotId),
    /// Inserts or replaces a share (revoking replaces it).
    PutShare(Share),
    /// Inserts or replaces a template (withdrawing replaces it).
    PutTemplate(Template),
    /// Inserts or replaces a handover (checklist progress replaces it).
    PutHandover(Handover),
    /// Inserts a new invitation; fails with `NotFound` when its lab or
    /// user does not exist and with `Conflict` on a duplicate id.
    InsertInvitation(Invitation),
    /// Closes a pending invitation (accepted, declined, revoked). Fails
    /// with `NotFound` when it does not exist and with `Conflict` when it
    /// is no longer pending, so of two racing decisions only one commits.
    CloseInvitation {
        id: InvitationId,
        state: InvitationState,
        at: DateTime<Utc>,
        by: UserId,
    },
}

impl Write {
    /// Whether the write changes who may do what: users and memberships.
    /// Stores bump their `access_generation` after committing one.
    pub fn changes_access(&self) -> bool {
        // A new write that changes a user's rights (an IT admin flag, a
        // disabled state, a deletion) belongs here too.
        matches!(
            self,
            Write::InsertUser { .. }
                | Write::SetUserDisabled { .. }
                | Write::SetItAdmin { .. }
                | Write::PutMembership(_)
                | Write::DeleteMembership { .. }
        )
    }
}

/// The audit trail.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Appends entries on their own (for actions that change nothing else).
    async fn append(&self, drafts: Vec<AuditDraft>) -> Result<Vec<AuditEntry>>;
    /// Newest first, filtered.
    async fn list_audit(&self, filter: &AuditFilter) -> Result<Page<AuditEntry>>;
    /// The whole trail in chain order and the stored head, for verification.
    async fn audit_chain(&self) -> Result<(Vec<AuditEntry>, Option<AuditHead>)>;
}

/// The metadata store (SQLite locally, DocumentDB on AWS).
#[async_trait]
pub trait MetadataStore: AuditLog {
    /// Applies every write and appends every audit draft in one transaction.
    ///
    /// # Errors
    /// The first write's failure; nothing is applied then.
    async fn commit(&self, writes: Vec<Write>, audit: Vec<AuditDraft>) -> Result<Vec<AuditEntry>>;

    async fn get_lab(&self, id: LabId) -> Result<Lab>;
    async fn find_lab_by_name(&self, name: &str) -> Result<Option<Lab>>;
    async fn list_labs(&self) -> Result<Vec<Lab>>;

    async fn get_user(&self, id: UserId) -> Result<User>;
    async fn find_user_by_username(&self, username: &str) -> Result<Option<UserCredentials>>;
    /// Users of a lab, or every user when `lab` is `None`.
    async fn list_users(&self, lab: Option<LabId>) -> Result<Vec<User>>;
    /// The user's memberships in the order they joined, oldest first (a
    /// role change keeps the place). The first is the user's default lab,
    /// so joining another lab never changes it.
    async fn memberships_of(&self, user: UserId) -> Result<Vec<Membership>>;
    async fn count_users(&self) -> Result<u64>;

    /// A stored token by hash, if present and of `kind` (expiry is the
    /// caller's check).
    async fn get_token(&self, hash: &str, kind: TokenKind) -> Result<Option<StoredToken>>;

    async fn get_environment(&self, id: EnvironmentId) -> Result<Environment>;
    async fn list_environments(&self, filter: &EnvironmentFilter) -> Result<Page<Environment>>;

    async fn get_job(&self, id: JobId) -> Result<Job>;

    async fn get_snapshot(&self, id: SnapshotId) -> Result<Snapshot>;
    /// Newest first.
    async fn list_snapshots(&self, filter: &SnapshotFilter) -> Result<Page<Snapshot>>;
    /// Bytes the lab's complete and creating snapshots added to the vault.
    async fn lab_storage_bytes(&self, lab: LabId) -> Result<u64>;

    /// A number that changes after every commit made through this store
    /// instance, for read caches in the same process; `None` when the
    /// adapter cannot tell (then callers must not cache).
    fn generation(&self) -> Option<u64> {
        None
    }

    /// A number that changes after every commit made through this store
    /// instance that changed users or memberships (`Write::changes_access`),
    /// so a cache of who may do what can be dropped the moment access
    /// changes; `None` when the adapter cannot tell (then callers must not
    /// cache).
    fn access_generation(&self) -> Option<u64> {
        None
    }

    async fn list_jobs(&self, status: Option<JobStatus>) -> Result<Vec<Job>>;

    async fn get_share(&self, id: ShareId) -> Result<Share>;
    /// Newest first.
    async fn list_shares(&self, filter: &ShareFilter) -> Result<Vec<Share>>;
    async fn get_template(&self, id: TemplateId) -> Result<Template>;
    /// Newest first; withdrawn ones only when `include_withdrawn`.
    async fn list_templates(
        &self,
        lab: Option<LabId>,
        snapshot: Option<SnapshotId>,
        include_withdrawn: bool,
    ) -> Result<Vec<Template>>;
    async fn get_handover(&self, id: HandoverId) -> Result<Handover>;
    /// Newest first.
    async fn list_handovers(&self, filter: &HandoverFilter) -> Result<Vec<Handover>>;

    /// One invitation; `NotFound` when there is none.
    async fn get_invitation(&self, id: InvitationId) -> Result<Invitation>;
    /// Newest first.
    async fn list_invitations(&self, filter: &InvitationFilter) -> Result<Vec<Invitation>>;
}

/// Something delivered by the bus; `ack` after handling it (at-least-once).
pub struct Delivery {
    pub event: DomainEvent,
    pub ack: Box<dyn Ack>,
}

/// Acknowledges one delivery.
#[async_trait]
pub trait Ack: Send + Sync {
    async fn ack(self: Box<Self>) -> Result<()>;
}

/// The event bus (in-process, Redis Streams, EventBridge+SQS).
#[async_trait]
pub trait EventBus: Send + Sync {
    /// Publishes one event.
    async fn publish(&self, event: &DomainEvent) -> Result<()>;
    /// Joins consumer group `group`: each event reaches one member of each
    /// group, at least once.
    async fn subscribe(&self, group: &str) -> Result<EventStream>;
    /// Whether the bus answers now (readiness); the default assumes it
    /// does (in-process).
    ///
    /// # Errors
    /// `Unavailable`/`Internal` naming what does not answer.
    async fn check(&self) -> Result<()> {
        Ok(())
    }
}

/// The deliveries of one subscription.
pub type EventStream = futures::stream::BoxStream<'static, Delivery>;

/// Verifies bearer tokens (platform-signed locally, Cognito on AWS).
#[async_trait]
pub trait TokenVerifier: Send + Sync {
    /// The principal the token speaks for.
    ///
    /// # Errors
    /// `Unauthenticated` for a malformed, expired or untrusted token.
    async fn verify(&self, token: &str) -> Result<Principal>;
}

/// Receives progress of long work.
pub trait ProgressSink: Send + Sync {
    /// `fraction` in 0.0–1.0 and what is happening now.
    fn update(&self, fraction: f32, message: &str);
}

/// What to build for a new environment.
#[derive(Clone, Debug)]
pub struct BuildSpec {
    pub env_id: EnvironmentId,
    pub lab_id: LabId,
    pub python_version: String,
    pub packages: Vec<PackageSpec>,
}

/// What a finished build produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BuildOutcome {
    /// Exact interpreter version, e.g. `3.11.7`.
    pub python_version: String,
    /// Every installed distribution as `name==version`, sorted.
    pub installed: Vec<String>,
    /// BLAKE3 of the interpreter version and `installed`.
    pub configuration_hash: String,
}

/// Builds and removes the files of environments (venvs locally, volumes on
/// AWS).
#[async_trait]
pub trait EnvironmentBuilder: Send + Sync {
    /// Builds the environment; on failure leaves nothing behind.
    ///
    /// # Errors
    /// `Upstream` with a stable code (`package_not_found`,
    /// `dependency_conflict`, `python_unavailable`, `install_failed`).
    async fn build(
        &self,
        spec: &BuildSpec,
        progress: Arc<dyn ProgressSink>,
    ) -> Result<BuildOutcome>;
    /// Removes everything the environment had. Removing nothing is fine.
    async fn remove(&self, env: EnvironmentId) -> Result<()>;
    /// Where the environment's files live (for snapshots and drift).
    fn root(&self, env: EnvironmentId) -> PathBuf;
}

/// Where a Jupyter server listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UpstreamAddr {
    /// A Unix socket only the platform can open (local servers: no TCP
    /// port another environment could reach).
    Unix(PathBuf),
    /// `http://HOST:PORT` (no trailing slash), for servers elsewhere.
    Tcp(String),
}

/// A running Jupyter server as the gateway needs it.
#[derive(Clone, Debug)]
pub struct JupyterUpstream {
    pub addr: UpstreamAddr,
    /// Jupyter's own token, injected by the gateway; never sent to browsers.
    pub token: String,
}

/// What the runtime knows about one server.
#[derive(Clone, Debug)]
pub struct ServerInfo {
    pub env_id: EnvironmentId,
    pub lab_id: LabId,
    pub started_at: DateTime<Utc>,
    pub last_activity: DateTime<Utc>,
    pub pid: Option<u32>,
}

/// Limits every process of one environment runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceLimits {
    /// Address space of each process, bytes.
    pub memory_bytes: u64,
    /// Processes (and threads) of the environment at once.
    pub max_processes: u32,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        let q = crate::LabQuotas::default();
        Self::from_quotas(&q)
    }
}

impl ResourceLimits {
    /// The limits a lab's quotas set.
    pub fn from_quotas(q: &crate::LabQuotas) -> Self {
        Self {
            memory_bytes: u64::from(q.max_memory_mb) * 1024 * 1024,
            max_processes: q.max_processes,
        }
    }
}

/// What to launch.
#[derive(Clone, Debug)]
pub struct LaunchSpec {
    pub env_id: EnvironmentId,
    pub lab_id: LabId,
    /// Whose environment it is (on AWS: whose EFS access point holds the
    /// notebooks).
    pub researcher_id: crate::UserId,
    /// The URL prefix Jupyter serves under, e.g. `/jupyter/{id}/`.
    pub base_url: String,
    /// Limits of the server and everything it starts.
    pub limits: ResourceLimits,
}

/// Runs Jupyter servers (local processes, ECS tasks).
#[async_trait]
pub trait JupyterRuntime: Send + Sync {
    /// Starts a server and waits until it answers.
    ///
    /// # Errors
    /// `Conflict` when already running; `Upstream` when it fails to start.
    async fn start(&self, spec: &LaunchSpec) -> Result<ServerInfo>;
    /// Stops a server; stopping a stopped one is fine.
    async fn stop(&self, env: EnvironmentId) -> Result<()>;
    /// Where to proxy to, when running.
    async fn upstream(&self, env: EnvironmentId) -> Option<JupyterUpstream>;
    /// Marks activity (the gateway calls this on traffic) for idle culling.
    fn touch(&self, env: EnvironmentId);
    /// Every server this runtime runs.
    async fn running(&self) -> Vec<ServerInfo>;
    /// Servers that ended on their own since the last call, and how.
    async fn take_exited(&self) -> Vec<(EnvironmentId, crate::JupyterExit)>;
    /// Stops everything (shutdown).
    async fn stop_all(&self);
}

/// What to capture into a snapshot.
#[derive(Clone, Debug)]
pub struct CaptureRequest {
    pub env_id: EnvironmentId,
    pub lab_id: LabId,
    /// The engine's id of the parent snapshot, for incremental capture.
    pub parent: Option<String>,
    pub notes: Option<String>,
    /// Capture these files instead of the environment's own folder: what
    /// an adopted environment's agent uploaded.
    pub staged: Option<StagedTree>,
}

/// An adopted environment's files as its agent uploaded them, unpacked by
/// the platform into `dir`: `dir/<environment id>/` in the environment
/// layout (`venv/`, `home/`), and, when the agent sent the interpreter's
/// closure, `dir/base/` (its files at their absolute paths) with
/// `dir/closure.json`.
#[derive(Clone, Debug)]
pub struct StagedTree {
    pub dir: std::path::PathBuf,
    /// Where the files were on the lab machine (the venv and notebooks
    /// paths restores relocate from).
    pub origin: crate::AdoptedFrom,
    /// The inventory the agent took of them (the platform never reads the
    /// uploaded files beyond storing them: a symlink in them may point
    /// anywhere on this host).
    pub inventory: serde_json::Value,
    /// The interpreter's closure the agent sent (its files under
    /// `dir/base/`), if any.
    pub closure: Option<serde_json::Value>,
}

/// What a capture produced.
#[derive(Clone, Debug)]
pub struct CaptureOutcome {
    /// The engine's id of the snapshot.
    pub engine_id: String,
    /// Where it is, e.g. `vault:///data/vault#<id>` or `s3://bucket/prefix#<id>`.
    pub location: String,
    /// Merkle root of the snapshot's manifests.
    pub checksum: String,
    pub size_bytes: u64,
    pub stored_bytes_added: u64,
    pub metadata: crate::SnapshotMetadata,
    /// Files that kept changing while they were read (captured as last seen).
    pub changed_during_read: Vec<String>,
    /// Entries that cannot be captured (sockets, devices), with the reason.
    pub skipped: Vec<String>,
}

/// What a restore did.
#[derive(Clone, Debug, Default)]
pub struct RestoreOutcome {
    pub files: u64,
    pub bytes: u64,
    /// Files rewritten so the environment works at its new path.
    pub relocated: Vec<String>,
}

/// Captures and restores whole environments (the vault locally; volume
/// snapshots plus the vault on AWS).
#[async_trait]
pub trait SnapshotEngine: Send + Sync {
    /// Captures the environment's layers and inventory.
    ///
    /// # Errors
    /// `Conflict` when the environment is busy (a package install runs),
    /// `Upstream`/`Internal` when the vault fails; nothing is left listed.
    async fn capture(
        &self,
        req: &CaptureRequest,
        progress: Arc<dyn ProgressSink>,
    ) -> Result<CaptureOutcome>;
    /// Restores snapshot `engine_id` (taken of `source`) as environment
    /// `target`'s files; `target == source` restores in place.
    async fn restore(
        &self,
        engine_id: &str,
        source: EnvironmentId,
        target: EnvironmentId,
        progress: Arc<dyn ProgressSink>,
    ) -> Result<RestoreOutcome>;
    /// The inventory stored with a snapshot (JSON).
    async fn inventory(&self, engine_id: &str) -> Result<serde_json::Value>;
    /// Inventory findings and file-level changes from `a` to `b` (JSON).
    async fn diff(&self, a: &str, b: &str) -> Result<serde_json::Value>;
    /// Forgets a snapshot (its unshared bytes go at the next gc).
    async fn delete(&self, engine_id: &str) -> Result<()>;
    /// Restores into a scratch dir, starts the kernel and imports every
    /// top-level module the notebooks import.
    async fn drill(
        &self,
        engine_id: &str,
        progress: Arc<dyn ProgressSink>,
    ) -> Result<crate::DrillResult>;
    /// Removes data no snapshot references; safe while snapshots run.
    async fn gc(&self) -> Result<serde_json::Value>;
    /// Checks the store; `read_data` reads every byte.
    async fn verify(&self, read_data: bool) -> Result<serde_json::Value>;
    /// The environment is gone: drop what the engine keeps for it between
    /// captures (the change journal that makes incrementals cheap).
    async fn forget_environment(&self, _env: crate::EnvironmentId) {}
}
