import type { ReactNode } from 'react';

/**
 * A small, safe Markdown renderer for the generated summaries: headings,
 * bullet and numbered lists (with `[ ]`/`[x]` marks), fenced code and
 * paragraphs, with inline `code` and **bold**. Everything becomes React
 * elements, so any HTML in the text is shown as text, never interpreted.
 */

type Block =
  | { kind: 'heading'; level: number; text: string }
  | { kind: 'list'; ordered: boolean; items: string[] }
  | { kind: 'code'; text: string }
  | { kind: 'paragraph'; text: string };

export function parseMarkdown(src: string): Block[] {
  const blocks: Block[] = [];
  const lines = src.replace(/\r\n?/g, '\n').split('\n');
  let para: string[] = [];
  const flush = () => {
    if (para.length) blocks.push({ kind: 'paragraph', text: para.join(' ') });
    para = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    if (/^\s*```/.test(line)) {
      flush();
      const code: string[] = [];
      for (i++; i < lines.length && !/^\s*```/.test(lines[i]!); i++) code.push(lines[i]!);
      blocks.push({ kind: 'code', text: code.join('\n') });
      continue;
    }
    const h = /^(#{1,6})\s+(.*)$/.exec(line);
    if (h) {
      flush();
      blocks.push({ kind: 'heading', level: h[1]!.length, text: h[2]!.trim() });
      continue;
    }
    const li = /^\s*(?:([-*+])|(\d+)[.)])\s+(.*)$/.exec(line);
    if (li) {
      flush();
      const ordered = li[2] !== undefined;
      const last = blocks[blocks.length - 1];
      if (last?.kind === 'list' && last.ordered === ordered) last.items.push(li[3]!);
      else blocks.push({ kind: 'list', ordered, items: [li[3]!] });
      continue;
    }
    if (line.trim() === '') {
      flush();
      continue;
    }
    // A continuation line of a list item (indented) joins it.
    const last = blocks[blocks.length - 1];
    if (para.length === 0 && /^\s{2,}\S/.test(line) && last?.kind === 'list') {
      last.items[last.items.length - 1] = `${last.items[last.items.length - 1] ?? ''} ${line.trim()}`;
      continue;
    }
    para.push(line.trim());
  }
  flush();
  return blocks;
}

/** Inline `code` and **bold**; the rest is text. */
function inline(text: string): ReactNode[] {
  const out: ReactNode[] = [];
  const re = /`([^`]+)`|\*\*([^*]+)\*\*/g;
  let at = 0;
  let k = 0;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    if (m.index > at) out.push(text.slice(at, m.index));
    if (m[1] !== undefined) {
      out.push(
        <code key={k++} className="rounded bg-slate-100 px-1 font-mono text-xs break-all">
          {m[1]}
        </code>,
      );
    } else out.push(<strong key={k++}>{m[2]}</strong>);
    at = m.index + m[0].length;
  }
  if (at < text.length) out.push(text.slice(at));
  return out;
}

function Item({ text }: { text: string }) {
  const box = /^\[([ xX])\]\s+(.*)$/.exec(text);
  if (!box) return <li>{inline(text)}</li>;
  const done = box[1] !== ' ';
  return (
    <li>
      <span aria-hidden="true">{done ? '☑ ' : '☐ '}</span>
      <span className="sr-only">{done ? 'Done: ' : 'To do: '}</span>
      {inline(box[2]!)}
    </li>
  );
}

const HEADING = ['text-xl font-semibold', 'text-lg font-semibold', 'text-base font-semibold', 'text-sm font-semibold'];

/**
 * Renders Markdown as React elements. `headingOffset` shifts heading levels
 * so the document's `#` fits under the page's own headings.
 */
export function Markdown({ text, headingOffset = 2 }: { text: string; headingOffset?: number }) {
  return (
    <div className="space-y-3 text-sm leading-relaxed text-slate-900">
      {parseMarkdown(text).map((b, i) => {
        switch (b.kind) {
          case 'heading': {
            const level = Math.min(6, b.level + headingOffset);
            const Tag = `h${level}` as 'h3';
            return (
              <Tag key={i} className={`${HEADING[Math.min(HEADING.length - 1, b.level - 1)]} pt-1`}>
                {inline(b.text)}
              </Tag>
            );
          }
          case 'list': {
            const Tag = b.ordered ? 'ol' : 'ul';
            return (
              <Tag key={i} className={`space-y-1 pl-5 ${b.ordered ? 'list-decimal' : 'list-disc'}`}>
                {b.items.map((t, j) => (
                  <Item key={j} text={t} />
                ))}
              </Tag>
            );
          }
          case 'code':
            return (
              <pre key={i} className="overflow-x-auto rounded-md bg-slate-100 p-3 font-mono text-xs">
                {b.text}
              </pre>
            );
          default:
            return <p key={i}>{inline(b.text)}</p>;
        }
      })}
    </div>
  );
}
