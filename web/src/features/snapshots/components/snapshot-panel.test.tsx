import { screen, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { useUiStore } from '@/stores/ui';
import { snapshot } from '@/testing/fixtures';
import { mockFetch, renderWithProviders } from '@/testing/render';
import { SnapshotPanel } from './snapshot-panel';

beforeEach(() => {
  useUiStore.setState({ labId: 'lab-1' });
  vi.stubGlobal('fetch', mockFetch(() => ({ body: { items: [snapshot()], total: 1, limit: 100, offset: 0 } })).fn);
});
afterEach(() => vi.unstubAllGlobals());

const openDetails = async () => {
  const user = userEvent.setup();
  await user.click(await screen.findByRole('button', { name: /^Details/ }));
  return within(screen.getByRole('region', { name: /^Snapshot / }));
};

describe('SnapshotPanel', () => {
  it('offers to take a snapshot and to restore in place or into a new environment', async () => {
    renderWithProviders(<SnapshotPanel environmentId="env-1" canSnapshot />);
    expect(screen.getByRole('button', { name: 'Take snapshot' })).toBeEnabled();
    const details = await openDetails();
    expect(details.getByRole('radio', { name: /In place/ })).toBeInTheDocument();
    expect(details.getByRole('radio', { name: /Into a new environment/ })).toBeChecked();
  });

  it('for an adopted environment: no "Take snapshot" (its agent takes them), restore only into a new environment', async () => {
    renderWithProviders(<SnapshotPanel environmentId="env-1" canSnapshot adoptedHost="lab-ws-3" />);
    expect(screen.queryByRole('button', { name: 'Take snapshot' })).toBeNull();
    expect(screen.queryByRole('textbox', { name: /Notes for a new snapshot/ })).toBeNull();
    expect(screen.getByText(/taken by its agent on lab-ws-3/)).toHaveTextContent('westtek agent snapshot');
    const details = await openDetails();
    expect(details.queryByRole('radio', { name: /In place/ })).toBeNull();
    expect(details.getByText(/Not in place/)).toBeInTheDocument();
    expect(details.getByRole('button', { name: 'Restore into a new environment' })).toBeEnabled();
  });
});
