import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mockFetch, renderWithProviders } from '@/testing/render';
import { parseSnapshotDiff } from '../api/get-snapshot-diff';
import type { Snapshot } from '../api/get-snapshots';
import { SnapshotCompare } from './snapshot-compare';
import { SnapshotDiffView } from './snapshot-diff';

afterEach(() => vi.unstubAllGlobals());

/** A diff as the platform sends it (`GET /api/snapshots/{a}/diff/{b}`). */
const raw = {
  from: 'snap-a',
  to: 'snap-b',
  drift_status: 'CRITICAL_DRIFT',
  findings: [
    { kind: { type: 'package_upgraded' }, subject: 'urllib3', before: '1.26.20', after: '2.2.3', distance: 'major', severity: 'CRITICAL', affected_notebooks: ['analysis.ipynb'] },
    { kind: { type: 'package_added' }, subject: 'tabulate', before: null, after: '0.9.0', distance: null, severity: 'MINOR', affected_notebooks: [] },
    { kind: { type: 'kernel_changed' }, subject: 'python3', before: 'python 3.11', after: 'python 3.12', distance: null, severity: 'CRITICAL', affected_notebooks: [] },
    { kind: { type: 'notebook_added' }, subject: 'home/new.ipynb', before: null, after: 'ab'.repeat(32), distance: null, severity: 'INFO', affected_notebooks: [] },
  ],
  files: [
    { layer: 'home', path: 'new.ipynb', change: 'added', kind: 'file', size: 2048 },
    { layer: 'venv', path: 'lib/python3.11/site-packages/old.py', change: 'removed', kind: 'file', size: 10 },
    { layer: 'venv', path: 'bin/python', change: 'changed', kind: 'symlink', size: 9, old_size: 9, content_changed: false, metadata_changed: true },
  ],
};

describe('SnapshotDiffView', () => {
  it('puts package, kernel, other and file changes in their own readable tables', () => {
    renderWithProviders(<SnapshotDiffView diff={parseSnapshotDiff(raw)} fromLabel="Monday" toLabel="Tuesday" />);
    expect(screen.getByText(/2 package changes, 1 kernel change, 1 other change, 3 file changes/)).toBeInTheDocument();
    expect(screen.getByText('Critical drift')).toBeInTheDocument();

    const packages = screen.getByRole('table', { name: 'Package changes (2)' });
    const urllib3 = within(packages).getByText('urllib3').closest('tr')!;
    expect(within(urllib3).getByText('Package upgraded')).toBeInTheDocument();
    expect(within(urllib3).getByText('1.26.20')).toBeInTheDocument();
    expect(within(urllib3).getByText('2.2.3')).toBeInTheDocument();
    expect(within(urllib3).getByText('Critical')).toBeInTheDocument();
    expect(within(urllib3).getByText('analysis.ipynb')).toBeInTheDocument();
    expect(within(packages).getByText('tabulate').closest('tr')).toHaveTextContent('Package added');

    const kernels = screen.getByRole('table', { name: 'Kernel and extension changes (1)' });
    expect(within(kernels).getByText('python3').closest('tr')).toHaveTextContent('python 3.11python 3.12');

    // Content hashes are shortened, not dumped.
    const other = screen.getByRole('table', { name: 'Notebooks, data and configuration (1)' });
    expect(within(other).getByText('abababab…'.replace('abababab', 'ababababab'))).toBeInTheDocument();

    const files = screen.getByRole('table', { name: 'File changes (3)' });
    const rows = within(files).getAllByRole('row').slice(1);
    expect(rows.map((r) => within(r).getAllByRole('cell')[0]!.textContent)).toEqual([
      'Added',
      'Removed',
      'Changed(permissions or times only)',
    ]);
    expect(rows[0]).toHaveTextContent('2.0 kB');
  });

  it('says when two snapshots are identical', () => {
    renderWithProviders(
      <SnapshotDiffView diff={parseSnapshotDiff({ drift_status: 'STABLE', findings: [], files: [] })} fromLabel="a" toLabel="b" />,
    );
    expect(screen.getByText('The two snapshots are identical.')).toBeInTheDocument();
    expect(screen.queryByRole('table')).toBeNull();
  });

  it('shows the first 100 file changes and the rest on request', async () => {
    const many = Array.from({ length: 130 }, (_, i) => ({ layer: 'home', path: `f${i}.csv`, change: 'added', kind: 'file', size: 1 }));
    renderWithProviders(
      <SnapshotDiffView diff={parseSnapshotDiff({ findings: [], files: many })} fromLabel="a" toLabel="b" />,
    );
    const files = screen.getByRole('table', { name: 'File changes (130)' });
    expect(within(files).getAllByRole('row')).toHaveLength(101);
    await userEvent.setup().click(screen.getByRole('button', { name: 'Show all 130 file changes' }));
    expect(within(files).getAllByRole('row')).toHaveLength(131);
  });
});

function snapshot(id: string, timestamp: string, notes: string | null, status = 'complete'): Snapshot {
  return {
    id, lab_id: 'lab', environment_id: 'env', created_by: 'u', timestamp, status, s3_location: 'vault://x',
    size_bytes: 100, stored_bytes_added: 10,
    metadata: { installed_packages: [], notebook_count: 0, configuration_files: [], notes },
  };
}

describe('SnapshotCompare', () => {
  const snaps = [
    snapshot('00000000-0000-0000-0000-00000000000c', '2026-11-22T12:00:00Z', 'newest'),
    snapshot('00000000-0000-0000-0000-00000000000x', '2026-11-22T11:30:00Z', 'broken', 'failed'),
    snapshot('00000000-0000-0000-0000-00000000000b', '2026-11-22T11:00:00Z', 'middle'),
    snapshot('00000000-0000-0000-0000-00000000000a', '2026-11-22T10:00:00Z', 'oldest'),
  ];

  it('compares the two newest complete snapshots by default, or the ones picked, and shows the API’s answer', async () => {
    const { fn, calls } = mockFetch(() => ({ body: raw }));
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(<SnapshotCompare snapshots={snaps} />);
    // Failed snapshots cannot be compared.
    expect(screen.getByLabelText('From (older)').querySelectorAll('option')).toHaveLength(3);
    await user.click(screen.getByRole('button', { name: 'Compare' }));
    expect(await screen.findByRole('table', { name: 'Package changes (2)' })).toBeInTheDocument();
    expect(calls.at(-1)!.url.pathname).toBe(`/api/snapshots/${snaps[2]!.id}/diff/${snaps[0]!.id}`);

    await user.selectOptions(screen.getByLabelText('From (older)'), snaps[3]!.id);
    await user.click(screen.getByRole('button', { name: 'Compare' }));
    await vi.waitFor(() => expect(calls.at(-1)!.url.pathname).toBe(`/api/snapshots/${snaps[3]!.id}/diff/${snaps[0]!.id}`));
  });

  it('refuses to compare a snapshot with itself, and explains API errors', async () => {
    const { fn, calls } = mockFetch(() => ({
      status: 409,
      body: { type: 't', title: 'Conflict', status: 409, code: 'conflict', detail: 'the snapshot is not complete' },
    }));
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(<SnapshotCompare snapshots={snaps} />);
    await user.selectOptions(screen.getByLabelText('From (older)'), snaps[0]!.id);
    await user.click(screen.getByRole('button', { name: 'Compare' }));
    expect(screen.getByText('Pick two different snapshots.')).toBeInTheDocument();
    expect(calls).toHaveLength(0);
    await user.selectOptions(screen.getByLabelText('From (older)'), snaps[3]!.id);
    await user.click(screen.getByRole('button', { name: 'Compare' }));
    expect(await screen.findByRole('alert')).toHaveTextContent('The snapshot is not complete.');
  });

  it('asks for a second snapshot when there is only one', () => {
    renderWithProviders(<SnapshotCompare snapshots={[snaps[0]!]} />);
    expect(screen.getByText(/Take at least two snapshots to compare them/)).toBeInTheDocument();
  });
});
