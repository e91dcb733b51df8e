/**
 * How many environments a lab has, how many run Jupyter, and how they drift:
 * `GET /api/environments` in the lab (`X-Westtek-Lab`), once per filter with
 * `limit=1`, reading each page's `total`. Exact for any number of
 * environments, without listing them.
 */
import { queryOptions, useQueries } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';

type EnvironmentPage = components['schemas']['EnvironmentPage'];

export type LabEnvironmentCounts = {
  total: number;
  running: number;
  drift: { STABLE: number; MINOR_DRIFT: number; CRITICAL_DRIFT: number };
};

const count = (lab: string, query: Record<string, string>, signal?: AbortSignal) =>
  apiFetch<EnvironmentPage>('/api/environments', { lab, signal, query: { ...query, limit: 1 } }).then((p) => p.total);

export async function getLabEnvironmentCounts(lab: string, signal?: AbortSignal): Promise<LabEnvironmentCounts> {
  const [total, running, stable, minor, critical] = await Promise.all([
    count(lab, {}, signal),
    count(lab, { jupyter_status: 'running' }, signal),
    count(lab, { drift_status: 'STABLE' }, signal),
    count(lab, { drift_status: 'MINOR_DRIFT' }, signal),
    count(lab, { drift_status: 'CRITICAL_DRIFT' }, signal),
  ]);
  return { total, running, drift: { STABLE: stable, MINOR_DRIFT: minor, CRITICAL_DRIFT: critical } };
}

export const labEnvironmentCountsQueryOptions = (lab: string) =>
  queryOptions({
    queryKey: queryKeys.admin.labEnvironments(lab),
    queryFn: ({ signal }) => getLabEnvironmentCounts(lab, signal),
    refetchInterval: 30_000,
  });

/** The counts of every lab, by lab id. */
export const useLabEnvironmentCounts = (labs: string[]) =>
  useQueries({ queries: labs.map((l) => labEnvironmentCountsQueryOptions(l)) });
