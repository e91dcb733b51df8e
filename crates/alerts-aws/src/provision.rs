//! The AWS resources the notifiers need, created for dev and tests (in
//! production the CDK app creates the same): see the crate docs for the
//! schema. Every function is idempotent: running it again changes nothing.

use aws_config::SdkConfig;
use aws_sdk_sesv2::error::{DisplayErrorContext, ProvideErrorMetadata};
use westtek_alerts::{Error, Result};

/// Creates the SES identity `identity` (an address, `alerts@lab.example`,
/// or a domain, `lab.example`) that alert e-mail is sent from. An existing
/// identity is left as it is.
///
/// On AWS the identity must then be verified (a link mailed to the address,
/// or the domain's DKIM records published); moto verifies it at once.
///
/// # Errors
/// [`Error::Backend`] with SES's message when the identity cannot be
/// created (permissions: `ses:CreateEmailIdentity`).
pub async fn provision_ses(sdk: &SdkConfig, identity: &str) -> Result<()> {
    let client = aws_sdk_sesv2::Client::new(sdk);
    match client
        .create_email_identity()
        .email_identity(identity)
        .send()
        .await
    {
        Ok(_) => Ok(()),
        Err(e) if e.code() == Some("AlreadyExistsException") => Ok(()),
        Err(e) => Err(Error::backend(
            format!("creating the SES identity {identity}"),
            DisplayErrorContext(&e).to_string(),
        )),
    }
}

/// Creates the SNS topic `name` for alert texts, subscribes each phone
/// number of `phones` (E.164) to it with protocol `sms`, and returns the
/// topic's ARN (the setting the SNS notifier takes).
///
/// # Errors
/// [`Error::Config`] for a phone number that is not E.164;
/// [`Error::Backend`] with SNS's message when the topic or a subscription
/// cannot be created (permissions: `sns:CreateTopic`, `sns:Subscribe`).
pub async fn provision_sns(sdk: &SdkConfig, name: &str, phones: &[String]) -> Result<String> {
    for p in phones {
        if !matches!(
            crate::SmsDestination::parse(p)?,
            crate::SmsDestination::Phone(_)
        ) {
            return Err(Error::Config(format!(
                "{p:?} is not a phone number to subscribe to the alert topic"
            )));
        }
    }
    let client = aws_sdk_sns::Client::new(sdk);
    let created = client.create_topic().name(name).send().await.map_err(|e| {
        Error::backend(
            format!("creating the SNS topic {name}"),
            aws_sdk_sns::error::DisplayErrorContext(&e).to_string(),
        )
    })?;
    let arn = created
        .topic_arn()
        .ok_or_else(|| Error::backend(format!("creating the SNS topic {name}"), "no ARN returned"))?
        .to_owned();
    for p in phones {
        client
            .subscribe()
            .topic_arn(&arn)
            .protocol("sms")
            .endpoint(p.trim())
            .send()
            .await
            .map_err(|e| {
                Error::backend(
                    format!("subscribing {p} to the SNS topic {arn}"),
                    aws_sdk_sns::error::DisplayErrorContext(&e).to_string(),
                )
            })?;
    }
    Ok(arn)
}
