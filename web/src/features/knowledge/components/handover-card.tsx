import { Link } from 'react-router';
import { Badge } from '@/components/ui/badge';
import { dateTime, timeAgo } from '@/lib/format';
import { useEnvironmentBrief } from '../api/get-environment-name';
import { isOpen, type Handover } from '../api/get-handovers';
import { useLabUsers, userName } from '../api/get-lab-users';
import { OnboardingChecklist } from './onboarding-checklist';

/** Who is looking: ticking is for the new researcher and lab admins. */
export type Viewer = { userId: string; isLabAdmin: (labId: string) => boolean };

const inFuture = (iso: string) => Date.parse(iso) > Date.now();

function EnvironmentName({ id }: { id: string }) {
  const env = useEnvironmentBrief(id);
  return <>{env.data?.name ?? (env.isError ? 'an environment you can no longer see' : '…')}</>;
}

type Props = {
  handover: Handover;
  viewer: Viewer;
  onOpenDocument: (path: string, title: string) => void;
  /** Name the environment and link to it (the onboarding view lists several). */
  showEnvironment?: boolean;
};

/** One handover: who to whom, until when, the note, and the new researcher's checklist. */
export function HandoverCard({ handover: h, viewer, onOpenDocument, showEnvironment = false }: Props) {
  const users = useLabUsers(h.lab_id);
  const from = h.from_user === viewer.userId ? 'you' : userName(users.data, h.from_user);
  const to = h.to_user === viewer.userId ? 'you' : userName(users.data, h.to_user);
  const canTick = h.to_user === viewer.userId || viewer.isLabAdmin(h.lab_id);
  const readable = inFuture(h.read_until);
  return (
    <article aria-label={`Handover from ${from} to ${to}`} className="space-y-3 rounded-md border border-slate-300 bg-white p-4">
      <div className="flex flex-wrap items-start justify-between gap-2">
        <div className="min-w-0">
          {showEnvironment && (
            <h3 className="font-semibold">
              <Link to={`/environments/${h.environment_id}/knowledge`} className="text-sky-800 underline">
                <EnvironmentName id={h.environment_id} />
              </Link>
            </h3>
          )}
          <p className="text-sm text-slate-800">
            Handed over from <strong>{from}</strong> to <strong>{to}</strong>{' '}
            <span title={dateTime(h.created_at)}>{timeAgo(h.created_at)}</span>.
          </p>
          <p className="text-sm text-slate-700">
            {from === 'you' ? 'You' : from} {readable ? 'may read it until' : 'could read it until'} {dateTime(h.read_until)}.
          </p>
        </div>
        {isOpen(h) ? <Badge tone="blue">Onboarding</Badge> : <Badge tone="green">Onboarded</Badge>}
      </div>
      {h.note && (
        <blockquote className="border-l-4 border-slate-300 pl-3 text-sm whitespace-pre-wrap text-slate-800">{h.note}</blockquote>
      )}
      <OnboardingChecklist
        handover={h}
        items={h.checklist}
        canTick={canTick}
        onOpenDocument={onOpenDocument}
        label={`Onboarding for ${to}`}
      />
    </article>
  );
}
