//! Tests of the `westtek` binary itself: the OpenAPI contract checked into
//! the repository, the admin commands and `westtek audit verify` on a real
//! data dir, including one whose SQLite file was edited behind its back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod adopt;
mod drift;
mod services;
mod settings;
mod vault_s3;

use std::path::Path;
use std::process::{Command, Output};

fn westtek(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_westtek"))
        .args(args)
        .env("WESTTEK_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[test]
fn the_openapi_document_matches_the_one_checked_into_the_repository() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json");
    let current = serde_json::to_string_pretty(&westtek::app::openapi()).unwrap() + "\n";
    if std::env::var("WESTTEK_UPDATE_OPENAPI").is_ok_and(|v| v == "1") {
        std::fs::write(&path, &current).unwrap();
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == current,
        "the API changed: review the diff, then run `WESTTEK_UPDATE_OPENAPI=1 cargo test -p westtek --test it openapi` to accept it"
    );
    let doc: serde_json::Value = serde_json::from_str(&current).unwrap();
    for seed_path in [
        "/api/environments",
        "/api/environments/jupyter",
        "/api/environments/{id}/jupyter",
        "/api/audit/export",
    ] {
        assert!(
            doc["paths"].get(seed_path).is_some(),
            "{seed_path} missing from the API"
        );
    }
}

/// Creates a data dir with a lab and users through the admin commands (no
/// server needed: they work on the SQLite file).
fn seeded_data_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // `admin` refuses a folder that is not a data dir.
    let o = westtek(&["admin", "lab", "list"], d);
    assert!(!o.status.success());
    assert!(text(&o).contains("not a West Tek data dir"), "{}", text(&o));
    // Make the data dir the way `westtek up` does (store + migrations).
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async { westtek::app::open_store(d).await.unwrap().close().await });

    let o = westtek(
        &[
            "admin",
            "lab",
            "create",
            "genomics",
            "--max-environments",
            "5",
            "--json",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    let lab: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(lab["name"], "genomics");
    let o = westtek(
        &[
            "admin",
            "user",
            "create",
            "alice",
            "--lab",
            "genomics",
            "--role",
            "researcher",
            "--json",
        ],
        d,
    );
    assert!(o.status.success(), "{}", text(&o));
    let user: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(user["sign_in_url"]
        .as_str()
        .unwrap()
        .contains("/api/auth/login?token="));
    let o = westtek(
        &[
            "admin", "user", "create", "bob", "--lab", "genomics", "--role", "wizard",
        ],
        d,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("role"), "{}", text(&o));
    let o = westtek(
        &["admin", "user", "create", "alice", "--lab", "genomics"],
        d,
    );
    assert!(!o.status.success());
    assert!(text(&o).contains("already exists"), "{}", text(&o));
    let o = westtek(&["admin", "user", "create", "carl", "--lab", "nope"], d);
    assert!(!o.status.success());
    assert!(text(&o).contains("no lab named 'nope'"), "{}", text(&o));
    let o = westtek(&["admin", "user", "list", "--lab", "genomics", "--json"], d);
    let users: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(users.as_array().unwrap().len(), 1);
    dir
}

fn sqlite(db: &Path, sql: &str) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        use sqlx::Connection;
        let mut c = sqlx::SqliteConnection::connect(&format!("sqlite://{}", db.display()))
            .await
            .unwrap();
        sqlx::query(sql).execute(&mut c).await.unwrap();
        c.close().await.unwrap();
    });
}

#[test]
fn audit_verify_passes_on_an_untouched_trail_and_names_an_edited_entry() {
    let dir = seeded_data_dir();
    let d = dir.path();
    let o = westtek(&["audit", "verify"], d);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("audit trail intact: 2 entries"),
        "{}",
        text(&o)
    );

    // Someone edits the second entry (the user creation) in the SQLite file.
    sqlite(
        &d.join("meta.db"),
        "UPDATE audit SET actor_name = 'someone else' WHERE seq = 2",
    );
    let o = westtek(&["audit", "verify"], d);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("entry #2"), "{out}");
    assert!(out.contains("was edited"), "{out}");
    let o = westtek(&["audit", "verify", "--json"], d);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "tampered");
    assert_eq!(v["problems"][0]["problem"], "edited");
    assert_eq!(v["problems"][0]["seq"], 2);
}

#[test]
fn audit_verify_names_deleted_and_truncated_entries() {
    let dir = seeded_data_dir();
    let d = dir.path();
    westtek(&["admin", "lab", "create", "physics"], d);
    westtek(&["admin", "lab", "create", "chemistry"], d);
    sqlite(&d.join("meta.db"), "DELETE FROM audit WHERE seq = 2");
    let out = text(&westtek(&["audit", "verify"], d));
    assert!(out.contains("entries #2..#2 were deleted"), "{out}");
    // A field damaged by hand so it no longer parses is named too, not a crash of the verifier.
    sqlite(
        &d.join("meta.db"),
        "UPDATE audit SET details = '{not json' WHERE seq = 3",
    );
    let out = text(&westtek(&["audit", "verify"], d));
    assert!(
        out.contains("entry #3") && out.contains("was edited"),
        "{out}"
    );
    sqlite(&d.join("meta.db"), "DELETE FROM audit WHERE seq = 4");
    let o = westtek(&["audit", "verify"], d);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        text(&o).contains("deleted from the end of the trail"),
        "{}",
        text(&o)
    );
}

#[test]
fn the_cli_signs_in_with_the_first_run_link_and_lists_environments() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = westtek::app::UpConfig::new(dir.path().join("data"));
    cfg.port = 0;
    cfg.web_dir = None;
    let app = rt.block_on(westtek::app::start(cfg)).unwrap();
    let link = app.first_login.clone().unwrap().url;
    let config_home = dir.path().join("config");
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_westtek"))
            .args(args)
            .env("XDG_CONFIG_HOME", &config_home)
            .env_remove("WESTTEK_TOKEN")
            .env("RUST_LOG", "warn")
            .output()
            .unwrap()
    };
    let o = cli(&["env", "list"]);
    assert!(!o.status.success());
    assert!(text(&o).contains("not signed in"), "{}", text(&o));

    let o = cli(&["login", "--url", &app.url, "--token", &link]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("signed in to"), "{}", text(&o));
    use std::os::unix::fs::PermissionsExt;
    let creds = config_home.join("westtek/credentials.json");
    assert_eq!(
        std::fs::metadata(&creds).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let o = cli(&["env", "list", "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(list, serde_json::json!([]));

    // Bad input: a clear message from the problem response and a non-zero exit.
    let o = cli(&["env", "create", "bad", "-p", "numpy; rm -rf /"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("not a valid package name") && text(&o).contains("validation_failed"),
        "{}",
        text(&o)
    );
    let o = cli(&["env", "show", "not-an-id"]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("is not an environment id"),
        "{}",
        text(&o)
    );
    // The one-time link is spent.
    let o = cli(&["login", "--url", &app.url, "--token", &link]);
    assert!(!o.status.success());
    rt.block_on(app.shutdown()).unwrap();
}
