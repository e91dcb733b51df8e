import { Link, useParams } from 'react-router';
import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { useMe } from '@/features/auth/api/get-me';
import { useEnvironment } from '@/features/environments/api/get-environment';
import { KnowledgePage } from '@/features/knowledge/components/knowledge-page';
import { useTitle } from '@/lib/use-title';
import { viewerOf } from '../viewer';

/** `/environments/:id/knowledge`: the environment's transfer package, handover and onboarding. */
export function KnowledgeRoute() {
  const { id = '' } = useParams();
  const env = useEnvironment(id);
  const me = useMe();
  useTitle(env.data ? `Knowledge transfer · ${env.data.name}` : 'Knowledge transfer');
  return (
    <div className="space-y-6">
      <Link to={`/environments/${id}`} className="text-sm text-sky-800 underline">
        ← {env.data?.name ?? 'The environment'}
      </Link>
      {env.isPending || me.isPending ? (
        <Spinner label="Loading the environment…" />
      ) : env.isError ? (
        <ErrorMessage error={env.error} onRetry={() => void env.refetch()} />
      ) : me.isError ? (
        <ErrorMessage error={me.error} onRetry={() => void me.refetch()} />
      ) : (
        <>
          <h1 className="text-2xl font-semibold">Knowledge transfer: {env.data.name}</h1>
          <KnowledgePage
            environment={{ id: env.data.id, name: env.data.name, labId: env.data.lab_id, researcherId: env.data.researcher_id }}
            viewer={viewerOf(me.data)}
            canOperate={viewerOf(me.data).canOperate(env.data)}
          />
        </>
      )}
    </div>
  );
}
