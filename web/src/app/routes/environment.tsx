import { Link, useParams } from 'react-router';
import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { buttonClass } from '@/components/ui/button';
import { AskAgentButton, ChatPanel } from '@/features/agents/components/chat-panel';
import { useMe } from '@/features/auth/api/get-me';
import { PublishTemplateButton } from '@/features/collaboration/components/publish-template';
import { ShareButton } from '@/features/collaboration/components/share-dialog';
import { DriftPanel } from '@/features/drift/components/drift-panel';
import { useEnvironment } from '@/features/environments/api/get-environment';
import { AdoptedPanel } from '@/features/environments/components/adopted-panel';
import { EnvironmentOverview } from '@/features/environments/components/environment-overview';
import { JupyterControls } from '@/features/environments/components/jupyter-controls';
import { SnapshotPanel } from '@/features/snapshots/components/snapshot-panel';
import { useTitle } from '@/lib/use-title';
import { useUiStore } from '@/stores/ui';
import { viewerOf } from '../viewer';

export function EnvironmentRoute() {
  const { id = '' } = useParams();
  const env = useEnvironment(id);
  const me = useMe();
  const chatOpen = useUiStore((s) => s.chatOpen);
  useTitle(env.data?.name ?? 'Environment');
  const canOperate = !!(me.data && env.data && viewerOf(me.data).canOperate(env.data));
  return (
    // Room for the docked chat panel (28rem) on wide screens: what the page's own right margin does not already give.
    <div className={`space-y-6 ${chatOpen ? 'lg:pr-[max(0rem,calc(28rem-max(0rem,(100vw-80rem)/2)))]' : ''}`}>
      <Link to="/" className="text-sm text-sky-800 underline">
        ← All environments
      </Link>
      {env.isPending ? (
        <Spinner label="Loading the environment…" />
      ) : env.isError ? (
        <ErrorMessage error={env.error} onRetry={() => void env.refetch()} />
      ) : (
        <>
          <div className="flex flex-wrap items-center justify-between gap-3">
            <h1 className="text-2xl font-semibold">{env.data.name}</h1>
            <div className="flex flex-wrap items-center gap-2">
              <Link to={`/environments/${env.data.id}/knowledge`} className={buttonClass('secondary')}>
                Knowledge transfer
              </Link>
              {canOperate && <ShareButton resource={{ type: 'environment', id: env.data.id, name: env.data.name }} />}
              <AskAgentButton />
            </div>
          </div>
          <div className="grid gap-6 lg:grid-cols-2">
            <EnvironmentOverview env={env.data} />
            <JupyterControls env={env.data} secureBrowserUrl={me.data?.secure_browser_url} />
          </div>
          {env.data.adopted && <AdoptedPanel env={env.data} adopted={env.data.adopted} canManage={canOperate} />}
          <SnapshotPanel
            environmentId={env.data.id}
            canSnapshot={env.data.status === 'ready'}
            adoptedHost={env.data.adopted?.host}
            snapshotActions={
              canOperate
                ? (s) => (
                    <PublishTemplateButton
                      snapshot={{ id: s.id, complete: s.status === 'complete' }}
                      defaultName={`${env.data.name}-${s.timestamp.slice(0, 10)}`}
                    />
                  )
                : undefined
            }
          />
          <section aria-labelledby="knowledge-heading" className="space-y-2 rounded-md border border-slate-300 bg-white p-4">
            <h2 id="knowledge-heading" className="text-lg font-semibold">
              Knowledge transfer
            </h2>
            <p className="text-sm text-slate-800">
              The generated summary, the notebooks in run order and their data, the package to download, and handing the
              environment over to another researcher with an onboarding checklist.
            </p>
            <Link to={`/environments/${env.data.id}/knowledge`} className="text-sm font-medium text-sky-800 underline">
              Open knowledge transfer for {env.data.name}
            </Link>
          </section>
          <DriftPanel
            environmentId={env.data.id}
            jupyterRunning={env.data.jupyter_status !== 'stopped'}
            adoptedHost={env.data.adopted?.host}
          />
          <ChatPanel environmentId={env.data.id} />
        </>
      )}
    </div>
  );
}
