import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type Share = components['schemas']['ShareResponse'];
export type Direction = 'given' | 'received';

/**
 * `GET /api/collaboration/shares?direction=`: `given` (the lab's shares with
 * others, expired and revoked ones included) or `received` (active shares
 * with the lab).
 */
export const getShares = (lab: string | null, direction: Direction, signal?: AbortSignal) =>
  apiFetch<Share[]>('/api/collaboration/shares', { lab, signal, query: { direction } });

export const sharesQueryOptions = (lab: string | null, direction: Direction) =>
  queryOptions({
    queryKey: queryKeys.collaboration.shares(lab, direction),
    queryFn: ({ signal }) => getShares(lab, direction, signal),
  });

export function useShares(direction: Direction) {
  const lab = useLabId();
  return useQuery(sharesQueryOptions(lab, direction));
}

export type ShareState = { kind: 'active' | 'expired' | 'revoked'; words: string };

const DAY = 24 * 3600_000;

/** Whether a share grants access now, in words: "expires in 3 days", "expired", "revoked". `now` for tests. */
export function shareState(s: Pick<Share, 'active' | 'expires_at' | 'revoked_at'>, now: number = Date.now()): ShareState {
  if (s.revoked_at) return { kind: 'revoked', words: 'Revoked' };
  const end = s.expires_at ? Date.parse(s.expires_at) : NaN;
  if (!s.active || (!Number.isNaN(end) && end <= now)) return { kind: 'expired', words: 'Expired' };
  if (Number.isNaN(end)) return { kind: 'active', words: 'Active, no expiry' };
  const left = end - now;
  if (left < 3600_000) return { kind: 'active', words: `Expires in ${Math.max(1, Math.round(left / 60_000))} min` };
  if (left < DAY) {
    const h = Math.round(left / 3600_000);
    return { kind: 'active', words: `Expires in ${h} hour${h === 1 ? '' : 's'}` };
  }
  const d = Math.round(left / DAY);
  return { kind: 'active', words: `Expires in ${d} day${d === 1 ? '' : 's'}` };
}

export const RESOURCE_WORDS: Record<string, string> = {
  environment: 'Environment',
  snapshot: 'Snapshot',
  template: 'Template',
};

export const PERMISSION_WORDS: Record<string, string> = {
  read: 'Read only',
  clone: 'Read and clone',
};
