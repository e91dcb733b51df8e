import { useState } from 'react';
import { DocumentDrawer, type DocumentSource } from '@/components/document-drawer';
import { EmptyState } from '@/components/ui/empty-state';
import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { useHandovers } from '../api/get-handovers';
import { useTransfer } from '../api/get-transfer';
import { HandoverCard, type Viewer } from './handover-card';
import { HandoverForm } from './handover-form';
import { OnboardingChecklist } from './onboarding-checklist';
import { TransferPanel } from './transfer-panel';

type Props = {
  environment: { id: string; name: string; labId: string; researcherId: string };
  viewer: Viewer;
  /** Owner or lab admin: may sync and hand over. */
  canOperate: boolean;
};

function Handovers({ environment, viewer, canOperate, open }: Props & { open: (path: string, title: string) => void }) {
  const handovers = useHandovers(environment.id);
  const transfer = useTransfer(environment.id);
  return (
    <section aria-labelledby="handover-heading" className="space-y-4 rounded-md border border-slate-300 bg-white p-4">
      <h2 id="handover-heading" className="text-lg font-semibold">
        Handover and onboarding
      </h2>
      {canOperate ? (
        <HandoverForm environment={environment} />
      ) : (
        <p className="text-sm text-slate-700">Only the environment’s researcher or a lab admin can hand it over.</p>
      )}
      {handovers.isPending ? (
        <Spinner label="Loading handovers…" />
      ) : handovers.isError ? (
        <ErrorMessage error={handovers.error} onRetry={() => void handovers.refetch()} />
      ) : handovers.data.length === 0 ? (
        <div className="space-y-3">
          <EmptyState title="Not handed over yet.">
            When it is, the new researcher works through this checklist, ticking each step.
          </EmptyState>
          {transfer.data && transfer.data.checklist.length > 0 && (
            <OnboardingChecklist items={transfer.data.checklist} canTick={false} onOpenDocument={open} label="Checklist preview" />
          )}
        </div>
      ) : (
        <div className="space-y-4">
          {handovers.data.map((h) => (
            <HandoverCard key={h.id} handover={h} viewer={viewer} onOpenDocument={open} />
          ))}
        </div>
      )}
    </section>
  );
}

/** An environment's knowledge transfer: the package, handing it over, and onboarding progress. */
export function KnowledgePage(props: Props) {
  const [doc, setDoc] = useState<DocumentSource | null>(null);
  const open = (path: string, title: string) => setDoc({ id: path, title, span: null });
  return (
    <div className="space-y-6">
      <TransferPanel environmentId={props.environment.id} canOperate={props.canOperate} onOpenDocument={open} />
      <Handovers {...props} open={open} />
      {doc && <DocumentDrawer source={doc} onClose={() => setDoc(null)} />}
    </div>
  );
}
