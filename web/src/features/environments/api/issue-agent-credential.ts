import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type AgentTokenResponse = components['schemas']['AgentTokenResponse'];

/**
 * `POST /api/environments/{id}/agent-credential`: a new credential for an
 * adopted environment's agent; the old one stops working at once. The token
 * is in this answer only: the platform keeps no copy it could show again.
 */
export const issueAgentCredential = (lab: string | null, environmentId: string) =>
  apiFetch<AgentTokenResponse>(`/api/environments/${encodeURIComponent(environmentId)}/agent-credential`, {
    method: 'POST',
    lab,
  });

export function useIssueAgentCredential() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (environmentId: string) => issueAgentCredential(lab, environmentId),
    // The environment's `agent_credential` (id, issued_at) changed.
    onSuccess: (_, environmentId) => qc.invalidateQueries({ queryKey: queryKeys.environments.detail(lab, environmentId) }),
  });
}
