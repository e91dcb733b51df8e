import { useMutation, useQueryClient } from '@tanstack/react-query';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';
import type { CloneAccepted, CloneRequest } from './clone-share';

/** `POST /api/collaboration/templates/{id}/clone`: a new environment of the caller's lab from a template → 202 with the job. */
export const cloneTemplate = (lab: string | null, id: string, body: CloneRequest) =>
  apiFetch<CloneAccepted>(`/api/collaboration/templates/${encodeURIComponent(id)}/clone`, { method: 'POST', lab, body });

export function useCloneTemplate() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (v: { id: string; body: CloneRequest }) => cloneTemplate(lab, v.id, v.body),
    onSuccess: () => qc.invalidateQueries({ queryKey: queryKeys.environments.all(lab) }),
  });
}
