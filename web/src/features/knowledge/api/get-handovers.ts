import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type Handover = components['schemas']['HandoverResponse'];

/**
 * `GET /api/knowledge/handovers?environment_id=`: an environment's handovers;
 * without an environment (null), the caller's own, to or from them.
 */
export const getHandovers = (lab: string | null, environmentId: string | null, signal?: AbortSignal) =>
  apiFetch<Handover[]>('/api/knowledge/handovers', {
    lab,
    signal,
    query: { environment_id: environmentId },
  });

export const handoversQueryOptions = (lab: string | null, environmentId: string | null) =>
  queryOptions({
    queryKey: queryKeys.knowledge.handovers(lab, environmentId),
    queryFn: ({ signal }) => getHandovers(lab, environmentId, signal),
  });

export function useHandovers(environmentId: string | null) {
  const lab = useLabId();
  return useQuery(handoversQueryOptions(lab, environmentId));
}

/** Whether onboarding still has steps to do. */
export const isOpen = (h: Pick<Handover, 'done' | 'total'>) => h.done < h.total;
