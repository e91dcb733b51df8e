/**
 * `GET /api/snapshots/{id}/diff/{other}`. The OpenAPI document gives no
 * schema for this answer (only "findings and file changes (JSON)"), so it is
 * read defensively here, in the shape the platform sends:
 * `{from, to, drift_status, findings: Finding[], files: FileChange[]}`.
 */
import { queryOptions, useQuery } from '@tanstack/react-query';
import { apiFetch } from '@/lib/api-client';
import { parseFinding, type Finding } from '@/lib/findings';
import { queryKeys } from '@/lib/query-keys';
import { useLabId } from '@/stores/ui';

export type FileChange = {
  layer: string;
  path: string;
  change: 'added' | 'removed' | 'changed';
  /** `file`, `dir` or `symlink`. */
  kind: string;
  size: number | null;
  oldSize: number | null;
  contentChanged: boolean;
  metadataChanged: boolean;
};

export type SnapshotDiff = {
  from: string;
  to: string;
  driftStatus: string;
  findings: Finding[];
  files: FileChange[];
};

const str = (v: unknown, d = ''): string => (typeof v === 'string' ? v : d);
const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);

export function parseFileChange(raw: unknown): FileChange {
  const o = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const change = o.change === 'added' || o.change === 'removed' ? o.change : 'changed';
  return {
    layer: str(o.layer),
    path: str(o.path),
    change,
    kind: str(o.kind, 'file'),
    size: num(o.size),
    oldSize: num(o.old_size),
    contentChanged: o.content_changed === true || change !== 'changed',
    metadataChanged: o.metadata_changed === true,
  };
}

export function parseSnapshotDiff(raw: unknown): SnapshotDiff {
  const o = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  return {
    from: str(o.from),
    to: str(o.to),
    driftStatus: str(o.drift_status, 'STABLE'),
    findings: Array.isArray(o.findings) ? o.findings.map(parseFinding) : [],
    files: Array.isArray(o.files) ? o.files.map(parseFileChange) : [],
  };
}

export const getSnapshotDiff = async (lab: string | null, from: string, to: string, signal?: AbortSignal) =>
  parseSnapshotDiff(
    await apiFetch<unknown>(`/api/snapshots/${encodeURIComponent(from)}/diff/${encodeURIComponent(to)}`, { lab, signal }),
  );

export const snapshotDiffQueryOptions = (lab: string | null, from: string, to: string) =>
  queryOptions({
    queryKey: queryKeys.snapshots.diff(lab, from, to),
    queryFn: ({ signal }) => getSnapshotDiff(lab, from, to, signal),
    // Two complete snapshots never change.
    staleTime: Infinity,
  });

/** The comparison of two snapshots; idle until both are chosen. */
export function useSnapshotDiff(pair: { from: string; to: string } | null) {
  const lab = useLabId();
  return useQuery({ ...snapshotDiffQueryOptions(lab, pair?.from ?? '', pair?.to ?? ''), enabled: pair !== null });
}
