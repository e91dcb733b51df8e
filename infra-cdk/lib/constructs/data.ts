/**
 * Data: everything the platform must not lose, with safe defaults locked in.
 *
 * - KMS keys (rotation on): `vaultKey` encrypts the vault bucket and wraps
 *   the vault's master key (`WESTTEK_VAULT_KMS_KEY_ID`); `dataKey` encrypts
 *   the drift table, DocumentDB, EFS, the knowledge bucket and the secret.
 * - The vault bucket: versioning, public access blocked, SSE-KMS with a
 *   bucket key, TLS only, lifecycle Standard → Standard-IA at 30 days →
 *   Glacier Deep Archive at 365 days (noncurrent versions likewise, expired
 *   after 2 years), server access logs, cross-region replication when the
 *   stage names a replica region.
 * - The knowledge bucket (Bedrock KB data source): private, SSE-KMS, TLS only.
 * - The drift table as `crates/drift-dynamodb` documents it: keys pk/sk,
 *   GSIs gsi1 (gsi1pk/gsi1sk) and gsi2 (gsi2pk/gsi2sk) projecting ALL, TTL
 *   on `expires_at`, on-demand, point-in-time recovery.
 * - DocumentDB (1 instance in dev, 3 in prod) in isolated subnets, storage
 *   encrypted, audit and profiler logs exported; its connection string as
 *   a Secrets Manager secret (`WESTTEK_MONGO_URL`).
 * - EFS for researchers' homes (one access point per researcher, made at
 *   run time by the ECS runtime): encrypted, IAM authorisation required,
 *   automatic backups.
 *
 * Policy: every resource here is RETAINed when its stack is deleted, and
 * reached from the compute tasks only through `clientSecurityGroup`.
 */
import { Duration, RemovalPolicy, SecretValue } from 'aws-cdk-lib';
import * as docdb from 'aws-cdk-lib/aws-docdb';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { NagSuppressions } from 'cdk-nag';
import { Construct } from 'constructs';
import { StageConfig } from '../config';

/** The vault's replica, made in another region by {@link VaultReplica}. */
export interface ReplicaTarget {
  readonly bucket: s3.IBucket;
  /** ARN of the replica region's KMS key (an alias ARN: keys have no predictable ARN). */
  readonly keyAliasArn: string;
}

export interface DataProps {
  readonly config: StageConfig;
  readonly vpc: ec2.IVpc;
  /** The security group of the tasks that use DocumentDB and EFS (from the network). */
  readonly clients: ec2.ISecurityGroup;
  readonly replica?: ReplicaTarget;
}

/** The S3 lifecycle the product spec asks of the vault. */
export const VAULT_TRANSITIONS: s3.Transition[] = [
  { storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) },
  { storageClass: s3.StorageClass.DEEP_ARCHIVE, transitionAfter: Duration.days(365) },
];

/** Not MongoDB's default port: scanners aimed at 27017 miss it (the connection string carries it). */
export const DOCDB_PORT = 27018;

export class Data extends Construct {
  readonly vaultKey: kms.Key;
  readonly dataKey: kms.Key;
  readonly vaultBucket: s3.Bucket;
  readonly knowledgeBucket: s3.Bucket;
  readonly accessLogs: s3.Bucket;
  readonly driftTable: dynamodb.TableV2;
  readonly docdb: docdb.DatabaseCluster;
  readonly mongoUrl: secretsmanager.Secret;
  readonly homes: efs.FileSystem;
  /** Attach to tasks that use DocumentDB or EFS. */
  readonly clientSecurityGroup: ec2.ISecurityGroup;

  constructor(scope: Construct, id: string, props: DataProps) {
    super(scope, id);
    const { config, vpc } = props;
    const prod = config.stage === 'prod';

    this.vaultKey = new kms.Key(this, 'VaultKey', {
      description: 'West Tek vault: the vault bucket and the wrapping of the vault master key',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.dataKey = new kms.Key(this, 'DataKey', {
      description: 'West Tek data: drift table, DocumentDB, EFS, knowledge bucket, secrets',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.accessLogs = new s3.Bucket(this, 'AccessLogs', {
      // Server access logs can only be delivered to an SSE-S3 bucket.
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      versioned: true,
      objectOwnership: s3.ObjectOwnership.BUCKET_OWNER_PREFERRED,
      lifecycleRules: [{ id: 'expire-logs', expiration: Duration.days(prod ? 365 : 30) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    NagSuppressions.addResourceSuppressions(this.accessLogs, [
      { id: 'AwsSolutions-S1', reason: 'This is the server access log target; logging it into itself would loop.' },
    ]);

    this.vaultBucket = new s3.Bucket(this, 'Vault', {
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.vaultKey,
      bucketKeyEnabled: true,
      enforceSSL: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'vault/',
      lifecycleRules: [
        {
          id: 'vault-tiering',
          transitions: VAULT_TRANSITIONS,
          noncurrentVersionTransitions: [
            { storageClass: s3.StorageClass.INFREQUENT_ACCESS, transitionAfter: Duration.days(30) },
            { storageClass: s3.StorageClass.DEEP_ARCHIVE, transitionAfter: Duration.days(365) },
          ],
          noncurrentVersionExpiration: Duration.days(730),
          abortIncompleteMultipartUploadAfter: Duration.days(7),
        },
      ],
      replicationRules: props.replica
        ? [
            {
              destination: props.replica.bucket,
              kmsKey: kms.Key.fromKeyArn(this, 'ReplicaKey', props.replica.keyAliasArn),
              sseKmsEncryptedObjects: true,
              deleteMarkerReplication: false,
              priority: 1,
            },
          ]
        : undefined,
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.knowledgeBucket = new s3.Bucket(this, 'Knowledge', {
      versioned: true,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      encryption: s3.BucketEncryption.KMS,
      encryptionKey: this.dataKey,
      bucketKeyEnabled: true,
      enforceSSL: true,
      serverAccessLogsBucket: this.accessLogs,
      serverAccessLogsPrefix: 'knowledge/',
      lifecycleRules: [{ id: 'old-versions', noncurrentVersionExpiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.driftTable = new dynamodb.TableV2(this, 'DriftTable', {
      partitionKey: { name: 'pk', type: dynamodb.AttributeType.STRING },
      sortKey: { name: 'sk', type: dynamodb.AttributeType.STRING },
      billing: dynamodb.Billing.onDemand(),
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      encryption: dynamodb.TableEncryptionV2.customerManagedKey(this.dataKey),
      timeToLiveAttribute: 'expires_at',
      deletionProtection: prod,
      globalSecondaryIndexes: [
        {
          indexName: 'gsi1',
          partitionKey: { name: 'gsi1pk', type: dynamodb.AttributeType.STRING },
          sortKey: { name: 'gsi1sk', type: dynamodb.AttributeType.STRING },
          projectionType: dynamodb.ProjectionType.ALL,
        },
        {
          indexName: 'gsi2',
          partitionKey: { name: 'gsi2pk', type: dynamodb.AttributeType.STRING },
          sortKey: { name: 'gsi2sk', type: dynamodb.AttributeType.STRING },
          projectionType: dynamodb.ProjectionType.ALL,
        },
      ],
      removalPolicy: RemovalPolicy.RETAIN,
    });

    this.clientSecurityGroup = props.clients;

    const dbSecurityGroup = new ec2.SecurityGroup(this, 'DocDbSg', {
      vpc,
      description: 'DocumentDB: reachable from the platform tasks only',
      allowAllOutbound: false,
    });
    dbSecurityGroup.addIngressRule(this.clientSecurityGroup, ec2.Port.tcp(DOCDB_PORT), 'platform tasks');
    const parameters = new docdb.ClusterParameterGroup(this, 'DocDbParameters', {
      family: 'docdb5.0',
      description: 'West Tek: TLS required, audit log on',
      parameters: { tls: 'enabled', audit_logs: 'all', profiler: 'enabled' },
    });
    this.docdb = new docdb.DatabaseCluster(this, 'DocDb', {
      masterUser: { username: 'westtek', excludeCharacters: ' %+~`#$&*()|[]{}:;<>?!\'/@"\\=,' },
      instanceType: new ec2.InstanceType(config.docdbInstanceType),
      instances: config.docdbInstances,
      engineVersion: '5.0.0',
      port: DOCDB_PORT,
      parameterGroup: parameters,
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_ISOLATED },
      securityGroup: dbSecurityGroup,
      storageEncrypted: true,
      kmsKey: this.dataKey,
      backup: { retention: Duration.days(prod ? 35 : 7) },
      deletionProtection: prod,
      exportAuditLogsToCloudWatch: true,
      exportProfilerLogsToCloudWatch: true,
      cloudWatchLogsRetention: config.logRetention,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    const master = this.docdb.secret;
    if (!master) throw new Error('DocumentDB cluster has no generated secret');
    // The connection string the binary reads (WESTTEK_MONGO_URL), built by
    // CloudFormation from the generated master secret (dynamic references),
    // so the password never appears in the template.
    this.mongoUrl = new secretsmanager.Secret(this, 'MongoUrl', {
      description: 'West Tek: DocumentDB connection string (WESTTEK_MONGO_URL)',
      // The AWS managed key: a customer managed key in this stack would have
      // to name the platform stack's execution roles in its policy (a cycle).
      secretStringValue: SecretValue.unsafePlainText(
        [
          'mongodb://',
          master.secretValueFromJson('username').unsafeUnwrap(),
          ':',
          master.secretValueFromJson('password').unsafeUnwrap(),
          '@',
          this.docdb.clusterEndpoint.socketAddress,
          '/?tls=true&replicaSet=rs0&readPreference=secondaryPreferred&retryWrites=false',
        ].join(''),
      ),
      removalPolicy: RemovalPolicy.RETAIN,
    });
    NagSuppressions.addResourceSuppressions(
      [master, this.mongoUrl],
      [
        {
          id: 'AwsSolutions-SMG4',
          reason:
            'Rotating the DocumentDB master password needs the rotation Lambda and a rebuild of the derived connection string; rotate by redeploying (documented in the README) until the services read credentials separately.',
        },
      ],
      true,
    );

    this.homes = new efs.FileSystem(this, 'Homes', {
      vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      encrypted: true,
      kmsKey: this.dataKey,
      enableAutomaticBackups: true,
      performanceMode: efs.PerformanceMode.GENERAL_PURPOSE,
      throughputMode: efs.ThroughputMode.ELASTIC,
      lifecyclePolicy: efs.LifecyclePolicy.AFTER_30_DAYS,
      allowAnonymousAccess: false,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.homes.connections.allowDefaultPortFrom(this.clientSecurityGroup, 'Jupyter tasks (NFS over TLS)');
  }
}
