import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type CreateSnapshotRequest = components['schemas']['CreateSnapshotRequest'];
export type SnapshotAccepted = components['schemas']['SnapshotAccepted'];

/** `POST /api/environments/snapshot` → 202 with the snapshot job. */
export const createSnapshot = (lab: string | null, body: CreateSnapshotRequest) =>
  apiFetch<SnapshotAccepted>('/api/environments/snapshot', { method: 'POST', lab, body });

export function useCreateSnapshot() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: CreateSnapshotRequest) => createSnapshot(lab, body),
    onSuccess: () => qc.invalidateQueries({ queryKey: queryKeys.snapshots.all(lab) }),
  });
}

/** What a finished snapshot job changes elsewhere: the list, `last_snapshot`, the drift baseline. */
export function useSnapshotFinished() {
  const lab = useLabId();
  const qc = useQueryClient();
  return () =>
    Promise.all([
      qc.invalidateQueries({ queryKey: queryKeys.snapshots.all(lab) }),
      qc.invalidateQueries({ queryKey: queryKeys.environments.all(lab) }),
      qc.invalidateQueries({ queryKey: queryKeys.drift.all(lab) }),
    ]);
}
