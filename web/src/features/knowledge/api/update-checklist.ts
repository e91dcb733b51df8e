import { useMutation, useQueryClient } from '@tanstack/react-query';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';
import type { Handover } from './get-handovers';

/** `PUT /api/knowledge/handovers/{id}/checklist/{key}` `{done}`: the new researcher (or a lab admin) ticks a step. */
export const updateChecklist = (lab: string | null, handoverId: string, key: string, done: boolean) =>
  apiFetch<Handover>(`/api/knowledge/handovers/${encodeURIComponent(handoverId)}/checklist/${encodeURIComponent(key)}`, {
    method: 'PUT',
    lab,
    body: { done },
  });

export function useUpdateChecklist() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (v: { handoverId: string; key: string; done: boolean }) => updateChecklist(lab, v.handoverId, v.key, v.done),
    onSuccess: (h) => {
      // The answer is the handover as it is now: put it in every list that holds it, then re-read.
      for (const key of [queryKeys.knowledge.handovers(lab, null), queryKeys.knowledge.handovers(lab, h.environment_id)]) {
        qc.setQueryData<Handover[]>(key, (list) => list?.map((x) => (x.id === h.id ? h : x)));
      }
      return Promise.all([
        qc.invalidateQueries({ queryKey: ['knowledge', lab, 'handovers'] }),
        qc.invalidateQueries({ queryKey: queryKeys.knowledge.transfer(lab, h.environment_id) }),
      ]);
    },
  });
}
