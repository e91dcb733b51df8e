import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { useLabId } from '@/stores/ui';

type Environment = components['schemas']['EnvironmentResponse'];

/**
 * `GET /api/environments/{id}`, read here only for the name and lab of a
 * handover's environment (the onboarding list names them). Kept under the
 * knowledge key so it never mixes with the environments feature's cache.
 */
export const getEnvironmentBrief = (lab: string | null, id: string, signal?: AbortSignal) =>
  apiFetch<Environment>(`/api/environments/${encodeURIComponent(id)}`, { lab, signal });

export const environmentBriefQueryOptions = (lab: string | null, id: string) =>
  queryOptions({
    queryKey: ['knowledge', lab, 'environment', id] as const,
    queryFn: ({ signal }) => getEnvironmentBrief(lab, id, signal),
    staleTime: 60_000,
    select: (e) => ({ id: e.id, name: e.name, labId: e.lab_id, researcherId: e.researcher_id }),
  });

export function useEnvironmentBrief(id: string) {
  const lab = useLabId();
  return useQuery(environmentBriefQueryOptions(lab, id));
}
