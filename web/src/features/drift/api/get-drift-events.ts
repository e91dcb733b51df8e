import { queryOptions, useQuery } from '@tanstack/react-query';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';
import type { DriftEventPage } from './types';

export const EVENTS_LIMIT = 50;

/** `GET /api/drift/events`: the lab's (or one environment's) drift events, newest first. */
export const getDriftEvents = (lab: string | null, environmentId: string | undefined, signal?: AbortSignal) =>
  apiFetch<DriftEventPage>('/api/drift/events', {
    lab,
    signal,
    query: { environment_id: environmentId, limit: EVENTS_LIMIT },
  });

export const driftEventsQueryOptions = (lab: string | null, environmentId: string | undefined) =>
  queryOptions({
    queryKey: queryKeys.drift.events(lab, environmentId),
    queryFn: ({ signal }) => getDriftEvents(lab, environmentId, signal),
  });

export function useDriftEvents(environmentId?: string) {
  const lab = useLabId();
  return useQuery(driftEventsQueryOptions(lab, environmentId));
}
