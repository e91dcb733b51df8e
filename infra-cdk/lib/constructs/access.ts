/**
 * Access: the Cognito user pool (groups researcher, lab_admin, it_admin,
 * mapped to the platform's roles through `cognito:groups`), the portal's
 * app client, an optional SAML identity provider (the lab's Active
 * Directory), and the WorkSpaces Secure Browser portal through which users
 * reach the platform and their Jupyter: network settings on two private
 * subnets in two AZs, browser settings allowing only the platform's URL.
 *
 * Policy: self sign-up off, MFA optional with TOTP, strong passwords,
 * advanced security enforced; the user pool is RETAINed (it holds users).
 */
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import * as cognito from 'aws-cdk-lib/aws-cognito';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as web from 'aws-cdk-lib/aws-workspacesweb';
import { Construct } from 'constructs';
import { acknowledgeMaintenanceMode } from '../suppressions';
import { StageConfig } from '../config';

/** Cognito groups, one per platform role. */
export const ROLE_GROUPS = ['researcher', 'lab_admin', 'it_admin'] as const;

export interface AccessProps {
  readonly config: StageConfig;
  readonly vpc: ec2.IVpc;
  /** The platform's URL (the ALB's host name with TLS). */
  readonly publicUrl: string;
}

export class Access extends Construct {
  readonly userPool: cognito.UserPool;
  readonly client: cognito.UserPoolClient;
  readonly portal: web.CfnPortal;
  readonly browserSettings: web.CfnBrowserSettings;
  readonly networkSettings: web.CfnNetworkSettings;
  readonly issuer: string;

  constructor(scope: Construct, id: string, props: AccessProps) {
    super(scope, id);
    const { config, vpc, publicUrl } = props;
    const stack = Stack.of(this);

    this.userPool = new cognito.UserPool(this, 'Users', {
      selfSignUpEnabled: false,
      signInAliases: { email: true, username: true },
      mfa: cognito.Mfa.OPTIONAL,
      mfaSecondFactor: { otp: true, sms: false },
      passwordPolicy: { minLength: 14, requireDigits: true, requireLowercase: true, requireUppercase: true, requireSymbols: true },
      featurePlan: cognito.FeaturePlan.PLUS,
      standardThreatProtectionMode: cognito.StandardThreatProtectionMode.FULL_FUNCTION,
      accountRecovery: cognito.AccountRecovery.EMAIL_ONLY,
      deletionProtection: config.stage === 'prod',
      removalPolicy: RemovalPolicy.RETAIN,
    });
    for (const group of ROLE_GROUPS) {
      new cognito.CfnUserPoolGroup(this, `group-${group}`, {
        userPoolId: this.userPool.userPoolId,
        groupName: group,
        description: `West Tek role ${group}`,
      });
    }
    const providers = [cognito.UserPoolClientIdentityProvider.COGNITO];
    let saml: cognito.UserPoolIdentityProviderSaml | undefined;
    if (config.saml) {
      saml = new cognito.UserPoolIdentityProviderSaml(this, 'Saml', {
        userPool: this.userPool,
        name: config.saml.providerName,
        metadata: cognito.UserPoolIdentityProviderSamlMetadata.url(config.saml.metadataUrl),
        attributeMapping: { email: cognito.ProviderAttribute.other('http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress') },
      });
      providers.push(cognito.UserPoolClientIdentityProvider.custom(saml.providerName));
    }
    this.userPool.addDomain('Domain', { cognitoDomain: { domainPrefix: `westtek-${config.stage}-${stack.account}` } });
    this.client = this.userPool.addClient('Portal', {
      generateSecret: false,
      authFlows: { userSrp: true },
      oAuth: {
        flows: { authorizationCodeGrant: true },
        scopes: [cognito.OAuthScope.OPENID, cognito.OAuthScope.EMAIL, cognito.OAuthScope.PROFILE],
        callbackUrls: [`${publicUrl}/auth/callback`],
        logoutUrls: [`${publicUrl}/`],
      },
      supportedIdentityProviders: providers,
      accessTokenValidity: Duration.hours(1),
      idTokenValidity: Duration.hours(1),
      refreshTokenValidity: Duration.days(1),
      preventUserExistenceErrors: true,
    });
    if (saml) this.client.node.addDependency(saml);
    this.issuer = this.userPool.userPoolProviderUrl;

    // WorkSpaces Secure Browser.
    const browserSg = new ec2.SecurityGroup(this, 'BrowserSg', {
      vpc,
      description: 'WorkSpaces Secure Browser sessions: out to the platform only',
      allowAllOutbound: false,
    });
    browserSg.addEgressRule(ec2.Peer.ipv4(vpc.vpcCidrBlock), ec2.Port.tcp(443), 'the platform (internal ALB listener)');
    const subnets = vpc.selectSubnets({ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, onePerAz: true }).subnetIds.slice(0, 2);
    this.networkSettings = new web.CfnNetworkSettings(this, 'BrowserNetwork', {
      vpcId: vpc.vpcId,
      subnetIds: subnets,
      securityGroupIds: [browserSg.securityGroupId],
    });
    this.browserSettings = new web.CfnBrowserSettings(this, 'BrowserSettings', {
      browserPolicy: JSON.stringify({
        chromePolicies: {
          URLBlocklist: { value: ['*'] },
          URLAllowlist: { value: [publicUrl, `${publicUrl}/*`] },
          HomepageLocation: { value: publicUrl },
          RestoreOnStartup: { value: 4 },
          RestoreOnStartupURLs: { value: [publicUrl] },
          DownloadRestrictions: { value: 3 },
        },
      }),
    });
    const userSettings = new web.CfnUserSettings(this, 'UserSettings', {
      copyAllowed: 'Enabled',
      pasteAllowed: 'Enabled',
      downloadAllowed: 'Disabled',
      uploadAllowed: 'Enabled',
      printAllowed: 'Disabled',
      disconnectTimeoutInMinutes: 60,
      idleDisconnectTimeoutInMinutes: 15,
    });
    this.portal = new web.CfnPortal(this, 'Portal', {
      displayName: `West Tek ${config.stage}`,
      authenticationType: 'Standard',
      browserSettingsArn: this.browserSettings.attrBrowserSettingsArn,
      networkSettingsArn: this.networkSettings.attrNetworkSettingsArn,
      userSettingsArn: userSettings.attrUserSettingsArn,
    });
    if (config.saml) {
      new web.CfnIdentityProvider(this, 'BrowserIdp', {
        portalArn: this.portal.attrPortalArn,
        identityProviderName: config.saml.providerName,
        identityProviderType: 'SAML',
        identityProviderDetails: { MetadataURL: config.saml.metadataUrl },
      });
    }
    acknowledgeMaintenanceMode(this, 'WorkSpaces Secure Browser (AWS::WorkSpacesWeb::*)');
  }
}
