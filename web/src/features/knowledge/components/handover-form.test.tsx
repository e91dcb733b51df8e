import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dateInputFromNow } from '@/lib/format';
import { mockFetch, renderWithProviders } from '@/testing/render';
import { HandoverForm } from './handover-form';

afterEach(() => vi.unstubAllGlobals());

const environment = { id: 'env-1', name: 'thesis', labId: 'lab-1', researcherId: 'u-old' };

function api(post: { status: number; body: unknown }) {
  return mockFetch(({ method, url }) => {
    if (url.pathname === '/api/labs/lab-1/users') {
      return {
        body: [
          { id: 'u-old', username: 'ada', display_name: 'ada', it_admin: false, created_at: '' },
          { id: 'u-new', username: 'grace', display_name: 'grace', it_admin: false, created_at: '' },
        ],
      };
    }
    if (method === 'POST' && url.pathname === '/api/knowledge/handover') return post;
    return { body: [] };
  });
}

describe('HandoverForm', () => {
  it('asks for the new researcher, explains what moves, then hands over', async () => {
    const { fn, calls } = api({ status: 201, body: { id: 'h-1' } });
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    const done = vi.fn();
    renderWithProviders(<HandoverForm environment={environment} onDone={done} />);
    const form = await screen.findByRole('form', { name: 'Hand over' });
    expect(form).toHaveTextContent('Now owned by ada.');
    // The current owner is not offered; read access defaults to 30 days.
    const who = within(form).getByLabelText('New researcher');
    expect(within(who).getAllByRole('option').map((o) => o.textContent)).toEqual(['Choose…', 'grace']);
    expect(within(form).getByLabelText('Previous owner may read until')).toHaveValue(dateInputFromNow(30));

    await user.click(within(form).getByRole('button', { name: 'Hand over…' }));
    expect(who).toHaveAccessibleDescription('Pick the researcher who takes the environment over.');
    expect(who).toHaveFocus();
    expect(screen.queryByRole('dialog')).toBeNull();

    await user.selectOptions(who, 'grace');
    await user.type(within(form).getByLabelText('Note for the new researcher (optional)'), 'Run clean.ipynb first.');
    await user.click(within(form).getByRole('button', { name: 'Hand over…' }));
    const dialog = screen.getByRole('dialog', { name: 'Hand over “thesis”?' });
    expect(dialog).toHaveTextContent('Ownership of thesis moves from ada to grace now.');
    expect(dialog).toHaveTextContent('ada keeps read-only access until');
    expect(calls.some((c) => c.method === 'POST')).toBe(false);
    await user.click(within(dialog).getByRole('button', { name: 'Hand over' }));
    await waitFor(() => expect(done).toHaveBeenCalled());
    const sent = calls.find((c) => c.method === 'POST')!.body as Record<string, unknown>;
    expect(sent).toMatchObject({ environment_id: 'env-1', to: 'u-new', note: 'Run clean.ipynb first.' });
    expect(dateInputFromNow(0, new Date(sent.read_until as string))).toBe(dateInputFromNow(30));
    expect(screen.queryByRole('dialog')).toBeNull();
  });

  it('shows a refusal in the dialog in plain words', async () => {
    const { fn } = api({
      status: 403,
      body: { type: 't', title: 'x', status: 403, code: 'forbidden', detail: "only the environment's researcher or a lab admin may do this" },
    });
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(<HandoverForm environment={environment} />);
    await user.selectOptions(await screen.findByLabelText('New researcher'), 'grace');
    await user.click(screen.getByRole('button', { name: 'Hand over…' }));
    await user.click(within(screen.getByRole('dialog')).getByRole('button', { name: 'Hand over' }));
    const alert = await within(screen.getByRole('dialog')).findByRole('alert');
    expect(alert).toHaveTextContent('Not allowed');
    expect(alert).toHaveTextContent("Only the environment's researcher or a lab admin may do this.");
  });
});
