import { useMutation } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { useLabId } from '@/stores/ui';

export type AcceptResponse = components['schemas']['AcceptResponse'];

/**
 * `POST /api/environments/{id}/drift/accept` → 202: the present state is
 * snapshotted and that snapshot becomes the baseline when the job completes.
 */
export const acceptDrift = (lab: string | null, environmentId: string) =>
  apiFetch<AcceptResponse>(`/api/environments/${encodeURIComponent(environmentId)}/drift/accept`, { method: 'POST', lab });

export function useAcceptDrift() {
  const lab = useLabId();
  return useMutation({ mutationFn: (environmentId: string) => acceptDrift(lab, environmentId) });
}
