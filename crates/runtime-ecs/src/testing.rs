//! The honest stand-in for Fargate: moto records ECS calls but runs nothing;
//! this harness runs what moto was asked to run, as local processes.
//!
//! How it plays ECS:
//! - **A recording proxy** in front of moto ([`Harness::endpoint`]): the
//!   runtime under test talks to it; it forwards every request unchanged and
//!   keeps each RunTask request body as sent on the wire (moto ignores
//!   `volumeConfigurations`, so the harness reads them here).
//! - **The tasks**: for each task RunTask started, the harness reads the task
//!   from moto (DescribeTasks: overrides, tags) and its registered task
//!   definition (DescribeTaskDefinition), and starts each container's
//!   command with the container's environment (definition, then overrides)
//!   under `bwrap`, its mount points mapped to local folders:
//!   - a volume configured at launch with a managed EBS volume ->
//!     `<root>/ebs/<environment tag of the volume>`; with a `snapshotId`, that
//!     folder is first replaced by a copy of `<root>/snapshots/<snapshot id>`;
//!   - an EFS volume -> `<root>/efs/<file system id>/<access point root
//!     directory>` (the access point read from moto's EFS).
//!
//!   The sandbox's root is a tmpfs with the host's top-level folders bound
//!   back (so mount points such as `/opt/jupyter` never get created on the
//!   host), its own PID namespace (killing it kills every process in it,
//!   kernels included) and, when the container names a `user`, that uid/gid
//!   in a user namespace (files are owned by the caller outside).
//! - **Task states**: moto walks a task from `RUNNING` to `STOPPED` one step
//!   per DescribeTasks by default; the harness sets moto's state manager so
//!   tasks stay `RUNNING` until StopTask, as on Fargate.
//! - **Stopping**: a task moto reports as stopped (StopTask) has its
//!   processes killed. A task whose essential container ends on its own is
//!   stopped in moto through StopTask with ECS's reason `Essential container
//!   in task exited`, so `take_exited` sees it.
//!
//! Where it differs from Fargate (documented, and the only places):
//! - **The network**: tasks share the host's network, so each task's
//!   containers with port mappings get `JUPYTER_PORT` set to a free port of
//!   127.0.0.1 chosen by the harness, and the runtime reaches tasks through
//!   [`HarnessAddress`] (task -> `http://127.0.0.1:PORT`) instead of the ENI's
//!   private IPv4 moto invents.
//! - **The image** is the host: commands run from the host's file system,
//!   with `HOME` set to the first mount under `/home` and a `PATH` of the
//!   host's system folders.
//! - **Not enforced**: memory and CPU limits, health checks, the task and
//!   execution roles, transit encryption; container exit codes are not
//!   reported (moto cannot store them).
//!
//! Test support only (feature `testing`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::TaskAddress;
use async_trait::async_trait;
use aws_sdk_ecs::types::{ContainerDefinition, Task, TaskDefinition};
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// ECS's reason for a task whose essential container ended.
pub const ESSENTIAL_EXITED: &str = "Essential container in task exited";

/// What the harness saw and did for one task.
#[derive(Clone, Debug, Default)]
pub struct Launched {
    pub task_arn: String,
    /// The RunTask request body as the runtime sent it.
    pub run_request: Value,
    /// The task's tags as moto reports them.
    pub tags: BTreeMap<String, String>,
    /// The task definition ARN the task runs.
    pub task_definition_arn: String,
    /// Per container: the environment it was started with.
    pub environments: BTreeMap<String, BTreeMap<String, String>>,
    /// Per container: (local folder, container path) of each mount.
    pub mounts: BTreeMap<String, Vec<(PathBuf, String)>>,
    /// Per container: process (group) id.
    pub pids: BTreeMap<String, u32>,
    /// The port Jupyter got on 127.0.0.1.
    pub port: Option<u16>,
    /// Why the harness did not start it, when it did not.
    pub refused: Option<String>,
    /// Set once its processes are gone, with why.
    pub ended: Option<String>,
}

struct Proc {
    container: String,
    essential: bool,
    child: Child,
}

#[derive(Default)]
struct Book {
    /// RunTask requests by task ARN, in order, not yet launched.
    pending: Vec<(String, Value)>,
    launched: HashMap<String, Launched>,
    procs: HashMap<String, Vec<Proc>>,
}

struct Inner {
    moto: String,
    root: PathBuf,
    ecs: aws_sdk_ecs::Client,
    efs: aws_sdk_efs::Client,
    http: reqwest::Client,
    state: Mutex<Book>,
}

/// See the module docs. Kills everything it started when dropped.
pub struct Harness {
    inner: Arc<Inner>,
    endpoint: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

/// Resolves tasks to the harness's local ports.
pub struct HarnessAddress(Arc<Inner>);

#[async_trait]
impl TaskAddress for HarnessAddress {
    async fn resolve(&self, task: &Task, _port: u16) -> Option<String> {
        let arn = task.task_arn()?;
        let st = self.0.state.lock().unwrap();
        st.launched
            .get(arn)
            .and_then(|l| l.port)
            .map(|p| format!("http://127.0.0.1:{p}"))
    }
}

impl Harness {
    /// A harness over the moto server at `moto` (its endpoint), with local
    /// folders under `root`. Call from inside a tokio runtime.
    pub async fn start(moto: &str, root: &Path) -> Harness {
        let bwrap = Command::new("bwrap").arg("--version").output();
        assert!(
            bwrap.is_ok_and(|o| o.status.success()),
            "the ECS harness runs containers under bubblewrap: apt-get install bubblewrap"
        );
        let config = westtek_aws::config_for_endpoint(moto, "test", "test");
        let inner = Arc::new(Inner {
            moto: moto.trim_end_matches('/').to_string(),
            root: root.to_path_buf(),
            ecs: aws_sdk_ecs::Client::new(&config),
            efs: aws_sdk_efs::Client::new(&config),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            state: Mutex::default(),
        });
        // moto walks a task from RUNNING to STOPPED one step per
        // DescribeTasks by default; a Fargate task runs until stopped.
        inner
            .http
            .post(format!(
                "{}/moto-api/state-manager/set-transition",
                inner.moto
            ))
            .json(&serde_json::json!({
                "model_name": "ecs::task",
                "transition": {"progression": "manual", "times": 1_000_000_000u64},
            }))
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("moto takes the ECS task state transition");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let app = axum::Router::new()
            .fallback(forward)
            .with_state(inner.clone());
        let proxy = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        let poller = tokio::spawn(poll_loop(Arc::downgrade(&inner)));
        Harness {
            inner,
            endpoint,
            tasks: vec![proxy, poller],
        }
    }

    /// The endpoint the runtime under test must use (the recording proxy).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// The SDK configuration for [`Harness::endpoint`].
    pub fn config(&self) -> aws_config::SdkConfig {
        westtek_aws::config_for_endpoint(&self.endpoint, "test", "test")
    }

    /// Resolves tasks to their local ports, for
    /// [`EcsJupyterRuntime::with_task_address`](crate::EcsJupyterRuntime::with_task_address).
    pub fn task_address(&self) -> Arc<dyn TaskAddress> {
        Arc::new(HarnessAddress(self.inner.clone()))
    }

    /// The folder standing for the EBS volume of environment `env`.
    pub fn ebs_dir(&self, env: &str) -> PathBuf {
        self.inner.root.join("ebs").join(env)
    }

    /// The folder standing for EBS snapshot `id`.
    pub fn snapshot_dir(&self, id: &str) -> PathBuf {
        self.inner.root.join("snapshots").join(id)
    }

    /// The folder standing for `path` on EFS file system `fs`.
    pub fn efs_dir(&self, fs: &str, path: &str) -> PathBuf {
        self.inner
            .root
            .join("efs")
            .join(fs)
            .join(path.trim_start_matches('/'))
    }

    /// The log of `container` of the task.
    pub fn log(&self, task_arn: &str, container: &str) -> String {
        std::fs::read_to_string(log_path(&self.inner.root, task_arn, container)).unwrap_or_default()
    }

    /// Every task seen so far.
    pub fn launched(&self) -> Vec<Launched> {
        let st = self.inner.state.lock().unwrap();
        let mut v: Vec<Launched> = st.launched.values().cloned().collect();
        v.sort_by(|a, b| a.task_arn.cmp(&b.task_arn));
        v
    }

    /// The task, once the harness handled it.
    pub fn task(&self, task_arn: &str) -> Option<Launched> {
        self.inner
            .state
            .lock()
            .unwrap()
            .launched
            .get(task_arn)
            .cloned()
    }

    /// Kills a container's processes as a crash would (SIGKILL).
    pub fn kill_container(&self, task_arn: &str, container: &str) {
        let st = self.inner.state.lock().unwrap();
        if let Some(procs) = st.procs.get(task_arn) {
            for p in procs.iter().filter(|p| p.container == container) {
                kill_group(p.child.id());
            }
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        let mut st = self.inner.state.lock().unwrap();
        for procs in st.procs.values_mut() {
            for p in procs.iter_mut() {
                kill_group(p.child.id());
                let _ = p.child.wait();
            }
        }
    }
}

fn kill_group(pid: u32) {
    if let Ok(pid) = i32::try_from(pid) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

fn log_path(root: &Path, task_arn: &str, container: &str) -> PathBuf {
    let id = task_arn.rsplit('/').next().unwrap_or(task_arn);
    root.join("logs").join(format!("{id}-{container}.log"))
}

/// Forwards a request to moto, keeping RunTask requests.
async fn forward(State(inner): State<Arc<Inner>>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, 256 << 20)
        .await
        .unwrap_or_default();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut rb = inner
        .http
        .request(parts.method.clone(), format!("{}{path}", inner.moto));
    for (k, v) in &parts.headers {
        if k != "host" && k != "content-length" {
            rb = rb.header(k, v);
        }
    }
    let target = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let resp = match rb.body(bytes.clone()).send().await {
        Ok(r) => r,
        Err(e) => {
            return Response::builder()
                .status(502)
                .body(Body::from(format!("harness proxy: {e}")))
                .unwrap();
        }
    };
    let status = resp.status();
    let headers = resp.headers().clone();
    let out = resp.bytes().await.unwrap_or_default();
    if target.ends_with(".RunTask") && status.is_success() {
        let request: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let response: Value = serde_json::from_slice(&out).unwrap_or(Value::Null);
        let arns: Vec<String> = response["tasks"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|t| t["taskArn"].as_str().map(str::to_string))
            .collect();
        let mut st = inner.state.lock().unwrap();
        for arn in arns {
            st.pending.push((arn, request.clone()));
        }
    }
    let mut b = Response::builder().status(status);
    for (k, v) in &headers {
        if k != "content-length" && k != "transfer-encoding" {
            b = b.header(k, v);
        }
    }
    b.body(Body::from(out)).unwrap()
}

async fn poll_loop(inner: std::sync::Weak<Inner>) {
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let Some(inner) = inner.upgrade() else {
            return;
        };
        let pending = std::mem::take(&mut inner.state.lock().unwrap().pending);
        for (arn, request) in pending {
            launch(&inner, arn, request).await;
        }
        watch(&inner).await;
    }
}

/// Cluster of a task ARN (`…:task/<cluster>/<id>`).
fn cluster_of(task_arn: &str) -> String {
    let mut parts = task_arn.rsplit('/');
    let _id = parts.next();
    parts.next().unwrap_or("default").to_string()
}

async fn describe_task(inner: &Inner, arn: &str) -> Option<Task> {
    inner
        .ecs
        .describe_tasks()
        .cluster(cluster_of(arn))
        .tasks(arn)
        .include(aws_sdk_ecs::types::TaskField::Tags)
        .send()
        .await
        .ok()?
        .tasks()
        .first()
        .cloned()
}

async fn stop_in_moto(inner: &Inner, arn: &str, reason: &str) {
    let _ = inner
        .ecs
        .stop_task()
        .cluster(cluster_of(arn))
        .task(arn)
        .reason(reason)
        .send()
        .await;
}

async fn launch(inner: &Arc<Inner>, arn: String, request: Value) {
    let mut launched = Launched {
        task_arn: arn.clone(),
        run_request: request.clone(),
        ..Launched::default()
    };
    let result = prepare(inner, &arn, &request, &mut launched).await;
    let mut procs = Vec::new();
    match result {
        Ok(plan) => {
            for (c, cmd) in plan {
                match spawn(inner, &arn, &c, cmd) {
                    Ok(child) => {
                        launched
                            .pids
                            .insert(c.name().unwrap_or("").into(), child.id());
                        procs.push(Proc {
                            container: c.name().unwrap_or("").into(),
                            essential: c.essential().unwrap_or(true),
                            child,
                        });
                    }
                    Err(e) => {
                        launched.refused = Some(e);
                        break;
                    }
                }
            }
        }
        Err(e) => launched.refused = Some(e),
    }
    let refused = launched.refused.clone();
    if refused.is_some() {
        for p in &mut procs {
            kill_group(p.child.id());
            let _ = p.child.wait();
        }
        procs.clear();
        launched.ended = refused.clone();
    }
    {
        let mut st = inner.state.lock().unwrap();
        st.launched.insert(arn.clone(), launched);
        st.procs.insert(arn.clone(), procs);
    }
    if let Some(why) = refused {
        stop_in_moto(inner, &arn, &format!("harness: {why}")).await;
    }
}

type Plan = Vec<(ContainerDefinition, Command)>;

/// Reads the task and its definition from moto and builds each container's
/// command.
async fn prepare(
    inner: &Inner,
    arn: &str,
    request: &Value,
    launched: &mut Launched,
) -> Result<Plan, String> {
    let task = describe_task(inner, arn)
        .await
        .ok_or_else(|| format!("moto does not describe task {arn}"))?;
    launched.tags = task
        .tags()
        .iter()
        .filter_map(|t| Some((t.key()?.to_string(), t.value()?.to_string())))
        .collect();
    let def_arn = task.task_definition_arn().unwrap_or_default().to_string();
    launched.task_definition_arn = def_arn.clone();
    let def: TaskDefinition = inner
        .ecs
        .describe_task_definition()
        .task_definition(&def_arn)
        .send()
        .await
        .map_err(|e| format!("DescribeTaskDefinition {def_arn}: {e:?}"))?
        .task_definition()
        .cloned()
        .ok_or("no task definition")?;
    // Volumes -> local folders.
    let mut volumes: HashMap<String, PathBuf> = HashMap::new();
    for v in def.volumes() {
        let name = v.name().unwrap_or_default().to_string();
        if v.configured_at_launch() == Some(true) {
            let conf = request["volumeConfigurations"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|c| c["name"] == name.as_str())
                .ok_or_else(|| {
                    format!("volume {name} is configured at launch but RunTask configured none")
                })?;
            let ebs = &conf["managedEBSVolume"];
            let env = ebs["tagSpecifications"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|s| s["tags"].as_array().into_iter().flatten())
                .find(|t| t["key"] == "environment")
                .and_then(|t| t["value"].as_str())
                .ok_or_else(|| format!("volume {name} has no environment tag"))?
                .to_string();
            let dir = inner.root.join("ebs").join(&env);
            if let Some(snap) = ebs["snapshotId"].as_str() {
                let src = inner.root.join("snapshots").join(snap);
                if !src.is_dir() {
                    return Err(format!("snapshot {snap} does not exist"));
                }
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(dir.parent().unwrap()).map_err(|e| e.to_string())?;
                let ok = Command::new("cp")
                    .arg("-a")
                    .arg(&src)
                    .arg(&dir)
                    .status()
                    .map_err(|e| e.to_string())?
                    .success();
                if !ok {
                    return Err(format!("copying snapshot {snap} failed"));
                }
            }
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            volumes.insert(name, dir);
        } else if let Some(efs) = v.efs_volume_configuration() {
            let fs = efs.file_system_id().to_string();
            let path = match efs.authorization_config().and_then(|a| a.access_point_id()) {
                Some(ap) => inner
                    .efs
                    .describe_access_points()
                    .access_point_id(ap)
                    .send()
                    .await
                    .map_err(|e| format!("access point {ap}: {e:?}"))?
                    .access_points()
                    .first()
                    .and_then(|a| a.root_directory())
                    .and_then(|r| r.path())
                    .unwrap_or("/")
                    .to_string(),
                None => efs.root_directory().unwrap_or("/").to_string(),
            };
            let dir = inner
                .root
                .join("efs")
                .join(&fs)
                .join(path.trim_start_matches('/'));
            std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
            volumes.insert(name, dir);
        }
    }
    let overrides = task.overrides();
    let port = if def
        .container_definitions()
        .iter()
        .any(|c| !c.port_mappings().is_empty())
    {
        let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
        Some(l.local_addr().map_err(|e| e.to_string())?.port())
    } else {
        None
    };
    launched.port = port;
    let mut plan = Vec::new();
    for c in def.container_definitions() {
        let name = c.name().unwrap_or_default().to_string();
        let over = overrides.and_then(|o| {
            o.container_overrides()
                .iter()
                .find(|co| co.name() == Some(name.as_str()))
        });
        let mut env: BTreeMap<String, String> = c
            .environment()
            .iter()
            .filter_map(|kv| Some((kv.name()?.to_string(), kv.value()?.to_string())))
            .collect();
        if let Some(o) = over {
            for kv in o.environment() {
                if let (Some(k), Some(v)) = (kv.name(), kv.value()) {
                    env.insert(k.into(), v.into());
                }
            }
        }
        if let (Some(p), false) = (port, c.port_mappings().is_empty()) {
            env.insert(crate::PORT_VAR.into(), p.to_string());
        }
        let command: Vec<String> = match over.map(|o| o.command()).filter(|c| !c.is_empty()) {
            Some(cmd) => cmd.to_vec(),
            None => c.command().to_vec(),
        };
        if command.is_empty() {
            return Err(format!(
                "container {name} has no command (the harness has no image)"
            ));
        }
        let mut mounts = Vec::new();
        for m in c.mount_points() {
            let v = m.source_volume().unwrap_or_default();
            let dir = volumes
                .get(v)
                .ok_or_else(|| format!("container {name} mounts unknown volume {v}"))?;
            mounts.push((
                dir.clone(),
                m.container_path().unwrap_or_default().to_string(),
            ));
        }
        let home = mounts
            .iter()
            .find(|(_, p)| p.starts_with("/home/"))
            .map_or("/tmp".to_string(), |(_, p)| p.clone());
        let mut cmd = Command::new("bwrap");
        cmd.args(sandbox_args(
            &mounts
                .iter()
                .map(|(d, p)| (d.clone(), p.clone()))
                .collect::<Vec<_>>(),
        ));
        if let Some((uid, gid)) = c.user().and_then(|u| u.split_once(':')) {
            cmd.args(["--unshare-user", "--uid", uid, "--gid", gid]);
        }
        cmd.args(["--unshare-pid", "--die-with-parent", "--chdir"]);
        cmd.arg(c.working_directory().unwrap_or("/"));
        cmd.arg("--").args(&command);
        cmd.env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", &home)
            .env("LANG", "C.UTF-8")
            .envs(&env);
        launched.environments.insert(name.clone(), env);
        launched.mounts.insert(name, mounts);
        plan.push((c.clone(), cmd));
    }
    Ok(plan)
}

/// bwrap arguments: a tmpfs root with the host's folders bound back, and
/// each `(local folder, container path)` bound at its path, without
/// creating anything on the host.
fn sandbox_args(mounts: &[(PathBuf, String)]) -> Vec<String> {
    let targets: Vec<PathBuf> = mounts.iter().map(|(_, p)| PathBuf::from(p)).collect();
    let mut args: Vec<String> = vec!["--tmpfs".into(), "/".into()];
    fn walk(dir: &Path, targets: &[PathBuf], args: &mut Vec<String>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if targets.contains(&p) {
                continue;
            }
            let s = p.to_string_lossy().to_string();
            if s == "/proc" || s == "/dev" {
                continue;
            }
            if let Ok(target) = std::fs::read_link(&p) {
                args.extend(["--symlink".into(), target.to_string_lossy().into(), s]);
            } else if targets.iter().any(|t| t.starts_with(&p)) {
                args.extend(["--dir".into(), s]);
                walk(&p, targets, args);
            } else {
                args.extend(["--dev-bind".into(), s.clone(), s]);
            }
        }
    }
    walk(Path::new("/"), &targets, &mut args);
    args.extend([
        "--proc".into(),
        "/proc".into(),
        "--dev-bind".into(),
        "/dev".into(),
        "/dev".into(),
    ]);
    for (local, path) in mounts {
        args.extend([
            "--bind".into(),
            local.to_string_lossy().into(),
            path.clone(),
        ]);
    }
    args
}

fn spawn(
    inner: &Inner,
    arn: &str,
    c: &ContainerDefinition,
    mut cmd: Command,
) -> Result<Child, String> {
    let name = c.name().unwrap_or_default();
    let log = log_path(&inner.root, arn, name);
    std::fs::create_dir_all(log.parent().unwrap()).map_err(|e| e.to_string())?;
    let out = std::fs::File::create(&log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    cmd.stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .process_group(0)
        .spawn()
        .map_err(|e| format!("starting container {name} with bwrap: {e}"))
}

/// Kills the processes of tasks moto says are stopped; stops in moto the
/// tasks whose essential container ended.
async fn watch(inner: &Arc<Inner>) {
    let running: Vec<String> = {
        let st = inner.state.lock().unwrap();
        st.procs
            .iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(a, _)| a.clone())
            .collect()
    };
    for arn in running {
        let stopped_in_moto = describe_task(inner, &arn)
            .await
            .map(|t| t.desired_status() == Some("STOPPED") || t.last_status() == Some("STOPPED"))
            .unwrap_or(false);
        let (why, mut gone, essential) = {
            let mut st = inner.state.lock().unwrap();
            let Some(procs) = st.procs.get_mut(&arn) else {
                continue;
            };
            let mut why = stopped_in_moto.then(|| "stopped through ECS (StopTask)".to_string());
            let mut essential = false;
            if why.is_none() {
                for p in procs.iter_mut() {
                    if let Ok(Some(status)) = p.child.try_wait() {
                        if p.essential {
                            why = Some(format!("container {} exited: {status}", p.container));
                            essential = true;
                            break;
                        }
                    }
                }
            }
            let Some(why) = why else {
                continue;
            };
            (why, std::mem::take(procs), essential)
        };
        for p in &gone {
            kill_group(p.child.id());
        }
        // Reaped off the async threads (after SIGKILL: quick, but a wait).
        let _ = tokio::task::spawn_blocking(move || {
            for p in &mut gone {
                let _ = p.child.wait();
            }
        })
        .await;
        if let Some(l) = inner.state.lock().unwrap().launched.get_mut(&arn) {
            l.ended = Some(why);
        }
        if essential {
            stop_in_moto(inner, &arn, ESSENTIAL_EXITED).await;
        }
    }
}

/// A subnet of moto's default VPC (which has DNS host names on, as awsvpc
/// tasks need), through EC2's query API.
pub async fn default_subnet(moto: &str) -> String {
    let body = reqwest::Client::new()
        .post(moto)
        // moto routes query requests by the credential scope's service.
        .header(
            "Authorization",
            "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/ec2/aws4_request, \
             SignedHeaders=host, Signature=0",
        )
        .form(&[("Action", "DescribeSubnets"), ("Version", "2016-11-15")])
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let start = body
        .find("<subnetId>")
        .expect("moto lists a default subnet")
        + "<subnetId>".len();
    let end = body[start..].find('<').unwrap() + start;
    body[start..end].to_string()
}
