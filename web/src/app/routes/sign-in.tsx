import { Navigate, useNavigate, useSearchParams } from 'react-router';
import { Spinner } from '@/components/ui/spinner';
import { useMe } from '@/features/auth/api/get-me';
import { SignInForm } from '@/features/auth/components/sign-in-form';
import { useTitle } from '@/lib/use-title';

/** Only paths on this site: no open redirect. */
export function safeNext(next: string | null): string {
  return next && next.startsWith('/') && !next.startsWith('//') && !next.includes('\\') ? next : '/';
}

export function SignInRoute() {
  useTitle('Sign in');
  const [params] = useSearchParams();
  const navigate = useNavigate();
  const next = safeNext(params.get('next'));
  const me = useMe();
  // Only the first check shows a spinner; later re-checks keep the form (and its error) on screen.
  if (me.isPending && me.errorUpdateCount === 0) {
    return (
      <div className="grid min-h-screen place-items-center">
        <Spinner label="Checking your session…" />
      </div>
    );
  }
  if (me.isSuccess) return <Navigate to={next} replace />;
  return (
    <main className="mx-auto max-w-lg px-4 py-12">
      <h1 className="text-2xl font-semibold">Sign in to West Tek</h1>
      <p className="mt-1 mb-6 text-slate-800">Environment Preservation Platform</p>
      <SignInForm onSignedIn={() => void navigate(next, { replace: true })} />
    </main>
  );
}
