//! Email through a real SMTP server (`aiosmtpd`, see `smtpd.rs`): critical
//! alerts are mailed, minor ones are not, and an unreachable server ends in
//! a dead letter.

use std::sync::Arc;
use std::time::Duration;

use westtek_alerts::{
    http_client, AlertRouter, Channel, Error, Notifier, RouterConfig, Severity, Shutdown,
    SmtpConfig, SmtpNotifier, SmtpTls,
};
use westtek_domain::LabId;

use crate::smtpd::{Mail, SmtpServer};
use crate::support::{alert, closed_port, fast_policy, MemorySink, StaticTargets, SOON};

const RECIPIENT: &str = "lab-admins@lab.example";

fn smtp(port: u16) -> SmtpConfig {
    SmtpConfig {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username: None,
        password: None,
        from: "West Tek <alerts@westtek.example>".into(),
        to: vec![RECIPIENT.into()],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_alert_is_mailed_and_a_minor_one_is_not() {
    let server = tokio::task::spawn_blocking(SmtpServer::start)
        .await
        .unwrap();
    let lab = LabId::new();
    let mut targets = StaticTargets::default();
    targets.smtp.insert(lab, smtp(server.port));
    let sink = MemorySink::new();
    let router = AlertRouter::start(
        RouterConfig {
            retry: fast_policy(3, Duration::from_secs(10)),
            ..RouterConfig::default()
        },
        http_client().unwrap(),
        Arc::new(targets),
        sink.clone(),
    )
    .unwrap();

    // The minor alert goes first; once the critical one has arrived and the
    // router has drained, a mail for the minor one would be there too.
    let minor = alert(lab, Severity::Minor);
    let critical = alert(lab, Severity::Critical);
    router.dispatch(minor);
    router.dispatch(critical.clone());
    server.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(router.close(SOON).await, Shutdown::Drained);

    let messages = server.messages();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    let mail = Mail::parse(&messages[0]);
    assert_eq!(mail.header("subject"), "[West Tek] CRITICAL drift in demo");
    assert_eq!(mail.header("x-rcptto"), RECIPIENT);
    assert!(
        mail.header("to").contains(RECIPIENT),
        "{}",
        mail.header("to")
    );
    assert!(mail.header("from").contains("alerts@westtek.example"));
    assert!(mail.header("content-type").starts_with("text/plain"));
    assert!(mail.body.contains("analysis.ipynb"), "{}", mail.body);
    assert!(
        mail.body.contains("numpy upgraded 1.26.4 → 2.1.0 (major)"),
        "{}",
        mail.body
    );
    assert!(mail.body.contains(&critical.event_id.to_string()));
    assert_eq!(
        mail.header("message-id"),
        format!("<drift-{}@westtek.example>", critical.event_id)
    );
    assert!(sink.letters().is_empty(), "{:#?}", sink.letters());
}

#[tokio::test]
async fn an_smtp_notifier_reports_the_servers_reply() {
    let server = tokio::task::spawn_blocking(SmtpServer::start)
        .await
        .unwrap();
    let n = SmtpNotifier::new(smtp(server.port), fast_policy(2, Duration::from_secs(10))).unwrap();
    let report = n
        .notify(&alert(LabId::new(), Severity::Critical))
        .await
        .unwrap();
    assert_eq!((report.attempts, report.status), (1, Some(250)));
    assert_eq!(server.wait_for(1, SOON).await.len(), 1);
}

#[tokio::test]
async fn an_unreachable_smtp_server_is_retried_then_dead_lettered() {
    let n = SmtpNotifier::new(smtp(closed_port()), fast_policy(3, Duration::from_secs(5))).unwrap();
    let a = alert(LabId::new(), Severity::Critical);
    let err = n.notify(&a).await.unwrap_err();
    let Error::Undelivered(letter) = err else {
        panic!("{err}")
    };
    assert_eq!(letter.attempts, 3);
    assert_eq!(letter.channel, Channel::Email);
    assert_eq!(letter.event_id, a.event_id);
    assert_eq!(
        letter.payload["subject"],
        "[West Tek] CRITICAL drift in demo"
    );
    assert_eq!(letter.payload["to"][0], RECIPIENT);
}
