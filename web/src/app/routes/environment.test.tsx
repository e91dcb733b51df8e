import { QueryClientProvider } from '@tanstack/react-query';
import { render, screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { createMemoryRouter, RouterProvider } from 'react-router';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { useUiStore } from '@/stores/ui';
import { adoptedEnvironment, environment, snapshot } from '@/testing/fixtures';
import { mockFetch, testQueryClient } from '@/testing/render';
import type { components } from '@/api/schema';
import { EnvironmentRoute } from './environment';

type Environment = components['schemas']['EnvironmentResponse'];

const me = { user_id: 'user-1', username: 'ada', it_admin: false, labs: [{ lab_id: 'lab-1', lab_name: 'genomics', role: 'researcher' }] };

function renderPage(env: Environment) {
  const { fn, calls } = mockFetch(({ url }) => {
    if (url.pathname === '/api/me') return { body: me };
    if (url.pathname === '/api/environments/env-1') return { body: env };
    if (url.pathname === '/api/snapshots') return { body: { items: [snapshot()], total: 1, limit: 100, offset: 0 } };
    if (url.pathname === '/api/environments/env-1/drift')
      return {
        body: {
          environment_id: 'env-1',
          status: 'STABLE',
          baseline_pinned: false,
          baseline_snapshot_id: 'snap-0001',
          watched: true,
          findings: [],
          affected_notebooks: [],
        },
      };
    if (url.pathname === '/api/drift/events') return { body: { items: [], total: 0, limit: 50, offset: 0 } };
    return { status: 404, body: { type: 't', title: 'x', status: 404, code: 'route_not_found', detail: 'no' } };
  });
  vi.stubGlobal('fetch', fn);
  const router = createMemoryRouter([{ path: '/environments/:id', element: <EnvironmentRoute /> }], {
    initialEntries: ['/environments/env-1'],
  });
  render(
    <QueryClientProvider client={testQueryClient()}>
      <RouterProvider router={router} />
    </QueryClientProvider>,
  );
  return calls;
}

beforeEach(() => useUiStore.setState({ labId: 'lab-1' }));
afterEach(() => vi.unstubAllGlobals());

describe('EnvironmentRoute', () => {
  it('for an adopted environment: the "Adopted from" panel, and no launch, snapshot or in-place restore', async () => {
    renderPage(adoptedEnvironment());
    const panel = await screen.findByRole('region', { name: 'Adopted from lab-ws-3' });
    expect(panel).toHaveTextContent('/home/ada/rnaseq/.venv');
    expect(within(screen.getByRole('region', { name: 'Overview' })).getByText('Adopted · lab-ws-3')).toBeInTheDocument();
    // Its researcher may manage the agent's credential.
    expect(await within(panel).findByRole('button', { name: 'Issue new agent credential' })).toBeInTheDocument();
    expect(screen.getByRole('region', { name: 'JupyterLab' })).toHaveTextContent('runs on the lab machine lab-ws-3');
    expect(screen.queryByRole('button', { name: /Launch/ })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Take snapshot' })).toBeNull();
    expect(screen.getByRole('region', { name: 'Snapshots' })).toHaveTextContent('westtek agent snapshot');
    // Snapshots are listed and can be restored into a new environment, not in place.
    await userEvent.setup().click(await screen.findByRole('button', { name: /^Details/ }));
    const details = within(screen.getByRole('region', { name: /^Snapshot / }));
    expect(details.getByRole('button', { name: 'Restore into a new environment' })).toBeEnabled();
    expect(details.queryByRole('radio', { name: /In place/ })).toBeNull();
  });

  it('for an environment the platform built: launch and snapshot, no "Adopted" panel', async () => {
    renderPage(environment());
    expect(await screen.findByRole('button', { name: 'Launch Jupyter' })).toBeEnabled();
    expect(screen.getByRole('button', { name: 'Take snapshot' })).toBeEnabled();
    expect(screen.queryByRole('region', { name: /Adopted from/ })).toBeNull();
    expect(screen.queryByText(/^Adopted/)).toBeNull();
  });
});
