import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mockFetch, renderWithProviders } from '@/testing/render';
import type { Handover } from '../api/get-handovers';
import { HandoverCard } from './handover-card';
import { MyHandovers } from './my-handovers';
import { OnboardingChecklist } from './onboarding-checklist';

afterEach(() => vi.unstubAllGlobals());

const handover: Handover = {
  id: 'h-1',
  lab_id: 'lab-1',
  environment_id: 'env-1',
  from_user: 'u-old',
  to_user: 'u-new',
  note: 'Start with clean.ipynb.',
  read_until: '2099-01-01T00:00:00Z',
  created_at: '2026-01-01T00:00:00Z',
  package_url: '/api/knowledge/transfer/env-1/package.zip',
  done: 1,
  total: 4,
  checklist: [
    { key: 'restore:s1', text: 'Restore snapshot s1.', done: true, done_at: '2026-01-02T00:00:00Z', source: 'package-manifests/env-1/s1.txt' },
    { key: 'launch', text: 'Launch Jupyter for thesis and open JupyterLab.', done: false, source: 'environment-docs/env-1/summary.md' },
    { key: 'notebook:1', text: 'Run clean.ipynb (needs data/raw.csv).', done: false, source: null },
    { key: 'history', text: 'Read the installation history.', done: false, source: 'installation-history/env-1/history.jsonl' },
  ],
};

function api() {
  let current = handover;
  return mockFetch(({ method, url, body }) => {
    if (method === 'GET' && url.pathname === '/api/knowledge/handovers') return { body: [current] };
    if (url.pathname === '/api/labs/lab-1/users') {
      return {
        body: [
          { id: 'u-old', username: 'ada', display_name: 'ada', it_admin: false, created_at: '' },
          { id: 'u-new', username: 'grace', display_name: 'Grace Hopper', it_admin: false, created_at: '' },
        ],
      };
    }
    if (url.pathname === '/api/environments/env-1') return { body: { id: 'env-1', name: 'thesis', lab_id: 'lab-1', researcher_id: 'u-new' } };
    if (method === 'PUT' && url.pathname.startsWith('/api/knowledge/handovers/h-1/checklist/')) {
      const key = decodeURIComponent(url.pathname.split('/').pop()!);
      const done = (body as { done: boolean }).done;
      const checklist = handover.checklist.map((c) => (c.key === key ? { ...c, done, done_at: done ? '2026-01-03T00:00:00Z' : null } : c));
      current = { ...handover, checklist, done: checklist.filter((c) => c.done).length };
      return { body: current };
    }
    return { body: [] };
  });
}

describe('OnboardingChecklist', () => {
  it('shows progress as done of total with a progress bar', () => {
    renderWithProviders(<OnboardingChecklist handover={handover} items={handover.checklist} canTick onOpenDocument={vi.fn()} />);
    const bar = screen.getByRole('progressbar', { name: 'Onboarding checklist: 1 of 4 done' });
    expect(bar).toHaveAttribute('aria-valuenow', '25');
    expect(screen.getByRole('checkbox', { name: /Restore snapshot s1/ })).toBeChecked();
    expect(screen.getByRole('checkbox', { name: /Launch Jupyter/ })).not.toBeChecked();
  });

  it('lets the new researcher tick a step, saves it and updates the progress', async () => {
    const { fn, calls } = api();
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    // The onboarding view of the new researcher.
    renderWithProviders(<MyHandovers viewer={{ userId: 'u-new', isLabAdmin: () => false }} />);
    const card = await screen.findByRole('article', { name: 'Handover from ada to you' });
    expect(card).toHaveTextContent('Start with clean.ipynb.');
    expect(await within(card).findByRole('link', { name: 'thesis' })).toHaveAttribute('href', '/environments/env-1/knowledge');
    expect(screen.getByText('You have not handed anything over.')).toBeInTheDocument();
    const launch = screen.getByRole('checkbox', { name: /Launch Jupyter/ });
    await user.click(launch);
    const put = calls.find((c) => c.method === 'PUT')!;
    expect(put.url.pathname).toBe('/api/knowledge/handovers/h-1/checklist/launch');
    expect(put.body).toEqual({ done: true });
    expect(await screen.findByRole('progressbar', { name: 'Onboarding for you: 2 of 4 done' })).toHaveAttribute('aria-valuenow', '50');
    await waitFor(() => expect(screen.getByRole('checkbox', { name: /Launch Jupyter/ })).toBeChecked());
  });

  it('is read-only for others, and opens a step’s source document', async () => {
    const { fn, calls } = api();
    vi.stubGlobal('fetch', fn);
    const open = vi.fn();
    renderWithProviders(<HandoverCard handover={handover} viewer={{ userId: 'u-other', isLabAdmin: () => false }} onOpenDocument={open} />);
    expect(await screen.findByRole('article', { name: 'Handover from ada to Grace Hopper (grace)' })).toBeInTheDocument();
    expect(screen.getByText('Only the new researcher or a lab admin ticks these steps.')).toBeInTheDocument();
    for (const box of screen.getAllByRole('checkbox')) expect(box).toBeDisabled();
    const list = screen.getByRole('list', { name: 'Onboarding for Grace Hopper (grace)' });
    // A step without a source offers nothing to open.
    expect(within(list).getAllByRole('button', { name: /^Open source/ })).toHaveLength(3);
    await userEvent.setup().click(within(list).getByRole('button', { name: /^Open source of .Launch Jupyter/ }));
    expect(open).toHaveBeenCalledWith('environment-docs/env-1/summary.md', 'summary.md');
    expect(calls.some((c) => c.method === 'PUT')).toBe(false);
  });
});
