import { useMutation, useQueryClient } from '@tanstack/react-query';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

/**
 * `DELETE /api/environments/{id}/agent-credential` → 204: the adopted
 * environment's agent is not heard until a new credential is issued.
 */
export const revokeAgentCredential = (lab: string | null, environmentId: string) =>
  apiFetch<undefined>(`/api/environments/${encodeURIComponent(environmentId)}/agent-credential`, {
    method: 'DELETE',
    lab,
  });

export function useRevokeAgentCredential() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (environmentId: string) => revokeAgentCredential(lab, environmentId),
    onSuccess: (_, environmentId) => qc.invalidateQueries({ queryKey: queryKeys.environments.detail(lab, environmentId) }),
  });
}
