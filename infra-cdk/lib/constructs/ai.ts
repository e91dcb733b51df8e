/**
 * AI: the Bedrock Knowledge Base on the knowledge bucket (hierarchical
 * chunking, parent 1500 / child 300 tokens, Titan Text Embeddings V2, an
 * OpenSearch Serverless vector collection), the two platform agents (Drift
 * Analyzer, Knowledge Transfer) with aliases and their action groups on
 * the `agent-actions` Lambda, as `crates/knowledge-aws` documents.
 *
 * Policy: the collection is private to the KB role and the deploying
 * CloudFormation role; each agent's role may invoke its model only; the
 * Lambda may be invoked by the two agents only; it presents the platform's
 * agent-actions token (Secrets Manager) to the services, which it reaches
 * inside the VPC by their Cloud Map names. The Lambda's code is the
 * `agent-actions` build (context `agentActionsZip`); without it a stub
 * answers every action with "not deployed" so synth works anywhere.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import * as bedrock from 'aws-cdk-lib/aws-bedrock';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as aoss from 'aws-cdk-lib/aws-opensearchserverless';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { acknowledgeMaintenanceMode } from '../suppressions';
import { StageConfig } from '../config';

/** Where the knowledge documents live in the bucket (WESTTEK_KNOWLEDGE_URL's prefix). */
export const KNOWLEDGE_PREFIX = 'knowledge/';
export const EMBEDDING_MODEL = 'amazon.titan-embed-text-v2:0';
const VECTOR_INDEX = 'westtek-knowledge';

export interface AiProps {
  readonly config: StageConfig;
  readonly knowledgeBucket: s3.IBucket;
  readonly knowledgeKey: kms.IKey;
  readonly logRetention: logs.RetentionDays;
  readonly actionsCode?: lambda.Code;
  /** The bearer token the Lambda presents on the services' `POST /internal/agent-actions`. */
  readonly actionsToken: secretsmanager.ISecret;
  /** Where the Lambda runs: it calls the services inside the VPC. */
  readonly vpc: ec2.IVpc;
  readonly actionsSecurityGroup: ec2.ISecurityGroup;
}

export class Ai extends Construct {
  readonly knowledgeBase: bedrock.CfnKnowledgeBase;
  readonly dataSource: bedrock.CfnDataSource;
  readonly driftAgent: bedrock.CfnAgent;
  readonly driftAlias: bedrock.CfnAgentAlias;
  readonly transferAgent: bedrock.CfnAgent;
  readonly transferAlias: bedrock.CfnAgentAlias;
  readonly actions: lambda.Function;

  constructor(scope: Construct, id: string, props: AiProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const { config } = props;
    const name = `westtek-${config.stage}-kb`;

    const kbRole = new iam.Role(this, 'KbRole', {
      assumedBy: new iam.ServicePrincipal('bedrock.amazonaws.com', {
        conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
      }),
      description: 'Bedrock Knowledge Base: reads the knowledge bucket, embeds, writes vectors',
    });
    props.knowledgeBucket.grantRead(kbRole, `${KNOWLEDGE_PREFIX}*`);
    props.knowledgeKey.grantDecrypt(kbRole);
    const embeddingArn = `arn:${stack.partition}:bedrock:${stack.region}::foundation-model/${EMBEDDING_MODEL}`;
    kbRole.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['bedrock:InvokeModel'], resources: [embeddingArn] }));

    // OpenSearch Serverless: encryption (AWS owned key), network (VPC-less, public endpoint
    // guarded by the data access policy: Bedrock reaches collections only this way) and data access.
    const encryption = new aoss.CfnSecurityPolicy(this, 'CollectionEncryption', {
      name: `${name}-enc`,
      type: 'encryption',
      policy: JSON.stringify({ Rules: [{ ResourceType: 'collection', Resource: [`collection/${name}`] }], AWSOwnedKey: true }),
    });
    const network = new aoss.CfnSecurityPolicy(this, 'CollectionNetwork', {
      name: `${name}-net`,
      type: 'network',
      policy: JSON.stringify([
        { Rules: [{ ResourceType: 'collection', Resource: [`collection/${name}`] }], AllowFromPublic: false, SourceServices: ['bedrock.amazonaws.com'] },
      ]),
    });
    const collection = new aoss.CfnCollection(this, 'Collection', { name, type: 'VECTORSEARCH', standbyReplicas: config.stage === 'prod' ? 'ENABLED' : 'DISABLED' });
    collection.addResourceDependency(encryption);
    collection.addResourceDependency(network);
    const deployRole = `arn:${stack.partition}:iam::${stack.account}:role/cdk-hnb659fds-cfn-exec-role-${stack.account}-${stack.region}`;
    const access = new aoss.CfnAccessPolicy(this, 'CollectionAccess', {
      name: `${name}-access`,
      type: 'data',
      policy: JSON.stringify([
        {
          Rules: [
            { ResourceType: 'collection', Resource: [`collection/${name}`], Permission: ['aoss:DescribeCollectionItems', 'aoss:CreateCollectionItems', 'aoss:UpdateCollectionItems'] },
            { ResourceType: 'index', Resource: [`index/${name}/*`], Permission: ['aoss:CreateIndex', 'aoss:DescribeIndex', 'aoss:ReadDocument', 'aoss:WriteDocument', 'aoss:UpdateIndex'] },
          ],
          Principal: [kbRole.roleArn, deployRole],
        },
      ]),
    });
    kbRole.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['aoss:APIAccessAll'], resources: [collection.attrArn] }));
    const index = new aoss.CfnIndex(this, 'VectorIndex', {
      collectionEndpoint: collection.attrCollectionEndpoint,
      indexName: VECTOR_INDEX,
      settings: { index: { knn: true } },
      mappings: {
        properties: {
          embedding: { type: 'knn_vector', dimension: 1024, method: { engine: 'faiss', name: 'hnsw', spaceType: 'l2' } },
          text: { type: 'text', index: true },
          metadata: { type: 'text', index: false },
        },
      },
    });
    index.addResourceDependency(access);

    this.knowledgeBase = new bedrock.CfnKnowledgeBase(this, 'KnowledgeBase', {
      name,
      description: 'West Tek: notebooks, manifests, install history and summaries of the environments',
      roleArn: kbRole.roleArn,
      knowledgeBaseConfiguration: {
        type: 'VECTOR',
        vectorKnowledgeBaseConfiguration: { embeddingModelArn: embeddingArn },
      },
      storageConfiguration: {
        type: 'OPENSEARCH_SERVERLESS',
        opensearchServerlessConfiguration: {
          collectionArn: collection.attrArn,
          vectorIndexName: VECTOR_INDEX,
          fieldMapping: { vectorField: 'embedding', textField: 'text', metadataField: 'metadata' },
        },
      },
    });
    this.knowledgeBase.addResourceDependency(index);
    this.knowledgeBase.node.addDependency(kbRole);
    this.dataSource = new bedrock.CfnDataSource(this, 'DataSource', {
      name: `${name}-s3`,
      knowledgeBaseId: this.knowledgeBase.attrKnowledgeBaseId,
      dataSourceConfiguration: {
        type: 'S3',
        s3Configuration: { bucketArn: props.knowledgeBucket.bucketArn, inclusionPrefixes: [KNOWLEDGE_PREFIX] },
      },
      vectorIngestionConfiguration: {
        chunkingConfiguration: {
          chunkingStrategy: 'HIERARCHICAL',
          hierarchicalChunkingConfiguration: {
            levelConfigurations: [{ maxTokens: 1500 }, { maxTokens: 300 }],
            overlapTokens: 60,
          },
        },
      },
    });

    // The action groups' Lambda.
    const actionsLogs = new logs.LogGroup(this, 'ActionsLogs', { retention: props.logRetention });
    this.actions = new lambda.Function(this, 'AgentActions', {
      description: 'Bedrock agents\' action groups (services/agent-actions)',
      runtime: props.actionsCode ? lambda.Runtime.PROVIDED_AL2023 : lambda.Runtime.determineLatestPythonRuntime(this),
      architecture: lambda.Architecture.ARM_64,
      handler: props.actionsCode ? 'bootstrap' : 'index.handler',
      code:
        props.actionsCode ??
        lambda.Code.fromInline(
          [
            'def handler(event, context):',
            '    body = "agent-actions is not deployed: deploy with --context agentActionsZip=PATH"',
            '    return {"messageVersion": "1.0", "response": {"actionGroup": event.get("actionGroup"),',
            '            "function": event.get("function"),',
            '            "functionResponse": {"responseState": "FAILURE", "responseBody": {"TEXT": {"body": body}}}}}',
          ].join('\n'),
        ),
      timeout: Duration.seconds(30),
      memorySize: 256,
      logGroup: actionsLogs,
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroups: [props.actionsSecurityGroup],
      environment: {
        // The binary reads the token from its environment (services/agent-actions
        // main.rs): CloudFormation resolves this dynamic reference at deploy
        // time, so the value is in the function's configuration (encrypted at
        // rest), never in the template. Reading it from Secrets Manager at
        // cold start instead needs a Rust change (see README).
        WESTTEK_AGENT_ACTIONS_TOKEN: props.actionsToken.secretValue.unsafeUnwrap(),
      },
    });

    const agent = (key: string, agentName: string, instruction: string, functions: bedrock.CfnAgent.FunctionProperty[], withKb: boolean) => {
      const modelArn = `arn:${stack.partition}:bedrock:${stack.region}::foundation-model/${config.agentModel}`;
      const role = new iam.Role(this, `${key}Role`, {
        assumedBy: new iam.ServicePrincipal('bedrock.amazonaws.com', {
          conditions: { StringEquals: { 'aws:SourceAccount': stack.account } },
        }),
        description: `Bedrock agent ${agentName}`,
      });
      role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['bedrock:InvokeModel', 'bedrock:InvokeModelWithResponseStream'], resources: [modelArn] }));
      if (withKb) {
        role.addToPrincipalPolicy(new iam.PolicyStatement({ actions: ['bedrock:Retrieve'], resources: [this.knowledgeBase.attrKnowledgeBaseArn] }));
      }
      const cfnAgent = new bedrock.CfnAgent(this, key, {
        agentName: `westtek-${config.stage}-${agentName}`,
        agentResourceRoleArn: role.roleArn,
        foundationModel: config.agentModel,
        instruction,
        idleSessionTtlInSeconds: 900,
        autoPrepare: true,
        actionGroups: [
          {
            actionGroupName: `${agentName}-actions`,
            actionGroupExecutor: { lambda: this.actions.functionArn },
            functionSchema: { functions },
          },
        ],
        knowledgeBases: withKb
          ? [{ knowledgeBaseId: this.knowledgeBase.attrKnowledgeBaseId, description: 'The lab\'s environments, notebooks and history', knowledgeBaseState: 'ENABLED' }]
          : undefined,
      });
      cfnAgent.node.addDependency(role);
      const alias = new bedrock.CfnAgentAlias(this, `${key}Alias`, { agentId: cfnAgent.attrAgentId, agentAliasName: 'live' });
      this.actions.addPermission(`${key}Invoke`, {
        principal: new iam.ServicePrincipal('bedrock.amazonaws.com'),
        sourceArn: cfnAgent.attrAgentArn,
        sourceAccount: stack.account,
      });
      return { cfnAgent, alias };
    };
    const envParam = { environment_id: { type: 'string', description: 'the environment', required: true } };
    const drift = agent(
      'DriftAgent',
      'drift-analyzer',
      'You are the Drift Analyzer of the West Tek platform. Explain drift findings of a research environment: what changed, why it matters for the notebooks that import it, and how to roll back or accept it. Use the actions to read findings and inventories; never invent package versions.',
      [
        { name: 'get_drift', description: 'Current drift findings of the environment', parameters: envParam },
        { name: 'get_inventory', description: 'Packages, kernels and notebooks of the environment', parameters: envParam },
      ],
      false,
    );
    const transfer = agent(
      'TransferAgent',
      'knowledge-transfer',
      'You are the Knowledge Transfer agent of the West Tek platform. Answer questions about a research environment and its notebooks for the researcher who inherits it, citing the documents you used.',
      [{ name: 'get_environment_summary', description: 'Summary of the environment and its history', parameters: envParam }],
      true,
    );
    this.driftAgent = drift.cfnAgent;
    this.driftAlias = drift.alias;
    this.transferAgent = transfer.cfnAgent;
    this.transferAlias = transfer.alias;
    acknowledgeMaintenanceMode(this, 'Bedrock Agents (AWS::Bedrock::Agent, AgentAlias)');
  }

  /**
   * Where the Lambda forwards each agent's actions: the services' base URLs
   * inside the VPC (`WESTTEK_AGENT_ACTIONS_DRIFT_URL`, `..._KNOWLEDGE_URL`).
   */
  setActionTargets(targets: { readonly drift: string; readonly knowledge: string }): void {
    this.actions.addEnvironment('WESTTEK_AGENT_ACTIONS_DRIFT_URL', targets.drift);
    this.actions.addEnvironment('WESTTEK_AGENT_ACTIONS_KNOWLEDGE_URL', targets.knowledge);
  }

  /** `bedrock:InvokeAgent` on the Drift Analyzer's alias. */
  grantInvokeDriftAgent(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({ grantee, actions: ['bedrock:InvokeAgent'], resourceArns: [this.driftAlias.attrAgentAliasArn] });
  }

  /** `bedrock:InvokeAgent` on the Knowledge Transfer agent's alias. */
  grantInvokeTransferAgent(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({ grantee, actions: ['bedrock:InvokeAgent'], resourceArns: [this.transferAlias.attrAgentAliasArn] });
  }

  /** Ingestion after each knowledge sync. */
  grantSync(grantee: iam.IGrantable): void {
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['bedrock:StartIngestionJob', 'bedrock:GetIngestionJob'],
      resourceArns: [this.knowledgeBase.attrKnowledgeBaseArn],
    });
  }
}
