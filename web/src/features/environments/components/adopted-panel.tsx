import { useId, useRef, useState } from 'react';
import { Button } from '@/components/ui/button';
import { ConfirmDialog } from '@/components/ui/dialog';
import { ErrorMessage } from '@/components/ui/error-message';
import { inputClass } from '@/components/ui/field';
import { dateTime, timeAgo } from '@/lib/format';
import type { Environment } from '../api/get-environment';
import { useIssueAgentCredential, type AgentTokenResponse } from '../api/issue-agent-credential';
import { useRevokeAgentCredential } from '../api/revoke-agent-credential';

type Adopted = NonNullable<Environment['adopted']>;

/**
 * The new token, shown this once (the platform keeps only its hash): copy it
 * now, then dismiss. Leaving the page drops it too.
 */
function NewToken({ token, host, environmentId, onDone }: { token: AgentTokenResponse; host: string; environmentId: string; onDone: () => void }) {
  const inputId = useId();
  const input = useRef<HTMLInputElement>(null);
  const [copied, setCopied] = useState<'yes' | 'failed' | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(token.agent_token);
      setCopied('yes');
    } catch {
      // No clipboard (an insecure origin, a denied permission): select it for Ctrl+C instead.
      input.current?.select();
      setCopied('failed');
    }
  };
  return (
    <div className="space-y-2 rounded-md border border-amber-300 bg-amber-50 p-3 text-sm text-amber-950" data-testid="new-agent-token">
      <p className="font-semibold">New agent credential: it is shown only this once. Copy it now.</p>
      <label htmlFor={inputId} className="sr-only">
        New agent token
      </label>
      <div className="flex flex-wrap gap-2">
        <input
          ref={input}
          id={inputId}
          readOnly
          value={token.agent_token}
          onFocus={(e) => e.currentTarget.select()}
          className={`${inputClass} min-w-0 flex-1 font-mono text-xs`}
        />
        <Button variant="secondary" onClick={() => void copy()}>
          {copied === 'yes' ? 'Copied' : 'Copy'}
        </Button>
      </div>
      <p role="status">
        {copied === 'yes'
          ? 'Copied to the clipboard.'
          : copied === 'failed'
            ? 'The browser would not copy it: the token is selected, copy it with Ctrl+C (⌘C).'
            : ''}
      </p>
      <p>
        Put it in the agent’s state file on {host} (<code className="font-mono">agent_token</code> in{' '}
        <code className="font-mono break-all">~/.config/westtek/agents/{environmentId}.json</code>) and restart the agent,
        or adopt the environment again there with <code className="font-mono">westtek agent adopt</code>.
      </p>
      <Button variant="secondary" onClick={onDone}>
        I have copied it
      </Button>
    </div>
  );
}

type Props = {
  env: Environment;
  /** Where it lives: the environment's `adopted`. */
  adopted: Adopted;
  /** The environment's researcher and lab admins may issue and revoke its agent's credential. */
  canManage: boolean;
};

/**
 * Where an adopted environment lives (a lab machine), and its agent's
 * credential: issue a new one (the old one stops at once) or revoke it.
 */
export function AdoptedPanel({ env, adopted, canManage }: Props) {
  const { host, venv_path, notebooks_path } = adopted;
  const credential = env.agent_credential;
  const issue = useIssueAgentCredential();
  const revoke = useRevokeAgentCredential();
  const [confirming, setConfirming] = useState<'issue' | 'revoke' | null>(null);

  const open = (a: 'issue' | 'revoke') => {
    issue.reset();
    revoke.reset();
    setConfirming(a);
  };
  const close = { onSuccess: () => setConfirming(null) };
  const busy = issue.isPending || revoke.isPending;

  return (
    <section aria-labelledby="adopted-heading" className="space-y-3 rounded-md border border-slate-300 bg-white p-4">
      <h2 id="adopted-heading" className="text-lg font-semibold">
        Adopted from {host}
      </h2>
      <p className="text-sm text-slate-800">
        This environment lives on the lab machine {host}. Its agent there reports drift and takes snapshots into the
        lab’s vault; its Jupyter is the researcher’s own, run on that machine. To run it on the platform, restore one of
        its snapshots into a new environment.
      </p>
      <dl className="grid grid-cols-[auto_1fr] gap-x-4 gap-y-1 text-sm">
        <dt className="text-slate-700">Host</dt>
        <dd>{host}</dd>
        <dt className="text-slate-700">Venv</dt>
        <dd className="font-mono text-xs break-all">{venv_path}</dd>
        <dt className="text-slate-700">Notebooks</dt>
        <dd className="font-mono text-xs break-all">{notebooks_path}</dd>
        <dt className="text-slate-700">Agent credential</dt>
        <dd>
          {credential ? (
            <>
              <span className="font-mono text-xs">{credential.id}</span>, issued{' '}
              <time dateTime={credential.issued_at} title={timeAgo(credential.issued_at)}>
                {dateTime(credential.issued_at)}
              </time>
            </>
          ) : (
            <span className="text-amber-900">No agent credential: its agent is not heard.</span>
          )}
        </dd>
      </dl>
      {canManage && (
        <div className="flex flex-wrap gap-2">
          <Button variant="secondary" onClick={() => open('issue')} disabled={busy}>
            Issue new agent credential
          </Button>
          {credential && (
            <Button variant="danger" onClick={() => open('revoke')} disabled={busy}>
              Revoke agent credential
            </Button>
          )}
        </div>
      )}
      {confirming === null && (issue.error ?? revoke.error) ? <ErrorMessage error={issue.error ?? revoke.error} /> : null}
      {issue.data && (
        <NewToken token={issue.data} host={host} environmentId={env.id} onDone={() => issue.reset()} />
      )}
      {confirming === 'issue' && (
        <ConfirmDialog
          title="Issue a new agent credential?"
          confirmLabel="Issue new credential"
          busy={issue.isPending}
          error={issue.error}
          onConfirm={() => issue.mutate(env.id, close)}
          onCancel={() => setConfirming(null)}
        >
          {credential ? (
            <p>
              The present credential stops working at once: the agent on {host} is not heard until it has the new one.
            </p>
          ) : (
            <p>The agent on {host} is heard again once it has the new credential.</p>
          )}
          <p>The new token is shown once, here; copy it to the agent’s state file on {host}.</p>
        </ConfirmDialog>
      )}
      {confirming === 'revoke' && (
        <ConfirmDialog
          title="Revoke the agent credential?"
          confirmLabel="Revoke"
          busy={revoke.isPending}
          error={revoke.error}
          onConfirm={() => revoke.mutate(env.id, close)}
          onCancel={() => setConfirming(null)}
        >
          <p>
            The agent on {host} stops being heard at once: no drift reports and no snapshots from it until a new credential
            is issued. Nothing on {host} is changed.
          </p>
        </ConfirmDialog>
      )}
    </section>
  );
}

