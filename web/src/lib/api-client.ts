/**
 * The one fetcher of the portal. Every request goes through `apiFetch`:
 * same-origin, with the browser's session cookies (HttpOnly, set by sign-in),
 * the selected lab in `X-Westtek-Lab`, and every failure turned into an
 * `ApiError` whose `title` and `message` are plain words for the user.
 *
 * Cookie-carried changes must prove they come from this site (the platform's
 * `proven_same_origin`: an `Origin` equal to the host, or `Sec-Fetch-Site:
 * same-origin`; enforced on the sign-in form and the Jupyter gateway).
 * Browsers send both on a same-origin `fetch`, so nothing is added here; the
 * portal must therefore be served from the API's origin (`westtek up
 * --web-dir`), or in development through Vite's proxy, which rewrites
 * `Origin` to the target.
 */
import type { components } from '@/api/schema';
import { env } from '@/config/env';

export type Problem = components['schemas']['Problem'];

/** A failure of an API call, explained in plain words. */
export class ApiError extends Error {
  override readonly name = 'ApiError';
  /** HTTP status; 0 when the server could not be reached. */
  readonly status: number;
  /** The API's stable code (`not_found`, `quota_exceeded`, …), or ours for transport failures. */
  readonly code: string;
  /** Short heading for the user. */
  readonly title: string;
  /** The form field the error is about, for validation errors. */
  readonly field: string | undefined;
  /** The request id, to quote to an admin. */
  readonly requestId: string | undefined;

  constructor(init: {
    status: number;
    code: string;
    title: string;
    message: string;
    field?: string | undefined;
    requestId?: string | undefined;
  }) {
    super(init.message);
    this.status = init.status;
    this.code = init.code;
    this.title = init.title;
    this.field = init.field;
    this.requestId = init.requestId;
  }

  /** Whether the user has to sign in (again). */
  get isUnauthenticated(): boolean {
    return this.status === 401 || this.code === 'unauthenticated';
  }
}

function sentence(s: string): string {
  const t = s.trim();
  if (t === '') return t;
  const first = t.charAt(0).toUpperCase() + t.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

const TITLES: Record<string, string> = {
  unauthenticated: 'Please sign in',
  forbidden: 'Not allowed',
  not_found: 'Not found',
  route_not_found: 'Not found',
  conflict: 'That clashes with something that exists',
  quota_exceeded: "Your lab's quota is used up",
  rate_limited: 'Too many attempts',
  queue_full: 'Too many snapshot, restore or drill jobs are waiting; try again later',
  validation_failed: 'Please check what you entered',
  invalid_body: 'Please check what you entered',
  malformed_json: 'The request could not be read',
  invalid_id: 'That link is not valid',
  invalid_query: 'That search is not valid',
  invalid_path: 'That link is not valid',
  payload_too_large: 'That is too large',
  unsupported_media_type: 'The request could not be read',
  jupyter_not_running: 'Jupyter is not running',
  method_not_allowed: 'That action is not available',
  internal: 'Something went wrong on our side',
  network_error: 'Cannot reach West Tek',
  bad_response: 'The server sent something unexpected',
};

/**
 * Plain words for a problem: the server's `detail` is written for users
 * (the API promises it is safe to show), so it is kept and framed; what the
 * server cannot say (it is down, a proxy failed) is said here.
 */
export function explainProblem(p: {
  status: number;
  code: string;
  detail?: string | null | undefined;
  field?: string | null | undefined;
  requestId?: string | undefined;
}): { title: string; message: string } {
  const detail = p.detail ? sentence(p.detail) : '';
  const rid = p.requestId ? ` (request id ${p.requestId})` : '';
  switch (p.code) {
    case 'internal':
      return {
        title: TITLES.internal!,
        message: `It has been logged. Try again; if it keeps happening, tell your IT admin${rid}.`,
      };
    case 'network_error':
      return {
        title: TITLES.network_error!,
        message: 'Check your network connection and that the platform is running, then try again.',
      };
    case 'not_found':
      return {
        title: TITLES.not_found!,
        message: `${detail || 'It does not exist.'} It may have been deleted, or it belongs to another lab.`,
      };
    case 'unauthenticated':
      return { title: TITLES.unauthenticated!, message: detail || 'Your session has ended; sign in again.' };
    case 'validation_failed':
      return { title: TITLES.validation_failed!, message: detail || 'A field is not valid.' };
  }
  const title =
    TITLES[p.code] ??
    (p.status >= 500
      ? 'The server had a problem'
      : p.status === 0
        ? TITLES.network_error!
        : 'The request was refused');
  if (detail) return { title, message: detail };
  if (p.status === 502 || p.status === 503 || p.status === 504) {
    return { title, message: `The platform is not answering right now (HTTP ${p.status}). Try again in a moment.` };
  }
  return { title, message: `The server answered HTTP ${p.status}${rid}.` };
}

function isProblem(v: unknown): v is Problem {
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof (v as Record<string, unknown>).code === 'string' &&
    typeof (v as Record<string, unknown>).status === 'number'
  );
}

/** Turns a failed response into an `ApiError`. */
export async function errorFromResponse(res: Response): Promise<ApiError> {
  const requestId = res.headers.get('x-request-id') ?? undefined;
  const type = res.headers.get('content-type') ?? '';
  let body: unknown = undefined;
  if (type.includes('json')) {
    try {
      body = await res.json();
    } catch {
      body = undefined;
    }
  }
  if (isProblem(body)) {
    const { title, message } = explainProblem({
      status: body.status || res.status,
      code: body.code,
      detail: body.detail,
      field: body.field,
      requestId,
    });
    return new ApiError({
      status: res.status,
      code: body.code,
      title,
      message,
      field: body.field ?? undefined,
      requestId,
    });
  }
  const code = res.status === 401 ? 'unauthenticated' : `http_${res.status}`;
  const { title, message } = explainProblem({ status: res.status, code, requestId });
  return new ApiError({ status: res.status, code, title, message, requestId });
}

/** Turns anything thrown into something the UI can show. */
export function toApiError(e: unknown): ApiError {
  if (e instanceof ApiError) return e;
  const { title, message } = explainProblem({ status: 0, code: 'network_error' });
  return new ApiError({ status: 0, code: 'network_error', title, message });
}

export type RequestOptions = {
  method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Sent as JSON. */
  body?: unknown;
  /** The lab the request works in (`X-Westtek-Lab`); none: the caller's default. */
  lab?: string | null | undefined;
  /** Query parameters; undefined and null values are left out. */
  query?: Record<string, string | number | boolean | null | undefined>;
  signal?: AbortSignal | undefined;
  headers?: Record<string, string>;
};

/** The URL of an API path, with query parameters. */
export function apiUrl(path: string, query?: RequestOptions['query']): string {
  const qs = new URLSearchParams();
  for (const [k, v] of Object.entries(query ?? {})) {
    if (v !== undefined && v !== null && v !== '') qs.set(k, String(v));
  }
  const s = qs.toString();
  return `${env.apiBase}${path}${s ? `?${s}` : ''}`;
}

/** Request headers: JSON in and out, the lab. */
export function apiHeaders(opts: Pick<RequestOptions, 'lab' | 'headers'> & { json?: boolean }): Headers {
  const h = new Headers({ Accept: 'application/json', ...opts.headers });
  if (opts.json) h.set('Content-Type', 'application/json');
  if (opts.lab) h.set('X-Westtek-Lab', opts.lab);
  return h;
}

/**
 * Calls the API and returns its JSON body (undefined for 204).
 *
 * @throws ApiError for every failure (HTTP error, unreachable server, bad JSON);
 *   an aborted request rethrows the AbortError.
 */
export async function apiFetch<T>(path: string, opts: RequestOptions = {}): Promise<T> {
  const hasBody = opts.body !== undefined;
  let res: Response;
  try {
    res = await fetch(apiUrl(path, opts.query), {
      method: opts.method ?? 'GET',
      headers: apiHeaders({ lab: opts.lab, headers: opts.headers, json: hasBody }),
      body: hasBody ? JSON.stringify(opts.body) : undefined,
      credentials: 'same-origin',
      signal: opts.signal,
    });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw toApiError(e);
  }
  if (!res.ok) throw await errorFromResponse(res);
  if (res.status === 204 || res.headers.get('content-length') === '0') return undefined as T;
  try {
    return (await res.json()) as T;
  } catch {
    const { title, message } = explainProblem({
      status: res.status,
      code: 'bad_response',
      detail: 'the answer was not the JSON the portal expected; reload the page and try again',
    });
    throw new ApiError({ status: res.status, code: 'bad_response', title, message });
  }
}

/** A file the API sent as an attachment. */
export type Download = { blob: Blob; filename: string };

/**
 * Downloads an attachment (`Content-Disposition: attachment`) with the
 * session and lab like every other request, so failures are `ApiError`s in
 * plain words instead of an error page in a new tab.
 *
 * @throws ApiError as `apiFetch`.
 */
export async function apiDownload(path: string, opts: Omit<RequestOptions, 'body' | 'method'> & { fallbackName: string }): Promise<Download> {
  let res: Response;
  try {
    const headers = apiHeaders({ lab: opts.lab, headers: opts.headers });
    headers.set('Accept', '*/*');
    res = await fetch(apiUrl(path, opts.query), { headers, credentials: 'same-origin', signal: opts.signal });
  } catch (e) {
    if (e instanceof DOMException && e.name === 'AbortError') throw e;
    throw toApiError(e);
  }
  if (!res.ok) throw await errorFromResponse(res);
  const disposition = res.headers.get('content-disposition') ?? '';
  const m = /filename\*?=(?:UTF-8'')?"?([^";]+)"?/i.exec(disposition);
  let filename = opts.fallbackName;
  if (m?.[1]) {
    try {
      filename = decodeURIComponent(m[1]);
    } catch {
      filename = m[1];
    }
  }
  return { blob: await res.blob(), filename };
}

/** Hands a downloaded file to the browser to save. */
export function saveDownload({ blob, filename }: Download): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.style.display = 'none';
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
