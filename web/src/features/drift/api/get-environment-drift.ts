import { queryOptions, useQuery } from '@tanstack/react-query';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';
import type { EnvironmentDrift } from './types';

/** `GET /api/environments/{id}/drift`: status, baseline, findings, latest analysis. */
export const getEnvironmentDrift = (lab: string | null, id: string, signal?: AbortSignal) =>
  apiFetch<EnvironmentDrift>(`/api/environments/${encodeURIComponent(id)}/drift`, { lab, signal });

/** Until the watcher has the environment (right after its first snapshot) the state is polled, so "Watched live." shows as soon as it is. */
export const UNWATCHED_POLL_MS = 3000;

export const environmentDriftQueryOptions = (lab: string | null, id: string) =>
  queryOptions({
    queryKey: queryKeys.drift.environment(lab, id),
    queryFn: ({ signal }) => getEnvironmentDrift(lab, id, signal),
    refetchInterval: (q) => (q.state.data && !q.state.data.watched && q.state.data.baseline_snapshot_id ? UNWATCHED_POLL_MS : false),
  });

export function useEnvironmentDrift(id: string) {
  const lab = useLabId();
  return useQuery(environmentDriftQueryOptions(lab, id));
}
