import { screen } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dateInputFromNow } from '@/lib/format';
import { mockFetch, renderWithProviders } from '@/testing/render';
import { ShareDialog, validateShare } from './share-dialog';

afterEach(() => vi.unstubAllGlobals());

const resource = { type: 'environment' as const, id: 'env-1', name: 'thesis' };

describe('ShareDialog', () => {
  it('catches a missing lab and a past expiry before sending anything', async () => {
    const { fn, calls } = mockFetch(() => ({ body: {} }));
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(<ShareDialog resource={resource} onClose={vi.fn()} />);
    expect(screen.getByRole('dialog', { name: 'Share “thesis”' })).toBeInTheDocument();
    expect(screen.getByLabelText('Lab to share with')).toHaveFocus();
    await user.type(screen.getByLabelText('Expires (optional)'), dateInputFromNow(-2));
    await user.click(screen.getByRole('button', { name: 'Share' }));
    const lab = screen.getByLabelText('Lab to share with');
    expect(lab).toHaveAttribute('aria-invalid', 'true');
    expect(lab).toHaveAccessibleDescription(/Name the lab to share with/);
    expect(lab).toHaveFocus();
    expect(screen.getByLabelText('Expires (optional)')).toHaveAccessibleDescription(/Pick a date after today/);
    expect(calls).toHaveLength(0);
  });

  it('sends the share as the API expects and confirms it in words', async () => {
    const expires = dateInputFromNow(7);
    const { fn, calls } = mockFetch(({ body }) => ({
      status: 201,
      body: {
        id: 's-1', owner_lab: 'lab-a', owner_lab_name: 'genomics', target_lab: 'lab-b', target_lab_name: 'climate',
        resource_type: 'environment', resource_id: 'env-1', resource_name: 'thesis', permission: 'clone',
        created_at: new Date().toISOString(), active: true, expires_at: (body as { expires_at: string }).expires_at, revoked_at: null,
      },
    }));
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(<ShareDialog resource={resource} onClose={vi.fn()} />);
    await user.type(screen.getByLabelText('Lab to share with'), ' climate ');
    await user.click(screen.getByRole('radio', { name: /Read and clone/ }));
    await user.type(screen.getByLabelText('Expires (optional)'), expires);
    await user.click(screen.getByRole('button', { name: 'Share' }));
    expect(await screen.findByRole('status')).toHaveTextContent(/Shared with climate: read and clone, until /);
    const post = calls[0]!;
    expect(post.method).toBe('POST');
    expect(post.url.pathname).toBe('/api/collaboration/share');
    const sent = post.body as Record<string, unknown>;
    expect(sent).toMatchObject({ resource_type: 'environment', resource_id: 'env-1', target_lab: 'climate', permission: 'clone' });
    // The end of the chosen day, local time.
    const end = new Date(sent.expires_at as string);
    expect([end.getHours(), end.getMinutes()]).toEqual([23, 59]);
    expect(dateInputFromNow(0, end)).toBe(expires);
  });

  it('shows the server’s refusal in plain words', async () => {
    vi.stubGlobal(
      'fetch',
      mockFetch(() => ({ status: 404, body: { type: 't', title: 'x', status: 404, code: 'not_found', detail: 'lab not found' } })).fn,
    );
    const user = userEvent.setup();
    renderWithProviders(<ShareDialog resource={resource} onClose={vi.fn()} />);
    await user.type(screen.getByLabelText('Lab to share with'), 'nowhere');
    await user.click(screen.getByRole('button', { name: 'Share' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('Lab not found.');
  });
});

describe('validateShare', () => {
  it('accepts no expiry', () => {
    expect(validateShare({ targetLab: 'climate', permission: 'read', expires: '' })).toEqual({});
  });
});
