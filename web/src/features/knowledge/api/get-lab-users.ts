import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type LabUser = components['schemas']['UserResponse'];

/** `GET /api/labs/{lab}/users`: who can take an environment over, and names for user ids. */
export const getLabUsers = (lab: string | null, labId: string, signal?: AbortSignal) =>
  apiFetch<LabUser[]>(`/api/labs/${encodeURIComponent(labId)}/users`, { lab, signal });

export const labUsersQueryOptions = (lab: string | null, labId: string) =>
  queryOptions({
    queryKey: queryKeys.knowledge.labUsers(lab, labId),
    queryFn: ({ signal }) => getLabUsers(lab, labId, signal),
    staleTime: 60_000,
  });

export function useLabUsers(labId: string | undefined) {
  const lab = useLabId();
  return useQuery({ ...labUsersQueryOptions(lab, labId ?? ''), enabled: !!labId });
}

/** A user's name for an id, from a lab's users; the short id when unknown. */
export function userName(users: LabUser[] | undefined, id: string): string {
  const u = users?.find((x) => x.id === id || x.username === id);
  if (!u) return id.length > 12 ? `user …${id.slice(-8)}` : id;
  return u.display_name && u.display_name !== u.username ? `${u.display_name} (${u.username})` : u.username;
}
