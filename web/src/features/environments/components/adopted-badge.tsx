import { Badge } from '@/components/ui/badge';

/** Marks an environment adopted from a lab machine, with that machine's name. */
export function AdoptedBadge({ host }: { host: string }) {
  return (
    <Badge tone="blue" title={`Adopted from ${host}: its files and its Jupyter stay on that machine; its agent reports drift and takes snapshots`}>
      Adopted · {host}
    </Badge>
  );
}
