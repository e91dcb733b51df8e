import { useId } from 'react';
import { bytes, dateTime } from '@/lib/format';
import type { Snapshot } from '../api/get-lab-snapshots';

export type StoragePoint = { t: number; total: number; added: number };

/**
 * The lab's vault storage over time: complete snapshots by creation time,
 * each adding the bytes it stored (`stored_bytes_added`), summed up.
 */
export function storageSeries(snapshots: Pick<Snapshot, 'timestamp' | 'status' | 'stored_bytes_added'>[]): StoragePoint[] {
  const points = snapshots
    .filter((s) => s.status === 'complete')
    .map((s) => ({ t: Date.parse(s.timestamp), added: s.stored_bytes_added }))
    .filter((p) => !Number.isNaN(p.t))
    .sort((a, b) => a.t - b.t);
  let total = 0;
  return points.map((p) => {
    total += p.added;
    return { t: p.t, added: p.added, total };
  });
}

const W = 960;
const H = 220;
const M = { top: 14, right: 16, bottom: 28, left: 64 };
const HOUR = 3_600_000;

/** The series as a step area chart in plain SVG, with the numbers as a table too. */
export function StorageChart({ points, now, labName }: { points: StoragePoint[]; now: number; labName: string }) {
  const titleId = useId();
  const descId = useId();
  const first = points[0]?.t ?? now - HOUR;
  let t0 = first;
  let t1 = Math.max(now, points[points.length - 1]?.t ?? now);
  if (t1 - t0 < HOUR) {
    t0 -= HOUR / 2;
    t1 += HOUR / 2;
  }
  const maxY = Math.max(1, ...points.map((p) => p.total));
  const plotW = W - M.left - M.right;
  const plotH = H - M.top - M.bottom;
  const x = (t: number) => M.left + ((t - t0) / (t1 - t0)) * plotW;
  const y = (v: number) => M.top + plotH - (v / maxY) * plotH;
  const base = y(0);
  // A step line: flat until the next snapshot adds its bytes, then flat to now.
  let line = '';
  points.forEach((p, i) => {
    line += i === 0 ? `M${x(p.t)},${base} L${x(p.t)},${y(p.total)}` : ` L${x(p.t)},${y(points[i - 1]!.total)} L${x(p.t)},${y(p.total)}`;
  });
  const last = points[points.length - 1];
  if (last) line += ` L${x(t1)},${y(last.total)}`;
  const area = `${line} L${x(t1)},${base} Z`;
  const ticks = [0, maxY / 2, maxY];
  const summary = last
    ? `${labName}: ${bytes(last.total)} stored by ${points.length} snapshot${points.length === 1 ? '' : 's'} taken from ${dateTime(
        new Date(first).toISOString(),
      )} to ${dateTime(new Date(last.t).toISOString())}.`
    : `${labName}: no snapshots yet.`;

  if (!last) {
    return (
      <p className="rounded-md border border-dashed border-slate-300 p-6 text-center text-sm text-slate-800" data-testid="storage-chart-empty">
        {summary}
      </p>
    );
  }
  return (
    <figure className="space-y-2">
      <svg
        viewBox={`0 0 ${W} ${H}`}
        className="h-auto w-full"
        role="img"
        aria-labelledby={`${titleId} ${descId}`}
        data-testid="storage-chart"
      >
        <title id={titleId}>Snapshot storage over time</title>
        <desc id={descId}>{summary}</desc>
        {ticks.map((v) => (
          <g key={v}>
            <line x1={M.left} x2={W - M.right} y1={y(v)} y2={y(v)} stroke="#e2e8f0" />
            <text x={M.left - 6} y={y(v)} textAnchor="end" dominantBaseline="middle" fontSize="11" fill="#334155">
              {bytes(Math.round(v))}
            </text>
          </g>
        ))}
        <path d={area} fill="#bae6fd" fillOpacity="0.7" />
        <path d={line} fill="none" stroke="#0369a1" strokeWidth="2" />
        {points.map((p, i) => (
          <circle key={i} cx={x(p.t)} cy={y(p.total)} r="3.5" fill="#0369a1">
            <title>{`${dateTime(new Date(p.t).toISOString())}: +${bytes(p.added)}, ${bytes(p.total)} in all`}</title>
          </circle>
        ))}
        <line x1={M.left} x2={W - M.right} y1={base} y2={base} stroke="#64748b" />
        <text x={M.left} y={H - 8} fontSize="11" fill="#334155">
          {dateTime(new Date(t0).toISOString())}
        </text>
        <text x={W - M.right} y={H - 8} textAnchor="end" fontSize="11" fill="#334155">
          {dateTime(new Date(t1).toISOString())}
        </text>
      </svg>
      <figcaption className="text-sm text-slate-800">{summary}</figcaption>
      <details>
        <summary className="cursor-pointer text-sm text-slate-800">Show the numbers as a table</summary>
        <div role="region" aria-label="Storage by snapshot" tabIndex={0} className="mt-2 max-h-64 overflow-auto">
          <table className="text-left text-sm">
            <caption className="sr-only">Storage added by each snapshot</caption>
            <thead className="border-b border-slate-300 text-xs uppercase tracking-wide text-slate-800">
              <tr>
                <th scope="col" className="py-1 pr-4">Snapshot taken</th>
                <th scope="col" className="py-1 pr-4">Added</th>
                <th scope="col" className="py-1">Total</th>
              </tr>
            </thead>
            <tbody>
              {points.map((p, i) => (
                <tr key={i} className="border-b border-slate-200">
                  <td className="py-1 pr-4">{dateTime(new Date(p.t).toISOString())}</td>
                  <td className="py-1 pr-4">{bytes(p.added)}</td>
                  <td className="py-1">{bytes(p.total)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}
