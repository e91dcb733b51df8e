import { useState, type FormEvent, type ReactNode } from 'react';
import { Badge } from '@/components/ui/badge';
import { Button } from '@/components/ui/button';
import { EmptyState } from '@/components/ui/empty-state';
import { ErrorMessage } from '@/components/ui/error-message';
import { Field, inputClass } from '@/components/ui/field';
import { JobProgress } from '@/components/ui/job-progress';
import { Spinner } from '@/components/ui/spinner';
import { bytes, dateTime, shortId, timeAgo } from '@/lib/format';
import { useCreateSnapshot, useSnapshotFinished } from '../api/create-snapshot';
import { useSnapshots, type Snapshot } from '../api/get-snapshots';
import { SnapshotCompare } from './snapshot-compare';
import { SnapshotDetails } from './snapshot-details';

type Props = {
  environmentId: string;
  /** Snapshots need a ready environment. */
  canSnapshot: boolean;
  /**
   * The lab machine an adopted environment lives on: its agent takes its
   * snapshots there, and the platform cannot restore over its files.
   */
  adoptedHost?: string | null;
  /** More actions in a snapshot's details, from other features (the app composes them). */
  snapshotActions?: (s: Snapshot) => ReactNode;
};

function StatusBadge({ s }: { s: Snapshot }) {
  if (s.status === 'complete') return <Badge tone="green">Complete</Badge>;
  if (s.status === 'creating') return <Badge tone="blue">Creating</Badge>;
  if (s.status === 'failed') return <Badge tone="red">Failed</Badge>;
  return <Badge tone="gray">{s.status}</Badge>;
}

function DrillResult({ s }: { s: Snapshot }) {
  if (!s.drill) return <span className="text-slate-700">not drilled</span>;
  return s.drill.passed ? (
    <Badge tone="green" title={`Checked ${s.drill.modules_checked.length} modules, ${dateTime(s.drill.at)}`}>
      Drill passed
    </Badge>
  ) : (
    <Badge tone="red" title={s.drill.failures.join(', ')}>
      Drill failed
    </Badge>
  );
}

/** The environment's snapshots, and "take snapshot" with live progress. */
export function SnapshotPanel({ environmentId, canSnapshot, adoptedHost, snapshotActions }: Props) {
  const list = useSnapshots(environmentId);
  const create = useCreateSnapshot();
  const finished = useSnapshotFinished();
  const [notes, setNotes] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const selectedSnapshot = list.data?.items.find((s) => s.id === selected);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    create.mutate({ environment_id: environmentId, notes: notes.trim() || null });
  };

  return (
    <section aria-labelledby="snapshots-heading" className="space-y-4 rounded-md border border-slate-300 bg-white p-4">
      <h2 id="snapshots-heading" className="text-lg font-semibold">
        Snapshots
      </h2>
      {adoptedHost ? (
        <p className="rounded-md bg-slate-100 p-3 text-sm text-slate-800">
          Snapshots of this environment are taken by its agent on {adoptedHost}, where its files are: run{' '}
          <code className="font-mono">westtek agent snapshot</code> there. They can be restored into a new environment
          here.
        </p>
      ) : (
        <>
          <form onSubmit={submit} className="flex flex-wrap items-end gap-2">
            <div className="min-w-64 flex-1">
              <Field label="Notes for a new snapshot (optional)">
                {(p) => (
                  <input
                    {...p}
                    name="notes"
                    className={inputClass}
                    value={notes}
                    onChange={(e) => setNotes(e.target.value)}
                    placeholder="e.g. before upgrading pandas"
                    maxLength={500}
                  />
                )}
              </Field>
            </div>
            <Button type="submit" busy={create.isPending} disabled={!canSnapshot}>
              Take snapshot
            </Button>
          </form>
          {!canSnapshot && <p className="text-sm text-slate-700">Snapshots can be taken once the environment is ready.</p>}
        </>
      )}
      {create.error && <ErrorMessage error={create.error} />}
      {create.data && (
        <JobProgress
          key={create.data.job_id}
          jobId={create.data.job_id}
          label="Taking snapshot"
          onFinished={() => {
            void finished();
            setNotes('');
          }}
        />
      )}
      {list.isPending ? (
        <Spinner label="Loading snapshots…" />
      ) : list.isError ? (
        <ErrorMessage error={list.error} onRetry={() => void list.refetch()} />
      ) : list.data.items.length === 0 ? (
        <EmptyState title="No snapshots yet.">
          A snapshot keeps the whole environment (Python, packages, kernels, notebooks and data) so it can be restored
          exactly, years from now.
        </EmptyState>
      ) : (
        <div className="overflow-x-auto">
          <table className="w-full text-left text-sm">
            <caption className="sr-only">Snapshots, newest first</caption>
            <thead className="border-b border-slate-300 text-xs uppercase tracking-wide text-slate-800">
              <tr>
                <th scope="col" className="py-2 pr-3">Taken</th>
                <th scope="col" className="py-2 pr-3">Status</th>
                <th scope="col" className="py-2 pr-3">Size</th>
                <th scope="col" className="py-2 pr-3">New data</th>
                <th scope="col" className="py-2 pr-3">Packages</th>
                <th scope="col" className="py-2 pr-3">Notebooks</th>
                <th scope="col" className="py-2 pr-3">Restore drill</th>
                <th scope="col" className="py-2 pr-3">Notes</th>
                <th scope="col" className="py-2 pr-3">Id</th>
                <th scope="col" className="py-2">
                  <span className="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {list.data.items.map((s) => (
                <tr key={s.id} className="border-b border-slate-200">
                  <td className="py-2 pr-3" title={dateTime(s.timestamp)}>
                    {timeAgo(s.timestamp)}
                  </td>
                  <td className="py-2 pr-3">
                    <StatusBadge s={s} />
                  </td>
                  <td className="py-2 pr-3">{bytes(s.size_bytes)}</td>
                  <td className="py-2 pr-3">{bytes(s.stored_bytes_added)}</td>
                  <td className="py-2 pr-3">{s.metadata.installed_packages.length}</td>
                  <td className="py-2 pr-3">{s.metadata.notebook_count}</td>
                  <td className="py-2 pr-3">
                    <DrillResult s={s} />
                  </td>
                  <td className="max-w-48 truncate py-2 pr-3" title={s.metadata.notes ?? undefined}>
                    {s.metadata.notes ?? '—'}
                  </td>
                  <td className="py-2 pr-3 font-mono text-xs" title={s.id}>
                    {shortId(s.id)}
                  </td>
                  <td className="py-2">
                    <Button
                      variant="secondary"
                      className="px-2 py-1 text-xs"
                      aria-expanded={selected === s.id}
                      aria-controls={selected === s.id ? 'snapshot-details' : undefined}
                      onClick={() => setSelected(selected === s.id ? null : s.id)}
                    >
                      Details<span className="sr-only"> of snapshot {shortId(s.id)}</span>
                    </Button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {selectedSnapshot && (
        <div id="snapshot-details">
          <SnapshotDetails
            key={selectedSnapshot.id}
            s={selectedSnapshot}
            onClose={() => setSelected(null)}
            actions={snapshotActions?.(selectedSnapshot)}
            inPlaceRestore={!adoptedHost}
          />
        </div>
      )}
      {list.data && list.data.items.length > 0 && <SnapshotCompare snapshots={list.data.items} />}
    </section>
  );
}
