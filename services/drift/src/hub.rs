//! [`DriftHub`]: the drift service's engine. It watches every ready
//! environment that has a baseline, evaluates it when the watcher reports a
//! burst, on a periodic sweep, at start-up and whenever its baseline may have
//! moved, and records each change of findings as one drift event.
//!
//! Policy:
//! - The baseline is the pinned snapshot, else the snapshot the files last
//!   equalled (`current_baseline_id`: the newest snapshot taken, or the one
//!   restored), else the newest complete snapshot. No snapshot, no drift:
//!   such environments are not watched.
//! - One evaluation per environment at a time (later requests coalesce into
//!   one re-run), at most `max_parallel` at once.
//! - The drift store decides what is new: an event is recorded only when the
//!   stored fingerprint is still the one this evaluation started from, so
//!   the watcher and the sweep seeing one change make one event — in this
//!   process or another.
//! - Side effects of an event (environment status, audit, bus, live stream,
//!   alerts, the analyzer on CRITICAL) never block detection: alerts go
//!   through the router's queue, the analyzer runs in its own task.

use crate::tools::ServiceTools;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{broadcast, Semaphore};
use westtek_alerts::{Alert, AlertRouter, RouterConfig, SmtpConfig};
use westtek_assist::drift_tools::{DriftEventView, ToolScope};
use westtek_assist::{AgentChunk, LocalDriftAnalyzer, SessionStore};
use westtek_domain::event::types;
use westtek_domain::{
    DomainError, DomainEvent, DriftEvent, DriftEventFilter, DriftEventId, DriftSource,
    DriftStateRecord, DriftStore, Environment, EnvironmentFilter, EnvironmentId, EnvironmentStatus,
    EventId, RecommendationId, RecommendationRecord, RecordOutcome, Result, SnapshotFilter,
    SnapshotId, SnapshotStatus,
};
use westtek_drift::{evaluate, fingerprint, DriftWatcher, WatchConfig};
use westtek_env_manager::system_audit;
use westtek_inventory::{Finding, Inventory, Severity};
use westtek_platform::AppState;

/// The service name in events and logs.
pub const SERVICE: &str = "drift";

/// How the drift service runs.
#[derive(Clone, Debug)]
pub struct DriftConfig {
    /// The safety-net sweep of every watched environment (default 5 min).
    pub sweep_interval: Duration,
    /// Watcher debouncing and bounds.
    pub watch: WatchConfig,
    /// Alert delivery (queue, retries).
    pub alerts: RouterConfig,
    /// E-mail for CRITICAL drift, when configured.
    pub smtp: Option<SmtpConfig>,
    /// Evaluations running at once (default 2).
    pub max_parallel: usize,
    /// How often live streams look in the store for events another process
    /// recorded (a second drift replica); this process's own events go out
    /// at once (default 1 s).
    pub live_poll: Duration,
}

impl Default for DriftConfig {
    fn default() -> Self {
        let watch = WatchConfig {
            quiet: Duration::from_millis(300),
            ..WatchConfig::default()
        };
        DriftConfig {
            sweep_interval: Duration::from_secs(300),
            watch,
            alerts: RouterConfig::default(),
            smtp: None,
            max_parallel: 2,
            live_poll: Duration::from_secs(1),
        }
    }
}

/// Per-environment memory between evaluations.
struct Tracked {
    baseline: SnapshotId,
    /// The last inventory taken: unchanged files are not re-read.
    previous: Option<Arc<Inventory>>,
}

#[derive(Default)]
struct Slot {
    again: Option<DriftSource>,
}

/// The drift service's engine; see the module documentation.
pub struct DriftHub {
    pub(crate) state: AppState,
    pub(crate) store: Arc<dyn DriftStore>,
    watcher: Option<DriftWatcher>,
    tracked: Mutex<HashMap<EnvironmentId, Tracked>>,
    slots: Mutex<HashMap<EnvironmentId, Slot>>,
    baselines: Mutex<HashMap<SnapshotId, Arc<Inventory>>>,
    /// The latest inventory each adopted environment's agent reported (the
    /// platform cannot read those files itself).
    reported: Mutex<HashMap<EnvironmentId, Arc<Inventory>>>,
    /// Accepted snapshots being taken of pinned environments: when one is
    /// created the pin moves to it (with this audit entry).
    repins: Mutex<HashMap<SnapshotId, (EnvironmentId, westtek_domain::AuditDraft)>>,
    permits: Semaphore,
    /// Every lab's new events in `seq` order, fed only by the store
    /// follower ([`DriftHub::follow_store`]), so events recorded by any
    /// process reach live streams once, in order.
    live: broadcast::Sender<DriftEvent>,
    /// Wakes the store follower when this process recorded an event.
    recorded: tokio::sync::Notify,
    /// The Drift Analyzer when it is not the built-in one (a Bedrock agent
    /// on AWS); set once at start-up.
    agent: std::sync::OnceLock<Arc<dyn westtek_assist::Agent>>,
    alerts: Option<AlertRouter>,
    pub(crate) sessions: Arc<SessionStore>,
    config: DriftConfig,
    /// Set on shutdown: live streams end so the server can stop.
    closing: tokio::sync::watch::Sender<bool>,
}

/// A poisoned lock only means a panic elsewhere; the maps stay usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn more_thorough(a: DriftSource, b: DriftSource) -> DriftSource {
    if a == DriftSource::Startup || b == DriftSource::Startup {
        DriftSource::Startup
    } else if a == DriftSource::Baseline || b == DriftSource::Baseline {
        DriftSource::Baseline
    } else {
        b
    }
}

fn severity_name(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "CRITICAL",
        Severity::Minor => "MINOR",
        Severity::Info => "INFO",
    }
}

/// The typed findings of a stored event (empty when unreadable).
pub(crate) fn findings_of(ev: &DriftEvent) -> Vec<Finding> {
    serde_json::from_value(ev.findings.clone()).unwrap_or_default()
}

/// An event as the analyzer's tools show it.
pub(crate) fn event_view(ev: &DriftEvent) -> DriftEventView {
    let findings = findings_of(ev);
    let severity = findings
        .iter()
        .map(|f| f.severity)
        .min()
        .unwrap_or(Severity::Info);
    DriftEventView {
        id: EventId::from_uuid(ev.id.as_uuid()),
        environment_id: ev.environment_id,
        detected_at: ev.detected_at,
        status: ev.status,
        severity,
        findings,
    }
}

impl DriftHub {
    /// Starts the hub: the watcher (sweeps only, with a warning, when
    /// inotify is unavailable), the alert router, and the tasks that feed
    /// them. Call [`DriftHub::spawn_background`] next.
    ///
    /// # Errors
    /// The alert router cannot start (no HTTP client).
    pub fn start(
        state: AppState,
        store: Arc<dyn DriftStore>,
        config: DriftConfig,
        targets: Arc<dyn westtek_alerts::TargetSource>,
        dead_letters: Arc<dyn westtek_alerts::DeadLetterSink>,
    ) -> std::result::Result<
        (
            Arc<Self>,
            Option<tokio::sync::mpsc::Receiver<westtek_drift::ChangeBatch>>,
        ),
        String,
    > {
        let (watcher, batches) = match DriftWatcher::new(config.watch.clone()) {
            Ok((w, rx)) => (Some(w), Some(rx)),
            Err(e) => {
                tracing::warn!(error = %e, "drift watcher unavailable; drift is found by the periodic sweep only");
                (None, None)
            }
        };
        let client = westtek_alerts::http_client().map_err(|e| e.to_string())?;
        let alerts = AlertRouter::start(config.alerts, client, targets, dead_letters)
            .map_err(|e| e.to_string())?;
        let (live, _) = broadcast::channel(1024);
        let hub = Arc::new(DriftHub {
            state,
            store,
            watcher,
            tracked: Mutex::new(HashMap::new()),
            slots: Mutex::new(HashMap::new()),
            baselines: Mutex::new(HashMap::new()),
            reported: Mutex::new(HashMap::new()),
            repins: Mutex::new(HashMap::new()),
            permits: Semaphore::new(config.max_parallel.max(1)),
            live,
            recorded: tokio::sync::Notify::new(),
            agent: std::sync::OnceLock::new(),
            alerts: Some(alerts),
            sessions: Arc::new(SessionStore::new(1000, 20)),
            config,
            closing: tokio::sync::watch::channel(false).0,
        });
        Ok((hub, batches))
    }

    /// The background tasks: watcher batches, bus events, the start-up
    /// check and the periodic sweep.
    pub fn spawn_background(
        self: &Arc<Self>,
        batches: Option<tokio::sync::mpsc::Receiver<westtek_drift::ChangeBatch>>,
    ) -> Vec<tokio::task::JoinHandle<()>> {
        let mut tasks = Vec::new();
        // Nothing is evaluated before the live-stream follower has its
        // starting point: an event recorded before it would never reach a
        // live stream (a client that reconnected just before would miss it).
        let (ready_tx, ready) = tokio::sync::watch::channel(false);
        let wait_ready = move || {
            let mut r = ready.clone();
            async move {
                let _ = r.wait_for(|up| *up).await;
            }
        };
        if let Some(mut rx) = batches {
            let hub = Arc::clone(self);
            let ready = wait_ready();
            tasks.push(tokio::spawn(async move {
                ready.await;
                while let Some(batch) = rx.recv().await {
                    let source = if batch.overflow {
                        DriftSource::Sweep
                    } else {
                        DriftSource::Watcher
                    };
                    hub.schedule(batch.env_id, source);
                }
            }));
        }
        let hub = Arc::clone(self);
        let ready = wait_ready();
        tasks.push(tokio::spawn(async move {
            ready.await;
            hub.consume_events().await;
        }));
        let hub = Arc::clone(self);
        tasks.push(tokio::spawn(
            async move { hub.follow_store(ready_tx).await },
        ));
        let hub = Arc::clone(self);
        let ready = wait_ready();
        tasks.push(tokio::spawn(async move {
            ready.await;
            // Start-up: changes made while the platform was down.
            hub.schedule_all(DriftSource::Startup).await;
            let mut tick = tokio::time::interval(hub.config.sweep_interval);
            tick.tick().await;
            loop {
                tick.tick().await;
                hub.schedule_all(DriftSource::Sweep).await;
            }
        }));
        tasks
    }

    /// Feeds live streams from the store: every event stored after start-up,
    /// whichever process recorded it, in `seq` order; woken at once by this
    /// process's own events and every `live_poll` otherwise. A store error
    /// is logged and retried at the next tick.
    async fn follow_store(self: Arc<Self>, ready: tokio::sync::watch::Sender<bool>) {
        let mut last = loop {
            match self
                .store
                .list_drift_events(&DriftEventFilter {
                    limit: 1,
                    ..Default::default()
                })
                .await
            {
                Ok(p) => {
                    ready.send_replace(true);
                    break p.items.first().map_or(0, |e| e.seq);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "drift: live streams cannot read the store; retrying");
                    tokio::time::sleep(self.config.live_poll).await;
                }
            }
        };
        let mut closing = self.closing();
        loop {
            tokio::select! {
                _ = self.recorded.notified() => {}
                _ = tokio::time::sleep(self.config.live_poll) => {}
                _ = closing.changed() => return,
            }
            loop {
                let page = match self
                    .store
                    .list_drift_events(&DriftEventFilter {
                        after_seq: Some(last),
                        limit: 500,
                        ..Default::default()
                    })
                    .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        tracing::warn!(error = %e, "drift: live streams cannot read the store; retrying");
                        break;
                    }
                };
                let full = page.items.len() >= 500;
                for ev in page.items {
                    last = last.max(ev.seq);
                    let _ = self.live.send(ev);
                }
                if !full {
                    break;
                }
            }
        }
    }

    /// Answers as the Drift Analyzer with `agent` (a Bedrock agent) instead
    /// of the built-in one: chat, and the analysis of each CRITICAL event.
    /// Only the first call counts.
    pub fn use_agent(&self, agent: Arc<dyn westtek_assist::Agent>) {
        let _ = self.agent.set(agent);
    }

    /// The agent set by [`DriftHub::use_agent`], if any.
    pub fn remote_agent(&self) -> Option<Arc<dyn westtek_assist::Agent>> {
        self.agent.get().cloned()
    }

    /// Live drift events (every lab; subscribers filter).
    pub fn subscribe(&self) -> broadcast::Receiver<DriftEvent> {
        self.live.subscribe()
    }

    /// Whether the environment is being watched.
    pub fn is_watched(&self, env: EnvironmentId) -> bool {
        self.watcher.as_ref().is_some_and(|w| w.root(env).is_some())
    }

    /// Ends every live stream (call before stopping the server, which
    /// otherwise waits for them).
    pub fn end_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Resolves when [`DriftHub::end_streams`] was called.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Ends live streams and stops alert delivery, letting queued alerts go
    /// out for up to `grace`.
    pub async fn close(&self, grace: Duration) {
        self.end_streams();
        if let Some(a) = &self.alerts {
            a.close(grace).await;
        }
    }

    /// Baseline changes and deletions from the bus. A lost subscription
    /// (Redis restarted) is re-established with backoff; meanwhile the sweep
    /// keeps every environment checked.
    async fn consume_events(self: Arc<Self>) {
        let hub = Arc::clone(&self);
        westtek_platform::streams::consume_bus(self.state.clone(), "drift", move |ev| {
            let hub = Arc::clone(&hub);
            async move { hub.on_event(&ev).await }
        })
        .await;
    }

    async fn on_event(self: &Arc<Self>, ev: &DomainEvent) {
        let env = ev
            .data
            .get("environment_id")
            .and_then(|v| v.as_str())
            .and_then(|s| EnvironmentId::parse(s).ok());
        let Some(env) = env else { return };
        let snapshot = ev
            .data
            .get("snapshot_id")
            .and_then(|v| v.as_str())
            .and_then(|s| SnapshotId::parse(s).ok());
        if let Some(snap) = snapshot {
            let repin = match ev.event_type.as_str() {
                types::SNAPSHOT_CREATED | types::SNAPSHOT_FAILED | types::SNAPSHOT_DELETED => {
                    lock(&self.repins).remove(&snap)
                }
                _ => None,
            };
            if let (Some((pinned_env, audit)), types::SNAPSHOT_CREATED) =
                (repin, ev.event_type.as_str())
            {
                if let Err(e) = self.pin(pinned_env, Some(snap), audit).await {
                    tracing::warn!(error = %e, env = %pinned_env, "could not move the pinned baseline to the accepted snapshot");
                }
            }
        }
        match ev.event_type.as_str() {
            types::ENVIRONMENT_DELETED => self.forget(env).await,
            types::ENVIRONMENT_READY
            | types::ENVIRONMENT_UPDATED
            | types::SNAPSHOT_CREATED
            | types::SNAPSHOT_RESTORED
            | types::SNAPSHOT_DELETED => self.schedule(env, DriftSource::Baseline),
            _ => {}
        }
    }

    async fn schedule_all(self: &Arc<Self>, source: DriftSource) {
        let mut offset = 0;
        loop {
            let page = match self
                .state
                .store
                .list_environments(&EnvironmentFilter {
                    limit: 500,
                    offset,
                    ..Default::default()
                })
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(error = %e, "drift sweep could not list environments");
                    return;
                }
            };
            for env in page
                .items
                .iter()
                .filter(|e| e.status == EnvironmentStatus::Ready)
            {
                self.schedule(env.id, source);
            }
            if page.items.len() < 500 {
                return;
            }
            offset += 500;
        }
    }

    /// Asks for an evaluation of `env`. Coalesces with one already running.
    pub fn schedule(self: &Arc<Self>, env: EnvironmentId, source: DriftSource) {
        {
            let mut slots = lock(&self.slots);
            if let Some(slot) = slots.get_mut(&env) {
                slot.again = Some(match slot.again {
                    Some(a) => more_thorough(a, source),
                    None => source,
                });
                return;
            }
            slots.insert(env, Slot::default());
        }
        let hub = Arc::clone(self);
        tokio::spawn(async move { hub.run(env, source).await });
    }

    /// An adopted environment's agent reports its inventory: judged
    /// against the baseline here, exactly as a local watcher's would be,
    /// coalesced like watcher batches (an agent reporting in a loop holds
    /// one evaluation, not every permit).
    pub fn report(self: &Arc<Self>, env: EnvironmentId, inv: Inventory, source: DriftSource) {
        lock(&self.reported).insert(env, Arc::new(inv));
        self.schedule(env, source);
    }

    /// Evaluates `env` now and waits for it (tests, the accept action).
    pub async fn evaluate_now(self: &Arc<Self>, env: EnvironmentId, source: DriftSource) {
        let _permit = self.permits.acquire().await;
        self.evaluate_env(env, source).await;
    }

    async fn run(self: Arc<Self>, env: EnvironmentId, mut source: DriftSource) {
        loop {
            {
                let _permit = self.permits.acquire().await;
                self.evaluate_env(env, source).await;
            }
            let mut slots = lock(&self.slots);
            match slots.get_mut(&env).and_then(|s| s.again.take()) {
                Some(next) => source = next,
                None => {
                    slots.remove(&env);
                    return;
                }
            }
        }
    }

    /// The inventory the environment's last evaluation took, if any.
    pub(crate) fn last_inventory(&self, env: EnvironmentId) -> Option<Arc<Inventory>> {
        lock(&self.tracked)
            .get(&env)
            .and_then(|t| t.previous.clone())
    }

    /// The environment is gone: stop watching, drop its live state.
    pub async fn forget(&self, env: EnvironmentId) {
        if let Some(w) = &self.watcher {
            w.unwatch(env);
        }
        self.state.snapshots.forget_environment(env).await;
        lock(&self.tracked).remove(&env);
        lock(&self.reported).remove(&env);
        if let Err(e) = self.store.delete_drift_state(env).await {
            tracing::warn!(error = %e, env = %env, "could not remove a deleted environment's drift state");
        }
    }

    fn unwatch(&self, env: EnvironmentId) {
        if let Some(w) = &self.watcher {
            w.unwatch(env);
        }
        lock(&self.tracked).remove(&env);
    }

    /// The environment's effective baseline snapshot, if any.
    pub async fn baseline_of(&self, env: &Environment) -> Result<Option<SnapshotId>> {
        for id in [env.baseline_snapshot_id, env.current_baseline_id]
            .into_iter()
            .flatten()
        {
            match self.state.store.get_snapshot(id).await {
                Ok(s) if s.status == SnapshotStatus::Complete && s.vault_snapshot_id.is_some() => {
                    return Ok(Some(s.id))
                }
                Ok(_) | Err(DomainError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        let latest = self
            .state
            .store
            .list_snapshots(&SnapshotFilter {
                environment_id: Some(env.id),
                status: Some(SnapshotStatus::Complete),
                limit: 1,
                ..Default::default()
            })
            .await?;
        Ok(latest.items.first().map(|s| s.id))
    }

    /// A snapshot's stored inventory (cached; snapshots never change).
    pub(crate) async fn inventory_of(&self, id: SnapshotId) -> Result<Arc<Inventory>> {
        if let Some(i) = lock(&self.baselines).get(&id) {
            return Ok(Arc::clone(i));
        }
        let snap = self.state.store.get_snapshot(id).await?;
        let engine = snap
            .vault_snapshot_id
            .ok_or_else(|| DomainError::Conflict("the snapshot is not complete".into()))?;
        let json = self.state.snapshots.inventory(&engine).await?;
        let bytes = serde_json::to_vec(&json)
            .map_err(|e| DomainError::internal(format!("inventory JSON: {e}")))?;
        let inv = Arc::new(
            Inventory::from_json(&bytes)
                .map_err(|e| DomainError::internal(format!("stored inventory unreadable: {e}")))?,
        );
        let mut cache = lock(&self.baselines);
        if cache.len() >= 256 {
            cache.clear();
        }
        cache.insert(id, Arc::clone(&inv));
        Ok(inv)
    }

    fn root(&self, env: EnvironmentId) -> PathBuf {
        self.state.builder.root(env)
    }

    async fn evaluate_env(self: &Arc<Self>, env_id: EnvironmentId, source: DriftSource) {
        let env = match self.state.store.get_environment(env_id).await {
            Ok(e) => e,
            Err(DomainError::NotFound { .. }) => {
                self.forget(env_id).await;
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, env = %env_id, "drift: cannot read the environment");
                return;
            }
        };
        // Being built, restored or deleted: its next event re-schedules it.
        if env.status != EnvironmentStatus::Ready {
            return;
        }
        let baseline = match self.baseline_of(&env).await {
            Ok(Some(b)) => b,
            Ok(None) => {
                self.unwatch(env_id);
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, env = %env_id, "drift: cannot resolve the baseline");
                return;
            }
        };
        let baseline_inv = match self.inventory_of(baseline).await {
            Ok(i) => i,
            Err(e) => {
                tracing::warn!(error = %e, env = %env_id, snapshot = %baseline, "drift: cannot read the baseline's inventory");
                return;
            }
        };
        if env.adopted.is_some() {
            // Its files live on a lab machine: judge what its agent reported,
            // when it reports or the baseline moves. Never on this process's
            // sweeps or start-up: another drift process may hold a newer
            // report, and judging an old one here would flip the status.
            if matches!(source, DriftSource::Sweep | DriftSource::Startup) {
                return;
            }
            let Some(current) = lock(&self.reported).get(&env_id).cloned() else {
                return;
            };
            let evaluation = westtek_drift::judge(&baseline_inv, (*current).clone());
            self.record(&env, baseline, source, evaluation).await;
            return;
        }
        let root = self.root(env_id);
        if let Some(w) = &self.watcher {
            if w.root(env_id).is_none() {
                if let Err(e) = w.watch(env_id, &root) {
                    tracing::warn!(error = %e, env = %env_id, "drift: cannot watch the environment; the sweep covers it");
                }
            }
        }
        let previous = {
            let tracked = lock(&self.tracked);
            match tracked.get(&env_id) {
                Some(t) if source != DriftSource::Startup && t.baseline == baseline => {
                    t.previous.clone()
                }
                _ => None,
            }
        };
        let b = Arc::clone(&baseline_inv);
        let r = root.clone();
        let evaluation =
            tokio::task::spawn_blocking(move || evaluate(&b, &r, previous.as_deref())).await;
        let evaluation = match evaluation {
            Ok(Ok(e)) => e,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, env = %env_id, "drift: cannot inventory the environment");
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, env = %env_id, "drift: evaluation panicked");
                return;
            }
        };
        self.record(&env, baseline, source, evaluation).await;
    }

    /// Records an evaluation: the state when it is the first look, an
    /// event when the findings changed.
    async fn record(
        self: &Arc<Self>,
        env: &Environment,
        baseline: SnapshotId,
        source: DriftSource,
        evaluation: westtek_drift::Evaluation,
    ) {
        let env_id = env.id;
        let current = Arc::new(evaluation.current);
        lock(&self.tracked).insert(
            env_id,
            Tracked {
                baseline,
                previous: Some(current),
            },
        );
        let stored = match self.store.get_drift_state(env_id).await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, env = %env_id, "drift: cannot read the stored state");
                return;
            }
        };
        let now = self.state.clock.now();
        let status = evaluation.status;
        match &stored {
            Some(s) if s.fingerprint == evaluation.fingerprint => {
                if s.baseline_snapshot_id != Some(baseline) {
                    let mut s = s.clone();
                    s.baseline_snapshot_id = Some(baseline);
                    s.updated_at = now;
                    if let Err(e) = self.store.put_drift_state(s).await {
                        tracing::warn!(error = %e, env = %env_id, "drift: cannot record the new baseline");
                    }
                }
                return;
            }
            // First look at an environment identical to its baseline: a
            // state, not an event.
            None if evaluation.findings.is_empty() => {
                let s = DriftStateRecord {
                    environment_id: env_id,
                    lab_id: env.lab_id,
                    status,
                    fingerprint: evaluation.fingerprint,
                    baseline_snapshot_id: Some(baseline),
                    last_event_id: None,
                    updated_at: now,
                };
                if let Err(e) = self.store.put_drift_state(s).await {
                    tracing::warn!(error = %e, env = %env_id, "drift: cannot record the state");
                }
                if env.drift_status != status {
                    self.set_env_status(env, status, None).await;
                }
                return;
            }
            _ => {}
        }
        let mut affected: Vec<String> = evaluation
            .findings
            .iter()
            .flat_map(|f| f.affected_notebooks.iter().cloned())
            .collect();
        affected.sort();
        affected.dedup();
        // The event's severity is that of what changed since the last event
        // (new or different findings): installing an unrelated package into
        // an environment that already drifted is MINOR, not the earlier
        // CRITICAL again. Alerts and the analyzer follow it.
        let before: Vec<Finding> = match stored.as_ref().and_then(|s| s.last_event_id) {
            Some(last) => match self.store.get_drift_event(last).await {
                Ok(prev) if prev.baseline_snapshot_id == Some(baseline) => findings_of(&prev),
                _ => Vec::new(),
            },
            None => Vec::new(),
        };
        let changed: Vec<Finding> = evaluation
            .findings
            .iter()
            .filter(|f| !before.contains(f))
            .cloned()
            .collect();
        let severity = changed.iter().map(|f| f.severity).min();
        let event = DriftEvent {
            id: DriftEventId::new(),
            seq: 0,
            lab_id: env.lab_id,
            environment_id: env_id,
            detected_at: now,
            source,
            baseline_snapshot_id: Some(baseline),
            previous_status: stored
                .as_ref()
                .map_or(westtek_domain::DriftStatus::Stable, |s| s.status),
            status,
            severity: severity.map(|s| severity_name(s).to_string()),
            fingerprint: evaluation.fingerprint.clone(),
            findings: serde_json::to_value(&evaluation.findings).unwrap_or_default(),
            affected_notebooks: affected,
        };
        let expected = stored.map(|s| s.fingerprint);
        match self.store.record_drift(event, expected).await {
            Ok(RecordOutcome::Recorded(ev)) => {
                self.after_record(env, ev, changed).await;
            }
            Ok(RecordOutcome::Stale(_)) => {}
            Err(e) => {
                tracing::warn!(error = %e, env = %env_id, "drift: cannot record the event");
            }
        }
    }

    async fn set_env_status(
        &self,
        env: &Environment,
        status: westtek_domain::DriftStatus,
        audit: Option<westtek_domain::AuditDraft>,
    ) {
        let r = westtek_env_manager::environments::modify(&self.state, env.id, audit, move |e| {
            e.drift_status = status;
            Ok(())
        })
        .await;
        if let Err(e) = r {
            tracing::warn!(error = %e, env = %env.id, "drift: cannot update the environment's drift status");
        }
    }

    /// `changed`: the findings new in this event (what alerts describe).
    async fn after_record(
        self: &Arc<Self>,
        env: &Environment,
        ev: DriftEvent,
        changed: Vec<Finding>,
    ) {
        let findings = changed;
        tracing::info!(env = %env.id, status = ev.status.as_str(), severity = ?ev.severity,
            source = ?ev.source, findings = findings.len(), "drift detected");
        let audit = system_audit(
            Some(env.lab_id),
            "drift.detected",
            "environment",
            env.id.to_string(),
            serde_json::json!({
                "drift_event_id": ev.id.to_string(),
                "status": ev.status,
                "previous_status": ev.previous_status,
                "severity": ev.severity,
                "source": ev.source,
                "findings": findings.len(),
                "baseline_snapshot_id": ev.baseline_snapshot_id.map(|s| s.to_string()),
            }),
        );
        if env.drift_status != ev.status {
            self.set_env_status(env, ev.status, Some(audit)).await;
        } else if let Err(e) = self.state.store.append(vec![audit]).await {
            tracing::warn!(error = %e, "drift: cannot audit an event");
        }
        let data = serde_json::json!({
            "environment_id": env.id.to_string(),
            "name": env.name,
            "drift_event_id": ev.id.to_string(),
            "seq": ev.seq,
            "status": ev.status,
            "previous_status": ev.previous_status,
            "severity": ev.severity,
            "affected_notebooks": ev.affected_notebooks,
        });
        let mut domain = DomainEvent::new(
            types::DRIFT_DETECTED,
            SERVICE,
            env.lab_id,
            ev.detected_at,
            data,
        );
        domain.id = EventId::from_uuid(ev.id.as_uuid());
        if let Err(e) = self.state.bus.publish(&domain).await {
            tracing::warn!(error = %e, "drift: could not publish drift.detected");
        }
        self.recorded.notify_one();
        if ev.severity.is_some() {
            if let Some(router) = &self.alerts {
                let mut alert = Alert::from_findings(
                    EventId::from_uuid(ev.id.as_uuid()),
                    env.lab_id,
                    env.id,
                    env.name.to_string(),
                    findings,
                    ev.detected_at,
                );
                // The environment's overall status, not that of the change alone.
                alert.status = ev.status;
                alert = alert.with_link(format!(
                    "{}/environments/{}/drift",
                    self.state.config.public_url, env.id
                ));
                let _ = router.dispatch(alert);
            }
        }
        if ev.severity.as_deref() == Some("CRITICAL") {
            let hub = Arc::clone(self);
            tokio::spawn(async move { hub.analyze(ev).await });
        }
    }

    /// The Drift Analyzer on a CRITICAL event: its explanation and
    /// recommendation are recorded (and audited) for the environment.
    async fn analyze(self: Arc<Self>, ev: DriftEvent) {
        let chunks = match self.remote_agent() {
            Some(agent) => {
                use futures::StreamExt;
                let request = westtek_assist::AgentRequest {
                    agent: westtek_assist::AgentKind::DriftAnalyzer,
                    session_id: format!("drift-{}", ev.id),
                    lab_id: ev.lab_id,
                    environment_id: Some(ev.environment_id),
                    input_text: format!(
                        "Drift event {} (#{}) on this environment: {} -> {}. Explain what changed, \
                         which notebooks it affects, and recommend a snapshot or a rollback.",
                        ev.id,
                        ev.seq,
                        ev.previous_status.as_str(),
                        ev.status.as_str()
                    ),
                    caller: westtek_assist::CallerRef {
                        user_id: westtek_domain::UserId::from_uuid(uuid::Uuid::nil()),
                        display_name: "westtek (system)".into(),
                    },
                };
                match agent.invoke(request).await {
                    Ok(stream) => stream.collect::<Vec<_>>().await,
                    Err(e) => {
                        tracing::warn!(error = %e, event = %ev.id, "the Drift Analyzer agent failed");
                        return;
                    }
                }
            }
            None => {
                let tools = Arc::new(ServiceTools::new(Arc::clone(&self), false));
                let analyzer = LocalDriftAnalyzer::new(tools, Arc::clone(&self.sessions));
                let scope = ToolScope {
                    lab_id: ev.lab_id,
                    actor: None,
                };
                analyzer.analyze_event(scope, event_view(&ev)).await
            }
        };
        let text = AgentChunk::answer_text(&chunks);
        let recs: Vec<_> = chunks
            .iter()
            .filter_map(|c| match c {
                AgentChunk::Recommendation { recommendation } => Some(recommendation.clone()),
                _ => None,
            })
            .collect();
        let body = match recs.first() {
            Some(r) => serde_json::to_value(r).unwrap_or_default(),
            None => serde_json::json!({ "kind": "none" }),
        };
        let rec = RecommendationRecord {
            id: RecommendationId::new(),
            lab_id: ev.lab_id,
            environment_id: ev.environment_id,
            agent: "drift_analyzer".into(),
            body,
            analysis: Some(text),
            drift_event_id: Some(ev.id),
            created_by: None,
            created_at: self.state.clock.now(),
        };
        let audit = system_audit(
            Some(ev.lab_id),
            "drift.analyzed",
            "environment",
            ev.environment_id.to_string(),
            serde_json::json!({ "drift_event_id": ev.id.to_string(), "recommendation_id": rec.id.to_string(), "recommendation": rec.body }),
        );
        match self.store.insert_recommendation(rec).await {
            Ok(()) => {
                if let Err(e) = self.state.store.append(vec![audit]).await {
                    tracing::warn!(error = %e, "drift: cannot audit an analysis");
                }
            }
            Err(e) => tracing::warn!(error = %e, "drift: cannot record an analysis"),
        }
    }

    /// Pins (or unpins, `None`) the environment's drift baseline.
    ///
    /// # Errors
    /// Store failures; `conflict` on concurrent edits after retries.
    /// Moves `env`'s pin to `snapshot` once the snapshot is created (the
    /// accept action of a pinned environment).
    pub(crate) async fn repin_when_created(
        self: &Arc<Self>,
        env: EnvironmentId,
        snapshot: SnapshotId,
        audit: westtek_domain::AuditDraft,
    ) {
        lock(&self.repins).insert(snapshot, (env, audit));
        // Created before it was registered: the event has gone by.
        let done = matches!(
            self.state.store.get_snapshot(snapshot).await,
            Ok(s) if s.status == westtek_domain::SnapshotStatus::Complete
        );
        let pending = if done {
            lock(&self.repins).remove(&snapshot)
        } else {
            None
        };
        if let Some((env, audit)) = pending {
            if let Err(e) = self.pin(env, Some(snapshot), audit).await {
                tracing::warn!(error = %e, env = %env, "could not move the pinned baseline to the accepted snapshot");
            }
        }
    }

    pub(crate) async fn pin(
        self: &Arc<Self>,
        env: EnvironmentId,
        snapshot: Option<SnapshotId>,
        audit: westtek_domain::AuditDraft,
    ) -> Result<Environment> {
        let e =
            westtek_env_manager::environments::modify(&self.state, env, Some(audit), move |e| {
                e.baseline_snapshot_id = snapshot;
                Ok(())
            })
            .await?;
        self.schedule(env, DriftSource::Baseline);
        Ok(e)
    }

    /// The fingerprint of "no findings" (an environment at its baseline).
    pub fn baseline_fingerprint() -> String {
        fingerprint(&[])
    }
}
