import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { useUiStore } from '@/stores/ui';
import { adoptedEnvironment } from '@/testing/fixtures';
import { mockFetch, renderWithProviders } from '@/testing/render';
import type { Environment } from '../api/get-environment';
import { AdoptedPanel } from './adopted-panel';

const TOKEN = 'wtagent_s3cret-0123456789';

const panel = (env: Environment = adoptedEnvironment(), canManage = true) => (
  <AdoptedPanel env={env} adopted={env.adopted!} canManage={canManage} />
);

beforeEach(() => useUiStore.setState({ labId: 'lab-1' }));
afterEach(() => vi.unstubAllGlobals());

describe('AdoptedPanel', () => {
  it('says where the environment lives and which credential its agent holds', () => {
    renderWithProviders(panel());
    const section = screen.getByRole('region', { name: 'Adopted from lab-ws-3' });
    expect(section).toHaveTextContent('/home/ada/rnaseq/.venv');
    expect(section).toHaveTextContent('/home/ada/rnaseq');
    expect(section).toHaveTextContent('agc-0001');
    const issued = section.querySelector('time')!;
    expect(issued).toHaveAttribute('dateTime', '2026-12-01T09:30:00Z');
    expect(issued.textContent).toMatch(/2026/);
    expect(within(section).getByRole('button', { name: 'Issue new agent credential' })).toBeEnabled();
    expect(within(section).getByRole('button', { name: 'Revoke agent credential' })).toBeEnabled();
  });

  it('says the agent is not heard when it has no credential, with nothing to revoke', () => {
    renderWithProviders(panel(adoptedEnvironment({ agent_credential: null })));
    expect(screen.getByText(/no agent credential: its agent is not heard/i)).toBeInTheDocument();
    expect(screen.getByRole('button', { name: 'Issue new agent credential' })).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Revoke agent credential' })).toBeNull();
  });

  it('offers no credential actions to someone who may not operate the environment', () => {
    renderWithProviders(panel(adoptedEnvironment(), false));
    expect(screen.getByText('agc-0001')).toBeInTheDocument();
    expect(screen.queryByRole('button', { name: 'Issue new agent credential' })).toBeNull();
    expect(screen.queryByRole('button', { name: 'Revoke agent credential' })).toBeNull();
  });

  it('issues a credential after a warning and shows its token once, with a copy button', async () => {
    const { fn, calls } = mockFetch(({ method, url }) =>
      method === 'POST' && url.pathname === '/api/environments/env-1/agent-credential'
        ? { body: { environment_id: 'env-1', agent_token: TOKEN } }
        : { body: adoptedEnvironment({ agent_credential: { id: 'agc-0002', issued_at: '2026-12-07T14:00:00Z' } }) },
    );
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    const writeText = vi.spyOn(navigator.clipboard, 'writeText').mockResolvedValue(undefined);
    renderWithProviders(panel());

    await user.click(screen.getByRole('button', { name: 'Issue new agent credential' }));
    const dialog = screen.getByRole('dialog', { name: 'Issue a new agent credential?' });
    expect(dialog).toHaveTextContent('stops working at once');
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toHaveFocus();
    await user.click(within(dialog).getByRole('button', { name: 'Issue new credential' }));

    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    const post = calls.find((c) => c.method === 'POST')!;
    expect(post.url.pathname).toBe('/api/environments/env-1/agent-credential');
    expect(post.headers.get('X-Westtek-Lab')).toBe('lab-1');
    const box = screen.getByTestId('new-agent-token');
    expect(within(box).getByRole('textbox', { name: 'New agent token' })).toHaveValue(TOKEN);
    expect(box).toHaveTextContent(/shown only this once/);
    expect(box).toHaveTextContent("state file on lab-ws-3");
    expect(box).toHaveTextContent('westtek agent adopt');

    await user.click(within(box).getByRole('button', { name: 'Copy' }));
    expect(writeText).toHaveBeenCalledWith(TOKEN);
    expect(await within(box).findByRole('button', { name: 'Copied' })).toBeInTheDocument();

    // Once dismissed it is gone for good: nothing on the page holds it.
    await user.click(within(box).getByRole('button', { name: 'I have copied it' }));
    expect(screen.queryByTestId('new-agent-token')).toBeNull();
    expect(document.body).not.toHaveTextContent(TOKEN);
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(1);
  });

  it('sends nothing when the warning is cancelled', async () => {
    const { fn, calls } = mockFetch(() => ({ status: 500 }));
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(panel());
    await user.click(screen.getByRole('button', { name: 'Issue new agent credential' }));
    await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Cancel' }));
    await user.click(screen.getByRole('button', { name: 'Revoke agent credential' }));
    await user.keyboard('{Escape}');
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(calls).toHaveLength(0);
  });

  it('revokes the credential with DELETE after asking', async () => {
    const { fn, calls } = mockFetch(({ method }) =>
      method === 'DELETE' ? { status: 204 } : { body: adoptedEnvironment({ agent_credential: null }) },
    );
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(panel());
    await user.click(screen.getByRole('button', { name: 'Revoke agent credential' }));
    const dialog = screen.getByRole('dialog', { name: 'Revoke the agent credential?' });
    expect(dialog).toHaveTextContent('stops being heard at once');
    await user.click(within(dialog).getByRole('button', { name: 'Revoke' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    const del = calls.find((c) => c.method === 'DELETE')!;
    expect(del.url.pathname).toBe('/api/environments/env-1/agent-credential');
    expect(del.headers.get('X-Westtek-Lab')).toBe('lab-1');
  });

  it('shows a refusal in plain words inside the dialog', async () => {
    vi.stubGlobal(
      'fetch',
      mockFetch(() => ({
        status: 403,
        body: { type: 't', title: 'Forbidden', status: 403, code: 'forbidden', detail: 'only the researcher or a lab admin may do that' },
      })).fn,
    );
    const user = userEvent.setup();
    renderWithProviders(panel());
    await user.click(screen.getByRole('button', { name: 'Revoke agent credential' }));
    const dialog = screen.getByRole('dialog');
    await user.click(within(dialog).getByRole('button', { name: 'Revoke' }));
    const alert = await within(dialog).findByRole('alert');
    expect(alert).toHaveTextContent('Not allowed');
    expect(alert).toHaveTextContent('Only the researcher or a lab admin may do that.');
  });
});
