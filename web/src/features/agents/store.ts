/**
 * The chat panel's UI state (whether it is open is in the shared UI store,
 * since the page and the toasts make room for it): the agent picked, drafts, and
 * each conversation (per agent and environment) with its session id for
 * follow-ups. Answers are streams the portal renders as they arrive, not
 * server state to cache, so they live here and not in React Query. Nothing
 * is persisted: a reload starts new conversations.
 */
import { create } from 'zustand';
import type { AgentId } from './api/chat';
import type { Recommendation, SourceRef } from './api/types';

export type Citation = { index: number; source: SourceRef; textSpan: [number, number] };
export type TraceStep = { kind: 'call' | 'result'; name: string; text: string };

export type Turn = {
  id: string;
  question: string;
  answer: string;
  citations: Citation[];
  trace: TraceStep[];
  recommendations: Recommendation[];
  status: 'streaming' | 'done' | 'error' | 'stopped';
  error?: { title: string; message: string };
};

export type Conversation = { sessionId: string | undefined; turns: Turn[] };

export const conversationKey = (agent: AgentId, environmentId: string) => `${agent}:${environmentId}`;

type ChatState = {
  agent: AgentId;
  setAgent: (a: AgentId) => void;
  drafts: Record<string, string>;
  setDraft: (key: string, text: string) => void;
  conversations: Record<string, Conversation>;
  /** Changes one turn of a conversation. */
  updateTurn: (key: string, turnId: string, f: (t: Turn) => Turn) => void;
  addTurn: (key: string, t: Turn) => void;
  setSession: (key: string, sessionId: string) => void;
  clear: (key: string) => void;
};

const empty: Conversation = { sessionId: undefined, turns: [] };

export const useChatStore = create<ChatState>()((set) => ({
  agent: 'drift',
  setAgent: (agent) => set({ agent }),
  drafts: {},
  setDraft: (key, text) => set((s) => ({ drafts: { ...s.drafts, [key]: text } })),
  conversations: {},
  addTurn: (key, t) =>
    set((s) => {
      const c = s.conversations[key] ?? empty;
      return { conversations: { ...s.conversations, [key]: { ...c, turns: [...c.turns, t] } } };
    }),
  updateTurn: (key, turnId, f) =>
    set((s) => {
      const c = s.conversations[key];
      if (!c) return s;
      return {
        conversations: { ...s.conversations, [key]: { ...c, turns: c.turns.map((t) => (t.id === turnId ? f(t) : t)) } },
      };
    }),
  setSession: (key, sessionId) =>
    set((s) => ({ conversations: { ...s.conversations, [key]: { ...(s.conversations[key] ?? empty), sessionId } } })),
  clear: (key) =>
    set((s) => {
      const { [key]: _gone, ...rest } = s.conversations;
      return { conversations: rest };
    }),
}));

export const useConversation = (key: string): Conversation => useChatStore((s) => s.conversations[key] ?? empty);
