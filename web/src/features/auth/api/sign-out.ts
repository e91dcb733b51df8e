import { useMutation, useQueryClient } from '@tanstack/react-query';
import { apiFetch } from '@/lib/api-client';

/** `POST /api/auth/logout`: revokes the refresh cookie and clears both cookies. */
export const signOut = () => apiFetch<undefined>('/api/auth/logout', { method: 'POST' });

export function useSignOut() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: signOut,
    onSettled: () => qc.clear(),
  });
}
