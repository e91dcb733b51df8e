import { describe, expect, it } from 'vitest';
import { extractToken } from './sign-in';

describe('extractToken', () => {
  it.each([
    ['http://127.0.0.1:8080/api/auth/login?token=abc_DEF-123', 'abc_DEF-123'],
    ['  https://westtek.example/api/auth/login?next=%2F&token=t0k  ', 't0k'],
    ['/api/auth/login?token=rel', 'rel'],
    ['Sign in once with: http://127.0.0.1:8080/api/auth/login?token=fromsentence', 'fromsentence'],
    ['bare-token', 'bare-token'],
    ['http://127.0.0.1:8080/api/auth/login', ''],
    ['   ', ''],
  ])('finds the token in %j', (input, token) => {
    expect(extractToken(input)).toBe(token);
  });
});
