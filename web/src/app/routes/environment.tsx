import { Link, useParams } from 'react-router';
import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { AskAgentButton, ChatPanel } from '@/features/agents/components/chat-panel';
import { DriftPanel } from '@/features/drift/components/drift-panel';
import { useEnvironment } from '@/features/environments/api/get-environment';
import { EnvironmentOverview } from '@/features/environments/components/environment-overview';
import { JupyterControls } from '@/features/environments/components/jupyter-controls';
import { SnapshotPanel } from '@/features/snapshots/components/snapshot-panel';
import { useTitle } from '@/lib/use-title';
import { useUiStore } from '@/stores/ui';

export function EnvironmentRoute() {
  const { id = '' } = useParams();
  const env = useEnvironment(id);
  const chatOpen = useUiStore((s) => s.chatOpen);
  useTitle(env.data?.name ?? 'Environment');
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
            <AskAgentButton />
          </div>
          <div className="grid gap-6 lg:grid-cols-2">
            <EnvironmentOverview env={env.data} />
            <JupyterControls env={env.data} />
          </div>
          <SnapshotPanel environmentId={env.data.id} canSnapshot={env.data.status === 'ready'} />
          <DriftPanel environmentId={env.data.id} jupyterRunning={env.data.jupyter_status !== 'stopped'} />
          <ChatPanel environmentId={env.data.id} />
        </>
      )}
    </div>
  );
}
