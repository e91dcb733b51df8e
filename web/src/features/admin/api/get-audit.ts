import { keepPreviousData, queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';

export type AuditPage = components['schemas']['AuditPage'];
export type AuditEntry = components['schemas']['AuditEntryResponse'];

/** Filters of the audit trail; empty strings are left out. `since`/`until`: RFC 3339. */
export type AuditFilters = {
  lab_id?: string;
  actor?: string;
  action?: string;
  target_id?: string;
  since?: string;
  until?: string;
};

export const AUDIT_PAGE_SIZE = 50;

/** `GET /api/audit`: the trail, newest first, a page at a time. No lab header: IT admins see every lab. */
export const getAudit = (filters: AuditFilters, offset: number, signal?: AbortSignal) =>
  apiFetch<AuditPage>('/api/audit', { signal, query: { ...filters, limit: AUDIT_PAGE_SIZE, offset } });

export const auditQueryOptions = (filters: AuditFilters, offset: number) =>
  queryOptions({
    queryKey: queryKeys.admin.audit({ ...filters, offset }),
    queryFn: ({ signal }) => getAudit(filters, offset, signal),
    placeholderData: keepPreviousData,
  });

export const useAudit = (filters: AuditFilters, offset: number) => useQuery(auditQueryOptions(filters, offset));
