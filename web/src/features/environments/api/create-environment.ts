import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type CreateEnvironmentRequest = components['schemas']['CreateEnvironmentRequest'];
export type JobAccepted = components['schemas']['JobAccepted'];

/** `POST /api/environments` → 202 with the build job. */
export const createEnvironment = (lab: string | null, body: CreateEnvironmentRequest) =>
  apiFetch<JobAccepted>('/api/environments', { method: 'POST', lab, body });

export function useCreateEnvironment() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: CreateEnvironmentRequest) => createEnvironment(lab, body),
    onSuccess: () => qc.invalidateQueries({ queryKey: queryKeys.environments.all(lab) }),
  });
}
