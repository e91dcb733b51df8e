import { useMutation, useQueryClient } from '@tanstack/react-query';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

/** `DELETE /api/environments/{id}/jupyter`. */
export const stopJupyter = (lab: string | null, environmentId: string) =>
  apiFetch<undefined>(`/api/environments/${encodeURIComponent(environmentId)}/jupyter`, { method: 'DELETE', lab });

export function useStopJupyter() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (environmentId: string) => stopJupyter(lab, environmentId),
    onSettled: () => qc.invalidateQueries({ queryKey: queryKeys.environments.all(lab) }),
  });
}
