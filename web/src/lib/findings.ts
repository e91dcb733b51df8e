/**
 * Inventory findings (what differs between a baseline and now, or between
 * two snapshots), shared by drift and snapshot comparison. The OpenAPI
 * document types findings as bare objects, so this is the shape of
 * `westtek_inventory::Finding` as serialised, read defensively by
 * `parseFinding`.
 */

/** One finding. */
export type Finding = {
  kind: string;
  change: string | undefined;
  subject: string;
  before: string | null;
  after: string | null;
  severity: string;
  affectedNotebooks: string[];
};

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);

export function parseFinding(raw: unknown): Finding {
  const o = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const kind = (typeof o.kind === 'object' && o.kind !== null ? o.kind : {}) as Record<string, unknown>;
  return {
    kind: str(kind.type) ?? str(o.kind) ?? 'unknown',
    change: str(kind.change) ?? undefined,
    subject: str(o.subject) ?? '',
    before: str(o.before),
    after: str(o.after),
    severity: str(o.severity) ?? 'INFO',
    affectedNotebooks: Array.isArray(o.affected_notebooks)
      ? o.affected_notebooks.filter((n): n is string => typeof n === 'string')
      : [],
  };
}

/** "package upgraded", "config file modified", … */
export function describeKind(f: Pick<Finding, 'kind' | 'change'>): string {
  const words = f.kind.replace(/_/g, ' ').replace(/^python changed$/, 'Python changed');
  if (f.change) return `${words.replace(/ changed$/, '')} ${f.change}`;
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** A finding's value for people: versions as they are, content hashes shortened. */
export function shortValue(v: string | null): string {
  if (v === null) return '—';
  return /^[0-9a-f]{16,}$/i.test(v) ? `${v.slice(0, 10)}…` : v;
}

/** The group a finding belongs to in a comparison. */
export type FindingGroup = 'packages' | 'kernels' | 'other';

export function findingGroup(f: Pick<Finding, 'kind'>): FindingGroup {
  if (f.kind.startsWith('package_') || f.kind === 'python_changed') return 'packages';
  if (f.kind.startsWith('kernel_') || f.kind === 'extension_changed') return 'kernels';
  return 'other';
}
