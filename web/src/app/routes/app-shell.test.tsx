import { QueryClientProvider } from '@tanstack/react-query';
import { render, screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMemoryRouter, RouterProvider } from 'react-router';
import { makeQueryClient } from '@/lib/react-query';
import { useUiStore } from '@/stores/ui';
import { mockFetch } from '@/testing/render';
import { AppShell } from './app-shell';
import { DashboardRoute } from './dashboard';

afterEach(() => {
  vi.unstubAllGlobals();
  useUiStore.setState({ labId: null, toasts: [] });
});

const me = {
  user_id: 'u1',
  username: 'ada',
  it_admin: false,
  labs: [
    { lab_id: 'lab-a', lab_name: 'genomics', role: 'researcher' },
    { lab_id: 'lab-b', lab_name: 'climate', role: 'lab_admin' },
  ],
};

function renderApp(meBody: unknown = me) {
  const { fn, calls } = mockFetch(({ url }) => {
    if (url.pathname === '/api/me') return { body: meBody };
    if (url.pathname === '/api/environments') return { body: { items: [], total: 0, limit: 200, offset: 0 } };
    if (url.pathname === '/api/drift/events') return { body: { items: [], total: 0, limit: 50, offset: 0 } };
    return { body: {} };
  });
  vi.stubGlobal('fetch', fn);
  const router = createMemoryRouter(
    [
      { path: '/sign-in', element: <h1>Sign-in page</h1> },
      { element: <AppShell />, children: [{ index: true, element: <DashboardRoute /> }] },
    ],
    { initialEntries: ['/'] },
  );
  render(
    <QueryClientProvider client={makeQueryClient()}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
  const labsOf = (path: string) => calls.filter((c) => c.url.pathname === path).map((c) => c.headers.get('X-Westtek-Lab'));
  return { calls, labsOf };
}

describe('AppShell and the lab switcher', () => {
  it('never asks for a lab the user has lost, and switches labs for every request', async () => {
    useUiStore.setState({ labId: 'lab-removed' });
    const { labsOf } = renderApp();
    const select = await screen.findByLabelText('Lab');
    expect(select).toHaveValue('lab-a');
    await screen.findByText('No environments yet.');
    expect(labsOf('/api/environments')).toEqual(['lab-a']);

    await userEvent.setup().selectOptions(select, 'climate (lab admin)');
    await waitFor(() => expect(labsOf('/api/environments')).toEqual(['lab-a', 'lab-b']));
    expect(labsOf('/api/drift/events').at(-1)).toBe('lab-b');
    expect(useUiStore.getState().labId).toBe('lab-b');
  });

  it('links the IT-admin dashboard only for IT admins', async () => {
    renderApp();
    await screen.findByText('No environments yet.');
    expect(screen.getByRole('link', { name: 'Environments' })).toBeInTheDocument();
    expect(screen.queryByRole('link', { name: 'IT admin' })).toBeNull();
  });

  it('shows the IT-admin link to an IT admin', async () => {
    renderApp({ ...me, it_admin: true });
    expect(await screen.findByRole('link', { name: 'IT admin' })).toHaveAttribute('href', '/admin');
  });

  it('shows no switcher to a user in one lab', async () => {
    renderApp({ ...me, labs: [me.labs[0]] });
    expect(await screen.findByText('genomics')).toBeInTheDocument();
    expect(screen.queryByLabelText('Lab')).toBeNull();
  });
});
