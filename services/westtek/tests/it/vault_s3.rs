//! `westtek vault --repo s3://BUCKET/PREFIX …` against moto's server, with
//! credentials and endpoint from the standard AWS environment, as a user
//! would run it.

use std::path::Path;
use std::process::{Command, Output};

use westtek_vault_aws::testing::Moto;

fn vault(moto: &Moto, args: &[&str]) -> Output {
    vault_with(moto, args, &[])
}

fn vault_with(moto: &Moto, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_westtek"))
        .arg("vault")
        .args(args)
        .env("AWS_ENDPOINT_URL", moto.endpoint())
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "eu-west-1")
        .env("WESTTEK_VAULT_PASSWORD", "a long test password")
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .unwrap()
}

fn ok(o: &Output) -> String {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{text}");
    text
}

fn create_bucket(moto: &Moto, bucket: &str) {
    let rt = westtek_vault_aws::runtime().unwrap();
    let client = westtek_vault_aws::client_for_endpoint(&moto.endpoint(), "test", "test");
    rt.block_on(
        client
            .create_bucket()
            .bucket(bucket)
            .create_bucket_configuration(
                aws_sdk_s3::types::CreateBucketConfiguration::builder()
                    .location_constraint(aws_sdk_s3::types::BucketLocationConstraint::EuWest1)
                    .build(),
            )
            .send(),
    )
    .unwrap();
}

#[test]
fn the_standalone_vault_takes_a_bucket_as_its_repository() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("lab-notebooks");
    std::fs::create_dir_all(src.join("data")).unwrap();
    std::fs::write(src.join("analysis.ipynb"), "{\"cells\": []}\n").unwrap();
    std::fs::write(src.join("data/values.csv"), "a,b\n1,2\n".repeat(50_000)).unwrap();

    // A bucket that does not exist is named as the problem.
    let missing = vault(&moto, &["--repo", "s3://no-such-bucket/v", "init"]);
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("bucket does not exist"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    let bad = vault(&moto, &["--repo", "s3://Bad_Name/v", "ls"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("not a valid S3 bucket name"));

    create_bucket(&moto, "lab-vault");
    let repo = "s3://lab-vault/team-a";
    assert!(ok(&vault(&moto, &["--repo", repo, "init"])).contains("created vault"));
    let again = vault(&moto, &["--repo", repo, "init"]);
    assert!(!again.status.success(), "init twice must fail");
    ok(&vault(
        &moto,
        &["--repo", repo, "--quiet", "snapshot", src.to_str().unwrap()],
    ));
    std::fs::write(src.join("analysis.ipynb"), "{\"cells\": [1]}\n").unwrap();
    ok(&vault(
        &moto,
        &["--repo", repo, "--quiet", "snapshot", src.to_str().unwrap()],
    ));
    let ls = ok(&vault(&moto, &["--repo", repo, "ls", "--json"]));
    let listed: serde_json::Value = serde_json::from_str(&ls).unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{ls}");

    let out = dir.path().join("restored");
    ok(&vault(
        &moto,
        &[
            "--repo",
            repo,
            "--quiet",
            "restore",
            "latest",
            "--to",
            out.to_str().unwrap(),
            "--verify",
        ],
    ));
    let restored = out.join("lab-notebooks");
    for f in ["analysis.ipynb", "data/values.csv"] {
        assert_eq!(
            std::fs::read(restored.join(f)).unwrap(),
            std::fs::read(src.join(f)).unwrap(),
            "{f}"
        );
    }
    assert!(ok(&vault(&moto, &["--repo", repo, "verify", "--read-data"])).contains("intact"));
    ok(&vault(&moto, &["--repo", repo, "gc"]));
    assert!(Path::new(&restored).is_dir());
}

#[test]
fn a_kms_wrapped_vault_needs_no_password_and_opens_only_through_kms() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("notebooks");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a.ipynb"), "{}\n").unwrap();
    create_bucket(&moto, "kms-lab");
    let rt = westtek_vault_aws::runtime().unwrap();
    let kms = westtek_vault_aws::kms_client_for_endpoint(&moto.endpoint(), "test", "test");
    let key_id = rt
        .block_on(kms.create_key().send())
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_string();
    let repo = "s3://kms-lab/v";
    // The key was made in us-east-1 (moto keeps keys per region).
    let no_password = [("WESTTEK_VAULT_PASSWORD", ""), ("AWS_REGION", "us-east-1")];
    let with_kms = |args: &[&str]| {
        let mut all = vec!["--repo", repo, "--kms-key-id", &key_id];
        all.extend_from_slice(args);
        vault_with(&moto, &all, &no_password)
    };
    ok(&with_kms(&["init"]));
    ok(&with_kms(&["--quiet", "snapshot", src.to_str().unwrap()]));
    let out = dir.path().join("out");
    ok(&with_kms(&[
        "--quiet",
        "restore",
        "latest",
        "--to",
        out.to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read(out.join("notebooks/a.ipynb")).unwrap(),
        b"{}\n"
    );
    // A password does not open it.
    let pw = vault(&moto, &["--repo", repo, "ls"]);
    assert!(!pw.status.success());
    assert!(String::from_utf8_lossy(&pw.stderr).contains("wrong password or key"));
}
