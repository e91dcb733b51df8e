import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { mockFetch, renderWithProviders } from '@/testing/render';
import type { TransferSummary } from '../api/get-transfer';
import { parseMarkdown } from './markdown';
import { TransferPanel } from './transfer-panel';

const SUMMARY = [
  '# Environment summary: thesis',
  '',
  '- Lab: genomics',
  '- Python: 3.11.7',
  '',
  '## Notebooks (run in this order)',
  '',
  '1. clean.ipynb: imports pandas',
  '2. fit.ipynb',
  '',
  'A note with <img src=x onerror="alert(1)"> and <script>alert(2)</script> and `pip freeze`.',
].join('\n');

const transfer: TransferSummary = {
  environment_id: 'env-1',
  name: 'thesis',
  summary: SUMMARY,
  summary_path: 'environment-docs/env-1/summary.md',
  snapshots: 2,
  notebooks: [
    { path: 'clean.ipynb', imports: ['pandas'], data_files: ['data/raw.csv'], document: 'notebooks/l/u/env-1/clean.md' },
    { path: 'broken.ipynb', imports: [], data_files: [], document: null, error: 'not JSON' },
  ],
  checklist: [],
  redactions: { email: 2, aws_secret_access_key: 1, phone: 0 },
  package_url: '/api/knowledge/transfer/env-1/package.zip',
};

function api() {
  return mockFetch(({ method, url }) => {
    if (url.pathname === '/api/knowledge/transfer') return { body: transfer };
    if (method === 'POST' && url.pathname === '/api/knowledge/sync/env-1') {
      return { body: { documents: ['a.md', 'b.md', 'c.md'], chunks: 12, redactions: 3, skipped: ['broken.ipynb: not JSON'] } };
    }
    if (url.pathname === '/api/knowledge/transfer/env-1/package.zip') {
      return { body: 'PK', headers: { 'content-disposition': 'attachment; filename="transfer-thesis.zip"', 'content-type': 'application/zip' } };
    }
    return { status: 404, body: { type: 't', title: 'Not Found', status: 404, code: 'not_found', detail: 'x' } };
  });
}

const createObjectURL = vi.fn(() => 'blob:x');
beforeEach(() => {
  createObjectURL.mockClear();
  URL.createObjectURL = createObjectURL;
  URL.revokeObjectURL = vi.fn();
});
afterEach(() => vi.unstubAllGlobals());

describe('TransferPanel', () => {
  it('renders the summary Markdown as headings and lists, and HTML in it as text', async () => {
    const { fn } = api();
    vi.stubGlobal('fetch', fn);
    const { container } = renderWithProviders(<TransferPanel environmentId="env-1" canOperate onOpenDocument={vi.fn()} />);
    const summary = await screen.findByRole('region', { name: 'Generated summary' });
    expect(within(summary).getByRole('heading', { name: 'Environment summary: thesis' })).toBeInTheDocument();
    expect(within(summary).getByRole('heading', { name: 'Notebooks (run in this order)' })).toBeInTheDocument();
    expect(within(summary).getAllByRole('listitem').map((li) => li.textContent)).toEqual([
      'Lab: genomics',
      'Python: 3.11.7',
      'clean.ipynb: imports pandas',
      'fit.ipynb',
    ]);
    // The HTML is shown, not interpreted.
    expect(summary).toHaveTextContent('<img src=x onerror="alert(1)"> and <script>alert(2)</script>');
    expect(container.querySelector('img')).toBeNull();
    expect(container.querySelector('script')).toBeNull();
    expect(within(summary).getByText('pip freeze').tagName).toBe('CODE');
    expect(summary).not.toHaveTextContent('#');
  });

  it('lists notebooks in run order with their data and errors, and redactions in words', async () => {
    const { fn } = api();
    vi.stubGlobal('fetch', fn);
    const open = vi.fn();
    renderWithProviders(<TransferPanel environmentId="env-1" canOperate={false} onOpenDocument={open} />);
    const notebooks = await screen.findByRole('list', { name: 'Notebooks in run order' });
    const items = within(notebooks).getAllByRole('listitem');
    expect(items[0]).toHaveTextContent('1. clean.ipynb');
    expect(items[0]).toHaveTextContent('Reads data/raw.csv. Imports pandas.');
    expect(items[1]).toHaveTextContent('2. broken.ipynb');
    expect(items[1]).toHaveTextContent('It could not be read: not JSON');
    await userEvent.setup().click(within(items[0]!).getByRole('button', { name: /^Open/ }));
    expect(open).toHaveBeenCalledWith('notebooks/l/u/env-1/clean.md', 'clean.ipynb');
    expect(within(screen.getByRole('list', { name: 'Redactions by kind' })).getAllByRole('listitem').map((li) => li.textContent)).toEqual([
      '2 e-mail addresses',
      '1 AWS secret key',
    ]);
    // Only those who may operate the environment sync it.
    expect(screen.queryByRole('button', { name: 'Sync now' })).toBeNull();
  });

  it('syncs now and says what it did; downloads the package through the api client', async () => {
    const { fn, calls } = api();
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(<TransferPanel environmentId="env-1" canOperate onOpenDocument={vi.fn()} />);
    await user.click(await screen.findByRole('button', { name: 'Sync now' }));
    const status = await screen.findByRole('status', { name: '' });
    await waitFor(() => expect(status).toHaveTextContent('3 documents written, 12 passages indexed for search, 3 secrets or personal details redacted.'));
    expect(status).toHaveTextContent('broken.ipynb: not JSON');

    await user.click(screen.getByRole('button', { name: 'Download package (.zip)' }));
    await waitFor(() => expect(createObjectURL).toHaveBeenCalled());
    expect(calls.some((c) => c.url.pathname === '/api/knowledge/transfer/env-1/package.zip')).toBe(true);
  });

  it('explains a failure in plain words', async () => {
    vi.stubGlobal(
      'fetch',
      mockFetch(() => ({ status: 404, body: { type: 't', title: 'Not Found', status: 404, code: 'not_found', detail: 'environment not found' } })).fn,
    );
    renderWithProviders(<TransferPanel environmentId="env-1" canOperate onOpenDocument={vi.fn()} />);
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Not found');
    expect(alert).toHaveTextContent('Environment not found.');
  });
});

describe('parseMarkdown', () => {
  it('keeps fenced code as is and joins paragraph lines', () => {
    expect(parseMarkdown('one\ntwo\n\n```\n# not a heading\n```')).toEqual([
      { kind: 'paragraph', text: 'one two' },
      { kind: 'code', text: '# not a heading' },
    ]);
  });
});
