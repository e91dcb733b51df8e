import { useMutation } from '@tanstack/react-query';
import { apiDownload, saveDownload } from '@/lib/api-client';
import { useLabId } from '@/stores/ui';

/**
 * `GET /api/knowledge/transfer/{id}/package.zip`: the whole transfer package
 * (summary, checklist, notebooks as Markdown, manifests, histories, redaction
 * report) as `transfer-<name>.zip`. Audited by the platform.
 */
export const downloadPackage = (lab: string | null, environmentId: string, name: string) =>
  apiDownload(`/api/knowledge/transfer/${encodeURIComponent(environmentId)}/package.zip`, {
    lab,
    fallbackName: `transfer-${name}.zip`,
  });

export function useDownloadPackage() {
  const lab = useLabId();
  return useMutation({
    mutationFn: (v: { environmentId: string; name: string }) => downloadPackage(lab, v.environmentId, v.name),
    onSuccess: saveDownload,
  });
}
