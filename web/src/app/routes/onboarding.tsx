import { ErrorMessage } from '@/components/ui/error-message';
import { Spinner } from '@/components/ui/spinner';
import { useMe } from '@/features/auth/api/get-me';
import { MyHandovers } from '@/features/knowledge/components/my-handovers';
import { useTitle } from '@/lib/use-title';
import { viewerOf } from '../viewer';

/** `/onboarding`: environments handed over to the caller (their checklists) and by them. */
export function OnboardingRoute() {
  useTitle('Onboarding');
  const me = useMe();
  return (
    <div className="space-y-6">
      <h1 className="text-2xl font-semibold">Onboarding</h1>
      {me.isPending ? (
        <Spinner label="Checking your session…" />
      ) : me.isError ? (
        <ErrorMessage error={me.error} onRetry={() => void me.refetch()} />
      ) : (
        <MyHandovers viewer={viewerOf(me.data)} />
      )}
    </div>
  );
}
