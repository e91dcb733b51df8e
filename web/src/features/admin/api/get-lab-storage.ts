import { queryOptions, useQueries } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';

export type LabStorage = components['schemas']['StorageResponse'];

/** `GET /api/labs/{id}/storage`: vault bytes the lab's snapshots added, against its quota. */
export const getLabStorage = (lab: string, signal?: AbortSignal) =>
  apiFetch<LabStorage>(`/api/labs/${encodeURIComponent(lab)}/storage`, { lab, signal });

export const labStorageQueryOptions = (lab: string) =>
  queryOptions({ queryKey: queryKeys.admin.labStorage(lab), queryFn: ({ signal }) => getLabStorage(lab, signal) });

export const useLabStorages = (labs: string[]) => useQueries({ queries: labs.map((l) => labStorageQueryOptions(l)) });
