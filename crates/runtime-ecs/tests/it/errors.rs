//! Failures say what failed, name the task, and leave nothing running.

use crate::support::*;
use std::time::Duration;
use westtek_domain::ports::JupyterRuntime;
use westtek_domain::{DomainError, UserId};
use westtek_runtime_ecs::testing::ESSENTIAL_EXITED;

fn upstream_message(e: DomainError) -> String {
    match e {
        DomainError::Upstream { code, message } => {
            assert_eq!(code, "jupyter_start_failed");
            message
        }
        other => panic!("an Upstream error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_cluster_is_an_upstream_error_naming_the_setting() {
    let f = fixture_with(jupyter_command(), |s| s.cluster = "no-such-cluster".into()).await;
    let spec = spec(UserId::new());
    let m = upstream_message(f.runtime.start(&spec).await.unwrap_err());
    assert!(m.contains("RunTask"), "{m}");
    assert!(m.contains("no-such-cluster"), "{m}");
    assert!(m.contains("ClusterNotFoundException"), "{m}");
    assert!(m.contains("WESTTEK_ECS_CLUSTER"), "{m}");
    assert!(f.harness.launched().is_empty());
    assert!(f.runtime.running().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unknown_task_family_is_an_upstream_error_naming_the_setting() {
    let f = fixture_with(jupyter_command(), |s| {
        s.task_family = "no-such-family".into()
    })
    .await;
    let m = upstream_message(f.runtime.start(&spec(UserId::new())).await.unwrap_err());
    assert!(m.contains("no-such-family"), "{m}");
    assert!(m.contains("WESTTEK_ECS_TASK_FAMILY"), "{m}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_jupyter_that_never_answers_times_out_naming_the_task_and_is_stopped() {
    let f = fixture_with(vec!["sleep".into(), "3600".into()], |s| {
        s.ready_timeout = Duration::from_secs(3)
    })
    .await;
    let spec = spec(UserId::new());
    let m = upstream_message(f.runtime.start(&spec).await.unwrap_err());
    let launched = f.harness.launched();
    assert_eq!(launched.len(), 1);
    let task = &launched[0];
    assert!(m.contains(&task.task_arn), "{m}");
    assert!(m.contains("not ready within 3 s"), "{m}");
    assert!(m.contains("RUNNING"), "{m}");
    assert_eq!(
        moto_task(&f, &task.task_arn).await.desired_status(),
        Some("STOPPED")
    );
    assert!(
        eventually(Duration::from_secs(30), || async {
            task.pids.values().all(|p| !alive(*p))
        })
        .await,
        "the timed-out task's processes are gone"
    );
    assert!(f.runtime.running().await.is_empty());
    assert!(f.runtime.upstream(spec.env_id).await.is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_that_stops_while_starting_fails_the_start_with_ecs_reason() {
    let f = fixture_with(vec!["sh".into(), "-c".into(), "exit 3".into()], |_| {}).await;
    let spec = spec(UserId::new());
    let m = upstream_message(f.runtime.start(&spec).await.unwrap_err());
    let task = f.harness.launched().pop().unwrap();
    assert!(m.contains(&task.task_arn), "{m}");
    assert!(m.contains("stopped before Jupyter answered"), "{m}");
    assert!(m.contains(ESSENTIAL_EXITED), "{m}");
    assert!(f.runtime.running().await.is_empty());
    // A start that failed is not an exit to report.
    assert!(f.runtime.take_exited().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stop_while_starting_stops_the_task_and_fails_the_start() {
    let f = fixture_with(vec!["sleep".into(), "3600".into()], |s| {
        s.ready_timeout = Duration::from_secs(300);
    })
    .await;
    let spec = spec(UserId::new());
    let runtime = f.runtime.clone();
    let starting = {
        let spec = spec.clone();
        tokio::spawn(async move { runtime.start(&spec).await })
    };
    assert!(
        eventually(Duration::from_secs(60), || async {
            f.harness.launched().iter().any(|l| !l.pids.is_empty())
        })
        .await,
        "the task runs"
    );
    assert_eq!(f.runtime.running().await.len(), 1, "listed while starting");
    f.runtime.stop(spec.env_id).await.unwrap();
    let began = std::time::Instant::now();
    let err = starting.await.unwrap().unwrap_err();
    assert!(
        began.elapsed() < Duration::from_secs(60),
        "the start noticed the stop, not its 300 s timeout"
    );
    assert!(
        matches!(err, DomainError::Conflict(ref m) if m.contains("stopped while it was starting")),
        "{err:?}"
    );
    let task = f.harness.launched().pop().unwrap();
    assert_eq!(
        moto_task(&f, &task.task_arn).await.desired_status(),
        Some("STOPPED")
    );
    assert!(
        eventually(Duration::from_secs(30), || async {
            task.pids.values().all(|p| !alive(*p))
        })
        .await
    );
    assert!(f.runtime.running().await.is_empty());
    assert!(f.runtime.take_exited().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_memory_limit_no_fargate_task_holds_is_refused_before_running_anything() {
    let f = fixture().await;
    let mut spec = spec(UserId::new());
    spec.limits.memory_bytes = 200 << 30;
    let m = upstream_message(f.runtime.start(&spec).await.unwrap_err());
    assert!(m.contains("204800 MiB"), "{m}");
    assert!(m.contains("largest Fargate task"), "{m}");
    assert!(f.harness.launched().is_empty(), "no task was started");
    assert!(f.runtime.running().await.is_empty());
}
