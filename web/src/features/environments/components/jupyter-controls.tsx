import { Button, buttonClass } from '@/components/ui/button';
import { JupyterStatusBadge } from '@/components/ui/badge';
import { ErrorMessage } from '@/components/ui/error-message';
import type { Environment } from '../api/get-environment';
import { useLaunchJupyter } from '../api/launch-jupyter';
import { useStopJupyter } from '../api/stop-jupyter';

type Exit = NonNullable<Environment['container_info']['last_exit']>;

/** How the last server ended on its own; a limit it hit is a warning. */
function LastExit({ exit }: { exit: Exit }) {
  const limit = exit.reason === 'memory_limit' || exit.reason === 'process_limit';
  return (
    <p
      role={limit ? 'alert' : undefined}
      className={`rounded-md p-2 text-sm ${limit ? 'bg-red-50 text-red-800' : 'bg-slate-50 text-slate-700'}`}
    >
      {exit.message} <span className="text-slate-600">({new Date(exit.at).toLocaleString()})</span>
    </p>
  );
}

/**
 * Launch / stop JupyterLab and open it through the platform's gateway in a
 * new tab (the session cookie signs the user in there). The link is a real
 * link rather than `window.open` after the launch, which popup blockers stop.
 * When the lab reaches Jupyter through Amazon WorkSpaces Secure Browser
 * (`secureBrowserUrl`), it says to open that portal first and JupyterLab's
 * address inside it (no API opens a session there for the user).
 */
export function JupyterControls({ env, secureBrowserUrl }: { env: Environment; secureBrowserUrl?: string | null }) {
  if (env.adopted) return <AdoptedJupyter host={env.adopted.host} />;
  return <PlatformJupyter env={env} secureBrowserUrl={secureBrowserUrl ?? undefined} />;
}

/** How to open JupyterLab inside the lab's secure browser. */
function SecureBrowserSteps({ portal, url }: { portal: string; url: string }) {
  return (
    <div className="space-y-2 rounded-md bg-slate-50 p-3 text-sm text-slate-800">
      <p>Your lab opens JupyterLab in its secure browser.</p>
      <ol className="list-decimal space-y-1 pl-5">
        <li>
          Open{' '}
          <a href={portal} target="_blank" rel="noopener noreferrer" className="font-medium text-blue-800 underline">
            the lab&rsquo;s secure browser<span className="sr-only"> (opens in a new tab)</span>
          </a>{' '}
          and sign in.
        </li>
        <li>
          In it, open <code className="break-all rounded bg-white px-1">{url}</code>
        </li>
      </ol>
    </div>
  );
}

/** An adopted environment's Jupyter is the researcher's own, on the lab machine: the platform does not launch it. */
function AdoptedJupyter({ host }: { host: string }) {
  return (
    <section aria-labelledby="jupyter-heading" className="space-y-3 rounded-md border border-slate-300 bg-white p-4">
      <h2 id="jupyter-heading" className="text-lg font-semibold">
        JupyterLab
      </h2>
      <p className="text-sm text-slate-800">
        Jupyter for this environment runs on the lab machine {host}, as the researcher’s own; the platform does not
        launch it here. To run the environment on the platform, restore one of its snapshots into a new environment.
      </p>
    </section>
  );
}

function PlatformJupyter({ env, secureBrowserUrl }: { env: Environment; secureBrowserUrl?: string }) {
  const launch = useLaunchJupyter();
  const stop = useStopJupyter();
  const running = env.jupyter_status === 'running';
  const url = launch.data?.jupyter_url ?? env.container_info.jupyter_url ?? undefined;
  const ready = env.status === 'ready';
  const portal = launch.data?.secure_browser_url ?? secureBrowserUrl;

  return (
    <section aria-labelledby="jupyter-heading" className="space-y-3 rounded-md border border-slate-300 bg-white p-4">
      <div className="flex items-center justify-between">
        <h2 id="jupyter-heading" className="text-lg font-semibold">
          JupyterLab
        </h2>
        <JupyterStatusBadge status={env.jupyter_status} />
      </div>
      {!ready && <p className="text-sm text-slate-700">JupyterLab can start once the environment is ready.</p>}
      {!running && env.container_info.last_exit && <LastExit exit={env.container_info.last_exit} />}
      <div className="flex flex-wrap gap-2">
        {running && url ? (
          <>
            {!portal && (
              <a href={url} target="_blank" rel="noopener noreferrer" className={buttonClass('primary')}>
                Open JupyterLab<span className="sr-only"> (opens in a new tab)</span>
                <span aria-hidden="true">↗</span>
              </a>
            )}
            <Button variant="danger" busy={stop.isPending} onClick={() => stop.mutate(env.id)}>
              Stop Jupyter
            </Button>
          </>
        ) : (
          <Button
            busy={launch.isPending || env.jupyter_status === 'starting'}
            disabled={!ready}
            onClick={() => launch.mutate(env.id)}
          >
            {launch.isPending ? 'Starting JupyterLab…' : 'Launch Jupyter'}
          </Button>
        )}
      </div>
      {running && url && portal && <SecureBrowserSteps portal={portal} url={url} />}
      {launch.error && <ErrorMessage error={launch.error} />}
      {stop.error && <ErrorMessage error={stop.error} />}
    </section>
  );
}
