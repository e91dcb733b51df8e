//! Jupyter servers as ECS Fargate tasks (issue 15, part 2): the
//! [`JupyterRuntime`](westtek_domain::ports::JupyterRuntime) port on Amazon
//! ECS, with each researcher's EFS home and each environment's EBS volume.
//!
//! - [`EcsJupyterRuntime`] (module `runtime`): RunTask, readiness, StopTask,
//!   exits, idle culling; its policy is in that module's docs.
//! - [`EcsSettings`]: what the deployment tells it (the `WESTTEK_ECS_*`
//!   settings).
//! - `home`: the researcher's EFS access point and task definition revision.
//! - `sizing`: Fargate task sizes from a lab's memory limit.
//! - `exit`: how a task that ended on its own ended.
//! - [`JupyterTaskDefinition`]: registers a task definition shaped like the
//!   CDK app's (development accounts, tests).
//! - with feature `testing`, module `testing`: the harness that runs what
//!   moto's ECS was asked to run as local processes (what it plays honestly
//!   and where it differs from Fargate is in its docs).
//!
//! # Permissions
//!
//! What the platform's role needs (the CDK app's env-manager role; the
//! starred ones are not in its policy yet):
//!
//! - `ecs:RunTask` on the family's revisions (condition: the cluster),
//!   `ecs:StopTask` and `ecs:DescribeTasks` on the cluster's tasks;
//! - `ecs:RegisterTaskDefinition`, `ecs:DescribeTaskDefinition`,
//!   `ecs:ListTaskDefinitions`* (finding the revisions registered before a
//!   restart) on `*`;
//! - `ecs:TagResource`* for tags given on create (RunTask's task tags,
//!   RegisterTaskDefinition's revision tags; ECS authorises tag-on-create
//!   separately), e.g. with condition `ecs:CreateAction` in `RunTask`,
//!   `RegisterTaskDefinition`;
//! - `iam:PassRole` on the task role, the execution role and the EBS role;
//! - `elasticfilesystem:CreateAccessPoint`, `DescribeAccessPoints`,
//!   `TagResource` on the homes file system and its access points.
//!
//! # The Jupyter image's contract
//!
//! The `jupyter` container gets `JUPYTER_TOKEN` (Jupyter reads it itself),
//! `JUPYTER_BASE_URL`, `JUPYTER_PORT`, `WESTTEK_ENVIRONMENT_ID` and
//! `WESTTEK_LAB_ID`; its command must serve on `0.0.0.0:$JUPYTER_PORT` under
//! `$JUPYTER_BASE_URL`. The `agent` container gets the two `WESTTEK_*` ids.

pub mod error;
pub mod exit;
pub mod home;
mod provision;
mod runtime;
mod settings;
pub mod sizing;
#[cfg(feature = "testing")]
pub mod testing;

pub use provision::{ContainerSpec, JupyterTaskDefinition, ENV_MOUNT, HOME_MOUNT};
pub use runtime::{
    ebs_volume_id, private_ipv4, EcsJupyterRuntime, EniAddress, TaskAddress, AGENT_CONTAINER,
    BASE_URL_VAR, ENVIRONMENT_VAR, LAB_VAR, PORT_VAR, TOKEN_VAR,
};
pub use settings::EcsSettings;
