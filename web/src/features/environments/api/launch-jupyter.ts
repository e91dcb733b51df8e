import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type LaunchResponse = components['schemas']['LaunchResponse'];

/** `POST /api/environments/jupyter`: starts JupyterLab and waits until it answers. */
export const launchJupyter = (lab: string | null, environmentId: string) =>
  apiFetch<LaunchResponse>('/api/environments/jupyter', {
    method: 'POST',
    lab,
    body: { environment_id: environmentId } satisfies components['schemas']['LaunchRequest'],
  });

export function useLaunchJupyter() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (environmentId: string) => launchJupyter(lab, environmentId),
    onSettled: () => qc.invalidateQueries({ queryKey: queryKeys.environments.all(lab) }),
  });
}
