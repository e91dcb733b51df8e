import { screen, waitFor, within } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mockFetch, renderWithProviders } from '@/testing/render';
import type { Template } from '../api/get-templates';
import { TemplateList } from './template-list';

afterEach(() => vi.unstubAllGlobals());

const template = (over: Partial<Template>): Template => ({
  id: 't-1',
  lab_id: 'lab-a',
  snapshot_id: 'snap-1',
  environment_id: 'env-1',
  name: 'rnaseq-base',
  description: 'Our RNA-seq stack.',
  python_version: '3.11.7',
  packages: ['numpy==2.0.0', 'pandas==2.2.2'],
  published_at: new Date().toISOString(),
  share_id: null,
  ...over,
});

function api() {
  return mockFetch(({ method, url }) => {
    if (url.pathname === '/api/collaboration/templates') {
      return { body: [template({}), template({ id: 't-2', name: 'climate-base', lab_id: 'lab-b', share_id: 'share-9', description: '' })] };
    }
    if (method === 'POST' && url.pathname === '/api/collaboration/templates/t-2/clone') {
      return { status: 202, body: { job_id: 'job-1', environment_id: 'env-new' } };
    }
    if (url.pathname === '/api/jobs/job-1') {
      return {
        body: {
          id: 'job-1', lab_id: 'lab-a', kind: 'snapshot.restore', target_id: 'env-new', status: 'succeeded',
          progress: 1, message: 'restored', created_by: 'u', created_at: '', updated_at: '',
        },
      };
    }
    return { status: 404, body: { type: 't', title: 'x', status: 404, code: 'not_found', detail: 'x' } };
  });
}

describe('TemplateList', () => {
  it('lists own and shared-in templates; only own ones can be shared or withdrawn', async () => {
    vi.stubGlobal('fetch', api().fn);
    renderWithProviders(<TemplateList />);
    const list = await screen.findByRole('list', { name: 'Templates' });
    const [own, shared] = within(list).getAllByRole('listitem');
    expect(own).toHaveTextContent('rnaseq-base');
    expect(own).toHaveTextContent('Your lab’s');
    expect(own).toHaveTextContent('Our RNA-seq stack.');
    expect(own).toHaveTextContent('Python 3.11.7 · 2 packages · published just now');
    expect(within(own!).getByRole('button', { name: /^Share…/ })).toBeInTheDocument();
    expect(within(own!).getByRole('button', { name: /^Withdraw/ })).toBeInTheDocument();
    expect(shared).toHaveTextContent('climate-base');
    expect(shared).toHaveTextContent('Shared with your lab');
    expect(within(shared!).queryByRole('button', { name: /^Share…/ })).toBeNull();
    expect(within(shared!).queryByRole('button', { name: /^Withdraw/ })).toBeNull();
  });

  it('clones a template, follows the job and links to the new environment', async () => {
    const { fn, calls } = api();
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(<TemplateList />);
    const list = await screen.findByRole('list', { name: 'Templates' });
    const shared = within(list).getAllByRole('listitem')[1]!;
    await user.click(within(shared).getByRole('button', { name: /^Clone…/ }));
    const form = within(shared).getByRole('form', { name: 'Clone climate-base' });
    const name = within(form).getByLabelText('Name of the new environment (optional)');
    expect(name).toHaveFocus();
    await user.type(name, 'bad name!');
    await user.click(within(form).getByRole('button', { name: 'Clone into my lab' }));
    expect(name).toHaveAccessibleDescription(/Use letters, digits/);
    expect(calls.some((c) => c.method === 'POST')).toBe(false);

    await user.clear(name);
    await user.type(name, 'my-climate');
    await user.click(within(form).getByRole('button', { name: 'Clone into my lab' }));
    await waitFor(() => expect(within(shared).getByText('Cloning climate-base: done.')).toBeInTheDocument());
    expect(calls.find((c) => c.method === 'POST')!.body).toEqual({ name: 'my-climate' });
    expect(await within(shared).findByRole('link', { name: 'Open the new environment' })).toHaveAttribute('href', '/environments/env-new');
  });

  it('says when there are none', async () => {
    vi.stubGlobal('fetch', mockFetch(() => ({ body: [] })).fn);
    renderWithProviders(<TemplateList />);
    expect(await screen.findByText('No templates yet.')).toBeInTheDocument();
  });
});
