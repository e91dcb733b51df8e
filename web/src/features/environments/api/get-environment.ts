import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type Environment = components['schemas']['EnvironmentResponse'];

/** `GET /api/environments/{id}`. */
export const getEnvironment = (lab: string | null, id: string, signal?: AbortSignal) =>
  apiFetch<Environment>(`/api/environments/${encodeURIComponent(id)}`, { lab, signal });

export const environmentQueryOptions = (lab: string | null, id: string) =>
  queryOptions({
    queryKey: queryKeys.environments.detail(lab, id),
    queryFn: ({ signal }) => getEnvironment(lab, id, signal),
    // While it builds or Jupyter starts, keep it fresh.
    refetchInterval: (q) =>
      q.state.data?.status === 'provisioning' || q.state.data?.jupyter_status === 'starting' ? 2000 : 15_000,
  });

export function useEnvironment(id: string) {
  const lab = useLabId();
  return useQuery(environmentQueryOptions(lab, id));
}
