/**
 * `GET /api/knowledge/documents?path=` → `{path, content_type, text}`: a
 * knowledge-base document (what an agent's citation or an onboarding step's
 * source opens; citation spans are UTF-8 byte ranges of `text`). Shared by
 * the agents and knowledge features, so it lives here with the drawer that
 * shows it (`components/document-drawer.tsx`). A platform without the
 * endpoint answers 404 `route_not_found`, explained in words.
 */
import { queryOptions, useQuery } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { useLabId } from '@/stores/ui';
import { ApiError, apiFetch } from './api-client';

export type KnowledgeDocument = components['schemas']['DocumentResponse'];

const isMissingEndpoint = (e: unknown) =>
  e instanceof ApiError && e.status === 404 && (e.code === 'route_not_found' || e.code === 'http_404');

export async function getDocument(lab: string | null, path: string, signal?: AbortSignal): Promise<KnowledgeDocument> {
  let doc: KnowledgeDocument;
  try {
    doc = await apiFetch<KnowledgeDocument>('/api/knowledge/documents', { lab, signal, query: { path } });
  } catch (e) {
    if (isMissingEndpoint(e)) {
      throw new ApiError({
        status: 404,
        code: 'route_not_found',
        title: 'Documents cannot be opened here yet',
        message: 'This platform does not serve knowledge-base documents yet. The source is named above.',
      });
    }
    throw e;
  }
  // Checked: the drawer highlights by byte offsets into the text.
  if (typeof (doc as Partial<KnowledgeDocument>).text !== 'string') {
    throw new ApiError({
      status: 200,
      code: 'bad_response',
      title: 'The server sent something unexpected',
      message: 'The document came without its text; reload the page and try again.',
    });
  }
  return doc;
}

export const documentQueryOptions = (lab: string | null, path: string) =>
  queryOptions({
    queryKey: ['knowledge', lab, 'document', path] as const,
    queryFn: ({ signal }) => getDocument(lab, path, signal),
    staleTime: 5 * 60_000,
  });

export function useDocument(path: string) {
  const lab = useLabId();
  return useQuery(documentQueryOptions(lab, path));
}
