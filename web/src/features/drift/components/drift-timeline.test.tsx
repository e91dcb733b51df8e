import { render, screen, within } from '@testing-library/react';
import { describe, expect, it } from 'vitest';
import type { DriftEvent } from '../api/types';
import { bucketEvents, DriftTimelineChart } from './drift-timeline';

// 40 s into a minute: an event 30 s before is in the same 1-minute bucket.
const NOW = Date.parse('2026-11-22T12:00:40Z');
const MIN = 60_000;

function ev(minutesAgo: number, severity: string | null): DriftEvent {
  return {
    id: `e-${minutesAgo}-${severity ?? 'ok'}`, seq: 1, lab_id: 'l', environment_id: 'env', source: 'watcher',
    detected_at: new Date(NOW - minutesAgo * MIN).toISOString(), previous_status: 'STABLE', status: 'STABLE',
    severity, findings: [], affected_notebooks: [],
  };
}

describe('bucketEvents', () => {
  it('picks the narrowest bucket that fits and counts each severity in its bucket', () => {
    const t = bucketEvents([ev(0, 'CRITICAL'), ev(0.5, 'MINOR'), ev(20, 'INFO'), ev(20, 'INFO'), ev(29, null)], NOW);
    // 29 minutes of events: 1-minute buckets, at least 12, at most 36.
    expect(t.step).toBe(MIN);
    expect(t.buckets).toHaveLength(30);
    expect(t.totals).toEqual({ CRITICAL: 1, MINOR: 1, INFO: 2, OK: 1 });
    const last = t.buckets.at(-1)!;
    expect(last.counts).toEqual({ CRITICAL: 1, MINOR: 1, INFO: 0, OK: 0 });
    expect(t.buckets[0]!.counts.OK).toBe(1);
    expect(t.buckets.reduce((a, b) => a + b.total, 0)).toBe(5);
  });

  it('widens the buckets for a long history and keeps at least 12 for a burst', () => {
    const week = bucketEvents([ev(7 * 24 * 60, 'MINOR'), ev(1, 'MINOR')], NOW);
    expect(week.step).toBe(6 * 60 * MIN);
    expect(week.buckets.length).toBeLessThanOrEqual(36);
    expect(week.totals.MINOR).toBe(2);
    const burst = bucketEvents([ev(0, 'INFO')], NOW);
    expect(burst.buckets).toHaveLength(12);
    expect(burst.buckets.at(-1)!.total).toBe(1);
  });
});

describe('DriftTimelineChart', () => {
  it('draws one stacked bar segment per severity and bucket, and describes the chart in words', () => {
    render(<DriftTimelineChart events={[ev(0, 'CRITICAL'), ev(0, 'INFO'), ev(0, 'INFO'), ev(5, 'MINOR')]} now={NOW} />);
    const chart = screen.getByRole('img', { name: /Drift events by severity over time/ });
    expect(chart).toHaveAccessibleName(/4 drift events.*1 critical, 1 minor, 2 info, 0 back to baseline/);
    const rects = chart.querySelectorAll('rect');
    expect([...rects].map((r) => r.dataset.severity).sort()).toEqual(['CRITICAL', 'INFO', 'MINOR']);
    // The critical and info segments of the same bar: info is stacked on top and twice as tall.
    const crit = chart.querySelector('rect[data-severity="CRITICAL"]')!;
    const info = chart.querySelector('rect[data-severity="INFO"]')!;
    expect(crit.getAttribute('x')).toBe(info.getAttribute('x'));
    expect(Number(info.getAttribute('height'))).toBeCloseTo(2 * Number(crit.getAttribute('height')));
    expect(Number(info.getAttribute('y')) + Number(info.getAttribute('height'))).toBeCloseTo(Number(crit.getAttribute('y')));
    const legend = screen.getByRole('list', { name: 'Legend' });
    expect(within(legend).getByText('Info: 2')).toBeInTheDocument();
    // The numbers as a table, one row per non-empty bucket.
    const table = screen.getByRole('table', { name: 'Drift events per period and severity' });
    expect(within(table).getAllByRole('row')).toHaveLength(3);
  });
});
