//! The drift store ([`DriftStore`](westtek_domain::DriftStore) port) on
//! Amazon DynamoDB, with the SQLite adapter's semantics (held to them by the
//! shared conformance suite, run on moto).
//!
//! # The table
//!
//! One table (single-table design), on-demand billing, keys and index keys
//! all strings:
//!
//! - primary key: partition `pk`, sort `sk`;
//! - GSI `gsi1`: partition `gsi1pk`, sort `gsi1sk`, projection `ALL`;
//! - GSI `gsi2`: partition `gsi2pk`, sort `gsi2sk`, projection `ALL`;
//! - TTL on the number attribute `expires_at` (epoch seconds), set on drift
//!   events only, when the store is given a retention
//!   ([`DynamoDriftStore::with_event_retention`]).
//!
//! | item | `pk` | `sk` | `gsi1pk` / `gsi1sk` | `gsi2pk` / `gsi2sk` | other attributes |
//! |---|---|---|---|---|---|
//! | `seq` counter | `COUNTER` | `drift_seq` | | | `n` (N): the last `seq` handed out |
//! | event | `EVENTS#<seq / 1000>` | `seq`, 20 digits | `LAB#<lab>` / `<detected_at>#<seq>` | `ENV#<env>` / `<detected_at>#<seq>` | `doc`, `seq` (N), `expires_at` |
//! | event id | `EVENT#<id>` | `EVENT` | | | `seq` (N), `expires_at` |
//! | state | `STATE#<env>` | `STATE` | `STATES` / `<lab>#<env>` | | `fingerprint`, `doc` |
//! | webhook | `WEBHOOK#<id>` | `WEBHOOK` | | | `doc` |
//! | webhook of a lab | `WEBHOOKS#<lab>` | `URL#<BLAKE3 of the url, hex>` | | | `id`, `doc` |
//! | dead letter | `DEADLETTERS#<lab>` | `<at>#<id>` | | | `doc` |
//! | recommendation | `RECS#<env>` | `<created_at>#<id>` | | | `doc` |
//!
//! States share one `gsi1` partition (`STATES`): they are written at the
//! rate environments drift and get new baselines, far below a partition's
//! 1000 writes a second.
//!
//! Times in keys are RFC 3339 in UTC with microseconds (fixed width, so they
//! sort as strings). [`provision`] creates exactly this table; the CDK app
//! creates the same (point-in-time recovery and encryption are its business).
//!
//! Permissions: the store needs `dynamodb:GetItem`, `PutItem`,
//! `DeleteItem`, `Query` (table and indexes), `TransactWriteItems`
//! (`ConditionCheckItem` is not used) and, for [`DynamoDriftStore::check`],
//! `DescribeTable` (CDK's `grantReadWriteData` covers them); [`provision`]
//! also needs `CreateTable`, `DescribeTimeToLive` and `UpdateTimeToLive`.
//!
//! # Policy
//!
//! - **Documents are JSON strings** (`doc`), not DynamoDB maps: findings,
//!   payloads and recommendation bodies are free-form JSON that must come
//!   back exactly (DynamoDB numbers are normalised decimals, so in a map
//!   `3.0` would come back as `3`, and numbers past 38 digits are refused),
//!   and nothing filters on their inside server-side. Attributes that queries use are written beside the
//!   document.
//! - **Compare-and-set**: `record_drift` reads the counter, then runs one
//!   `TransactWriteItems` of four writes: the state (condition: its
//!   `fingerprint` is the expected one, or `attribute_not_exists(pk)` when
//!   none is expected; `ReturnValuesOnConditionCheckFailure = ALL_OLD`, so
//!   a stale caller gets the current state without another read), the
//!   event id claim (`attribute_not_exists`: a reused id is a `Conflict`,
//!   checked after staleness as in SQLite), the counter (condition: `n` is
//!   the value just read) and the event. The cancellation reasons, one per
//!   write in that order, say which outcome it is; a moved counter or a
//!   `TransactionConflict` is retried with a fresh read and jittered
//!   backoff. Racing callers cannot both win, whichever process they are in.
//! - **`seq` order visibility**: every recording advances the one counter
//!   item inside its transaction, conditioned on the value it read, so
//!   recordings commit one at a time in `seq` order. Events live in the
//!   base table under partitions of 1000 consecutive `seq`s, so a resume
//!   (`after_seq`) is a strongly consistent `Query` of those partitions
//!   (a GSI would be eventually consistent, and could show `n + 1` before
//!   `n`). It first reads the counter (`c`) and returns only events with
//!   `seq <= c`: every one of them committed before the counter showed `c`,
//!   so a stream that resumes after `n` never misses a smaller `seq`
//!   committed later (without the cap, one `Query` could see `c + 2` but
//!   not `c + 1`, which committed in between). The cost: recordings are
//!   serialised table-wide (tens a second), far above the rate environments
//!   drift at. Within one process they queue on a lock per table instead of
//!   racing (a lost race still costs write capacity); this also keeps moto
//!   usable, whose transactions are not isolated from concurrent requests.
//! - **Listings by lab or environment** without `after_seq` use the GSIs
//!   (key conditions on the time window, exact at microseconds like the
//!   SQLite columns), which are eventually consistent (normally well under
//!   a second behind); the states of a lab likewise. Webhooks, dead letters
//!   and recommendations are read from the base table (strongly
//!   consistent).
//! - **Cost of a listing**: `total` counts every match, so a listing reads
//!   every event it matches (its lab or environment in the window; all
//!   events after `after_seq`; every retained event when neither lab nor
//!   environment is given), then sorts by `seq` and pages. A retention
//!   bounds that.
//! - **TTL**: DynamoDB deletes expired items within days (moto never does),
//!   so every read drops items whose `expires_at` has passed.
//! - Dead letters and recommendations are keyed by time and id: inserting
//!   the same id at the same time again is a `Conflict`.
//! - An item holds at most 400 KB (DynamoDB's limit): recording an event
//!   whose document is larger fails as a whole (nothing is written), with
//!   DynamoDB's reason in the error text.
//! - Listing limits are clamped to `1..=1000` (0 means the default, 50).
//! - Adapter failures become `DomainError::Internal` naming the table, the
//!   operation and how to fix it (a missing table says to provision it).

mod error;
mod keys;
mod store;

use aws_config::SdkConfig;
use aws_sdk_dynamodb::client::Waiters;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
};
use aws_sdk_dynamodb::Client;
use std::time::Duration;
use westtek_domain::{DomainError, Result};

use error::dynamo_error;
pub use keys::{GSI1, GSI2, TTL_ATTRIBUTE};

/// The drift store on one DynamoDB table (see the crate docs for its
/// schema). Cheap to clone.
#[derive(Clone, Debug)]
pub struct DynamoDriftStore {
    client: Client,
    table: String,
    retention: Option<chrono::TimeDelta>,
}

impl DynamoDriftStore {
    /// The store on `table`, with credentials, region and endpoint from the
    /// standard AWS environment (`AWS_ENDPOINT_URL` points it at moto).
    pub async fn from_env(table: impl Into<String>) -> Self {
        Self::with_config(&westtek_aws::shared_config(5).await, table)
    }

    /// The store on `table` with an explicit SDK configuration.
    pub fn with_config(config: &SdkConfig, table: impl Into<String>) -> Self {
        Self::with_client(Client::new(config), table)
    }

    /// The store on `table` through an existing client.
    pub fn with_client(client: Client, table: impl Into<String>) -> Self {
        DynamoDriftStore {
            client,
            table: table.into(),
            retention: None,
        }
    }

    /// Keeps drift events for `retention` after their detection (DynamoDB's
    /// TTL deletes them later; reads hide them at once). `None`, the
    /// default, keeps them for ever, as the SQLite store does. It applies
    /// to events recorded from then on (the expiry is written with each
    /// event). States, webhooks, dead letters and recommendations never
    /// expire.
    pub fn with_event_retention(mut self, retention: Option<Duration>) -> Self {
        self.retention =
            retention.map(|d| chrono::TimeDelta::from_std(d).unwrap_or(chrono::TimeDelta::MAX));
        self
    }

    /// The table this store uses.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The client this store uses.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Checks that the table exists, is active and has both indexes (for
    /// start-up and readiness; needs `dynamodb:DescribeTable`).
    ///
    /// # Errors
    /// `Internal` naming the table and what is wrong with it (missing, not
    /// active, an index missing) and how to fix it, or DynamoDB's error.
    pub async fn check(&self) -> Result<()> {
        let table = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| dynamo_error(&self.table, "DescribeTable", e))?
            .table
            .ok_or_else(|| {
                DomainError::internal(format!(
                    "DynamoDB DescribeTable on table {} returned no table",
                    self.table
                ))
            })?;
        if let Some(status) = table
            .table_status()
            .filter(|s| !matches!(s, TableStatus::Active | TableStatus::Updating))
        {
            return Err(DomainError::internal(format!(
                "DynamoDB table {} is {status}, not ACTIVE: wait for it or recreate it",
                self.table
            )));
        }
        let indexes: Vec<&str> = table
            .global_secondary_indexes()
            .iter()
            .filter_map(|i| i.index_name())
            .collect();
        let missing: Vec<&str> = [GSI1, GSI2]
            .into_iter()
            .filter(|i| !indexes.contains(i))
            .collect();
        if !missing.is_empty() {
            return Err(DomainError::internal(format!(
                "DynamoDB table {} lacks the global secondary index(es) {} the drift store \
                 needs (schema in the westtek-drift-dynamodb docs); recreate it with \
                 westtek_drift_dynamodb::provision or the CDK app",
                self.table,
                missing.join(", ")
            )));
        }
        Ok(())
    }
}

fn string_key(name: &str) -> Result<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(|e| DomainError::internal(format!("attribute {name}: {e}")))
}

fn key(name: &str, kind: KeyType) -> Result<KeySchemaElement> {
    KeySchemaElement::builder()
        .attribute_name(name)
        .key_type(kind)
        .build()
        .map_err(|e| DomainError::internal(format!("key {name}: {e}")))
}

fn gsi(name: &str, pk: &str, sk: &str) -> Result<GlobalSecondaryIndex> {
    GlobalSecondaryIndex::builder()
        .index_name(name)
        .key_schema(key(pk, KeyType::Hash)?)
        .key_schema(key(sk, KeyType::Range)?)
        .projection(
            Projection::builder()
                .projection_type(ProjectionType::All)
                .build(),
        )
        .build()
        .map_err(|e| DomainError::internal(format!("index {name}: {e}")))
}

/// Creates the drift table `table` (schema in the crate docs: keys, the two
/// GSIs, on-demand billing), waits until it is active, and turns on TTL on
/// `expires_at`. For development and tests; production tables come from
/// the CDK app. Idempotent: an existing table is kept (and gets its TTL).
///
/// # Errors
/// `Internal` naming the table when DynamoDB refuses (no permission, a
/// table of that name with another schema is not detected), or the table
/// does not become active within two minutes.
pub async fn provision(client: &Client, table: &str) -> Result<()> {
    let created = client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string_key(keys::PK)?)
        .attribute_definitions(string_key(keys::SK)?)
        .attribute_definitions(string_key(keys::GSI1PK)?)
        .attribute_definitions(string_key(keys::GSI1SK)?)
        .attribute_definitions(string_key(keys::GSI2PK)?)
        .attribute_definitions(string_key(keys::GSI2SK)?)
        .key_schema(key(keys::PK, KeyType::Hash)?)
        .key_schema(key(keys::SK, KeyType::Range)?)
        .global_secondary_indexes(gsi(GSI1, keys::GSI1PK, keys::GSI1SK)?)
        .global_secondary_indexes(gsi(GSI2, keys::GSI2PK, keys::GSI2SK)?)
        .send()
        .await;
    match created {
        Ok(_) => {}
        Err(e)
            if aws_sdk_dynamodb::error::ProvideErrorMetadata::code(&e)
                == Some("ResourceInUseException") => {}
        Err(e) => return Err(dynamo_error(table, "CreateTable", e)),
    }
    client
        .wait_until_table_exists()
        .table_name(table)
        .wait(Duration::from_secs(120))
        .await
        .map_err(|e| {
            DomainError::internal(format!(
                "DynamoDB table {table} did not become active within 2 minutes: {e}"
            ))
        })?;
    let ttl = client
        .describe_time_to_live()
        .table_name(table)
        .send()
        .await
        .map_err(|e| dynamo_error(table, "DescribeTimeToLive", e))?;
    let status = ttl
        .time_to_live_description()
        .and_then(|d| d.time_to_live_status());
    if !matches!(
        status,
        Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
    ) {
        client
            .update_time_to_live()
            .table_name(table)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name(TTL_ATTRIBUTE)
                    .build()
                    .map_err(|e| DomainError::internal(format!("TTL of {table}: {e}")))?,
            )
            .send()
            .await
            .map_err(|e| dynamo_error(table, "UpdateTimeToLive", e))?;
    }
    Ok(())
}
