//! How a task that ended on its own ended, in the platform's words.
//!
//! Policy: the `jupyter` container's own record decides when ECS has one
//! (its `lastStatus` is `STOPPED`): an out-of-memory kill (`reason`
//! starting `OutOfMemoryError`, or exit code 137 with OOM in the reason or
//! the task's stopped reason) is `memory_limit`; exit code 0 is `shut_down`
//! (shut down from inside JupyterLab). Everything else — another exit code,
//! the agent (also essential) ending, Fargate retiring the host, a failed
//! image pull or volume attachment — is `crashed`, with ECS's stopped reason
//! in the message so the researcher and the lab admin see what AWS said.

use aws_sdk_ecs::types::Task;
use chrono::Utc;
use westtek_domain::JupyterExit;

/// The Jupyter container's name in the task definition (the CDK app's).
pub const JUPYTER_CONTAINER: &str = "jupyter";

/// The exit of a stopped task nobody asked to stop.
pub fn classify(task: &Task) -> JupyterExit {
    let stopped_reason = task.stopped_reason().unwrap_or("").trim();
    let jupyter = task
        .containers()
        .iter()
        .find(|c| c.name() == Some(JUPYTER_CONTAINER) && c.last_status() == Some("STOPPED"));
    let exit_code = jupyter.and_then(|c| c.exit_code());
    let container_reason = jupyter.and_then(|c| c.reason()).unwrap_or("").trim();
    let oom = |s: &str| s.contains("OutOfMemory");
    let reason_text = if container_reason.is_empty() {
        stopped_reason.to_string()
    } else if stopped_reason.is_empty() {
        container_reason.to_string()
    } else {
        format!("{stopped_reason} ({container_reason})")
    };
    let at = task.stopped_at().map_or_else(Utc::now, |t| {
        chrono::DateTime::from_timestamp(t.secs(), t.subsec_nanos()).unwrap_or_else(Utc::now)
    });
    if oom(container_reason) || (exit_code == Some(137) && oom(stopped_reason)) {
        return JupyterExit {
            at,
            reason: "memory_limit".into(),
            message: "Jupyter was stopped because it used more memory than the lab allows \
                      (out of memory). Free memory in your notebooks or ask a lab admin for \
                      a higher limit, then start it again."
                .into(),
        };
    }
    if exit_code == Some(0) {
        return JupyterExit {
            at,
            reason: "shut_down".into(),
            message: "Jupyter was shut down from inside JupyterLab.".into(),
        };
    }
    let what = match exit_code {
        Some(code) => format!("Jupyter's container exited with code {code}"),
        None => "Jupyter's task stopped".to_string(),
    };
    let said = if reason_text.is_empty() {
        String::new()
    } else {
        format!(" (ECS: {reason_text})")
    };
    JupyterExit {
        at,
        reason: "crashed".into(),
        message: format!("{what}{said}. Start it again; if it keeps stopping, tell a lab admin."),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_ecs::types::Container;

    fn task(stopped_reason: &str, jupyter: Option<(i32, &str)>) -> Task {
        let mut t = Task::builder()
            .last_status("STOPPED")
            .stopped_reason(stopped_reason);
        if let Some((code, reason)) = jupyter {
            t = t.containers(
                Container::builder()
                    .name(JUPYTER_CONTAINER)
                    .last_status("STOPPED")
                    .exit_code(code)
                    .reason(reason)
                    .build(),
            );
        }
        t.build()
    }

    #[test]
    fn an_out_of_memory_kill_is_the_memory_limit() {
        let t = task(
            "Essential container in task exited",
            Some((
                137,
                "OutOfMemoryError: Container killed due to memory usage",
            )),
        );
        assert_eq!(classify(&t).reason, "memory_limit");
        let t = task(
            "OutOfMemoryError: Container killed due to memory usage",
            Some((137, "")),
        );
        assert_eq!(classify(&t).reason, "memory_limit");
    }

    #[test]
    fn a_kill_without_oom_is_a_crash_naming_the_code() {
        let t = task("Essential container in task exited", Some((137, "")));
        let e = classify(&t);
        assert_eq!(e.reason, "crashed");
        assert!(e.message.contains("137"), "{}", e.message);
        assert!(
            e.message.contains("Essential container in task exited"),
            "{}",
            e.message
        );
    }

    #[test]
    fn exit_code_zero_is_a_shut_down_from_inside() {
        let t = task("Essential container in task exited", Some((0, "")));
        assert_eq!(classify(&t).reason, "shut_down");
    }

    #[test]
    fn a_task_stopped_by_aws_is_a_crash_quoting_ecs() {
        let t = task("Task stopped by AWS: host retired", None);
        let e = classify(&t);
        assert_eq!(e.reason, "crashed");
        assert!(e.message.contains("host retired"), "{}", e.message);
    }

    #[test]
    fn a_container_that_has_not_stopped_says_nothing_about_the_exit() {
        // moto reports containers as PENDING with exit code 0 whatever
        // happened: that is not a shut down.
        let t = Task::builder()
            .stopped_reason("Essential container in task exited")
            .containers(
                Container::builder()
                    .name(JUPYTER_CONTAINER)
                    .last_status("PENDING")
                    .exit_code(0)
                    .build(),
            )
            .build();
        assert_eq!(classify(&t).reason, "crashed");
    }
}
