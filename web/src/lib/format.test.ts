import { describe, expect, it } from 'vitest';
import { shortId } from './format';

describe('shortId', () => {
  it('keeps the random end of a UUIDv7, whose start is a timestamp', () => {
    expect(shortId('01a203ce-1111-7000-8000-0000deadbeef')).toBe('deadbeef');
    expect(shortId('01a203ce-2222-7000-8000-0000cafef00d')).toBe('cafef00d');
    expect(shortId('not-a-uuid-at-all')).toBe('not-a-uu');
    expect(shortId(null)).toBe('—');
  });
});
