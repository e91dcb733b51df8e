//! Request and response bodies of the environment endpoints.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use westtek_domain::{Criticality, DomainError, Environment, PackageSpec};
use westtek_platform::dto::unit_name;

/// A package to install: `"numpy"`, `"numpy==1.26.4"`, or
/// `{"name": "numpy", "version": "==1.26.4"}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum PackageInput {
    Text(String),
    Parts {
        name: String,
        /// A PEP 440 specifier (`==1.26.4`, `>=2,<3`); a bare version means `==`.
        version: Option<String>,
    },
}

impl PackageInput {
    /// The validated spec.
    ///
    /// # Errors
    /// `Validation` naming the package.
    pub fn to_spec(&self) -> Result<PackageSpec, DomainError> {
        match self {
            PackageInput::Text(s) => PackageSpec::parse(s),
            PackageInput::Parts { name, version } => {
                let v = version
                    .as_deref()
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(|v| {
                        if v.starts_with(|c: char| c.is_ascii_digit()) {
                            format!("=={v}")
                        } else {
                            v.to_string()
                        }
                    });
                PackageSpec::new(name.trim(), v.as_deref())
            }
        }
    }
}

/// Descriptive metadata (seed: `metadata`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MetadataInput {
    pub experiment_id: Option<String>,
    pub funding_source: Option<String>,
    /// `low`, `medium` (default), `high` or `critical`.
    #[schema(value_type = Option<String>)]
    pub criticality: Option<Criticality>,
}

/// Create an environment: a venv with JupyterLab, ipykernel and `packages`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateEnvironmentRequest {
    /// 1–64 letters, digits, `-`, `_`, `.`; unique in the lab.
    pub name: String,
    /// e.g. `3.11` (default: the platform's default interpreter).
    pub python_version: Option<String>,
    #[serde(default)]
    pub packages: Vec<PackageInput>,
    #[serde(default)]
    pub metadata: MetadataInput,
}

/// Change an environment's name or metadata.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateEnvironmentRequest {
    pub name: Option<String>,
    pub metadata: Option<MetadataInput>,
    /// Which snapshots to keep (applied after every snapshot).
    pub retention: Option<RetentionBody>,
    /// Drill the latest snapshot when its last drill is older than this
    /// many days; 0 turns scheduled drills off.
    pub drill_interval_days: Option<u32>,
}

/// Which snapshots to keep: the newest `keep_last`, the newest of each of
/// the last `keep_daily` days and `keep_monthly` months; all absent keeps
/// everything.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetentionBody {
    pub keep_last: Option<u32>,
    pub keep_daily: Option<u32>,
    pub keep_monthly: Option<u32>,
}

/// Launch Jupyter for an environment (seed: `POST /api/environments/jupyter`).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchRequest {
    pub environment_id: String,
}

/// Where the environment's compute lives (seed: `container_info`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContainerInfoBody {
    pub task_arn: Option<String>,
    pub cluster_name: Option<String>,
    /// JupyterLab through the platform's gateway, while running.
    pub jupyter_url: Option<String>,
    pub efs_access_point: Option<String>,
    pub ebs_volume_id: Option<String>,
    /// How the last Jupyter server ended when nobody asked it to (absent:
    /// it never did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_exit: Option<JupyterExitBody>,
}

/// A Jupyter server that ended on its own.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct JupyterExitBody {
    pub at: chrono::DateTime<chrono::Utc>,
    /// `idle`, `shut_down`, `crashed`, `memory_limit` or `process_limit`.
    pub reason: String,
    /// What to tell the researcher.
    pub message: String,
}

/// Descriptive metadata (seed: `metadata`).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MetadataBody {
    pub experiment_id: Option<String>,
    pub funding_source: Option<String>,
    pub criticality: String,
    /// Installed distributions, `name==version`.
    pub jupyter_packages: Vec<String>,
}

/// A requested package.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct PackageBody {
    pub name: String,
    pub version: Option<String>,
}

/// An environment (seed data model).
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentResponse {
    pub id: String,
    pub lab_id: String,
    pub researcher_id: String,
    pub name: String,
    pub python_version: String,
    pub packages: Vec<PackageBody>,
    /// `provisioning`, `ready` or `deleting`.
    pub status: String,
    /// `stopped`, `starting` or `running`.
    pub jupyter_status: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_snapshot: Option<DateTime<Utc>>,
    /// `STABLE`, `MINOR_DRIFT` or `CRITICAL_DRIFT`.
    pub drift_status: String,
    pub configuration_hash: Option<String>,
    pub container_info: ContainerInfoBody,
    pub metadata: MetadataBody,
    pub retention: RetentionBody,
    pub drill_interval_days: Option<u32>,
    /// The pinned drift baseline, when the lab pinned one.
    pub baseline_snapshot_id: Option<String>,
    /// Where it lives, when it was adopted from a lab machine (its files
    /// are read there by its agent; Jupyter for it is the researcher's
    /// own). Absent for environments the platform built.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<AdoptedBody>,
    /// The agent credential in force (never the secret), when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_credential: Option<AgentCredentialBody>,
}

/// Where an adopted environment lives.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AdoptedBody {
    pub host: String,
    pub venv_path: String,
    pub notebooks_path: String,
}

impl From<westtek_domain::AdoptedFrom> for AdoptedBody {
    fn from(a: westtek_domain::AdoptedFrom) -> Self {
        AdoptedBody {
            host: a.host,
            venv_path: a.venv_path,
            notebooks_path: a.notebooks_path,
        }
    }
}

/// An agent credential, as the audit trail names it.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AgentCredentialBody {
    pub id: String,
    pub issued_at: DateTime<Utc>,
}

impl From<Environment> for EnvironmentResponse {
    fn from(e: Environment) -> Self {
        EnvironmentResponse {
            id: e.id.to_string(),
            lab_id: e.lab_id.to_string(),
            researcher_id: e.researcher_id.to_string(),
            name: e.name.to_string(),
            python_version: e.python_version,
            packages: e
                .packages
                .into_iter()
                .map(|p| PackageBody {
                    name: p.name,
                    version: p.version,
                })
                .collect(),
            status: unit_name(&e.status),
            jupyter_status: unit_name(&e.jupyter_status),
            created_at: e.created_at,
            updated_at: e.updated_at,
            last_snapshot: e.last_snapshot,
            drift_status: e.drift_status.as_str().into(),
            configuration_hash: e.configuration_hash,
            container_info: ContainerInfoBody {
                task_arn: e.container_info.task_arn,
                cluster_name: e.container_info.cluster_name,
                jupyter_url: e.container_info.jupyter_url,
                efs_access_point: e.container_info.efs_access_point,
                ebs_volume_id: e.container_info.ebs_volume_id,
                last_exit: e.container_info.last_exit.map(|x| JupyterExitBody {
                    at: x.at,
                    reason: x.reason,
                    message: x.message,
                }),
            },
            retention: RetentionBody {
                keep_last: e.retention.keep_last,
                keep_daily: e.retention.keep_daily,
                keep_monthly: e.retention.keep_monthly,
            },
            drill_interval_days: e.drill_interval_days,
            baseline_snapshot_id: e.baseline_snapshot_id.map(|b| b.to_string()),
            adopted: e.adopted.map(AdoptedBody::from),
            agent_credential: e.agent_credential.map(|c| AgentCredentialBody {
                id: c.id,
                issued_at: c.issued_at,
            }),
            metadata: MetadataBody {
                experiment_id: e.metadata.experiment_id,
                funding_source: e.metadata.funding_source,
                criticality: unit_name(&e.metadata.criticality),
                jupyter_packages: e.metadata.jupyter_packages,
            },
        }
    }
}

/// An environment as listed: everything but the installed package list
/// (`GET /api/environments/{id}` has it), so a dashboard of a thousand
/// environments stays light.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentSummary {
    pub id: String,
    pub lab_id: String,
    pub researcher_id: String,
    pub name: String,
    pub python_version: String,
    /// `provisioning`, `ready` or `deleting`.
    pub status: String,
    /// `stopped`, `starting` or `running`.
    pub jupyter_status: String,
    pub jupyter_url: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_snapshot: Option<DateTime<Utc>>,
    /// `STABLE`, `MINOR_DRIFT` or `CRITICAL_DRIFT`.
    pub drift_status: String,
    pub configuration_hash: Option<String>,
    pub experiment_id: Option<String>,
    pub criticality: String,
    /// How many distributions are installed.
    pub package_count: usize,
    /// Where it lives when it was adopted from a lab machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adopted: Option<AdoptedBody>,
}

impl From<Environment> for EnvironmentSummary {
    fn from(e: Environment) -> Self {
        EnvironmentSummary {
            id: e.id.to_string(),
            lab_id: e.lab_id.to_string(),
            researcher_id: e.researcher_id.to_string(),
            name: e.name.to_string(),
            python_version: e.python_version,
            status: unit_name(&e.status),
            jupyter_status: unit_name(&e.jupyter_status),
            jupyter_url: e.container_info.jupyter_url,
            created_at: e.created_at,
            updated_at: e.updated_at,
            last_snapshot: e.last_snapshot,
            drift_status: e.drift_status.as_str().into(),
            configuration_hash: e.configuration_hash,
            experiment_id: e.metadata.experiment_id,
            criticality: unit_name(&e.metadata.criticality),
            package_count: e.metadata.jupyter_packages.len(),
            adopted: e.adopted.map(AdoptedBody::from),
        }
    }
}

/// A page of environments, newest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct EnvironmentPage {
    pub items: Vec<EnvironmentSummary>,
    pub total: u64,
    pub limit: u32,
    pub offset: u32,
}

/// A running (or already running) Jupyter server.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LaunchResponse {
    pub environment_id: String,
    /// `running`.
    pub jupyter_status: String,
    /// Open this in a browser signed in to the platform.
    pub jupyter_url: String,
    /// When the lab reaches Jupyter through Amazon WorkSpaces Secure
    /// Browser: open this portal first, then `jupyter_url` inside it (no
    /// API mints a per-user session URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secure_browser_url: Option<String>,
}
