/**
 * Observability: the operations alarm topic, alarms on what a user would
 * notice (5xx from the load balancer or the services, a consumer group's
 * dead-letter queue filling up, snapshot jobs failing, drift alerts that
 * could not be delivered) and one dashboard.
 *
 * Policy: failures the services only log are turned into metrics by log
 * metric filters on their exact log messages (`snapshot job failed` in
 * services/snapshots, `drift alert dead-lettered` in crates/alerts); every
 * alarm notifies the topic; missing data is not breaching.
 */
import { Duration } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subs from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';
import { ServiceName, StageConfig } from '../config';
import { ConsumerGroup, ConsumerQueues } from './events';

export const METRIC_NAMESPACE = 'Westtek';

export interface ObservabilityProps {
  readonly config: StageConfig;
  readonly key: kms.IKey;
  readonly alb: elbv2.ApplicationLoadBalancer;
  readonly consumers: Record<ConsumerGroup, ConsumerQueues>;
  readonly logGroups: Record<ServiceName, logs.ILogGroup>;
}

export class Observability extends Construct {
  readonly topic: sns.Topic;
  readonly alarms: cloudwatch.Alarm[] = [];
  readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: ObservabilityProps) {
    super(scope, id);
    this.topic = new sns.Topic(this, 'Alarms', { masterKey: props.key, enforceSSL: true, displayName: 'West Tek operations' });
    if (props.config.alarmEmail) this.topic.addSubscription(new subs.EmailSubscription(props.config.alarmEmail));
    const action = new actions.SnsAction(this.topic);
    const alarm = (name: string, metric: cloudwatch.IMetric, threshold: number, description: string) => {
      const a = new cloudwatch.Alarm(this, name, {
        metric,
        threshold,
        evaluationPeriods: 1,
        comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
        treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
        alarmDescription: description,
      });
      a.addAlarmAction(action);
      this.alarms.push(a);
      return a;
    };

    const five = Duration.minutes(5);
    const lb5xx = props.alb.metrics.httpCodeElb(elbv2.HttpCodeElb.ELB_5XX_COUNT, { period: five, statistic: 'Sum' });
    const target5xx = props.alb.metrics.httpCodeTarget(elbv2.HttpCodeTarget.TARGET_5XX_COUNT, { period: five, statistic: 'Sum' });
    alarm('Alb5xx', lb5xx, 10, 'The load balancer answered 5xx (no healthy service, or timeouts)');
    alarm('Target5xx', target5xx, 10, 'The services answered 5xx');

    const dlqWidgets: cloudwatch.IMetric[] = [];
    for (const [group, { dlq }] of Object.entries(props.consumers)) {
      const depth = dlq.metricApproximateNumberOfMessagesVisible({ period: five, statistic: 'Maximum' });
      dlqWidgets.push(depth);
      alarm(`${group}DlqDepth`, depth, 1, `Events the ${group} consumer group could not handle are waiting in its DLQ`);
    }

    const failures = (name: string, group: logs.ILogGroup, pattern: string, metricName: string) => {
      new logs.MetricFilter(this, name, {
        logGroup: group,
        filterPattern: logs.FilterPattern.literal(pattern),
        metricNamespace: METRIC_NAMESPACE,
        metricName,
        metricValue: '1',
        defaultValue: 0,
      });
      return new cloudwatch.Metric({ namespace: METRIC_NAMESPACE, metricName, period: five, statistic: 'Sum' });
    };
    const snapshotFailures = failures('SnapshotFailuresFilter', props.logGroups.snapshots, '"snapshot job failed"', 'SnapshotFailures');
    alarm('SnapshotFailures', snapshotFailures, 1, 'A snapshot job failed (see the snapshots service logs)');
    const deadLettered = failures('DriftDeliveryFilter', props.logGroups.drift, '"drift alert dead-lettered"', 'DriftAlertsDeadLettered');
    alarm('DriftDeliveryFailures', deadLettered, 1, 'A drift alert could not be delivered and was dead-lettered');

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      widgets: [
        [
          new cloudwatch.GraphWidget({ title: '5xx', left: [lb5xx, target5xx] }),
          new cloudwatch.GraphWidget({ title: 'Requests', left: [props.alb.metrics.requestCount({ period: five })] }),
        ],
        [
          new cloudwatch.GraphWidget({ title: 'DLQ depth', left: dlqWidgets }),
          new cloudwatch.GraphWidget({ title: 'Failures', left: [snapshotFailures, deadLettered] }),
        ],
      ],
    });
  }
}
