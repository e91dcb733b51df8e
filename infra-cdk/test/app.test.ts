/**
 * The CDK app's assertions: what a deployer relies on, checked on the
 * synthesised templates of both stages (dummy account 111111111111).
 */
import { Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { buildApp } from '../lib/app';
import { SERVICES, ServiceName } from '../lib/config';
import { SETTING_SERVICES } from '../lib/settings';
import { StageStacks } from '../lib/stacks';

const { app, stages } = buildApp({ stages: ['dev', 'prod'], account: '111111111111', region: 'eu-west-1' });
const assembly = app.synth();
const dev = stages.dev as StageStacks;
const prod = stages.prod as StageStacks;
const t = (s: Stack) => Template.fromStack(s);

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

interface Setting {
  name: string;
  services: ServiceName[];
  /** The services that refuse to start without it. */
  required_for: ServiceName[];
  secret?: boolean;
}
const settingsFile = path.join(__dirname, '..', '..', 'docs', 'aws-settings.json');
const settingsDoc = JSON.parse(fs.readFileSync(settingsFile, 'utf8'));
/** Settings `westtek serve` reads (the Rust test checks these are its flags). */
const READ: Setting[] = settingsDoc.settings;
/** Settings the CDK app sets that the binary does not read yet (the ECS runtime's). */
const PENDING: Setting[] = settingsDoc.pending_settings ?? [];
const SETTINGS: Setting[] = [...READ, ...PENDING];
/** The Secrets Manager secret (logical id prefix) each secret setting comes from. */
const SECRET_SOURCES: Record<string, string> = {
  WESTTEK_MONGO_URL: 'MongoUrl',
  WESTTEK_AGENT_ACTIONS_TOKEN: 'AgentActionsToken',
};

/** The container definition of `westtek serve SERVICE` in a platform template. */
function serviceContainer(template: Template, service: ServiceName): Json {
  const defs = Object.values(template.findResources('AWS::ECS::TaskDefinition')) as Json[];
  const found = defs
    .flatMap((d) => d.Properties.ContainerDefinitions as Json[])
    .filter((c) => Array.isArray(c.Command) && c.Command[0] === 'serve' && c.Command[1] === service);
  expect(found).toHaveLength(1);
  return found[0];
}

/** The properties of the Jupyter task definition (containers `jupyter` and `agent`). */
function jupyterTaskDefinition(template: Template): Json {
  const defs = Object.values(template.findResources('AWS::ECS::TaskDefinition')) as Json[];
  const found = defs.filter((d) => (d.Properties.ContainerDefinitions as Json[]).some((c) => c.Name === 'jupyter'));
  expect(found).toHaveLength(1);
  return found[0].Properties;
}

function statementsOf(template: Template, roleLogicalIdPrefix: string): Json[] {
  const policies = template.findResources('AWS::IAM::Policy');
  return Object.entries(policies)
    .filter(([id]) => id.startsWith(roleLogicalIdPrefix))
    .flatMap(([, p]) => (p as Json).Properties.PolicyDocument.Statement as Json[]);
}

const actionsOf = (st: Json): string[] => (Array.isArray(st.Action) ? st.Action : [st.Action]);

describe('synth', () => {
  test('every stage synthesises into a cloud assembly', () => {
    const names = assembly.stacks.map((s) => s.stackName).sort();
    expect(names).toEqual(
      [
        'Westtek-dev-Network',
        'Westtek-dev-Platform',
        'Westtek-dev-Stateful',
        'Westtek-prod-Network',
        'Westtek-prod-Platform',
        'Westtek-prod-Stateful',
        'Westtek-prod-VaultReplica',
      ].sort(),
    );
    for (const s of assembly.stacks) expect(Object.keys(s.template.Resources).length).toBeGreaterThan(0);
  });

  test('synth needs no AWS lookup (no missing context)', () => {
    expect(assembly.manifest.missing ?? []).toEqual([]);
  });

  test('cdk-nag AwsSolutions: no unsuppressed error or warning in any stack', () => {
    for (const stage of [dev, prod]) {
      for (const stack of Object.values(stage)) {
        if (!stack) continue;
        const a = Annotations.fromStack(stack as Stack);
        expect(a.findError('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
        expect(a.findWarning('*', Match.stringLikeRegexp('AwsSolutions-.*'))).toEqual([]);
        expect(a.findError('*', Match.stringLikeRegexp('CdkNagValidationFailure.*'))).toEqual([]);
      }
    }
  });
});

describe('settings (docs/aws-settings.json)', () => {
  const template = t(dev.platform);
  test.each(SERVICES)('%s gets every required setting, secrets from Secrets Manager, no other WESTTEK_*', (service) => {
    const c = serviceContainer(template, service);
    const env = new Map<string, unknown>((c.Environment ?? []).map((e: Json) => [e.Name, e.Value]));
    const secrets = new Map<string, Json>((c.Secrets ?? []).map((e: Json) => [e.Name, e.ValueFrom]));
    const mine = SETTINGS.filter((s) => s.services.includes(service));
    for (const s of mine) {
      if (s.secret) {
        expect(env.has(s.name)).toBe(false);
        if (s.required_for.includes(service)) expect(secrets.has(s.name)).toBe(true);
        if (secrets.has(s.name)) expect(JSON.stringify(secrets.get(s.name))).toContain(SECRET_SOURCES[s.name]);
      } else if (s.required_for.includes(service)) {
        expect({ service, name: s.name, set: env.has(s.name) }).toEqual({ service, name: s.name, set: true });
      }
    }
    const allowed = new Set(mine.map((s) => s.name));
    const named = [...env.keys(), ...secrets.keys()].filter((n) => n.startsWith('WESTTEK_'));
    expect(named.filter((n) => !allowed.has(n))).toEqual([]);
    expect(env.get('WESTTEK_PROFILE')).toBe('aws');
  });

  test('lib/settings.ts gives each setting to the services docs/aws-settings.json lists, and nothing else', () => {
    const doc = Object.fromEntries(SETTINGS.map((s) => [s.name, [...s.services].sort()]));
    const cdk = Object.fromEntries(Object.entries(SETTING_SERVICES).map(([n, svc]) => [n, [...svc].sort()]));
    expect(cdk).toEqual(doc);
    // A setting is either read by the binary or pending, not both.
    const read = new Set(READ.map((s) => s.name));
    expect(PENDING.filter((s) => read.has(s.name))).toEqual([]);
    for (const s of PENDING) expect(s.required_for).toEqual([]);
  });

  test('env-manager gets the ECS runtime\'s settings from the CDK resources', () => {
    const c = serviceContainer(template, 'env-manager');
    const env = Object.fromEntries((c.Environment as Json[]).map((e) => [e.Name, e.Value]));
    const ref = (prefix: string) => Object.keys(template.toJSON().Resources).find((id) => id.startsWith(prefix));
    const compute = dev.platform.compute;
    expect(env.WESTTEK_ECS_CLUSTER).toEqual({ Ref: ref('ComputeCluster') });
    expect(env.WESTTEK_ECS_TASK_FAMILY).toBe(compute.jupyterTaskDefinition.family);
    expect(jupyterTaskDefinition(template).Family).toBe(env.WESTTEK_ECS_TASK_FAMILY);
    // The private (egress) subnets, comma-joined: id "," id ...
    const [separator, parts] = env.WESTTEK_ECS_SUBNETS['Fn::Join'] as [string, Json[]];
    expect(separator).toBe('');
    const ids = parts.filter((_, i) => i % 2 === 0).map((p) => JSON.stringify(p));
    expect(parts.filter((_, i) => i % 2 === 1)).toEqual(ids.slice(1).map(() => ','));
    expect(ids).toHaveLength(dev.network.network.vpc.privateSubnets.length);
    ids.forEach((id, i) => expect(id).toMatch(new RegExp(`RefNetworkVpcprivateSubnet${i + 1}Subnet`)));
    expect(JSON.stringify(env.WESTTEK_ECS_SECURITY_GROUPS)).toMatch(/NetworkJupyterSg.*GroupId/);
    expect(env.WESTTEK_ECS_EBS_ROLE_ARN).toEqual({ 'Fn::GetAtt': [ref('ComputeEbsRole'), 'Arn'] });
    expect(JSON.stringify(env.WESTTEK_ECS_EFS_FILE_SYSTEM_ID)).toContain('RefDataHomes');
    expect(env.WESTTEK_ECS_JUPYTER_PORT).toBe('8888');
    for (const service of SERVICES.filter((s) => s !== 'env-manager')) {
      const other = (serviceContainer(template, service).Environment as Json[]).map((e) => e.Name as string);
      expect(other.filter((n) => n.startsWith('WESTTEK_ECS_'))).toEqual([]);
    }
  });

  test('the Jupyter security group reaches the homes file system over NFS', () => {
    const ingress = Object.values(t(dev.stateful).findResources('AWS::EC2::SecurityGroupIngress')) as Json[];
    expect(ingress.some((r) => r.Properties.FromPort === 2049 && JSON.stringify(r.Properties.SourceSecurityGroupId).includes('NetworkJupyterSg'))).toBe(true);
  });

  test('the plain settings are stack outputs described by the setting\'s name', () => {
    const outputs = Object.values(template.toJSON().Outputs as Json).map((o) => (o as Json).Description);
    const plain = SETTINGS.filter((s) => !s.secret && s.required_for.length > 0 && s.name !== 'WESTTEK_BUS_QUEUES').map((s) => s.name);
    expect(outputs).toEqual(expect.arrayContaining(plain));
    expect(outputs).toEqual(expect.arrayContaining(PENDING.map((s) => s.name)));
  });

  test('the consumer services get their own queue only', () => {
    const drift = serviceContainer(template, 'drift').Environment.find((e: Json) => e.Name === 'WESTTEK_BUS_QUEUES');
    const knowledge = serviceContainer(template, 'knowledge').Environment.find((e: Json) => e.Name === 'WESTTEK_BUS_QUEUES');
    expect(JSON.stringify(drift.Value)).toMatch(/^\{"Fn::Join":\["",\["drift=/);
    expect(JSON.stringify(knowledge.Value)).toMatch(/^\{"Fn::Join":\["",\["knowledge=/);
  });
});

describe('data (stateful stack)', () => {
  const template = t(dev.stateful);

  test('every bucket is encrypted, private and TLS-only', () => {
    for (const s of [dev.stateful, prod.stateful, prod.replica as Stack]) {
      const tpl = t(s);
      const buckets = tpl.findResources('AWS::S3::Bucket');
      expect(Object.keys(buckets).length).toBeGreaterThan(0);
      for (const [id, b] of Object.entries(buckets) as [string, Json][]) {
        expect({ id, enc: b.Properties.BucketEncryption?.ServerSideEncryptionConfiguration?.length }).toEqual({ id, enc: 1 });
        expect(b.Properties.PublicAccessBlockConfiguration).toEqual({
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        });
        expect(b.DeletionPolicy).toBe('Retain');
      }
      const policies = Object.values(tpl.findResources('AWS::S3::BucketPolicy')) as Json[];
      expect(policies.length).toBe(Object.keys(buckets).length);
      for (const p of policies) {
        const deny = (p.Properties.PolicyDocument.Statement as Json[]).find((st) => st.Effect === 'Deny');
        expect(deny?.Condition?.Bool?.['aws:SecureTransport']).toBe('false');
      }
    }
  });

  test('the vault: versioned, SSE-KMS, Standard -> IA at 30 d -> Deep Archive at 365 d', () => {
    template.hasResourceProperties('AWS::S3::Bucket', {
      VersioningConfiguration: { Status: 'Enabled' },
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [
          Match.objectLike({ ServerSideEncryptionByDefault: Match.objectLike({ SSEAlgorithm: 'aws:kms' }), BucketKeyEnabled: true }),
        ],
      },
      LifecycleConfiguration: {
        Rules: Match.arrayWith([
          Match.objectLike({
            Status: 'Enabled',
            Transitions: [
              { StorageClass: 'STANDARD_IA', TransitionInDays: 30 },
              { StorageClass: 'DEEP_ARCHIVE', TransitionInDays: 365 },
            ],
          }),
        ]),
      },
    });
  });

  test('prod replicates the vault to another region under KMS; dev does not', () => {
    const replicated = (s: Stack) =>
      Object.values(t(s).findResources('AWS::S3::Bucket')).filter((b) => (b as Json).Properties.ReplicationConfiguration);
    expect(replicated(dev.stateful)).toHaveLength(0);
    const [vault] = replicated(prod.stateful) as Json[];
    const rule = vault.Properties.ReplicationConfiguration.Rules[0];
    expect(rule.Status).toBe('Enabled');
    expect(rule.Destination.EncryptionConfiguration.ReplicaKmsKeyID).toContain(':kms:eu-central-1:');
    expect(rule.SourceSelectionCriteria.SseKmsEncryptedObjects.Status).toBe('Enabled');
    expect(prod.replica?.region).toBe('eu-central-1');
  });

  test('the drift table as crates/drift-dynamodb documents it', () => {
    template.hasResourceProperties('AWS::DynamoDB::GlobalTable', {
      KeySchema: [
        { AttributeName: 'pk', KeyType: 'HASH' },
        { AttributeName: 'sk', KeyType: 'RANGE' },
      ],
      BillingMode: 'PAY_PER_REQUEST',
      TimeToLiveSpecification: { AttributeName: 'expires_at', Enabled: true },
      SSESpecification: Match.objectLike({ SSEEnabled: true, SSEType: 'KMS' }),
      GlobalSecondaryIndexes: [
        Match.objectLike({ IndexName: 'gsi1', KeySchema: [{ AttributeName: 'gsi1pk', KeyType: 'HASH' }, { AttributeName: 'gsi1sk', KeyType: 'RANGE' }], Projection: { ProjectionType: 'ALL' } }),
        Match.objectLike({ IndexName: 'gsi2', KeySchema: [{ AttributeName: 'gsi2pk', KeyType: 'HASH' }, { AttributeName: 'gsi2sk', KeyType: 'RANGE' }], Projection: { ProjectionType: 'ALL' } }),
      ],
      Replicas: [Match.objectLike({ PointInTimeRecoverySpecification: { PointInTimeRecoveryEnabled: true } })],
    });
  });

  test('DocumentDB, EFS and keys: encrypted, retained; 1 instance in dev, 3 in prod', () => {
    template.hasResource('AWS::DocDB::DBCluster', { Properties: Match.objectLike({ StorageEncrypted: true }), DeletionPolicy: 'Retain' });
    template.resourceCountIs('AWS::DocDB::DBInstance', 1);
    t(prod.stateful).resourceCountIs('AWS::DocDB::DBInstance', 3);
    template.hasResource('AWS::EFS::FileSystem', { Properties: Match.objectLike({ Encrypted: true }), DeletionPolicy: 'Retain' });
    for (const k of Object.values(template.findResources('AWS::KMS::Key')) as Json[]) {
      expect(k.Properties.EnableKeyRotation).toBe(true);
      expect(k.DeletionPolicy).toBe('Retain');
    }
  });
});

describe('events', () => {
  const template = t(dev.platform);
  test('one queue and one DLQ per consumer group, SSE on, redrive after 5', () => {
    const queues = Object.values(template.findResources('AWS::SQS::Queue')) as Json[];
    expect(queues).toHaveLength(4);
    for (const q of queues) expect(q.Properties.SqsManagedSseEnabled).toBe(true);
    const main = queues.filter((q) => q.Properties.RedrivePolicy);
    expect(main).toHaveLength(2);
    for (const q of main) {
      expect(q.Properties.RedrivePolicy.maxReceiveCount).toBe(5);
      expect(q.Properties.VisibilityTimeout).toBe(60);
    }
    const rules = Object.values(template.findResources('AWS::Events::Rule')) as Json[];
    expect(rules).toHaveLength(2);
    for (const r of rules) {
      expect(r.Properties.EventPattern).toEqual({ source: ['westtek'] });
      expect(r.Properties.Targets).toHaveLength(1);
      expect(r.Properties.Targets[0].DeadLetterConfig).toBeDefined();
    }
  });
});

describe('compute', () => {
  const template = t(dev.platform);
  const jupyter = () => jupyterTaskDefinition(template);

  test('one Fargate service per platform service, private, no public IP', () => {
    const services = Object.values(template.findResources('AWS::ECS::Service')) as Json[];
    expect(services).toHaveLength(SERVICES.length);
    for (const s of services) {
      expect(s.Properties.LaunchType).toBe('FARGATE');
      expect(s.Properties.NetworkConfiguration.AwsvpcConfiguration.AssignPublicIp).toBe('DISABLED');
    }
  });

  test('the Jupyter task: EBS configured at launch at /opt/jupyter, EFS access point at /home/researcher with TLS and IAM', () => {
    const td = jupyter();
    expect(td.Volumes).toEqual(
      expect.arrayContaining([
        { Name: 'env', ConfiguredAtLaunch: true },
        {
          Name: 'home',
          EFSVolumeConfiguration: expect.objectContaining({
            TransitEncryption: 'ENABLED',
            AuthorizationConfig: expect.objectContaining({ IAM: 'ENABLED', AccessPointId: expect.anything() }),
          }),
        },
      ]),
    );
    const containers = td.ContainerDefinitions as Json[];
    expect(containers.map((c) => c.Name).sort()).toEqual(['agent', 'jupyter']);
    for (const c of containers) {
      expect(c.MountPoints).toEqual(
        expect.arrayContaining([
          expect.objectContaining({ SourceVolume: 'env', ContainerPath: '/opt/jupyter' }),
          expect.objectContaining({ SourceVolume: 'home', ContainerPath: '/home/researcher' }),
        ]),
      );
    }
    const agent = containers.find((c) => c.Name === 'agent') as Json;
    expect(agent.Command[0]).toBe('agent');
  });

  test('log groups have a retention and a KMS key', () => {
    const groups = Object.values(template.findResources('AWS::Logs::LogGroup')) as Json[];
    expect(groups.length).toBeGreaterThan(0);
    for (const g of groups) expect(g.Properties.RetentionInDays).toBeGreaterThan(0);
  });
});

describe('IAM least privilege', () => {
  const template = t(dev.platform);
  test('a consumer can read its own queue only', () => {
    const drift = statementsOf(template, 'ComputedrifttaskTaskRole');
    const sqs = drift.filter((st) => actionsOf(st).some((a) => a.startsWith('sqs:')));
    expect(sqs).toHaveLength(1);
    expect(JSON.stringify(sqs[0].Resource)).toContain('Eventsdriftqueue');
    expect(JSON.stringify(drift)).not.toContain('Eventsknowledgequeue');
    const env = statementsOf(template, 'ComputeenvmanagertaskTaskRole');
    expect(env.some((st) => actionsOf(st).some((a) => a.startsWith('sqs:')))).toBe(false);
  });

  test('each service invokes only its own agent; only snapshots writes the vault', () => {
    const invokes = (prefix: string) =>
      statementsOf(template, prefix).filter((st) => actionsOf(st).includes('bedrock:InvokeAgent')).map((st) => JSON.stringify(st.Resource));
    expect(invokes('ComputedrifttaskTaskRole').join()).toContain('AiDriftAgentAlias');
    expect(invokes('ComputedrifttaskTaskRole').join()).not.toContain('AiTransferAgentAlias');
    expect(invokes('ComputeknowledgetaskTaskRole').join()).toContain('AiTransferAgentAlias');
    expect(invokes('ComputeknowledgetaskTaskRole').join()).not.toContain('AiDriftAgentAlias');
    expect(invokes('ComputeenvmanagertaskTaskRole')).toEqual([]);
    const writes = (prefix: string) => statementsOf(template, prefix).some((st) => actionsOf(st).some((a) => a.startsWith('s3:PutObject')) && JSON.stringify(st.Resource).includes('DataVault'));
    expect(writes('ComputesnapshotstaskTaskRole')).toBe(true);
    for (const other of ['Computeenvmanager', 'Computedrift', 'Computeknowledge']) expect(writes(`${other}taskTaskRole`)).toBe(false);
  });

  test('the Jupyter task (agent) reaches only its environment\'s prefix of the vault', () => {
    const st = statementsOf(template, 'ComputeJupyterTaskTaskRole');
    const s3 = st.filter((s) => actionsOf(s).some((a) => a.startsWith('s3:')));
    expect(s3.length).toBeGreaterThan(0);
    for (const s of s3) {
      const where = JSON.stringify(s.Resource) + JSON.stringify(s.Condition ?? {});
      expect(where).toContain('vault/environments/${aws:PrincipalTag/environment}/*');
    }
    expect(JSON.stringify(st)).not.toContain('"*"');
  });
  describe('env-manager runs the Jupyter tasks with what crates/runtime-ecs documents, and no more', () => {
    const st = statementsOf(template, 'ComputeenvmanagertaskTaskRole');
    const runtime = st.filter((s) => actionsOf(s).some((a) => /^(ecs|iam|elasticfilesystem|ec2):/.test(a)));
    const withAction = (action: string) => runtime.filter((s) => actionsOf(s).includes(action));
    const family = dev.platform.compute.jupyterTaskDefinition.family;
    const familyRevisions = `arn:aws:ecs:eu-west-1:111111111111:task-definition/${family}:*`;
    const clusterId = Object.keys(template.toJSON().Resources).find((id) => id.startsWith('ComputeCluster')) as string;
    const clusterTasks = { 'Fn::Join': ['', ['arn:aws:ecs:eu-west-1:111111111111:task/', { Ref: clusterId }, '/*']] };

    test('exactly the documented actions', () => {
      expect([...new Set(runtime.flatMap(actionsOf))].sort()).toEqual(
        [
          'ecs:DescribeTaskDefinition',
          'ecs:DescribeTasks',
          'ecs:ListTaskDefinitions',
          'ecs:RegisterTaskDefinition',
          'ecs:RunTask',
          'ecs:StopTask',
          'ecs:TagResource',
          'elasticfilesystem:CreateAccessPoint',
          'elasticfilesystem:DescribeAccessPoints',
          'elasticfilesystem:TagResource',
          'iam:PassRole',
        ].sort(),
      );
    });

    test('RunTask: only revisions of the Jupyter family, only in the platform cluster', () => {
      const run = withAction('ecs:RunTask');
      expect(run).toHaveLength(1);
      expect(actionsOf(run[0])).toEqual(['ecs:RunTask']);
      expect(run[0].Resource).toBe(familyRevisions);
      expect(run[0].Condition).toEqual({ ArnEquals: { 'ecs:cluster': { 'Fn::GetAtt': [clusterId, 'Arn'] } } });
      expect(st.some((s) => actionsOf(s).some((a) => a === '*' || a === 'ecs:*'))).toBe(false);
    });

    test('StopTask and DescribeTasks on the cluster\'s tasks', () => {
      for (const action of ['ecs:StopTask', 'ecs:DescribeTasks']) {
        const found = withAction(action);
        expect(found).toHaveLength(1);
        expect(found[0].Resource).toEqual(clusterTasks);
      }
    });

    test('ecs:TagResource only as part of RunTask and RegisterTaskDefinition, on the cluster\'s tasks and the family', () => {
      const tag = withAction('ecs:TagResource');
      expect(tag).toHaveLength(1);
      expect(tag[0].Condition).toEqual({ StringEquals: { 'ecs:CreateAction': ['RunTask', 'RegisterTaskDefinition'] } });
      expect(tag[0].Resource).toEqual(expect.arrayContaining([familyRevisions, clusterTasks]));
      expect(tag[0].Resource).toHaveLength(2);
    });

    test('Resource * only for the task definition calls without resource-level permissions', () => {
      const star = st.filter((s) => s.Resource === '*' || (Array.isArray(s.Resource) && s.Resource.includes('*')));
      expect(star.flatMap(actionsOf).sort()).toEqual(['ecs:DescribeTaskDefinition', 'ecs:ListTaskDefinitions', 'ecs:RegisterTaskDefinition']);
      expect(star.every((s) => s.Condition === undefined)).toBe(true);
    });

    test('iam:PassRole: the Jupyter task and execution roles to ECS tasks, the EBS role to ECS', () => {
      const pass = withAction('iam:PassRole');
      const passed = pass.map((s) => ({ to: s.Condition?.StringEquals?.['iam:PassedToService'], roles: JSON.stringify(s.Resource) }));
      expect(passed).toHaveLength(2);
      const tasks = passed.find((p) => p.to === 'ecs-tasks.amazonaws.com');
      expect(tasks?.roles).toMatch(/ComputeJupyterTaskTaskRole/);
      expect(tasks?.roles).toMatch(/ComputeJupyterTaskExecutionRole/);
      expect(tasks?.roles).not.toMatch(/EbsRole/);
      const ebs = passed.find((p) => p.to === 'ecs.amazonaws.com');
      expect(ebs?.roles).toMatch(/^\{"Fn::GetAtt":\["ComputeEbsRole[0-9A-F]+","Arn"\]\}$/);
    });

    test('EFS: access points made on the homes file system only, tagged only on create, never deleted', () => {
      const create = withAction('elasticfilesystem:CreateAccessPoint');
      expect(create).toHaveLength(1);
      expect(JSON.stringify(create[0].Resource)).toMatch(/^\{"Fn::GetStackOutput":.*DataHomes.*\}$/);
      const tag = withAction('elasticfilesystem:TagResource');
      expect(tag).toHaveLength(1);
      expect(tag[0].Condition).toEqual({ StringEquals: { 'elasticfilesystem:CreateAction': 'CreateAccessPoint' } });
      expect(JSON.stringify(st)).not.toContain('DeleteAccessPoint');
      expect(st.some((s) => actionsOf(s).some((a) => a.startsWith('ec2:')))).toBe(false);
    });
  });

  describe('the agent-actions token', () => {
    const secrets = template.findResources('AWS::SecretsManager::Secret');
    const tokenId = Object.keys(secrets).find((id) => id.startsWith('AgentActionsToken')) as string;

    test('is a generated Secrets Manager secret', () => {
      expect(tokenId).toBeDefined();
      expect(secrets[tokenId].Properties.GenerateSecretString).toEqual(expect.objectContaining({ PasswordLength: 48, ExcludePunctuation: true }));
    });

    test.each(SERVICES)('%s: an ECS secret only for drift and knowledge, readable by their execution role only', (service) => {
      const c = serviceContainer(template, service);
      const secret = ((c.Secrets ?? []) as Json[]).find((e) => e.Name === 'WESTTEK_AGENT_ACTIONS_TOKEN');
      const reads = statementsOf(template, `Compute${service.replace('-', '')}taskExecutionRole`).some(
        (s) => actionsOf(s).includes('secretsmanager:GetSecretValue') && JSON.stringify(s.Resource).includes(tokenId),
      );
      const gets = service === 'drift' || service === 'knowledge';
      expect(secret?.ValueFrom ?? null).toEqual(gets ? { Ref: tokenId } : null);
      expect(reads).toBe(gets);
      expect(JSON.stringify(statementsOf(template, `Compute${service.replace('-', '')}taskTaskRole`))).not.toContain(tokenId);
    });

    test('the Lambda reaches the drift and knowledge services inside the VPC by their Cloud Map names', () => {
      const fns = Object.values(template.findResources('AWS::Lambda::Function')) as Json[];
      const [fn] = fns.filter((f) => f.Properties.Description?.includes('agent-actions'));
      const vars = fn.Properties.Environment.Variables;
      expect(vars.WESTTEK_AGENT_ACTIONS_DRIFT_URL).toBe('http://drift.westtek.internal:8080');
      expect(vars.WESTTEK_AGENT_ACTIONS_KNOWLEDGE_URL).toBe('http://knowledge.westtek.internal:8080');
      expect(JSON.stringify(fn.Properties.VpcConfig.SecurityGroupIds)).toMatch(/NetworkAgentActionsSg/);
      expect(JSON.stringify(fn.Properties.VpcConfig.SubnetIds)).toMatch(/privateSubnet/);
      template.hasResourceProperties('AWS::ServiceDiscovery::PrivateDnsNamespace', { Name: 'westtek.internal' });
      const registered = (Object.values(template.findResources('AWS::ECS::Service')) as Json[]).filter((svc) => svc.Properties.ServiceRegistries);
      expect(registered).toHaveLength(2);
      const names = Object.values(template.findResources('AWS::ServiceDiscovery::Service')).map((r) => (r as Json).Properties.Name).sort();
      expect(names).toEqual(['drift', 'knowledge']);
      // The Lambda's group may only reach the services' port; the services let it in on that port.
      const net = t(dev.network);
      const sgs = net.findResources('AWS::EC2::SecurityGroup');
      const lambdaSg = Object.keys(sgs).find((id) => id.startsWith('NetworkAgentActionsSg')) as string;
      expect(sgs[lambdaSg].Properties.SecurityGroupEgress).toBeUndefined();
      const egress = (Object.values(net.findResources('AWS::EC2::SecurityGroupEgress')) as Json[]).filter(
        (r) => JSON.stringify(r.Properties.GroupId) === JSON.stringify({ 'Fn::GetAtt': [lambdaSg, 'GroupId'] }),
      );
      expect(egress).toEqual([
        {
          Type: 'AWS::EC2::SecurityGroupEgress',
          Properties: expect.objectContaining({
            IpProtocol: 'tcp',
            FromPort: 8080,
            ToPort: 8080,
            DestinationSecurityGroupId: { 'Fn::GetAtt': [expect.stringMatching(/^NetworkServicesSg/), 'GroupId'] },
          }),
        },
      ]);
      net.hasResourceProperties('AWS::EC2::SecurityGroupIngress', {
        FromPort: 8080,
        ToPort: 8080,
        SourceSecurityGroupId: { 'Fn::GetAtt': [lambdaSg, 'GroupId'] },
      });
    });

    test('the Lambda gets the same secret (a dynamic reference resolved at deploy, no value in the template)', () => {
      const fns = Object.values(template.findResources('AWS::Lambda::Function')) as Json[];
      const actions = fns.filter((f) => f.Properties.Description?.includes('agent-actions'));
      expect(actions).toHaveLength(1);
      expect(actions[0].Properties.Environment.Variables.WESTTEK_AGENT_ACTIONS_TOKEN).toEqual({
        'Fn::Join': ['', ['{{resolve:secretsmanager:', { Ref: tokenId }, ':SecretString:::}}']],
      });
    });
  });
});

describe('api and access', () => {
  const template = t(dev.platform);
  test('HTTPS only, TLS 1.2+, WAF with managed rules and rate limits', () => {
    const listeners = Object.values(template.findResources('AWS::ElasticLoadBalancingV2::Listener')) as Json[];
    expect(listeners).toHaveLength(1);
    expect(listeners[0].Properties.Protocol).toBe('HTTPS');
    expect(listeners[0].Properties.SslPolicy).toMatch(/TLS13-1-2|TLS-1-2/);
    template.hasResourceProperties('AWS::WAFv2::WebACL', {
      Rules: Match.arrayWith([
        Match.objectLike({ Statement: { ManagedRuleGroupStatement: { VendorName: 'AWS', Name: 'AWSManagedRulesCommonRuleSet' } } }),
        Match.objectLike({ Statement: { RateBasedStatement: Match.objectLike({ AggregateKeyType: 'IP' }) } }),
        Match.objectLike({ Statement: { RateBasedStatement: Match.objectLike({ AggregateKeyType: 'CUSTOM_KEYS' }) } }),
      ]),
    });
    template.resourceCountIs('AWS::WAFv2::WebACLAssociation', 1);
    template.hasResourceProperties('AWS::ElasticLoadBalancingV2::LoadBalancer', { Scheme: 'internal' });
    template.hasResourceProperties('AWS::Route53::HostedZone', { Name: 'westtek-dev.example.org.', VPCs: Match.anyValue() });
  });

  test('path routing: each service\'s own routes go to it, everything else to env-manager', () => {
    const tgOf = (name: string) => Object.keys(template.findResources('AWS::ElasticLoadBalancingV2::TargetGroup')).find((id) => id.startsWith(`Api${name.replace('-', '')}tg`));
    const rules = Object.values(template.findResources('AWS::ElasticLoadBalancingV2::ListenerRule')) as Json[];
    const routed = (path: string) =>
      rules
        .filter((r) => (r.Properties.Conditions as Json[]).some((c) => (c.PathPatternConfig?.Values as string[]).includes(path)))
        .map((r) => r.Properties.Actions[0].TargetGroupArn.Ref);
    expect(routed('/api/snapshots/*')).toEqual([tgOf('snapshots')]);
    expect(routed('/api/drift/*')).toEqual([tgOf('drift')]);
    expect(routed('/api/environments/*/drift')).toEqual([tgOf('drift')]);
    expect(routed('/api/knowledge/*')).toEqual([tgOf('knowledge')]);
    const listener = Object.values(template.findResources('AWS::ElasticLoadBalancingV2::Listener'))[0] as Json;
    expect(listener.Properties.DefaultActions[0].TargetGroupArn.Ref).toBe(tgOf('env-manager'));
  });

  test('Cognito groups and a Secure Browser allowing only the platform URL on 2 subnets', () => {
    const groups = Object.values(template.findResources('AWS::Cognito::UserPoolGroup')) as Json[];
    expect(groups.map((g) => g.Properties.GroupName).sort()).toEqual(['it_admin', 'lab_admin', 'researcher']);
    const ns = Object.values(template.findResources('AWS::WorkSpacesWeb::NetworkSettings')) as Json[];
    expect(ns[0].Properties.SubnetIds).toHaveLength(2);
    const bs = Object.values(template.findResources('AWS::WorkSpacesWeb::BrowserSettings')) as Json[];
    const policy = JSON.parse(bs[0].Properties.BrowserPolicy);
    expect(policy.chromePolicies.URLBlocklist.value).toEqual(['*']);
    expect(policy.chromePolicies.URLAllowlist.value).toContain('https://westtek-dev.example.org');
  });

  test('alarms on 5xx, DLQ depth, snapshot failures and drift delivery failures', () => {
    const alarms = Object.values(template.findResources('AWS::CloudWatch::Alarm')) as Json[];
    const metrics = alarms.map((a) => a.Properties.MetricName);
    expect(metrics).toEqual(
      expect.arrayContaining(['HTTPCode_ELB_5XX_Count', 'HTTPCode_Target_5XX_Count', 'ApproximateNumberOfMessagesVisible', 'SnapshotFailures', 'DriftAlertsDeadLettered']),
    );
    for (const a of alarms) expect(a.Properties.AlarmActions).toHaveLength(1);
  });
});
