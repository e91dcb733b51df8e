import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type SyncResult = components['schemas']['SyncResponse'];

/** `POST /api/knowledge/sync/{id}`: writes the environment's knowledge now (it also happens on every snapshot). */
export const syncKnowledge = (lab: string | null, environmentId: string) =>
  apiFetch<SyncResult>(`/api/knowledge/sync/${encodeURIComponent(environmentId)}`, { method: 'POST', lab });

export function useSyncKnowledge() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (environmentId: string) => syncKnowledge(lab, environmentId),
    onSuccess: (_r, environmentId) => qc.invalidateQueries({ queryKey: queryKeys.knowledge.transfer(lab, environmentId) }),
  });
}
