import { describe, expect, it } from 'vitest';
import { SseParser, type SseMessage } from './sse';

describe('SseParser', () => {
  it('reads events split across chunks, with ids, multi-line data and comments', () => {
    const got: SseMessage[] = [];
    const p = new SseParser((m) => got.push(m));
    p.push(': keep-alive\n\nevent: dri');
    p.push('ft\nid: 7\ndata: {"a":\ndata: 1}\n\n');
    p.push('event: job\r\ndata: x\r\n\r\ndata: plain\n\n');
    expect(got).toEqual([
      { event: 'drift', id: '7', data: '{"a":\n1}' },
      { event: 'job', id: '7', data: 'x' },
      { event: 'message', id: '7', data: 'plain' },
    ]);
  });

  it('ignores an event without data', () => {
    const got: SseMessage[] = [];
    const p = new SseParser((m) => got.push(m));
    p.push('event: drift\n\n');
    expect(got).toEqual([]);
  });
});
