import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type RestoreSnapshotRequest = components['schemas']['RestoreSnapshotRequest'];
export type RestoreAccepted = components['schemas']['RestoreAccepted'];

/**
 * `POST /api/snapshots/{id}/restore` → 202 with the restore job: into a new
 * environment of the lab (default), or in place after the environment's
 * present state is snapshotted.
 */
export const restoreSnapshot = (lab: string | null, id: string, body: RestoreSnapshotRequest) =>
  apiFetch<RestoreAccepted>(`/api/snapshots/${encodeURIComponent(id)}/restore`, { method: 'POST', lab, body });

export function useRestoreSnapshot() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (v: { id: string; body: RestoreSnapshotRequest }) => restoreSnapshot(lab, v.id, v.body),
    // A new environment is listed at once; an in-place restore snapshots first.
    onSuccess: () =>
      Promise.all([
        qc.invalidateQueries({ queryKey: queryKeys.environments.all(lab) }),
        qc.invalidateQueries({ queryKey: queryKeys.snapshots.all(lab) }),
      ]),
  });
}
