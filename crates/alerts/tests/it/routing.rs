//! `AlertRouter`: severity routing, dead letters, a non-blocking queue and
//! shutdown, against real receivers; channels added from other crates
//! (`RoutedChannel`, `WithChannels`) routed and retried the same way.

use std::sync::Arc;
use std::time::Duration;

use westtek_alerts::{
    http_client, AlertRouter, CancellationToken, Channel, Dispatch, Notifier, Result, RetryPolicy,
    RoutedChannel, RouterConfig, Severity, Shutdown, TargetSource, WebhookFormat, WebhookNotifier,
    WithChannels, EVENT_ID_HEADER,
};
use westtek_domain::LabId;

use crate::support::{
    alert, fast_policy, target, Behaviour, MemorySink, Receiver, StaticTargets, SOON,
};

fn start(targets: StaticTargets, sink: Arc<MemorySink>, config: RouterConfig) -> AlertRouter {
    AlertRouter::start(config, http_client().unwrap(), Arc::new(targets), sink).unwrap()
}

fn config(attempts: u32, timeout: Duration) -> RouterConfig {
    RouterConfig {
        retry: fast_policy(attempts, timeout),
        ..RouterConfig::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_get_what_their_minimum_severity_admits() {
    let lab = LabId::new();
    let critical_only = Receiver::start("a", Behaviour::Statuses(vec![200])).await;
    let everything = Receiver::start("b", Behaviour::Statuses(vec![200])).await;
    let mut targets = StaticTargets::default();
    targets.webhooks.insert(
        lab,
        vec![
            target(
                "crit",
                &critical_only.url,
                "a",
                WebhookFormat::Generic,
                Severity::Critical,
            ),
            target(
                "all",
                &everything.url,
                "b",
                WebhookFormat::Slack,
                Severity::Info,
            ),
        ],
    );
    let sink = MemorySink::new();
    let router = start(targets, sink.clone(), config(3, Duration::from_secs(5)));

    let info = alert(lab, Severity::Info);
    let minor = alert(lab, Severity::Minor);
    let critical = alert(lab, Severity::Critical);
    let other_lab = alert(LabId::new(), Severity::Critical);
    for a in [&info, &minor, &critical, &other_lab] {
        assert_eq!(router.dispatch(a.clone()), Dispatch::Queued);
    }
    assert_eq!(router.close(SOON).await, Shutdown::Drained);

    let ids = |r: &Receiver| -> Vec<String> {
        let mut v: Vec<String> = r
            .received()
            .iter()
            .map(|x| x.header(EVENT_ID_HEADER).to_string())
            .collect();
        v.sort();
        v
    };
    assert_eq!(ids(&critical_only), vec![critical.event_id.to_string()]);
    let mut want = vec![
        info.event_id.to_string(),
        minor.event_id.to_string(),
        critical.event_id.to_string(),
    ];
    want.sort();
    assert_eq!(ids(&everything), want);
    assert!(critical_only.received().iter().all(|r| r.verified));
    assert!(everything.received().iter().all(|r| r.verified));
    assert!(sink.letters().is_empty(), "{:#?}", sink.letters());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_always_fails_is_dead_lettered_after_every_attempt() {
    let lab = LabId::new();
    let rx = Receiver::start("k", Behaviour::Statuses(vec![500])).await;
    let mut targets = StaticTargets::default();
    targets.webhooks.insert(
        lab,
        vec![target(
            "broken",
            &rx.url,
            "k",
            WebhookFormat::Generic,
            Severity::Critical,
        )],
    );
    let sink = MemorySink::new();
    let cfg = config(4, Duration::from_secs(5));
    let router = start(targets, sink.clone(), cfg);
    let a = alert(lab, Severity::Critical);
    router.dispatch(a.clone());

    let letters = sink.wait_for(1, SOON).await;
    let l = &letters[0];
    assert_eq!(l.attempts, cfg.retry.attempts);
    assert_eq!(l.last_status, Some(500));
    assert_eq!(l.target_id, "broken");
    assert_eq!(l.channel, Channel::Webhook);
    assert_eq!(l.event_id, a.event_id);
    assert_eq!(l.lab_id, lab);
    assert_eq!(l.payload["type"], "drift.detected");
    assert!(l.last_error.contains("500"), "{}", l.last_error);
    assert_eq!(rx.received().len(), 4);
    assert_eq!(router.close(SOON).await, Shutdown::Drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_request_is_dead_lettered_after_one_attempt() {
    let lab = LabId::new();
    let rx = Receiver::start("k", Behaviour::Statuses(vec![400])).await;
    let mut targets = StaticTargets::default();
    targets.webhooks.insert(
        lab,
        vec![target(
            "picky",
            &rx.url,
            "k",
            WebhookFormat::Generic,
            Severity::Critical,
        )],
    );
    let sink = MemorySink::new();
    let router = start(targets, sink.clone(), config(5, Duration::from_secs(5)));
    router.dispatch(alert(lab, Severity::Critical));

    let letters = sink.wait_for(1, SOON).await;
    assert_eq!(
        (letters[0].attempts, letters[0].last_status),
        (1, Some(400))
    );
    assert_eq!(router.close(SOON).await, Shutdown::Drained);
    assert_eq!(rx.received().len(), 1, "a 400 must not be retried");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_target_times_out_without_holding_up_other_alerts() {
    let (slow_lab, fast_lab) = (LabId::new(), LabId::new());
    let hang = Receiver::start("k", Behaviour::Hang).await;
    let ok = Receiver::start("k", Behaviour::Statuses(vec![200])).await;
    let mut targets = StaticTargets::default();
    targets.webhooks.insert(
        slow_lab,
        vec![target(
            "hang",
            &hang.url,
            "k",
            WebhookFormat::Generic,
            Severity::Critical,
        )],
    );
    targets.webhooks.insert(
        fast_lab,
        vec![target(
            "ok",
            &ok.url,
            "k",
            WebhookFormat::Generic,
            Severity::Critical,
        )],
    );
    let sink = MemorySink::new();
    // Two attempts of 2 s each: the slow alert takes at least 4 s to give up.
    let router = start(targets, sink.clone(), config(2, Duration::from_secs(2)));

    let slow = alert(slow_lab, Severity::Critical);
    let fast = alert(fast_lab, Severity::Critical);
    assert_eq!(router.dispatch(slow.clone()), Dispatch::Queued);
    hang.wait_for(1).await;
    assert_eq!(router.dispatch(fast.clone()), Dispatch::Queued);

    let got = ok.wait_for(1).await;
    assert_eq!(got[0].header(EVENT_ID_HEADER), fast.event_id.to_string());
    assert!(
        sink.letters().is_empty(),
        "the other alert was only delivered after the hanging one gave up"
    );

    let letters = sink.wait_for(1, Duration::from_secs(60)).await;
    assert_eq!(letters[0].event_id, slow.event_id);
    assert_eq!(letters[0].attempts, 2);
    assert!(
        letters[0].last_error.contains("timed out"),
        "{}",
        letters[0].last_error
    );
    assert_eq!(hang.received().len(), 2);
    assert_eq!(router.close(SOON).await, Shutdown::Drained);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_dead_letters_instead_of_blocking_and_close_abandons_the_rest() {
    let lab = LabId::new();
    let hang = Receiver::start("k", Behaviour::Hang).await;
    let mut targets = StaticTargets::default();
    targets.webhooks.insert(
        lab,
        vec![target(
            "hang",
            &hang.url,
            "k",
            WebhookFormat::Generic,
            Severity::Critical,
        )],
    );
    let sink = MemorySink::new();
    let router = start(
        targets,
        sink.clone(),
        RouterConfig {
            queue_capacity: 1,
            max_in_flight: 1,
            retry: fast_policy(1, Duration::from_secs(600)),
        },
    );
    // At most one alert in flight (hanging) and one queued: of six, at least
    // four are turned away, and `dispatch` returns for every one.
    let outcomes: Vec<Dispatch> = (0..6)
        .map(|_| router.dispatch(alert(lab, Severity::Critical)))
        .collect();
    let full = outcomes
        .iter()
        .filter(|o| **o == Dispatch::QueueFull)
        .count();
    assert!(full >= 4, "{outcomes:?}");
    let letters = sink.wait_for(full, SOON).await;
    assert!(letters.iter().all(|l| l.last_error == "queue full"
        && l.channel == Channel::Router
        && l.attempts == 0
        && l.payload["event_id"].is_string()));

    hang.wait_for(1).await;
    assert_eq!(
        router.close(Duration::from_millis(200)).await,
        Shutdown::Abandoned
    );
    // The one in flight and the one queued (if any) were abandoned.
    let accepted = outcomes.len() - full;
    let letters = sink.wait_for(full + accepted, SOON).await;
    let abandoned: Vec<_> = letters
        .iter()
        .filter(|l| l.last_error.starts_with("abandoned at shutdown"))
        .collect();
    assert_eq!(abandoned.len(), accepted, "{letters:#?}");
    assert_eq!(
        router.dispatch(alert(lab, Severity::Critical)),
        Dispatch::Closed
    );
    let letters = sink.wait_for(full + accepted + 1, SOON).await;
    assert!(letters.iter().any(|l| l.last_error == "router closed"));
}

/// A channel from "another crate": here a webhook, so the test can see
/// what arrives and fail it on purpose.
struct HookChannel {
    target: westtek_alerts::WebhookTarget,
    min: Severity,
}

impl RoutedChannel for HookChannel {
    fn target_id(&self) -> String {
        self.target.id.clone()
    }

    fn channel(&self) -> Channel {
        Channel::Webhook
    }

    fn min_severity(&self) -> Severity {
        self.min
    }

    fn notifier(&self, retry: RetryPolicy, cancel: CancellationToken) -> Box<dyn Notifier> {
        Box::new(
            WebhookNotifier::new(http_client().unwrap(), self.target.clone(), retry)
                .with_cancellation(cancel),
        )
    }
}

/// Lab targets whose channel lookup fails (a database down).
struct BrokenChannels;

#[async_trait::async_trait]
impl TargetSource for BrokenChannels {
    async fn webhooks_for(&self, _lab: LabId) -> Result<Vec<westtek_alerts::WebhookTarget>> {
        Ok(Vec::new())
    }

    async fn smtp_for(&self, _lab: LabId) -> Result<Option<westtek_alerts::SmtpConfig>> {
        Ok(None)
    }

    async fn channels_for(&self, _lab: LabId) -> Result<Vec<Arc<dyn RoutedChannel>>> {
        Err(westtek_alerts::Error::backend(
            "reading channels",
            "database is down",
        ))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn added_channels_get_what_their_minimum_severity_admits_with_the_routers_retries() {
    let lab = LabId::new();
    let minor_up = Receiver::start("m", Behaviour::Statuses(vec![200])).await;
    let broken = Receiver::start("b", Behaviour::Statuses(vec![503])).await;
    let channels: Vec<Arc<dyn RoutedChannel>> = vec![
        Arc::new(HookChannel {
            target: target(
                "minor-up",
                &minor_up.url,
                "m",
                WebhookFormat::Generic,
                Severity::Info,
            ),
            min: Severity::Minor,
        }),
        Arc::new(HookChannel {
            target: target(
                "broken",
                &broken.url,
                "b",
                WebhookFormat::Generic,
                Severity::Info,
            ),
            min: Severity::Critical,
        }),
    ];
    let targets = WithChannels::new(Arc::new(StaticTargets::default()), channels);
    let sink = MemorySink::new();
    let cfg = config(3, Duration::from_secs(5));
    let router =
        AlertRouter::start(cfg, http_client().unwrap(), Arc::new(targets), sink.clone()).unwrap();
    let (info, minor, critical) = (
        alert(lab, Severity::Info),
        alert(lab, Severity::Minor),
        alert(lab, Severity::Critical),
    );
    for a in [&info, &minor, &critical] {
        router.dispatch(a.clone());
    }
    assert_eq!(router.close(SOON).await, Shutdown::Drained);

    let mut got: Vec<String> = minor_up
        .received()
        .iter()
        .map(|r| r.header(EVENT_ID_HEADER).to_string())
        .collect();
    got.sort();
    let mut want = vec![minor.event_id.to_string(), critical.event_id.to_string()];
    want.sort();
    assert_eq!(
        got, want,
        "the channel's minimum is minor: info is not sent"
    );
    // The critical-only channel got the critical alert only, with the
    // router's three attempts, then a dead letter.
    assert_eq!(broken.received().len(), 3);
    let letters = sink.letters();
    assert_eq!(letters.len(), 1, "{letters:#?}");
    assert_eq!(letters[0].target_id, "broken");
    assert_eq!(letters[0].event_id, critical.event_id);
    assert_eq!(letters[0].attempts, 3);
    assert_eq!(letters[0].last_status, Some(503));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_channel_lookup_is_dead_lettered_by_the_router() {
    let sink = MemorySink::new();
    let router = AlertRouter::start(
        config(2, Duration::from_secs(5)),
        http_client().unwrap(),
        Arc::new(BrokenChannels),
        sink.clone(),
    )
    .unwrap();
    let a = alert(LabId::new(), Severity::Critical);
    router.dispatch(a.clone());
    let letters = sink.wait_for(1, SOON).await;
    assert_eq!(router.close(SOON).await, Shutdown::Drained);
    assert_eq!(letters[0].channel, Channel::Router);
    assert_eq!(letters[0].event_id, a.event_id);
    assert!(
        letters[0]
            .last_error
            .starts_with("alert channels could not be read: reading channels: database is down"),
        "{}",
        letters[0].last_error
    );
}
