/**
 * Network: a VPC over two or more AZs with private subnets for everything
 * the platform runs, public subnets only for the NAT gateways (outbound
 * only) and the internet-facing load balancer, gateway endpoints for S3 and
 * DynamoDB and interface endpoints for ECR, CloudWatch Logs and Secrets
 * Manager, so image pulls, logs and secrets stay off the NAT.
 *
 * Policy: flow logs on (rejected and accepted traffic, to CloudWatch Logs);
 * no context lookups (the AZs come from the stack's environment).
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { StageConfig } from '../config';

export interface NetworkProps {
  readonly config: StageConfig;
  /** Port the services listen on, and Jupyter's. */
  readonly servicePort: number;
  readonly jupyterPort: number;
}

export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  /**
   * Attached to the tasks that use DocumentDB and EFS; the data stack lets
   * it in. Here, not in the data stack, so that the platform stack can add
   * rules to it without the data stack referring back to the platform.
   */
  readonly dataClients: ec2.SecurityGroup;
  /** The load balancer, the services behind it and the Jupyter tasks (rules between tiers live here). */
  readonly albSg: ec2.SecurityGroup;
  readonly servicesSg: ec2.SecurityGroup;
  readonly jupyterSg: ec2.SecurityGroup;
  /** The agent-actions Lambda: reaches the services' port and nothing else. */
  readonly agentActionsSg: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    const { config } = props;
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr(config.vpcCidr),
      availabilityZones: [...config.availabilityZones],
      natGateways: config.natGateways,
      subnetConfiguration: [
        { name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
        { name: 'isolated', subnetType: ec2.SubnetType.PRIVATE_ISOLATED, cidrMask: 24 },
      ],
      gatewayEndpoints: {
        S3: { service: ec2.GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: ec2.GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    const flowLogs = new logs.LogGroup(this, 'FlowLogs', {
      retention: config.logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });
    this.dataClients = new ec2.SecurityGroup(this, 'DataClients', {
      vpc: this.vpc,
      description: 'Tasks allowed to reach DocumentDB and EFS',
      allowAllOutbound: true,
    });
    this.albSg = new ec2.SecurityGroup(this, 'AlbSg', {
      vpc: this.vpc,
      description: 'Platform load balancer: HTTPS from inside the VPC (Secure Browser sessions)',
      allowAllOutbound: false,
    });
    this.albSg.addIngressRule(ec2.Peer.ipv4(this.vpc.vpcCidrBlock), ec2.Port.tcp(443), 'HTTPS from the VPC');
    this.servicesSg = new ec2.SecurityGroup(this, 'ServicesSg', {
      vpc: this.vpc,
      description: 'Platform services (reached from the load balancer only)',
      allowAllOutbound: true,
    });
    this.servicesSg.addIngressRule(this.albSg, ec2.Port.tcp(props.servicePort), 'from the load balancer');
    this.albSg.addEgressRule(this.servicesSg, ec2.Port.tcp(props.servicePort), 'to the services');
    this.jupyterSg = new ec2.SecurityGroup(this, 'JupyterSg', {
      vpc: this.vpc,
      description: 'Jupyter tasks: Jupyter reached from the platform services only',
      allowAllOutbound: true,
    });
    this.jupyterSg.addIngressRule(this.servicesSg, ec2.Port.tcp(props.jupyterPort), 'the gateway in env-manager');
    this.agentActionsSg = new ec2.SecurityGroup(this, 'AgentActionsSg', {
      vpc: this.vpc,
      description: 'agent-actions Lambda: POST /internal/agent-actions on the drift and knowledge services',
      allowAllOutbound: false,
    });
    this.agentActionsSg.addEgressRule(this.servicesSg, ec2.Port.tcp(props.servicePort), 'to the services');
    this.servicesSg.addIngressRule(this.agentActionsSg, ec2.Port.tcp(props.servicePort), 'from the agent-actions Lambda');
    const interfaces: Record<string, ec2.InterfaceVpcEndpointAwsService> = {
      EcrApi: ec2.InterfaceVpcEndpointAwsService.ECR,
      EcrDocker: ec2.InterfaceVpcEndpointAwsService.ECR_DOCKER,
      Logs: ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
      SecretsManager: ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    };
    for (const [name, service] of Object.entries(interfaces)) {
      this.vpc.addInterfaceEndpoint(name, {
        service,
        subnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS },
        privateDnsEnabled: true,
      });
    }
  }
}
