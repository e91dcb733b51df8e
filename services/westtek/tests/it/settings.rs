//! `docs/aws-settings.json` (the list the CDK app sets on the services'
//! containers, checked on its side by infra-cdk's tests) agrees with what
//! `westtek serve` reads: every setting is a flag with that environment
//! variable; with every setting of a service the aws profile starts; without
//! one it requires, start-up names it.

use clap::{CommandFactory, FromArgMatches};
use westtek::app::Service;
use westtek::cli::{Cli, Command};

fn settings() -> Vec<serde_json::Value> {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/aws-settings.json");
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    doc["settings"].as_array().unwrap().clone()
}

/// The `--flag` of `serve` that reads `env`.
fn flag_of(env: &str) -> Option<String> {
    let cmd = Cli::command();
    let serve = cmd.find_subcommand("serve")?;
    let flag = serve
        .get_arguments()
        .find(|a| a.get_env().is_some_and(|e| e == env))
        .and_then(|a| a.get_long().map(|l| format!("--{l}")));
    flag
}

/// Optional settings that are set or left out together.
const PAIRS: [(&str, &str); 3] = [
    ("WESTTEK_ALERT_SES_FROM", "WESTTEK_ALERT_TO"),
    ("WESTTEK_DRIFT_AGENT_ID", "WESTTEK_DRIFT_AGENT_ALIAS_ID"),
    (
        "WESTTEK_TRANSFER_AGENT_ID",
        "WESTTEK_TRANSFER_AGENT_ALIAS_ID",
    ),
];

/// A plausible value for a setting.
fn value_of(name: &str) -> String {
    match name {
        "WESTTEK_PROFILE" => "aws".into(),
        "WESTTEK_PUBLIC_URL" => "https://westtek.example.org".into(),
        "WESTTEK_VAULT_URL" => "s3://vault-bucket/westtek".into(),
        "WESTTEK_KNOWLEDGE_URL" => "s3://knowledge-bucket/".into(),
        "WESTTEK_MONGO_URL" => "mongodb://user:pw@docdb.cluster-x.us-east-1.docdb.amazonaws.com:27017/?tls=true&retryWrites=false".into(),
        "WESTTEK_BUS_QUEUES" => "drift=https://sqs.us-east-1.amazonaws.com/1/drift,knowledge=https://sqs.us-east-1.amazonaws.com/1/knowledge".into(),
        "WESTTEK_ALERT_SMS" => "+15555550100".into(),
        "WESTTEK_ALERT_TO" => "it@example.org".into(),
        "WESTTEK_ALERT_SES_FROM" => "westtek@example.org".into(),
        "WESTTEK_COGNITO_ISSUER" => "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_abc".into(),
        "WESTTEK_SECURE_BROWSER_URL" => "https://abcd1234.workspaces-web.com".into(),
        _ => "x1234567890".into(),
    }
}

fn parse(service: &str, vars: &[(String, String)]) -> anyhow::Result<westtek::app::UpConfig> {
    let mut argv: Vec<String> = vec!["westtek".into(), "serve".into(), service.into()];
    for (name, value) in vars {
        argv.push(flag_of(name).unwrap());
        argv.push(value.clone());
    }
    let matches = Cli::command().try_get_matches_from(&argv)?;
    let cli = Cli::from_arg_matches(&matches)?;
    let Command::Serve { service, args } = cli.command else {
        panic!("not serve")
    };
    westtek::cli::up_config(args, vec![service])
}

#[test]
fn every_aws_setting_is_a_flag_with_that_variable() {
    let s = settings();
    assert!(s.len() > 15);
    for st in s {
        let name = st["name"].as_str().unwrap();
        assert!(
            flag_of(name).is_some(),
            "{name} is read by no flag of `westtek serve`"
        );
    }
}

#[test]
fn the_aws_profile_starts_with_every_setting_of_a_service_and_names_each_missing_required_one() {
    let s = settings();
    for service in [
        Service::EnvManager,
        Service::Snapshots,
        Service::Drift,
        Service::Knowledge,
    ] {
        let name = service.name();
        let mine: Vec<&serde_json::Value> = s
            .iter()
            .filter(|st| st["services"].as_array().unwrap().iter().any(|x| x == name))
            .collect();
        // Flags that are toggles take no value.
        let vars: Vec<(String, String)> = mine
            .iter()
            .map(|st| {
                let n = st["name"].as_str().unwrap();
                (n.to_string(), value_of(n))
            })
            .collect();
        if let Err(e) = parse(name, &vars) {
            panic!("{name} with all its settings: {e:#}");
        }
        for st in &mine {
            let n = st["name"].as_str().unwrap();
            if n == "WESTTEK_PROFILE" {
                // Without it the process is on the local profile, which
                // needs none of these.
                continue;
            }
            let required = st["required_for"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == name);
            // Settings that only make sense together go together.
            let partner = PAIRS
                .iter()
                .find_map(|(a, b)| (*a == n).then_some(*b).or((*b == n).then_some(*a)));
            let without: Vec<(String, String)> = vars
                .iter()
                .filter(|(k, _)| k != n && Some(k.as_str()) != partner)
                .cloned()
                .collect();
            match (required, parse(name, &without)) {
                (true, Ok(_)) => panic!("{name} started without {n}, which the list requires"),
                (true, Err(e)) => {
                    let msg = format!("{e:#}");
                    assert!(msg.contains(n), "{name} without {n}: {msg}");
                }
                (false, Ok(_)) => {}
                // Optional alone, but another setting given may need it
                // (the Bedrock agents need the knowledge bucket): then the
                // refusal names it.
                (false, Err(e)) => {
                    let msg = format!("{e:#}");
                    assert!(
                        msg.contains(n) && msg.contains("need"),
                        "{name} refused to start without optional {n}: {msg}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_documentdb_url_without_retry_writes_off_is_refused() {
    let mut vars: Vec<(String, String)> = settings()
        .iter()
        .filter(|st| {
            st["services"]
                .as_array()
                .unwrap()
                .iter()
                .any(|x| x == "snapshots")
        })
        .map(|st| {
            let n = st["name"].as_str().unwrap();
            (n.to_string(), value_of(n))
        })
        .collect();
    for (k, v) in &mut vars {
        if k == "WESTTEK_MONGO_URL" {
            *v = "mongodb://docdb.cluster-x.us-east-1.docdb.amazonaws.com:27017/?tls=true".into();
        }
    }
    let e = format!("{:#}", parse("snapshots", &vars).unwrap_err());
    assert!(e.contains("retryWrites=false"), "{e}");
}

#[test]
fn a_secure_browser_url_that_is_not_https_is_refused() {
    let vars = vec![(
        "WESTTEK_SECURE_BROWSER_URL".to_string(),
        "http://portal.example.org".to_string(),
    )];
    let e = format!("{:#}", parse("env-manager", &vars).unwrap_err());
    assert!(e.contains("WESTTEK_SECURE_BROWSER_URL"), "{e}");
    let vars = vec![(
        "WESTTEK_SECURE_BROWSER_URL".to_string(),
        "https://abcd1234.workspaces-web.com".to_string(),
    )];
    let cfg = parse("env-manager", &vars).unwrap();
    assert_eq!(
        cfg.secure_browser_url.as_deref(),
        Some("https://abcd1234.workspaces-web.com")
    );
}
