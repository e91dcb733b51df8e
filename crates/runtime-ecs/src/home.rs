//! Each researcher's home: an EFS access point and a revision of the Jupyter
//! task definition that mounts it.
//!
//! Policy:
//! - **Access point**: one per researcher on the settings' file system,
//!   POSIX user and group 1000 (the `jupyter` container's user), root
//!   directory `/researchers/<researcher id>` created on first mount with
//!   owner 1000:1000 and mode 750, tagged `westtek:researcher`. Found again
//!   by that tag (DescribeAccessPoints of the file system), so a restarted
//!   platform reuses it; created with the client token
//!   `westtek-<researcher id>`, so two platforms racing get the same one.
//!   Never deleted here (the notebooks are on it).
//! - **Task definition**: the family's latest revision is the template
//!   (the CDK app's, or a revision derived from it: every revision of the
//!   family differs only in the `home` volume's access point). A
//!   researcher's revision copies everything of the template and replaces
//!   the `home` volume's file system and access point (transit encryption
//!   and IAM authorisation stay on). It is tagged `westtek:researcher` and
//!   `westtek:template` (the template's ARN), cached per researcher and
//!   template, and registered only when missing: a new CDK deployment (a
//!   new template) gets new revisions, nothing else does. A restarted
//!   platform finds the revisions it registered before by reading, once per
//!   template, the family's ACTIVE revisions newer than the template
//!   (their tags say whose they are).

use crate::error::{describe, start_failed};
use aws_sdk_ecs::error::ProvideErrorMetadata as _;
use aws_sdk_ecs::types::{
    EfsAuthorizationConfig, EfsAuthorizationConfigIam, EfsTransitEncryption,
    EfsVolumeConfiguration, Tag, TaskDefinition, TaskDefinitionField,
};
use aws_sdk_efs::types::{CreationInfo, PosixUser, RootDirectory};
use westtek_domain::{Result, UserId};

/// The tag naming an access point's or revision's researcher.
pub const RESEARCHER_TAG: &str = "westtek:researcher";
/// The tag naming the template a revision was derived from.
pub const TEMPLATE_TAG: &str = "westtek:template";
/// The task definition volume holding the researcher's home.
pub const HOME_VOLUME: &str = "home";
/// The task definition volume holding the environment (EBS, configured at launch).
pub const ENV_VOLUME: &str = "env";
/// POSIX user and group of the Jupyter container.
pub const POSIX_ID: i64 = 1000;

/// The root directory of a researcher's access point.
pub fn home_path(researcher: UserId) -> String {
    format!("/researchers/{researcher}")
}

/// The researcher's access point id, created when missing.
pub(crate) async fn ensure_access_point(
    efs: &aws_sdk_efs::Client,
    fs_id: &str,
    researcher: UserId,
) -> Result<String> {
    let rid = researcher.to_string();
    let what = format!("EFS file system {fs_id}");
    let mut next: Option<String> = None;
    loop {
        let page = efs
            .describe_access_points()
            .file_system_id(fs_id)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| start_failed(describe("DescribeAccessPoints", &what, &e)))?;
        for ap in page.access_points() {
            let mine = ap
                .tags()
                .iter()
                .any(|t| t.key() == RESEARCHER_TAG && t.value() == rid);
            let usable = !matches!(
                ap.life_cycle_state(),
                Some(aws_sdk_efs::types::LifeCycleState::Deleting)
                    | Some(aws_sdk_efs::types::LifeCycleState::Deleted)
                    | Some(aws_sdk_efs::types::LifeCycleState::Error)
            );
            if mine && usable {
                if let Some(id) = ap.access_point_id() {
                    return Ok(id.to_string());
                }
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_string()),
            _ => break,
        }
    }
    let posix = PosixUser::builder()
        .uid(POSIX_ID)
        .gid(POSIX_ID)
        .build()
        .map_err(|e| start_failed(format!("ECS runtime: EFS POSIX user: {e}")))?;
    let creation = CreationInfo::builder()
        .owner_uid(POSIX_ID)
        .owner_gid(POSIX_ID)
        .permissions("750")
        .build()
        .map_err(|e| start_failed(format!("ECS runtime: EFS creation info: {e}")))?;
    let tag = |k: &str, v: &str| {
        aws_sdk_efs::types::Tag::builder()
            .key(k)
            .value(v)
            .build()
            .map_err(|e| start_failed(format!("ECS runtime: EFS tag {k}: {e}")))
    };
    let created = efs
        .create_access_point()
        .client_token(format!("westtek-{rid}"))
        .file_system_id(fs_id)
        .posix_user(posix)
        .root_directory(
            RootDirectory::builder()
                .path(home_path(researcher))
                .creation_info(creation)
                .build(),
        )
        .tags(tag(RESEARCHER_TAG, &rid)?)
        .tags(tag("Name", &format!("westtek home {rid}"))?)
        .send()
        .await
        .map_err(|e| start_failed(describe("CreateAccessPoint", &what, &e)))?;
    created
        .access_point_id()
        .map(str::to_string)
        .ok_or_else(|| {
            start_failed(format!(
                "ECS runtime: CreateAccessPoint on {what} answered without an access point id"
            ))
        })
}

/// The family's latest revision and its tags.
pub(crate) async fn latest_revision(
    ecs: &aws_sdk_ecs::Client,
    family: &str,
) -> Result<(TaskDefinition, Vec<Tag>)> {
    let what = format!("task definition family {family}");
    let out = ecs
        .describe_task_definition()
        .task_definition(family)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| {
            let mut m = describe("DescribeTaskDefinition", &what, &e);
            if e.code() == Some("ClientException") {
                m.push_str(
                    " (check WESTTEK_ECS_TASK_FAMILY: the Jupyter task definition of the CDK \
                     app is not registered under that family)",
                );
            }
            start_failed(m)
        })?;
    let def = out.task_definition().cloned().ok_or_else(|| {
        start_failed(format!(
            "ECS runtime: DescribeTaskDefinition on {what} answered without a definition"
        ))
    })?;
    Ok((def, out.tags().to_vec()))
}

/// The revision number at the end of a task definition ARN (`…:<n>`).
fn revision_of(arn: &str) -> Option<i64> {
    arn.rsplit(':').next()?.parse().ok()
}

/// Every researcher's revision derived from `template_arn`, by researcher
/// id (newest wins): the family's ACTIVE revisions newer than the template,
/// read once per template so a restarted platform reuses them instead of
/// registering again.
pub(crate) async fn derived_revisions(
    ecs: &aws_sdk_ecs::Client,
    family: &str,
    template_arn: &str,
) -> Result<Vec<(String, TaskDefinition)>> {
    let what = format!("task definition family {family}");
    let floor = revision_of(template_arn).unwrap_or(0);
    let suffix = format!("task-definition/{family}:");
    let mut arns: Vec<(i64, String)> = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let page = ecs
            .list_task_definitions()
            .family_prefix(family)
            .status(aws_sdk_ecs::types::TaskDefinitionStatus::Active)
            .set_next_token(next.take())
            .send()
            .await
            .map_err(|e| start_failed(describe("ListTaskDefinitions", &what, &e)))?;
        for arn in page.task_definition_arns() {
            // The prefix also matches longer family names.
            let exact = arn
                .rsplit_once(&suffix)
                .is_some_and(|(_, rev)| rev.parse::<i64>().is_ok());
            if let (true, Some(rev)) = (exact, revision_of(arn)) {
                if rev > floor {
                    arns.push((rev, arn.clone()));
                }
            }
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_string()),
            _ => break,
        }
    }
    arns.sort_by_key(|a| std::cmp::Reverse(a.0));
    let mut found: Vec<(String, TaskDefinition)> = Vec::new();
    for (_, arn) in arns {
        let out = ecs
            .describe_task_definition()
            .task_definition(&arn)
            .include(TaskDefinitionField::Tags)
            .send()
            .await
            .map_err(|e| start_failed(describe("DescribeTaskDefinition", &arn, &e)))?;
        let tag = |k: &str| {
            out.tags()
                .iter()
                .find(|t| t.key() == Some(k))
                .and_then(|t| t.value())
                .map(str::to_string)
        };
        if tag(TEMPLATE_TAG).as_deref() != Some(template_arn) {
            continue;
        }
        if let (Some(researcher), Some(def)) = (tag(RESEARCHER_TAG), out.task_definition()) {
            if !found.iter().any(|(r, _)| *r == researcher) {
                found.push((researcher, def.clone()));
            }
        }
    }
    Ok(found)
}

/// The ARN of the template a revision came from (the revision's own ARN when
/// it is a template).
pub(crate) fn template_of(def: &TaskDefinition, tags: &[Tag]) -> String {
    tags.iter()
        .find(|t| t.key() == Some(TEMPLATE_TAG))
        .and_then(|t| t.value())
        .map(str::to_string)
        .unwrap_or_else(|| def.task_definition_arn().unwrap_or("").to_string())
}

/// The access point the `home` volume of `def` uses.
pub(crate) fn home_access_point(def: &TaskDefinition) -> Option<&str> {
    def.volumes()
        .iter()
        .find(|v| v.name() == Some(HOME_VOLUME))
        .and_then(|v| v.efs_volume_configuration())
        .and_then(|e| e.authorization_config())
        .and_then(|a| a.access_point_id())
}

/// Registers `template` again with the `home` volume on `access_point`.
pub(crate) async fn register_for(
    ecs: &aws_sdk_ecs::Client,
    template: &TaskDefinition,
    template_arn: &str,
    fs_id: &str,
    access_point: &str,
    researcher: UserId,
) -> Result<TaskDefinition> {
    let family = template.family().unwrap_or_default().to_string();
    let what = format!("task definition family {family}");
    let mut volumes = template.volumes().to_vec();
    let home = volumes
        .iter_mut()
        .find(|v| v.name() == Some(HOME_VOLUME))
        .ok_or_else(|| {
            start_failed(format!(
                "ECS runtime: {what} has no volume named {HOME_VOLUME} (the researcher's \
                 EFS home); deploy the CDK app's Jupyter task definition"
            ))
        })?;
    home.efs_volume_configuration = Some(
        EfsVolumeConfiguration::builder()
            .file_system_id(fs_id)
            .transit_encryption(EfsTransitEncryption::Enabled)
            .authorization_config(
                EfsAuthorizationConfig::builder()
                    .access_point_id(access_point)
                    .iam(EfsAuthorizationConfigIam::Enabled)
                    .build(),
            )
            .build()
            .map_err(|e| start_failed(format!("ECS runtime: EFS volume of {what}: {e}")))?,
    );
    let t = template.clone();
    let registered = ecs
        .register_task_definition()
        .family(family)
        .set_task_role_arn(t.task_role_arn)
        .set_execution_role_arn(t.execution_role_arn)
        .set_network_mode(t.network_mode)
        .set_container_definitions(t.container_definitions)
        .set_volumes(Some(volumes))
        .set_placement_constraints(t.placement_constraints)
        .set_requires_compatibilities(t.requires_compatibilities)
        .set_cpu(t.cpu)
        .set_memory(t.memory)
        .set_pid_mode(t.pid_mode)
        .set_ipc_mode(t.ipc_mode)
        .set_proxy_configuration(t.proxy_configuration)
        .set_ephemeral_storage(t.ephemeral_storage)
        .set_runtime_platform(t.runtime_platform)
        .set_enable_fault_injection(t.enable_fault_injection)
        .tags(
            Tag::builder()
                .key(RESEARCHER_TAG)
                .value(researcher.to_string())
                .build(),
        )
        .tags(Tag::builder().key(TEMPLATE_TAG).value(template_arn).build())
        .send()
        .await
        .map_err(|e| start_failed(describe("RegisterTaskDefinition", &what, &e)))?;
    registered.task_definition().cloned().ok_or_else(|| {
        start_failed(format!(
            "ECS runtime: RegisterTaskDefinition on {what} answered without a definition"
        ))
    })
}
