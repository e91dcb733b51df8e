//! Registers a Jupyter task definition shaped like the CDK app's, for
//! development accounts and tests (the CDK app registers the real one).

use crate::error::{describe, start_failed};
use crate::exit::JUPYTER_CONTAINER;
use crate::home::{ENV_VOLUME, HOME_VOLUME};
use crate::runtime::AGENT_CONTAINER;
use aws_sdk_ecs::types::{
    Compatibility, ContainerDefinition, EfsAuthorizationConfig, EfsAuthorizationConfigIam,
    EfsTransitEncryption, EfsVolumeConfiguration, HealthCheck, MountPoint, NetworkMode,
    PortMapping, TransportProtocol, Volume,
};
use westtek_domain::Result;

/// Where the environment volume is mounted in both containers.
pub const ENV_MOUNT: &str = "/opt/jupyter";
/// Where the researcher's home is mounted in both containers.
pub const HOME_MOUNT: &str = "/home/researcher";

/// One container of [`JupyterTaskDefinition`].
#[derive(Clone, Debug)]
pub struct ContainerSpec {
    pub image: String,
    /// The command (the image's own when empty).
    pub command: Vec<String>,
    /// Hard memory limit, MiB.
    pub memory_mib: i32,
}

/// The CDK app's Jupyter task definition: containers `jupyter` (port, user
/// 1000:1000, health check) and `agent`, both mounting volume `env`
/// (configured at launch) at [`ENV_MOUNT`] and volume `home` (EFS with
/// transit encryption and IAM authorisation through `template_access_point`)
/// at [`HOME_MOUNT`]; FARGATE, awsvpc, 1 vCPU, 4 GiB.
#[derive(Clone, Debug)]
pub struct JupyterTaskDefinition {
    pub family: String,
    pub efs_file_system_id: String,
    pub template_access_point: String,
    pub jupyter_port: u16,
    pub jupyter: ContainerSpec,
    pub agent: ContainerSpec,
}

impl JupyterTaskDefinition {
    /// Registers it; the new revision's ARN.
    ///
    /// # Errors
    /// `Upstream` naming the family and AWS's error.
    pub async fn register(&self, ecs: &aws_sdk_ecs::Client) -> Result<String> {
        let mounts = || {
            [(ENV_VOLUME, ENV_MOUNT), (HOME_VOLUME, HOME_MOUNT)].map(|(v, p)| {
                MountPoint::builder()
                    .source_volume(v)
                    .container_path(p)
                    .read_only(false)
                    .build()
            })
        };
        let port = i32::from(self.jupyter_port);
        let command = |c: &ContainerSpec| (!c.command.is_empty()).then(|| c.command.clone());
        let health = HealthCheck::builder()
            .command("CMD")
            .command("python3")
            .command("-c")
            .command(format!(
                "import urllib.request; urllib.request.urlopen('http://127.0.0.1:{port}/api', timeout=4)"
            ))
            .interval(15)
            .timeout(5)
            .retries(4)
            .start_period(120)
            .build()
            .map_err(|e| start_failed(format!("ECS runtime: health check: {e}")))?;
        let jupyter = ContainerDefinition::builder()
            .name(JUPYTER_CONTAINER)
            .image(&self.jupyter.image)
            .essential(true)
            .memory(self.jupyter.memory_mib)
            .user("1000:1000")
            .set_command(command(&self.jupyter))
            .port_mappings(
                PortMapping::builder()
                    .container_port(port)
                    .protocol(TransportProtocol::Tcp)
                    .name("jupyter")
                    .build(),
            )
            .health_check(health)
            .set_mount_points(Some(mounts().to_vec()))
            .build();
        let agent = ContainerDefinition::builder()
            .name(AGENT_CONTAINER)
            .image(&self.agent.image)
            .essential(true)
            .memory(self.agent.memory_mib)
            .set_command(command(&self.agent))
            .set_mount_points(Some(mounts().to_vec()))
            .build();
        let home = EfsVolumeConfiguration::builder()
            .file_system_id(&self.efs_file_system_id)
            .transit_encryption(EfsTransitEncryption::Enabled)
            .authorization_config(
                EfsAuthorizationConfig::builder()
                    .access_point_id(&self.template_access_point)
                    .iam(EfsAuthorizationConfigIam::Enabled)
                    .build(),
            )
            .build()
            .map_err(|e| start_failed(format!("ECS runtime: EFS volume: {e}")))?;
        let what = format!("task definition family {}", self.family);
        let out = ecs
            .register_task_definition()
            .family(&self.family)
            .network_mode(NetworkMode::Awsvpc)
            .requires_compatibilities(Compatibility::Fargate)
            .cpu("1024")
            .memory("4096")
            .container_definitions(jupyter)
            .container_definitions(agent)
            .volumes(
                Volume::builder()
                    .name(ENV_VOLUME)
                    .configured_at_launch(true)
                    .build(),
            )
            .volumes(
                Volume::builder()
                    .name(HOME_VOLUME)
                    .efs_volume_configuration(home)
                    .build(),
            )
            .send()
            .await
            .map_err(|e| start_failed(describe("RegisterTaskDefinition", &what, &e)))?;
        Ok(out
            .task_definition()
            .and_then(|d| d.task_definition_arn())
            .unwrap_or_default()
            .to_string())
    }
}
