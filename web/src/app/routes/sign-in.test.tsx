import { QueryClientProvider } from '@tanstack/react-query';
import { render, screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryRouter, RouterProvider } from 'react-router';
import { makeQueryClient } from '@/lib/react-query';
import { mockFetch } from '@/testing/render';
import { SignInRoute, safeNext } from './sign-in';

afterEach(() => vi.unstubAllGlobals());

const unauthenticated = (detail: string) => ({
  status: 401,
  body: { type: 't', title: 'Unauthorized', status: 401, code: 'unauthenticated', detail },
});

function renderSignIn() {
  const router = createMemoryRouter(
    [
      { path: '/sign-in', element: <SignInRoute /> },
      { path: '/', element: <h1>Dashboard</h1> },
    ],
    { initialEntries: ['/sign-in'] },
  );
  render(
    <QueryClientProvider client={makeQueryClient()}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
}

describe('SignInRoute', () => {
  it('keeps a refused link’s explanation on screen (the app-wide 401 handling must not reset the form)', async () => {
    const { fn, calls } = mockFetch(({ url }) =>
      url.pathname === '/api/auth/token'
        ? unauthenticated('this sign-in link is invalid, used or expired; ask an admin for a new one')
        : unauthenticated('sign in first: send an Authorization: Bearer token'),
    );
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderSignIn();
    await user.type(await screen.findByLabelText('Sign-in link or token'), 'http://x/api/auth/login?token=old');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('alert')).toHaveTextContent(
      'This sign-in link is invalid, used or expired; ask an admin for a new one.',
    );
    // Still there once everything has settled.
    await new Promise((r) => setTimeout(r, 200));
    expect(screen.getByRole('alert')).toHaveTextContent('This sign-in link is invalid');
    // A refused sign-in is not a lost session: no re-check of /api/me (which would reset the page).
    expect(calls.filter((c) => c.url.pathname === '/api/me')).toHaveLength(1);
  });

  it('signs in with the token from a pasted link and goes on', async () => {
    let signedIn = false;
    const { fn, calls } = mockFetch(({ url }) => {
      if (url.pathname === '/api/auth/token') {
        signedIn = true;
        return {
          body: {
            access_token: 'a', token_type: 'Bearer', expires_in: 900, expires_at: '', refresh_token: 'r', refresh_expires_at: '',
            user: { user_id: 'u', username: 'admin', it_admin: true, labs: [] },
          },
        };
      }
      return signedIn ? { body: { user_id: 'u', username: 'admin', it_admin: true, labs: [] } } : unauthenticated('sign in first');
    });
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderSignIn();
    await user.type(await screen.findByLabelText('Sign-in link or token'), 'http://127.0.0.1:8080/api/auth/login?token=T0K');
    await user.click(screen.getByRole('button', { name: 'Sign in' }));
    expect(await screen.findByRole('heading', { name: 'Dashboard' })).toBeInTheDocument();
    expect(calls.find((c) => c.url.pathname === '/api/auth/token')?.body).toEqual({ grant_type: 'one_time_token', token: 'T0K' });
  });

  it.each([
    ['/environments/1', '/environments/1'],
    ['//evil.example', '/'],
    ['https://evil.example', '/'],
    ['/\\evil', '/'],
    [null, '/'],
  ])('only goes on to paths of this site (%j)', (next, to) => {
    expect(safeNext(next)).toBe(to);
  });
});
