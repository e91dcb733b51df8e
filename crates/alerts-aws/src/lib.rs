//! Drift alerts by Amazon SES (e-mail) and Amazon SNS (SMS) behind the Notifier port
