type Props = {
  /** 0–1; undefined: indeterminate. */
  value: number | undefined;
  label: string;
  message?: string;
  tone?: 'normal' | 'success' | 'error';
};

/** A labelled progress bar; the message is announced as it changes. */
export function Progress({ value, label, message, tone = 'normal' }: Props) {
  const pct = value === undefined ? undefined : Math.round(Math.min(1, Math.max(0, value)) * 100);
  const bar = tone === 'error' ? 'bg-red-600' : tone === 'success' ? 'bg-emerald-600' : 'bg-sky-600';
  return (
    <div className="space-y-1">
      <div className="flex justify-between text-sm text-slate-800">
        <span>{label}</span>
        {pct !== undefined && <span aria-hidden="true">{pct}%</span>}
      </div>
      <div
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={100}
        aria-valuenow={pct}
        className="h-2 w-full overflow-hidden rounded-full bg-slate-200"
      >
        <div
          className={`h-full ${bar} transition-[width] duration-300 ${pct === undefined ? 'w-1/3 animate-pulse' : ''}`}
          style={pct === undefined ? undefined : { width: `${pct}%` }}
        />
      </div>
      {message && (
        <p className="text-sm text-slate-700" aria-live="polite">
          {message}
        </p>
      )}
    </div>
  );
}
