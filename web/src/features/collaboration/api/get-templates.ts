import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type Template = components['schemas']['TemplateResponse'];

/** `GET /api/collaboration/templates`: the lab's own templates and those shared with it (while shared). */
export const getTemplates = (lab: string | null, signal?: AbortSignal) =>
  apiFetch<Template[]>('/api/collaboration/templates', { lab, signal });

export const templatesQueryOptions = (lab: string | null) =>
  queryOptions({
    queryKey: queryKeys.collaboration.templates(lab),
    queryFn: ({ signal }) => getTemplates(lab, signal),
  });

export function useTemplates() {
  const lab = useLabId();
  return useQuery(templatesQueryOptions(lab));
}

/** A template of another lab reaches this one through a share. */
export const isSharedIn = (t: Pick<Template, 'share_id'>) => !!t.share_id;
