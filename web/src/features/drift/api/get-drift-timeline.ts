import { queryOptions, useQuery } from '@tanstack/react-query';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';
import type { DriftEventPage } from './types';

/** The most events one request may return (the API allows 1–1000). */
export const TIMELINE_LIMIT = 1000;

/**
 * `GET /api/drift/events` for the timeline chart: up to the latest 1,000
 * events of the lab (or one environment). Live events mark it stale
 * (`applyDriftEvent`), so the chart follows them.
 */
export const getDriftTimeline = (lab: string | null, environmentId: string | undefined, signal?: AbortSignal) =>
  apiFetch<DriftEventPage>('/api/drift/events', {
    lab,
    signal,
    query: { environment_id: environmentId, limit: TIMELINE_LIMIT },
  });

export const driftTimelineQueryOptions = (lab: string | null, environmentId: string | undefined) =>
  queryOptions({
    queryKey: queryKeys.drift.timeline(lab, environmentId),
    queryFn: ({ signal }) => getDriftTimeline(lab, environmentId, signal),
  });

export function useDriftTimeline(environmentId?: string) {
  const lab = useLabId();
  return useQuery(driftTimelineQueryOptions(lab, environmentId));
}
