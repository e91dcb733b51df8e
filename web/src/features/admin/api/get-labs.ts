import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';

export type Lab = components['schemas']['LabResponse'];

/** `GET /api/labs`: every lab (IT admins), with its quotas. */
export const getLabs = (signal?: AbortSignal) => apiFetch<Lab[]>('/api/labs', { signal });

export const labsQueryOptions = () =>
  queryOptions({ queryKey: queryKeys.admin.labs(), queryFn: ({ signal }) => getLabs(signal) });

export const useLabs = () => useQuery(labsQueryOptions());
