import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';

export type SandboxReport = components['schemas']['SandboxReport'];

/** `GET /api/admin/sandbox`: whether notebooks are confined on this host (IT admins). */
export const getSandbox = (signal?: AbortSignal) => apiFetch<SandboxReport>('/api/admin/sandbox', { signal });

export const sandboxQueryOptions = () =>
  queryOptions({ queryKey: queryKeys.admin.sandbox(), queryFn: ({ signal }) => getSandbox(signal), staleTime: 60_000 });

export const useSandbox = (enabled: boolean) => useQuery({ ...sandboxQueryOptions(), enabled });
