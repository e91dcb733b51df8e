import { useState, type FormEvent } from 'react';
import { Button } from '@/components/ui/button';
import { ErrorMessage } from '@/components/ui/error-message';
import { Field, inputClass } from '@/components/ui/field';
import { extractToken, useSignIn } from '../api/sign-in';

type Props = { onSignedIn: () => void };

/** Sign in with a one-time sign-in link (pasted whole, or just its token), or a password. */
export function SignInForm({ onSignedIn }: Props) {
  const signIn = useSignIn();
  const [link, setLink] = useState('');
  const [linkError, setLinkError] = useState<string>();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [pwError, setPwError] = useState<string>();

  const submitLink = (e: FormEvent) => {
    e.preventDefault();
    const token = extractToken(link);
    if (!token) {
      setLinkError('Paste the sign-in link you were given (it contains “token=”), or just the token.');
      return;
    }
    setLinkError(undefined);
    signIn.mutate({ method: 'one_time_token', token }, { onSuccess: onSignedIn });
  };

  const submitPassword = (e: FormEvent) => {
    e.preventDefault();
    if (!username.trim() || !password) {
      setPwError('Enter your username and password.');
      return;
    }
    setPwError(undefined);
    signIn.mutate({ method: 'password', username: username.trim(), password }, { onSuccess: onSignedIn });
  };

  return (
    <div className="space-y-6">
      {signIn.error && <ErrorMessage error={signIn.error} />}
      <form onSubmit={submitLink} noValidate className="space-y-3" aria-labelledby="link-heading">
        <h2 id="link-heading" className="text-lg font-semibold">
          With a sign-in link
        </h2>
        <Field
          label="Sign-in link or token"
          hint="The link printed by “westtek up” or sent by your admin. It works once."
          error={linkError}
        >
          {(p) => (
            <input
              {...p}
              className={inputClass}
              name="link"
              autoComplete="off"
              spellCheck={false}
              value={link}
              onChange={(e) => setLink(e.target.value)}
              placeholder="http://127.0.0.1:8080/api/auth/login?token=…"
            />
          )}
        </Field>
        <Button type="submit" busy={signIn.isPending && signIn.variables.method === 'one_time_token'}>
          Sign in
        </Button>
      </form>
      <details className="rounded-md border border-slate-300 bg-white p-3">
        <summary className="cursor-pointer text-sm font-medium text-slate-900">Sign in with a username and password</summary>
        <form onSubmit={submitPassword} noValidate className="mt-3 space-y-3">
          <Field label="Username">
            {(p) => (
              <input
                {...p}
                className={inputClass}
                name="username"
                autoComplete="username"
                value={username}
                onChange={(e) => setUsername(e.target.value)}
              />
            )}
          </Field>
          <Field label="Password" error={pwError}>
            {(p) => (
              <input
                {...p}
                type="password"
                className={inputClass}
                name="password"
                autoComplete="current-password"
                value={password}
                onChange={(e) => setPassword(e.target.value)}
              />
            )}
          </Field>
          <Button type="submit" variant="secondary" busy={signIn.isPending && signIn.variables.method === 'password'}>
            Sign in with password
          </Button>
        </form>
      </details>
    </div>
  );
}
