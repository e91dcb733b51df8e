import { act, fireEvent, screen, waitFor, within } from '@testing-library/react';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { environmentSummaries, environmentSummary } from '@/testing/fixtures';
import { mockFetch, renderWithProviders } from '@/testing/render';
import { EnvironmentList } from './environment-list';
import { EnvironmentTable, ROW_HEIGHT } from './environment-table';

const VIEWPORT = 520; // 10 rows of 52 px

// jsdom has no layout: give the scroll area a height so the virtualizer has a window to fill.
const original = Object.getOwnPropertyDescriptor(HTMLElement.prototype, 'clientHeight');
beforeEach(() => {
  Object.defineProperty(HTMLElement.prototype, 'clientHeight', {
    configurable: true,
    get(this: HTMLElement) {
      return this.dataset.testid === 'environment-scroller' ? VIEWPORT : 0;
    },
  });
});
afterEach(() => {
  if (original) Object.defineProperty(HTMLElement.prototype, 'clientHeight', original);
  vi.unstubAllGlobals();
});

const bodyRows = () => within(screen.getByTestId('environment-scroller')).queryAllByRole('row');

describe('EnvironmentTable', () => {
  it('renders 1,000 environments with only a window of rows in the DOM', () => {
    const items = environmentSummaries(1000);
    renderWithProviders(<EnvironmentTable items={items} total={1000} />);
    const table = screen.getByRole('table', { name: 'Environments' });
    expect(table).toHaveAttribute('aria-rowcount', '1001');
    const rows = bodyRows();
    // 10 visible + overscan, never anywhere near 1,000.
    expect(rows.length).toBeGreaterThanOrEqual(10);
    expect(rows.length).toBeLessThan(30);
    expect(screen.getByRole('link', { name: 'env-0000' })).toHaveAttribute('href', `/environments/${items[0]!.id}`);
    expect(screen.queryByRole('link', { name: 'env-0999' })).toBeNull();
    // The spacer keeps the full scroll height, so the scrollbar is honest.
    const spacer = screen.getByTestId('environment-scroller').firstElementChild as HTMLElement;
    expect(spacer.style.height).toBe(`${1000 * ROW_HEIGHT}px`);
  });

  it('swaps rows in as the list scrolls, keeping the window small', async () => {
    renderWithProviders(<EnvironmentTable items={environmentSummaries(1000)} total={1000} />);
    const scroller = screen.getByTestId('environment-scroller');
    act(() => {
      scroller.scrollTop = 990 * ROW_HEIGHT;
      fireEvent.scroll(scroller);
    });
    await waitFor(() => expect(screen.getByRole('link', { name: 'env-0999' })).toBeInTheDocument());
    expect(screen.queryByRole('link', { name: 'env-0000' })).toBeNull();
    expect(bodyRows().length).toBeLessThan(30);
    const last = screen.getByRole('link', { name: 'env-0999' }).closest('[role="row"]')!;
    expect(last).toHaveAttribute('aria-rowindex', '1001');
  });

  it('marks an adopted environment with its host, and a platform one not at all', () => {
    const items = [
      environmentSummary(0, {
        name: 'adopted-rnaseq',
        adopted: { host: 'lab-ws-3', venv_path: '/home/ada/rnaseq/.venv', notebooks_path: '/home/ada/rnaseq' },
      }),
      environmentSummary(1, { name: 'built-here' }),
    ];
    renderWithProviders(<EnvironmentTable items={items} total={2} />);
    const adopted = screen.getByRole('link', { name: 'adopted-rnaseq' }).closest('[role="row"]') as HTMLElement;
    expect(within(adopted).getByText('Adopted · lab-ws-3')).toBeInTheDocument();
    const built = screen.getByRole('link', { name: 'built-here' }).closest('[role="row"]') as HTMLElement;
    expect(within(built).queryByText(/Adopted/)).toBeNull();
  });

  it('shows status words, not codes', () => {
    renderWithProviders(<EnvironmentTable items={environmentSummaries(8)} total={8} />);
    const first = screen.getByRole('link', { name: 'env-0000' }).closest('[role="row"]') as HTMLElement;
    expect(within(first).getByText('Ready')).toBeInTheDocument();
    expect(within(first).getByText('Running')).toBeInTheDocument();
    expect(within(first).getByText('Critical drift')).toBeInTheDocument();
  });
});

describe('EnvironmentList', () => {
  it('loads pages from the API as the list scrolls to rows not loaded yet', async () => {
    const all = environmentSummaries(1000);
    const { fn, calls } = mockFetch(({ url }) => {
      const offset = Number(url.searchParams.get('offset') ?? 0);
      const limit = Number(url.searchParams.get('limit') ?? 50);
      return { body: { items: all.slice(offset, offset + limit), total: all.length, limit, offset } };
    });
    vi.stubGlobal('fetch', fn);
    renderWithProviders(<EnvironmentList />);
    expect(await screen.findByRole('link', { name: 'env-0000' })).toBeInTheDocument();
    expect(screen.getByRole('heading', { name: /All environments \(1000\)/ })).toBeInTheDocument();
    expect(calls).toHaveLength(1);
    const scroller = screen.getByTestId('environment-scroller');
    act(() => {
      scroller.scrollTop = 995 * ROW_HEIGHT;
      fireEvent.scroll(scroller);
    });
    await waitFor(() => expect(screen.getByRole('link', { name: 'env-0999' })).toBeInTheDocument());
    // Only the pages needed were fetched, one after another.
    expect(calls.map((c) => c.url.searchParams.get('offset'))).toEqual(['0', '200', '400', '600', '800']);
    expect(bodyRows().length).toBeLessThan(30);
  });

  it('marks adopted environments as the API lists them', async () => {
    const items = [
      environmentSummary(0, { adopted: { host: 'lab-ws-3', venv_path: '/srv/venv', notebooks_path: '/srv/nb' } }),
      environmentSummary(1),
    ];
    vi.stubGlobal('fetch', mockFetch(() => ({ body: { items, total: 2, limit: 200, offset: 0 } })).fn);
    renderWithProviders(<EnvironmentList />);
    const first = (await screen.findByRole('link', { name: 'env-0000' })).closest('[role="row"]') as HTMLElement;
    expect(within(first).getByText('Adopted · lab-ws-3')).toBeInTheDocument();
    expect(screen.getAllByText(/^Adopted/)).toHaveLength(1);
  });

  it('says so when the lab has no environments', async () => {
    vi.stubGlobal('fetch', mockFetch(() => ({ body: { items: [], total: 0, limit: 200, offset: 0 } })).fn);
    renderWithProviders(<EnvironmentList />);
    expect(await screen.findByText('No environments yet.')).toBeInTheDocument();
  });

  it('shows a failure in plain words with a way to retry', async () => {
    vi.stubGlobal(
      'fetch',
      mockFetch(() => ({
        status: 403,
        body: { type: 't', title: 'Forbidden', status: 403, code: 'forbidden', detail: 'you are not a member of any lab' },
      })).fn,
    );
    renderWithProviders(<EnvironmentList />);
    const alert = await screen.findByRole('alert');
    expect(alert).toHaveTextContent('Not allowed');
    expect(alert).toHaveTextContent('You are not a member of any lab.');
    expect(within(alert).getByRole('button', { name: 'Try again' })).toBeInTheDocument();
  });
});
