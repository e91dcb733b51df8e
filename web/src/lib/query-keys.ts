/**
 * Query keys shared across features, so a mutation in one feature can
 * invalidate what it changes in another (a snapshot changes an environment's
 * `last_snapshot`) without features importing each other. Every key starts
 * with the resource and the lab, so switching labs never shows stale data.
 */
type Lab = string | null;

export const queryKeys = {
  environments: {
    all: (lab: Lab) => ['environments', lab] as const,
    list: (lab: Lab, filters: { q?: string }) => ['environments', lab, 'list', filters] as const,
    detail: (lab: Lab, id: string) => ['environments', lab, 'detail', id] as const,
  },
  snapshots: {
    all: (lab: Lab) => ['snapshots', lab] as const,
    list: (lab: Lab, environmentId: string) => ['snapshots', lab, 'list', environmentId] as const,
    diff: (lab: Lab, from: string, to: string) => ['snapshots', lab, 'diff', from, to] as const,
  },
  drift: {
    all: (lab: Lab) => ['drift', lab] as const,
    environment: (lab: Lab, environmentId: string) => ['drift', lab, 'environment', environmentId] as const,
    events: (lab: Lab, environmentId: string | undefined) => ['drift', lab, 'events', environmentId ?? 'all'] as const,
    timeline: (lab: Lab, environmentId: string | undefined) => ['drift', lab, 'timeline', environmentId ?? 'all'] as const,
  },
  knowledge: {
    all: (lab: Lab) => ['knowledge', lab] as const,
    transfer: (lab: Lab, environmentId: string) => ['knowledge', lab, 'transfer', environmentId] as const,
    /** Handovers of an environment, or (null) the caller's own. */
    handovers: (lab: Lab, environmentId: string | null) => ['knowledge', lab, 'handovers', environmentId ?? 'mine'] as const,
    labUsers: (lab: Lab, labId: string) => ['knowledge', lab, 'lab-users', labId] as const,
  },
  collaboration: {
    all: (lab: Lab) => ['collaboration', lab] as const,
    shares: (lab: Lab, direction: 'given' | 'received') => ['collaboration', lab, 'shares', direction] as const,
    templates: (lab: Lab) => ['collaboration', lab, 'templates'] as const,
  },
  /** IT-admin views across labs: the lab of each request is in the key after the resource. */
  admin: {
    all: () => ['admin'] as const,
    labs: () => ['admin', 'labs'] as const,
    labEnvironments: (lab: string) => ['admin', 'lab', lab, 'environments'] as const,
    labStorage: (lab: string) => ['admin', 'lab', lab, 'storage'] as const,
    labSnapshots: (lab: string) => ['admin', 'lab', lab, 'snapshots'] as const,
    audit: (filters: Record<string, string | number | undefined>) => ['admin', 'audit', 'list', filters] as const,
    auditVerify: () => ['admin', 'audit', 'verify'] as const,
    sandbox: () => ['admin', 'sandbox'] as const,
  },
};
