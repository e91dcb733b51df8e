import type { components } from '@/api/schema';

/**
 * The chunks an agent streams (`event: <type>`, `data: <chunk as JSON>`).
 *
 * Their wire shape is the generated `AgentChunk` schema (`WireChunk`); a
 * stream is still untrusted input, so `parseChunk` checks every chunk at run
 * time and turns it into the UI's shape below: an unknown or malformed chunk
 * is skipped, never trusted.
 */
export type WireChunk = components['schemas']['AgentChunk'];

export type SourceKind = components['schemas']['SourceKind'];

export type SourceRef = {
  kind: SourceKind | (string & {});
  /** Its id or path (a document's path for `document`). */
  id: string;
  /** Byte range (UTF-8, end exclusive) of the source the claim rests on. */
  span: [number, number] | null;
  title: string;
};

export type Recommendation = {
  kind: string;
  reason: string;
  id?: string | undefined;
  environmentId?: string | undefined;
};

export type AgentChunk =
  | { type: 'text'; text: string }
  /** `textSpan`: byte range (UTF-8, end exclusive) of the claim in the answer so far. */
  | { type: 'citation'; index: number; source: SourceRef; textSpan: [number, number] }
  | { type: 'tool_call'; name: string; input: unknown }
  | { type: 'tool_result'; name: string; summary: string }
  | { type: 'recommendation'; recommendation: Recommendation }
  | { type: 'done'; sessionId: string }
  | { type: 'error'; code: string; message: string };

const obj = (v: unknown): Record<string, unknown> | null =>
  typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null;
const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const nat = (v: unknown): number | null => (typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : null);

function pair(v: unknown): [number, number] | null {
  if (!Array.isArray(v) || v.length !== 2) return null;
  const a = nat(v[0]);
  const b = nat(v[1]);
  return a !== null && b !== null && a <= b ? [a, b] : null;
}

function source(v: unknown): SourceRef | null {
  const o = obj(v);
  const kind = str(o?.kind);
  const id = str(o?.id);
  if (!o || !kind || id === null) return null;
  return { kind, id, span: pair(o.span), title: str(o.title) ?? id };
}

/** One SSE message as a chunk; `null` for anything not understood. */
export function parseChunk(event: string, data: string): AgentChunk | null {
  let o: Record<string, unknown> | null;
  try {
    o = obj(JSON.parse(data));
  } catch {
    return null;
  }
  if (!o) return null;
  const type = str(o.type) ?? event;
  switch (type) {
    case 'text': {
      const text = str(o.text);
      return text === null ? null : { type, text };
    }
    case 'citation': {
      const index = nat(o.index);
      const src = source(o.source);
      const span = pair(o.text_span);
      return index === null || !src || !span ? null : { type, index, source: src, textSpan: span };
    }
    case 'tool_call':
      return { type, name: str(o.name) ?? 'tool', input: o.input };
    case 'tool_result':
      return { type, name: str(o.name) ?? 'tool', summary: str(o.summary) ?? '' };
    case 'recommendation': {
      const r = obj(o.recommendation);
      const kind = str(r?.kind);
      if (!r || !kind) return null;
      return {
        type,
        recommendation: { kind, reason: str(r.reason) ?? '', id: str(r.id) ?? undefined, environmentId: str(r.environment_id) ?? undefined },
      };
    }
    case 'done': {
      const sessionId = str(o.session_id);
      return sessionId ? { type, sessionId } : null;
    }
    case 'error':
      return { type, code: str(o.code) ?? 'error', message: str(o.message) ?? 'The agent could not answer.' };
    default:
      return null;
  }
}

/** Words for a source kind. */
export const SOURCE_KIND: Record<string, string> = {
  drift_event: 'Drift event',
  snapshot: 'Snapshot',
  package_metadata: 'Package metadata',
  notebook: 'Notebook',
  config: 'Configuration',
  document: 'Document',
};

/** Words for a recommendation. */
export function recommendationWords(r: Recommendation): string {
  const what: Record<string, string> = {
    rollback: 'Roll back to the baseline snapshot',
    snapshot: 'Take a snapshot to accept the change',
    pin: 'Pin the previous versions',
    none: 'No action needed',
  };
  return `${what[r.kind] ?? r.kind}${r.reason ? `: ${r.reason}` : '.'}`;
}
