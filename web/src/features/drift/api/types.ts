import type { components } from '@/api/schema';
import { describeKind, parseFinding, shortValue, type Finding } from '@/lib/findings';

export type EnvironmentDrift = components['schemas']['EnvironmentDriftResponse'];
export type DriftEvent = components['schemas']['DriftEventResponse'];
export type DriftEventPage = components['schemas']['DriftEventPage'];

export { describeKind, parseFinding, shortValue, type Finding } from '@/lib/findings';
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
