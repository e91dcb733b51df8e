import { screen } from '@testing-library/react';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mockFetch, renderWithProviders } from '@/testing/render';
import { SandboxBanner } from './sandbox-banner';

describe('SandboxBanner', () => {
  afterEach(() => vi.unstubAllGlobals());

  it('warns IT admins in red when the sandbox is disabled', async () => {
    vi.stubGlobal('fetch', mockFetch(() => ({ body: { mode: 'disabled', per_environment_uid: false, detail: 'started with --insecure-no-sandbox' } })).fn);
    renderWithProviders(<SandboxBanner itAdmin />);
    expect(await screen.findByRole('alert')).toHaveTextContent('Notebooks are not sandboxed.');
  });

  it('says why launches are refused when the host cannot sandbox', async () => {
    vi.stubGlobal('fetch', mockFetch(() => ({ body: { mode: 'unavailable', per_environment_uid: false, detail: 'bubblewrap is not installed' } })).fn);
    renderWithProviders(<SandboxBanner itAdmin />);
    expect(await screen.findByRole('alert')).toHaveTextContent('bubblewrap is not installed');
  });

  it('shows nothing when the sandbox is enforced', async () => {
    const { fn, calls } = mockFetch(() => ({ body: { mode: 'enforced', per_environment_uid: true, detail: null } }));
    vi.stubGlobal('fetch', fn);
    renderWithProviders(<SandboxBanner itAdmin />);
    await vi.waitFor(() => expect(calls.length).toBe(1));
    expect(screen.queryByRole('alert')).toBeNull();
  });
});
