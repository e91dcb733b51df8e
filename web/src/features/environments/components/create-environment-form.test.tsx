import { screen, waitFor } from '@testing-library/react';
import userEvent from '@testing-library/user-event';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { mockFetch, renderWithProviders } from '@/testing/render';
import { packageProblem, validateCreateEnvironment } from '../validation';
import { CreateEnvironmentForm } from './create-environment-form';

afterEach(() => vi.unstubAllGlobals());

const valid = {
  name: 'thesis-2026',
  packages: 'numpy\npandas>=2,<3\n# a comment\n\nscipy==1.13.1',
  pythonVersion: '3.11',
  criticality: 'high',
  experimentId: '',
  fundingSource: '',
};

describe('validateCreateEnvironment', () => {
  it('accepts what the platform accepts', () => {
    expect(validateCreateEnvironment(valid)).toEqual({});
  });

  it.each([
    ['', 'Give the environment a name.'],
    ['-starts-with-dash', 'Use letters, digits'],
    ['has space', 'Use letters, digits'],
    ['x'.repeat(65), 'too long'],
  ])('rejects the name %j', (name, message) => {
    expect(validateCreateEnvironment({ ...valid, name }).name).toContain(message);
  });

  it.each([
    ['numpy[extra]', 'no extras, URLs or paths'],
    ['git+https://example.org/x.git', 'no extras, URLs or paths'],
    ['-r requirements.txt', 'not a valid package name'],
    ['numpy==1.2;rm -rf', 'not a valid version'],
  ])('rejects the package line %j', (line, message) => {
    expect(packageProblem(line)).toContain(message);
  });

  it('rejects the same package twice, however it is spelled', () => {
    expect(validateCreateEnvironment({ ...valid, packages: 'scikit-learn\nScikit_Learn==1.5' }).packages).toContain(
      'listed twice',
    );
  });

  it.each(['3', 'python3.11', '2.7', '3.11.7.1'])('rejects the Python version %j', (v) => {
    expect(validateCreateEnvironment({ ...valid, pythonVersion: v }).pythonVersion).toBeDefined();
  });
});

describe('CreateEnvironmentForm', () => {
  it('shows what is wrong next to each field, focuses the first, and sends nothing', async () => {
    const { fn, calls } = mockFetch(() => ({ status: 500 }));
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(<CreateEnvironmentForm />);
    // user-event reads "[" as a key name; "[[" types one.
    await user.type(screen.getByLabelText('Packages'), 'numpy[[all]');
    await user.type(screen.getByLabelText('Python version'), 'three');
    await user.click(screen.getByRole('button', { name: 'Create environment' }));

    const name = screen.getByLabelText('Name');
    expect(name).toHaveAttribute('aria-invalid', 'true');
    expect(name).toHaveAccessibleDescription(/Give the environment a name\./);
    expect(name).toHaveFocus();
    expect(screen.getByLabelText('Packages')).toHaveAccessibleDescription(/no extras, URLs or paths/);
    expect(screen.getByLabelText('Python version')).toHaveAccessibleDescription(/like 3\.11 or 3\.11\.7/);
    expect(calls).toHaveLength(0);
  });

  it('sends the environment as the API expects and follows the build', async () => {
    const { fn, calls } = mockFetch(({ method, url }) => {
      if (method === 'POST' && url.pathname === '/api/environments') {
        return { status: 202, body: { job_id: 'job-1', environment_id: 'env-1' } };
      }
      if (url.pathname === '/api/jobs/job-1') {
        return {
          body: {
            id: 'job-1', lab_id: 'l', kind: 'environment.create', target_id: 'env-1', status: 'running',
            progress: 0.4, message: 'installing packages', created_by: 'u', created_at: '', updated_at: '',
          },
        };
      }
      return { status: 404, body: { type: 't', title: 'Not Found', status: 404, code: 'not_found', detail: 'x' } };
    });
    vi.stubGlobal('fetch', fn);
    const user = userEvent.setup();
    renderWithProviders(<CreateEnvironmentForm />);
    await user.type(screen.getByLabelText('Name'), valid.name);
    await user.type(screen.getByLabelText('Packages'), valid.packages);
    await user.type(screen.getByLabelText('Python version'), '3.11');
    await user.selectOptions(screen.getByLabelText('Criticality'), 'high');
    await user.click(screen.getByRole('button', { name: 'Create environment' }));

    expect(await screen.findByRole('heading', { name: 'Building “thesis-2026”' })).toBeInTheDocument();
    const post = calls.find((c) => c.method === 'POST')!;
    expect(post.body).toEqual({
      name: 'thesis-2026',
      packages: ['numpy', 'pandas>=2,<3', 'scipy==1.13.1'],
      python_version: '3.11',
      metadata: { criticality: 'high', experiment_id: null, funding_source: null },
    });
    await waitFor(() => expect(screen.getByRole('progressbar', { name: 'Building environment' })).toHaveAttribute('aria-valuenow', '40'));
    expect(screen.getByText('installing packages')).toBeInTheDocument();
    expect(screen.getByRole('link', { name: 'Open the environment' })).toHaveAttribute('href', '/environments/env-1');
  });

  it('puts the server’s validation error under the field it names', async () => {
    vi.stubGlobal(
      'fetch',
      mockFetch(() => ({
        status: 409,
        body: { type: 't', title: 'Conflict', status: 409, code: 'validation_failed', detail: 'name: is already used in this lab', field: 'name' },
      })).fn,
    );
    const user = userEvent.setup();
    renderWithProviders(<CreateEnvironmentForm />);
    await user.type(screen.getByLabelText('Name'), 'taken');
    await user.click(screen.getByRole('button', { name: 'Create environment' }));
    await waitFor(() => expect(screen.getByLabelText('Name')).toHaveAccessibleDescription(/Name: is already used in this lab\./));
  });
});
