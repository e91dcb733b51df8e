import { describe, expect, it } from 'vitest';
import { describeKind, driftAlert, parseFinding, shortValue, type DriftEvent } from './types';

describe('parseFinding', () => {
  it('reads the serialised inventory finding', () => {
    const f = parseFinding({
      kind: { type: 'package_upgraded' },
      subject: 'urllib3',
      before: '1.26.20',
      after: '2.2.3',
      distance: 'major',
      severity: 'CRITICAL',
      affected_notebooks: ['analysis.ipynb'],
    });
    expect(f).toEqual({
      kind: 'package_upgraded',
      change: undefined,
      subject: 'urllib3',
      before: '1.26.20',
      after: '2.2.3',
      severity: 'CRITICAL',
      affectedNotebooks: ['analysis.ipynb'],
    });
    expect(describeKind(f)).toBe('Package upgraded');
  });

  it('names a config change with its kind of change, and survives junk', () => {
    expect(describeKind(parseFinding({ kind: { type: 'config_changed', change: 'modified' } }))).toBe('config modified');
    expect(parseFinding(null)).toMatchObject({ kind: 'unknown', subject: '', severity: 'INFO', affectedNotebooks: [] });
  });
});

describe('driftAlert', () => {
  const event: DriftEvent = {
    id: 'e1', seq: 3, lab_id: 'l', environment_id: 'env', detected_at: '2026-11-22T10:00:00Z', source: 'watcher',
    previous_status: 'STABLE', status: 'CRITICAL_DRIFT', severity: 'CRITICAL',
    findings: [
      { kind: { type: 'package_upgraded' }, subject: 'urllib3', before: '1.26.20', after: '2.2.3', severity: 'CRITICAL', affected_notebooks: ['a.ipynb'] },
      { kind: { type: 'package_added' }, subject: 'tabulate', before: null, after: '0.9.0', severity: 'MINOR', affected_notebooks: [] },
    ],
    affected_notebooks: ['a.ipynb'],
  };

  it('says what changed first, how much more, and which notebooks it affects', () => {
    expect(driftAlert(event)).toEqual({
      title: 'Critical drift detected',
      body: 'Package upgraded: urllib3 (1.26.20 → 2.2.3) and 1 more. Affects a.ipynb.',
    });
  });

  it('calls a notebook-only change by its name, and a return to the baseline too', () => {
    expect(driftAlert({ ...event, severity: 'INFO', status: 'STABLE' }).title).toBe('Notebooks or data changed');
    expect(driftAlert({ ...event, severity: null, findings: [], affected_notebooks: [] })).toEqual({
      title: 'Back to its baseline',
      body: 'Nothing differs from the baseline any more.',
    });
  });
});

describe('shortValue', () => {
  it('keeps versions and shortens content hashes', () => {
    expect(shortValue('2.2.3')).toBe('2.2.3');
    expect(shortValue('5c49ad2ec22067f22a5d1fe2a263b9a5')).toBe('5c49ad2ec2…');
    expect(shortValue(null)).toBe('—');
  });

  it('leaves hashes out of alerts', () => {
    const ev = {
      id: 'e', seq: 1, lab_id: 'l', environment_id: 'env', detected_at: '', source: 'watcher', previous_status: 'STABLE',
      status: 'STABLE', severity: 'INFO', affected_notebooks: [],
      findings: [{ kind: { type: 'notebook_added' }, subject: 'home/a.ipynb', before: null, after: 'ab'.repeat(32), severity: 'INFO' }],
    } as unknown as DriftEvent;
    expect(driftAlert(ev).body).toBe('Notebook added: home/a.ipynb.');
  });
});
