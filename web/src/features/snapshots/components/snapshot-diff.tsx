import { useState } from 'react';
import { Badge, DriftStatusBadge, SeverityBadge, type Tone } from '@/components/ui/badge';
import { Button } from '@/components/ui/button';
import { bytes } from '@/lib/format';
import { describeKind, findingGroup, shortValue, type Finding } from '@/lib/findings';
import type { FileChange, SnapshotDiff } from '../api/get-snapshot-diff';

const th = 'py-2 pr-3';
const FILES_SHOWN = 100;

function FindingsTable({ caption, findings, subject }: { caption: string; findings: Finding[]; subject: string }) {
  return (
    <div className="overflow-x-auto">
      <table className="w-full text-left text-sm">
        <caption className="py-1 text-left font-medium text-slate-900">
          {caption} ({findings.length})
        </caption>
        <thead className="border-b border-slate-300 text-xs uppercase tracking-wide text-slate-800">
          <tr>
            <th scope="col" className={th}>Change</th>
            <th scope="col" className={th}>{subject}</th>
            <th scope="col" className={th}>Before</th>
            <th scope="col" className={th}>After</th>
            <th scope="col" className={th}>Severity</th>
            <th scope="col" className="py-2">Notebooks affected</th>
          </tr>
        </thead>
        <tbody>
          {findings.map((f, i) => (
            <tr key={`${f.kind}-${f.subject}-${i}`} className="border-b border-slate-200 align-top">
              <td className="py-2 pr-3">{describeKind(f)}</td>
              <td className="py-2 pr-3 font-mono text-xs break-all">{f.subject}</td>
              <td className="py-2 pr-3 font-mono text-xs" title={f.before ?? undefined}>
                {shortValue(f.before)}
              </td>
              <td className="py-2 pr-3 font-mono text-xs" title={f.after ?? undefined}>
                {shortValue(f.after)}
              </td>
              <td className="py-2 pr-3">
                <SeverityBadge severity={f.severity} />
              </td>
              <td className="py-2 text-xs">{f.affectedNotebooks.length ? f.affectedNotebooks.join(', ') : '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

const CHANGE: Record<FileChange['change'], [Tone, string]> = {
  added: ['green', 'Added'],
  removed: ['red', 'Removed'],
  changed: ['yellow', 'Changed'],
};

function sizeText(f: FileChange): string {
  if (f.kind === 'dir') return '—';
  if (f.change === 'changed' && f.oldSize !== null && f.oldSize !== f.size) return `${bytes(f.oldSize)} → ${bytes(f.size)}`;
  return bytes(f.size);
}

function FilesTable({ files }: { files: FileChange[] }) {
  const [all, setAll] = useState(false);
  const shown = all ? files : files.slice(0, FILES_SHOWN);
  return (
    <div className="space-y-2">
      <div role="region" aria-label="File changes" tabIndex={0} className="max-h-96 overflow-auto">
        <table className="w-full text-left text-sm">
          <caption className="py-1 text-left font-medium text-slate-900">File changes ({files.length})</caption>
          <thead className="sticky top-0 border-b border-slate-300 bg-white text-xs uppercase tracking-wide text-slate-800">
            <tr>
              <th scope="col" className={th}>Change</th>
              <th scope="col" className={th}>Path</th>
              <th scope="col" className={th}>Layer</th>
              <th scope="col" className={th}>Type</th>
              <th scope="col" className="py-2">Size</th>
            </tr>
          </thead>
          <tbody>
            {shown.map((f, i) => {
              const [tone, label] = CHANGE[f.change];
              return (
                <tr key={`${f.layer}-${f.path}-${i}`} className="border-b border-slate-200 align-top">
                  <td className="py-2 pr-3">
                    <Badge tone={tone}>{label}</Badge>
                    {f.change === 'changed' && !f.contentChanged && f.metadataChanged && (
                      <span className="ml-1 text-xs text-slate-700">(permissions or times only)</span>
                    )}
                  </td>
                  <td className="py-2 pr-3 font-mono text-xs break-all">{f.path}</td>
                  <td className="py-2 pr-3 text-xs">{f.layer}</td>
                  <td className="py-2 pr-3 text-xs">{f.kind}</td>
                  <td className="py-2 text-xs whitespace-nowrap">{sizeText(f)}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
      {files.length > FILES_SHOWN && (
        <Button variant="secondary" onClick={() => setAll((a) => !a)}>
          {all ? `Show the first ${FILES_SHOWN} only` : `Show all ${files.length} file changes`}
        </Button>
      )}
    </div>
  );
}

/** The differences between two snapshots in tables: packages, kernels, the rest, then files. */
export function SnapshotDiffView({ diff, fromLabel, toLabel }: { diff: SnapshotDiff; fromLabel: string; toLabel: string }) {
  const packages = diff.findings.filter((f) => findingGroup(f) === 'packages');
  const kernels = diff.findings.filter((f) => findingGroup(f) === 'kernels');
  const other = diff.findings.filter((f) => findingGroup(f) === 'other');
  const nothing = diff.findings.length === 0 && diff.files.length === 0;
  return (
    <div className="space-y-4" aria-label="Snapshot comparison" role="group">
      <p className="flex flex-wrap items-center gap-2 text-sm text-slate-800">
        <span>
          From <span className="font-medium">{fromLabel}</span> to <span className="font-medium">{toLabel}</span>:
        </span>
        <DriftStatusBadge status={diff.driftStatus} />
        <span>
          {packages.length} package change{packages.length === 1 ? '' : 's'}, {kernels.length} kernel change
          {kernels.length === 1 ? '' : 's'}, {other.length} other change{other.length === 1 ? '' : 's'},{' '}
          {diff.files.length} file change{diff.files.length === 1 ? '' : 's'}.
        </span>
      </p>
      {nothing ? (
        <p className="text-sm text-slate-800">The two snapshots are identical.</p>
      ) : (
        <>
          {packages.length > 0 ? (
            <FindingsTable caption="Package changes" subject="Package" findings={packages} />
          ) : (
            <p className="text-sm text-slate-800">No package changes.</p>
          )}
          {kernels.length > 0 ? (
            <FindingsTable caption="Kernel and extension changes" subject="Kernel or extension" findings={kernels} />
          ) : (
            <p className="text-sm text-slate-800">No kernel changes.</p>
          )}
          {other.length > 0 && (
            <FindingsTable caption="Notebooks, data and configuration" subject="Path" findings={other} />
          )}
          {diff.files.length > 0 ? <FilesTable files={diff.files} /> : <p className="text-sm text-slate-800">No file changes.</p>}
        </>
      )}
    </div>
  );
}
