/**
 * The stacks of one stage. They only compose constructs:
 *
 * - `NetworkStack`: the VPC.
 * - `StatefulStack`: the data (buckets, keys, table, DocumentDB, EFS),
 *   termination-protected in prod, every resource RETAINed.
 * - `ReplicaStack` (prod): the vault's replica in another region.
 * - `PlatformStack`: events, AI, access, compute, API, observability:
 *   stateless, safe to destroy and redeploy.
 *
 * The outputs carry the settings the binary reads, named as the settings
 * (`WESTTEK_DRIFT_TABLE`, …) so a deployer can copy them.
 */
import { CfnOutput, Stack, StackProps, Tags } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { StageConfig } from './config';
import { Access } from './constructs/access';
import { Ai, KNOWLEDGE_PREFIX } from './constructs/ai';
import { Api } from './constructs/api';
import { Compute, JUPYTER_PORT, SERVICE_PORT, VAULT_PREFIX } from './constructs/compute';
import { Data, ReplicaTarget } from './constructs/data';
import { Events } from './constructs/events';
import { Network } from './constructs/network';
import { Observability } from './constructs/observability';
import { VaultReplica } from './constructs/replica';
import { SettingValues } from './settings';
import { suppressAgentActionsToken, suppressNetwork, suppressPlatform, suppressStateful } from './suppressions';

export interface StageStackProps extends StackProps {
  readonly config: StageConfig;
  /** AZs of this stack's region when it is not the stage's (the replica). */
  readonly azs?: readonly string[];
}

/**
 * A stack of a stage: its availability zones come from the stage config, so
 * synth never asks AWS for them (a context lookup would need credentials).
 */
abstract class StageStack extends Stack {
  private readonly azs: readonly string[];
  constructor(scope: Construct, id: string, props: StageStackProps) {
    super(scope, id, props);
    this.azs = props.azs ?? props.config.availabilityZones;
  }
  override get availabilityZones(): string[] {
    return [...this.azs];
  }
}

export class NetworkStack extends StageStack {
  readonly network: Network;
  constructor(scope: Construct, id: string, props: StageStackProps) {
    super(scope, id, props);
    this.network = new Network(this, 'Network', { config: props.config, servicePort: SERVICE_PORT, jupyterPort: JUPYTER_PORT });
    suppressNetwork(this);
  }
}

export class ReplicaStack extends StageStack {
  readonly replica: VaultReplica;
  constructor(scope: Construct, id: string, props: StageStackProps) {
    super(scope, id, props);
    this.replica = new VaultReplica(this, 'VaultReplica', { stage: props.config.stage });
  }
}

export interface StatefulStackProps extends StageStackProps {
  readonly network: Network;
  readonly replica?: ReplicaTarget;
}

export class StatefulStack extends StageStack {
  readonly data: Data;
  constructor(scope: Construct, id: string, props: StatefulStackProps) {
    super(scope, id, { ...props, terminationProtection: props.config.stage === 'prod' });
    this.data = new Data(this, 'Data', { config: props.config, vpc: props.network.vpc, clients: props.network.dataClients, replica: props.replica });
    suppressStateful(this);
  }
}

export interface PlatformStackProps extends StageStackProps {
  readonly network: Network;
  readonly data: Data;
  readonly actionsCode?: lambda.Code;
}

export class PlatformStack extends StageStack {
  readonly events: Events;
  readonly ai: Ai;
  readonly access: Access;
  readonly compute: Compute;
  readonly api: Api;
  readonly observability: Observability;
  readonly alertTopic: sns.Topic;
  readonly settings: SettingValues;
  /** The secret the agent-actions Lambda presents to the drift and knowledge services. */
  readonly agentActionsToken: secretsmanager.Secret;

  constructor(scope: Construct, id: string, props: PlatformStackProps) {
    super(scope, id, props);
    const { config, data } = props;
    const vpc = props.network.vpc;
    const publicUrl = `https://${config.domainName}`;

    this.events = new Events(this, 'Events', { queueRetention: config.queueRetention });
    this.alertTopic = new sns.Topic(this, 'DriftAlerts', {
      displayName: 'West Tek CRITICAL drift',
      masterKey: data.dataKey,
      enforceSSL: true,
    });
    // Stateless: a redeploy that replaces it hands the new value to both sides.
    this.agentActionsToken = new secretsmanager.Secret(this, 'AgentActionsToken', {
      description: 'Bearer token of POST /internal/agent-actions: the agent-actions Lambda presents it, the drift and knowledge services check it',
      generateSecretString: { passwordLength: 48, excludePunctuation: true },
    });
    suppressAgentActionsToken(this.agentActionsToken);
    this.ai = new Ai(this, 'Ai', {
      config,
      knowledgeBucket: data.knowledgeBucket,
      knowledgeKey: data.dataKey,
      logRetention: config.logRetention,
      actionsCode: props.actionsCode,
      actionsToken: this.agentActionsToken,
      vpc,
      actionsSecurityGroup: props.network.agentActionsSg,
    });
    this.access = new Access(this, 'Access', { config, vpc, publicUrl });

    const queues = this.events.consumers;
    this.settings = {
      WESTTEK_PROFILE: 'aws',
      WESTTEK_PUBLIC_URL: publicUrl,
      WESTTEK_VAULT_URL: `s3://${data.vaultBucket.bucketName}/${VAULT_PREFIX}`,
      WESTTEK_VAULT_KMS_KEY_ID: data.vaultKey.keyArn,
      WESTTEK_MONGO_URL: { secret: data.mongoUrl },
      WESTTEK_MONGO_DATABASE: 'westtek',
      WESTTEK_DRIFT_TABLE: data.driftTable.tableName,
      WESTTEK_EVENT_BUS: this.events.bus.eventBusName,
      WESTTEK_BUS_QUEUES: (service) =>
        service === 'drift' ? `drift=${queues.drift.queue.queueUrl}` : `knowledge=${queues.knowledge.queue.queueUrl}`,
      WESTTEK_ALERT_SES_FROM: config.alertEmail?.from,
      WESTTEK_ALERT_TO: config.alertEmail?.to.join(','),
      WESTTEK_ALERT_SMS: this.alertTopic.topicArn,
      WESTTEK_KNOWLEDGE_URL: `s3://${data.knowledgeBucket.bucketName}/${KNOWLEDGE_PREFIX}`,
      WESTTEK_KNOWLEDGE_BASE_ID: this.ai.knowledgeBase.attrKnowledgeBaseId,
      WESTTEK_KNOWLEDGE_DATA_SOURCE_ID: this.ai.dataSource.attrDataSourceId,
      WESTTEK_DRIFT_AGENT_ID: this.ai.driftAgent.attrAgentId,
      WESTTEK_DRIFT_AGENT_ALIAS_ID: this.ai.driftAlias.attrAgentAliasId,
      WESTTEK_TRANSFER_AGENT_ID: this.ai.transferAgent.attrAgentId,
      WESTTEK_TRANSFER_AGENT_ALIAS_ID: this.ai.transferAlias.attrAgentAliasId,
      WESTTEK_COGNITO_ISSUER: this.access.issuer,
      WESTTEK_COGNITO_CLIENT_ID: this.access.client.userPoolClientId,
      WESTTEK_AGENT_ACTIONS_TOKEN: { secret: this.agentActionsToken },
      // Users open Jupyter inside the lab's secure-browser portal.
      WESTTEK_SECURE_BROWSER_URL: `https://${this.access.portal.attrPortalEndpoint}`,
    };

    this.compute = new Compute(this, 'Compute', {
      config,
      network: props.network,
      data,
      events: this.events,
      ai: this.ai,
      alertTopic: this.alertTopic,
      settings: this.settings,
    });
    this.ai.setActionTargets(this.compute.internalUrls);
    this.api = new Api(this, 'Api', {
      config,
      vpc,
      services: this.compute.services,
      albSecurityGroup: props.network.albSg,
      accessLogs: data.accessLogs,
    });
    this.observability = new Observability(this, 'Observability', {
      config,
      key: data.dataKey,
      alb: this.api.alb,
      consumers: this.events.consumers,
      logGroups: this.compute.logGroups,
    });

    // The settings (the ECS runtime's included), as outputs named like the settings themselves (plain values only).
    for (const [name, value] of Object.entries(this.compute.settings)) {
      if (typeof value === 'string') new CfnOutput(this, name.replace(/_/g, ''), { key: name.replace(/_/g, ''), value, description: name });
    }
    new CfnOutput(this, 'JupyterTaskDefinition', { value: this.compute.jupyterTaskDefinition.taskDefinitionArn });
    new CfnOutput(this, 'JupyterEbsRole', { value: this.compute.ebsRole.roleArn });
    new CfnOutput(this, 'SecureBrowserPortal', { value: this.access.portal.attrPortalEndpoint });
    Tags.of(this).add('westtek:stage', config.stage);
    suppressPlatform(this);
  }
}

export interface StageStacks {
  readonly network: NetworkStack;
  readonly stateful: StatefulStack;
  readonly platform: PlatformStack;
  readonly replica?: ReplicaStack;
}

/** Builds every stack of a stage into `scope` (the app). */
export function buildStage(scope: Construct, config: StageConfig, actionsCode?: lambda.Code): StageStacks {
  const prefix = `Westtek-${config.stage}`;
  const env = config.env;
  const network = new NetworkStack(scope, `${prefix}-Network`, { config, env });
  const replica = config.vaultReplicaRegion
    ? new ReplicaStack(scope, `${prefix}-VaultReplica`, {
        config,
        env: { account: env.account, region: config.vaultReplicaRegion },
        azs: [`${config.vaultReplicaRegion}a`, `${config.vaultReplicaRegion}b`],
      })
    : undefined;
  const stateful = new StatefulStack(scope, `${prefix}-Stateful`, {
    config,
    env,
    network: network.network,
    replica: replica?.replica,
  });
  if (replica) stateful.addStackDependency(replica);
  const platform = new PlatformStack(scope, `${prefix}-Platform`, {
    config,
    env,
    network: network.network,
    data: stateful.data,
    actionsCode,
  });
  for (const s of [network, stateful, platform, ...(replica ? [replica] : [])]) Tags.of(s).add('westtek:stage', config.stage);
  return { network, stateful, platform, replica };
}
