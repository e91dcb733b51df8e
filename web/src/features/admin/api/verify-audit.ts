import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';

export type AuditVerify = components['schemas']['AuditVerifyResponse'];

/** `GET /api/audit/verify`: checks the whole hash chain (IT admins). */
export const verifyAudit = (signal?: AbortSignal) => apiFetch<AuditVerify>('/api/audit/verify', { signal });

export const auditVerifyQueryOptions = () =>
  queryOptions({ queryKey: queryKeys.admin.auditVerify(), queryFn: ({ signal }) => verifyAudit(signal), staleTime: 0 });

export const useAuditVerify = () => useQuery(auditVerifyQueryOptions());
