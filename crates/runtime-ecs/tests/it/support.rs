//! One moto, harness, cluster, EFS file system and Jupyter task definition
//! per test; a JupyterLab venv made with uv (from uv's cache after the first
//! run).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use westtek_aws::testing::Moto;
use westtek_domain::ports::{LaunchSpec, ResourceLimits};
use westtek_domain::{EnvironmentId, LabId, UserId};
use westtek_runtime_ecs::testing::{default_subnet, Harness};
use westtek_runtime_ecs::{ContainerSpec, EcsJupyterRuntime, EcsSettings, JupyterTaskDefinition};

pub const CLUSTER: &str = "westtek-jupyter";
pub const FAMILY: &str = "westtek-jupyter";
pub const EBS_ROLE: &str = "arn:aws:iam::123456789012:role/westtek-ebs";
pub const SECURITY_GROUP: &str = "sg-0123456789abcdef0";

/// JupyterLab from the environment volume's venv, on 127.0.0.1 (the real
/// image listens on 0.0.0.0), port and base URL from the variables the
/// runtime sets; Jupyter reads `JUPYTER_TOKEN` itself.
pub fn jupyter_command() -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        "exec /opt/jupyter/venv/bin/python -m jupyterlab --no-browser --ip=127.0.0.1 \
         --ServerApp.port=\"$JUPYTER_PORT\" --ServerApp.port_retries=0 \
         --ServerApp.base_url=\"$JUPYTER_BASE_URL\" --ServerApp.root_dir=/home/researcher"
            .into(),
    ]
}

/// The agent stand-in: proves both mounts and its environment, then waits.
pub fn agent_command() -> Vec<String> {
    vec![
        "sh".into(),
        "-c".into(),
        "echo \"$WESTTEK_ENVIRONMENT_ID\" > /opt/jupyter/agent-was-here && \
         echo \"$WESTTEK_LAB_ID\" > /home/researcher/agent-was-here && exec sleep 3600"
            .into(),
    ]
}

pub struct Fixture {
    pub harness: Harness,
    pub runtime: EcsJupyterRuntime,
    pub settings: EcsSettings,
    /// Clients straight to moto (not through the harness's proxy).
    pub ecs: aws_sdk_ecs::Client,
    pub efs: aws_sdk_efs::Client,
    pub fs_id: String,
    /// Kept alive for the test (dropped last: the harness stops first).
    pub _moto: Moto,
    pub _dir: tempfile::TempDir,
}

/// A fixture whose Jupyter container runs `jupyter`.
pub async fn fixture_with(jupyter: Vec<String>, tune: impl FnOnce(&mut EcsSettings)) -> Fixture {
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let dir = tempfile::Builder::new()
        .prefix("ecs-it-")
        .tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap();
    let harness = Harness::start(&moto.endpoint(), dir.path()).await;
    let config = moto.config();
    let ecs = aws_sdk_ecs::Client::new(&config);
    let efs = aws_sdk_efs::Client::new(&config);
    ecs.create_cluster()
        .cluster_name(CLUSTER)
        .send()
        .await
        .unwrap();
    let fs_id = efs
        .create_file_system()
        .creation_token("westtek-homes")
        .encrypted(true)
        .send()
        .await
        .unwrap()
        .file_system_id
        .clone();
    let template_access_point: String = efs
        .create_access_point()
        .client_token("template")
        .file_system_id(&fs_id)
        .root_directory(
            aws_sdk_efs::types::RootDirectory::builder()
                .path("/researchers/template")
                .build(),
        )
        .send()
        .await
        .unwrap()
        .access_point_id
        .unwrap();
    JupyterTaskDefinition {
        family: FAMILY.into(),
        efs_file_system_id: fs_id.clone(),
        template_access_point: template_access_point.clone(),
        jupyter_port: 8888,
        jupyter: ContainerSpec {
            image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/westtek-jupyter:test".into(),
            command: jupyter,
            memory_mib: 3584,
        },
        agent: ContainerSpec {
            image: "123456789012.dkr.ecr.us-east-1.amazonaws.com/westtek:test".into(),
            command: agent_command(),
            memory_mib: 512,
        },
    }
    .register(&ecs)
    .await
    .unwrap();
    let subnet = default_subnet(&moto.endpoint()).await;
    let mut settings = EcsSettings::new(
        CLUSTER,
        FAMILY,
        vec![subnet],
        vec![SECURITY_GROUP.into()],
        EBS_ROLE,
        fs_id.clone(),
    );
    settings.ready_timeout = Duration::from_secs(180);
    settings.poll_interval = Duration::from_millis(200);
    tune(&mut settings);
    let runtime = EcsJupyterRuntime::with_config(&harness.config(), settings.clone())
        .with_task_address(harness.task_address());
    Fixture {
        harness,
        runtime,
        settings,
        ecs,
        efs,
        fs_id,
        _moto: moto,
        _dir: dir,
    }
}

pub async fn fixture() -> Fixture {
    fixture_with(jupyter_command(), |_| {}).await
}

pub fn spec(researcher: UserId) -> LaunchSpec {
    let env = EnvironmentId::new();
    LaunchSpec {
        env_id: env,
        lab_id: LabId::new(),
        researcher_id: researcher,
        base_url: format!("/jupyter/{env}/"),
        limits: ResourceLimits {
            memory_bytes: 3 << 30,
            max_processes: 256,
        },
    }
}

fn uv() -> PathBuf {
    if let Ok(out) = Command::new("uv").arg("--version").output() {
        if out.status.success() {
            return PathBuf::from("uv");
        }
    }
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let p = home.join(".cache/westtek/tools/bin/uv");
    assert!(
        p.exists(),
        "these tests need uv on PATH or at {} (scripts/test installs it)",
        p.display()
    );
    p
}

/// A relocatable venv with JupyterLab at `dir/venv` (uv links from its
/// cache: about a second once the cache is warm).
pub async fn jupyter_venv(dir: &Path) {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).unwrap();
        let venv = dir.join("venv");
        let uv = uv();
        let ok = Command::new(&uv)
            .args(["venv", "-q", "--relocatable", "--python", "3.11"])
            .arg(&venv)
            .status()
            .unwrap()
            .success();
        assert!(ok, "uv venv failed");
        let ok = Command::new(&uv)
            .args(["pip", "install", "-q", "--python"])
            .arg(venv.join("bin/python"))
            .arg("jupyterlab")
            .status()
            .unwrap()
            .success();
        assert!(ok, "uv pip install jupyterlab failed");
    })
    .await
    .unwrap();
}

/// Polls `check` every 100 ms until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    check().await
}

/// Whether a process (group leader) still exists.
pub fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .unwrap_or_default()
            .contains(") Z ")
}

/// The task as moto describes it.
pub async fn moto_task(f: &Fixture, arn: &str) -> aws_sdk_ecs::types::Task {
    f.ecs
        .describe_tasks()
        .cluster(CLUSTER)
        .tasks(arn)
        .send()
        .await
        .unwrap()
        .tasks()
        .first()
        .cloned()
        .unwrap()
}

/// Every revision of the family, as moto has them.
pub async fn all_revisions(f: &Fixture) -> Vec<aws_sdk_ecs::types::TaskDefinition> {
    let arns = f
        .ecs
        .list_task_definitions()
        .family_prefix(FAMILY)
        .send()
        .await
        .unwrap()
        .task_definition_arns()
        .to_vec();
    let mut defs = Vec::new();
    for arn in arns {
        defs.push(
            f.ecs
                .describe_task_definition()
                .task_definition(arn)
                .send()
                .await
                .unwrap()
                .task_definition()
                .cloned()
                .unwrap(),
        );
    }
    defs
}

/// The access points of the fixture's file system tagged with a researcher.
pub async fn researcher_access_points(f: &Fixture) -> Vec<(String, String, String)> {
    f.efs
        .describe_access_points()
        .file_system_id(&f.fs_id)
        .send()
        .await
        .unwrap()
        .access_points()
        .iter()
        .filter_map(|ap| {
            let r = ap
                .tags()
                .iter()
                .find(|t| t.key() == westtek_runtime_ecs::home::RESEARCHER_TAG)?;
            Some((
                ap.access_point_id()?.to_string(),
                r.value().to_string(),
                ap.root_directory()?.path()?.to_string(),
            ))
        })
        .collect()
}
