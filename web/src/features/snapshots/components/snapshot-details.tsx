import { useQueryClient } from '@tanstack/react-query';
import { useState, type FormEvent, type ReactNode } from 'react';
import { Link } from 'react-router';
import { Badge } from '@/components/ui/badge';
import { Button } from '@/components/ui/button';
import { ConfirmDialog } from '@/components/ui/dialog';
import { ErrorMessage } from '@/components/ui/error-message';
import { Field, inputClass } from '@/components/ui/field';
import { JobProgress } from '@/components/ui/job-progress';
import { bytes, dateTime, shortId } from '@/lib/format';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';
import { useDrillSnapshot } from '../api/drill-snapshot';
import type { Snapshot } from '../api/get-snapshots';
import { useRestoreSnapshot } from '../api/restore-snapshot';

/** Everything a restore or drill changes: snapshots (drill result, safety snapshot), environments, drift. */
function useRefreshAfterJob() {
  const lab = useLabId();
  const qc = useQueryClient();
  return () =>
    Promise.all([
      qc.invalidateQueries({ queryKey: queryKeys.snapshots.all(lab) }),
      qc.invalidateQueries({ queryKey: queryKeys.environments.all(lab) }),
      qc.invalidateQueries({ queryKey: queryKeys.drift.all(lab) }),
    ]);
}

function Drill({ s }: { s: Snapshot }) {
  const drill = useDrillSnapshot();
  const refresh = useRefreshAfterJob();
  const d = s.drill;
  return (
    <section aria-labelledby="drill-heading" className="space-y-2">
      <h4 id="drill-heading" className="font-medium">
        Restore drill
      </h4>
      <p className="text-sm text-slate-800">
        A drill restores the snapshot into a scratch folder, starts its kernel and imports every module the notebooks
        import, to prove the snapshot still works. Nothing in the environment changes.
      </p>
      {d ? (
        <div
          className={`rounded-md border p-3 text-sm ${d.passed ? 'border-emerald-300 bg-emerald-50 text-emerald-950' : 'border-red-300 bg-red-50 text-red-950'}`}
          data-testid="drill-result"
        >
          <p className="font-semibold">
            {d.passed ? 'The last drill passed' : 'The last drill failed'} ({dateTime(d.at)}, {(d.duration_ms / 1000).toFixed(1)} s)
          </p>
          <p>
            {d.modules_checked.length === 0
              ? 'The notebooks import no modules; the kernel started.'
              : `Modules imported: ${d.modules_checked.join(', ')}.`}
          </p>
          {d.failures.length > 0 && (
            <ul className="mt-1 list-disc pl-5">
              {d.failures.map((f) => (
                <li key={f}>{f}</li>
              ))}
            </ul>
          )}
        </div>
      ) : (
        <p className="text-sm text-slate-700">This snapshot has not been drilled yet.</p>
      )}
      <Button
        variant="secondary"
        busy={drill.isPending}
        disabled={s.status !== 'complete'}
        onClick={() => drill.mutate(s.id)}
      >
        Run restore drill
      </Button>
      {drill.error && <ErrorMessage error={drill.error} />}
      {drill.data && (
        <JobProgress key={drill.data.job_id} jobId={drill.data.job_id} label="Restore drill" onFinished={() => void refresh()} />
      )}
    </section>
  );
}

/** `inPlace`: whether restoring over the snapshot's own environment is offered (not for an adopted one). */
function Restore({ s, inPlace }: { s: Snapshot; inPlace: boolean }) {
  const restore = useRestoreSnapshot();
  const refresh = useRefreshAfterJob();
  const [mode, setMode] = useState<'new_environment' | 'in_place'>('new_environment');
  const [name, setName] = useState('');
  const [confirming, setConfirming] = useState(false);
  const [finished, setFinished] = useState(false);

  const start = () => {
    setFinished(false);
    restore.mutate(
      { id: s.id, body: mode === 'in_place' ? { mode } : { mode, name: name.trim() || null } },
      { onSuccess: () => setConfirming(false) },
    );
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (mode === 'in_place') {
      restore.reset();
      setConfirming(true);
    } else start();
  };

  return (
    <section aria-labelledby="restore-heading" className="space-y-2">
      <h4 id="restore-heading" className="font-medium">
        Restore
      </h4>
      <form onSubmit={submit} className="space-y-3">
        <fieldset className="space-y-1">
          <legend className="text-sm font-medium text-slate-900">Where to</legend>
          <label className="flex items-center gap-2 text-sm">
            <input
              type="radio"
              name={`restore-mode-${s.id}`}
              checked={mode === 'new_environment'}
              onChange={() => setMode('new_environment')}
            />
            Into a new environment (this one stays as it is)
          </label>
          {inPlace ? (
            <label className="flex items-center gap-2 text-sm">
              <input
                type="radio"
                name={`restore-mode-${s.id}`}
                checked={mode === 'in_place'}
                onChange={() => setMode('in_place')}
              />
              In place (replaces this environment’s files; its present state is snapshotted first)
            </label>
          ) : (
            <p className="text-sm text-slate-700">
              Not in place: this environment’s files are on the lab machine it was adopted from, where the platform does
              not write.
            </p>
          )}
        </fieldset>
        {mode === 'new_environment' && (
          <div className="max-w-sm">
            <Field label="Name of the new environment (optional)" hint="Left empty, the platform picks one.">
              {(p) => (
                <input
                  {...p}
                  className={inputClass}
                  value={name}
                  onChange={(e) => setName(e.target.value)}
                  maxLength={63}
                  autoComplete="off"
                />
              )}
            </Field>
          </div>
        )}
        <Button type="submit" busy={restore.isPending && !confirming} disabled={s.status !== 'complete'}>
          {mode === 'in_place' ? 'Restore in place…' : 'Restore into a new environment'}
        </Button>
      </form>
      {!confirming && restore.error && <ErrorMessage error={restore.error} />}
      {confirming && (
        <ConfirmDialog
          title="Restore in place?"
          confirmLabel="Restore in place"
          busy={restore.isPending}
          error={restore.error}
          onConfirm={start}
          onCancel={() => setConfirming(false)}
        >
          <p>
            The environment’s files are replaced by the snapshot taken {dateTime(s.timestamp)}. Its present state is
            snapshotted first, so this can be undone by restoring that snapshot.
          </p>
          <p>Jupyter must be stopped; running kernels would lose their state.</p>
        </ConfirmDialog>
      )}
      {restore.data && (
        <div className="space-y-2">
          <JobProgress
            key={restore.data.job_id}
            jobId={restore.data.job_id}
            label="Restoring snapshot"
            onFinished={(job) => {
              setFinished(job.status === 'succeeded');
              void refresh();
            }}
          />
          {finished && restore.data.environment_id !== s.environment_id && (
            <Link to={`/environments/${restore.data.environment_id}`} className="text-sm font-medium text-sky-800 underline">
              Open the restored environment
            </Link>
          )}
        </div>
      )}
    </section>
  );
}

/** One snapshot: its metadata, its restore drill, restoring it, and any `actions` the page adds. */
export function SnapshotDetails({
  s,
  onClose,
  actions,
  inPlaceRestore = true,
}: {
  s: Snapshot;
  onClose: () => void;
  actions?: ReactNode;
  /** Offer restoring over the environment itself (false for an adopted environment: only into a new one). */
  inPlaceRestore?: boolean;
}) {
  const m = s.metadata;
  return (
    <section
      aria-labelledby="snapshot-details-heading"
      className="space-y-4 rounded-md border border-slate-300 bg-slate-50 p-4"
    >
      <div className="flex flex-wrap items-center justify-between gap-2">
        <h3 id="snapshot-details-heading" className="font-semibold">
          Snapshot <span className="font-mono">{shortId(s.id)}</span> · {dateTime(s.timestamp)}
        </h3>
        <Button variant="secondary" onClick={onClose}>
          Close details
        </Button>
      </div>
      <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm md:grid-cols-[auto_1fr_auto_1fr]">
        <dt className="text-slate-700">Status</dt>
        <dd>
          <Badge tone={s.status === 'complete' ? 'green' : s.status === 'failed' ? 'red' : 'blue'}>{s.status}</Badge>
        </dd>
        <dt className="text-slate-700">Size</dt>
        <dd>
          {bytes(s.size_bytes)} ({bytes(s.stored_bytes_added)} new in the vault)
        </dd>
        <dt className="text-slate-700">Jupyter</dt>
        <dd>{m.jupyter_version ?? '—'}</dd>
        <dt className="text-slate-700">Notebooks</dt>
        <dd>{m.notebook_count}</dd>
        <dt className="text-slate-700">Previous snapshot</dt>
        <dd className="font-mono text-xs" title={s.parent_id ?? undefined}>
          {shortId(s.parent_id)}
        </dd>
        <dt className="text-slate-700">Checksum</dt>
        <dd className="font-mono text-xs break-all">{s.checksum ? shortValueOf(s.checksum) : '—'}</dd>
        <dt className="text-slate-700">Stored at</dt>
        <dd className="font-mono text-xs break-all">{s.s3_location}</dd>
        <dt className="text-slate-700">Id</dt>
        <dd className="font-mono text-xs break-all">{s.id}</dd>
        <dt className="text-slate-700">Notes</dt>
        <dd className="md:col-span-3">{m.notes ?? '—'}</dd>
      </dl>
      <div className="grid gap-4 md:grid-cols-2">
        <details>
          <summary className="cursor-pointer text-sm font-medium text-slate-900">
            Packages in this snapshot ({m.installed_packages.length})
          </summary>
          <div role="region" aria-label="Packages in this snapshot" tabIndex={0} className="mt-2 max-h-48 overflow-auto">
            <ul className="columns-2 font-mono text-xs text-slate-800">
              {m.installed_packages.map((p) => (
                <li key={p}>{p}</li>
              ))}
            </ul>
          </div>
        </details>
        <details>
          <summary className="cursor-pointer text-sm font-medium text-slate-900">
            Configuration files ({m.configuration_files.length})
          </summary>
          <ul className="mt-2 font-mono text-xs break-all text-slate-800">
            {m.configuration_files.map((f) => (
              <li key={f}>{f}</li>
            ))}
          </ul>
        </details>
      </div>
      <div className="grid gap-6 lg:grid-cols-2">
        <Drill s={s} />
        <Restore s={s} inPlace={inPlaceRestore} />
        {actions}
      </div>
    </section>
  );
}

const shortValueOf = (v: string) => (v.length > 24 ? `${v.slice(0, 24)}…` : v);
