type Props = { size?: 'sm' | 'md'; label?: string };

/** A spinner; with a label it is announced as a status. */
export function Spinner({ size = 'md', label = 'Loading…' }: Props) {
  const dim = size === 'sm' ? 'h-4 w-4' : 'h-6 w-6';
  return (
    <span role={label ? 'status' : undefined} className="inline-flex items-center gap-2 text-slate-700">
      <span aria-hidden="true" className={`${dim} animate-spin rounded-full border-2 border-current border-t-transparent`} />
      {label && <span className="text-sm">{label}</span>}
    </span>
  );
}
