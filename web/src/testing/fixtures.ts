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
