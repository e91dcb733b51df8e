/**
 * API: the internal Application Load Balancer in front of the four
 * services (users reach it through WorkSpaces Secure Browser), HTTPS only
 * with a TLS 1.2+ policy, path routing to the service that owns each route
 * (`services/*` routers; the platform routes every service serves — auth,
 * labs, audit, jobs, health — and the portal go to env-manager), and a WAF
 * web ACL: AWS managed rule groups, a rate limit per client IP and one per
 * lab (`X-Westtek-Lab` header: the per-lab quota the seed asks for, on top
 * of the services' own).
 *
 * Policy: invalid headers dropped; access logs to the access log bucket;
 * the platform's host name is a private hosted zone in the VPC.
 */
import { Duration } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as r53targets from 'aws-cdk-lib/aws-route53-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as wafv2 from 'aws-cdk-lib/aws-wafv2';
import { Construct } from 'constructs';
import { ServiceName, StageConfig } from '../config';
import { SERVICE_PORT } from './compute';

/**
 * Which paths go to which service (ALB path patterns, at most 5 a rule);
 * anything else goes to env-manager. Order matters: first match wins.
 */
export const ROUTES: readonly { service: Exclude<ServiceName, 'env-manager'>; paths: string[] }[] = [
  { service: 'snapshots', paths: ['/api/environments/snapshot', '/api/snapshots', '/api/snapshots/*', '/api/labs/*/storage', '/api/vault/*'] },
  { service: 'drift', paths: ['/api/environments/*/drift', '/api/environments/*/drift/*', '/api/drift/*', '/api/agents/drift/*'] },
  { service: 'drift', paths: ['/api/labs/*/alerts/*', '/api/labs/*/webhooks', '/api/labs/*/webhooks/*'] },
  { service: 'knowledge', paths: ['/api/knowledge/*', '/api/agents/knowledge/*', '/api/collaboration/*'] },
];

export interface ApiProps {
  readonly config: StageConfig;
  readonly vpc: ec2.IVpc;
  readonly services: Record<ServiceName, ecs.FargateService>;
  /** From the network: its rules to the services are made there. */
  readonly albSecurityGroup: ec2.ISecurityGroup;
  readonly accessLogs: s3.IBucket;
}

export class Api extends Construct {
  readonly alb: elbv2.ApplicationLoadBalancer;
  readonly listener: elbv2.ApplicationListener;
  readonly webAcl: wafv2.CfnWebACL;
  readonly zone: route53.PrivateHostedZone;
  readonly targetGroups: Record<ServiceName, elbv2.ApplicationTargetGroup>;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);
    const { config, vpc } = props;
    this.alb = new elbv2.ApplicationLoadBalancer(this, 'Alb', {
      vpc,
      internetFacing: false,
      vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
      securityGroup: props.albSecurityGroup,
      dropInvalidHeaderFields: true,
      deletionProtection: config.stage === 'prod',
    });
    this.alb.logAccessLogs(props.accessLogs, 'alb');
    // The platform's name resolves to the internal load balancer inside the
    // VPC (where the Secure Browser sessions run).
    this.zone = new route53.PrivateHostedZone(this, 'Zone', { zoneName: config.domainName, vpc });
    new route53.ARecord(this, 'AlbRecord', {
      zone: this.zone,
      target: route53.RecordTarget.fromAlias(new r53targets.LoadBalancerTarget(this.alb)),
    });

    this.listener = this.alb.addListener('Https', {
      port: 443,
      protocol: elbv2.ApplicationProtocol.HTTPS,
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      certificates: [acm.Certificate.fromCertificateArn(this, 'Cert', config.certificateArn)],
      open: false,
    });
    const targetGroups: Partial<Record<ServiceName, elbv2.ApplicationTargetGroup>> = {};
    for (const [name, service] of Object.entries(props.services) as [ServiceName, ecs.FargateService][]) {
      targetGroups[name] = new elbv2.ApplicationTargetGroup(this, `${name}-tg`, {
        vpc,
        port: SERVICE_PORT,
        protocol: elbv2.ApplicationProtocol.HTTP,
        targetType: elbv2.TargetType.IP,
        targets: [service],
        deregistrationDelay: Duration.seconds(30),
        healthCheck: { path: '/healthz', healthyHttpCodes: '200', interval: Duration.seconds(15) },
      });
    }
    this.targetGroups = targetGroups as Record<ServiceName, elbv2.ApplicationTargetGroup>;
    ROUTES.forEach((route, i) => {
      this.listener.addTargetGroups(`route-${i}`, {
        priority: 10 * (i + 1),
        conditions: [elbv2.ListenerCondition.pathPatterns(route.paths)],
        targetGroups: [this.targetGroups[route.service]],
      });
    });
    // Everything else (environments, Jupyter gateway, auth, labs, audit, jobs, portal).
    this.listener.addTargetGroups('default', { targetGroups: [this.targetGroups['env-manager']] });

    const visibility = (metricName: string) => ({ cloudWatchMetricsEnabled: true, sampledRequestsEnabled: true, metricName });
    const managed = (name: string, priority: number): wafv2.CfnWebACL.RuleProperty => ({
      name,
      priority,
      overrideAction: { none: {} },
      statement: { managedRuleGroupStatement: { vendorName: 'AWS', name } },
      visibilityConfig: visibility(name),
    });
    this.webAcl = new wafv2.CfnWebACL(this, 'WebAcl', {
      scope: 'REGIONAL',
      defaultAction: { allow: {} },
      visibilityConfig: visibility('westtek'),
      rules: [
        managed('AWSManagedRulesCommonRuleSet', 1),
        managed('AWSManagedRulesKnownBadInputsRuleSet', 2),
        managed('AWSManagedRulesAmazonIpReputationList', 3),
        {
          name: 'rate-per-ip',
          priority: 10,
          action: { block: {} },
          statement: { rateBasedStatement: { limit: config.wafRateLimit, aggregateKeyType: 'IP', evaluationWindowSec: 300 } },
          visibilityConfig: visibility('rate-per-ip'),
        },
        {
          name: 'rate-per-lab',
          priority: 11,
          action: { block: {} },
          statement: {
            rateBasedStatement: {
              limit: config.wafRateLimit * 5,
              aggregateKeyType: 'CUSTOM_KEYS',
              evaluationWindowSec: 300,
              customKeys: [{ header: { name: 'x-westtek-lab', textTransformations: [{ priority: 0, type: 'LOWERCASE' }] } }],
            },
          },
          visibilityConfig: visibility('rate-per-lab'),
        },
      ],
    });
    new wafv2.CfnWebACLAssociation(this, 'WebAclAssociation', {
      resourceArn: this.alb.loadBalancerArn,
      webAclArn: this.webAcl.attrArn,
    });
  }
}
