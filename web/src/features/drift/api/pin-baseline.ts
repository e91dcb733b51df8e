import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';
import type { EnvironmentDrift } from './types';

export type PinRequest = components['schemas']['PinRequest'];

/**
 * `PUT /api/environments/{id}/drift/baseline`: pins a complete snapshot as
 * the drift baseline, or unpins with `null` (the baseline then follows
 * snapshots and restores).
 */
export const pinBaseline = (lab: string | null, environmentId: string, body: PinRequest) =>
  apiFetch<EnvironmentDrift>(`/api/environments/${encodeURIComponent(environmentId)}/drift/baseline`, {
    method: 'PUT',
    lab,
    body,
  });

export function usePinBaseline() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (v: { environmentId: string; snapshotId: string | null }) =>
      pinBaseline(lab, v.environmentId, { snapshot_id: v.snapshotId }),
    onSuccess: (drift, v) => {
      qc.setQueryData(queryKeys.drift.environment(lab, v.environmentId), drift);
      return qc.invalidateQueries({ queryKey: queryKeys.drift.all(lab) });
    },
  });
}
