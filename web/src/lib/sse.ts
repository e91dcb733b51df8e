/**
 * Server-Sent Events over `fetch`, instead of `EventSource`, because the
 * portal must send `X-Westtek-Lab` (EventSource cannot send headers) and
 * wants problem+json errors as `ApiError`s. The session cookie goes along as
 * with every same-origin request.
 */
import { apiHeaders, apiUrl, errorFromResponse, toApiError, type RequestOptions } from './api-client';

export type SseMessage = { event: string; data: string; id: string | undefined };

/** Splits a text/event-stream into messages (WHATWG "event stream interpretation"). */
export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private event = '';
  private id: string | undefined = undefined;

  constructor(private readonly onMessage: (m: SseMessage) => void) {}

  push(chunk: string): void {
    this.buffer += chunk;
    for (;;) {
      const nl = this.buffer.search(/\r\n|\r|\n/);
      if (nl < 0) return;
      const line = this.buffer.slice(0, nl);
      const width = this.buffer.startsWith('\r\n', nl) ? 2 : 1;
      this.buffer = this.buffer.slice(nl + width);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) {
        this.onMessage({ event: this.event || 'message', data: this.data.join('\n'), id: this.id });
      }
      this.data = [];
      this.event = '';
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.event = value;
    else if (field === 'id' && !value.includes('\0')) this.id = value;
  }
}

export type StreamOptions = Pick<RequestOptions, 'lab' | 'query'> & {
  signal: AbortSignal;
  /** GET (default) or POST, for streams that answer a request (agent chat). */
  method?: 'GET' | 'POST';
  /** Sent as JSON (POST). */
  body?: unknown;
  lastEventId?: string | undefined;
  onMessage: (m: SseMessage) => void;
  /** Called when the server accepted the stream. */
  onOpen?: () => void;
};

/**
 * Reads an SSE endpoint until the server ends the stream (resolves) or it
 * fails (rejects with an `ApiError`). Aborting the signal resolves quietly.
 */
export async function readEventStream(path: string, opts: StreamOptions): Promise<void> {
  const hasBody = opts.body !== undefined;
  const headers = apiHeaders({ lab: opts.lab, json: hasBody });
  headers.set('Accept', 'text/event-stream');
  if (opts.lastEventId) headers.set('Last-Event-ID', opts.lastEventId);
  let res: Response;
  try {
    res = await fetch(apiUrl(path, opts.query), {
      method: opts.method ?? 'GET',
      headers,
      body: hasBody ? JSON.stringify(opts.body) : undefined,
      credentials: 'same-origin',
      signal: opts.signal,
      cache: 'no-store',
    });
  } catch (e) {
    if (opts.signal.aborted) return;
    throw toApiError(e);
  }
  if (!res.ok) throw await errorFromResponse(res);
  opts.onOpen?.();
  if (!res.body) return;
  const parser = new SseParser(opts.onMessage);
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      parser.push(value);
    }
  } catch (e) {
    if (opts.signal.aborted) return;
    throw toApiError(e);
  } finally {
    reader.releaseLock();
  }
}
