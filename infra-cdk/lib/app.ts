/**
 * Builds the CDK app: the stacks of the chosen stages, with cdk-nag's AWS
 * Solutions checks applied as an aspect (findings become synth errors
 * unless suppressed with a reason).
 */
import { App, AppProps, Aspects } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import { AwsSolutionsChecks } from 'cdk-nag';
import * as fs from 'node:fs';
import { Stage, stageConfig } from './config';
import featureFlags from './feature-flags.json';
import { buildStage, StageStacks } from './stacks';

export interface BuildOptions {
  readonly stages: readonly Stage[];
  readonly account?: string;
  readonly region?: string;
  /** Path of the agent-actions Lambda zip (`bootstrap` inside). */
  readonly agentActionsZip?: string;
  readonly appProps?: AppProps;
}

export function buildApp(options: BuildOptions): { app: App; stages: Partial<Record<Stage, StageStacks>> } {
  // The feature flags `cdk init` would write into cdk.json (copied from
  // aws-cdk-lib's recommended set), here so tests and the CLI agree.
  const app = new App({ ...options.appProps, context: { ...featureFlags, ...options.appProps?.context } });
  let code: lambda.Code | undefined;
  if (options.agentActionsZip) {
    if (!fs.existsSync(options.agentActionsZip)) {
      throw new Error(`agentActionsZip ${options.agentActionsZip} does not exist: build services/agent-actions first`);
    }
    code = lambda.Code.fromAsset(options.agentActionsZip);
  }
  const stages: Partial<Record<Stage, StageStacks>> = {};
  for (const stage of options.stages) {
    stages[stage] = buildStage(app, stageConfig(stage, { account: options.account, region: options.region }), code);
  }
  Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
  return { app, stages };
}
