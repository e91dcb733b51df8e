/**
 * `POST /api/agents/drift/chat` (Drift Analyzer) and
 * `POST /api/agents/knowledge/chat` (Knowledge Transfer): the same request
 * (`{environment_id, message, session_id?}`) and the same stream of chunks,
 * read with the portal's SSE-over-fetch helper.
 */
import type { components } from '@/api/schema';
import { ApiError } from '@/lib/api-client';
import { readEventStream } from '@/lib/sse';
import { parseChunk, type AgentChunk } from './types';

/** Both agents take the same request (`ChatRequest` in the API). */
export type ChatRequest = components['schemas']['ChatRequest'];

export type AgentId = 'drift' | 'knowledge';

export const AGENTS: { id: AgentId; name: string; blurb: string }[] = [
  { id: 'drift', name: 'Drift Analyzer', blurb: 'Explains what drifted in this environment and what to do about it.' },
  { id: 'knowledge', name: 'Knowledge Transfer', blurb: 'Answers questions about this environment from its notebooks and documents.' },
];

export const agentName = (id: AgentId) => AGENTS.find((a) => a.id === id)!.name;

const PATHS: Record<AgentId, string> = {
  drift: '/api/agents/drift/chat',
  knowledge: '/api/agents/knowledge/chat',
};

/** Whether an error means the platform has no such endpoint (an older platform). */
export const isMissingEndpoint = (e: unknown) =>
  e instanceof ApiError && e.status === 404 && (e.code === 'route_not_found' || e.code === 'http_404');

/**
 * Asks an agent; calls `onChunk` for every chunk as it arrives. Resolves when
 * the stream ends; rejects with an `ApiError` when the request is refused
 * (a missing endpoint is explained in words, see `isMissingEndpoint`).
 */
export async function streamChat(p: {
  agent: AgentId;
  lab: string | null;
  body: ChatRequest;
  signal: AbortSignal;
  onChunk: (c: AgentChunk) => void;
}): Promise<void> {
  try {
    await readEventStream(PATHS[p.agent], {
      method: 'POST',
      body: p.body,
      lab: p.lab,
      signal: p.signal,
      onMessage: (m) => {
        const c = parseChunk(m.event, m.data);
        if (c) p.onChunk(c);
      },
    });
  } catch (e) {
    if (isMissingEndpoint(e)) {
      throw new ApiError({
        status: 404,
        code: 'route_not_found',
        title: `${agentName(p.agent)} is not available`,
        message: `This platform does not offer the ${agentName(p.agent)} agent yet. Ask your IT admin to update it, or pick another agent.`,
      });
    }
    throw e;
  }
}
