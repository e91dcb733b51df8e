import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';
import type { Template } from './get-templates';

export type PublishTemplateRequest = components['schemas']['PublishTemplateRequest'];

/**
 * `POST /api/collaboration/templates`: publishes a complete snapshot as a
 * read-only template (the snapshot cannot be deleted while it is published).
 */
export const publishTemplate = (lab: string | null, body: PublishTemplateRequest) =>
  apiFetch<Template>('/api/collaboration/templates', { method: 'POST', lab, body });

export function usePublishTemplate() {
  const lab = useLabId();
  const qc = useQueryClient();
  return useMutation({
    mutationFn: (body: PublishTemplateRequest) => publishTemplate(lab, body),
    onSuccess: () => qc.invalidateQueries({ queryKey: queryKeys.collaboration.templates(lab) }),
  });
}
