/**
 * Every snapshot of a lab (`GET /api/snapshots` in the lab, page by page),
 * for the storage-over-time chart: each snapshot's time and the bytes it
 * added to the vault.
 */
import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';

type SnapshotPage = components['schemas']['SnapshotPage'];
export type Snapshot = components['schemas']['SnapshotResponse'];

const PAGE = 500;
/** Enough for years of a lab's snapshots; beyond it the chart says it is partial. */
const MAX_PAGES = 20;

export async function getLabSnapshots(lab: string, signal?: AbortSignal): Promise<{ items: Snapshot[]; total: number }> {
  const items: Snapshot[] = [];
  let total = 0;
  for (let page = 0; page < MAX_PAGES; page++) {
    const p = await apiFetch<SnapshotPage>('/api/snapshots', { lab, signal, query: { limit: PAGE, offset: page * PAGE } });
    items.push(...p.items);
    total = p.total;
    if (p.items.length < PAGE || items.length >= total) break;
  }
  return { items, total };
}

export const labSnapshotsQueryOptions = (lab: string) =>
  queryOptions({ queryKey: queryKeys.admin.labSnapshots(lab), queryFn: ({ signal }) => getLabSnapshots(lab, signal) });

export const useLabSnapshots = (lab: string) => useQuery({ ...labSnapshotsQueryOptions(lab), enabled: lab !== '' });
