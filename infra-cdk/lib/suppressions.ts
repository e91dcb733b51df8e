/**
 * The cdk-nag findings this app accepts, each with its reason, in one
 * place per stack so a reviewer sees every exception at once. Wildcards in
 * IAM are accepted only where the resource is already scoped (a prefix of
 * one bucket, the indexes of one table, one cluster's tasks) or where the
 * API has no resource-level permissions.
 */
import { Stack, Validations } from 'aws-cdk-lib';
import { IConstruct } from 'constructs';
import { NagPackSuppression, NagSuppressions } from 'cdk-nag';

const IAM5_SCOPED: NagPackSuppression = {
  id: 'AwsSolutions-IAM5',
  reason:
    'Wildcards are scoped: object ARNs under one bucket (or one prefix of it), the indexes of the drift table, the tasks of this cluster (StopTask, DescribeTasks, and ecs:TagResource only with ecs:CreateAction RunTask/RegisterTaskDefinition), revisions of the Jupyter task definition family (RunTask with the ecs:cluster condition; tag-on-create as above), EFS access points of this account and region (their ARNs do not name the file system: DescribeAccessPoints, and elasticfilesystem:TagResource only with elasticfilesystem:CreateAction CreateAccessPoint), KMS GenerateDataKey* variants on one key, and S3 action groups (GetObject*, List*) from CDK grants on one bucket. Resource::* only for APIs without resource-level permissions: EC2 Describe*, ECS RegisterTaskDefinition, DescribeTaskDefinition and ListTaskDefinitions (a revision registered outside the Jupyter family cannot be run, and can name only the roles iam:PassRole allows).',
  appliesTo: [
    { regex: '/^Action::(s3|kms):[A-Za-z]+\\*$/' },
    { regex: '/^Resource::.*\\/\\*$/' },
    { regex: '/^Resource::.*:\\*$/' },
    'Resource::*',
  ],
};

export function suppressPlatform(stack: Stack): void {
  NagSuppressions.addStackSuppressions(stack, [
    IAM5_SCOPED,
    {
      id: 'AwsSolutions-IAM4',
      reason:
        'AWS managed service-role policies made for these exact roles: AWSLambdaBasicExecutionRole and AWSLambdaVPCAccessExecutionRole (the action Lambda writes its own logs and runs in the VPC to reach the services) and AmazonECSInfrastructureRolePolicyForVolumes (ECS creates and attaches the tasks\' EBS volumes; AWS keeps it in step with ECS).',
      appliesTo: [
        'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole',
        'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AmazonECSInfrastructureRolePolicyForVolumes',
        'Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole',
      ],
    },
    {
      id: 'AwsSolutions-ECS2',
      reason:
        'The plain environment values are resource names and ids (bucket, table, bus, queue URLs, Cognito issuer) that docs/aws-settings.json lists; the secrets (WESTTEK_MONGO_URL, WESTTEK_AGENT_ACTIONS_TOKEN) come from Secrets Manager as ECS secrets.',
    },
    {
      id: 'AwsSolutions-L1',
      reason: 'The stub action Lambda (used only when no agent-actions build is given) runs on the newest Python runtime aws-cdk-lib knows for the region; the real one is PROVIDED_AL2023.',
    },
    {
      id: 'AwsSolutions-COG2',
      reason: 'MFA is optional with TOTP for local users; lab users sign in through the lab\'s SAML IdP, which enforces its own MFA.',
    },
    {
      id: 'CdkNagValidationFailure',
      reason: 'The rule (security group CIDR check) cannot evaluate the VPC CIDR token; the only CIDR ingress is the VPC\'s own range on 443.',
    },
  ]);
}

/** The agent-actions token: a generated shared secret, not rotated by a Lambda. */
export function suppressAgentActionsToken(secret: IConstruct): void {
  NagSuppressions.addResourceSuppressions(secret, [
    {
      id: 'AwsSolutions-SMG4',
      reason:
        'Its users read it once (the drift and knowledge tasks as an ECS secret at start; the Lambda as an environment value CloudFormation resolves at deploy), so a scheduled rotation would leave the two sides disagreeing until both restart. Rotated by hand (README): a new value, then a new deployment of the two services and an update of the Lambda\'s configuration.',
    },
  ]);
}

export function suppressNetwork(stack: Stack): void {
  NagSuppressions.addStackSuppressions(stack, [
    {
      id: 'CdkNagValidationFailure',
      reason: 'The rule (security group CIDR check) cannot evaluate the VPC CIDR token; the only CIDR ingress rules are the VPC\'s own range (endpoints, load balancer on 443).',
    },
  ]);
}

export function suppressStateful(stack: Stack): void {
  NagSuppressions.addStackSuppressions(stack, [
    IAM5_SCOPED,
    {
      id: 'AwsSolutions-SMG4',
      reason:
        'Rotating the DocumentDB master password needs the rotation Lambda and a rebuild of the derived connection string secret; until the services read the credentials apart from the URL, rotate by redeploying (see README).',
    },
    {
      id: 'CdkNagValidationFailure',
      reason: 'DOC3 cannot evaluate the master user name given as a Secrets Manager dynamic reference; the credentials are generated and kept in Secrets Manager.',
    },
    {
      id: 'AwsSolutions-IAM4',
      reason: 'CDK\'s log-retention helper (DocumentDB log groups) uses AWSLambdaBasicExecutionRole for its own logs.',
      appliesTo: ['Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole'],
    },
    {
      id: 'AwsSolutions-L1',
      reason: 'CDK\'s log-retention helper Lambda: its runtime is chosen by aws-cdk-lib.',
    },
    {
      id: 'AwsSolutions-DOC5',
      reason:
        'DocumentDB exports only the `audit` and `profiler` log types to CloudWatch (both on); with audit_logs=all in the parameter group the audit log carries authenticate, createIndex and dropCollection events.',
      appliesTo: ['LogExport::authenticate', 'LogExport::createIndex', 'LogExport::dropCollection'],
    },
  ]);
}

/**
 * CloudFormation's registry marks some resource types this app needs as
 * "in maintenance mode" (warning W3697 of CDK's CloudFormation validation).
 * They are what the design asks for and still deployable; moving to their
 * successors is tracked apart.
 */
export function acknowledgeMaintenanceMode(scope: IConstruct, what: string): void {
  Validations.of(scope).acknowledge({
    id: 'CloudFormation-Validate::W3697',
    reason: `${what}: in maintenance mode in the CloudFormation registry, still supported and deployable; the design (ARCHITECTURE.md) names it; migrating to its successor is a follow-up.`,
  });
}
