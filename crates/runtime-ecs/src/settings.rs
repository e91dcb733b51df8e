//! What the ECS runtime needs to know about the account it runs tasks in.
//!
//! Policy: every value comes from the deployment (the CDK app's outputs);
//! nothing is discovered at run time, so a wrong value fails the first
//! start with a message naming it rather than picking something else.

use std::time::Duration;

/// Settings of [`EcsJupyterRuntime`](crate::EcsJupyterRuntime). The
/// platform maps them to `WESTTEK_ECS_*` settings.
#[derive(Clone, Debug)]
pub struct EcsSettings {
    /// Name or ARN of the ECS cluster the Jupyter tasks run in
    /// (`WESTTEK_ECS_CLUSTER`).
    pub cluster: String,
    /// Family of the Jupyter task definition the CDK app declares (containers
    /// `jupyter` and `agent`, volumes `env` and `home`)
    /// (`WESTTEK_ECS_TASK_FAMILY`). Each researcher gets a revision of it
    /// whose `home` volume uses their EFS access point.
    pub task_family: String,
    /// Private subnets the tasks get their network interface in
    /// (`WESTTEK_ECS_SUBNETS`, comma-separated). No public IP is assigned.
    pub subnets: Vec<String>,
    /// Security groups of the tasks (`WESTTEK_ECS_SECURITY_GROUPS`,
    /// comma-separated): must let the platform reach `jupyter_port`.
    pub security_groups: Vec<String>,
    /// ECS infrastructure role that creates and attaches the environments'
    /// EBS volumes (`WESTTEK_ECS_EBS_ROLE_ARN`; the CDK app's `EbsRole`).
    pub ebs_role_arn: String,
    /// EFS file system holding the researchers' homes
    /// (`WESTTEK_ECS_EFS_FILE_SYSTEM_ID`, `fs-…`).
    pub efs_file_system_id: String,
    /// Size of a new environment volume, GiB (`WESTTEK_ECS_EBS_SIZE_GIB`,
    /// default 20). Not used when restoring from a snapshot, whose size wins.
    pub ebs_size_gib: i32,
    /// EBS volume type (`WESTTEK_ECS_EBS_VOLUME_TYPE`, default `gp3`).
    pub ebs_volume_type: String,
    /// KMS key the environment volumes are encrypted with
    /// (`WESTTEK_ECS_EBS_KMS_KEY_ID`; `None`: the account's default EBS key).
    /// Volumes are always encrypted. The EBS role must be allowed to use it.
    pub ebs_kms_key_id: Option<String>,
    /// Port Jupyter listens on inside the task (`WESTTEK_ECS_JUPYTER_PORT`,
    /// default 8888, the CDK app's).
    pub jupyter_port: u16,
    /// How long `start` waits for the task to run and Jupyter to answer
    /// (`WESTTEK_ECS_READY_TIMEOUT_SECS`, default 600: Fargate pulls the image
    /// and attaches the volume first, which takes minutes).
    pub ready_timeout: Duration,
    /// How often `start` asks ECS and Jupyter while waiting (default 2 s).
    pub poll_interval: Duration,
    /// Stop servers without traffic for this long (`WESTTEK_ECS_IDLE_TIMEOUT_SECS`;
    /// `None`: never), as the local runtime does.
    pub idle_timeout: Option<Duration>,
}

impl EcsSettings {
    /// Settings with the defaults above for everything but the deployment's
    /// own names.
    pub fn new(
        cluster: impl Into<String>,
        task_family: impl Into<String>,
        subnets: Vec<String>,
        security_groups: Vec<String>,
        ebs_role_arn: impl Into<String>,
        efs_file_system_id: impl Into<String>,
    ) -> Self {
        EcsSettings {
            cluster: cluster.into(),
            task_family: task_family.into(),
            subnets,
            security_groups,
            ebs_role_arn: ebs_role_arn.into(),
            efs_file_system_id: efs_file_system_id.into(),
            ebs_size_gib: 20,
            ebs_volume_type: "gp3".into(),
            ebs_kms_key_id: None,
            jupyter_port: 8888,
            ready_timeout: Duration::from_secs(600),
            poll_interval: Duration::from_secs(2),
            idle_timeout: None,
        }
    }
}
