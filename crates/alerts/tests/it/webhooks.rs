//! One webhook target at a time, through `WebhookNotifier`: signing, both
//! payload formats, and retries against receivers that fail on purpose.

use std::time::Duration;

use westtek_alerts::{
    http_client, verify_signature, Channel, Error, Notifier, Severity, WebhookFormat,
    WebhookNotifier, EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER,
};
use westtek_domain::LabId;

use crate::support::{alert, closed_port, fast_policy, target, Behaviour, Receiver, NOTEBOOK};

fn notifier(url: &str, secret: &str, format: WebhookFormat, attempts: u32) -> WebhookNotifier {
    WebhookNotifier::new(
        http_client().unwrap(),
        target("t1", url, secret, format, Severity::Critical),
        fast_policy(attempts, Duration::from_secs(5)),
    )
}

#[tokio::test]
async fn a_generic_payload_arrives_signed_with_the_targets_secret() {
    let rx = Receiver::start("s3cret", Behaviour::Statuses(vec![200])).await;
    let a = alert(LabId::new(), Severity::Critical);
    let report = notifier(&rx.url, "s3cret", WebhookFormat::Generic, 3)
        .notify(&a)
        .await
        .unwrap();
    assert_eq!((report.attempts, report.status), (1, Some(200)));
    assert_eq!(report.target_id, "t1");

    let got = rx.wait_for(1).await;
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert!(r.verified, "signature did not verify: {:?}", r.headers);
    assert!(r.header(SIGNATURE_HEADER).starts_with("sha256="));
    assert_eq!(r.header(EVENT_ID_HEADER), a.event_id.to_string());
    assert_eq!(r.header("content-type"), "application/json");
    let ts: i64 = r.header(TIMESTAMP_HEADER).parse().unwrap();
    assert!((chrono::Utc::now().timestamp() - ts).abs() < 300);
    assert_eq!(r.json["type"], "drift.detected");
    assert_eq!(r.json["version"], 1);
    assert_eq!(r.json["event_id"], a.event_id.to_string());
    assert_eq!(r.json["lab_id"], a.lab_id.to_string());
    assert_eq!(r.json["severity"], "CRITICAL");
    assert_eq!(r.json["status"], "CRITICAL_DRIFT");
    assert_eq!(r.json["environment_name"], "demo");
    assert_eq!(r.json["findings"][0]["subject"], "numpy");
    assert_eq!(r.json["findings"][0]["affected_notebooks"][0], NOTEBOOK);
    assert_eq!(
        r.json["summary"],
        "CRITICAL drift in 'demo': numpy upgraded 1.26.4 → 2.1.0 (major); affects analysis.ipynb"
    );
}

#[tokio::test]
async fn a_slack_payload_has_text_and_blocks() {
    let rx = Receiver::start("k", Behaviour::Statuses(vec![200])).await;
    let a = alert(LabId::new(), Severity::Critical);
    notifier(&rx.url, "k", WebhookFormat::Slack, 1)
        .notify(&a)
        .await
        .unwrap();
    let got = rx.wait_for(1).await;
    let r = &got[0];
    assert!(r.verified);
    let text = r.json["text"].as_str().unwrap();
    assert!(text.contains("CRITICAL drift in 'demo'"), "{text}");
    assert!(text.contains("analysis.ipynb"), "{text}");
    let blocks = r.json["blocks"].as_array().unwrap();
    assert!(blocks.iter().all(|b| b["type"].is_string()));
    assert!(blocks.iter().any(|b| b["type"] == "section"
        && b["text"]["text"]
            .as_str()
            .unwrap()
            .contains("numpy upgraded")));
    assert!(
        r.json.get("type").is_none(),
        "the Slack format is not the generic payload"
    );
}

#[tokio::test]
async fn a_wrong_secret_fails_verification() {
    let rx = Receiver::start("the-right-secret", Behaviour::Statuses(vec![200])).await;
    let a = alert(LabId::new(), Severity::Critical);
    notifier(&rx.url, "a-wrong-secret", WebhookFormat::Generic, 1)
        .notify(&a)
        .await
        .unwrap();
    let r = &rx.wait_for(1).await[0];
    assert!(!r.verified, "a signature made with another secret verified");
    let (ts, sig) = (r.header(TIMESTAMP_HEADER), r.header(SIGNATURE_HEADER));
    assert!(verify_signature("a-wrong-secret", ts, &r.body, sig));
    let mut tampered = r.body.to_vec();
    tampered[1] ^= 1;
    assert!(!verify_signature("a-wrong-secret", ts, &tampered, sig));
}

#[tokio::test]
async fn two_server_errors_then_success_is_delivered_on_the_third_attempt() {
    let rx = Receiver::start("k", Behaviour::Statuses(vec![500, 500, 200])).await;
    let a = alert(LabId::new(), Severity::Critical);
    let report = notifier(&rx.url, "k", WebhookFormat::Generic, 5)
        .notify(&a)
        .await
        .unwrap();
    assert_eq!((report.attempts, report.status), (3, Some(200)));
    let got = rx.received();
    assert_eq!(got.len(), 3);
    for r in &got {
        assert!(r.verified);
        assert_eq!(r.header(EVENT_ID_HEADER), a.event_id.to_string());
        assert_eq!(r.body, got[0].body, "a retry sends the same payload");
    }
}

#[tokio::test]
async fn too_many_requests_is_retried_and_not_found_is_not() {
    let rx = Receiver::start("k", Behaviour::Statuses(vec![429, 200])).await;
    let a = alert(LabId::new(), Severity::Critical);
    let report = notifier(&rx.url, "k", WebhookFormat::Generic, 3)
        .notify(&a)
        .await
        .unwrap();
    assert_eq!(report.attempts, 2);

    let gone = Receiver::start("k", Behaviour::Statuses(vec![404])).await;
    let err = notifier(&gone.url, "k", WebhookFormat::Generic, 5)
        .notify(&a)
        .await
        .unwrap_err();
    let Error::Undelivered(letter) = err else {
        panic!("{err}")
    };
    assert_eq!((letter.attempts, letter.last_status), (1, Some(404)));
    assert_eq!(gone.received().len(), 1);
}

#[tokio::test]
async fn a_hanging_receiver_is_cut_off_by_the_attempt_timeout() {
    let rx = Receiver::start("k", Behaviour::Hang).await;
    let a = alert(LabId::new(), Severity::Critical);
    let n = WebhookNotifier::new(
        http_client().unwrap(),
        target(
            "slow",
            &rx.url,
            "k",
            WebhookFormat::Generic,
            Severity::Critical,
        ),
        fast_policy(2, Duration::from_millis(500)),
    );
    let err = tokio::time::timeout(Duration::from_secs(30), n.notify(&a))
        .await
        .expect("the per-attempt timeout never fired")
        .unwrap_err();
    let Error::Undelivered(letter) = err else {
        panic!("{err}")
    };
    assert_eq!(letter.attempts, 2);
    assert!(
        letter.last_error.contains("timed out"),
        "{}",
        letter.last_error
    );
    assert_eq!(rx.received().len(), 2);
}

#[tokio::test]
async fn an_unreachable_target_is_retried_then_dead_lettered_with_the_payload() {
    let url = format!("http://127.0.0.1:{}/hook", closed_port());
    let a = alert(LabId::new(), Severity::Critical);
    let err = notifier(&url, "k", WebhookFormat::Generic, 3)
        .notify(&a)
        .await
        .unwrap_err();
    let Error::Undelivered(letter) = err else {
        panic!("{err}")
    };
    assert_eq!(letter.attempts, 3);
    assert_eq!(letter.channel, Channel::Webhook);
    assert_eq!(letter.target_id, "t1");
    assert_eq!(letter.last_status, None);
    assert!(!letter.last_error.is_empty());
    assert_eq!(letter.payload["event_id"], a.event_id.to_string());
}

#[tokio::test]
async fn an_invalid_url_is_dead_lettered_without_an_attempt() {
    let a = alert(LabId::new(), Severity::Critical);
    for url in ["not a url", "file:///etc/passwd"] {
        let err = notifier(url, "k", WebhookFormat::Generic, 3)
            .notify(&a)
            .await
            .unwrap_err();
        let Error::Undelivered(letter) = err else {
            panic!("{err}")
        };
        assert_eq!(letter.attempts, 0, "{url}");
    }
}
