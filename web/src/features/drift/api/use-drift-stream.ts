/**
 * The lab's live drift events (`GET /api/drift/stream`, SSE `event: drift`,
 * `id:` = seq). Each event goes straight into the cached event lists and
 * marks the environment's drift and status as stale, so every open page
 * updates without reloading. A dropped connection is resumed after the last
 * seen seq (`Last-Event-ID`), with growing pauses between attempts.
 */
import { useQueryClient, type QueryClient } from '@tanstack/react-query';
import { useEffect, useRef, useState } from 'react';
import { toApiError } from '@/lib/api-client';
import { ME_KEY } from '@/lib/react-query';
import { queryKeys } from '@/lib/query-keys';
import { readEventStream } from '@/lib/sse';
import { useLabId } from '@/stores/ui';
import { EVENTS_LIMIT } from './get-drift-events';
import type { DriftEvent, DriftEventPage } from './types';

export type StreamState = 'connecting' | 'live' | 'reconnecting';

function prepend(qc: QueryClient, key: readonly unknown[], ev: DriftEvent) {
  qc.setQueryData<DriftEventPage>(key, (page) =>
    page && !page.items.some((e) => e.id === ev.id)
      ? { ...page, items: [ev, ...page.items].slice(0, EVENTS_LIMIT), total: page.total + 1 }
      : page,
  );
}

/** Applies one live event to the cache. */
export function applyDriftEvent(qc: QueryClient, lab: string | null, ev: DriftEvent) {
  prepend(qc, queryKeys.drift.events(lab, undefined), ev);
  prepend(qc, queryKeys.drift.events(lab, ev.environment_id), ev);
  void qc.invalidateQueries({ queryKey: queryKeys.drift.environment(lab, ev.environment_id) });
  void qc.invalidateQueries({ queryKey: queryKeys.drift.timeline(lab, ev.environment_id) });
  void qc.invalidateQueries({ queryKey: queryKeys.drift.timeline(lab, undefined) });
  void qc.invalidateQueries({ queryKey: queryKeys.environments.all(lab) });
}

export function useDriftStream(opts: { enabled: boolean; onEvent?: (ev: DriftEvent) => void }) {
  const lab = useLabId();
  const qc = useQueryClient();
  const [state, setState] = useState<StreamState>('connecting');
  const onEvent = useRef(opts.onEvent);
  useEffect(() => {
    onEvent.current = opts.onEvent;
  });

  useEffect(() => {
    if (!opts.enabled) return;
    const ctl = new AbortController();
    let lastId: string | undefined;
    let attempt = 0;
    const aborted = () => ctl.signal.aborted;
    const run = async () => {
      setState('connecting');
      while (!aborted()) {
        try {
          await readEventStream('/api/drift/stream', {
            lab,
            signal: ctl.signal,
            lastEventId: lastId,
            onOpen: () => {
              attempt = 0;
              setState('live');
            },
            onMessage: (m) => {
              if (m.event !== 'drift') return;
              if (m.id) lastId = m.id;
              let ev: DriftEvent;
              try {
                ev = JSON.parse(m.data) as DriftEvent;
              } catch {
                return;
              }
              applyDriftEvent(qc, lab, ev);
              onEvent.current?.(ev);
            },
          });
          // The response started: the stream is open until the server ends it.
        } catch (e) {
          if (toApiError(e).isUnauthenticated) {
            void qc.invalidateQueries({ queryKey: ME_KEY });
            return;
          }
        }
        if (aborted()) return;
        setState('reconnecting');
        attempt += 1;
        await new Promise((r) => setTimeout(r, Math.min(30_000, 1000 * 2 ** Math.min(attempt, 5))));
      }
    };
    void run();
    return () => ctl.abort();
  }, [lab, qc, opts.enabled]);

  return state;
}
