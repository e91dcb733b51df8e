import { Link } from 'react-router';
import { DriftStatusBadge, SeverityBadge } from '@/components/ui/badge';
import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { dateTime, timeAgo } from '@/lib/format';
import { useDriftEvents } from '../api/get-drift-events';

/** The lab's latest drift events; new ones arrive live over the drift stream. */
export function RecentDriftEvents({ environmentNames }: { environmentNames?: Map<string, string> }) {
  const events = useDriftEvents();
  return (
    <section aria-labelledby="recent-drift-heading" className="space-y-3 rounded-md border border-slate-300 bg-white p-4">
      <h2 id="recent-drift-heading" className="text-lg font-semibold">
        Drift alerts
      </h2>
      {events.isPending ? (
        <Spinner label="Loading drift alerts…" />
      ) : events.isError ? (
        <ErrorMessage error={events.error} onRetry={() => void events.refetch()} />
      ) : events.data.items.length === 0 ? (
        <p className="text-sm text-slate-800">No drift so far. Changes to watched environments show up here live.</p>
      ) : (
        <ol className="space-y-2" aria-label="Drift alerts, newest first">
          {events.data.items.slice(0, 10).map((e) => (
            <li key={e.id} className="space-y-1 border-b border-slate-200 pb-2 text-sm last:border-0">
              <div className="flex flex-wrap items-center gap-2">
                <SeverityBadge severity={e.severity} />
                <Link to={`/environments/${e.environment_id}`} className="font-medium text-sky-800 underline">
                  {environmentNames?.get(e.environment_id) ?? 'Environment'}
                </Link>
                <DriftStatusBadge status={e.status} />
              </div>
              <p className="text-slate-700">
                {e.findings.length} finding{e.findings.length === 1 ? '' : 's'}
                {e.affected_notebooks.length > 0 && ` · affects ${e.affected_notebooks.join(', ')}`} ·{' '}
                <time dateTime={e.detected_at} title={dateTime(e.detected_at)}>
                  {timeAgo(e.detected_at)}
                </time>
              </p>
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
