//! E-mail by SES on moto: the critical alert goes out as the very message
//! SMTP delivery sends, a minor one does not; an unverified sender and an
//! unreachable endpoint end in dead letters.

use std::sync::Arc;
use std::time::Duration;

use westtek_alerts::{AlertEmail, Channel, Error, Notifier, Severity, Shutdown};
use westtek_alerts_aws::{provision_ses, SesConfig, SesNotifier};
use westtek_domain::LabId;

use crate::support::{
    alert, closed_port, fast_policy, moto, recorded, router, Mail, MemorySink, SOON,
};

const FROM: &str = "West Tek <alerts@westtek.example>";
const RECIPIENT: &str = "lab-admins@lab.example";

fn config() -> SesConfig {
    SesConfig::new(FROM, vec![RECIPIENT.into()])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_alert_is_mailed_by_ses_as_smtp_would_mail_it_and_a_minor_one_is_not() {
    let moto = moto().await;
    provision_ses(&moto.config(), "alerts@westtek.example")
        .await
        .unwrap();
    // Provisioning twice changes nothing.
    provision_ses(&moto.config(), "alerts@westtek.example")
        .await
        .unwrap();
    let ses = SesNotifier::with_config(&moto.config(), config()).unwrap();
    let sink = MemorySink::new();
    let router = router(vec![Arc::new(ses)], sink.clone(), 3);

    let lab = LabId::new();
    let minor = alert(lab, Severity::Minor);
    let critical = alert(lab, Severity::Critical);
    router.dispatch(minor);
    router.dispatch(critical.clone());
    assert_eq!(router.close(SOON).await, Shutdown::Drained);
    assert!(sink.letters().is_empty(), "{:#?}", sink.letters());

    let sent = recorded(&moto, "ses", "RawMessage").await;
    assert_eq!(
        sent.len(),
        1,
        "only the critical alert is mailed: {sent:#?}"
    );
    let m = &sent[0];
    assert!(
        m["source"]
            .as_str()
            .unwrap()
            .contains("alerts@westtek.example"),
        "{m}"
    );
    assert!(
        m["destinations"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d.as_str().unwrap().contains(RECIPIENT)),
        "{m}"
    );

    let mail = Mail::parse(m["raw_data"].as_str().unwrap());
    assert_eq!(mail.header("subject"), "[West Tek] CRITICAL drift in demo");
    assert!(mail.header("to").contains(RECIPIENT), "{mail:?}");
    assert!(mail.header("from").contains("alerts@westtek.example"));
    assert!(mail.header("content-type").starts_with("text/plain"));
    assert_eq!(
        mail.header("message-id"),
        format!("<drift-{}@westtek.example>", critical.event_id)
    );
    assert_eq!(mail.body.replace("\r\n", "\n"), critical.text_body());
    assert!(mail.body.contains("numpy upgraded 1.26.4 → 2.1.0"));
    assert!(mail.body.contains("analysis.ipynb"));

    // The same message the SMTP notifier builds, header for header (the
    // Date is when each was built).
    let smtp = AlertEmail::new(FROM, &[RECIPIENT.into()])
        .unwrap()
        .formatted(&critical)
        .unwrap();
    let smtp = Mail::parse(&String::from_utf8(smtp).unwrap());
    let without_date = |m: &Mail| -> Vec<(String, String)> {
        m.headers
            .iter()
            .filter(|(k, _)| k != "date")
            .cloned()
            .collect()
    };
    assert_eq!(without_date(&mail), without_date(&smtp));
    assert_eq!(mail.body, smtp.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unverified_sender_is_dead_lettered_with_ses_refusal_and_not_retried() {
    let moto = moto().await;
    // Another identity exists; the sender's does not.
    provision_ses(&moto.config(), "someone@else.example")
        .await
        .unwrap();
    let ses = SesNotifier::with_config(&moto.config(), config()).unwrap();
    let sink = MemorySink::new();
    let router = router(vec![Arc::new(ses)], sink.clone(), 4);
    let a = alert(LabId::new(), Severity::Critical);
    router.dispatch(a.clone());

    let letters = sink.wait_for(1, SOON).await;
    assert_eq!(router.close(SOON).await, Shutdown::Drained);
    let l = &letters[0];
    assert_eq!(l.channel, Channel::Email);
    assert_eq!(l.target_id, "ses");
    assert_eq!(l.event_id, a.event_id);
    assert_eq!(l.attempts, 1, "a refusal is permanent: {l:#?}");
    assert_eq!(l.last_status, Some(400), "{l:#?}");
    assert!(l.last_error.contains("MessageRejected"), "{}", l.last_error);
    assert!(
        l.last_error
            .contains("Did not have authority to send from email alerts@westtek.example"),
        "the service's own message: {}",
        l.last_error
    );
    assert!(
        l.last_error.contains("verify the sender"),
        "{}",
        l.last_error
    );
    assert_eq!(l.payload["subject"], "[West Tek] CRITICAL drift in demo");
    assert_eq!(l.payload["to"][0], RECIPIENT);
    assert_eq!(l.payload["body"], a.text_body());
    assert!(recorded(&moto, "ses", "RawMessage").await.is_empty());
}

#[tokio::test]
async fn an_unreachable_ses_endpoint_is_retried_then_dead_lettered() {
    let sdk = westtek_aws::config_for_endpoint(
        &format!("http://127.0.0.1:{}", closed_port()),
        "test",
        "test",
    );
    let ses = SesNotifier::with_config(&sdk, config())
        .unwrap()
        .with_policy(fast_policy(3, Duration::from_secs(5)));
    let a = alert(LabId::new(), Severity::Critical);
    let err = ses.notify(&a).await.unwrap_err();
    let Error::Undelivered(letter) = err else {
        panic!("{err}")
    };
    assert_eq!(letter.attempts, 3, "{letter:#?}");
    assert_eq!(letter.channel, Channel::Email);
    assert!(
        letter.last_error.starts_with("SES SendEmail failed"),
        "{}",
        letter.last_error
    );
    assert_eq!(letter.last_status, None);
}
