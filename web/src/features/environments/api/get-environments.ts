import { infiniteQueryOptions, useInfiniteQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type EnvironmentSummary = components['schemas']['EnvironmentSummary'];
export type EnvironmentPage = components['schemas']['EnvironmentPage'];

/** Page size: the API allows 1–500; 200 keeps each response small. */
export const PAGE_SIZE = 200;

/** `GET /api/environments`: a page of the lab's environments, newest first. */
export const getEnvironments = (p: {
  lab: string | null;
  q?: string | undefined;
  limit?: number;
  offset?: number;
  signal?: AbortSignal;
}) =>
  apiFetch<EnvironmentPage>('/api/environments', {
    lab: p.lab,
    signal: p.signal,
    query: { q: p.q, limit: p.limit ?? PAGE_SIZE, offset: p.offset ?? 0 },
  });

export const environmentsQueryOptions = (lab: string | null, q: string) =>
  infiniteQueryOptions({
    queryKey: queryKeys.environments.list(lab, { q }),
    queryFn: ({ pageParam, signal }) => getEnvironments({ lab, q, offset: pageParam, signal }),
    initialPageParam: 0,
    getNextPageParam: (last) => {
      const next = last.offset + last.items.length;
      return last.items.length > 0 && next < last.total ? next : undefined;
    },
    // Live status on the dashboard (Jupyter, builds); drift arrives over SSE too.
    refetchInterval: 15_000,
  });

/** The lab's environments, loaded page by page as the list scrolls. */
export function useEnvironments(q: string) {
  const lab = useLabId();
  return useInfiniteQuery(environmentsQueryOptions(lab, q));
}
