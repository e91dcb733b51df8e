import { DriftStatusBadge, SeverityBadge } from '@/components/ui/badge';
import { EmptyState } from '@/components/ui/empty-state';
import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { dateTime, shortId, timeAgo } from '@/lib/format';
import { useDriftEvents } from '../api/get-drift-events';
import { useDriftTimeline } from '../api/get-drift-timeline';
import { useEnvironmentDrift } from '../api/get-environment-drift';
import { describeKind, parseFinding, shortValue, type DriftEvent, type EnvironmentDrift } from '../api/types';
import { DriftActions } from './drift-actions';
import { DriftTimelineChart } from './drift-timeline';

function recommendationText(a: NonNullable<EnvironmentDrift['latest_analysis']>): string | undefined {
  const r = a.recommendation as Record<string, unknown>;
  const kind = typeof r.kind === 'string' ? r.kind : undefined;
  const reason = typeof r.reason === 'string' ? r.reason : '';
  const what: Record<string, string> = {
    rollback: 'Roll back to the baseline snapshot',
    snapshot: 'Take a snapshot to accept the change',
    pin: 'Pin the baseline',
    none: 'No action needed',
  };
  if (!kind) return undefined;
  return `${what[kind] ?? kind}${reason ? `: ${reason}` : '.'}`;
}

function Findings({ drift }: { drift: EnvironmentDrift }) {
  const findings = drift.findings.map(parseFinding);
  if (findings.length === 0) {
    return <p className="text-sm text-slate-800">Nothing differs from the baseline.</p>;
  }
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-left text-sm">
        <caption className="sr-only">What differs from the baseline, most severe first</caption>
        <thead className="border-b border-slate-300 text-xs uppercase tracking-wide text-slate-800">
          <tr>
            <th scope="col" className="py-2 pr-3">Severity</th>
            <th scope="col" className="py-2 pr-3">Change</th>
            <th scope="col" className="py-2 pr-3">What</th>
            <th scope="col" className="py-2 pr-3">Before → now</th>
            <th scope="col" className="py-2">Notebooks affected</th>
          </tr>
        </thead>
        <tbody>
          {findings.map((f, i) => (
            <tr key={`${f.kind}-${f.subject}-${i}`} className="border-b border-slate-200 align-top">
              <td className="py-2 pr-3">
                <SeverityBadge severity={f.severity} />
              </td>
              <td className="py-2 pr-3">{describeKind(f)}</td>
              <td className="py-2 pr-3 font-mono text-xs break-all">{f.subject}</td>
              <td className="py-2 pr-3 font-mono text-xs" title={`${f.before ?? '—'} → ${f.after ?? '—'}`}>
                {shortValue(f.before)} → {shortValue(f.after)}
              </td>
              <td className="py-2 text-xs">{f.affectedNotebooks.length ? f.affectedNotebooks.join(', ') : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function EventList({ events }: { events: DriftEvent[] }) {
  if (events.length === 0) {
    return <p className="text-sm text-slate-800">No drift events yet. New ones appear here as they happen.</p>;
  }
  return (
    <ol className="space-y-2" aria-label="Drift events, newest first">
      {events.map((e) => (
        <li key={e.id} className="flex flex-wrap items-center gap-2 text-sm">
          <SeverityBadge severity={e.severity} />
          {e.previous_status !== e.status && (
            <>
              <DriftStatusBadge status={e.previous_status} />
              <span aria-hidden="true">→</span>
              <span className="sr-only">became</span>
            </>
          )}
          <DriftStatusBadge status={e.status} />
          <span className="text-slate-700">
            {e.findings.length} finding{e.findings.length === 1 ? '' : 's'} · {e.source} ·{' '}
            <time dateTime={e.detected_at} title={dateTime(e.detected_at)}>
              {timeAgo(e.detected_at)}
            </time>
          </span>
        </li>
      ))}
    </ol>
  );
}

function Timeline({ environmentId }: { environmentId: string }) {
  const timeline = useDriftTimeline(environmentId);
  if (timeline.isPending) return <Spinner label="Loading the drift timeline…" />;
  if (timeline.isError) return <ErrorMessage error={timeline.error} onRetry={() => void timeline.refetch()} />;
  if (timeline.data.items.length === 0) return null;
  return <DriftTimelineChart events={timeline.data.items} now={timeline.dataUpdatedAt} />;
}

/** Drift of one environment: status against the baseline, findings, actions, analysis, timeline, live events. */
export function DriftPanel({
  environmentId,
  jupyterRunning = false,
  adoptedHost,
}: {
  environmentId: string;
  jupyterRunning?: boolean;
  /** The lab machine an adopted environment lives on (its agent snapshots there; no rollback). */
  adoptedHost?: string | null;
}) {
  const drift = useEnvironmentDrift(environmentId);
  const events = useDriftEvents(environmentId);

  return (
    <section aria-labelledby="drift-heading" className="space-y-4 rounded-md border border-slate-300 bg-white p-4">
      <div className="flex items-center justify-between">
        <h2 id="drift-heading" className="text-lg font-semibold">
          Drift
        </h2>
        {drift.data && <DriftStatusBadge status={drift.data.status} />}
      </div>
      {drift.isPending ? (
        <Spinner label="Loading drift…" />
      ) : drift.isError ? (
        <ErrorMessage error={drift.error} onRetry={() => void drift.refetch()} />
      ) : !drift.data.baseline_snapshot_id ? (
        <EmptyState title="Not watched for drift yet.">
          {adoptedHost ? (
            <>
              Take a snapshot on {adoptedHost} with <code className="font-mono">westtek agent snapshot</code>
            </>
          ) : (
            'Take a snapshot'
          )}
          : it becomes the baseline, and every change to packages, kernels, configuration or notebooks after it is
          reported here as it happens.
        </EmptyState>
      ) : (
        <>
          <p className="text-sm text-slate-800">
            Compared with snapshot <span className="font-mono">{shortId(drift.data.baseline_snapshot_id)}</span>
            {drift.data.baseline_pinned ? ' (pinned baseline)' : ' (the latest snapshot)'}.{' '}
            {drift.data.watched ? 'Watched live.' : 'Checked by the periodic sweep.'}
          </p>
          <Findings drift={drift.data} />
          <DriftActions drift={drift.data} jupyterRunning={jupyterRunning} adoptedHost={adoptedHost} />
          {drift.data.affected_notebooks.length > 0 && (
            <p className="text-sm">
              <span className="font-medium">Notebooks that may now behave differently:</span>{' '}
              {drift.data.affected_notebooks.join(', ')}
            </p>
          )}
          {drift.data.latest_analysis && (
            <div className="rounded-md bg-slate-100 p-3 text-sm">
              <p className="font-medium">Drift Analyzer</p>
              {drift.data.latest_analysis.analysis && (
                <p className="whitespace-pre-line">{drift.data.latest_analysis.analysis}</p>
              )}
              {recommendationText(drift.data.latest_analysis) && (
                <p className="mt-1 font-medium">Recommendation: {recommendationText(drift.data.latest_analysis)}</p>
              )}
            </div>
          )}
        </>
      )}
      <Timeline environmentId={environmentId} />
      <div className="space-y-2">
        <h3 className="font-medium">Recent drift events</h3>
        {events.isPending ? (
          <Spinner label="Loading events…" />
        ) : events.isError ? (
          <ErrorMessage error={events.error} onRetry={() => void events.refetch()} />
        ) : (
          <EventList events={events.data.items} />
        )}
      </div>
    </section>
  );
}
