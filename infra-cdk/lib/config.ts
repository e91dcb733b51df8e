/**
 * Per-stage settings of the West Tek platform on AWS, in one typed record.
 *
 * Policy: everything that differs between stages lives here and nowhere
 * else; constructs take the values they need as props. `dev` is small and
 * cheap (one NAT gateway, one DocumentDB instance, short log retention);
 * `prod` is multi-AZ with three DocumentDB instances and cross-region
 * replication of the vault.
 */
import { Duration } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';

export type Stage = 'dev' | 'prod';

/** The platform services, one Fargate service each (`westtek serve NAME`). */
export const SERVICES = ['env-manager', 'snapshots', 'drift', 'knowledge'] as const;
export type ServiceName = (typeof SERVICES)[number];

/** Sizes of one platform service's Fargate tasks. */
export interface ServiceSize {
  readonly cpu: number;
  readonly memoryMiB: number;
  readonly desiredCount: number;
}

/** An optional SAML identity provider (the lab's Active Directory). */
export interface SamlConfig {
  readonly providerName: string;
  /** URL of the IdP's SAML metadata document. */
  readonly metadataUrl: string;
}

export interface StageConfig {
  readonly stage: Stage;
  /** Account and region to deploy to (explicit: no lookups at synth time). */
  readonly env: { readonly account: string; readonly region: string };
  /**
   * Availability zones the VPC spans (at least 2: ALB, DocumentDB, WorkSpaces
   * Web need 2), named explicitly so synth needs no AWS lookup. Check the
   * names against your account (`aws ec2 describe-availability-zones`).
   */
  readonly availabilityZones: readonly string[];
  /** NAT gateways (outbound only): 1 in dev, one per AZ in prod. */
  readonly natGateways: number;
  readonly vpcCidr: string;
  /** DocumentDB instances: 1 in dev, 3 in prod (a primary and two replicas in other AZs). */
  readonly docdbInstances: number;
  readonly docdbInstanceType: string;
  /** Region the vault bucket replicates to; undefined: no replication. */
  readonly vaultReplicaRegion?: string;
  readonly logRetention: RetentionDays;
  readonly services: Record<ServiceName, ServiceSize>;
  /** Hostname users reach the platform at (the ALB's certificate covers it). */
  readonly domainName: string;
  /** ACM certificate ARN for `domainName` in the deployment region. */
  readonly certificateArn: string;
  /** Requests per 5 minutes per client IP before WAF blocks (seed: per-lab quotas are enforced by the services too). */
  readonly wafRateLimit: number;
  /** Optional SAML federation for the user pool. */
  readonly saml?: SamlConfig;
  /** Verified SES sender and recipients of CRITICAL drift e-mail (optional). */
  readonly alertEmail?: { readonly from: string; readonly to: readonly string[] };
  /** Bedrock foundation model of the two agents. */
  readonly agentModel: string;
  /** E-mail subscribed to the operations alarm topic (optional). */
  readonly alarmEmail?: string;
  /** How long SQS keeps messages, as the bus adapter documents. */
  readonly queueRetention: Duration;
}

const DUMMY_CERT = (account: string, region: string) =>
  `arn:aws:acm:${region}:${account}:certificate/00000000-0000-0000-0000-000000000000`;

/**
 * The stages. Replace the account, region, domain and certificate with
 * yours (or pass `--context account=… --context region=…`); the values
 * below are placeholders that synthesise offline.
 */
export function stageConfig(stage: Stage, overrides: { account?: string; region?: string } = {}): StageConfig {
  const account = overrides.account ?? '111111111111';
  const region = overrides.region ?? 'eu-west-1';
  const base = {
    env: { account, region },
    vpcCidr: '10.40.0.0/16',
    certificateArn: DUMMY_CERT(account, region),
    agentModel: 'anthropic.claude-3-5-sonnet-20240620-v1:0',
    queueRetention: Duration.days(4),
  };
  const configs: Record<Stage, StageConfig> = {
    dev: {
      ...base,
      stage: 'dev',
      availabilityZones: [`${region}a`, `${region}b`],
      natGateways: 1,
      docdbInstances: 1,
      docdbInstanceType: 't3.medium',
      logRetention: RetentionDays.TWO_WEEKS,
      domainName: 'westtek-dev.example.org',
      wafRateLimit: 2000,
      services: {
        'env-manager': { cpu: 512, memoryMiB: 1024, desiredCount: 1 },
        snapshots: { cpu: 1024, memoryMiB: 2048, desiredCount: 1 },
        drift: { cpu: 256, memoryMiB: 512, desiredCount: 1 },
        knowledge: { cpu: 256, memoryMiB: 512, desiredCount: 1 },
      },
    },
    prod: {
      ...base,
      stage: 'prod',
      availabilityZones: [`${region}a`, `${region}b`, `${region}c`],
      natGateways: 3,
      docdbInstances: 3,
      docdbInstanceType: 'r6g.large',
      vaultReplicaRegion: region === 'eu-central-1' ? 'eu-west-1' : 'eu-central-1',
      logRetention: RetentionDays.ONE_YEAR,
      domainName: 'westtek.example.org',
      wafRateLimit: 5000,
      services: {
        'env-manager': { cpu: 1024, memoryMiB: 2048, desiredCount: 2 },
        snapshots: { cpu: 2048, memoryMiB: 4096, desiredCount: 2 },
        drift: { cpu: 512, memoryMiB: 1024, desiredCount: 2 },
        knowledge: { cpu: 512, memoryMiB: 1024, desiredCount: 2 },
      },
    },
  };
  return configs[stage];
}

export function parseStage(value: unknown): Stage {
  if (value === 'dev' || value === 'prod') return value;
  throw new Error(`unknown stage ${JSON.stringify(value)}: pass --context stage=dev or --context stage=prod`);
}
