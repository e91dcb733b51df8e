//! The data models of the seed (labs, users, environments, jobs, audit) and
//! their validation rules.

use crate::{DomainError, EnvironmentId, JobId, LabId, Slug, SnapshotId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// A role a user holds in a lab (`researcher`, `lab_admin`) or globally
/// (`it_admin`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Researcher,
    LabAdmin,
    ItAdmin,
}

impl Role {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Researcher => "researcher",
            Role::LabAdmin => "lab_admin",
            Role::ItAdmin => "it_admin",
        }
    }

    /// Parses the wire name.
    ///
    /// # Errors
    /// `Validation` for anything but the three role names.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        match s {
            "researcher" => Ok(Role::Researcher),
            "lab_admin" => Ok(Role::LabAdmin),
            "it_admin" => Ok(Role::ItAdmin),
            _ => Err(DomainError::invalid(
                "role",
                "must be researcher, lab_admin or it_admin",
            )),
        }
    }
}

/// Per-lab limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabQuotas {
    /// Most environments the lab may hold.
    pub max_environments: u32,
    /// Most Jupyter servers the lab may run at once.
    pub max_running_servers: u32,
    /// Most bytes the lab's snapshots may add to the vault (`None`: no limit).
    #[serde(default)]
    pub max_storage_bytes: Option<u64>,
    /// Address space of each process of a Jupyter server, kernel or
    /// terminal, MiB: a runaway allocation fails there.
    #[serde(default = "default_memory_mb")]
    pub max_memory_mb: u32,
    /// Processes and threads one environment may run at once (root hosts,
    /// where each environment has its own uid).
    #[serde(default = "default_processes")]
    pub max_processes: u32,
}

/// Smallest and largest accepted `max_memory_mb`.
pub const MEMORY_MB_RANGE: (u32, u32) = (1024, 1_048_576);
/// Smallest and largest accepted `max_processes`.
pub const PROCESSES_RANGE: (u32, u32) = (32, 65_536);

fn default_memory_mb() -> u32 {
    8192
}

fn default_processes() -> u32 {
    512
}

impl Default for LabQuotas {
    fn default() -> Self {
        LabQuotas {
            max_environments: 50,
            max_running_servers: 10,
            max_storage_bytes: None,
            max_memory_mb: default_memory_mb(),
            max_processes: default_processes(),
        }
    }
}

/// A lab: the tenant every resource belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Lab {
    pub id: LabId,
    pub name: Slug,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
    pub quotas: LabQuotas,
}

/// A platform user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub username: Slug,
    pub display_name: String,
    /// Global IT administrator: reads every lab, acts in one only explicitly.
    pub it_admin: bool,
    pub created_at: DateTime<Utc>,
    /// Created from an external identity provider's token (Cognito) on the
    /// user's first sign-in: the provider's groups stay the truth for the
    /// user's memberships and IT admin flag, re-synced from each new token.
    /// Local users (`false`) keep the store as the truth.
    #[serde(default)]
    pub idp_managed: bool,
    /// Refused on every request, whatever token they bring (an identity
    /// provider's valid token included), until enabled again.
    #[serde(default)]
    pub disabled: bool,
}

/// A user's role in one lab.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub lab_id: LabId,
    pub user_id: UserId,
    pub role: Role,
}

/// Who is calling, as established by a verified token.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    pub user_id: UserId,
    pub username: String,
    pub it_admin: bool,
    /// Labs the caller belongs to and the role in each.
    pub memberships: Vec<LabRole>,
}

/// One entry of a principal's memberships.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabRole {
    pub lab_id: LabId,
    pub role: Role,
}

impl Principal {
    /// The caller's role in `lab`, if a member.
    pub fn role_in(&self, lab: LabId) -> Option<Role> {
        self.memberships
            .iter()
            .find(|m| m.lab_id == lab)
            .map(|m| m.role)
    }
}

/// How much an environment matters to the lab.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Criticality {
    Low,
    #[default]
    Medium,
    High,
    Critical,
}

/// Drift of an environment against its baseline snapshot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DriftStatus {
    #[default]
    Stable,
    MinorDrift,
    CriticalDrift,
}

impl DriftStatus {
    /// The wire name.
    pub fn as_str(&self) -> &'static str {
        match self {
            DriftStatus::Stable => "STABLE",
            DriftStatus::MinorDrift => "MINOR_DRIFT",
            DriftStatus::CriticalDrift => "CRITICAL_DRIFT",
        }
    }
}

/// Where the environment's compute lives (seed: `container_info`). Locally
/// only `jupyter_url` is set; the AWS fields are filled by the ECS adapter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerInfo {
    pub task_arn: Option<String>,
    pub cluster_name: Option<String>,
    pub jupyter_url: Option<String>,
    pub efs_access_point: Option<String>,
    pub ebs_volume_id: Option<String>,
    /// How the last Jupyter server ended when nobody asked it to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<JupyterExit>,
}

/// A Jupyter server that ended on its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JupyterExit {
    pub at: DateTime<Utc>,
    /// `idle` (culled), `shut_down` (from inside JupyterLab), `crashed`
    /// (kept exiting), `memory_limit` or `process_limit` (it hit the lab's
    /// limit).
    pub reason: String,
    /// What to tell the researcher.
    pub message: String,
}

/// Descriptive metadata of an environment (seed: `metadata`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvironmentMetadata {
    pub experiment_id: Option<String>,
    pub funding_source: Option<String>,
    pub criticality: Criticality,
    /// Installed distributions as `name==version`, filled after the build.
    pub jupyter_packages: Vec<String>,
}

/// Characters that start a PEP 440 version specifier.
const SPECIFIER_OPERATORS: [char; 5] = ['=', '<', '>', '~', '!'];

/// A requested package, optionally pinned (`numpy`, `numpy==1.26.4`,
/// `pandas>=2,<3`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackageSpec {
    pub name: String,
    /// A PEP 440 version specifier such as `==1.26.4` or `>=2,<3`.
    pub version: Option<String>,
}

impl PackageSpec {
    /// Parses `name` or `name<specifier>`.
    ///
    /// Only PEP 508 names and specifier characters are allowed, so nothing
    /// that reaches the installer can be taken for an option, URL or path.
    ///
    /// # Errors
    /// `Validation` naming the package text.
    pub fn parse(s: &str) -> Result<Self, DomainError> {
        let s = s.trim();
        let split = s.find(SPECIFIER_OPERATORS).unwrap_or(s.len());
        let (name, spec) = s.split_at(split);
        Self::new(name.trim(), Some(spec.trim()).filter(|v| !v.is_empty()))
    }

    /// Builds and validates a spec from its parts.
    ///
    /// # Errors
    /// `Validation` when the name is not a PEP 508 name or the specifier has
    /// characters outside PEP 440.
    pub fn new(name: &str, version: Option<&str>) -> Result<Self, DomainError> {
        let name_ok = !name.is_empty()
            && name.len() <= 100
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            && name.starts_with(|c: char| c.is_ascii_alphanumeric())
            && name.ends_with(|c: char| c.is_ascii_alphanumeric());
        if !name_ok {
            return Err(DomainError::invalid(
                "packages",
                format!("'{name}' is not a valid package name"),
            ));
        }
        if let Some(v) = version {
            let first_is_op = v.starts_with(SPECIFIER_OPERATORS);
            let chars_ok = v.len() <= 100
                && v.chars().all(|c| {
                    c.is_ascii_alphanumeric()
                        || matches!(c, '=' | '<' | '>' | '~' | '!' | '.' | '*' | '+' | ',' | ' ')
                });
            if !first_is_op || !chars_ok {
                return Err(DomainError::invalid(
                    "packages",
                    format!("'{v}' is not a valid version specifier for {name} (e.g. ==1.2.3 or >=1,<2)"),
                ));
            }
        }
        Ok(PackageSpec {
            name: name.to_string(),
            version: version.map(|v| v.replace(' ', "")),
        })
    }

    /// The requirement as the installer takes it.
    pub fn requirement(&self) -> String {
        match &self.version {
            Some(v) => format!("{}{}", self.name, v),
            None => self.name.clone(),
        }
    }
}

/// Lifecycle of an environment's files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnvironmentStatus {
    /// Being built by a job.
    Provisioning,
    /// Built and usable.
    Ready,
    /// Being removed.
    Deleting,
}

/// State of the environment's Jupyter server.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JupyterStatus {
    #[default]
    Stopped,
    Starting,
    Running,
}

/// A Jupyter environment (seed data model plus build details).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    pub id: EnvironmentId,
    pub lab_id: LabId,
    pub researcher_id: UserId,
    pub name: Slug,
    pub python_version: String,
    pub packages: Vec<PackageSpec>,
    pub status: EnvironmentStatus,
    pub jupyter_status: JupyterStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_snapshot: Option<DateTime<Utc>>,
    pub drift_status: DriftStatus,
    /// BLAKE3 of the interpreter version and the resolved package set.
    pub configuration_hash: Option<String>,
    pub container_info: ContainerInfo,
    pub metadata: EnvironmentMetadata,
    /// The snapshot drift is measured against, when the lab pinned one
    /// (otherwise the latest complete snapshot).
    #[serde(default)]
    pub baseline_snapshot_id: Option<SnapshotId>,
    /// The snapshot the environment's files last equalled: the newest
    /// snapshot taken of it, or the one it was restored from (in place or
    /// into this new environment). Drift is measured against the pinned
    /// baseline when there is one, else against this.
    #[serde(default)]
    pub current_baseline_id: Option<SnapshotId>,
    /// Which snapshots to keep.
    #[serde(default)]
    pub retention: RetentionPolicy,
    /// Run a restore drill of the latest snapshot when its last drill is
    /// older than this many days (`None`: only on demand).
    #[serde(default)]
    pub drill_interval_days: Option<u32>,
    /// Set when the environment lives on a lab machine and was adopted
    /// there by `westtek agent adopt` (the platform did not build it and
    /// cannot read its files: its agent reports them).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<AdoptedFrom>,
    /// The credential of the environment's agent (only its hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_credential: Option<AgentCredential>,
    /// Optimistic-concurrency version; every update must carry the version
    /// it read and the store increments it.
    pub version: u64,
}

/// Where an adopted environment lives.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdoptedFrom {
    /// The machine's host name, as its agent reported it.
    pub host: String,
    /// The venv's absolute path there.
    pub venv_path: String,
    /// The notebooks folder's absolute path there.
    pub notebooks_path: String,
}

/// The credential an environment's agent authenticates with. It opens only
/// the agent API (`/api/agent/v1/…`) and only for this environment; the
/// secret is shown once, only its BLAKE3 hash is kept, and issuing a new
/// one or deleting the environment revokes it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentCredential {
    /// Short id for the audit trail (never the secret).
    pub id: String,
    /// BLAKE3 of the secret, hex.
    pub secret_hash: String,
    pub issued_at: DateTime<Utc>,
    pub issued_by: UserId,
}

/// Which snapshots of an environment to keep; the rest are deleted after
/// each new snapshot. A snapshot kept by any rule stays; pinned baselines
/// always stay. All `None`: keep everything.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionPolicy {
    pub keep_last: Option<u32>,
    /// The newest snapshot of each of the last N days.
    pub keep_daily: Option<u32>,
    /// The newest snapshot of each of the last N months.
    pub keep_monthly: Option<u32>,
}

/// Lifecycle of a snapshot record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotStatus {
    /// Being written; not restorable.
    Creating,
    /// Written, read back and verified.
    Complete,
    /// Abandoned; nothing of it is referenced.
    Failed,
}

/// What the seed asks to know about a snapshot (`metadata`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMetadata {
    pub jupyter_version: Option<String>,
    /// `name==version`, sorted.
    pub installed_packages: Vec<String>,
    pub notebook_count: u32,
    pub configuration_files: Vec<String>,
    pub notes: Option<String>,
}

/// Outcome of a restore drill: restore to a temp dir, start the kernel,
/// import what the notebooks import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrillResult {
    pub passed: bool,
    pub at: DateTime<Utc>,
    pub duration_ms: u64,
    /// Top-level modules imported in the restored kernel.
    pub modules_checked: Vec<String>,
    /// What failed, in words.
    pub failures: Vec<String>,
}

/// A snapshot of an environment (seed data model plus lifecycle).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub id: SnapshotId,
    pub lab_id: LabId,
    pub environment_id: EnvironmentId,
    pub created_by: UserId,
    pub timestamp: DateTime<Utc>,
    pub status: SnapshotStatus,
    /// Where the bytes are: the vault's location and the snapshot's id in it.
    pub s3_location: String,
    /// The vault's own id of this snapshot.
    pub vault_snapshot_id: Option<String>,
    /// Logical size of the environment (all layers).
    pub size_bytes: u64,
    /// Bytes this snapshot added to the vault (after dedup and compression).
    pub stored_bytes_added: u64,
    /// Merkle root of the snapshot's manifests.
    pub checksum: Option<String>,
    pub container_image: Option<String>,
    pub efs_snapshot_id: Option<String>,
    pub ebs_snapshot_id: Option<String>,
    pub metadata: SnapshotMetadata,
    /// The snapshot this one was made incrementally from.
    pub parent_id: Option<SnapshotId>,
    /// The latest restore drill.
    pub drill: Option<DrillResult>,
}

/// Filter and page for listing snapshots.
#[derive(Clone, Debug, Default)]
pub struct SnapshotFilter {
    /// `None`: every lab (IT admins only).
    pub lab_id: Option<LabId>,
    pub environment_id: Option<EnvironmentId>,
    pub status: Option<SnapshotStatus>,
    pub limit: u32,
    pub offset: u32,
}

/// Validates a Python version request such as `3.11` or `3.11.7`.
///
/// # Errors
/// `Validation` for anything but 2–3 dot-separated numbers starting with 3.
pub fn validate_python_version(v: &str) -> Result<(), DomainError> {
    let parts: Vec<&str> = v.split('.').collect();
    let numeric = parts
        .iter()
        .all(|p| !p.is_empty() && p.len() <= 3 && p.chars().all(|c| c.is_ascii_digit()));
    if (2..=3).contains(&parts.len()) && numeric && parts[0] == "3" {
        Ok(())
    } else {
        Err(DomainError::invalid(
            "python_version",
            "must look like 3.11 or 3.11.7",
        ))
    }
}

/// Filter and page for listing environments.
#[derive(Clone, Debug, Default)]
pub struct EnvironmentFilter {
    /// `None` lists every lab (IT admins only).
    pub lab_id: Option<LabId>,
    pub researcher_id: Option<UserId>,
    pub drift_status: Option<DriftStatus>,
    pub status: Option<EnvironmentStatus>,
    pub jupyter_status: Option<JupyterStatus>,
    /// Case-insensitive substring of the name.
    pub name_contains: Option<String>,
    pub limit: u32,
    pub offset: u32,
}

/// One page of a listing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
}

/// Status of a background job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JobStatus {
    Queued,
    Running,
    Succeeded,
    Failed,
}

impl JobStatus {
    /// Whether the job has ended.
    pub fn is_terminal(&self) -> bool {
        matches!(self, JobStatus::Succeeded | JobStatus::Failed)
    }
}

/// Why a job failed, safe to show to users.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobError {
    /// Stable machine-readable code (`package_not_found`, `interrupted`, …).
    pub code: String,
    pub message: String,
}

/// A long-running piece of work (environment build, later snapshots).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Job {
    pub id: JobId,
    pub lab_id: LabId,
    /// What the job does: `environment.create`, …
    pub kind: String,
    /// The id of the thing it works on.
    pub target_id: String,
    pub status: JobStatus,
    /// 0.0–1.0.
    pub progress: f32,
    /// What it is doing now, for progress displays.
    pub message: String,
    pub error: Option<JobError>,
    pub created_by: UserId,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// A stored credential: a one-time login token or a refresh token. Only the
/// BLAKE3 hash of the secret is kept.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    pub hash: String,
    pub kind: TokenKind,
    pub user_id: UserId,
    pub expires_at: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
}

/// Kinds of stored credential.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenKind {
    OneTimeLogin,
    Refresh,
}

impl TokenKind {
    /// The stored name.
    pub fn as_str(&self) -> &'static str {
        match self {
            TokenKind::OneTimeLogin => "one_time_login",
            TokenKind::Refresh => "refresh",
        }
    }
}

/// A user with the stored password hash, for sign-in.
#[derive(Clone, Debug)]
pub struct UserCredentials {
    pub user: User,
    pub password_hash: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pinned_package_splits_into_name_and_specifier() {
        let p = PackageSpec::parse("numpy==1.26.4").unwrap();
        assert_eq!(p.name, "numpy");
        assert_eq!(p.version.as_deref(), Some("==1.26.4"));
        assert_eq!(
            PackageSpec::parse("pandas >= 2, <3").unwrap().requirement(),
            "pandas>=2,<3"
        );
    }

    #[test]
    fn a_package_that_looks_like_an_option_or_url_is_rejected() {
        for bad in [
            "--index-url",
            "-e",
            "git+https://x/y",
            "../local",
            "numpy @ file:///x",
            "a;b",
        ] {
            assert!(PackageSpec::parse(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn python_versions_must_be_numeric_three_x() {
        assert!(validate_python_version("3.11").is_ok());
        assert!(validate_python_version("3.11.7").is_ok());
        assert!(validate_python_version("2.7").is_err());
        assert!(validate_python_version("3").is_err());
        assert!(validate_python_version("3.11; rm").is_err());
    }
}
