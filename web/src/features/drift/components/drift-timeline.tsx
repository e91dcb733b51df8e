import { useId } from 'react';
import { dateTime } from '@/lib/format';
import type { DriftEvent } from '../api/types';

export type SeverityKey = 'CRITICAL' | 'MINOR' | 'INFO' | 'OK';

/** Bottom to top in a stacked bar. */
export const SEVERITIES: { key: SeverityKey; label: string; color: string }[] = [
  { key: 'CRITICAL', label: 'Critical', color: '#dc2626' },
  { key: 'MINOR', label: 'Minor', color: '#b45309' },
  { key: 'INFO', label: 'Info', color: '#0284c7' },
  { key: 'OK', label: 'Back to baseline', color: '#059669' },
];

export type Bucket = { start: number; counts: Record<SeverityKey, number>; total: number };
export type Timeline = { step: number; buckets: Bucket[]; totals: Record<SeverityKey, number> };

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
/** Bucket widths to choose from, smallest first. */
const STEPS = [MINUTE, 5 * MINUTE, 15 * MINUTE, HOUR, 6 * HOUR, DAY, 7 * DAY, 30 * DAY];
const MIN_BUCKETS = 12;

const severityOf = (e: Pick<DriftEvent, 'severity'>): SeverityKey =>
  e.severity === 'CRITICAL' || e.severity === 'MINOR' || e.severity === 'INFO' ? e.severity : 'OK';

const zero = (): Record<SeverityKey, number> => ({ CRITICAL: 0, MINOR: 0, INFO: 0, OK: 0 });

/**
 * Counts events per time bucket and severity, from the oldest event to
 * `now`: the narrowest bucket width that fits in `maxBuckets` buckets, and
 * at least 12 buckets so a burst of events still has context.
 */
export function bucketEvents(
  events: Pick<DriftEvent, 'detected_at' | 'severity'>[],
  now: number,
  maxBuckets = 36,
): Timeline {
  const times = events.map((e) => Date.parse(e.detected_at)).filter((t) => !Number.isNaN(t));
  const first = times.length ? Math.min(...times) : now;
  const span = Math.max(0, now - first);
  const step = STEPS.find((s) => span / s < maxBuckets) ?? STEPS[STEPS.length - 1]!;
  const n = Math.min(maxBuckets, Math.max(MIN_BUCKETS, Math.floor(span / step) + 1));
  const lastStart = Math.floor(now / step) * step;
  const start = lastStart - (n - 1) * step;
  const buckets: Bucket[] = Array.from({ length: n }, (_, i) => ({ start: start + i * step, counts: zero(), total: 0 }));
  const totals = zero();
  events.forEach((e) => {
    const t = Date.parse(e.detected_at);
    if (Number.isNaN(t)) return;
    const i = Math.min(n - 1, Math.max(0, Math.floor((t - start) / step)));
    const sev = severityOf(e);
    buckets[i]!.counts[sev] += 1;
    buckets[i]!.total += 1;
    totals[sev] += 1;
  });
  return { step, buckets, totals };
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });

function tickLabel(t: number, step: number): string {
  return step < DAY ? timeFmt.format(t) : dayFmt.format(t);
}

function stepWords(step: number): string {
  if (step < HOUR) return `${step / MINUTE} minute${step === MINUTE ? '' : 's'}`;
  if (step < DAY) return `${step / HOUR} hour${step === HOUR ? '' : 's'}`;
  return `${step / DAY} day${step === DAY ? '' : 's'}`;
}

const W = 960;
const H = 180;
const M = { top: 12, right: 12, bottom: 28, left: 36 };

/**
 * Drift events over time, stacked by severity, as plain SVG with the numbers
 * as a table too. `now` (the right edge) is when the events were fetched.
 */
export function DriftTimelineChart({ events, now }: { events: DriftEvent[]; now: number }) {
  const titleId = useId();
  const descId = useId();
  const { step, buckets, totals } = bucketEvents(events, now);
  const max = Math.max(1, ...buckets.map((b) => b.total));
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const slot = plotW / buckets.length;
  const barW = Math.max(2, slot * 0.7);
  const y = (v: number) => M.top + plotH - (v / max) * plotH;
  const ticks = max <= 4 ? Array.from({ length: max + 1 }, (_, i) => i) : [0, Math.round(max / 2), max];
  const labelAt = [0, Math.floor((buckets.length - 1) / 2), buckets.length - 1];
  const summary = `${events.length} drift event${events.length === 1 ? '' : 's'}, in buckets of ${stepWords(step)} from ${dateTime(
    new Date(buckets[0]!.start).toISOString(),
  )} to now: ${SEVERITIES.map((s) => `${totals[s.key]} ${s.label.toLowerCase()}`).join(', ')}.`;

  return (
    <figure className="space-y-2">
      <figcaption className="flex flex-wrap items-center gap-x-4 gap-y-1 text-sm">
        <span className="font-medium">Drift events over time</span>
        <span className="text-slate-700">(each bar: {stepWords(step)})</span>
        <ul className="flex flex-wrap gap-3" aria-label="Legend">
          {SEVERITIES.map((s) => (
            <li key={s.key} className="flex items-center gap-1.5 text-slate-800">
              <span aria-hidden="true" className="inline-block h-3 w-3 rounded-sm" style={{ backgroundColor: s.color }} />
              {s.label}: {totals[s.key]}
            </li>
          ))}
        </ul>
      </figcaption>
      <svg
        viewBox={`0 0 ${W} ${H}`}
        className="h-auto w-full"
        role="img"
        aria-labelledby={`${titleId} ${descId}`}
        data-testid="drift-timeline"
      >
        <title id={titleId}>Drift events by severity over time</title>
        <desc id={descId}>{summary}</desc>
        {ticks.map((t) => (
          <g key={t}>
            <line x1={M.left} x2={W - M.right} y1={y(t)} y2={y(t)} stroke="#e2e8f0" />
            <text x={M.left - 6} y={y(t)} textAnchor="end" dominantBaseline="middle" fontSize="11" fill="#334155">
              {t}
            </text>
          </g>
        ))}
        {buckets.map((b, i) => {
          let acc = 0;
          const x = M.left + i * slot + (slot - barW) / 2;
          return (
            <g key={b.start} data-bucket={i}>
              {b.total > 0 && (
                <title>
                  {`${tickLabel(b.start, step)}: ${SEVERITIES.filter((s) => b.counts[s.key] > 0)
                    .map((s) => `${b.counts[s.key]} ${s.label.toLowerCase()}`)
                    .join(', ')}`}
                </title>
              )}
              {SEVERITIES.map((s) => {
                const c = b.counts[s.key];
                if (c === 0) return null;
                const top = y(acc + c);
                const height = y(acc) - top;
                acc += c;
                return <rect key={s.key} x={x} y={top} width={barW} height={height} fill={s.color} data-severity={s.key} />;
              })}
            </g>
          );
        })}
        <line x1={M.left} x2={W - M.right} y1={M.top + plotH} y2={M.top + plotH} stroke="#64748b" />
        {labelAt.map((i, k) => (
          <text
            key={`${i}-${k}`}
            x={M.left + i * slot + slot / 2}
            y={H - 8}
            textAnchor={k === 0 ? 'start' : k === 2 ? 'end' : 'middle'}
            fontSize="11"
            fill="#334155"
          >
            {tickLabel(buckets[i]!.start, step)}
          </text>
        ))}
      </svg>
      <details>
        <summary className="cursor-pointer text-sm text-slate-800">Show the numbers as a table</summary>
        <table className="mt-2 text-left text-sm">
          <caption className="sr-only">Drift events per period and severity</caption>
          <thead className="border-b border-slate-300 text-xs uppercase tracking-wide text-slate-800">
            <tr>
              <th scope="col" className="py-1 pr-3">From</th>
              {SEVERITIES.map((s) => (
                <th key={s.key} scope="col" className="py-1 pr-3">
                  {s.label}
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {buckets
              .filter((b) => b.total > 0)
              .map((b) => (
                <tr key={b.start} className="border-b border-slate-200">
                  <th scope="row" className="py-1 pr-3 font-normal">
                    {dateTime(new Date(b.start).toISOString())}
                  </th>
                  {SEVERITIES.map((s) => (
                    <td key={s.key} className="py-1 pr-3">
                      {b.counts[s.key]}
                    </td>
                  ))}
                </tr>
              ))}
          </tbody>
        </table>
      </details>
    </figure>
  );
}
