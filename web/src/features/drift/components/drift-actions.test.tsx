import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { useUiStore } from '@/stores/ui';
import { mockFetch, renderWithProviders } from '@/testing/render';
import type { EnvironmentDrift } from '../api/types';
import { DriftActions } from './drift-actions';

const drift = (over: Partial<EnvironmentDrift> = {}): EnvironmentDrift => ({
  environment_id: 'env-1',
  status: 'MINOR_DRIFT',
  baseline_pinned: false,
  baseline_snapshot_id: 'snap-base-0001',
  watched: true,
  findings: [{ kind: { type: 'package_added' }, subject: 'tabulate', before: null, after: '0.9.0', severity: 'MINOR' }] as unknown as EnvironmentDrift['findings'],
  affected_notebooks: [],
  ...over,
});

beforeEach(() => useUiStore.setState({ labId: 'lab-1' }));
afterEach(() => vi.unstubAllGlobals());

describe('DriftActions', () => {
  it('asks before rolling back, sends nothing on cancel, and follows the job after confirming', async () => {
    const { fn, calls } = mockFetch(({ url }) =>
      url.pathname.endsWith('/drift/rollback')
        ? { status: 202, body: { job_id: 'job-1', environment_id: 'env-1' } }
        : url.pathname === '/api/jobs/job-1'
          ? { body: { id: 'job-1', lab_id: 'l', kind: 'snapshot.restore', target_id: 'env-1', status: 'running', progress: 0.4, message: 'restoring files', created_by: 'u', created_at: '', updated_at: '' } }
          : { status: 404, body: { type: 't', title: 'x', status: 404, code: 'route_not_found', detail: 'no' } },
    );
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(<DriftActions drift={drift()} jupyterRunning={false} />);
    await user.click(screen.getByRole('button', { name: 'Roll back to baseline' }));
    const dialog = screen.getByRole('dialog', { name: 'Roll back to the baseline?' });
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toHaveFocus();
    await user.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(calls).toHaveLength(0);

    await user.click(screen.getByRole('button', { name: 'Roll back to baseline' }));
    await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Roll back' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    const post = calls.find((c) => c.url.pathname === '/api/environments/env-1/drift/rollback')!;
    expect(post.method).toBe('POST');
    expect(post.body).toEqual({ snapshot_id: null });
    expect(post.headers.get('X-Westtek-Lab')).toBe('lab-1');
    expect(await screen.findByRole('progressbar', { name: 'Rolling back' })).toBeInTheDocument();
  });

  it('shows a refusal in plain words inside the dialog', async () => {
    vi.stubGlobal(
      'fetch',
      mockFetch(() => ({
        status: 409,
        body: { type: 't', title: 'Conflict', status: 409, code: 'conflict', detail: 'a snapshot of this environment is already being taken' },
      })).fn,
    );
    const user = userEvent.setup();
    renderWithProviders(<DriftActions drift={drift()} jupyterRunning={false} />);
    await user.click(screen.getByRole('button', { name: 'Accept changes' }));
    const dialog = screen.getByRole('dialog', { name: 'Accept the changes?' });
    await user.click(within(dialog).getByRole('button', { name: 'Accept and snapshot' }));
    const alert = await within(dialog).findByRole('alert');
    expect(alert).toHaveTextContent('That clashes with something that exists');
    expect(alert).toHaveTextContent('A snapshot of this environment is already being taken.');
  });

  it('pins and unpins the baseline', async () => {
    const { fn, calls } = mockFetch(({ body }) => ({ body: drift({ baseline_pinned: (body as { snapshot_id: string | null }).snapshot_id !== null }) }));
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(<DriftActions drift={drift()} jupyterRunning={false} />);
    await user.click(screen.getByRole('button', { name: 'Pin baseline' }));
    await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Pin' }));
    await waitFor(() => expect(calls).toHaveLength(1));
    expect(calls[0]!.method).toBe('PUT');
    expect(calls[0]!.url.pathname).toBe('/api/environments/env-1/drift/baseline');
    expect(calls[0]!.body).toEqual({ snapshot_id: 'snap-base-0001' });
  });

  it('keeps rollback off while Jupyter runs', () => {
    renderWithProviders(<DriftActions drift={drift()} jupyterRunning />);
    expect(screen.getByRole('button', { name: 'Roll back to baseline' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Accept changes' })).toBeEnabled();
    expect(screen.getByText(/Stop Jupyter to roll back/)).toBeInTheDocument();
  });

  it('keeps accept and rollback off when nothing drifted', () => {
    renderWithProviders(<DriftActions drift={drift({ findings: [], status: 'STABLE', baseline_pinned: true })} jupyterRunning={false} />);
    expect(screen.getByRole('button', { name: 'Roll back to baseline' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Accept changes' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Unpin baseline' })).toBeEnabled();
  });

  it('keeps accept and rollback off for an adopted environment, saying its agent snapshots there', () => {
    renderWithProviders(<DriftActions drift={drift()} jupyterRunning={false} adoptedHost="lab-ws-3" />);
    expect(screen.getByRole('button', { name: 'Accept changes' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Roll back to baseline' })).toBeDisabled();
    expect(screen.getByRole('button', { name: 'Pin baseline' })).toBeEnabled();
    expect(screen.getByText(/adopted from lab-ws-3/)).toHaveTextContent('westtek agent snapshot');
  });
});
