import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type TransferSummary = components['schemas']['TransferSummary'];
export type NotebookView = components['schemas']['NotebookView'];
export type ChecklistItem = components['schemas']['ChecklistItemView'];

/**
 * `GET /api/knowledge/transfer?environment_id=`: the transfer package at a
 * glance (generated summary, notebooks in run order, onboarding checklist,
 * redaction counts). The platform syncs the knowledge base first when the
 * environment has none yet, so the first answer may take a moment.
 */
export const getTransfer = (lab: string | null, environmentId: string, signal?: AbortSignal) =>
  apiFetch<TransferSummary>('/api/knowledge/transfer', { lab, signal, query: { environment_id: environmentId } });

export const transferQueryOptions = (lab: string | null, environmentId: string) =>
  queryOptions({
    queryKey: queryKeys.knowledge.transfer(lab, environmentId),
    queryFn: ({ signal }) => getTransfer(lab, environmentId, signal),
    staleTime: 60_000,
  });

export function useTransfer(environmentId: string) {
  const lab = useLabId();
  return useQuery(transferQueryOptions(lab, environmentId));
}
