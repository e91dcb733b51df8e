import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';
import type { Handover } from './get-handovers';

export type HandoverRequest = components['schemas']['HandoverRequest'];

/**
 * `POST /api/knowledge/handover`: ownership moves to `to`, the previous owner
 * keeps read access until `read_until`, the package is regenerated and the
 * new researcher gets an onboarding checklist.
 */
export const createHandover = (lab: string | null, body: HandoverRequest) =>
  apiFetch<Handover>('/api/knowledge/handover', { method: 'POST', lab, body });

export function useCreateHandover() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: HandoverRequest) => createHandover(lab, body),
    // The owner changed (environments), and the handovers and package did (knowledge).
    onSuccess: () =>
      Promise.all([
        qc.invalidateQueries({ queryKey: queryKeys.knowledge.all(lab) }),
        qc.invalidateQueries({ queryKey: queryKeys.environments.all(lab) }),
      ]),
  });
}
