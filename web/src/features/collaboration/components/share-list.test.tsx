import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mockFetch, renderWithProviders } from '@/testing/render';
import { shareState, type Share } from '../api/get-shares';
import { ShareList } from './share-list';

afterEach(() => vi.unstubAllGlobals());

const DAY = 24 * 3600_000;
const iso = (ms: number) => new Date(ms).toISOString();

function share(over: Partial<Share>): Share {
  return {
    id: 's-1',
    owner_lab: 'lab-a',
    owner_lab_name: 'genomics',
    target_lab: 'lab-b',
    target_lab_name: 'climate',
    resource_type: 'environment',
    resource_id: 'env-1',
    resource_name: 'thesis',
    permission: 'read',
    created_at: iso(Date.now() - DAY),
    active: true,
    expires_at: null,
    revoked_at: null,
    ...over,
  };
}

describe('shareState', () => {
  const now = Date.parse('2026-05-01T12:00:00Z');
  it('says when an active share ends', () => {
    expect(shareState({ active: true, expires_at: iso(now + 3 * DAY), revoked_at: null }, now)).toEqual({ kind: 'active', words: 'Expires in 3 days' });
    expect(shareState({ active: true, expires_at: iso(now + 5 * 3600_000), revoked_at: null }, now).words).toBe('Expires in 5 hours');
    expect(shareState({ active: true, expires_at: null, revoked_at: null }, now).words).toBe('Active, no expiry');
  });
  it('tells expired from revoked', () => {
    expect(shareState({ active: false, expires_at: iso(now - DAY), revoked_at: null }, now).kind).toBe('expired');
    // The clock says it ended even if the list is a moment old.
    expect(shareState({ active: true, expires_at: iso(now - 1000), revoked_at: null }, now).kind).toBe('expired');
    expect(shareState({ active: false, expires_at: iso(now - DAY), revoked_at: iso(now - 2 * DAY) }, now)).toEqual({ kind: 'revoked', words: 'Revoked' });
  });
});

describe('ShareList', () => {
  it('shows given shares as active, expired or revoked, and revokes after asking', async () => {
    let shares = [
      share({ id: 's-active', resource_name: 'thesis', permission: 'clone', expires_at: iso(Date.now() + 3 * DAY + 3600_000) }),
      share({ id: 's-expired', resource_name: 'old-run', active: false, expires_at: iso(Date.now() - DAY) }),
      share({ id: 's-revoked', resource_name: 'base', resource_type: 'template', active: false, revoked_at: iso(Date.now() - DAY) }),
    ];
    const { fn, calls } = mockFetch(({ method, url }) => {
      if (method === 'DELETE' && url.pathname === '/api/collaboration/shares/s-active') {
        shares = shares.map((s) => (s.id === 's-active' ? { ...s, active: false, revoked_at: iso(Date.now()) } : s));
        return { status: 204 };
      }
      if (url.pathname === '/api/collaboration/shares') return { body: shares };
      return { status: 404, body: { type: 't', title: 'Not Found', status: 404, code: 'not_found', detail: 'x' } };
    });
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(<ShareList direction="given" />);
    const list = await screen.findByRole('list', { name: 'Shares given' });
    expect(calls[0]!.url.searchParams.get('direction')).toBe('given');
    const [active, expired, revoked] = within(list).getAllByRole('listitem');
    expect(active).toHaveTextContent('thesis (environment)');
    expect(active).toHaveTextContent('Shared with climate · Read and clone');
    expect(active).toHaveTextContent('Expires in 3 days');
    expect(expired).toHaveTextContent('Expired');
    expect(revoked).toHaveTextContent('base (template)');
    expect(revoked).toHaveTextContent('Revoked');
    expect(within(revoked!).queryByRole('button', { name: /^Revoke/ })).toBeNull();

    await user.click(within(active!).getByRole('button', { name: /^Revoke/ }));
    const dialog = screen.getByRole('dialog', { name: 'Revoke this share?' });
    expect(within(dialog).getByRole('button', { name: 'Cancel' })).toHaveFocus();
    expect(dialog).toHaveTextContent('climate loses access to thesis at once.');
    await user.click(within(dialog).getByRole('button', { name: 'Revoke' }));
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(calls.some((c) => c.method === 'DELETE' && c.url.pathname === '/api/collaboration/shares/s-active')).toBe(true);
    await waitFor(() => expect(within(screen.getByRole('list', { name: 'Shares given' })).getAllByRole('listitem')[0]).toHaveTextContent('Revoked'));
  });

  it('offers to clone only received clone shares, names the other lab, and has an empty state', async () => {
    const { fn } = mockFetch(() => ({
      body: [
        share({ id: 'r-1', resource_name: 'their-env', permission: 'clone' }),
        share({ id: 'r-2', resource_name: 'read-only-env', permission: 'read' }),
      ],
    }));
    vi.stubGlobal('fetch', fn);
    renderWithProviders(<ShareList direction="received" />);
    const list = await screen.findByRole('list', { name: 'Shares received' });
    const [cloneable, readable] = within(list).getAllByRole('listitem');
    expect(cloneable).toHaveTextContent('Shared by genomics');
    expect(within(cloneable!).getByRole('link', { name: 'their-env' })).toHaveAttribute('href', '/environments/env-1');
    expect(within(cloneable!).getByRole('button', { name: /^Clone…/ })).toBeInTheDocument();
    expect(within(readable!).queryByRole('button', { name: /^Clone…/ })).toBeNull();
    expect(within(list).queryByRole('button', { name: /^Revoke/ })).toBeNull();
  });

  it('says when nothing is shared, and explains errors', async () => {
    vi.stubGlobal('fetch', mockFetch(() => ({ body: [] })).fn);
    renderWithProviders(<ShareList direction="received" />);
    expect(await screen.findByText('Nothing is shared with your lab.')).toBeInTheDocument();
  });

  it('explains a failure with a retry', async () => {
    vi.stubGlobal('fetch', mockFetch(() => ({ status: 500, body: { type: 't', title: 'x', status: 500, code: 'internal' } })).fn);
    renderWithProviders(<ShareList direction="given" />);
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Something went wrong on our side');
    expect(within(alert).getByRole('button', { name: 'Try again' })).toBeInTheDocument();
  });
});
