//! The Jupyter server lifecycle on the shared environment: readiness and
//! token auth, clean stop, restart after a crash, reporting servers that end
//! on their own, and reconciling servers a dead runtime left behind.

use crate::support::{eventually, jupyter_turn, shared, KillOnDrop, Shared};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use std::time::{Duration, Instant};
use westtek_domain::ports::{
    JupyterRuntime, JupyterUpstream, LaunchSpec, ServerInfo, UpstreamAddr,
};
use westtek_domain::DomainError;
use westtek_runtime::{group_alive, EnvLayout, LocalJupyterRuntime, RuntimeConfig};

fn launch_spec(s: &Shared) -> LaunchSpec {
    LaunchSpec {
        env_id: s.env,
        lab_id: s.lab,
        researcher_id: westtek_domain::UserId::new(),
        base_url: format!("/jupyter/{}/", s.env),
        limits: Default::default(),
    }
}

/// Status of `GET api/status` over the server's socket with the given
/// token (none when `None`).
async fn status(up: &JupyterUpstream, base_url: &str, token: Option<&str>) -> u16 {
    let UpstreamAddr::Unix(socket) = &up.addr else {
        panic!("a local server listens on a Unix socket: {:?}", up.addr)
    };
    let http = reqwest::Client::builder()
        .no_proxy()
        .unix_socket(socket.clone())
        .build()
        .unwrap();
    let mut req = http.get(format!("http://localhost{base_url}api/status"));
    if let Some(t) = token {
        req = req.header("Authorization", format!("token {t}"));
    }
    match req.send().await {
        Ok(r) => r.status().as_u16(),
        Err(_) => 0,
    }
}

async fn start_timed(rt: &LocalJupyterRuntime, spec: &LaunchSpec, what: &str) -> ServerInfo {
    let began = Instant::now();
    let info = rt.start(spec).await.unwrap();
    eprintln!("[timing] {what}: start to ready {:?}", began.elapsed());
    info
}

#[tokio::test]
async fn jupyter_answers_with_its_token_only_and_stops_cleanly() {
    let s = shared().await;
    let _turn = jupyter_turn().await;
    let layout = EnvLayout::new(&s.cfg.envs_dir, s.env);
    let _kill = KillOnDrop(layout.pid_file());
    let rt = LocalJupyterRuntime::new(s.cfg.clone());
    let spec = launch_spec(s);

    let info = start_timed(&rt, &spec, "first start").await;
    let pid = info.pid.unwrap();
    let up = rt.upstream(s.env).await.unwrap();
    assert_eq!(up.token.len(), 64);
    assert_eq!(status(&up, &spec.base_url, Some(&up.token)).await, 200);
    assert_eq!(status(&up, &spec.base_url, None).await, 403);
    assert_eq!(status(&up, &spec.base_url, Some("wrong")).await, 403);
    // No TCP port: the socket is its only door.
    assert!(layout.jupyter_runtime().join("jupyter.sock").exists());

    // The token is on no command line, in no environment, in no file of
    // ours: not the sandbox launcher's, not Jupyter's inside it.
    let jupyter = descendants(pid)
        .into_iter()
        .find(|p| {
            std::fs::read(format!("/proc/{p}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains("jupyter-lab"))
        })
        .expect("Jupyter runs below the launcher");
    for p in [pid, jupyter] {
        let cmdline = std::fs::read(format!("/proc/{p}/cmdline")).unwrap();
        assert!(!String::from_utf8_lossy(&cmdline).contains(&up.token));
        let environ = std::fs::read(format!("/proc/{p}/environ")).unwrap();
        let environ = String::from_utf8_lossy(&environ);
        assert!(!environ.contains(&up.token));
        assert!(!environ.contains("PYTHONDONTWRITEBYTECODE"));
    }
    let environ =
        String::from_utf8_lossy(&std::fs::read(format!("/proc/{jupyter}/environ")).unwrap())
            .into_owned();
    assert!(
        environ.contains("JUPYTER_RUNTIME_DIR=/run/jupyter"),
        "{environ}"
    );
    assert!(environ.contains(&format!("HOME={}", layout.home().display())));
    assert!(!layout.token_file().exists());
    let log = std::fs::read_to_string(rt.log_path(s.env)).unwrap();
    assert!(!log.contains(&up.token));

    let record: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.pid_file()).unwrap()).unwrap();
    assert_eq!(record["pid"], pid);

    let running = rt.running().await;
    assert_eq!(running.len(), 1);
    assert_eq!(
        (running[0].env_id, running[0].lab_id, running[0].pid),
        (s.env, s.lab, Some(pid))
    );
    let before = running[0].last_activity;
    tokio::time::sleep(Duration::from_millis(5)).await;
    rt.touch(s.env);
    assert!(rt.running().await[0].last_activity > before);

    assert!(matches!(
        rt.start(&spec).await,
        Err(DomainError::Conflict(_))
    ));

    let began = Instant::now();
    rt.stop(s.env).await.unwrap();
    eprintln!("[timing] stop: {:?}", began.elapsed());
    assert!(!group_alive(pid), "the process group outlived stop");
    assert!(!layout.pid_file().exists());
    assert!(rt.upstream(s.env).await.is_none());
    assert!(rt.running().await.is_empty());
    rt.stop(s.env).await.unwrap();
    assert!(
        rt.take_exited().await.is_empty(),
        "a requested stop is not an exit"
    );
}

#[tokio::test]
async fn a_killed_server_is_restarted_with_the_same_token() {
    let s = shared().await;
    let _turn = jupyter_turn().await;
    let layout = EnvLayout::new(&s.cfg.envs_dir, s.env);
    let _kill = KillOnDrop(layout.pid_file());
    let rt = LocalJupyterRuntime::new(s.cfg.clone());
    let spec = launch_spec(s);
    let first = start_timed(&rt, &spec, "start before crash")
        .await
        .pid
        .unwrap();
    let up = rt.upstream(s.env).await.unwrap();

    let killed = Instant::now();
    kill(Pid::from_raw(first as i32), Signal::SIGKILL).unwrap();
    let mut restarted = false;
    while killed.elapsed() < Duration::from_secs(60) {
        let pid = rt.running().await.first().and_then(|i| i.pid);
        // The socket is pinned anew for each launch.
        let now = rt.upstream(s.env).await;
        let answers = match &now {
            Some(u) => status(u, &spec.base_url, Some(&up.token)).await == 200,
            None => false,
        };
        if pid.is_some_and(|p| p != first) && answers {
            restarted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    eprintln!(
        "[timing] SIGKILL to answering again: {:?}",
        killed.elapsed()
    );
    assert!(restarted, "the supervisor did not bring the server back");
    let again = rt.upstream(s.env).await.unwrap();
    assert_eq!(again.token, up.token);
    assert!(
        rt.take_exited().await.is_empty(),
        "a restarted server has not exited"
    );

    let second = rt.running().await[0].pid.unwrap();
    rt.stop(s.env).await.unwrap();
    assert!(!group_alive(first) && !group_alive(second));
}

#[tokio::test]
async fn servers_that_end_on_their_own_are_reported_once() {
    let s = shared().await;
    let _turn = jupyter_turn().await;
    let layout = EnvLayout::new(&s.cfg.envs_dir, s.env);
    let _kill = KillOnDrop(layout.pid_file());
    let mut cfg: RuntimeConfig = s.cfg.clone();
    cfg.max_restarts = 0;
    cfg.idle_timeout = Some(Duration::from_secs(1));
    let rt = LocalJupyterRuntime::new(cfg);
    let spec = launch_spec(s);

    // A crash with no restarts allowed is given up at once.
    let pid = start_timed(&rt, &spec, "start (no restarts allowed)")
        .await
        .pid
        .unwrap();
    kill(Pid::from_raw(pid as i32), Signal::SIGKILL).unwrap();
    let mut reported = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while reported.is_empty() && Instant::now() < deadline {
        reported = rt.take_exited().await;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].0, s.env);
    assert_eq!(reported[0].1.reason, "crashed", "{:?}", reported[0].1);
    assert!(rt.upstream(s.env).await.is_none());
    assert!(!layout.pid_file().exists());

    // An idle one is culled (the first check may find it busy loading the
    // API, so allow a few periods).
    let pid = start_timed(&rt, &spec, "start (idle timeout 1 s)")
        .await
        .pid
        .unwrap();
    let culled = Instant::now();
    let mut reported = Vec::new();
    while reported.is_empty() && culled.elapsed() < Duration::from_secs(20) {
        reported = rt.take_exited().await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "[timing] idle timeout 1 s: culled after {:?}",
        culled.elapsed()
    );
    assert_eq!(reported.len(), 1);
    assert_eq!(reported[0].0, s.env);
    assert_eq!(reported[0].1.reason, "idle", "{:?}", reported[0].1);
    assert!(!group_alive(pid));
    assert!(rt.running().await.is_empty());
    assert!(rt.take_exited().await.is_empty(), "reported twice");
}

#[tokio::test]
async fn a_server_dies_with_the_runtime_that_started_it_and_reconcile_clears_its_files() {
    let s = shared().await;
    let _turn = jupyter_turn().await;
    let layout = EnvLayout::new(&s.cfg.envs_dir, s.env);
    let _kill = KillOnDrop(layout.pid_file());
    let spec = launch_spec(s);

    // A runtime on its own thread that dies without stopping anything, as
    // when the platform crashes: the sandbox goes with it (bwrap's
    // --die-with-parent), so no researcher process outlives the platform.
    let cfg = s.cfg.clone();
    let start_spec = spec.clone();
    let pid = std::thread::spawn(move || {
        let tokio_rt = tokio::runtime::Runtime::new().unwrap();
        let pid = tokio_rt.block_on(async {
            let rt = LocalJupyterRuntime::new(cfg);
            rt.start(&start_spec).await.unwrap().pid.unwrap()
        });
        tokio_rt.shutdown_background();
        pid
    })
    .join()
    .unwrap();
    let root = layout.root().display().to_string();
    assert!(
        eventually(Duration::from_secs(5), || processes_mentioning(&root)
            .is_empty())
        .await,
        "a sandboxed server outlived the runtime that started it"
    );
    assert!(!group_alive(pid));
    assert!(layout.pid_file().exists(), "the crash left its pid file");

    let rt = LocalJupyterRuntime::new(s.cfg.clone());
    assert_eq!(rt.reconcile_orphans().await, vec![s.env]);
    assert!(!layout.pid_file().exists());
    assert!(!layout.jupyter_runtime().join("jupyter.sock").exists());
    assert!(rt.reconcile_orphans().await.is_empty());

    // The environment starts normally afterwards.
    let info = rt.start(&spec).await.unwrap();
    rt.stop(s.env).await.unwrap();
    assert!(!group_alive(info.pid.unwrap()));
}

#[tokio::test]
async fn a_server_that_cannot_start_within_its_limits_says_which_limit() {
    let s = shared().await;
    let _turn = jupyter_turn().await;
    let layout = EnvLayout::new(&s.cfg.envs_dir, s.env);
    let _kill = KillOnDrop(layout.pid_file());
    let rt = LocalJupyterRuntime::new(s.cfg.clone());
    let mut spec = launch_spec(s);
    // 8 MiB of address space: not even the loader can map the C library, so
    // the failure is the same every time (at 64 MiB Python gets part way
    // and fails in ways that differ from run to run, or hangs).
    spec.limits.memory_bytes = 8 << 20;
    let err = rt.start(&spec).await.unwrap_err();
    let DomainError::Upstream { code, message } = err else {
        panic!("{err:?}")
    };
    assert_eq!(code, "memory_limit", "{message}");
    assert!(message.contains("8 MiB per process"), "{message}");
    assert!(rt.running().await.is_empty());
}

/// Every live process below `pid` (children, grandchildren, …).
fn descendants(pid: u32) -> Vec<u32> {
    let parents: Vec<(u32, u32)> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let after = &stat[stat.rfind(')')? + 1..];
            let ppid = after.split_whitespace().nth(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut found = vec![pid];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// Live processes whose command line mentions `needle`.
fn processes_mentioning(needle: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()))
        .filter(|pid| westtek_runtime::process_alive(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(needle))
        })
        .collect()
}

#[tokio::test]
async fn a_start_dropped_midway_leaves_no_server() {
    let s = shared().await;
    let _turn = jupyter_turn().await;
    let layout = EnvLayout::new(&s.cfg.envs_dir, s.env);
    let _kill = KillOnDrop(layout.pid_file());
    let rt = LocalJupyterRuntime::new(s.cfg.clone());
    let spec = launch_spec(s);

    let cut = tokio::time::timeout(Duration::from_millis(500), rt.start(&spec)).await;
    assert!(cut.is_err(), "Jupyter cannot be ready in 500 ms");
    let root = layout.root().display().to_string();
    assert!(
        eventually(Duration::from_secs(5), || processes_mentioning(&root)
            .is_empty())
        .await
    );
    let mut gone = false;
    for _ in 0..100 {
        if rt.running().await.is_empty() {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the cancelled server is still registered");
    assert!(rt.take_exited().await.is_empty());
    assert!(!layout.pid_file().exists() && !layout.token_file().exists());
}
