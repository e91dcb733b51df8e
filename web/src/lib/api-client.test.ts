import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError, apiFetch, explainProblem } from './api-client';

function respond(status: number, body: unknown, contentType = 'application/problem+json', headers: Record<string, string> = {}) {
  vi.stubGlobal(
    'fetch',
    vi.fn(() =>
      Promise.resolve(
        new Response(typeof body === 'string' ? body : JSON.stringify(body), {
          status,
          headers: { 'content-type': contentType, ...headers },
        }),
      ),
    ),
  );
}

const problem = (status: number, code: string, detail: string, field?: string) => ({
  type: `https://westtek.dev/problems/${code}`,
  title: 'x',
  status,
  code,
  detail,
  ...(field ? { field } : {}),
});

async function failure(p: Promise<unknown>): Promise<ApiError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(ApiError);
    return e as ApiError;
  }
  throw new Error('expected the call to fail');
}

afterEach(() => vi.unstubAllGlobals());

describe('apiFetch error mapping', () => {
  it('turns a validation problem into an ApiError naming the field, in plain words', async () => {
    respond(422, problem(422, 'validation_failed', 'name: must be 1–64 letters, digits, -, _ or .', 'name'));
    const e = await failure(apiFetch('/api/environments', { method: 'POST', body: { name: '' } }));
    expect(e.status).toBe(422);
    expect(e.code).toBe('validation_failed');
    expect(e.field).toBe('name');
    expect(e.title).toBe('Please check what you entered');
    expect(e.message).toBe('Name: must be 1–64 letters, digits, -, _ or .');
  });

  it('keeps the server detail of a quota problem and gives it a heading', async () => {
    respond(403, problem(403, 'quota_exceeded', 'the lab already has 50 environments (its quota)'));
    const e = await failure(apiFetch('/api/environments', { method: 'POST', body: {} }));
    expect(e.title).toBe("Your lab's quota is used up");
    expect(e.message).toBe('The lab already has 50 environments (its quota).');
  });

  it('says a missing thing may belong to another lab', async () => {
    respond(404, problem(404, 'not_found', 'environment not found'));
    const e = await failure(apiFetch('/api/environments/x'));
    expect(e.message).toMatch(/^Environment not found\. It may have been deleted, or it belongs to another lab\.$/);
  });

  it('marks 401 as signed out', async () => {
    respond(401, problem(401, 'unauthenticated', 'your session has expired; sign in again'));
    const e = await failure(apiFetch('/api/me'));
    expect(e.isUnauthenticated).toBe(true);
    expect(e.title).toBe('Please sign in');
    expect(e.message).toBe('Your session has expired; sign in again.');
  });

  it('never shows internal text for a 500, and quotes the request id', async () => {
    respond(500, problem(500, 'internal', 'something went wrong on our side; it has been logged'), 'application/problem+json', {
      'x-request-id': 'req-123',
    });
    const e = await failure(apiFetch('/api/environments'));
    expect(e.title).toBe('Something went wrong on our side');
    expect(e.message).toContain('request id req-123');
  });

  it('explains a proxy error page that is not JSON', async () => {
    respond(502, '<html>Bad Gateway</html>', 'text/html');
    const e = await failure(apiFetch('/api/environments'));
    expect(e.code).toBe('http_502');
    expect(e.title).toBe('The server had a problem');
    expect(e.message).toMatch(/not answering right now \(HTTP 502\)/);
  });

  it('explains an unreachable server', async () => {
    vi.stubGlobal('fetch', vi.fn(() => Promise.reject(new TypeError('Failed to fetch'))));
    const e = await failure(apiFetch('/api/environments'));
    expect(e.status).toBe(0);
    expect(e.code).toBe('network_error');
    expect(e.title).toBe('Cannot reach West Tek');
  });

  it('rethrows an abort as is', async () => {
    vi.stubGlobal('fetch', vi.fn(() => Promise.reject(new DOMException('aborted', 'AbortError'))));
    await expect(apiFetch('/api/environments')).rejects.toMatchObject({ name: 'AbortError' });
  });

  it('sends JSON, the lab header, and the cookie session; returns undefined for 204', async () => {
    const fetchMock = vi.fn((_url: string, _init: RequestInit) => Promise.resolve(new Response(null, { status: 204 })));
    vi.stubGlobal('fetch', fetchMock);
    await expect(apiFetch('/api/auth/logout', { method: 'POST', body: { a: 1 }, lab: 'lab-9' })).resolves.toBeUndefined();
    const init = fetchMock.mock.calls[0]![1];
    const headers = init.headers as Headers;
    expect(headers.get('X-Westtek-Lab')).toBe('lab-9');
    expect(headers.get('Content-Type')).toBe('application/json');
    expect(init.credentials).toBe('same-origin');
    expect(init.body).toBe('{"a":1}');
  });

  it('uses a generic but honest message for codes it does not know', () => {
    expect(explainProblem({ status: 409, code: 'brand_new_code', detail: 'the thing is busy' })).toEqual({
      title: 'The request was refused',
      message: 'The thing is busy.',
    });
  });
});
