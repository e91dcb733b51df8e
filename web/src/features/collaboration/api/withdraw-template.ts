import { useMutation, useQueryClient } from '@tanstack/react-query';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

/** `DELETE /api/collaboration/templates/{id}`: listed nowhere, cloned by no one; its snapshot may be deleted again. */
export const withdrawTemplate = (lab: string | null, id: string) =>
  apiFetch<undefined>(`/api/collaboration/templates/${encodeURIComponent(id)}`, { method: 'DELETE', lab });

export function useWithdrawTemplate() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => withdrawTemplate(lab, id),
    onSuccess: () => qc.invalidateQueries({ queryKey: queryKeys.collaboration.all(lab) }),
  });
}
