import { Link, useParams } from 'react-router';
import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { DriftPanel } from '@/features/drift/components/drift-panel';
import { useEnvironment } from '@/features/environments/api/get-environment';
import { EnvironmentOverview } from '@/features/environments/components/environment-overview';
import { JupyterControls } from '@/features/environments/components/jupyter-controls';
import { SnapshotPanel } from '@/features/snapshots/components/snapshot-panel';
import { useTitle } from '@/lib/use-title';

export function EnvironmentRoute() {
  const { id = '' } = useParams();
  const env = useEnvironment(id);
  useTitle(env.data?.name ?? 'Environment');
  return (
    <div className="space-y-6">
      <Link to="/" className="text-sm text-sky-800 underline">
        ← All environments
      </Link>
      {env.isPending ? (
        <Spinner label="Loading the environment…" />
      ) : env.isError ? (
        <ErrorMessage error={env.error} onRetry={() => void env.refetch()} />
      ) : (
        <>
          <h1 className="text-2xl font-semibold">{env.data.name}</h1>
          <div className="grid gap-6 lg:grid-cols-2">
            <EnvironmentOverview env={env.data} />
            <JupyterControls env={env.data} />
          </div>
          <SnapshotPanel environmentId={env.data.id} canSnapshot={env.data.status === 'ready'} />
          <DriftPanel environmentId={env.data.id} />
        </>
      )}
    </div>
  );
}
