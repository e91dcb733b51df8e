import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { ME_KEY } from '@/lib/react-query';

export type Me = components['schemas']['MeResponse'];

/** `GET /api/me`: who is signed in (by the session cookie) and their labs. */
export const getMe = (signal?: AbortSignal) => apiFetch<Me>('/api/me', { signal });

export const meQueryOptions = () =>
  queryOptions({
    queryKey: ME_KEY,
    queryFn: ({ signal }) => getMe(signal),
    staleTime: 60_000,
    retry: false,
  });

export const useMe = () => useQuery(meQueryOptions());
