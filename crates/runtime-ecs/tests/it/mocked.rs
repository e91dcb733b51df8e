//! What moto cannot produce: RunTask answering without a task but with
//! `failures` (capacity, a bad subnet), on a mock ECS client with the SDK's
//! own response shapes; EFS is moto's.

use aws_sdk_ecs::operation::describe_task_definition::DescribeTaskDefinitionOutput;
use aws_sdk_ecs::operation::list_task_definitions::ListTaskDefinitionsOutput;
use aws_sdk_ecs::operation::register_task_definition::RegisterTaskDefinitionOutput;
use aws_sdk_ecs::operation::run_task::RunTaskOutput;
use aws_sdk_ecs::types::{
    ContainerDefinition, EfsVolumeConfiguration, Failure, TaskDefinition, Volume,
};
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use westtek_aws::testing::Moto;
use westtek_domain::ports::JupyterRuntime;
use westtek_domain::{DomainError, UserId};
use westtek_runtime_ecs::{EcsJupyterRuntime, EcsSettings};

fn template() -> TaskDefinition {
    TaskDefinition::builder()
        .task_definition_arn("arn:aws:ecs:us-east-1:123456789012:task-definition/westtek-jupyter:1")
        .family("westtek-jupyter")
        .revision(1)
        .cpu("1024")
        .memory("4096")
        .container_definitions(
            ContainerDefinition::builder()
                .name("jupyter")
                .memory(3584)
                .build(),
        )
        .container_definitions(
            ContainerDefinition::builder()
                .name("agent")
                .memory(512)
                .build(),
        )
        .volumes(
            Volume::builder()
                .name("env")
                .configured_at_launch(true)
                .build(),
        )
        .volumes(
            Volume::builder()
                .name("home")
                .efs_volume_configuration(
                    EfsVolumeConfiguration::builder()
                        .file_system_id("fs-template")
                        .build()
                        .unwrap(),
                )
                .build(),
        )
        .build()
}

#[tokio::test(flavor = "multi_thread")]
async fn run_task_failures_are_an_upstream_error_quoting_them() {
    let describe = mock!(aws_sdk_ecs::Client::describe_task_definition).then_output(|| {
        DescribeTaskDefinitionOutput::builder()
            .task_definition(template())
            .build()
    });
    let list = mock!(aws_sdk_ecs::Client::list_task_definitions).then_output(|| {
        ListTaskDefinitionsOutput::builder()
            .task_definition_arns(
                "arn:aws:ecs:us-east-1:123456789012:task-definition/westtek-jupyter:1",
            )
            .build()
    });
    let register = mock!(aws_sdk_ecs::Client::register_task_definition).then_output(|| {
        let mut def = template();
        def.task_definition_arn =
            Some("arn:aws:ecs:us-east-1:123456789012:task-definition/westtek-jupyter:2".into());
        RegisterTaskDefinitionOutput::builder()
            .task_definition(def)
            .build()
    });
    let run = mock!(aws_sdk_ecs::Client::run_task)
        .match_requests(|r| {
            // What the runtime asks for, on the wire types.
            r.task_definition()
                == Some("arn:aws:ecs:us-east-1:123456789012:task-definition/westtek-jupyter:2")
                && r.launch_type() == Some(&aws_sdk_ecs::types::LaunchType::Fargate)
        })
        .then_output(|| {
            RunTaskOutput::builder()
                .failures(
                    Failure::builder()
                        .arn("arn:aws:ecs:us-east-1:123456789012:subnet/subnet-bad")
                        .reason("MISSING")
                        .detail("The subnet ID 'subnet-bad' does not exist")
                        .build(),
                )
                .build()
        });
    let ecs = mock_client!(
        aws_sdk_ecs,
        RuleMode::MatchAny,
        [&describe, &list, &register, &run]
    );
    let moto = tokio::task::spawn_blocking(Moto::start).await.unwrap();
    let efs = aws_sdk_efs::Client::new(&moto.config());
    let fs = efs
        .create_file_system()
        .creation_token("homes")
        .send()
        .await
        .unwrap()
        .file_system_id
        .clone();
    let settings = EcsSettings::new(
        "westtek-jupyter",
        "westtek-jupyter",
        vec!["subnet-bad".into()],
        vec!["sg-1".into()],
        "arn:aws:iam::123456789012:role/ebs",
        fs,
    );
    let runtime = EcsJupyterRuntime::with_clients(ecs, efs, settings);
    let spec = crate::support::spec(UserId::new());
    let err = runtime.start(&spec).await.unwrap_err();
    let DomainError::Upstream { code, message } = err else {
        panic!("an Upstream error, got {err:?}")
    };
    assert_eq!(code, "jupyter_start_failed");
    assert!(message.contains("started no task"), "{message}");
    assert!(message.contains("MISSING"), "{message}");
    assert!(message.contains("subnet-bad"), "{message}");
    assert!(message.contains("westtek-jupyter:2"), "{message}");
    assert_eq!(run.num_calls(), 1);
    assert_eq!(register.num_calls(), 1);
    assert!(runtime.running().await.is_empty());
}
