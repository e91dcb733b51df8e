/** Test helpers: render inside the app's providers with a fresh query client and a memory router. */
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { render, type RenderOptions } from '@testing-library/react';
import type { ReactElement } from 'react';
import { createMemoryRouter, RouterProvider } from 'react-router';

export function testQueryClient() {
  return new QueryClient({
    defaultOptions: { queries: { retry: false, refetchInterval: false, staleTime: Infinity }, mutations: { retry: false } },
  });
}

export function renderWithProviders(ui: ReactElement, opts: RenderOptions & { client?: QueryClient; path?: string } = {}) {
  const client = opts.client ?? testQueryClient();
  const router = createMemoryRouter([{ path: '*', element: ui }], { initialEntries: [opts.path ?? '/'] });
  return {
    client,
    ...render(
      <QueryClientProvider client={client}>
        <RouterProvider router={router} />
      </QueryClientProvider>,
      opts,
    ),
  };
}

/** A `fetch` answering JSON by a handler of (method, url, body). */
export function mockFetch(
  handler: (req: { method: string; url: URL; body: unknown; headers: Headers }) => { status?: number; body?: unknown; headers?: Record<string, string> },
) {
  const calls: { method: string; url: URL; body: unknown; headers: Headers }[] = [];
  const fn = (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url, 'http://localhost');
    const method = init?.method ?? 'GET';
    const body: unknown = typeof init?.body === 'string' ? JSON.parse(init.body) : undefined;
    const headers = new Headers(init?.headers);
    const req = { method, url, body, headers };
    calls.push(req);
    const r = handler(req);
    const status = r.status ?? 200;
    const isProblem = status >= 400 && typeof r.body === 'object';
    return Promise.resolve(
      new Response(r.body === undefined ? null : JSON.stringify(r.body), {
        status,
        headers: { 'content-type': isProblem ? 'application/problem+json' : 'application/json', ...r.headers },
      }),
    );
  };
  return { fn, calls };
}
