#!/usr/bin/env node
/**
 * Entry point of `cdk synth|deploy`: `--context stage=dev|prod` picks a
 * stage (default: every stage, for synth checks); `--context account=…`
 * and `--context region=…` override the placeholders of lib/config.ts;
 * `--context agentActionsZip=PATH` deploys the real action-group Lambda.
 */
import { App } from 'aws-cdk-lib';
import { buildApp } from '../lib/app';
import { parseStage, Stage } from '../lib/config';

// Only reads the context: it must not synthesise (an App auto-synthesises under the CLI).
const probe = new App({ autoSynth: false });
const ctx = (key: string): string | undefined => {
  const v: unknown = probe.node.tryGetContext(key);
  return typeof v === 'string' && v !== '' ? v : undefined;
};
const stageValue = ctx('stage');
const stages: Stage[] = stageValue ? [parseStage(stageValue)] : ['dev', 'prod'];
const { app } = buildApp({
  stages,
  account: ctx('account') ?? process.env.CDK_DEFAULT_ACCOUNT,
  region: ctx('region') ?? process.env.CDK_DEFAULT_REGION,
  agentActionsZip: ctx('agentActionsZip'),
});
app.synth();
