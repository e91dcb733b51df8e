import { useState, type FormEvent } from 'react';
import { Button } from '@/components/ui/button';
import { ErrorMessage } from '@/components/ui/error-message';
import { Field, inputClass } from '@/components/ui/field';
import { Spinner } from '@/components/ui/spinner';
import { dateTime, shortId } from '@/lib/format';
import { useSnapshotDiff } from '../api/get-snapshot-diff';
import type { Snapshot } from '../api/get-snapshots';
import { SnapshotDiffView } from './snapshot-diff';

export const snapshotLabel = (s: Snapshot) =>
  `${dateTime(s.timestamp)} · ${s.metadata.notes ? s.metadata.notes.slice(0, 40) : shortId(s.id)}`;

/** Pick two complete snapshots (newest first in the list) and see what changed between them. */
export function SnapshotCompare({ snapshots }: { snapshots: Snapshot[] }) {
  const complete = snapshots.filter((s) => s.status === 'complete');
  // Default: the second newest → the newest.
  const [from, setFrom] = useState('');
  const [to, setTo] = useState('');
  const [pair, setPair] = useState<{ from: string; to: string } | null>(null);
  const [formError, setFormError] = useState<string>();
  const diff = useSnapshotDiff(pair);

  if (complete.length < 2) {
    return (
      <p className="text-sm text-slate-700">
        Take at least two snapshots to compare them: the comparison shows package, kernel and file changes between them.
      </p>
    );
  }
  const byId = new Map(complete.map((s) => [s.id, s]));
  // A choice that is gone (deleted, or none yet) falls back to the default pair.
  const a = byId.has(from) ? from : complete[1]!.id;
  const b = byId.has(to) ? to : complete[0]!.id;
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (a === b) {
      setFormError('Pick two different snapshots.');
      return;
    }
    setFormError(undefined);
    setPair({ from: a, to: b });
  };
  const select = (value: string, set: (v: string) => void) => (p: { id: string }) => (
    <select {...p} className={inputClass} value={value} onChange={(e) => set(e.target.value)}>
      {complete.map((s) => (
        <option key={s.id} value={s.id}>
          {snapshotLabel(s)}
        </option>
      ))}
    </select>
  );

  return (
    <section aria-labelledby="compare-heading" className="space-y-3">
      <h3 id="compare-heading" className="font-medium">
        Compare snapshots
      </h3>
      <form onSubmit={submit} className="flex flex-wrap items-end gap-2" aria-label="Compare snapshots">
        <div className="min-w-64 flex-1">
          <Field label="From (older)" error={formError}>
            {select(a, setFrom)}
          </Field>
        </div>
        <div className="min-w-64 flex-1">
          <Field label="To (newer)">{select(b, setTo)}</Field>
        </div>
        <Button type="submit" variant="secondary" busy={diff.isFetching}>
          Compare
        </Button>
      </form>
      {pair &&
        (diff.isPending ? (
          <Spinner label="Comparing…" />
        ) : diff.isError ? (
          <ErrorMessage error={diff.error} onRetry={() => void diff.refetch()} />
        ) : (
          <SnapshotDiffView
            diff={diff.data}
            fromLabel={byId.get(pair.from) ? snapshotLabel(byId.get(pair.from)!) : shortId(pair.from)}
            toLabel={byId.get(pair.to) ? snapshotLabel(byId.get(pair.to)!) : shortId(pair.to)}
          />
        ))}
    </section>
  );
}
