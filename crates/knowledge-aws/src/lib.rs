//! Knowledge on AWS: the document store on S3 in the seed's layout
//! ([`S3DocumentStore`]), the Bedrock Knowledge Base sync after each
//! knowledge sync ([`BedrockKbSync`] behind [`KnowledgeBaseSync`]), and the
//! two platform agents as Bedrock Agents behind the `Agent` port
//! ([`BedrockAgent`], [`BedrockAgents`]).
//!
//! # AWS resources
//!
//! What the CDK app creates in production ([`provision`] creates the bucket
//! for dev and tests; Bedrock resources cannot be created here):
//!
//! | resource | settings |
//! |---|---|
//! | S3 bucket (knowledge) | private (public access blocked), SSE-S3 at rest; documents at `{prefix}{path}` in the seed's layout (`notebooks/{lab}/{researcher}/{environment}/….md`, `package-manifests/{environment}/{snapshot}.txt`, `experiment-logs/{lab}/{experiment}.json`, `installation-history/{environment}/history.jsonl`, `environment-docs/{environment}/summary.md`), each with its Bedrock metadata file `{path}.metadata.json` = `{"metadataAttributes": {"lab_id", "environment_id", "kind", "path"}}` |
//! | Bedrock Knowledge Base | an S3 data source on that bucket (inclusion prefix = the key prefix), hierarchical chunking (parent 1500 tokens, child 300, as the seed says); its id and the data source's id are settings of the sync |
//! | Bedrock Agents | the Drift Analyzer and the Knowledge Transfer agent, each with an alias; the Knowledge Transfer agent associated with the Knowledge Base; action groups on the `agent-actions` Lambda (reading `lab_id`, `environment_id`, `user_id` from the session attributes) |
//! | IAM (service role) | `s3:GetObject/PutObject/DeleteObject/ListBucket` on the bucket, `bedrock:StartIngestionJob/GetIngestionJob` on the Knowledge Base, `bedrock:InvokeAgent` on both aliases |
//!
//! Every client uses the workspace's one HTTP stack; credentials, region
//! and endpoint come from the standard AWS environment (`from_env`) or an
//! SDK configuration of the caller's (`with_config`, e.g. moto's).

pub mod agent;
pub mod ingest;
pub mod layout;
pub mod store;

pub use agent::{AgentFailure, BedrockAgent, BedrockAgentIds, BedrockAgents, StreamMapper};
pub use ingest::{
    BedrockKbSync, IngestionError, IngestionOptions, IngestionProgress, KnowledgeBaseSync,
};
pub use layout::{owner_of, KbMetadata, PathOwner, S3Layout, METADATA_SUFFIX};
pub use store::{provision, s3_client, EnvironmentLabs, S3DocumentStore};
