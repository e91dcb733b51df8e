import { useRef, useState } from 'react';
import type { Citation } from '../store';
import { SOURCE_KIND, type SourceRef } from '../api/types';

export type Segment = { kind: 'text'; text: string } | { kind: 'cite'; citation: Citation };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/**
 * The answer cut into text and footnote markers: each citation's marker goes
 * right after the claim it supports (`textSpan` is a UTF-8 byte range of the
 * answer). A source cited twice for the same claim gets one marker.
 */
export function segmentAnswer(answer: string, citations: Citation[]): Segment[] {
  const bytes = encoder.encode(answer);
  const seen = new Set<string>();
  const marks = citations
    .map((c) => ({ c, at: Math.min(bytes.length, c.textSpan[1]) }))
    .filter(({ c, at }) => {
      const k = `${c.index}@${at}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .sort((a, b) => a.at - b.at || a.c.index - b.c.index);
  const out: Segment[] = [];
  let pos = 0;
  for (const { c, at } of marks) {
    if (at > pos) out.push({ kind: 'text', text: decoder.decode(bytes.slice(pos, at)) });
    pos = Math.max(pos, at);
    out.push({ kind: 'cite', citation: c });
  }
  if (pos < bytes.length) out.push({ kind: 'text', text: decoder.decode(bytes.slice(pos)) });
  return out;
}

/** The sources of an answer, one per footnote number, in order. */
export function footnotes(citations: Citation[]): { index: number; source: SourceRef }[] {
  const byIndex = new Map<number, SourceRef>();
  for (const c of citations) if (!byIndex.has(c.index)) byIndex.set(c.index, c.source);
  return [...byIndex.entries()].sort((a, b) => a[0] - b[0]).map(([index, source]) => ({ index, source }));
}

type Props = {
  turnId: string;
  answer: string;
  citations: Citation[];
  /** Opens a document source (in the drawer). */
  onOpenDocument: (source: SourceRef) => void;
};

/** An answer with clickable numbered footnotes and its list of sources. */
export function Answer({ turnId, answer, citations, onOpenDocument }: Props) {
  const [active, setActive] = useState<number | null>(null);
  const list = useRef<HTMLOListElement>(null);
  const notes = footnotes(citations);
  const open = (index: number, source: SourceRef) => {
    setActive(index);
    if (source.kind === 'document') {
      onOpenDocument(source);
      return;
    }
    list.current?.querySelector<HTMLElement>(`[data-footnote="${index}"]`)?.focus();
  };
  return (
    <div className="space-y-2">
      <p className="text-sm leading-relaxed whitespace-pre-wrap text-slate-900">
        {segmentAnswer(answer, citations).map((s, i) =>
          s.kind === 'text' ? (
            <span key={i}>{s.text}</span>
          ) : (
            <sup key={i}>
              <button
                type="button"
                className="mx-0.5 rounded px-0.5 leading-normal font-semibold text-sky-800 underline hover:bg-sky-100"
                aria-label={`Source ${s.citation.index}: ${s.citation.source.title}`}
                onClick={() => open(s.citation.index, s.citation.source)}
              >
                [{s.citation.index}]
              </button>
            </sup>
          ),
        )}
      </p>
      {notes.length > 0 && (
        <div>
          <p id={`${turnId}-sources`} className="text-xs font-semibold tracking-wide text-slate-800 uppercase">
            Sources
          </p>
          <ol ref={list} aria-labelledby={`${turnId}-sources`} className="mt-1 space-y-1 text-xs">
            {notes.map(({ index, source }) => (
              <li
                key={index}
                data-footnote={index}
                tabIndex={-1}
                className={`rounded p-1 ${active === index ? 'bg-amber-100 ring-1 ring-amber-400' : ''}`}
              >
                <span className="font-semibold">[{index}]</span> {SOURCE_KIND[source.kind] ?? source.kind}:{' '}
                {source.kind === 'document' ? (
                  <button
                    type="button"
                    className="font-medium text-sky-800 underline"
                    onClick={() => open(index, source)}
                  >
                    {source.title}
                  </button>
                ) : (
                  <span className="font-medium">{source.title}</span>
                )}
                <span className="block font-mono break-all text-slate-700">{source.id}</span>
              </li>
            ))}
          </ol>
        </div>
      )}
    </div>
  );
}
