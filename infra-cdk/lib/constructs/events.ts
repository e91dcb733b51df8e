/**
 * Events: the EventBridge bus the services publish to and, per consumer
 * group, an SQS queue with its dead-letter queue and a rule routing every
 * platform event (`{"source": ["westtek"]}`) to the queue, exactly as
 * `crates/bus-aws` documents (visibility 60 s, retention 4 days, 256 KiB
 * messages, redrive to the DLQ after 5 receives, DLQ kept 14 days, SSE;
 * the DLQ is also the rule target's dead-letter queue).
 *
 * Policy: queue names are generated; the services get the URLs through
 * `WESTTEK_BUS_QUEUES` (`group=url`), so they need no `sqs:GetQueueUrl`.
 */
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** The consumer groups of the platform (the services that run them). */
export const CONSUMER_GROUPS = ['drift', 'knowledge'] as const;
export type ConsumerGroup = (typeof CONSUMER_GROUPS)[number];

/** The event source every platform event carries. */
export const EVENT_SOURCE = 'westtek';

export interface ConsumerQueues {
  readonly queue: sqs.Queue;
  readonly dlq: sqs.Queue;
  readonly rule: events.Rule;
}

export interface EventsProps {
  readonly queueRetention: Duration;
}

export class Events extends Construct {
  readonly bus: events.EventBus;
  readonly consumers: Record<ConsumerGroup, ConsumerQueues>;

  constructor(scope: Construct, id: string, props: EventsProps) {
    super(scope, id);
    this.bus = new events.EventBus(this, 'Bus', { description: 'West Tek domain events' });
    const consumers: Partial<Record<ConsumerGroup, ConsumerQueues>> = {};
    for (const group of CONSUMER_GROUPS) {
      const dlq = new sqs.Queue(this, `${group}-dlq`, {
        retentionPeriod: Duration.days(14),
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const queue = new sqs.Queue(this, `${group}-queue`, {
        visibilityTimeout: Duration.seconds(60),
        retentionPeriod: props.queueRetention,
        maxMessageSizeBytes: 256 * 1024,
        encryption: sqs.QueueEncryption.SQS_MANAGED,
        enforceSSL: true,
        deadLetterQueue: { queue: dlq, maxReceiveCount: 5 },
        removalPolicy: RemovalPolicy.DESTROY,
      });
      const rule = new events.Rule(this, `${group}-rule`, {
        eventBus: this.bus,
        description: `Every platform event to the ${group} consumer group`,
        eventPattern: { source: [EVENT_SOURCE] },
      });
      rule.addTarget(new targets.SqsQueue(queue, { deadLetterQueue: dlq }));
      consumers[group] = { queue, dlq, rule };
    }
    this.consumers = consumers as Record<ConsumerGroup, ConsumerQueues>;
  }

  /** `events:PutEvents` on this bus only. */
  grantPublish(grantee: iam.IGrantable): void {
    this.bus.grantPutEventsTo(grantee);
  }

  /** What a member of `group` needs on its queue, and nothing on the others. */
  grantConsume(grantee: iam.IGrantable, group: ConsumerGroup): void {
    const { queue } = this.consumers[group];
    iam.Grant.addToPrincipal({
      grantee,
      actions: ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:ChangeMessageVisibility', 'sqs:GetQueueAttributes'],
      resourceArns: [queue.queueArn],
    });
  }
}
