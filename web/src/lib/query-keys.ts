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
  },
  drift: {
    all: (lab: Lab) => ['drift', lab] as const,
    environment: (lab: Lab, environmentId: string) => ['drift', lab, 'environment', environmentId] as const,
    events: (lab: Lab, environmentId: string | undefined) => ['drift', lab, 'events', environmentId ?? 'all'] as const,
  },
};
