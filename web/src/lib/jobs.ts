/**
 * Long-running work (environment builds, snapshots, restores): the job as a
 * query, kept current by its live progress stream `GET /api/jobs/{id}/events`
 * (one `job` event per change, ending when the job succeeds or fails). If the
 * stream breaks, the query polls instead.
 */
import { queryOptions, useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect, useState } from 'react';
import type { components } from '@/api/schema';
import { apiFetch } from './api-client';
import { readEventStream } from './sse';

export type Job = components['schemas']['JobResponse'];

export const isTerminal = (j: Pick<Job, 'status'> | undefined): boolean =>
  j?.status === 'succeeded' || j?.status === 'failed';

export const jobKey = (id: string) => ['jobs', id] as const;

export const getJob = (id: string, signal?: AbortSignal) =>
  apiFetch<Job>(`/api/jobs/${encodeURIComponent(id)}`, { signal });

export const jobQueryOptions = (id: string) =>
  queryOptions({
    queryKey: jobKey(id),
    queryFn: ({ signal }) => getJob(id, signal),
    staleTime: Infinity,
  });

/** Plain words for the stable codes of failed jobs. */
export function explainJobError(job: Job): string {
  const e = job.error;
  const detail = e?.message ? ` (${e.message})` : '';
  switch (e?.code) {
    case 'package_not_found':
      return `A package could not be found on the package index; check its name and version${detail}.`;
    case 'dependency_conflict':
      return `The packages you asked for need versions of each other that cannot be installed together${detail}.`;
    case 'python_unavailable':
      return `That Python version is not available on this platform; pick another or leave it empty${detail}.`;
    case 'install_failed':
      return `Installing the packages failed${detail}.`;
    case 'interrupted':
      return 'The platform stopped while this was running; start it again.';
    default:
      return e?.message ? `It failed: ${e.message}` : 'It failed.';
  }
}

/**
 * A job, live. Returns the latest known state; follows the job's event
 * stream until it ends, polling every 2 s when the stream is unavailable.
 */
export function useJob(id: string | undefined) {
  const qc = useQueryClient();
  const [streamFailed, setStreamFailed] = useState(false);
  const query = useQuery({
    ...jobQueryOptions(id ?? ''),
    enabled: id !== undefined,
    refetchInterval: (q) => (streamFailed && !isTerminal(q.state.data) ? 2000 : false),
  });
  useEffect(() => {
    if (!id) return;
    const ctl = new AbortController();
    readEventStream(`/api/jobs/${encodeURIComponent(id)}/events`, {
      signal: ctl.signal,
      onMessage: (m) => {
        if (m.event !== 'job') return;
        try {
          qc.setQueryData(jobKey(id), JSON.parse(m.data) as Job);
        } catch {
          /* a malformed event is skipped; the next one or polling catches up */
        }
      },
    }).then(
      () => {
        // The stream ends with the job; make sure the final state is read.
        if (!ctl.signal.aborted && !isTerminal(qc.getQueryData<Job>(jobKey(id)))) setStreamFailed(true);
      },
      () => {
        if (!ctl.signal.aborted) setStreamFailed(true);
      },
    );
    return () => ctl.abort();
  }, [id, qc]);
  return query;
}
