import { useMutation, useQueryClient } from '@tanstack/react-query';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

/** `DELETE /api/collaboration/shares/{id}`: the other lab loses access at once. */
export const revokeShare = (lab: string | null, id: string) =>
  apiFetch<undefined>(`/api/collaboration/shares/${encodeURIComponent(id)}`, { method: 'DELETE', lab });

export function useRevokeShare() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (id: string) => revokeShare(lab, id),
    onSuccess: () => qc.invalidateQueries({ queryKey: queryKeys.collaboration.all(lab) }),
  });
}
