import { useSandbox } from '../api/get-sandbox';

/**
 * A red banner for IT admins when researcher code is not confined on this
 * host: started with --insecure-no-sandbox, or the host cannot sandbox (then
 * Jupyter launches are refused). Nothing when the sandbox is enforced.
 */
export function SandboxBanner({ itAdmin }: { itAdmin: boolean }) {
  const sandbox = useSandbox(itAdmin);
  if (!itAdmin || !sandbox.data || sandbox.data.mode === 'enforced') return null;
  const disabled = sandbox.data.mode === 'disabled';
  return (
    <div role="alert" className="bg-red-700 px-4 py-2 text-sm text-white">
      <div className="mx-auto max-w-7xl">
        <strong>{disabled ? 'Notebooks are not sandboxed.' : 'Notebooks cannot be launched: no sandbox on this host.'}</strong>{' '}
        {disabled
          ? 'The platform was started with --insecure-no-sandbox: code in any notebook runs as the platform itself and can read its keys and every lab’s files.'
          : sandbox.data.detail ?? ''}
      </div>
    </div>
  );
}
