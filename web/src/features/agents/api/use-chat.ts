import { useEffect, useRef } from 'react';
import { toApiError } from '@/lib/api-client';
import { useLabId } from '@/stores/ui';
import { conversationKey, useChatStore, useConversation, type Turn } from '../store';
import { streamChat, type AgentId } from './chat';
import type { AgentChunk } from './types';

let turnSeq = 0;

function apply(t: Turn, c: AgentChunk): Turn {
  switch (c.type) {
    case 'text':
      return { ...t, answer: t.answer + c.text };
    case 'citation':
      return { ...t, citations: [...t.citations, { index: c.index, source: c.source, textSpan: c.textSpan }] };
    case 'tool_call':
      return { ...t, trace: [...t.trace, { kind: 'call', name: c.name, text: JSON.stringify(c.input ?? {}) }] };
    case 'tool_result':
      return { ...t, trace: [...t.trace, { kind: 'result', name: c.name, text: c.summary }] };
    case 'recommendation':
      return { ...t, recommendations: [...t.recommendations, c.recommendation] };
    case 'done':
      return { ...t, status: 'done' };
    case 'error':
      return { ...t, status: 'error', error: { title: 'The agent could not finish its answer', message: c.message } };
  }
}

/**
 * A conversation with an agent about an environment: `send` asks (with the
 * session id of earlier answers, for follow-ups) and streams the answer into
 * the conversation; `stop` abandons it.
 */
export function useChat(agent: AgentId, environmentId: string) {
  const lab = useLabId();
  const key = conversationKey(agent, environmentId);
  const conversation = useConversation(key);
  const running = useRef<AbortController | null>(null);
  useEffect(() => () => running.current?.abort(), []);

  const send = async (message: string) => {
    const store = useChatStore.getState();
    running.current?.abort();
    const ctl = new AbortController();
    running.current = ctl;
    const id = `turn-${++turnSeq}`;
    store.addTurn(key, { id, question: message, answer: '', citations: [], trace: [], recommendations: [], status: 'streaming' });
    const update = (f: (t: Turn) => Turn) => useChatStore.getState().updateTurn(key, id, f);
    const sessionId = useChatStore.getState().conversations[key]?.sessionId;
    try {
      await streamChat({
        agent,
        lab,
        signal: ctl.signal,
        body: { environment_id: environmentId, message, session_id: sessionId ?? null },
        onChunk: (c) => {
          if (c.type === 'done') useChatStore.getState().setSession(key, c.sessionId);
          update((t) => apply(t, c));
        },
      });
      update((t) =>
        t.status !== 'streaming'
          ? t
          : ctl.signal.aborted
            ? { ...t, status: 'stopped' }
            : { ...t, status: 'error', error: { title: 'The answer was cut off', message: 'The connection ended before the agent finished. Ask again.' } },
      );
    } catch (e) {
      const err = toApiError(e);
      update((t) => ({ ...t, status: 'error', error: { title: err.title, message: err.message } }));
    } finally {
      if (running.current === ctl) running.current = null;
    }
  };

  const stop = () => running.current?.abort();
  const streaming = conversation.turns.some((t) => t.status === 'streaming');
  return { key, conversation, send, stop, streaming };
}
