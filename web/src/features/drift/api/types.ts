import type { components } from '@/api/schema';

export type EnvironmentDrift = components['schemas']['EnvironmentDriftResponse'];
export type DriftEvent = components['schemas']['DriftEventResponse'];
export type DriftEventPage = components['schemas']['DriftEventPage'];

/**
 * One finding. The OpenAPI document types findings as bare objects, so this
 * is the shape of `westtek_inventory::Finding` as serialised, read
 * defensively by `parseFinding`.
 */
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

/** Whether a finding's before/after are worth saying (versions, not content hashes). */
const isVersionLike = (f: Finding) => ![f.before, f.after].some((v) => v !== null && /^[0-9a-f]{16,}$/i.test(v));

/** A drift event as a short alert: a heading and one sentence. */
export function driftAlert(ev: DriftEvent): { title: string; body: string } {
  const title =
    ev.severity === 'CRITICAL'
      ? 'Critical drift detected'
      : ev.severity === 'MINOR'
        ? 'Minor drift detected'
        : ev.severity === 'INFO'
          ? 'Notebooks or data changed'
          : 'Back to its baseline';
  const findings = ev.findings.map(parseFinding);
  const first = findings[0];
  const what = first
    ? `${describeKind(first)}: ${first.subject}${
        (first.before || first.after) && isVersionLike(first) ? ` (${shortValue(first.before)} → ${shortValue(first.after)})` : ''
      }`
    : 'Nothing differs from the baseline any more';
  const more = findings.length > 1 ? ` and ${findings.length - 1} more` : '';
  const notebooks = ev.affected_notebooks.length ? ` Affects ${ev.affected_notebooks.join(', ')}.` : '';
  return { title, body: `${what}${more}.${notebooks}` };
}
