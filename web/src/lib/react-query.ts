/** The portal's React Query client: retries only what retrying can fix. */
import { MutationCache, QueryCache, QueryClient } from '@tanstack/react-query';
import { ApiError } from './api-client';

/** Query key of the signed-in user; a 401 anywhere re-checks it. */
export const ME_KEY = ['me'] as const;

function retry(failureCount: number, error: unknown): boolean {
  if (error instanceof ApiError && error.status >= 400 && error.status < 500) return false;
  return failureCount < 2;
}

export function makeQueryClient(): QueryClient {
  // A 401 on any request means the session ended: re-check who we are, so
  // the app shows the sign-in page (the `me` query itself never loops).
  const onError = (error: unknown, key?: readonly unknown[]) => {
    if (error instanceof ApiError && error.isUnauthenticated && key?.[0] !== ME_KEY[0]) {
      void client.invalidateQueries({ queryKey: ME_KEY });
    }
  };
  const client: QueryClient = new QueryClient({
    queryCache: new QueryCache({ onError: (e, q) => onError(e, q.queryKey) }),
    // Sign-in itself answers 401 for a bad link: it opts out with `meta.signIn`.
    mutationCache: new MutationCache({ onError: (e, _v, _c, m) => (m.meta?.signIn ? undefined : onError(e)) }),
    defaultOptions: {
      queries: { retry, staleTime: 10_000, refetchOnWindowFocus: true },
      mutations: { retry: false },
    },
  });
  return client;
}
