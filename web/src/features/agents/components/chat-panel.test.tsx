import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { renderWithProviders } from '@/testing/render';
import { useUiStore } from '@/stores/ui';
import { useChatStore } from '../store';
import { segmentAnswer } from './answer';
import { ChatPanel } from './chat-panel';
import { splitSpan } from '@/components/document-drawer';

type Call = { url: URL; method: string; body: unknown; headers: Headers };

/** A fetch whose SSE answers the test writes chunk by chunk; JSON for everything else. */
function streamingFetch(json: (url: URL) => { status: number; body: unknown } = () => ({ status: 200, body: null })) {
  const calls: Call[] = [];
  let push: (s: string) => void = () => undefined;
  let end: () => void = () => undefined;
  const fn = (input: RequestInfo | URL, init?: RequestInit) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url, 'http://localhost');
    const body: unknown = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
    calls.push({ url, method: init?.method ?? 'GET', body, headers: new Headers(init?.headers) });
    if (url.pathname.startsWith('/api/agents/') && url.pathname.endsWith('/chat')) {
      const r = json(url);
      if (r.status !== 200) {
        return Promise.resolve(new Response(JSON.stringify(r.body), { status: r.status, headers: { 'content-type': 'application/problem+json' } }));
      }
      const enc = new TextEncoder();
      const body = new ReadableStream<Uint8Array>({
        start(c) {
          push = (s) => c.enqueue(enc.encode(s));
          end = () => c.close();
        },
      });
      return Promise.resolve(new Response(body, { status: 200, headers: { 'content-type': 'text/event-stream' } }));
    }
    const r = json(url);
    return Promise.resolve(new Response(JSON.stringify(r.body), { status: r.status, headers: { 'content-type': 'application/json' } }));
  };
  const send = (type: string, data: Record<string, unknown>) => push(`event: ${type}\ndata: ${JSON.stringify({ type, ...data })}\n\n`);
  return { fn, calls, send, end: () => end() };
}

const ENV = 'env-1';

beforeEach(() => {
  useUiStore.setState({ labId: 'lab-1', chatOpen: true, toasts: [] });
  useChatStore.setState({ agent: 'drift', drafts: {}, conversations: {} });
  Element.prototype.scrollIntoView = vi.fn();
});
afterEach(() => vi.unstubAllGlobals());

const SENTENCE_1 = 'urllib3 went from 1.26.20 to 2.2.3 — a major upgrade.';
const SENTENCE_2 = ' analysis.ipynb imports it.';

describe('ChatPanel', () => {
  it('renders the answer as it streams, with numbered clickable footnotes, and keeps the session for follow-ups', async () => {
    const s = streamingFetch();
    vi.stubGlobal('fetch', s.fn);
    const user = userEvent.setup();
    renderWithProviders(<ChatPanel environmentId={ENV} />);
    await user.type(screen.getByLabelText('Your question'), 'What changed?{Enter}');

    await waitFor(() => expect(s.calls).toHaveLength(1));
    const req = s.calls[0]!;
    expect(req.method).toBe('POST');
    expect(req.url.pathname).toBe('/api/agents/drift/chat');
    expect(req.body).toEqual({ environment_id: ENV, message: 'What changed?', session_id: null });
    expect(req.headers.get('X-Westtek-Lab')).toBe('lab-1');
    expect(await screen.findByText('Thinking…')).toBeInTheDocument();

    s.send('tool_call', { name: 'GetDriftEvents', input: { environment_id: ENV } });
    s.send('tool_result', { name: 'GetDriftEvents', summary: '1 event since the baseline' });
    s.send('text', { text: SENTENCE_1 });
    const answer = await screen.findByTestId('agent-answer');
    await waitFor(() => expect(answer).toHaveTextContent(SENTENCE_1));
    // Still streaming: nothing cited yet.
    expect(within(answer).queryByRole('button', { name: /^Source/ })).toBeNull();

    const bytes1 = new TextEncoder().encode(SENTENCE_1).length; // the dash is 3 bytes
    s.send('citation', { index: 1, source: { kind: 'drift_event', id: 'event-42', span: null, title: 'Drift event of 22 Nov' }, text_span: [0, bytes1] });
    s.send('text', { text: SENTENCE_2 });
    s.send('citation', { index: 2, source: { kind: 'notebook', id: 'home/analysis.ipynb', span: null, title: 'analysis.ipynb' }, text_span: [bytes1, bytes1 + 27] });
    s.send('recommendation', { recommendation: { id: 'r1', environment_id: ENV, kind: 'rollback', reason: 'a major upgrade breaks the notebook', created_at: '' } });
    s.send('done', { session_id: 'session-7' });
    s.end();

    const first = await within(answer).findByRole('button', { name: 'Source 1: Drift event of 22 Nov' });
    // The marker sits right after the sentence it supports.
    expect(answer.textContent).toContain(`${SENTENCE_1}[1]${SENTENCE_2}[2]`);
    expect(within(answer).getByText(/Roll back to the baseline snapshot: a major upgrade breaks the notebook/)).toBeInTheDocument();
    expect(within(answer).getByText(/How it found out \(1 look-ups\)/)).toBeInTheDocument();

    // A non-document source: its title and id, highlighted.
    await user.click(first);
    const note = within(answer).getByRole('list', { name: 'Sources' }).querySelector('[data-footnote="1"]')!;
    expect(note).toHaveTextContent('Drift event: Drift event of 22 Nov');
    expect(note).toHaveTextContent('event-42');
    expect(note).toHaveFocus();
    expect(note.className).toContain('bg-amber-100');

    // A follow-up carries the session id.
    await user.type(screen.getByLabelText('Your question'), 'And why?');
    await user.click(screen.getByRole('button', { name: 'Send' }));
    await waitFor(() => expect(s.calls).toHaveLength(2));
    expect(s.calls[1]!.body).toMatchObject({ message: 'And why?', session_id: 'session-7' });
    s.send('text', { text: 'Because.' });
    s.send('done', { session_id: 'session-7' });
    s.end();
    await waitFor(() => expect(screen.getAllByTestId('agent-answer')).toHaveLength(2));
  });

  it('opens a cited document in a drawer with the cited span highlighted', async () => {
    const doc = 'Intro line.\nThe pipeline needs urllib3 < 2 because of the proxy client.\nEnd.';
    const start = doc.indexOf('The pipeline');
    const end = doc.indexOf('\nEnd');
    const s = streamingFetch((url) =>
      url.pathname === '/api/knowledge/documents'
        ? { status: 200, body: { path: url.searchParams.get('path'), content_type: 'text/markdown', text: doc } }
        : { status: 200, body: null },
    );
    vi.stubGlobal('fetch', s.fn);
    useChatStore.setState({ agent: 'knowledge' });
    const user = userEvent.setup();
    renderWithProviders(<ChatPanel environmentId={ENV} />);
    await user.type(screen.getByLabelText('Your question'), 'Why pin urllib3?{Enter}');
    await waitFor(() => expect(s.calls).toHaveLength(1));
    expect(s.calls[0]!.url.pathname).toBe('/api/agents/knowledge/chat');
    s.send('text', { text: 'The README says the proxy client needs urllib3 1.x.' });
    s.send('citation', { index: 1, source: { kind: 'document', id: 'docs/README.md', span: [start, end], title: 'README' }, text_span: [0, 10] });
    s.send('done', { session_id: 's' });
    s.end();

    await user.click(await screen.findByRole('button', { name: 'Source 1: README' }));
    const drawer = await screen.findByRole('dialog', { name: 'README' });
    const mark = await within(drawer).findByText('The pipeline needs urllib3 < 2 because of the proxy client.');
    expect(mark.tagName).toBe('MARK');
    const fetched = s.calls.find((c) => c.url.pathname === '/api/knowledge/documents')!;
    expect(fetched.url.searchParams.get('path')).toBe('docs/README.md');
    expect(fetched.headers.get('X-Westtek-Lab')).toBe('lab-1');
    await user.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).toBeNull();
  });

  it('says plainly when the platform has no Knowledge Transfer agent (404)', async () => {
    const s = streamingFetch(() => ({
      status: 404,
      body: { type: 't', title: 'Not Found', status: 404, code: 'route_not_found', detail: 'no such endpoint' },
    }));
    vi.stubGlobal('fetch', s.fn);
    useChatStore.setState({ agent: 'knowledge' });
    const user = userEvent.setup();
    renderWithProviders(<ChatPanel environmentId={ENV} />);
    await user.type(screen.getByLabelText('Your question'), 'Hello{Enter}');
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Knowledge Transfer is not available');
    expect(alert).toHaveTextContent('This platform does not offer the Knowledge Transfer agent yet.');
  });

  it('shows an error chunk in words, and asks for a question before sending', async () => {
    const s = streamingFetch(() => ({ status: 200, body: null }));
    vi.stubGlobal('fetch', s.fn);
    const user = userEvent.setup();
    renderWithProviders(<ChatPanel environmentId={ENV} />);
    await user.click(screen.getByRole('button', { name: 'Send' }));
    expect(screen.getByText('Type a question first.')).toBeInTheDocument();
    expect(s.calls).toHaveLength(0);
    await user.click(screen.getByRole('button', { name: 'What changed since the baseline?' }));
    await waitFor(() => expect(s.calls).toHaveLength(1));
    s.send('error', { code: 'tool_failed', message: 'The drift history could not be read.' });
    s.end();
    expect(await screen.findByRole('alert')).toHaveTextContent('The drift history could not be read.');
  });
});

describe('segmentAnswer and splitSpan', () => {
  it('cut by UTF-8 byte offsets, not UTF-16 indices', () => {
    const answer = 'Größe → 3. Next.';
    const end = new TextEncoder().encode('Größe → 3.').length;
    const segs = segmentAnswer(answer, [{ index: 1, source: { kind: 'x', id: 'i', span: null, title: 't' }, textSpan: [0, end] }]);
    expect(segs.map((s) => (s.kind === 'text' ? s.text : `[${s.citation.index}]`))).toEqual(['Größe → 3.', '[1]', ' Next.']);
    const text = 'é é ok';
    expect(splitSpan(text, [6, 8])).toEqual(['é é ', 'ok', '']);
  });
});
