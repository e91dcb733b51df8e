import { screen } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import { adoptedEnvironment, environment } from '@/testing/fixtures';
import { renderWithProviders } from '@/testing/render';
import type { Environment } from '../api/get-environment';
import { JupyterControls } from './jupyter-controls';

const env = (last_exit?: Environment['container_info']['last_exit'], jupyter_status = 'stopped') =>
  ({
    id: 'e1',
    status: 'ready',
    jupyter_status,
    container_info: { task_arn: null, cluster_name: null, jupyter_url: null, efs_access_point: null, ebs_volume_id: null, last_exit },
  }) as unknown as Environment;

describe('JupyterControls', () => {
  it('says in red when the last server hit a limit', () => {
    renderWithProviders(
      <JupyterControls
        env={env({ at: '2026-12-07T10:00:00Z', reason: 'memory_limit', message: 'Jupyter was stopped: it ran out of memory at the lab\u2019s limit of 1024 MiB per process.' })}
      />,
    );
    expect(screen.getByRole('alert')).toHaveTextContent('limit of 1024 MiB per process');
  });

  it('mentions an idle stop without alarm, and nothing while running', () => {
    const { unmount } = renderWithProviders(
      <JupyterControls env={env({ at: '2026-12-07T10:00:00Z', reason: 'idle', message: 'Jupyter was stopped after 60 minutes without activity.' })} />,
    );
    expect(screen.getByText(/without activity/)).toBeInTheDocument();
    expect(screen.queryByRole('alert')).toBeNull();
    unmount();
    renderWithProviders(<JupyterControls env={env({ at: '2026-12-07T10:00:00Z', reason: 'idle', message: 'stopped idle' }, 'running')} />);
    expect(screen.queryByText('stopped idle')).toBeNull();
  });

  it('offers no launch for an adopted environment: its Jupyter runs on the lab machine', () => {
    renderWithProviders(<JupyterControls env={adoptedEnvironment()} />);
    expect(screen.getByRole('region', { name: 'JupyterLab' })).toHaveTextContent('runs on the lab machine lab-ws-3');
    expect(screen.queryByRole('button', { name: /Launch/ })).toBeNull();
    expect(screen.queryByRole('link', { name: /Open JupyterLab/ })).toBeNull();
  });

  it('offers launch for an environment the platform built', () => {
    renderWithProviders(<JupyterControls env={environment()} />);
    expect(screen.getByRole('button', { name: 'Launch Jupyter' })).toBeEnabled();
  });

  it('sends users through the lab\u2019s secure browser when the lab has one', () => {
    const running = {
      ...env(undefined, 'running'),
      container_info: {
        task_arn: null,
        cluster_name: null,
        jupyter_url: 'https://westtek.example.org/jupyter/e1/lab',
        efs_access_point: null,
        ebs_volume_id: null,
      },
    } as unknown as Environment;
    const { unmount } = renderWithProviders(<JupyterControls env={running} />);
    expect(screen.getByRole('link', { name: /Open JupyterLab/ })).toHaveAttribute('href', 'https://westtek.example.org/jupyter/e1/lab');
    unmount();
    renderWithProviders(<JupyterControls env={running} secureBrowserUrl="https://abcd1234.workspaces-web.com" />);
    expect(screen.queryByRole('link', { name: /Open JupyterLab/ })).toBeNull();
    expect(screen.getByRole('link', { name: /secure browser/ })).toHaveAttribute('href', 'https://abcd1234.workspaces-web.com');
    expect(screen.getByText('https://westtek.example.org/jupyter/e1/lab')).toBeInTheDocument();
  });
});
