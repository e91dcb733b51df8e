import { useEffect, useId, useRef, useState, type FormEvent, type KeyboardEvent } from 'react';
import { DocumentDrawer } from '@/components/document-drawer';
import { Button } from '@/components/ui/button';
import { Spinner } from '@/components/ui/spinner';
import { useUiStore } from '@/stores/ui';
import { AGENTS, agentName, type AgentId } from '../api/chat';
import { recommendationWords, type SourceRef } from '../api/types';
import { useChat } from '../api/use-chat';
import { useChatStore, type Turn } from '../store';
import { Answer } from './answer';

const SUGGESTIONS: Record<AgentId, string[]> = {
  drift: ['What changed since the baseline?', 'Which notebooks are affected?', 'What should I do about it?'],
  knowledge: ['What is this environment for?', 'How do I rerun the analysis?'],
};

function TurnView({ turn, agent, onOpenDocument }: { turn: Turn; agent: AgentId; onOpenDocument: (s: SourceRef) => void }) {
  return (
    <li className="space-y-2" aria-busy={turn.status === 'streaming' || undefined}>
      <div className="ml-8 rounded-md bg-sky-50 p-2 text-sm text-slate-900 ring-1 ring-sky-200">
        <span className="sr-only">You asked: </span>
        {turn.question}
      </div>
      <div className="space-y-2 rounded-md bg-white p-2 ring-1 ring-slate-200" data-testid="agent-answer">
        <p className="text-xs font-semibold text-slate-700">{agentName(agent)}</p>
        {turn.status === 'streaming' && turn.answer === '' && <Spinner size="sm" label="Thinking…" />}
        {turn.answer !== '' && (
          <Answer turnId={turn.id} answer={turn.answer} citations={turn.citations} onOpenDocument={onOpenDocument} />
        )}
        {turn.recommendations.map((r, i) => (
          <p key={r.id ?? i} className="rounded-md bg-amber-50 p-2 text-sm text-amber-950 ring-1 ring-amber-300">
            <span className="font-semibold">Recommendation:</span> {recommendationWords(r)}
          </p>
        ))}
        {turn.trace.length > 0 && (
          <details className="text-xs text-slate-800">
            <summary className="cursor-pointer">How it found out ({turn.trace.filter((s) => s.kind === 'call').length} look-ups)</summary>
            <ul className="mt-1 space-y-0.5">
              {turn.trace.map((s, i) => (
                <li key={i} className="break-words">
                  {s.kind === 'call' ? (
                    <>
                      Looked up <span className="font-mono">{s.name}</span>
                    </>
                  ) : (
                    <>
                      <span aria-hidden="true">→ </span>
                      {s.text}
                    </>
                  )}
                </li>
              ))}
            </ul>
          </details>
        )}
        {turn.status === 'error' && turn.error && (
          <div role="alert" className="rounded-md border border-red-300 bg-red-50 p-2 text-sm text-red-900">
            <p className="font-semibold">{turn.error.title}</p>
            <p>{turn.error.message}</p>
          </div>
        )}
        {turn.status === 'stopped' && <p className="text-xs text-slate-700">Stopped before the answer was complete.</p>}
      </div>
    </li>
  );
}

/** Opens the docked chat panel. */
export function AskAgentButton() {
  const open = useUiStore((s) => s.chatOpen);
  const setOpen = useUiStore((s) => s.setChatOpen);
  return (
    <Button variant="secondary" aria-expanded={open} aria-controls="agent-chat" onClick={() => setOpen(!open)}>
      {open ? 'Close agent chat' : 'Ask an agent'}
    </Button>
  );
}

/**
 * The agent chat, docked to the right edge: pick the Drift Analyzer or the
 * Knowledge Transfer agent, ask about this environment, read the answer as
 * it streams, follow its footnotes to their sources.
 */
export function ChatPanel({ environmentId }: { environmentId: string }) {
  const open = useUiStore((s) => s.chatOpen);
  const setOpen = useUiStore((s) => s.setChatOpen);
  const agent = useChatStore((s) => s.agent);
  const setAgent = useChatStore((s) => s.setAgent);
  const chat = useChat(agent, environmentId);
  const draft = useChatStore((s) => s.drafts[chat.key] ?? '');
  const setDraft = useChatStore((s) => s.setDraft);
  const clear = useChatStore((s) => s.clear);
  const [doc, setDoc] = useState<SourceRef | null>(null);
  const [formError, setFormError] = useState<string>();
  const headingId = useId();
  const inputId = useId();
  const errorId = useId();
  const input = useRef<HTMLTextAreaElement>(null);
  const log = useRef<HTMLOListElement>(null);
  const turns = chat.conversation.turns;
  const last = turns[turns.length - 1];

  useEffect(() => {
    if (open) input.current?.focus();
  }, [open, agent]);
  // Follow the answer as it grows.
  useEffect(() => {
    const el = log.current?.parentElement?.parentElement;
    if (el) el.scrollTop = el.scrollHeight;
  }, [last?.answer, last?.status, turns.length]);

  if (!open) return null;

  const ask = (text: string) => {
    const q = text.trim();
    if (!q) {
      setFormError('Type a question first.');
      input.current?.focus();
      return;
    }
    setFormError(undefined);
    setDraft(chat.key, '');
    void chat.send(q);
  };
  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (!chat.streaming) ask(draft);
  };
  const onKeyDown = (e: KeyboardEvent<HTMLTextAreaElement>) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.nativeEvent.isComposing) {
      e.preventDefault();
      if (!chat.streaming) ask(draft);
    }
  };

  return (
    <aside
      id="agent-chat"
      aria-labelledby={headingId}
      className="fixed inset-y-0 right-0 z-40 flex w-full flex-col border-l border-slate-300 bg-slate-50 shadow-xl sm:w-[28rem]"
    >
      <div className="flex items-center justify-between gap-2 border-b border-slate-300 bg-white px-4 py-3">
        <h2 id={headingId} className="text-lg font-semibold">
          Ask an agent
        </h2>
        <div className="flex gap-2">
          {turns.length > 0 && (
            <Button variant="secondary" disabled={chat.streaming} onClick={() => clear(chat.key)}>
              New conversation
            </Button>
          )}
          <Button variant="secondary" onClick={() => setOpen(false)}>
            Close
          </Button>
        </div>
      </div>
      <fieldset className="border-b border-slate-300 bg-white px-4 py-2">
        <legend className="sr-only">Agent</legend>
        <div className="flex flex-wrap gap-4">
          {AGENTS.map((a) => (
            <label key={a.id} className="flex items-center gap-2 text-sm font-medium">
              <input
                type="radio"
                name="agent"
                value={a.id}
                checked={agent === a.id}
                disabled={chat.streaming}
                onChange={() => setAgent(a.id)}
              />
              {a.name}
            </label>
          ))}
        </div>
        <p className="mt-1 text-xs text-slate-700">{AGENTS.find((a) => a.id === agent)!.blurb}</p>
      </fieldset>
      <div className="min-h-0 flex-1 overflow-y-auto p-4">
        {turns.length === 0 ? (
          <div className="space-y-2 text-sm text-slate-800">
            <p>Ask about this environment. Answers cite their sources; select a footnote to see it.</p>
            <p className="font-medium">Try:</p>
            <ul className="space-y-1">
              {SUGGESTIONS[agent].map((q) => (
                <li key={q}>
                  <button type="button" className="text-left text-sky-800 underline" onClick={() => ask(q)}>
                    {q}
                  </button>
                </li>
              ))}
            </ul>
          </div>
        ) : (
          <div role="log" aria-label="Conversation" aria-live="polite">
            <ol ref={log} className="space-y-4">
              {turns.map((t) => (
                <TurnView key={t.id} turn={t} agent={agent} onOpenDocument={setDoc} />
              ))}
            </ol>
          </div>
        )}
      </div>
      <form onSubmit={submit} className="space-y-2 border-t border-slate-300 bg-white p-4">
        <label htmlFor={inputId} className="block text-sm font-medium text-slate-900">
          Your question
        </label>
        <textarea
          ref={input}
          id={inputId}
          rows={3}
          maxLength={25_000}
          value={draft}
          onChange={(e) => setDraft(chat.key, e.target.value)}
          onKeyDown={onKeyDown}
          aria-describedby={formError ? errorId : undefined}
          aria-invalid={formError ? true : undefined}
          placeholder={`Ask the ${agentName(agent)}… (Enter sends, Shift+Enter for a new line)`}
          className="block w-full resize-none rounded-md border border-slate-400 bg-white px-3 py-2 text-sm text-slate-900 placeholder:text-slate-500"
        />
        {formError && (
          <p id={errorId} className="text-sm font-medium text-red-800">
            {formError}
          </p>
        )}
        <div className="flex items-center justify-between gap-2">
          <p className="text-xs text-slate-700">
            {chat.conversation.sessionId ? 'Follow-up questions keep the context.' : 'A new conversation.'}
          </p>
          {chat.streaming ? (
            <Button variant="secondary" onClick={chat.stop}>
              Stop
            </Button>
          ) : (
            <Button type="submit">Send</Button>
          )}
        </div>
      </form>
      {doc && <DocumentDrawer source={doc} onClose={() => setDoc(null)} />}
    </aside>
  );
}
