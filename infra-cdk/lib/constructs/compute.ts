/**
 * Compute: the ECS cluster, the ECR repositories, one Fargate service per
 * platform service (`westtek serve SERVICE` on port 8080, settings from
 * {@link containerSettings}), and the Jupyter task definition of issue 15
 * (Jupyter + the `westtek agent` sidecar sharing an EBS volume configured
 * at launch at /opt/jupyter and an EFS access point at /home/researcher
 * with transit encryption and IAM authorisation), with the role ECS uses
 * to create the EBS volumes. env-manager, which runs those tasks through
 * crates/runtime-ecs, gets its `WESTTEK_ECS_*` settings from these
 * resources and exactly the permissions that crate documents.
 *
 * Policy: each service has its own task role with only what it uses
 * (documented in the adapters' crates); tasks run in private subnets with
 * no public IP; logs go to CloudWatch with the stage's retention.
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as efs from 'aws-cdk-lib/aws-efs';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as servicediscovery from 'aws-cdk-lib/aws-servicediscovery';
import * as sns from 'aws-cdk-lib/aws-sns';
import { Construct } from 'constructs';
import { SERVICES, ServiceName, StageConfig } from '../config';
import { containerSettings, SettingValues } from '../settings';
import { Ai } from './ai';
import { Data } from './data';
import { Network } from './network';
import { Events } from './events';

/** The port every platform service listens on in its container. */
export const SERVICE_PORT = 8080;
/** Jupyter's port in its task. */
export const JUPYTER_PORT = 8888;
/** Mount points of the Jupyter task (issue 15). */
export const ENV_MOUNT = '/opt/jupyter';
export const HOME_MOUNT = '/home/researcher';
/** The cluster's private DNS namespace (Cloud Map): `drift.<it>`, `knowledge.<it>`. */
export const INTERNAL_DOMAIN = 'westtek.internal';
/** The vault prefix the services use; environments' data lives under it. */
export const VAULT_PREFIX = 'vault';

export interface ComputeProps {
  readonly config: StageConfig;
  readonly network: Network;
  readonly data: Data;
  readonly events: Events;
  readonly ai: Ai;
  readonly alertTopic: sns.ITopic;
  readonly settings: SettingValues;
  /** Image tag to run (pushed by the release pipeline). */
  readonly imageTag?: string;
}

export class Compute extends Construct {
  readonly cluster: ecs.Cluster;
  readonly platformRepo: ecr.Repository;
  readonly jupyterRepo: ecr.Repository;
  readonly services: Record<ServiceName, ecs.FargateService>;
  readonly taskDefinitions: Record<ServiceName, ecs.FargateTaskDefinition>;
  readonly serviceSecurityGroup: ec2.ISecurityGroup;
  readonly jupyterTaskDefinition: ecs.FargateTaskDefinition;
  readonly jupyterSecurityGroup: ec2.ISecurityGroup;
  /** The role ECS uses to create and attach the tasks' EBS volumes. */
  readonly ebsRole: iam.Role;
  /** The access point the declared Jupyter task definition mounts (the runtime registers one revision per researcher). */
  readonly templateAccessPoint: efs.AccessPoint;
  readonly logGroups: Record<ServiceName | 'jupyter', logs.LogGroup>;
  /**
   * Base URLs of the drift and knowledge services inside the VPC (Cloud
   * Map names of the cluster's private namespace), for the agent-actions
   * Lambda.
   */
  readonly internalUrls: { readonly drift: string; readonly knowledge: string };
  /** The settings the containers get: the stack's, plus the ECS runtime's (`WESTTEK_ECS_*`). */
  readonly settings: SettingValues;

  constructor(scope: Construct, id: string, props: ComputeProps) {
    super(scope, id);
    const { config, data, events, ai } = props;
    const vpc = props.network.vpc;
    const tag = props.imageTag ?? 'latest';
    const stack = Stack.of(this);

    this.cluster = new ecs.Cluster(this, 'Cluster', {
      vpc,
      containerInsightsV2: ecs.ContainerInsights.ENABLED,
    });
    const repo = (name: string) =>
      new ecr.Repository(this, name, {
        imageScanOnPush: true,
        imageTagMutability: ecr.TagMutability.IMMUTABLE_WITH_EXCLUSION,
        imageTagMutabilityExclusionFilters: [ecr.ImageTagMutabilityExclusionFilter.wildcard('latest')],
        encryption: ecr.RepositoryEncryption.KMS,
        lifecycleRules: [{ maxImageCount: 50 }],
        removalPolicy: RemovalPolicy.RETAIN,
      });
    this.platformRepo = repo('PlatformRepo');
    this.jupyterRepo = repo('JupyterRepo');

    this.serviceSecurityGroup = props.network.servicesSg;

    const logGroups: Partial<Record<ServiceName | 'jupyter', logs.LogGroup>> = {};
    const logGroup = (name: ServiceName | 'jupyter') => {
      const group = new logs.LogGroup(this, `${name}-logs`, {
        retention: config.logRetention,
        encryptionKey: data.dataKey,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      logGroups[name] = group;
      return group;
    };

    // --- The Jupyter + agent task (issue 15) ---
    this.ebsRole = new iam.Role(this, 'EbsRole', {
      description: 'ECS infrastructure role: creates and attaches the Jupyter tasks\' EBS volumes',
      assumedBy: new iam.ServicePrincipal('ecs.amazonaws.com'),
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AmazonECSInfrastructureRolePolicyForVolumes'),
      ],
    });
    this.jupyterSecurityGroup = props.network.jupyterSg;
    // The Jupyter tasks mount the homes over NFS with the Jupyter group
    // alone (not the data clients' group, which also reaches DocumentDB).
    data.homes.connections.allowDefaultPortFrom(this.jupyterSecurityGroup, 'Jupyter tasks (NFS over TLS)');
    this.templateAccessPoint = data.homes.addAccessPoint('TemplateHome', {
      path: '/researchers/template',
      posixUser: { uid: '1000', gid: '1000' },
      createAcl: { ownerUid: '1000', ownerGid: '1000', permissions: '750' },
    });
    const jupyter = new ecs.FargateTaskDefinition(this, 'JupyterTask', {
      cpu: 1024,
      memoryLimitMiB: 4096,
      ephemeralStorageGiB: 21,
    });
    jupyter.addVolume({ name: 'env', configuredAtLaunch: true });
    jupyter.addVolume({
      name: 'home',
      efsVolumeConfiguration: {
        fileSystemId: data.homes.fileSystemId,
        transitEncryption: 'ENABLED',
        authorizationConfig: { accessPointId: this.templateAccessPoint.accessPointId, iam: 'ENABLED' },
      },
    });
    const jupyterLogs = logGroup('jupyter');
    const mounts: ecs.MountPoint[] = [
      { sourceVolume: 'env', containerPath: ENV_MOUNT, readOnly: false },
      { sourceVolume: 'home', containerPath: HOME_MOUNT, readOnly: false },
    ];
    const lab = jupyter.addContainer('jupyter', {
      image: ecs.ContainerImage.fromEcrRepository(this.jupyterRepo, tag),
      essential: true,
      memoryLimitMiB: 3584,
      user: '1000:1000',
      portMappings: [{ containerPort: JUPYTER_PORT, name: 'jupyter' }],
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'jupyter', logGroup: jupyterLogs }),
      healthCheck: {
        // The Jupyter image has Python, not necessarily curl.
        command: ['CMD', 'python3', '-c', `import urllib.request; urllib.request.urlopen('http://127.0.0.1:${JUPYTER_PORT}/api', timeout=4)`],
        interval: Duration.seconds(15),
        timeout: Duration.seconds(5),
        retries: 4,
        startPeriod: Duration.seconds(120),
      },
    });
    lab.addMountPoints(...mounts);
    const agent = jupyter.addContainer('agent', {
      image: ecs.ContainerImage.fromEcrRepository(this.platformRepo, tag),
      essential: true,
      memoryLimitMiB: 512,
      command: ['agent', 'run', '--env-dir', ENV_MOUNT, '--home-dir', HOME_MOUNT],
      environment: { WESTTEK_PUBLIC_URL: `https://${config.domainName}` },
      logging: ecs.LogDrivers.awsLogs({ streamPrefix: 'agent', logGroup: jupyterLogs }),
    });
    agent.addMountPoints(...mounts);
    this.jupyterTaskDefinition = jupyter;
    data.homes.grant(jupyter.taskRole, 'elasticfilesystem:ClientMount', 'elasticfilesystem:ClientWrite');
    // The agent writes its environment's snapshots straight to the vault,
    // and only under the environment's prefix: the runtime starts each
    // environment's task with its role session tagged `environment`.
    jupyter.taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:GetObject', 's3:PutObject', 's3:AbortMultipartUpload'],
        resources: [data.vaultBucket.arnForObjects(`${VAULT_PREFIX}/environments/\${aws:PrincipalTag/environment}/*`)],
      }),
    );
    jupyter.taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['s3:ListBucket'],
        resources: [data.vaultBucket.bucketArn],
        conditions: { StringLike: { 's3:prefix': [`${VAULT_PREFIX}/environments/\${aws:PrincipalTag/environment}/*`] } },
      }),
    );
    jupyter.taskRole.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [data.vaultKey.keyArn],
        conditions: { StringEquals: { 'kms:ViaService': `s3.${stack.region}.amazonaws.com` } },
      }),
    );

    // What the ECS runtime needs to know (crates/runtime-ecs `EcsSettings`).
    this.settings = {
      ...props.settings,
      WESTTEK_ECS_CLUSTER: this.cluster.clusterName,
      WESTTEK_ECS_TASK_FAMILY: jupyter.family,
      WESTTEK_ECS_SUBNETS: vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }).subnetIds.join(','),
      WESTTEK_ECS_SECURITY_GROUPS: this.jupyterSecurityGroup.securityGroupId,
      WESTTEK_ECS_EBS_ROLE_ARN: this.ebsRole.roleArn,
      WESTTEK_ECS_EFS_FILE_SYSTEM_ID: data.homes.fileSystemId,
      WESTTEK_ECS_JUPYTER_PORT: String(JUPYTER_PORT),
    };

    // Private DNS names for the services the agent-actions Lambda calls.
    const namespace = this.cluster.addDefaultCloudMapNamespace({ name: INTERNAL_DOMAIN, vpc });
    const internallyNamed: readonly ServiceName[] = ['drift', 'knowledge'];
    const internalUrl = (service: ServiceName) => `http://${service}.${namespace.namespaceName}:${SERVICE_PORT}`;
    this.internalUrls = { drift: internalUrl('drift'), knowledge: internalUrl('knowledge') };

    const services: Partial<Record<ServiceName, ecs.FargateService>> = {};
    const taskDefinitions: Partial<Record<ServiceName, ecs.FargateTaskDefinition>> = {};
    for (const service of SERVICES) {
      const size = config.services[service];
      const taskDef = new ecs.FargateTaskDefinition(this, `${service}-task`, {
        cpu: size.cpu,
        memoryLimitMiB: size.memoryMiB,
        runtimePlatform: {
          cpuArchitecture: ecs.CpuArchitecture.X86_64,
          operatingSystemFamily: ecs.OperatingSystemFamily.LINUX,
        },
      });
      const { environment, secrets } = containerSettings(service, this.settings);
      taskDef.addContainer('app', {
        image: ecs.ContainerImage.fromEcrRepository(this.platformRepo, tag),
        command: ['serve', service, '--bind', '0.0.0.0', '--port', String(SERVICE_PORT)],
        environment,
        secrets,
        portMappings: [{ containerPort: SERVICE_PORT, name: 'http' }],
        logging: ecs.LogDrivers.awsLogs({ streamPrefix: service, logGroup: logGroup(service) }),
        readonlyRootFilesystem: false,
        healthCheck: {
          command: ['CMD', 'westtek', 'healthcheck', `http://127.0.0.1:${SERVICE_PORT}/healthz`],
          interval: Duration.seconds(30),
          timeout: Duration.seconds(5),
          retries: 3,
          startPeriod: Duration.seconds(60),
        },
      });
      this.grantService(service, taskDef.taskRole, props);
      const fargate = new ecs.FargateService(this, `${service}-service`, {
        cluster: this.cluster,
        taskDefinition: taskDef,
        desiredCount: size.desiredCount,
        vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        securityGroups: [this.serviceSecurityGroup, data.clientSecurityGroup],
        assignPublicIp: false,
        circuitBreaker: { rollback: true },
        minHealthyPercent: 100,
        enableExecuteCommand: false,
        cloudMapOptions: internallyNamed.includes(service)
          ? { name: service, dnsRecordType: servicediscovery.DnsRecordType.A, dnsTtl: Duration.seconds(10) }
          : undefined,
      });
      services[service] = fargate;
      taskDefinitions[service] = taskDef;
    }
    this.services = services as Record<ServiceName, ecs.FargateService>;
    this.taskDefinitions = taskDefinitions as Record<ServiceName, ecs.FargateTaskDefinition>;

    this.grantEnvManager(this.taskDefinitions['env-manager'].taskRole, data);
    // snapshots: EBS snapshots of the environment volumes.
    const snapshots = this.taskDefinitions.snapshots.taskRole;
    snapshots.addToPrincipalPolicy(
      new iam.PolicyStatement({
        actions: ['ec2:CreateSnapshot', 'ec2:CreateTags'],
        resources: [`arn:${stack.partition}:ec2:${stack.region}:${stack.account}:volume/*`, `arn:${stack.partition}:ec2:${stack.region}::snapshot/*`],
        conditions: { StringLike: { 'aws:ResourceTag/westtek:environment': '*' } },
      }),
    );
    snapshots.addToPrincipalPolicy(
      new iam.PolicyStatement({ actions: ['ec2:DescribeSnapshots', 'ec2:DescribeVolumes'], resources: ['*'] }),
    );
    this.logGroups = logGroups as Record<ServiceName | 'jupyter', logs.LogGroup>;
    void events;
    void ai;
  }

  /**
   * What env-manager's ECS runtime does (crates/runtime-ecs, "Permissions"):
   * run, watch and stop the Jupyter tasks; register one revision of the
   * Jupyter family per researcher and find them again after a restart;
   * make each researcher's access point on the homes file system. Nothing
   * more: no DeleteAccessPoint (homes are never deleted by the platform),
   * no EC2 calls (the runtime reads the volume id from the task).
   */
  private grantEnvManager(role: iam.IRole, data: Data): void {
    const stack = Stack.of(this);
    const ecsArn = (resource: string) => `arn:${stack.partition}:ecs:${stack.region}:${stack.account}:${resource}`;
    const familyRevisions = ecsArn(`task-definition/${this.jupyterTaskDefinition.family}:*`);
    const clusterTasks = ecsArn(`task/${this.cluster.clusterName}/*`);
    const accessPoints = `arn:${stack.partition}:elasticfilesystem:${stack.region}:${stack.account}:access-point/*`;
    const allow = (statement: iam.PolicyStatementProps) => role.addToPrincipalPolicy(new iam.PolicyStatement(statement));

    allow({
      sid: 'RunJupyterTasks',
      actions: ['ecs:RunTask'],
      resources: [familyRevisions],
      conditions: { ArnEquals: { 'ecs:cluster': this.cluster.clusterArn } },
    });
    allow({ sid: 'WatchAndStopJupyterTasks', actions: ['ecs:StopTask', 'ecs:DescribeTasks'], resources: [clusterTasks] });
    // RunTask's task tags and RegisterTaskDefinition's revision tags: ECS
    // authorises tag-on-create as ecs:TagResource on the new task or
    // revision; allowed only as part of those two calls.
    allow({
      sid: 'TagJupyterTasksAndRevisionsOnCreate',
      actions: ['ecs:TagResource'],
      resources: [clusterTasks, familyRevisions],
      conditions: { StringEquals: { 'ecs:CreateAction': ['RunTask', 'RegisterTaskDefinition'] } },
    });
    // No resource-level permissions for these three (Resource must be *).
    // A revision registered outside the family cannot be run (RunTask
    // above) and can name only the roles PassRole below allows.
    allow({
      sid: 'JupyterRevisions',
      actions: ['ecs:RegisterTaskDefinition', 'ecs:DescribeTaskDefinition', 'ecs:ListTaskDefinitions'],
      resources: ['*'],
    });
    allow({
      sid: 'PassJupyterTaskRoles',
      actions: ['iam:PassRole'],
      resources: [this.jupyterTaskDefinition.taskRole.roleArn, this.jupyterTaskDefinition.obtainExecutionRole().roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs-tasks.amazonaws.com' } },
    });
    allow({
      sid: 'PassEbsRole',
      actions: ['iam:PassRole'],
      resources: [this.ebsRole.roleArn],
      conditions: { StringEquals: { 'iam:PassedToService': 'ecs.amazonaws.com' } },
    });
    // Access point ARNs do not name their file system: creation is
    // authorised on the homes file system, reads on it and the account's
    // access points, tags only as part of CreateAccessPoint.
    allow({ sid: 'CreateHomeAccessPoints', actions: ['elasticfilesystem:CreateAccessPoint'], resources: [data.homes.fileSystemArn] });
    allow({
      sid: 'FindHomeAccessPoints',
      actions: ['elasticfilesystem:DescribeAccessPoints'],
      resources: [data.homes.fileSystemArn, accessPoints],
    });
    allow({
      sid: 'TagHomeAccessPointsOnCreate',
      actions: ['elasticfilesystem:TagResource'],
      resources: [data.homes.fileSystemArn, accessPoints],
      conditions: { StringEquals: { 'elasticfilesystem:CreateAction': 'CreateAccessPoint' } },
    });
  }

  /** What each service may do, from the adapters' documented permissions. */
  private grantService(service: ServiceName, role: iam.IRole, props: ComputeProps): void {
    const { data, events, ai } = props;
    if (service === 'snapshots') {
      data.vaultBucket.grantReadWrite(role, `${VAULT_PREFIX}/*`);
      data.vaultKey.grantEncryptDecrypt(role);
    } else {
      data.vaultBucket.grantRead(role, `${VAULT_PREFIX}/*`);
      data.vaultKey.grantDecrypt(role);
    }
    data.driftTable.grantReadWriteData(role);
    events.grantPublish(role);
    if (service === 'drift' || service === 'knowledge') events.grantConsume(role, service);
    if (service === 'drift') {
      props.alertTopic.grantPublish(role);
      ai.grantInvokeDriftAgent(role);
      if (props.config.alertEmail) {
        const stack = Stack.of(this);
        const domain = props.config.alertEmail.from.replace(/^.*@/, '').replace(/>.*$/, '');
        role.addToPrincipalPolicy(
          new iam.PolicyStatement({
            actions: ['ses:SendEmail', 'ses:SendRawEmail'],
            resources: [`arn:${stack.partition}:ses:${stack.region}:${stack.account}:identity/${domain}`],
          }),
        );
      }
    }
    if (service === 'knowledge') {
      data.knowledgeBucket.grantReadWrite(role);
      data.knowledgeBucket.grantDelete(role);
      ai.grantSync(role);
      ai.grantInvokeTransferAgent(role);
    }
  }
}
