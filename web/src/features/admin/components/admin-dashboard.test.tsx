import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mockFetch, renderWithProviders } from '@/testing/render';
import { AdminDashboard } from './admin-dashboard';
import { storageSeries } from './storage-chart';

const LAB_A = 'lab-a';
const LAB_B = 'lab-b';
const labs = [
  { id: LAB_A, name: 'genomics', display_name: 'Genomics', created_at: '', quotas: { max_environments: 50, max_running_servers: 10, max_storage_bytes: 10_000_000 } },
  { id: LAB_B, name: 'climate', display_name: 'Climate', created_at: '', quotas: { max_environments: 4, max_running_servers: 2, max_storage_bytes: null } },
];
/** Environments per lab, as the list endpoint would count them. */
const envs: Record<string, { jupyter: string; drift: string }[]> = {
  [LAB_A]: [
    { jupyter: 'running', drift: 'STABLE' },
    { jupyter: 'stopped', drift: 'STABLE' },
    { jupyter: 'stopped', drift: 'MINOR_DRIFT' },
  ],
  [LAB_B]: [
    { jupyter: 'running', drift: 'CRITICAL_DRIFT' },
    { jupyter: 'running', drift: 'STABLE' },
    { jupyter: 'stopped', drift: 'CRITICAL_DRIFT' },
    { jupyter: 'stopped', drift: 'CRITICAL_DRIFT' },
  ],
};
const snap = (lab: string, timestamp: string, added: number, status = 'complete') => ({
  id: `${lab}-${timestamp}`, lab_id: lab, environment_id: 'e', created_by: 'u', timestamp, status, s3_location: '',
  size_bytes: added * 2, stored_bytes_added: added, metadata: { installed_packages: [], notebook_count: 0, configuration_files: [] },
});
const snapshots: Record<string, ReturnType<typeof snap>[]> = {
  [LAB_A]: [
    snap(LAB_A, '2026-11-20T10:00:00Z', 500_000),
    snap(LAB_A, '2026-11-21T10:00:00Z', 0, 'failed'),
    snap(LAB_A, '2026-11-19T10:00:00Z', 1_000_000),
  ],
  [LAB_B]: [],
};
const entry = (seq: number) => ({
  seq, id: `a${seq}`, time: '2026-11-22T10:00:00Z', actor_id: 'u', actor_name: seq % 2 ? 'admin' : 'ada', lab_id: LAB_A,
  action: seq % 2 ? 'environment.create' : 'snapshot.create', target_kind: 'environment', target_id: `target-${seq}`,
  request_id: 'r', details: { name: `env-${seq}` }, prev_hash: 'p', hash: 'h',
});

function api(verify = { ok: true, entries: 120, problems: [] as string[] }) {
  return mockFetch(({ url, headers }) => {
    const lab = headers.get('X-Westtek-Lab') ?? '';
    const q = url.searchParams;
    switch (url.pathname) {
      case '/api/labs':
        return { body: labs };
      case '/api/environments': {
        const items = (envs[lab] ?? []).filter(
          (e) => (!q.get('jupyter_status') || e.jupyter === q.get('jupyter_status')) && (!q.get('drift_status') || e.drift === q.get('drift_status')),
        );
        return { body: { items: items.slice(0, 1), total: items.length, limit: 1, offset: 0 } };
      }
      case `/api/labs/${LAB_A}/storage`:
        return { body: { lab_id: LAB_A, used_bytes: 1_500_000, max_storage_bytes: 10_000_000, snapshots: 2 } };
      case `/api/labs/${LAB_B}/storage`:
        return { body: { lab_id: LAB_B, used_bytes: 0, max_storage_bytes: null, snapshots: 0 } };
      case '/api/snapshots':
        return { body: { items: snapshots[lab] ?? [], total: (snapshots[lab] ?? []).length, limit: 500, offset: 0 } };
      case '/api/audit': {
        const offset = Number(q.get('offset') ?? 0);
        const all = Array.from({ length: 120 }, (_, i) => entry(120 - i)).filter((e) => !q.get('actor') || e.actor_name === q.get('actor'));
        return { body: { items: all.slice(offset, offset + 50), total: all.length, limit: 50, offset } };
      }
      case '/api/audit/verify':
        return { body: verify };
      case '/api/audit/export':
        return { body: [], headers: { 'content-disposition': 'attachment; filename="westtek-audit.json"' } };
    }
    return { status: 404, body: { type: 't', title: 'Not Found', status: 404, code: 'route_not_found', detail: 'no such endpoint' } };
  });
}

const createObjectURL = vi.fn(() => 'blob:x');
beforeEach(() => {
  createObjectURL.mockClear();
  URL.createObjectURL = createObjectURL;
  URL.revokeObjectURL = vi.fn();
});
afterEach(() => vi.unstubAllGlobals());

describe('AdminDashboard', () => {
  it('shows every lab at a glance, each counted in its own lab', async () => {
    const { fn, calls } = api();
    vi.stubGlobal('fetch', fn);
    renderWithProviders(<AdminDashboard />);
    const table = await screen.findByRole('table', { name: 'Labs at a glance' });
    const genomics = within(table).getByRole('rowheader', { name: /Genomics/ }).closest('tr')!;
    await waitFor(() => expect(genomics).toHaveTextContent('3 of 50'));
    expect(genomics).toHaveTextContent('1 of 10');
    expect(genomics).toHaveTextContent('2 stable, 1 minor drift, 0 critical drift');
    expect(genomics).toHaveTextContent('1.5 MB of 10.0 MB');
    const climate = within(table).getByRole('rowheader', { name: /Climate/ }).closest('tr')!;
    await waitFor(() => expect(climate).toHaveTextContent('4 of 4'));
    expect(climate).toHaveTextContent('2 of 2');
    expect(climate).toHaveTextContent('1 stable, 0 minor drift, 3 critical drift');
    expect(climate).toHaveTextContent('0 B (no limit)');
    // Counts are asked in each lab, never across labs.
    const envCalls = calls.filter((c) => c.url.pathname === '/api/environments');
    expect(envCalls).toHaveLength(10);
    expect(new Set(envCalls.map((c) => c.headers.get('X-Westtek-Lab')))).toEqual(new Set([LAB_A, LAB_B]));
  });

  it('charts the storage of the chosen lab from its complete snapshots', async () => {
    vi.stubGlobal('fetch', api().fn);
    const user = userEvent.setup();
    renderWithProviders(<AdminDashboard />);
    const chart = await screen.findByTestId('storage-chart');
    await waitFor(() => expect(chart.querySelectorAll('circle')).toHaveLength(2));
    expect(chart).toHaveAccessibleName(/Genomics: 1.5 MB stored by 2 snapshots/);
    await user.selectOptions(screen.getByRole('combobox', { name: 'Lab shown' }), LAB_B);
    expect(await screen.findByTestId('storage-chart-empty')).toHaveTextContent('Climate: no snapshots yet.');
  });

  it('shows the audit chain verification and pages and filters the audit log', async () => {
    const { fn, calls } = api();
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(<AdminDashboard />);
    expect(await screen.findByText('Audit chain verified')).toBeInTheDocument();
    expect(screen.getByText(/All 120 entries are intact/)).toBeInTheDocument();
    const log = await screen.findByRole('table', { name: 'Audit entries, newest first' });
    expect(within(log).getAllByRole('row')).toHaveLength(51);
    expect(screen.getByText('Entries 1–50 of 120')).toBeInTheDocument();
    expect(within(log).getAllByText('environment.create')[0]!.closest('tr')).toHaveTextContent('name: env-119');

    await user.click(screen.getByRole('button', { name: 'Next page' }));
    expect(await screen.findByText('Entries 51–100 of 120')).toBeInTheDocument();
    expect(calls.filter((c) => c.url.pathname === '/api/audit').at(-1)!.url.searchParams.get('offset')).toBe('50');

    await user.type(screen.getByLabelText('Actor (username)'), 'ada');
    await user.click(screen.getByRole('button', { name: 'Apply filters' }));
    expect(await screen.findByText('Entries 1–50 of 60')).toBeInTheDocument();
    const last = calls.filter((c) => c.url.pathname === '/api/audit').at(-1)!;
    expect(last.url.searchParams.get('actor')).toBe('ada');
    expect(last.url.searchParams.get('offset')).toBe('0');

    await user.selectOptions(screen.getByLabelText('Export format'), 'json');
    await user.click(screen.getByRole('button', { name: 'Export' }));
    await waitFor(() => expect(createObjectURL).toHaveBeenCalled());
    const exp = calls.find((c) => c.url.pathname === '/api/audit/export')!;
    expect(exp.url.searchParams.get('format')).toBe('json');
    expect(exp.url.searchParams.get('actor')).toBe('ada');
  });

  it('names every problem of a broken chain', async () => {
    vi.stubGlobal('fetch', api({ ok: false, entries: 9, problems: ['entry 4 was edited', 'entry 7 is missing'] }).fn);
    renderWithProviders(<AdminDashboard />);
    const alert = await screen.findByText('The audit chain is broken');
    const box = alert.closest('[role="alert"]')!;
    expect(box).toHaveTextContent('2 problems in 9 entries');
    expect(within(box as HTMLElement).getAllByRole('listitem').map((l) => l.textContent)).toEqual(['entry 4 was edited', 'entry 7 is missing']);
  });
});

describe('storageSeries', () => {
  it('sums the bytes each complete snapshot added, oldest first', () => {
    expect(storageSeries(snapshots[LAB_A]!).map((p) => [p.t, p.added, p.total])).toEqual([
      [Date.parse('2026-11-19T10:00:00Z'), 1_000_000, 1_000_000],
      [Date.parse('2026-11-20T10:00:00Z'), 500_000, 1_500_000],
    ]);
  });
});
