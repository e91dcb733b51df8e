//! Start, reach, stop; exits on its own; restore from a snapshot; one home
//! per researcher.

use crate::support::*;
use std::time::Duration;
use westtek_domain::ports::{JupyterRuntime, UpstreamAddr};
use westtek_domain::UserId;
use westtek_runtime_ecs::testing::ESSENTIAL_EXITED;

/// GET `{base_url}api/status` through the upstream, with `token` if any.
async fn status(addr: &str, base_url: &str, token: Option<&str>) -> u16 {
    let mut req = reqwest::Client::new().get(format!("{addr}{base_url}api/status"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("token {t}"));
    }
    req.send().await.unwrap().status().as_u16()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_started_environment_runs_as_specified_answers_with_its_token_and_stops() {
    let f = fixture().await;
    let researcher = UserId::new();
    let spec = spec(researcher);
    let env = spec.env_id.to_string();
    jupyter_venv(&f.harness.ebs_dir(&env)).await;

    let info = f.runtime.start(&spec).await.unwrap();
    assert_eq!(info.env_id, spec.env_id);
    assert_eq!(f.runtime.running().await.len(), 1);

    // The one task, as moto and the harness saw it.
    let launched = f.harness.launched();
    assert_eq!(launched.len(), 1);
    let task = &launched[0];
    assert!(task.refused.is_none(), "{:?}", task.refused);
    let expected_tags = [
        ("lab", spec.lab_id.to_string()),
        ("environment", env.clone()),
        ("researcher", researcher.to_string()),
    ];
    for (k, v) in &expected_tags {
        assert_eq!(task.tags.get(*k), Some(v), "task tag {k}");
    }
    let req = &task.run_request;
    assert_eq!(req["launchType"], "FARGATE");
    let vpc = &req["networkConfiguration"]["awsvpcConfiguration"];
    assert_eq!(vpc["assignPublicIp"], "DISABLED");
    assert_eq!(vpc["subnets"][0], f.settings.subnets[0].as_str());
    assert_eq!(vpc["securityGroups"][0], SECURITY_GROUP);
    let volumes = req["volumeConfigurations"].as_array().unwrap();
    assert_eq!(volumes.len(), 1);
    assert_eq!(volumes[0]["name"], "env");
    let ebs = &volumes[0]["managedEBSVolume"];
    assert_eq!(ebs["roleArn"], EBS_ROLE);
    assert_eq!(ebs["sizeInGiB"], 20);
    assert_eq!(ebs["volumeType"], "gp3");
    assert_eq!(ebs["encrypted"], true);
    assert_eq!(ebs["filesystemType"], "ext4");
    assert_eq!(ebs["terminationPolicy"]["deleteOnTermination"], false);
    assert!(ebs.get("snapshotId").is_none());
    assert!(
        ebs.get("kmsKeyId").is_none(),
        "the account's default EBS key"
    );
    let spec0 = &ebs["tagSpecifications"][0];
    assert_eq!(spec0["resourceType"], "volume");
    for (k, v) in &expected_tags {
        assert!(
            spec0["tags"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t["key"] == *k && t["value"] == v.as_str()),
            "volume tag {k} in {spec0}"
        );
    }
    // Memory from the lab's 3 GiB limit: 3072 MiB for Jupyter, 4 GiB task.
    assert_eq!(req["overrides"]["memory"], "4096");
    let jupyter_override = req["overrides"]["containerOverrides"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "jupyter")
        .unwrap();
    assert_eq!(jupyter_override["memory"], 3072);
    let sent: std::collections::BTreeMap<&str, &str> = jupyter_override["environment"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (kv["name"].as_str().unwrap(), kv["value"].as_str().unwrap()))
        .collect();
    // What ECS is asked for; the harness only moves the port to a free one.
    assert_eq!(sent["JUPYTER_PORT"], "8888");
    assert_eq!(sent["JUPYTER_BASE_URL"], spec.base_url);
    assert_eq!(sent["WESTTEK_ENVIRONMENT_ID"], env);
    assert_eq!(sent["WESTTEK_LAB_ID"], spec.lab_id.to_string());
    assert_eq!(sent["JUPYTER_TOKEN"].len(), 64);

    // Reachable through upstream with the token, and only with it.
    let up = f.runtime.upstream(spec.env_id).await.unwrap();
    let UpstreamAddr::Tcp(addr) = &up.addr else {
        panic!("a TCP upstream, got {:?}", up.addr)
    };
    assert_eq!(addr, &format!("http://127.0.0.1:{}", task.port.unwrap()));
    assert_eq!(status(addr, &spec.base_url, Some(&up.token)).await, 200);
    assert_eq!(status(addr, &spec.base_url, None).await, 403);
    assert_eq!(status(addr, &spec.base_url, Some("wrong")).await, 403);

    // The token is in the override the task got, in no task definition.
    assert_eq!(
        task.environments["jupyter"].get("JUPYTER_TOKEN"),
        Some(&up.token)
    );
    assert!(!task.environments["agent"].contains_key("JUPYTER_TOKEN"));
    let revisions = all_revisions(&f).await;
    assert!(revisions.len() >= 2, "the template and the researcher's");
    for def in &revisions {
        assert!(
            !format!("{def:?}").contains(&up.token),
            "the token leaked into {:?}",
            def.task_definition_arn()
        );
    }

    // The agent ran with the environment id and both mounts.
    let (ap, _, root) = researcher_access_points(&f).await.pop().unwrap();
    assert_eq!(root, format!("/researchers/{researcher}"));
    let home = f.harness.efs_dir(&f.fs_id, &root);
    assert!(
        eventually(Duration::from_secs(30), || async {
            std::fs::read_to_string(f.harness.ebs_dir(&env).join("agent-was-here"))
                .is_ok_and(|s| s.trim() == env)
                && std::fs::read_to_string(home.join("agent-was-here"))
                    .is_ok_and(|s| s.trim() == spec.lab_id.to_string())
        })
        .await,
        "agent log: {}",
        f.harness.log(&task.task_arn, "agent")
    );

    // What the environment record gets.
    let ci = f.runtime.container_info(spec.env_id).unwrap();
    assert_eq!(ci.task_arn.as_deref(), Some(task.task_arn.as_str()));
    assert_eq!(ci.cluster_name.as_deref(), Some(CLUSTER));
    assert_eq!(ci.efs_access_point.as_deref(), Some(ap.as_str()));
    assert_eq!(ci.ebs_volume_id, None, "moto reports no EBS attachment");
    assert_eq!(
        ci.jupyter_url, None,
        "the platform's public URL, not the task's"
    );

    // Stop: StopTask reaches ECS, the processes go, nothing is reported.
    f.runtime.stop(spec.env_id).await.unwrap();
    let t = moto_task(&f, &task.task_arn).await;
    assert_eq!(t.desired_status(), Some("STOPPED"));
    assert_eq!(t.stopped_reason(), Some("Stopped by the West Tek platform"));
    let pids: Vec<u32> = task.pids.values().copied().collect();
    assert_eq!(pids.len(), 2);
    assert!(
        eventually(Duration::from_secs(30), || async {
            pids.iter().all(|p| !alive(*p))
        })
        .await,
        "the task's processes are gone"
    );
    assert!(f.runtime.upstream(spec.env_id).await.is_none());
    assert!(f.runtime.container_info(spec.env_id).is_none());
    assert!(f.runtime.take_exited().await.is_empty());
    assert!(f.runtime.running().await.is_empty());
    // Stopping again is fine.
    f.runtime.stop(spec.env_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_researcher_keeps_one_access_point_and_revision_across_environments() {
    let f = fixture().await;
    let (alice, bob) = (UserId::new(), UserId::new());
    let specs = [spec(alice), spec(alice), spec(bob)];
    for s in &specs {
        jupyter_venv(&f.harness.ebs_dir(&s.env_id.to_string())).await;
    }
    let mut defs = Vec::new();
    for s in &specs {
        f.runtime.start(s).await.unwrap();
        let arn = f
            .runtime
            .container_info(s.env_id)
            .unwrap()
            .task_arn
            .unwrap();
        defs.push(f.harness.task(&arn).unwrap().task_definition_arn);
        // A second start of a running environment is a conflict.
        let again = f.runtime.start(s).await.unwrap_err();
        assert!(
            matches!(again, westtek_domain::DomainError::Conflict(_)),
            "{again:?}"
        );
    }
    assert_eq!(f.runtime.running().await.len(), 3);

    let aps = researcher_access_points(&f).await;
    assert_eq!(aps.len(), 2, "one access point per researcher: {aps:?}");
    let ap_of = |r: UserId| {
        aps.iter()
            .find(|(_, who, _)| *who == r.to_string())
            .map(|(id, _, root)| (id.clone(), root.clone()))
            .unwrap()
    };
    let (alice_ap, alice_root) = ap_of(alice);
    let (bob_ap, bob_root) = ap_of(bob);
    assert_eq!(alice_root, format!("/researchers/{alice}"));
    assert_eq!(bob_root, format!("/researchers/{bob}"));
    // Alice's environments share her revision; Bob has his own.
    assert_eq!(defs[0], defs[1]);
    assert_ne!(defs[0], defs[2]);
    let revisions = all_revisions(&f).await;
    assert_eq!(revisions.len(), 3, "the template, Alice's and Bob's");
    let home_ap = |arn: &str| {
        revisions
            .iter()
            .find(|d| d.task_definition_arn() == Some(arn))
            .and_then(|d| {
                d.volumes()
                    .iter()
                    .find(|v| v.name() == Some("home"))?
                    .efs_volume_configuration()?
                    .authorization_config()?
                    .access_point_id()
                    .map(str::to_string)
            })
            .unwrap()
    };
    assert_eq!(home_ap(&defs[0]), alice_ap);
    assert_eq!(home_ap(&defs[2]), bob_ap);
    // Everything else is the template's.
    let template = revisions.iter().find(|d| d.revision() == 1).unwrap();
    for d in &revisions {
        assert_eq!(d.container_definitions(), template.container_definitions());
        assert_eq!(d.cpu(), template.cpu());
        assert_eq!(d.memory(), template.memory());
    }
    // Each home is mounted where the researcher's access point says.
    for (s, root) in [(&specs[0], &alice_root), (&specs[2], &bob_root)] {
        let arn = f
            .runtime
            .container_info(s.env_id)
            .unwrap()
            .task_arn
            .unwrap();
        let t = f.harness.task(&arn).unwrap();
        assert!(t.mounts["jupyter"].contains(&(
            f.harness.efs_dir(&f.fs_id, root),
            "/home/researcher".to_string()
        )));
    }

    // A new runtime (the platform restarted) finds the same access point and
    // registers no new revision for Alice.
    let again = westtek_runtime_ecs::EcsJupyterRuntime::with_config(
        &f.harness.config(),
        f.settings.clone(),
    )
    .with_task_address(f.harness.task_address());
    let fourth = spec(alice);
    jupyter_venv(&f.harness.ebs_dir(&fourth.env_id.to_string())).await;
    again.start(&fourth).await.unwrap();
    assert_eq!(researcher_access_points(&f).await.len(), 2);
    assert_eq!(all_revisions(&f).await.len(), 3, "no new revision");
    let ci = again.container_info(fourth.env_id).unwrap();
    assert_eq!(ci.efs_access_point.as_deref(), Some(alice_ap.as_str()));
    let arn = ci.task_arn.unwrap();
    assert_eq!(f.harness.task(&arn).unwrap().task_definition_arn, defs[0]);
    again.stop_all().await;
    f.runtime.stop_all().await;
    assert!(f.runtime.running().await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_task_that_ends_on_its_own_is_reported_once_by_take_exited() {
    let f = fixture().await;
    let spec = spec(UserId::new());
    jupyter_venv(&f.harness.ebs_dir(&spec.env_id.to_string())).await;
    f.runtime.start(&spec).await.unwrap();
    let arn = f
        .runtime
        .container_info(spec.env_id)
        .unwrap()
        .task_arn
        .unwrap();
    assert!(
        f.runtime.take_exited().await.is_empty(),
        "running: no exit yet"
    );

    f.harness.kill_container(&arn, "jupyter");
    let exits = std::sync::Mutex::new(Vec::new());
    assert!(
        eventually(Duration::from_secs(60), || async {
            let got = f.runtime.take_exited().await;
            let mut exits = exits.lock().unwrap();
            exits.extend(got);
            !exits.is_empty()
        })
        .await,
        "take_exited reports the task"
    );
    let exits = exits.into_inner().unwrap();
    assert_eq!(exits.len(), 1);
    let (env, exit) = &exits[0];
    assert_eq!(*env, spec.env_id);
    assert_eq!(exit.reason, "crashed");
    assert!(exit.message.contains(ESSENTIAL_EXITED), "{}", exit.message);
    // ECS stopped the whole task: the agent is gone too.
    let t = f.harness.task(&arn).unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            t.pids.values().all(|p| !alive(*p))
        })
        .await
    );
    assert_eq!(moto_task(&f, &arn).await.last_status(), Some("STOPPED"));
    assert!(f.runtime.upstream(spec.env_id).await.is_none());
    assert!(f.runtime.running().await.is_empty());
    assert!(f.runtime.take_exited().await.is_empty(), "reported once");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_start_from_a_snapshot_creates_the_volume_from_it() {
    let f = fixture_with(jupyter_command(), |s| {
        s.ebs_kms_key_id = Some("alias/westtek-environments".into());
    })
    .await;
    let snapshot = "snap-0123456789abcdef0";
    // The "snapshot" holds the venv Jupyter runs from and a marker.
    let snap_dir = f.harness.snapshot_dir(snapshot);
    jupyter_venv(&snap_dir).await;
    std::fs::write(snap_dir.join("restored-marker"), "from the snapshot").unwrap();

    let spec = spec(UserId::new());
    let env = spec.env_id.to_string();
    assert!(!f.harness.ebs_dir(&env).exists());
    f.runtime
        .start_from_snapshot(&spec, snapshot)
        .await
        .unwrap();
    let arn = f
        .runtime
        .container_info(spec.env_id)
        .unwrap()
        .task_arn
        .unwrap();
    let t = f.harness.task(&arn).unwrap();
    let ebs = &t.run_request["volumeConfigurations"][0]["managedEBSVolume"];
    assert_eq!(ebs["snapshotId"], snapshot);
    assert!(
        ebs.get("sizeInGiB").is_none(),
        "a snapshot's size wins: {ebs}"
    );
    assert_eq!(ebs["filesystemType"], "ext4");
    assert_eq!(ebs["kmsKeyId"], "alias/westtek-environments");
    assert_eq!(ebs["encrypted"], true);
    assert_eq!(
        std::fs::read_to_string(f.harness.ebs_dir(&env).join("restored-marker")).unwrap(),
        "from the snapshot"
    );
    let up = f.runtime.upstream(spec.env_id).await.unwrap();
    let UpstreamAddr::Tcp(addr) = &up.addr else {
        panic!()
    };
    assert_eq!(status(addr, &spec.base_url, Some(&up.token)).await, 200);
    f.runtime.stop(spec.env_id).await.unwrap();

    // The same through `restore_next_start_from` and the port's `start`.
    let second = crate::support::spec(UserId::new());
    f.runtime.restore_next_start_from(second.env_id, snapshot);
    f.runtime.start(&second).await.unwrap();
    let arn = f
        .runtime
        .container_info(second.env_id)
        .unwrap()
        .task_arn
        .unwrap();
    let t = f.harness.task(&arn).unwrap();
    assert_eq!(
        t.run_request["volumeConfigurations"][0]["managedEBSVolume"]["snapshotId"],
        snapshot
    );
    assert!(f
        .harness
        .ebs_dir(&second.env_id.to_string())
        .join("restored-marker")
        .exists());
    f.runtime.stop(second.env_id).await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_server_without_traffic_is_culled_and_reported_idle_while_a_touched_one_stays() {
    let f = fixture_with(jupyter_command(), |s| {
        s.idle_timeout = Some(Duration::from_secs(3));
    })
    .await;
    let spec = spec(UserId::new());
    jupyter_venv(&f.harness.ebs_dir(&spec.env_id.to_string())).await;
    f.runtime.start(&spec).await.unwrap();
    let arn = f
        .runtime
        .container_info(spec.env_id)
        .unwrap()
        .task_arn
        .unwrap();

    // Gateway traffic (touch) for twice the idle timeout keeps it running.
    for _ in 0..12 {
        f.runtime.touch(spec.env_id);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(f.runtime.running().await.len(), 1, "touched: still running");
    assert!(f.runtime.take_exited().await.is_empty());

    // Then nothing: culled, stopped in ECS, reported once as idle.
    let exits = std::sync::Mutex::new(Vec::new());
    assert!(
        eventually(Duration::from_secs(60), || async {
            let got = f.runtime.take_exited().await;
            let mut exits = exits.lock().unwrap();
            exits.extend(got);
            !exits.is_empty()
        })
        .await,
        "the idle server is reported"
    );
    let exits = exits.into_inner().unwrap();
    assert_eq!(exits.len(), 1);
    assert_eq!(exits[0].0, spec.env_id);
    assert_eq!(exits[0].1.reason, "idle");
    assert_eq!(moto_task(&f, &arn).await.desired_status(), Some("STOPPED"));
    assert!(f.runtime.running().await.is_empty());
    assert!(f.runtime.take_exited().await.is_empty(), "reported once");
}
