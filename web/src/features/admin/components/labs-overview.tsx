import type { UseQueryResult } from '@tanstack/react-query';
import { Spinner } from '@/components/ui/spinner';
import { toApiError } from '@/lib/api-client';
import { bytes } from '@/lib/format';
import type { LabEnvironmentCounts } from '../api/get-lab-environment-counts';
import type { LabStorage } from '../api/get-lab-storage';
import type { Lab } from '../api/get-labs';

/** A used-of-limit figure with a bar; amber from 80 %, red when full. */
export function Usage({ used, max, format = String }: { used: number; max: number | null | undefined; format?: (n: number) => string }) {
  if (max === null || max === undefined) {
    return (
      <span>
        {format(used)} <span className="text-slate-700">(no limit)</span>
      </span>
    );
  }
  const ratio = max === 0 ? (used > 0 ? 1 : 0) : Math.min(1, used / max);
  const color = ratio >= 1 ? 'bg-red-600' : ratio >= 0.8 ? 'bg-amber-500' : 'bg-emerald-600';
  return (
    <div className="min-w-28 space-y-1">
      <span>
        {format(used)} of {format(max)}
        <span className="sr-only"> ({Math.round(ratio * 100)} % used)</span>
      </span>
      <div aria-hidden="true" className="h-1.5 w-full overflow-hidden rounded-full bg-slate-200">
        <div className={`h-full ${color}`} style={{ width: `${Math.round(ratio * 100)}%` }} />
      </div>
    </div>
  );
}

const DRIFT: { key: keyof LabEnvironmentCounts['drift']; label: string; color: string }[] = [
  { key: 'STABLE', label: 'stable', color: 'bg-emerald-600' },
  { key: 'MINOR_DRIFT', label: 'minor drift', color: 'bg-amber-500' },
  { key: 'CRITICAL_DRIFT', label: 'critical drift', color: 'bg-red-600' },
];

export function DriftDistribution({ drift }: { drift: LabEnvironmentCounts['drift'] }) {
  const total = drift.STABLE + drift.MINOR_DRIFT + drift.CRITICAL_DRIFT;
  return (
    <div className="min-w-40 space-y-1">
      <div aria-hidden="true" className="flex h-2 w-full overflow-hidden rounded-full bg-slate-200">
        {total > 0 &&
          DRIFT.map((d) =>
            drift[d.key] > 0 ? <div key={d.key} className={d.color} style={{ width: `${(drift[d.key] / total) * 100}%` }} /> : null,
          )}
      </div>
      <p className="text-xs text-slate-800">{DRIFT.map((d) => `${drift[d.key]} ${d.label}`).join(', ')}</p>
    </div>
  );
}

function Cell<T>({ q, children }: { q: UseQueryResult<T> | undefined; children: (data: T) => React.ReactNode }) {
  if (!q || q.isPending) return <Spinner size="sm" label="Loading…" />;
  if (q.isError) {
    const e = toApiError(q.error);
    return (
      <span className="text-xs text-red-800" title={e.message}>
        {e.title}
      </span>
    );
  }
  return <>{children(q.data)}</>;
}

type Props = {
  labs: Lab[];
  counts: UseQueryResult<LabEnvironmentCounts>[];
  storage: UseQueryResult<LabStorage>[];
};

/** Every lab at a glance: environments and Jupyter servers against quota, drift, vault storage. */
export function LabsOverview({ labs, counts, storage }: Props) {
  const th = 'py-2 pr-4';
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-left text-sm">
        <caption className="sr-only">Labs at a glance</caption>
        <thead className="border-b border-slate-300 text-xs uppercase tracking-wide text-slate-800">
          <tr>
            <th scope="col" className={th}>Lab</th>
            <th scope="col" className={th}>Environments</th>
            <th scope="col" className={th}>Jupyter running</th>
            <th scope="col" className={th}>Drift</th>
            <th scope="col" className={th}>Snapshot storage</th>
            <th scope="col" className="py-2">Snapshots</th>
          </tr>
        </thead>
        <tbody>
          {labs.map((lab, i) => (
            <tr key={lab.id} className="border-b border-slate-200 align-top">
              <th scope="row" className="py-3 pr-4 text-left font-medium">
                {lab.display_name || lab.name}
                <span className="block font-mono text-xs font-normal text-slate-700">{lab.name}</span>
              </th>
              <td className="py-3 pr-4">
                <Cell q={counts[i]}>{(c) => <Usage used={c.total} max={lab.quotas.max_environments} />}</Cell>
              </td>
              <td className="py-3 pr-4">
                <Cell q={counts[i]}>{(c) => <Usage used={c.running} max={lab.quotas.max_running_servers} />}</Cell>
              </td>
              <td className="py-3 pr-4">
                <Cell q={counts[i]}>{(c) => <DriftDistribution drift={c.drift} />}</Cell>
              </td>
              <td className="py-3 pr-4">
                <Cell q={storage[i]}>{(s) => <Usage used={s.used_bytes} max={s.max_storage_bytes} format={bytes} />}</Cell>
              </td>
              <td className="py-3">
                <Cell q={storage[i]}>{(s) => s.snapshots}</Cell>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
