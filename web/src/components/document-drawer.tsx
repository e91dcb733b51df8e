import { useEffect, useRef } from 'react';
import { useDocument } from '@/lib/documents';
import { Modal } from './ui/dialog';
import { ErrorMessage } from './ui/error-message';
import { Spinner } from './ui/spinner';

/** What to open: a document path, the byte range (UTF-8, end exclusive) to highlight, a title. */
export type DocumentSource = { id: string; span: [number, number] | null; title: string };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The text split around a UTF-8 byte range: before, the span, after. */
export function splitSpan(text: string, span: [number, number] | null): [string, string, string] {
  if (!span) return [text, '', ''];
  const bytes = encoder.encode(text);
  const start = Math.min(span[0], bytes.length);
  const end = Math.min(Math.max(span[1], start), bytes.length);
  return [decoder.decode(bytes.slice(0, start)), decoder.decode(bytes.slice(start, end)), decoder.decode(bytes.slice(end))];
}

function Body({ source }: { source: DocumentSource }) {
  const doc = useDocument(source.id);
  const mark = useRef<HTMLElement>(null);
  useEffect(() => {
    mark.current?.scrollIntoView({ block: 'center' });
  }, [doc.data]);
  if (doc.isPending) return <Spinner label="Opening the document…" />;
  if (doc.isError) return <ErrorMessage error={doc.error} onRetry={() => void doc.refetch()} />;
  const [before, cited, after] = splitSpan(doc.data.text, source.span);
  return (
    <div className="space-y-3">
      <p className="font-mono text-xs break-all text-slate-700">{doc.data.path}</p>
      {cited && <p className="text-sm text-slate-800">The cited passage is highlighted.</p>}
      <div role="region" aria-label="Document text" tabIndex={0} className="rounded-md border border-slate-300 bg-slate-50 p-3">
        <pre className="font-mono text-xs leading-relaxed whitespace-pre-wrap break-words text-slate-900">
          {before}
          {cited && (
            <mark ref={mark} className="rounded bg-amber-200 px-0.5 text-slate-950">
              {cited}
            </mark>
          )}
          {after}
        </pre>
      </div>
    </div>
  );
}

/** A knowledge-base document in a side drawer, the cited span (if any) highlighted. */
export function DocumentDrawer({ source, onClose }: { source: DocumentSource; onClose: () => void }) {
  return (
    <Modal variant="drawer" title={source.title} onClose={onClose}>
      <Body source={source} />
    </Modal>
  );
}
