import { DriftStatusBadge, EnvStatusBadge } from '@/components/ui/badge';
import { dateTime, timeAgo } from '@/lib/format';
import type { Environment } from '../api/get-environment';
import { AdoptedBadge } from './adopted-badge';

/** The environment's facts and its installed packages. */
export function EnvironmentOverview({ env }: { env: Environment }) {
  const installed = env.metadata.jupyter_packages;
  return (
    <section aria-labelledby="overview-heading" className="space-y-3 rounded-md border border-slate-300 bg-white p-4">
      <h2 id="overview-heading" className="text-lg font-semibold">
        Overview
      </h2>
      <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm">
        <dt className="text-slate-700">Status</dt>
        <dd>
          <EnvStatusBadge status={env.status} />
        </dd>
        <dt className="text-slate-700">Drift</dt>
        <dd>
          <DriftStatusBadge status={env.drift_status} />
        </dd>
        {env.adopted && (
          <>
            <dt className="text-slate-700">Origin</dt>
            <dd>
              <AdoptedBadge host={env.adopted.host} />
            </dd>
          </>
        )}
        <dt className="text-slate-700">Python</dt>
        <dd>{env.python_version || '—'}</dd>
        <dt className="text-slate-700">Last snapshot</dt>
        <dd title={dateTime(env.last_snapshot)}>{timeAgo(env.last_snapshot)}</dd>
        <dt className="text-slate-700">Created</dt>
        <dd>{dateTime(env.created_at)}</dd>
        <dt className="text-slate-700">Criticality</dt>
        <dd className="capitalize">{env.metadata.criticality}</dd>
        {env.metadata.experiment_id && (
          <>
            <dt className="text-slate-700">Experiment</dt>
            <dd>{env.metadata.experiment_id}</dd>
          </>
        )}
        {env.metadata.funding_source && (
          <>
            <dt className="text-slate-700">Funding</dt>
            <dd>{env.metadata.funding_source}</dd>
          </>
        )}
        <dt className="text-slate-700">Requested</dt>
        <dd>
          {env.packages.length === 0
            ? 'JupyterLab only'
            : env.packages.map((p) => `${p.name}${p.version ?? ''}`).join(', ')}
        </dd>
      </dl>
      <details>
        <summary className="cursor-pointer text-sm font-medium text-slate-900">
          Installed packages ({installed.length})
        </summary>
        {installed.length === 0 ? (
          <p className="mt-2 text-sm text-slate-700">Nothing installed yet.</p>
        ) : (
          // A scrolling region takes focus so keyboard users can scroll it.
          <div role="region" aria-label="Installed packages" tabIndex={0} className="mt-2 max-h-64 overflow-auto">
            <ul className="columns-2 font-mono text-xs text-slate-800 md:columns-3">
              {installed.map((p) => (
                <li key={p}>{p}</li>
              ))}
            </ul>
          </div>
        )}
      </details>
    </section>
  );
}
