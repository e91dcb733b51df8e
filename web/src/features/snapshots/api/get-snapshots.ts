import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type Snapshot = components['schemas']['SnapshotResponse'];
export type SnapshotPage = components['schemas']['SnapshotPage'];

/** `GET /api/snapshots?environment_id=`: an environment's snapshots, newest first. */
export const getSnapshots = (lab: string | null, environmentId: string, signal?: AbortSignal) =>
  apiFetch<SnapshotPage>('/api/snapshots', {
    lab,
    signal,
    query: { environment_id: environmentId, limit: 100 },
  });

export const snapshotsQueryOptions = (lab: string | null, environmentId: string) =>
  queryOptions({
    queryKey: queryKeys.snapshots.list(lab, environmentId),
    queryFn: ({ signal }) => getSnapshots(lab, environmentId, signal),
    refetchInterval: (q) => (q.state.data?.items.some((s) => s.status === 'creating') ? 2000 : false),
  });

export function useSnapshots(environmentId: string) {
  const lab = useLabId();
  return useQuery(snapshotsQueryOptions(lab, environmentId));
}
