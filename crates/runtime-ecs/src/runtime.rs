//! [`EcsJupyterRuntime`]: the `JupyterRuntime` port on ECS Fargate.
//!
//! Policy:
//! - **One task per running environment**, of the researcher's revision of
//!   the Jupyter task definition (see `home`), FARGATE, in the settings'
//!   subnets and security groups without a public IP, tagged `lab`,
//!   `environment` and `researcher`. The `env` volume is a managed EBS
//!   volume configured at launch: encrypted, ext4, the settings' size and
//!   type (or a snapshot's contents when restoring), the same three tags,
//!   and kept when the task stops (`deleteOnTermination: false`: the
//!   environment outlives its server).
//! - **The token**: 256 random bits per start, kept in memory only, given
//!   to the `jupyter` container as `JUPYTER_TOKEN` in the RunTask override
//!   (never in a task definition, a log line or a command line). Anyone
//!   who may DescribeTasks can read overrides: that is the platform's own
//!   role. Inside the task the variable is visible to the researcher's own
//!   code, which is the researcher's own server.
//! - **Readiness**: DescribeTasks until `RUNNING`, then the task's address
//!   ([`TaskAddress`]: by default the private IPv4 of its network interface)
//!   and `GET {base_url}api/status` with the token until it answers 200,
//!   within `ready_timeout`. A task that stops meanwhile, or the timeout,
//!   fails the start with an `Upstream` error naming the task (and ECS's
//!   stopped reason); a task that timed out is stopped.
//! - **Memory**: see `sizing` (task and `jupyter` container memory
//!   overrides from the lab's limit).
//! - **Exits**: `take_exited` asks ECS about the tracked tasks; a `STOPPED`
//!   task nobody asked to stop is reported once, classified by `exit`.
//!   `stop` forgets the task before calling StopTask, so it is never
//!   reported; `stop` while a start waits makes that start stop its task and
//!   fail with `Conflict`.
//! - **Idle culling** works as locally: no gateway traffic (`touch`) and no
//!   activity Jupyter itself reports (`api/status`, busy kernels) for
//!   `idle_timeout` stops the task and reports `idle`.
//! - **Retries**: RunTask carries a client token per start, so the SDK
//!   retrying it never starts a second task.

use crate::error::{describe, start_failed, STOP_FAILED};
use crate::exit::{classify, JUPYTER_CONTAINER};
use crate::home::{self, ENV_VOLUME};
use crate::settings::EcsSettings;
use crate::sizing::task_size;
use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_ecs::types::{
    AssignPublicIp, AwsVpcConfiguration, ContainerOverride, EbsResourceType, EbsTagSpecification,
    KeyValuePair, LaunchType, NetworkConfiguration, Tag, Task, TaskDefinition, TaskFilesystemType,
    TaskManagedEbsVolumeConfiguration, TaskManagedEbsVolumeTerminationPolicy, TaskOverride,
    TaskVolumeConfiguration,
};
use chrono::{DateTime, Utc};
use rand::RngCore;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::{Duration, Instant};
use westtek_domain::ports::{
    JupyterRuntime, JupyterUpstream, LaunchSpec, ServerInfo, UpstreamAddr,
};
use westtek_domain::{
    ContainerInfo, DomainError, EnvironmentId, JupyterExit, LabId, Result, UserId,
};

/// Environment variable carrying Jupyter's token to the `jupyter` container.
pub const TOKEN_VAR: &str = "JUPYTER_TOKEN";
/// Environment variable carrying the URL prefix Jupyter serves under.
pub const BASE_URL_VAR: &str = "JUPYTER_BASE_URL";
/// Environment variable carrying the port Jupyter listens on.
pub const PORT_VAR: &str = "JUPYTER_PORT";
/// Environment variable carrying the environment id (both containers).
pub const ENVIRONMENT_VAR: &str = "WESTTEK_ENVIRONMENT_ID";
/// Environment variable carrying the lab id (both containers).
pub const LAB_VAR: &str = "WESTTEK_LAB_ID";
/// The sidecar's name in the task definition (the CDK app's).
pub const AGENT_CONTAINER: &str = "agent";
/// Why the platform stops a task (ECS shows it as the stopped reason).
const STOP_REASON: &str = "Stopped by the West Tek platform";

/// How the platform reaches a running task's Jupyter.
#[async_trait]
pub trait TaskAddress: Send + Sync {
    /// `http://HOST:PORT` of Jupyter in `task`, once known.
    async fn resolve(&self, task: &Task, port: u16) -> Option<String>;
}

/// The task's private IPv4 address, from its network interface attachment
/// (awsvpc): what the platform, in the same VPC, connects to.
#[derive(Clone, Copy, Debug, Default)]
pub struct EniAddress;

#[async_trait]
impl TaskAddress for EniAddress {
    async fn resolve(&self, task: &Task, port: u16) -> Option<String> {
        private_ipv4(task).map(|ip| format!("http://{ip}:{port}"))
    }
}

/// The private IPv4 address of the task's network interface.
pub fn private_ipv4(task: &Task) -> Option<String> {
    attachment_detail(task, "ElasticNetworkInterface", "privateIPv4Address")
}

/// The id of the EBS volume ECS attached to the task, when it says.
pub fn ebs_volume_id(task: &Task) -> Option<String> {
    attachment_detail(task, "AmazonElasticBlockStorage", "volumeId")
}

fn attachment_detail(task: &Task, kind: &str, name: &str) -> Option<String> {
    task.attachments()
        .iter()
        .filter(|a| a.r#type() == Some(kind))
        .flat_map(|a| a.details())
        .find(|d| d.name() == Some(name))
        .and_then(|d| d.value())
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs Jupyter servers as ECS Fargate tasks. Cheap to clone.
#[derive(Clone)]
pub struct EcsJupyterRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    ecs: aws_sdk_ecs::Client,
    efs: aws_sdk_efs::Client,
    settings: EcsSettings,
    address: Arc<dyn TaskAddress>,
    http: reqwest::Client,
    servers: Mutex<HashMap<EnvironmentId, Arc<Server>>>,
    starting: Mutex<HashMap<EnvironmentId, ServerInfo>>,
    /// Starting environments `stop` was called for.
    cancelled: Mutex<std::collections::HashSet<EnvironmentId>>,
    exited: Mutex<Vec<(EnvironmentId, JupyterExit)>>,
    /// Access point per researcher.
    homes: tokio::sync::Mutex<HashMap<UserId, String>>,
    /// Revision per researcher and template ARN.
    revisions: tokio::sync::Mutex<HashMap<(UserId, String), TaskDefinition>>,
    /// Templates whose derived revisions were read from ECS.
    scanned: Mutex<std::collections::HashSet<String>>,
    /// EBS snapshot the next start of an environment restores from.
    restore_from: Mutex<HashMap<EnvironmentId, String>>,
    culler_started: AtomicBool,
}

/// One running task.
struct Server {
    env_id: EnvironmentId,
    lab_id: LabId,
    task_arn: String,
    token: String,
    base_url: String,
    addr: String,
    access_point: String,
    ebs_volume_id: Mutex<Option<String>>,
    started_at: DateTime<Utc>,
    last_activity_ms: AtomicI64,
}

impl Server {
    fn info(&self) -> ServerInfo {
        ServerInfo {
            env_id: self.env_id,
            lab_id: self.lab_id,
            started_at: self.started_at,
            last_activity: DateTime::from_timestamp_millis(
                self.last_activity_ms.load(Ordering::Relaxed),
            )
            .unwrap_or(self.started_at),
            pid: None,
        }
    }
}

/// Removes an environment from `starting` when a start ends either way.
struct StartingGuard<'a>(&'a Inner, EnvironmentId);

impl Drop for StartingGuard<'_> {
    fn drop(&mut self) {
        lock(&self.0.starting).remove(&self.1);
        lock(&self.0.cancelled).remove(&self.1);
    }
}

impl EcsJupyterRuntime {
    /// The runtime with credentials, region and endpoint from the standard
    /// AWS environment (`AWS_ENDPOINT_URL` points it at moto).
    pub async fn from_env(settings: EcsSettings) -> Self {
        Self::with_config(&westtek_aws::shared_config(5).await, settings)
    }

    /// The runtime with an explicit SDK configuration.
    pub fn with_config(config: &SdkConfig, settings: EcsSettings) -> Self {
        Self::with_clients(
            aws_sdk_ecs::Client::new(config),
            aws_sdk_efs::Client::new(config),
            settings,
        )
    }

    /// The runtime through existing clients.
    pub fn with_clients(
        ecs: aws_sdk_ecs::Client,
        efs: aws_sdk_efs::Client,
        settings: EcsSettings,
    ) -> Self {
        let http = reqwest::Client::builder()
            .no_proxy()
            .connect_timeout(Duration::from_secs(3))
            .build()
            .unwrap_or_default();
        EcsJupyterRuntime {
            inner: Arc::new(Inner {
                ecs,
                efs,
                settings,
                address: Arc::new(EniAddress),
                http,
                servers: Mutex::default(),
                starting: Mutex::default(),
                cancelled: Mutex::default(),
                exited: Mutex::default(),
                homes: tokio::sync::Mutex::default(),
                revisions: tokio::sync::Mutex::default(),
                restore_from: Mutex::default(),
                scanned: Mutex::default(),
                culler_started: AtomicBool::new(false),
            }),
        }
    }

    /// Reaches tasks through `address` instead of their private IPv4 (the
    /// test harness maps tasks to local ports). Call on the runtime as built,
    /// before cloning it (a clone keeps the runtime shared, and the call is
    /// then ignored with a warning).
    #[must_use]
    pub fn with_task_address(self, address: Arc<dyn TaskAddress>) -> Self {
        match Arc::try_unwrap(self.inner) {
            Ok(mut inner) => {
                inner.address = address;
                EcsJupyterRuntime {
                    inner: Arc::new(inner),
                }
            }
            Err(inner) => {
                tracing::warn!("with_task_address on a shared runtime is ignored");
                EcsJupyterRuntime { inner }
            }
        }
    }

    /// The settings the runtime runs with.
    pub fn settings(&self) -> &EcsSettings {
        &self.inner.settings
    }

    /// Makes the next `start` of `env` create its volume from the EBS
    /// snapshot `snapshot_id` (the fast restore path) instead of an empty
    /// volume.
    pub fn restore_next_start_from(&self, env: EnvironmentId, snapshot_id: impl Into<String>) {
        lock(&self.inner.restore_from).insert(env, snapshot_id.into());
    }

    /// Starts a server whose environment volume is created from the EBS
    /// snapshot `snapshot_id`.
    ///
    /// # Errors
    /// As [`JupyterRuntime::start`].
    pub async fn start_from_snapshot(
        &self,
        spec: &LaunchSpec,
        snapshot_id: &str,
    ) -> Result<ServerInfo> {
        self.start_with(spec, Some(snapshot_id.to_string())).await
    }

    /// What the environment record's `container_info` gets for a running
    /// server: task ARN, cluster, the EFS access point and (once ECS reported
    /// it) the EBS volume id. `jupyter_url` stays `None`: it is the
    /// gateway's public URL, which the platform sets; the task's private
    /// address is for the gateway only ([`JupyterRuntime::upstream`]).
    pub fn container_info(&self, env: EnvironmentId) -> Option<ContainerInfo> {
        let s = lock(&self.inner.servers).get(&env).cloned()?;
        let ebs_volume_id = lock(&s.ebs_volume_id).clone();
        Some(ContainerInfo {
            task_arn: Some(s.task_arn.clone()),
            cluster_name: Some(self.inner.settings.cluster.clone()),
            jupyter_url: None,
            efs_access_point: Some(s.access_point.clone()),
            ebs_volume_id,
            last_exit: None,
        })
    }

    /// The researcher's access point and task definition revision.
    async fn researcher_revision(&self, researcher: UserId) -> Result<(String, TaskDefinition)> {
        let inner = &self.inner;
        let fs = &inner.settings.efs_file_system_id;
        let access_point = {
            let mut homes = inner.homes.lock().await;
            match homes.get(&researcher) {
                Some(ap) => ap.clone(),
                None => {
                    let ap = home::ensure_access_point(&inner.efs, fs, researcher).await?;
                    homes.insert(researcher, ap.clone());
                    ap
                }
            }
        };
        let (latest, tags) = home::latest_revision(&inner.ecs, &inner.settings.task_family).await?;
        if home::home_access_point(&latest) == Some(access_point.as_str()) {
            return Ok((access_point, latest));
        }
        let template = home::template_of(&latest, &tags);
        let mut revisions = inner.revisions.lock().await;
        if let Some(def) = revisions.get(&(researcher, template.clone())) {
            return Ok((access_point, def.clone()));
        }
        if !lock(&inner.scanned).contains(&template) {
            let family = &inner.settings.task_family;
            for (who, def) in home::derived_revisions(&inner.ecs, family, &template).await? {
                if let Ok(who) = UserId::parse(&who) {
                    revisions.entry((who, template.clone())).or_insert(def);
                }
            }
            lock(&inner.scanned).insert(template.clone());
            // A revision whose access point is no longer the researcher's
            // (deleted and made again) is not reused.
            if let Some(def) = revisions.get(&(researcher, template.clone())) {
                if home::home_access_point(def) == Some(access_point.as_str()) {
                    return Ok((access_point, def.clone()));
                }
            }
        }
        let def = home::register_for(
            &inner.ecs,
            &latest,
            &template,
            fs,
            &access_point,
            researcher,
        )
        .await?;
        revisions.insert((researcher, template), def.clone());
        Ok((access_point, def))
    }

    async fn start_with(&self, spec: &LaunchSpec, snapshot: Option<String>) -> Result<ServerInfo> {
        let inner = &self.inner;
        let env = spec.env_id;
        let now = Utc::now();
        {
            let servers = lock(&inner.servers);
            let mut starting = lock(&inner.starting);
            if servers.contains_key(&env) || starting.contains_key(&env) {
                return Err(DomainError::Conflict(format!(
                    "Jupyter of environment {env} is already running"
                )));
            }
            starting.insert(
                env,
                ServerInfo {
                    env_id: env,
                    lab_id: spec.lab_id,
                    started_at: now,
                    last_activity: now,
                    pid: None,
                },
            );
        }
        let _guard = StartingGuard(inner, env);
        let snapshot = snapshot.or_else(|| lock(&inner.restore_from).remove(&env));
        let (access_point, def) = self.researcher_revision(spec.researcher_id).await?;
        let def_arn = def.task_definition_arn().unwrap_or_default().to_string();
        let token = new_token();
        let task = self
            .run_task(spec, &def, &def_arn, &token, snapshot.as_deref())
            .await?;
        let task_arn = task.task_arn().unwrap_or_default().to_string();
        tracing::info!(env = %env, task = %task_arn, "Jupyter task started, waiting for it to answer");
        let ready = self.wait_ready(spec, &task_arn, &token).await;
        let (addr, ebs) = match ready {
            Ok(r) => r,
            Err(e) => {
                if let Err(stop) = self.stop_task(&task_arn).await {
                    tracing::warn!(env = %env, task = %task_arn, error = %stop, "stopping a task that did not start failed");
                }
                return Err(e);
            }
        };
        let info_task_arn = task_arn.clone();
        let server = Arc::new(Server {
            env_id: env,
            lab_id: spec.lab_id,
            task_arn,
            token,
            base_url: spec.base_url.clone(),
            addr,
            access_point,
            ebs_volume_id: Mutex::new(ebs),
            started_at: now,
            last_activity_ms: AtomicI64::new(Utc::now().timestamp_millis()),
        });
        let info = server.info();
        // `stop` during the wait: the task goes, the start fails. Decided
        // under the locks `stop` takes (servers, starting, cancelled), so a
        // stop is never lost between the two.
        let cancelled = {
            let mut servers = lock(&inner.servers);
            let mut starting = lock(&inner.starting);
            let cancelled = lock(&inner.cancelled).remove(&env);
            starting.remove(&env);
            if !cancelled {
                servers.insert(env, server);
            }
            cancelled
        };
        if cancelled {
            if let Err(stop) = self.stop_task(&info_task_arn).await {
                tracing::warn!(env = %env, task = %info_task_arn, error = %stop, "stopping a task stopped while starting failed");
            }
            return Err(stopped_while_starting(env));
        }
        self.ensure_culler();
        Ok(info)
    }

    async fn run_task(
        &self,
        spec: &LaunchSpec,
        def: &TaskDefinition,
        def_arn: &str,
        token: &str,
        snapshot: Option<&str>,
    ) -> Result<Task> {
        let s = &self.inner.settings;
        let env = spec.env_id.to_string();
        let lab = spec.lab_id.to_string();
        let researcher = spec.researcher_id.to_string();
        let tags = [
            ("lab", lab.as_str()),
            ("environment", env.as_str()),
            ("researcher", researcher.as_str()),
        ];
        let bad = |what: &str, e: &dyn std::fmt::Display| {
            start_failed(format!("ECS runtime: building {what}: {e}"))
        };
        let mut ebs = TaskManagedEbsVolumeConfiguration::builder()
            .role_arn(&s.ebs_role_arn)
            .encrypted(true)
            .set_kms_key_id(s.ebs_kms_key_id.clone())
            .volume_type(&s.ebs_volume_type)
            .filesystem_type(TaskFilesystemType::Ext4)
            .tag_specifications(
                EbsTagSpecification::builder()
                    .resource_type(EbsResourceType::Volume)
                    .set_tags(Some(
                        tags.iter()
                            .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                            .collect(),
                    ))
                    .build()
                    .map_err(|e| bad("the EBS volume's tags", &e))?,
            )
            .termination_policy(
                TaskManagedEbsVolumeTerminationPolicy::builder()
                    .delete_on_termination(false)
                    .build()
                    .map_err(|e| bad("the EBS termination policy", &e))?,
            );
        ebs = match snapshot {
            Some(id) => ebs.snapshot_id(id),
            None => ebs.size_in_gib(s.ebs_size_gib),
        };
        let volume = TaskVolumeConfiguration::builder()
            .name(ENV_VOLUME)
            .managed_ebs_volume(ebs.build().map_err(|e| bad("the EBS volume", &e))?)
            .build()
            .map_err(|e| bad("the volume configuration", &e))?;
        let kv = |k: &str, v: &str| KeyValuePair::builder().name(k).value(v).build();
        let cpu: u32 = def.cpu().and_then(|c| c.parse().ok()).unwrap_or(1024);
        let others: u64 = def
            .container_definitions()
            .iter()
            .filter(|c| c.name() != Some(JUPYTER_CONTAINER))
            .map(|c| {
                c.memory()
                    .or(c.memory_reservation())
                    .and_then(|m| u64::try_from(m).ok())
                    .unwrap_or(0)
            })
            .sum();
        let size = task_size(cpu, spec.limits.memory_bytes, others).ok_or_else(|| {
            DomainError::Upstream {
                code: crate::error::START_FAILED,
                message: format!(
                    "The lab's memory limit ({} MiB) is more than the largest Fargate task \
                     holds (120 GiB with the sidecar); lower the lab's memory quota.",
                    spec.limits.memory_bytes / (1024 * 1024)
                ),
            }
        })?;
        let jupyter_mib = i32::try_from(size.jupyter_mib).unwrap_or(i32::MAX);
        let overrides = TaskOverride::builder()
            .cpu(size.cpu.to_string())
            .memory(size.task_mib.to_string())
            .container_overrides(
                ContainerOverride::builder()
                    .name(JUPYTER_CONTAINER)
                    .memory(jupyter_mib)
                    .environment(kv(TOKEN_VAR, token))
                    .environment(kv(BASE_URL_VAR, &spec.base_url))
                    .environment(kv(PORT_VAR, &s.jupyter_port.to_string()))
                    .environment(kv(ENVIRONMENT_VAR, &env))
                    .environment(kv(LAB_VAR, &lab))
                    .build(),
            )
            .container_overrides(
                ContainerOverride::builder()
                    .name(crate::AGENT_CONTAINER)
                    .environment(kv(ENVIRONMENT_VAR, &env))
                    .environment(kv(LAB_VAR, &lab))
                    .build(),
            )
            .build();
        let network = NetworkConfiguration::builder()
            .awsvpc_configuration(
                AwsVpcConfiguration::builder()
                    .set_subnets(Some(s.subnets.clone()))
                    .set_security_groups(Some(s.security_groups.clone()))
                    .assign_public_ip(AssignPublicIp::Disabled)
                    .build()
                    .map_err(|e| bad("the network configuration", &e))?,
            )
            .build();
        let what = format!("cluster {}", s.cluster);
        let out = self
            .inner
            .ecs
            .run_task()
            .cluster(&s.cluster)
            .task_definition(def_arn)
            .launch_type(LaunchType::Fargate)
            .count(1)
            .network_configuration(network)
            .overrides(overrides)
            .volume_configurations(volume)
            .set_tags(Some(
                tags.iter()
                    .map(|(k, v)| Tag::builder().key(*k).value(*v).build())
                    .collect(),
            ))
            .started_by("westtek")
            // The SDK retries RunTask on transient errors: one start, one task.
            .client_token(format!("westtek-{env}-{}", &new_token()[..16]))
            .send()
            .await
            .map_err(|e| start_failed(describe("RunTask", &what, &e)))?;
        if let Some(task) = out.tasks().first() {
            return Ok(task.clone());
        }
        let failures: Vec<String> = out
            .failures()
            .iter()
            .map(|f| {
                format!(
                    "{}{}",
                    f.reason().unwrap_or("unknown reason"),
                    f.detail().map(|d| format!(": {d}")).unwrap_or_default()
                )
            })
            .collect();
        Err(start_failed(format!(
            "ECS runtime: RunTask on {what} started no task ({}); check the subnets, security \
             groups and the task definition {def_arn}",
            if failures.is_empty() {
                "no failure given".to_string()
            } else {
                failures.join("; ")
            }
        )))
    }

    /// Waits until the task runs and Jupyter answers; its address and EBS
    /// volume id.
    async fn wait_ready(
        &self,
        spec: &LaunchSpec,
        task_arn: &str,
        token: &str,
    ) -> Result<(String, Option<String>)> {
        let s = &self.inner.settings;
        let deadline = Instant::now() + s.ready_timeout;
        let mut last_status = String::from("unknown");
        let mut answered = String::new();
        loop {
            if lock(&self.inner.cancelled).contains(&spec.env_id) {
                return Err(stopped_while_starting(spec.env_id));
            }
            if let Some(task) = self.describe(task_arn).await? {
                last_status = task.last_status().unwrap_or("unknown").to_string();
                if let Some(h) = task.health_status().filter(|h| h.as_str() != "UNKNOWN") {
                    last_status.push_str(&format!(", health {}", h.as_str()));
                }
                if matches!(task.last_status(), Some("STOPPED" | "DELETED")) {
                    return Err(start_failed(format!(
                        "Jupyter's task {task_arn} stopped before Jupyter answered: {}",
                        task.stopped_reason().unwrap_or("ECS gave no reason")
                    )));
                }
                if task.last_status() == Some("RUNNING") {
                    if let Some(addr) = self.inner.address.resolve(&task, s.jupyter_port).await {
                        let url = format!("{addr}{}api/status", spec.base_url);
                        match self
                            .inner
                            .http
                            .get(&url)
                            .header(reqwest::header::AUTHORIZATION, format!("token {token}"))
                            .timeout(Duration::from_secs(5))
                            .send()
                            .await
                        {
                            Ok(r) if r.status().is_success() => {
                                return Ok((addr, ebs_volume_id(&task)));
                            }
                            Ok(r) => answered = format!(", Jupyter answered {}", r.status()),
                            Err(_) => answered = ", Jupyter not answering yet".into(),
                        }
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(start_failed(format!(
                    "Jupyter's task {task_arn} was not ready within {} s (last status \
                     {last_status}{answered}); the task was stopped. See its logs in CloudWatch; \
                     raise WESTTEK_ECS_READY_TIMEOUT_SECS if image pulls are slow",
                    s.ready_timeout.as_secs()
                )));
            }
            tokio::time::sleep(s.poll_interval).await;
        }
    }

    /// The task as ECS describes it now (`None`: ECS does not know it).
    async fn describe(&self, task_arn: &str) -> Result<Option<Task>> {
        Ok(self.describe_many(&[task_arn.to_string()]).await?.pop())
    }

    async fn describe_many(&self, arns: &[String]) -> Result<Vec<Task>> {
        let cluster = &self.inner.settings.cluster;
        let mut tasks = Vec::new();
        for chunk in arns.chunks(100) {
            let out = self
                .inner
                .ecs
                .describe_tasks()
                .cluster(cluster)
                .set_tasks(Some(chunk.to_vec()))
                .send()
                .await
                .map_err(|e| {
                    start_failed(describe("DescribeTasks", &format!("cluster {cluster}"), &e))
                })?;
            tasks.extend(out.tasks().iter().cloned());
        }
        Ok(tasks)
    }

    async fn stop_task(&self, task_arn: &str) -> Result<()> {
        let cluster = &self.inner.settings.cluster;
        match self
            .inner
            .ecs
            .stop_task()
            .cluster(cluster)
            .task(task_arn)
            .reason(STOP_REASON)
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(DomainError::Upstream {
                code: STOP_FAILED,
                message: describe("StopTask", &format!("task {task_arn}"), &e),
            }),
        }
    }

    fn ensure_culler(&self) {
        let Some(idle) = self.inner.settings.idle_timeout else {
            return;
        };
        if self.inner.culler_started.swap(true, Ordering::SeqCst) {
            return;
        }
        tokio::spawn(cull_loop(Arc::downgrade(&self.inner), idle));
    }
}

fn stopped_while_starting(env: EnvironmentId) -> DomainError {
    DomainError::Conflict(format!(
        "Jupyter of environment {env} was stopped while it was starting"
    ))
}

/// 256 random bits, hex.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Stops servers without traffic for `idle`, until the runtime is dropped.
async fn cull_loop(inner: Weak<Inner>, idle: Duration) {
    let period = (idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
    let idle_ms = i64::try_from(idle.as_millis()).unwrap_or(i64::MAX);
    loop {
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let now = Utc::now().timestamp_millis();
        let candidates: Vec<Arc<Server>> = lock(&inner.servers)
            .values()
            .filter(|s| now - s.last_activity_ms.load(Ordering::Relaxed) >= idle_ms)
            .cloned()
            .collect();
        let runtime = EcsJupyterRuntime { inner };
        for server in candidates {
            if busy_inside(&runtime.inner.http, &server, idle_ms).await {
                continue;
            }
            tracing::info!(env = %server.env_id, task = %server.task_arn, idle_s = idle.as_secs(), "stopping an idle Jupyter task");
            if runtime.stop(server.env_id).await.is_ok() {
                let idle_min = idle.as_secs() / 60;
                lock(&runtime.inner.exited).push((
                    server.env_id,
                    JupyterExit {
                        at: Utc::now(),
                        reason: "idle".into(),
                        message: format!(
                            "Jupyter was stopped after {idle_min} minutes without activity."
                        ),
                    },
                ));
            }
        }
    }
}

/// Whether Jupyter itself saw activity the gateway did not (a kernel
/// computing): its `last_activity` is recent or a kernel is busy. Moves the
/// server's last activity forward when so.
async fn busy_inside(http: &reqwest::Client, server: &Server, idle_ms: i64) -> bool {
    let base = format!("{}{}", server.addr, server.base_url);
    match westtek_runtime::recent_activity(http, &base, &server.token, idle_ms).await {
        Some(at) => {
            server.last_activity_ms.fetch_max(at, Ordering::Relaxed);
            true
        }
        None => false,
    }
}

#[async_trait]
impl JupyterRuntime for EcsJupyterRuntime {
    async fn start(&self, spec: &LaunchSpec) -> Result<ServerInfo> {
        self.start_with(spec, None).await
    }

    async fn stop(&self, env: EnvironmentId) -> Result<()> {
        let server = {
            let mut servers = lock(&self.inner.servers);
            let server = servers.remove(&env);
            // Still starting: the start notices, stops its task and fails.
            if server.is_none() && lock(&self.inner.starting).contains_key(&env) {
                lock(&self.inner.cancelled).insert(env);
            }
            server
        };
        match server {
            Some(s) => {
                tracing::info!(env = %env, task = %s.task_arn, "stopping Jupyter task");
                self.stop_task(&s.task_arn).await
            }
            None => Ok(()),
        }
    }

    async fn upstream(&self, env: EnvironmentId) -> Option<JupyterUpstream> {
        let servers = lock(&self.inner.servers);
        let s = servers.get(&env)?;
        Some(JupyterUpstream {
            addr: UpstreamAddr::Tcp(s.addr.clone()),
            token: s.token.clone(),
        })
    }

    fn touch(&self, env: EnvironmentId) {
        if let Some(s) = lock(&self.inner.servers).get(&env) {
            s.last_activity_ms
                .fetch_max(Utc::now().timestamp_millis(), Ordering::Relaxed);
        }
    }

    async fn running(&self) -> Vec<ServerInfo> {
        let mut infos: Vec<ServerInfo> = lock(&self.inner.servers)
            .values()
            .map(|s| s.info())
            .collect();
        infos.extend(lock(&self.inner.starting).values().cloned());
        infos.sort_by_key(|i| i.env_id);
        infos
    }

    async fn take_exited(&self) -> Vec<(EnvironmentId, JupyterExit)> {
        let tracked: Vec<(EnvironmentId, String)> = lock(&self.inner.servers)
            .values()
            .map(|s| (s.env_id, s.task_arn.clone()))
            .collect();
        if !tracked.is_empty() {
            let arns: Vec<String> = tracked.iter().map(|(_, a)| a.clone()).collect();
            match self.describe_many(&arns).await {
                Ok(tasks) => {
                    let by_arn: HashMap<&str, &Task> = tasks
                        .iter()
                        .filter_map(|t| t.task_arn().map(|a| (a, t)))
                        .collect();
                    for (env, arn) in &tracked {
                        let exit = match by_arn.get(arn.as_str()) {
                            Some(t) if t.last_status() == Some("STOPPED") => Some(classify(t)),
                            Some(t) => {
                                if let Some(v) = ebs_volume_id(t) {
                                    if let Some(s) = lock(&self.inner.servers).get(env) {
                                        *lock(&s.ebs_volume_id) = Some(v);
                                    }
                                }
                                None
                            }
                            None => Some(JupyterExit {
                                at: Utc::now(),
                                reason: "crashed".into(),
                                message: format!(
                                    "Jupyter's task {arn} is no longer known to ECS. Start it again."
                                ),
                            }),
                        };
                        if let Some(exit) = exit {
                            // Only if nobody stopped it meanwhile.
                            let removed = {
                                let mut servers = lock(&self.inner.servers);
                                match servers.get(env) {
                                    Some(s) if s.task_arn == *arn => servers.remove(env),
                                    _ => None,
                                }
                            };
                            if removed.is_some() {
                                tracing::info!(env = %env, task = %arn, reason = %exit.reason, "Jupyter task ended on its own");
                                lock(&self.inner.exited).push((*env, exit));
                            }
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "asking ECS about Jupyter tasks failed"),
            }
        }
        let mut exited = std::mem::take(&mut *lock(&self.inner.exited));
        exited.sort_by_key(|(env, _)| *env);
        exited.dedup_by_key(|(env, _)| *env);
        exited
    }

    async fn stop_all(&self) {
        let envs: Vec<EnvironmentId> = lock(&self.inner.servers).keys().copied().collect();
        for env in envs {
            if let Err(e) = self.stop(env).await {
                tracing::warn!(env = %env, error = %e, "stopping a Jupyter task failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::{Attachment, KeyValuePair};

    fn attachment(kind: &str, name: &str, value: &str) -> Attachment {
        Attachment::builder()
            .r#type(kind)
            .details(KeyValuePair::builder().name("other").value("x").build())
            .details(KeyValuePair::builder().name(name).value(value).build())
            .build()
    }

    #[test]
    fn a_tasks_address_and_volume_come_from_its_attachments() {
        let task = Task::builder()
            .attachments(attachment(
                "ElasticNetworkInterface",
                "privateIPv4Address",
                "10.0.3.17",
            ))
            .attachments(attachment(
                "AmazonElasticBlockStorage",
                "volumeId",
                "vol-0abc",
            ))
            .build();
        assert_eq!(private_ipv4(&task).as_deref(), Some("10.0.3.17"));
        assert_eq!(ebs_volume_id(&task).as_deref(), Some("vol-0abc"));
    }

    #[test]
    fn a_task_without_attachments_has_no_address_yet() {
        let task = Task::builder()
            .attachments(attachment(
                "ElasticNetworkInterface",
                "privateIPv4Address",
                "",
            ))
            .build();
        assert_eq!(private_ipv4(&task), None);
        assert_eq!(ebs_volume_id(&task), None);
    }

    #[test]
    fn tokens_are_256_random_bits() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }
}
