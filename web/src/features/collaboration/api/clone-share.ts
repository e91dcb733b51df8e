import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type CloneRequest = components['schemas']['CloneRequest'];
export type CloneAccepted = components['schemas']['RestoreAccepted'];

/**
 * `POST /api/collaboration/shares/{id}/clone`: restores what a `clone` share
 * gives into a new environment of the caller's lab → 202 with the job.
 */
export const cloneShare = (lab: string | null, id: string, body: CloneRequest) =>
  apiFetch<CloneAccepted>(`/api/collaboration/shares/${encodeURIComponent(id)}/clone`, { method: 'POST', lab, body });

export function useCloneShare() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (v: { id: string; body: CloneRequest }) => cloneShare(lab, v.id, v.body),
    onSuccess: () => qc.invalidateQueries({ queryKey: queryKeys.environments.all(lab) }),
  });
}
