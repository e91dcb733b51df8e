import type { components } from '@/api/schema';

type EnvironmentSummary = components['schemas']['EnvironmentSummary'];

export function environmentSummary(i: number, over: Partial<EnvironmentSummary> = {}): EnvironmentSummary {
  const statuses = ['ready', 'provisioning', 'ready'] as const;
  return {
    id: `00000000-0000-4000-8000-${String(i).padStart(12, '0')}`,
    lab_id: 'lab-1',
    researcher_id: 'user-1',
    name: `env-${String(i).padStart(4, '0')}`,
    python_version: '3.11.7',
    status: statuses[i % 3]!,
    jupyter_status: i % 5 === 0 ? 'running' : 'stopped',
    drift_status: i % 7 === 0 ? 'CRITICAL_DRIFT' : i % 4 === 0 ? 'MINOR_DRIFT' : 'STABLE',
    last_snapshot: i % 2 === 0 ? '2026-11-20T10:00:00Z' : null,
    created_at: '2026-11-01T10:00:00Z',
    updated_at: '2026-11-20T10:00:00Z',
    criticality: 'medium',
    package_count: 40 + (i % 20),
    ...over,
  };
}

export const environmentSummaries = (n: number) => Array.from({ length: n }, (_, i) => environmentSummary(i));

type Environment = components['schemas']['EnvironmentResponse'];
type Snapshot = components['schemas']['SnapshotResponse'];

/** One environment as `GET /api/environments/{id}` returns it: built by the platform unless `over` says otherwise. */
export function environment(over: Partial<Environment> = {}): Environment {
  return {
    id: 'env-1',
    lab_id: 'lab-1',
    researcher_id: 'user-1',
    name: 'rnaseq',
    python_version: '3.11.7',
    status: 'ready',
    jupyter_status: 'stopped',
    drift_status: 'STABLE',
    last_snapshot: '2026-11-20T10:00:00Z',
    created_at: '2026-11-01T10:00:00Z',
    updated_at: '2026-11-20T10:00:00Z',
    container_info: { task_arn: null, cluster_name: null, jupyter_url: null, efs_access_point: null, ebs_volume_id: null },
    metadata: { criticality: 'medium', jupyter_packages: ['jupyterlab==4.2.5', 'pandas==2.2.3'] },
    packages: [{ name: 'pandas', version: '==2.2.3' }],
    retention: {},
    ...over,
  };
}

/** The same environment adopted from the lab machine `lab-ws-3`, its agent holding a credential. */
export const adoptedEnvironment = (over: Partial<Environment> = {}): Environment =>
  environment({
    adopted: { host: 'lab-ws-3', venv_path: '/home/ada/rnaseq/.venv', notebooks_path: '/home/ada/rnaseq' },
    agent_credential: { id: 'agc-0001', issued_at: '2026-12-01T09:30:00Z' },
    ...over,
  });

/** A complete snapshot of `env-1`. */
export function snapshot(over: Partial<Snapshot> = {}): Snapshot {
  return {
    id: 'snap-0001',
    environment_id: 'env-1',
    lab_id: 'lab-1',
    created_by: 'user-1',
    status: 'complete',
    timestamp: '2026-11-20T10:00:00Z',
    s3_location: 'vault://lab-1/snap-0001',
    size_bytes: 1_000_000,
    stored_bytes_added: 10_000,
    metadata: { configuration_files: [], installed_packages: ['pandas==2.2.3'], notebook_count: 2, notes: 'baseline' },
    ...over,
  };
}
