//! Request and response bodies of the platform endpoints (the API contract;
//! documented in OpenAPI). Domain types stay framework-free; these mirror
//! them for the wire.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use westtek_domain::{AuditEntry, Job, Lab, LabQuotas, User};

/// A background job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobResponse {
    pub id: String,
    pub lab_id: String,
    /// `environment.create`, …
    pub kind: String,
    pub target_id: String,
    /// `queued`, `running`, `succeeded` or `failed`.
    pub status: String,
    /// 0.0–1.0.
    pub progress: f32,
    pub message: String,
    pub error: Option<JobErrorBody>,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Why a job failed.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobErrorBody {
    /// Stable code: `package_not_found`, `dependency_conflict`,
    /// `python_unavailable`, `install_failed`, `interrupted`, …
    pub code: String,
    pub message: String,
}

/// The wire name of a unit enum variant (`"ready"`, `"STABLE"`), as serde
/// writes it.
pub fn unit_name<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

impl From<Job> for JobResponse {
    fn from(j: Job) -> Self {
        JobResponse {
            id: j.id.to_string(),
            lab_id: j.lab_id.to_string(),
            kind: j.kind,
            target_id: j.target_id,
            status: unit_name(&j.status),
            progress: j.progress,
            message: j.message,
            error: j.error.map(|e| JobErrorBody {
                code: e.code,
                message: e.message,
            }),
            created_by: j.created_by.to_string(),
            created_at: j.created_at,
            updated_at: j.updated_at,
        }
    }
}

/// Long work accepted: follow the job.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JobAccepted {
    pub job_id: String,
    /// The resource being made, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment_id: Option<String>,
}

/// Per-lab limits.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuotasBody {
    pub max_environments: u32,
    pub max_running_servers: u32,
    /// Most bytes the lab's snapshots may add to the vault; absent: no limit.
    #[serde(default)]
    pub max_storage_bytes: Option<u64>,
    /// Address space of each Jupyter, kernel or terminal process, MiB
    /// (1024–1048576; absent: 8192). A runaway allocation fails there
    /// (with `MemoryError` in Python). Address space is not resident
    /// memory: a kernel with numpy imported already reserves ~0.8 GiB.
    #[serde(default)]
    #[schema(minimum = 1024, maximum = 1048576)]
    pub max_memory_mb: Option<u32>,
    /// Processes and threads one environment may run at once (32–65536;
    /// absent: 512). Enforced where each environment has its own uid (the
    /// platform running as root).
    #[serde(default)]
    #[schema(minimum = 32, maximum = 65536)]
    pub max_processes: Option<u32>,
}

impl QuotasBody {
    /// The quotas, or which field is out of range.
    ///
    /// # Errors
    /// `Validation` naming the field.
    pub fn into_quotas(self) -> Result<LabQuotas, westtek_domain::DomainError> {
        use westtek_domain::{DomainError, MEMORY_MB_RANGE, PROCESSES_RANGE};
        let defaults = LabQuotas::default();
        let mem = self.max_memory_mb.unwrap_or(defaults.max_memory_mb);
        if !(MEMORY_MB_RANGE.0..=MEMORY_MB_RANGE.1).contains(&mem) {
            return Err(DomainError::invalid(
                "quotas.max_memory_mb",
                "must be between 1024 and 1048576 (MiB)",
            ));
        }
        let procs = self.max_processes.unwrap_or(defaults.max_processes);
        if !(PROCESSES_RANGE.0..=PROCESSES_RANGE.1).contains(&procs) {
            return Err(DomainError::invalid(
                "quotas.max_processes",
                "must be between 32 and 65536",
            ));
        }
        Ok(LabQuotas {
            max_environments: self.max_environments,
            max_running_servers: self.max_running_servers,
            max_storage_bytes: self.max_storage_bytes,
            max_memory_mb: mem,
            max_processes: procs,
        })
    }
}

impl From<LabQuotas> for QuotasBody {
    fn from(q: LabQuotas) -> Self {
        QuotasBody {
            max_environments: q.max_environments,
            max_running_servers: q.max_running_servers,
            max_storage_bytes: q.max_storage_bytes,
            max_memory_mb: Some(q.max_memory_mb),
            max_processes: Some(q.max_processes),
        }
    }
}

/// A lab.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LabResponse {
    pub id: String,
    pub name: String,
    pub display_name: String,
    pub created_at: DateTime<Utc>,
    pub quotas: QuotasBody,
}

impl From<Lab> for LabResponse {
    fn from(l: Lab) -> Self {
        LabResponse {
            id: l.id.to_string(),
            name: l.name.to_string(),
            display_name: l.display_name,
            created_at: l.created_at,
            quotas: l.quotas.into(),
        }
    }
}

/// Create a lab (IT admins).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateLabRequest {
    /// 1–64 letters, digits, `-`, `_`, `.`.
    pub name: String,
    pub display_name: Option<String>,
    pub quotas: Option<QuotasBody>,
}

/// Change a lab (IT admins).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateLabRequest {
    pub quotas: QuotasBody,
}

/// A user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserResponse {
    pub id: String,
    pub username: String,
    pub display_name: String,
    pub it_admin: bool,
    pub created_at: DateTime<Utc>,
    /// Provisioned from the identity provider (Cognito): its groups are
    /// the truth for memberships and the IT admin flag.
    pub idp_managed: bool,
    /// Refused on every request until an IT admin enables them again.
    pub disabled: bool,
}

impl From<User> for UserResponse {
    fn from(u: User) -> Self {
        UserResponse {
            id: u.id.to_string(),
            username: u.username.to_string(),
            display_name: u.display_name,
            it_admin: u.it_admin,
            created_at: u.created_at,
            idp_managed: u.idp_managed,
            disabled: u.disabled,
        }
    }
}

/// Add a user to a lab (lab admins, or IT admins acting).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUserRequest {
    pub username: String,
    pub display_name: Option<String>,
    /// `researcher` or `lab_admin`.
    pub role: String,
    /// Without a password the response carries a one-time sign-in link.
    pub password: Option<String>,
}

/// A member's role in a lab.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberRequest {
    /// `researcher` or `lab_admin`.
    pub role: String,
}

/// Invite a user into a lab.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InviteRequest {
    pub username: String,
    /// `researcher` or `lab_admin`.
    pub role: String,
}

/// The answer to an invitation: the same whether or not the username
/// exists, so it reveals nothing about the platform's users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvitationSentResponse {
    pub lab_id: String,
    /// As sent.
    pub username: String,
    pub role: String,
    /// How long the invitee has to accept, in seconds.
    pub expires_in: i64,
    pub detail: String,
}

/// An invitation into a lab.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct InvitationResponse {
    pub id: String,
    pub lab_id: String,
    pub lab_name: Option<String>,
    pub user_id: String,
    pub username: Option<String>,
    /// `researcher` or `lab_admin`.
    pub role: String,
    /// Username of the lab admin who invited.
    pub invited_by: Option<String>,
    /// `pending`, `accepted`, `declined`, `revoked` or `expired`.
    pub state: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub closed_at: Option<DateTime<Utc>>,
}

/// A created user and, without a password, how they sign in the first time.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CreatedUserResponse {
    pub user: UserResponse,
    pub sign_in_url: Option<String>,
    pub sign_in_token: Option<String>,
    pub sign_in_expires_at: Option<DateTime<Utc>>,
}

/// Exchange credentials for tokens.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    /// `password`, `one_time_token` or `refresh_token`.
    pub grant_type: String,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The one-time token or refresh token.
    pub token: Option<String>,
}

/// Issued tokens. Browsers also get them as HttpOnly cookies.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct TokenResponse {
    pub access_token: String,
    /// Always `Bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    pub expires_at: DateTime<Utc>,
    pub refresh_token: String,
    pub refresh_expires_at: DateTime<Utc>,
    pub user: MeResponse,
}

/// A lab membership.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MembershipBody {
    pub lab_id: String,
    pub lab_name: Option<String>,
    pub role: String,
}

/// The signed-in caller.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MeResponse {
    pub user_id: String,
    pub username: String,
    pub it_admin: bool,
    pub labs: Vec<MembershipBody>,
    /// The lab's Amazon WorkSpaces Secure Browser portal, when Jupyter is
    /// reached through it: open it first, then JupyterLab inside it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_browser_url: Option<String>,
}

/// One audit entry.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditEntryResponse {
    pub seq: i64,
    pub id: String,
    pub time: DateTime<Utc>,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub lab_id: Option<String>,
    pub action: String,
    pub target_kind: String,
    pub target_id: String,
    pub request_id: String,
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

impl From<AuditEntry> for AuditEntryResponse {
    fn from(e: AuditEntry) -> Self {
        AuditEntryResponse {
            seq: e.seq,
            id: e.id.to_string(),
            time: e.time,
            actor_id: e.actor_id.map(|a| a.to_string()),
            actor_name: e.actor_name,
            lab_id: e.lab_id.map(|l| l.to_string()),
            action: e.action,
            target_kind: e.target_kind,
            target_id: e.target_id,
            request_id: e.request_id,
            details: e.details,
            prev_hash: e.prev_hash,
            hash: e.hash,
        }
    }
}

/// A page of audit entries, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditPage {
    pub items: Vec<AuditEntryResponse>,
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
}

/// Result of checking the audit chain.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AuditVerifyResponse {
    pub ok: bool,
    pub entries: u64,
    /// One sentence per problem, naming the entry.
    pub problems: Vec<String>,
}
