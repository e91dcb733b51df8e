import { CollaborationHub } from '@/features/collaboration/components/collaboration-hub';
import { useTitle } from '@/lib/use-title';

/** `/collaboration`: shares with and from other labs, and templates. */
export function CollaborationRoute() {
  useTitle('Collaboration');
  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-semibold">Collaboration</h1>
        <p className="mt-1 text-sm text-slate-800">
          What your lab shares with other labs, what they share with yours, and templates to start environments from.
        </p>
      </div>
      <CollaborationHub />
    </div>
  );
}
