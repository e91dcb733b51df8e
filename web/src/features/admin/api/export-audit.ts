import { useMutation } from '@tanstack/react-query';
import { apiDownload, saveDownload } from '@/lib/api-client';
import type { AuditFilters } from './get-audit';

export type ExportFormat = 'csv' | 'json';

/** `GET /api/audit/export`: the filtered trail, oldest first, as a CSV or JSON attachment. */
export const exportAudit = (filters: AuditFilters, format: ExportFormat) =>
  apiDownload('/api/audit/export', { query: { ...filters, format }, fallbackName: `westtek-audit.${format}` });

export function useExportAudit() {
  return useMutation({
    mutationFn: (v: { filters: AuditFilters; format: ExportFormat }) => exportAudit(v.filters, v.format),
    onSuccess: saveDownload,
  });
}
