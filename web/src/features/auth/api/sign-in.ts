/**
 * `POST /api/auth/token`. The response sets the HttpOnly session cookies
 * (access + refresh), which is all the portal uses: the tokens in the JSON
 * body are not kept anywhere script can read them, so an XSS bug cannot
 * steal a session, and the cookie also signs the user in to JupyterLab
 * through the gateway.
 */
import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { components } from '@/api/schema';
import { apiFetch } from '@/lib/api-client';
import { ME_KEY } from '@/lib/react-query';

type TokenRequest = components['schemas']['TokenRequest'];
type TokenResponse = components['schemas']['TokenResponse'];

export type SignInInput =
  | { method: 'one_time_token'; token: string }
  | { method: 'password'; username: string; password: string };

export async function signIn(input: SignInInput): Promise<TokenResponse['user']> {
  const body: TokenRequest =
    input.method === 'one_time_token'
      ? { grant_type: 'one_time_token', token: input.token }
      : { grant_type: 'password', username: input.username, password: input.password };
  const res = await apiFetch<TokenResponse>('/api/auth/token', { method: 'POST', body });
  return res.user;
}

/**
 * The one-time token in what the user pasted: the whole sign-in link
 * (`…/api/auth/login?token=…`) or the bare token.
 */
export function extractToken(pasted: string): string {
  const s = pasted.trim();
  if (s === '') return '';
  if (/^https?:\/\//i.test(s) || s.startsWith('/')) {
    try {
      const u = new URL(s, 'http://placeholder.invalid');
      return u.searchParams.get('token')?.trim() ?? '';
    } catch {
      return '';
    }
  }
  const m = /[?&]token=([^&\s]+)/.exec(s);
  return m?.[1] ? decodeURIComponent(m[1]) : s;
}

export function useSignIn() {
  const qc = useQueryClient();
  return useMutation({
    mutationFn: signIn,
    meta: { signIn: true },
    onSuccess: (user) => {
      qc.clear();
      qc.setQueryData(ME_KEY, user);
    },
  });
}
