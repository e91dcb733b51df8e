import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';
import type { Share } from './get-shares';

export type ShareRequest = components['schemas']['ShareRequest'];

/** `POST /api/collaboration/share`: shares an environment, snapshot or template with another lab. */
export const createShare = (lab: string | null, body: ShareRequest) =>
  apiFetch<Share>('/api/collaboration/share', { method: 'POST', lab, body });

export function useCreateShare() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: ShareRequest) => createShare(lab, body),
    onSuccess: () => qc.invalidateQueries({ queryKey: queryKeys.collaboration.all(lab) }),
  });
}
