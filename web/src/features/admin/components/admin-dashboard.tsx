import { useId, useState } from 'react';
import { EmptyState } from '@/components/ui/empty-state';
import { ErrorMessage } from '@/components/ui/error-message';
import { inputClass } from '@/components/ui/field';
import { Spinner } from '@/components/ui/spinner';
import { useLabEnvironmentCounts } from '../api/get-lab-environment-counts';
import { useLabSnapshots } from '../api/get-lab-snapshots';
import { useLabStorages } from '../api/get-lab-storage';
import { useLabs, type Lab } from '../api/get-labs';
import { AuditLog, AuditVerifyResult } from './audit-log';
import { LabsOverview } from './labs-overview';
import { StorageChart, storageSeries } from './storage-chart';

const card = 'space-y-4 rounded-md border border-slate-300 bg-white p-4';

/** `preferred`: the lab shown until another is chosen (the one using the most storage). */
function StorageOverTime({ labs, preferred }: { labs: Lab[]; preferred: string | undefined }) {
  const selectId = useId();
  const [chosen, setChosen] = useState('');
  const lab = labs.find((l) => l.id === chosen) ?? labs.find((l) => l.id === preferred) ?? labs[0]!;
  const snapshots = useLabSnapshots(lab.id);
  return (
    <section aria-labelledby="storage-heading" className={card}>
      <div className="flex flex-wrap items-center justify-between gap-3">
        <h2 id="storage-heading" className="text-lg font-semibold">
          Storage over time
        </h2>
        <div className="flex items-center gap-2">
          <label htmlFor={selectId} className="text-sm font-medium whitespace-nowrap">
            Lab shown
          </label>
          <select id={selectId} className={`${inputClass} w-auto`} value={lab.id} onChange={(e) => setChosen(e.target.value)}>
            {labs.map((l) => (
              <option key={l.id} value={l.id}>
                {l.display_name || l.name}
              </option>
            ))}
          </select>
        </div>
      </div>
      <p className="text-sm text-slate-800">
        What the lab’s snapshots added to the vault, summed up by the time each was taken (snapshots deleted since are not
        counted).
      </p>
      {snapshots.isPending ? (
        <Spinner label="Loading snapshots…" />
      ) : snapshots.isError ? (
        <ErrorMessage error={snapshots.error} onRetry={() => void snapshots.refetch()} />
      ) : (
        <>
          <StorageChart
            points={storageSeries(snapshots.data.items)}
            now={snapshots.dataUpdatedAt}
            labName={lab.display_name || lab.name}
          />
          {snapshots.data.items.length < snapshots.data.total && (
            <p className="text-sm text-slate-700">
              Only the newest {snapshots.data.items.length} of {snapshots.data.total} snapshots are charted.
            </p>
          )}
        </>
      )}
    </section>
  );
}

/** The IT admin's view of the platform: every lab, storage, and the audit trail. */
export function AdminDashboard() {
  const labs = useLabs();
  const ids = labs.data?.map((l) => l.id) ?? [];
  const counts = useLabEnvironmentCounts(ids);
  const storage = useLabStorages(ids);
  let busiest: string | undefined;
  let most = -1;
  storage.forEach((q, i) => {
    if (q.data && q.data.used_bytes > most) {
      most = q.data.used_bytes;
      busiest = ids[i];
    }
  });
  return (
    <div className="space-y-6">
      <h1 className="text-2xl font-semibold">IT admin</h1>
      <section aria-labelledby="labs-heading" className={card}>
        <h2 id="labs-heading" className="text-lg font-semibold">
          Labs{labs.data ? ` (${labs.data.length})` : ''}
        </h2>
        {labs.isPending ? (
          <Spinner label="Loading labs…" />
        ) : labs.isError ? (
          <ErrorMessage error={labs.error} onRetry={() => void labs.refetch()} />
        ) : labs.data.length === 0 ? (
          <EmptyState title="No labs yet.">Create one with “westtek admin lab create”.</EmptyState>
        ) : (
          <LabsOverview labs={labs.data} counts={counts} storage={storage} />
        )}
      </section>
      {labs.data && labs.data.length > 0 && <StorageOverTime labs={labs.data} preferred={busiest} />}
      <section aria-labelledby="audit-heading" className={card}>
        <h2 id="audit-heading" className="text-lg font-semibold">
          Audit log
        </h2>
        <AuditVerifyResult />
        <AuditLog labs={labs.data ?? []} />
      </section>
    </div>
  );
}
