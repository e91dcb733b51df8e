/**
 * The portal's configuration, read once from Vite's build-time variables and
 * validated here so a bad value fails at start-up with a clear message.
 *
 * The portal talks to the API on its own origin: the session lives in
 * HttpOnly cookies, and the API and the Jupyter gateway accept cookie-carried
 * changes only from the same origin. So the only knob is the path prefix.
 */

function apiBase(raw: string | undefined): string {
  const value = raw?.trim() ?? '';
  if (value === '') return '';
  if (!value.startsWith('/') || value.startsWith('//')) {
    throw new Error(
      `VITE_API_BASE must be a path on this site (like "/westtek"), not "${value}": the session cookie only works on the same origin`,
    );
  }
  return value.replace(/\/+$/, '');
}

export const env = {
  /** Prefix before `/api/…` (empty: the site root). */
  apiBase: apiBase(import.meta.env.VITE_API_BASE as string | undefined),
} as const;
