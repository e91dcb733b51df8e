import { useMutation } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { useLabId } from '@/stores/ui';

export type JobAccepted = components['schemas']['JobAccepted'];

/**
 * `POST /api/snapshots/{id}/drill` → 202 with the drill job: restore into a
 * scratch dir, start the kernel, import what the notebooks import. The
 * result is kept on the snapshot (`drill`) when the job ends.
 */
export const drillSnapshot = (lab: string | null, id: string) =>
  apiFetch<JobAccepted>(`/api/snapshots/${encodeURIComponent(id)}/drill`, { method: 'POST', lab });

export function useDrillSnapshot() {
  const lab = useLabId();
  return useMutation({ mutationFn: (id: string) => drillSnapshot(lab, id) });
}
