import { useState } from 'react';
import { DocumentDrawer, type DocumentSource } from '@/components/document-drawer';
import { EmptyState } from '@/components/ui/empty-state';
import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { useHandovers } from '../api/get-handovers';
import { HandoverCard, type Viewer } from './handover-card';

/** The caller's handovers, to or from them: the onboarding view. */
export function MyHandovers({ viewer }: { viewer: Viewer }) {
  const handovers = useHandovers(null);
  const [doc, setDoc] = useState<DocumentSource | null>(null);
  const open = (path: string, title: string) => setDoc({ id: path, title, span: null });
  if (handovers.isPending) return <Spinner label="Loading your handovers…" />;
  if (handovers.isError) return <ErrorMessage error={handovers.error} onRetry={() => void handovers.refetch()} />;
  const toMe = handovers.data.filter((h) => h.to_user === viewer.userId);
  const fromMe = handovers.data.filter((h) => h.to_user !== viewer.userId);
  return (
    <div className="space-y-6">
      <section aria-labelledby="to-me-heading" className="space-y-3">
        <h2 id="to-me-heading" className="text-lg font-semibold">
          Handed over to you
        </h2>
        {toMe.length === 0 ? (
          <EmptyState title="Nothing has been handed over to you.">
            When a colleague hands an environment over, its onboarding checklist appears here.
          </EmptyState>
        ) : (
          toMe.map((h) => <HandoverCard key={h.id} handover={h} viewer={viewer} onOpenDocument={open} showEnvironment />)
        )}
      </section>
      <section aria-labelledby="from-me-heading" className="space-y-3">
        <h2 id="from-me-heading" className="text-lg font-semibold">
          Handed over by you
        </h2>
        {fromMe.length === 0 ? (
          <EmptyState title="You have not handed anything over." />
        ) : (
          fromMe.map((h) => <HandoverCard key={h.id} handover={h} viewer={viewer} onOpenDocument={open} showEnvironment />)
        )}
      </section>
      {doc && <DocumentDrawer source={doc} onClose={() => setDoc(null)} />}
    </div>
  );
}
