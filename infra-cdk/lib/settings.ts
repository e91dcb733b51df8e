/**
 * The services' container settings: which `WESTTEK_*` variable each
 * platform service gets, mirroring `docs/aws-settings.json` (a test holds
 * the two together: its `settings` and its `pending_settings`, the ones
 * the binary does not read yet), and how a value is provided (plain or
 * from Secrets Manager).
 *
 * Policy: a service's task definition carries exactly the settings listed
 * for it and no other `WESTTEK_*` variable; secrets are ECS secrets, never
 * plain environment values.
 */
import * as ecs from 'aws-cdk-lib/aws-ecs';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import { ServiceName } from './config';

const ALL: readonly ServiceName[] = ['env-manager', 'snapshots', 'drift', 'knowledge'];

/** Which services read each setting (as in docs/aws-settings.json). */
export const SETTING_SERVICES = {
  WESTTEK_PROFILE: ALL,
  WESTTEK_PUBLIC_URL: ALL,
  WESTTEK_VAULT_URL: ALL,
  WESTTEK_VAULT_KMS_KEY_ID: ALL,
  WESTTEK_MONGO_URL: ALL,
  WESTTEK_MONGO_DATABASE: ALL,
  WESTTEK_DRIFT_TABLE: ALL,
  WESTTEK_EVENT_BUS: ALL,
  WESTTEK_BUS_QUEUES: ['drift', 'knowledge'],
  WESTTEK_ALERT_SES_FROM: ['drift'],
  WESTTEK_ALERT_TO: ['drift'],
  WESTTEK_ALERT_SMS: ['drift'],
  WESTTEK_KNOWLEDGE_URL: ['drift', 'knowledge'],
  WESTTEK_KNOWLEDGE_BASE_ID: ['knowledge'],
  WESTTEK_KNOWLEDGE_DATA_SOURCE_ID: ['knowledge'],
  WESTTEK_DRIFT_AGENT_ID: ['drift'],
  WESTTEK_DRIFT_AGENT_ALIAS_ID: ['drift'],
  WESTTEK_TRANSFER_AGENT_ID: ['knowledge'],
  WESTTEK_TRANSFER_AGENT_ALIAS_ID: ['knowledge'],
  WESTTEK_COGNITO_ISSUER: ALL,
  WESTTEK_COGNITO_CLIENT_ID: ALL,
  WESTTEK_SECURE_BROWSER_URL: ['env-manager'],
  WESTTEK_AGENT_ACTIONS_TOKEN: ['drift', 'knowledge'],
  // The ECS runtime's (crates/runtime-ecs `EcsSettings`): set by the CDK
  // app, listed under `pending_settings` in docs/aws-settings.json until
  // `westtek serve` reads them.
  WESTTEK_ECS_CLUSTER: ['env-manager'],
  WESTTEK_ECS_TASK_FAMILY: ['env-manager'],
  WESTTEK_ECS_SUBNETS: ['env-manager'],
  WESTTEK_ECS_SECURITY_GROUPS: ['env-manager'],
  WESTTEK_ECS_EBS_ROLE_ARN: ['env-manager'],
  WESTTEK_ECS_EFS_FILE_SYSTEM_ID: ['env-manager'],
  WESTTEK_ECS_JUPYTER_PORT: ['env-manager'],
} as const satisfies Record<string, readonly ServiceName[]>;

export type SettingName = keyof typeof SETTING_SERVICES;

/** A setting's value: plain text, or a Secrets Manager secret (ECS secret). */
export type SettingValue = string | { readonly secret: secretsmanager.ISecret };

/**
 * Values of the settings. A value may depend on the service (the bus
 * queues); an absent optional value is simply not set.
 */
export type SettingValues = {
  readonly [K in SettingName]?: SettingValue | ((service: ServiceName) => SettingValue);
};

/** The environment and secrets of one service's container. */
export function containerSettings(
  service: ServiceName,
  values: SettingValues,
): { environment: Record<string, string>; secrets: Record<string, ecs.Secret> } {
  const environment: Record<string, string> = {};
  const secrets: Record<string, ecs.Secret> = {};
  for (const [name, services] of Object.entries(SETTING_SERVICES) as [SettingName, readonly ServiceName[]][]) {
    if (!services.includes(service)) continue;
    const raw = values[name];
    if (raw === undefined) continue;
    const value = typeof raw === 'function' ? raw(service) : raw;
    if (typeof value === 'string') environment[name] = value;
    else secrets[name] = ecs.Secret.fromSecretsManager(value.secret);
  }
  return { environment, secrets };
}
