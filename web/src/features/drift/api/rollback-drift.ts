import { useMutation } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { useLabId } from '@/stores/ui';

export type RollbackRequest = components['schemas']['RollbackRequest'];
export type RestoreAccepted = components['schemas']['RestoreAccepted'];

/**
 * `POST /api/environments/{id}/drift/rollback` → 202: restores the baseline
 * (or the named snapshot) in place after snapshotting the present state.
 * Jupyter must be stopped.
 */
export const rollbackDrift = (lab: string | null, environmentId: string, body: RollbackRequest) =>
  apiFetch<RestoreAccepted>(`/api/environments/${encodeURIComponent(environmentId)}/drift/rollback`, {
    method: 'POST',
    lab,
    body,
  });

export function useRollbackDrift() {
  const lab = useLabId();
  return useMutation({
    mutationFn: (v: { environmentId: string; snapshotId?: string | null }) =>
      rollbackDrift(lab, v.environmentId, { snapshot_id: v.snapshotId ?? null }),
  });
}
