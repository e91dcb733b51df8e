import type { ReactNode } from 'react';

export type Tone = 'green' | 'yellow' | 'red' | 'blue' | 'gray';

const TONES: Record<Tone, string> = {
  green: 'bg-emerald-100 text-emerald-900 ring-emerald-300',
  yellow: 'bg-amber-100 text-amber-900 ring-amber-300',
  red: 'bg-red-100 text-red-900 ring-red-300',
  blue: 'bg-sky-100 text-sky-900 ring-sky-300',
  gray: 'bg-slate-100 text-slate-800 ring-slate-300',
};

export function Badge({ tone, children, title }: { tone: Tone; children: ReactNode; title?: string }) {
  return (
    <span
      title={title}
      className={`inline-flex items-center rounded-full px-2 py-0.5 text-xs font-medium ring-1 ring-inset ${TONES[tone]}`}
    >
      {children}
    </span>
  );
}

/** The platform's status words as badges, in words people use. */
export function EnvStatusBadge({ status }: { status: string }) {
  const map: Record<string, [Tone, string]> = {
    provisioning: ['blue', 'Building'],
    ready: ['green', 'Ready'],
    deleting: ['gray', 'Deleting'],
    failed: ['red', 'Failed'],
  };
  const [tone, label] = map[status] ?? ['gray', status];
  return <Badge tone={tone}>{label}</Badge>;
}

export function JupyterStatusBadge({ status }: { status: string }) {
  const map: Record<string, [Tone, string]> = {
    running: ['green', 'Running'],
    starting: ['blue', 'Starting'],
    stopped: ['gray', 'Stopped'],
  };
  const [tone, label] = map[status] ?? ['gray', status];
  return <Badge tone={tone}>{label}</Badge>;
}

export function DriftStatusBadge({ status }: { status: string }) {
  const map: Record<string, [Tone, string]> = {
    STABLE: ['green', 'Stable'],
    MINOR_DRIFT: ['yellow', 'Minor drift'],
    CRITICAL_DRIFT: ['red', 'Critical drift'],
  };
  const [tone, label] = map[status] ?? ['gray', status];
  return <Badge tone={tone}>{label}</Badge>;
}

export function SeverityBadge({ severity }: { severity: string | null | undefined }) {
  const map: Record<string, [Tone, string]> = {
    CRITICAL: ['red', 'Critical'],
    MINOR: ['yellow', 'Minor'],
    INFO: ['blue', 'Info'],
  };
  const [tone, label] = map[severity ?? ''] ?? ['green', 'Back to baseline'];
  return <Badge tone={tone}>{label}</Badge>;
}
