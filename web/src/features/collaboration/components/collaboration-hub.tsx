import { ShareList } from './share-list';
import { TemplateList } from './template-list';

/** Shares given and received, and templates. */
export function CollaborationHub() {
  return (
    <div className="space-y-6">
      <div className="grid items-start gap-6 xl:grid-cols-2">
        <ShareList direction="given" />
        <ShareList direction="received" />
      </div>
      <TemplateList />
    </div>
  );
}
