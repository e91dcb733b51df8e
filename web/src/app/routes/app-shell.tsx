import { useEffect } from 'react';
import { Link, Navigate, NavLink, Outlet, useLocation, useNavigate } from 'react-router';
import { Button } from '@/components/ui/button';
import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { Toaster } from '@/components/ui/toaster';
import { useMe, type Me } from '@/features/auth/api/get-me';
import { useSignOut } from '@/features/auth/api/sign-out';
import { SandboxBanner } from '@/features/admin/components/sandbox-banner';
import { LabSwitcher } from '@/features/auth/components/lab-switcher';
import { useDriftStream, type StreamState } from '@/features/drift/api/use-drift-stream';
import { driftAlert, type DriftEvent } from '@/features/drift/api/types';
import { toApiError } from '@/lib/api-client';
import { useUiStore } from '@/stores/ui';

/** The lab to work in: the stored choice when the user still has it, else their first lab. */
function effectiveLab(me: Me, stored: string | null): string | null {
  if (stored && me.labs.some((l) => l.lab_id === stored)) return stored;
  return me.labs[0]?.lab_id ?? null;
}

function toastFor(ev: DriftEvent) {
  return {
    id: ev.id,
    severity: (ev.severity ?? 'OK') as 'CRITICAL' | 'MINOR' | 'INFO' | 'OK',
    ...driftAlert(ev),
    href: `/environments/${ev.environment_id}`,
  };
}

const navClass = ({ isActive }: { isActive: boolean }) =>
  `text-sm text-slate-100 hover:underline ${isActive ? 'font-semibold underline underline-offset-4' : ''}`;

function LiveIndicator({ state }: { state: StreamState }) {
  const words = { live: 'Live alerts on', connecting: 'Connecting alerts…', reconnecting: 'Reconnecting alerts…' }[state];
  return (
    <span className="flex items-center gap-1.5 text-xs text-slate-200" title="Drift alerts arrive as they happen">
      <span aria-hidden="true" className={`h-2 w-2 rounded-full ${state === 'live' ? 'bg-emerald-400' : 'bg-amber-400'}`} />
      {words}
    </span>
  );
}

function Shell({ me }: { me: Me }) {
  const navigate = useNavigate();
  const signOut = useSignOut();
  const pushToast = useUiStore((s) => s.pushToast);
  const stream = useDriftStream({ enabled: true, onEvent: (ev) => pushToast(toastFor(ev)) });
  return (
    <div className="min-h-screen">
      <a href="#main" className="sr-only focus:not-sr-only focus:absolute focus:top-2 focus:left-2 focus:z-50 focus:bg-white focus:p-2">
        Skip to main content
      </a>
      <header className="bg-slate-900 text-white">
        <div className="mx-auto flex max-w-7xl flex-wrap items-center justify-between gap-3 px-4 py-3">
          <div className="flex items-center gap-6">
            <Link to="/" className="text-lg font-semibold tracking-tight">
              West Tek
            </Link>
            <nav aria-label="Main" className="flex items-center gap-4">
              <NavLink to="/" end className={navClass}>
                Environments
              </NavLink>
              <NavLink to="/onboarding" className={navClass}>
                Onboarding
              </NavLink>
              <NavLink to="/collaboration" className={navClass}>
                Collaboration
              </NavLink>
              {me.it_admin && (
                <NavLink to="/admin" className={navClass}>
                  IT admin
                </NavLink>
              )}
            </nav>
          </div>
          <div className="flex flex-wrap items-center gap-4">
            <LiveIndicator state={stream} />
            <LabSwitcher me={me} />
            <span className="text-sm text-slate-200">
              {me.username}
              {me.it_admin && ' (IT admin)'}
            </span>
            <Button
              variant="secondary"
              busy={signOut.isPending}
              onClick={() => signOut.mutate(undefined, { onSettled: () => void navigate('/sign-in') })}
            >
              Sign out
            </Button>
          </div>
        </div>
      </header>
      <SandboxBanner itAdmin={me.it_admin} />
      <main id="main" tabIndex={-1} className="mx-auto max-w-7xl px-4 py-6 focus:outline-none">
        <Outlet />
      </main>
      <Toaster />
    </div>
  );
}

/** Signed-in pages: checks the session, settles the lab, then shows the page in the shell. */
export function AppShell() {
  const me = useMe();
  const location = useLocation();
  const stored = useUiStore((s) => s.labId);
  const setLab = useUiStore((s) => s.setLab);
  const lab = me.data ? effectiveLab(me.data, stored) : undefined;
  useEffect(() => {
    if (lab !== undefined && lab !== stored) setLab(lab);
  }, [lab, stored, setLab]);

  if (me.isPending) {
    return (
      <div className="grid min-h-screen place-items-center">
        <Spinner label="Checking your session…" />
      </div>
    );
  }
  if (me.isError) {
    if (toApiError(me.error).isUnauthenticated) {
      const next = `${location.pathname}${location.search}`;
      return <Navigate to={next === '/' ? '/sign-in' : `/sign-in?next=${encodeURIComponent(next)}`} replace />;
    }
    return (
      <main className="mx-auto max-w-xl p-6">
        <ErrorMessage error={me.error} onRetry={() => void me.refetch()} />
      </main>
    );
  }
  // Render pages only once the store holds the lab, so no request goes out for the wrong lab.
  if (lab !== stored) return null;
  return <Shell me={me.data} />;
}
