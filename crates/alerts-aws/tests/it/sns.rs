//! SMS by SNS on moto: critical alerts reach a phone number and a topic,
//! a channel asking for minor alerts gets those too, info goes nowhere; a
//! missing topic and an unreachable endpoint end in dead letters.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use westtek_alerts::{Channel, Error, Notifier, RoutedChannel, Severity, Shutdown};
use westtek_alerts_aws::{provision_sns, sms_text, SmsDestination, SnsConfig, SnsNotifier};
use westtek_domain::LabId;

use crate::support::{alert, closed_port, fast_policy, moto, recorded, router, MemorySink, SOON};

const ON_CALL: &str = "+15555550100";
const LAB_ADMIN: &str = "+15555550111";
const SUBSCRIBER: &str = "+15555550122";

/// The texts moto recorded as sent to `phone`.
fn texts_to(sms: &[Value], phone: &str) -> Vec<String> {
    sms.iter()
        .filter(|s| s["phone_number"] == phone)
        .map(|s| s["message"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_texted_to_phones_and_a_topic_by_severity() {
    let moto = moto().await;
    let sdk = moto.config();
    let topic = provision_sns(&sdk, "westtek-alerts", &[SUBSCRIBER.into()])
        .await
        .unwrap();
    // Provisioning again finds the same topic.
    assert_eq!(
        provision_sns(&sdk, "westtek-alerts", &[SUBSCRIBER.into()])
            .await
            .unwrap(),
        topic
    );
    let mut channels: Vec<Arc<dyn RoutedChannel>> =
        SnsNotifier::for_destinations(&sdk, &[ON_CALL, topic.as_str()])
            .unwrap()
            .into_iter()
            .map(|n| Arc::new(n) as Arc<dyn RoutedChannel>)
            .collect();
    channels.push(Arc::new(
        SnsNotifier::with_config(
            &sdk,
            SnsConfig {
                min_severity: Severity::Minor,
                ..SnsConfig::new(SmsDestination::Phone(LAB_ADMIN.into()))
            },
        )
        .unwrap(),
    ));
    let sink = MemorySink::new();
    let router = router(channels, sink.clone(), 3);

    let lab = LabId::new();
    let info = alert(lab, Severity::Info);
    let minor = alert(lab, Severity::Minor);
    let critical = alert(lab, Severity::Critical);
    for a in [&info, &minor, &critical] {
        router.dispatch(a.clone());
    }
    assert_eq!(router.close(SOON).await, Shutdown::Drained);
    assert!(sink.letters().is_empty(), "{:#?}", sink.letters());

    let sms = recorded(&moto, "sns", "SMS").await;
    assert_eq!(texts_to(&sms, ON_CALL), vec![sms_text(&critical)]);
    let mut admin = texts_to(&sms, LAB_ADMIN);
    admin.sort();
    let mut want = vec![sms_text(&minor), sms_text(&critical)];
    want.sort();
    assert_eq!(admin, want, "a channel asking for minor alerts gets them");
    assert_eq!(sms.len(), 3, "nothing else was texted: {sms:#?}");
    let text = sms_text(&critical);
    assert!(
        text.starts_with("[West Tek] CRITICAL drift in 'demo': numpy upgraded 1.26.4 -> 2.1.0")
            && text.contains("affects analysis.ipynb"),
        "{text}"
    );

    let topics = recorded(&moto, "sns", "Topic").await;
    let t = topics
        .iter()
        .find(|t| t["arn"] == topic.as_str())
        .unwrap_or_else(|| panic!("{topics:#?}"));
    let sent = t["sent_notifications"].as_array().unwrap();
    assert_eq!(sent.len(), 1, "{sent:#?}");
    // (message id, message, subject, attributes, group id)
    assert_eq!(sent[0][1], sms_text(&critical).as_str());
    assert_eq!(
        sent[0][3]["AWS.SNS.SMS.SMSType"]["Value"], "Transactional",
        "{sent:#?}"
    );
    let subs = recorded(&moto, "sns", "Subscription").await;
    assert!(
        subs.iter()
            .any(|s| s["endpoint"] == SUBSCRIBER && s["protocol"] == "sms"),
        "{subs:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_topic_is_dead_lettered_with_sns_refusal() {
    let moto = moto().await;
    let missing = "arn:aws:sns:us-east-1:123456789012:no-such-topic";
    let channels: Vec<Arc<dyn RoutedChannel>> =
        SnsNotifier::for_destinations(&moto.config(), &[missing])
            .unwrap()
            .into_iter()
            .map(|n| Arc::new(n) as Arc<dyn RoutedChannel>)
            .collect();
    let sink = MemorySink::new();
    let router = router(channels, sink.clone(), 4);
    let a = alert(LabId::new(), Severity::Critical);
    router.dispatch(a.clone());

    let letters = sink.wait_for(1, SOON).await;
    assert_eq!(router.close(SOON).await, Shutdown::Drained);
    let l = &letters[0];
    assert_eq!(l.channel, Channel::Sms);
    assert_eq!(l.target_id, format!("sns:{missing}"));
    assert_eq!(l.event_id, a.event_id);
    assert_eq!(l.attempts, 1, "a refusal is permanent: {l:#?}");
    assert_eq!(l.last_status, Some(404), "{l:#?}");
    assert!(
        l.last_error
            .starts_with("SNS Publish refused (NotFound, HTTP 404): "),
        "{}",
        l.last_error
    );
    assert!(l.last_error.contains("does not exist"), "{}", l.last_error);
    assert_eq!(l.payload["to"], missing);
    assert_eq!(l.payload["message"], sms_text(&a).as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_number_sns_refuses_is_dead_lettered_with_its_message() {
    let moto = moto().await;
    // Well-formed for us, but SNS (moto: its E.164 check) refuses it.
    let n = SnsNotifier::with_config(
        &moto.config(),
        SnsConfig::new(SmsDestination::Phone("+1".into())),
    )
    .unwrap()
    .with_policy(fast_policy(3, Duration::from_secs(10)));
    let err = n
        .notify(&alert(LabId::new(), Severity::Critical))
        .await
        .unwrap_err();
    let Error::Undelivered(letter) = err else {
        panic!("{err}")
    };
    assert_eq!(letter.attempts, 1, "{letter:#?}");
    assert!(
        letter.last_error.contains("InvalidParameter"),
        "{}",
        letter.last_error
    );
    assert!(letter.last_error.contains("E164"), "{}", letter.last_error);
    assert!(recorded(&moto, "sns", "SMS").await.is_empty());
}

#[tokio::test]
async fn an_unreachable_sns_endpoint_is_retried_then_dead_lettered() {
    let sdk = westtek_aws::config_for_endpoint(
        &format!("http://127.0.0.1:{}", closed_port()),
        "test",
        "test",
    );
    let n = SnsNotifier::with_config(
        &sdk,
        SnsConfig::new(SmsDestination::parse(ON_CALL).unwrap()),
    )
    .unwrap()
    .with_policy(fast_policy(3, Duration::from_secs(5)));
    let a = alert(LabId::new(), Severity::Critical);
    let err = n.notify(&a).await.unwrap_err();
    let Error::Undelivered(letter) = err else {
        panic!("{err}")
    };
    assert_eq!(letter.attempts, 3, "{letter:#?}");
    assert_eq!(letter.channel, Channel::Sms);
    assert_eq!(letter.target_id, format!("sms:{ON_CALL}"));
    assert!(
        letter.last_error.starts_with("SNS Publish failed"),
        "{}",
        letter.last_error
    );
}
