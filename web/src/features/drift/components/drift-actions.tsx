import { useQueryClient } from '@tanstack/react-query';
import { useState } from 'react';
import { Button } from '@/components/ui/button';
import { ConfirmDialog } from '@/components/ui/dialog';
import { ErrorMessage } from '@/components/ui/error-message';
import { JobProgress } from '@/components/ui/job-progress';
import { shortId } from '@/lib/format';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';
import { useAcceptDrift } from '../api/accept-drift';
import { usePinBaseline } from '../api/pin-baseline';
import { useRollbackDrift } from '../api/rollback-drift';
import type { EnvironmentDrift } from '../api/types';

type Action = 'accept' | 'rollback' | 'pin';

type Props = {
  drift: EnvironmentDrift;
  /** Rolling back replaces the files under a running kernel: the platform requires Jupyter stopped. */
  jupyterRunning: boolean;
  /**
   * The lab machine an adopted environment lives on: accepting (a snapshot)
   * is its agent's to do there, and the platform cannot roll its files back.
   */
  adoptedHost?: string | null;
};

/** What a finished accept or rollback changes: drift, snapshots (a new one each time), the environment. */
function useRefresh() {
  const lab = useLabId();
  const qc = useQueryClient();
  return () =>
    Promise.all([
      qc.invalidateQueries({ queryKey: queryKeys.drift.all(lab) }),
      qc.invalidateQueries({ queryKey: queryKeys.snapshots.all(lab) }),
      qc.invalidateQueries({ queryKey: queryKeys.environments.all(lab) }),
    ]);
}

/** Accept the drift (snapshot now as the new baseline), roll back to the baseline, or pin/unpin it. */
export function DriftActions({ drift, jupyterRunning, adoptedHost }: Props) {
  const accept = useAcceptDrift();
  const rollback = useRollbackDrift();
  const pin = usePinBaseline();
  const refresh = useRefresh();
  const [confirming, setConfirming] = useState<Action | null>(null);
  const baseline = drift.baseline_snapshot_id;
  if (!baseline) return null;
  const changed = drift.findings.length > 0;
  const envId = drift.environment_id;

  const run = (a: Action) => {
    const close = { onSuccess: () => setConfirming(null) };
    if (a === 'accept') accept.mutate(envId, close);
    else if (a === 'rollback') rollback.mutate({ environmentId: envId }, close);
    else pin.mutate({ environmentId: envId, snapshotId: drift.baseline_pinned ? null : baseline }, close);
  };
  const open = (a: Action) => {
    accept.reset();
    rollback.reset();
    pin.reset();
    setConfirming(a);
  };
  const busy = accept.isPending || rollback.isPending || pin.isPending;

  return (
    <div className="space-y-3">
      <div className="flex flex-wrap items-center gap-2">
        <Button onClick={() => open('accept')} disabled={!changed || busy || !!adoptedHost}>
          Accept changes
        </Button>
        <Button
          variant="danger"
          onClick={() => open('rollback')}
          disabled={!changed || jupyterRunning || busy || !!adoptedHost}
        >
          Roll back to baseline
        </Button>
        <Button variant="secondary" onClick={() => open('pin')} disabled={busy}>
          {drift.baseline_pinned ? 'Unpin baseline' : 'Pin baseline'}
        </Button>
      </div>
      {!changed && <p className="text-sm text-slate-700">Nothing to accept or roll back: the environment matches its baseline.</p>}
      {changed && adoptedHost && (
        <p className="text-sm text-slate-700">
          This environment was adopted from {adoptedHost}: to accept the changes, take a snapshot there with{' '}
          <code className="font-mono">westtek agent snapshot</code> (it becomes the baseline). The platform cannot roll
          its files back there; restore the baseline snapshot into a new environment instead.
        </p>
      )}
      {changed && !adoptedHost && jupyterRunning && (
        <p className="text-sm text-slate-700">Stop Jupyter to roll back: its files are replaced while kernels would be running.</p>
      )}
      {confirming === null && (accept.error ?? rollback.error ?? pin.error) ? (
        <ErrorMessage error={accept.error ?? rollback.error ?? pin.error} />
      ) : null}
      {confirming === 'accept' && (
        <ConfirmDialog
          title="Accept the changes?"
          confirmLabel="Accept and snapshot"
          tone="primary"
          busy={accept.isPending}
          error={accept.error}
          onConfirm={() => run('accept')}
          onCancel={() => setConfirming(null)}
        >
          <p>
            A snapshot of the environment as it is now is taken and becomes the drift baseline
            {drift.baseline_pinned ? ' (the pinned baseline moves to it)' : ''}.{' '}
            {drift.findings.length === 1
              ? 'The change listed stops being reported.'
              : `The ${drift.findings.length} changes listed stop being reported.`}
          </p>
        </ConfirmDialog>
      )}
      {confirming === 'rollback' && (
        <ConfirmDialog
          title="Roll back to the baseline?"
          confirmLabel="Roll back"
          busy={rollback.isPending}
          error={rollback.error}
          onConfirm={() => run('rollback')}
          onCancel={() => setConfirming(null)}
        >
          <p>
            The environment’s files are restored from baseline snapshot <span className="font-mono">{shortId(baseline)}</span>,
            undoing the {drift.findings.length} change{drift.findings.length === 1 ? '' : 's'} listed.
          </p>
          <p>The present state is snapshotted first, so the changes can be brought back by restoring that snapshot.</p>
        </ConfirmDialog>
      )}
      {confirming === 'pin' && (
        <ConfirmDialog
          title={drift.baseline_pinned ? 'Unpin the baseline?' : 'Pin the baseline?'}
          confirmLabel={drift.baseline_pinned ? 'Unpin' : 'Pin'}
          tone="primary"
          busy={pin.isPending}
          error={pin.error}
          onConfirm={() => run('pin')}
          onCancel={() => setConfirming(null)}
        >
          {drift.baseline_pinned ? (
            <p>The baseline will follow the environment again: every new snapshot or restore becomes the baseline.</p>
          ) : (
            <p>
              Snapshot <span className="font-mono">{shortId(baseline)}</span> stays the baseline even when new snapshots are
              taken, until you accept changes or unpin it. A pinned baseline cannot be deleted.
            </p>
          )}
        </ConfirmDialog>
      )}
      {accept.data && (
        <JobProgress key={accept.data.job_id} jobId={accept.data.job_id} label="Accepting changes" onFinished={() => void refresh()} />
      )}
      {rollback.data && (
        <JobProgress key={rollback.data.job_id} jobId={rollback.data.job_id} label="Rolling back" onFinished={() => void refresh()} />
      )}
    </div>
  );
}
