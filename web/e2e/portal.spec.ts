/**
 * The portal against a real platform: sign-in, an environment built for real
 * with uv, JupyterLab through the gateway, a snapshot, and a live drift alert.
 * The tests after sign-in share one signed-in browser context, in order.
 */
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectAccessible, screenshot, server } from './support';

test.describe.configure({ mode: 'serial' });

let context: BrowserContext;
let page: Page;
let environmentId = '';
const ENV_NAME = 'e2e-analysis';

test.beforeAll(async ({ browser }) => {
  context = await browser.newContext();
  page = await context.newPage();
});

test.afterAll(async () => {
  await context.close();
});

test('the sign-in page explains a bad link in plain words and accepts a pasted one', async ({ browser }) => {
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  await p.goto(`${server.url}/`);
  await expect(p).toHaveURL(/\/sign-in$/);
  await expect(p.getByRole('heading', { name: 'Sign in to West Tek' })).toBeVisible();
  await expectAccessible(p, 'sign-in page');
  await screenshot(p, '01-sign-in');

  await p.getByLabel('Sign-in link or token').fill(`${server.url}/api/auth/login?token=not-a-real-token`);
  await p.getByRole('button', { name: 'Sign in', exact: true }).click();
  const alert = p.getByRole('alert');
  await expect(alert).toContainText('Please sign in');
  await expect(alert).toContainText('This sign-in link is invalid, used or expired; ask an admin for a new one.');
  await expectAccessible(p, 'sign-in page with an error');
  await screenshot(p, '02-sign-in-bad-link');

  await p.getByLabel('Sign-in link or token').fill(server.signInLink('admin'));
  await p.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expect(p.getByRole('heading', { level: 1, name: 'Environments' })).toBeVisible();
  await ctx.close();
});

test("the platform's sign-in link page signs the browser in with cookies", async ({ browser }) => {
  // The link page is served with `Referrer-Policy: same-origin`, so Chromium's form POST carries the
  // real Origin (with `no-referrer` it sent `Origin: null` and the platform refused it).
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  try {
    await p.goto(server.signInLink('admin'));
    await expectAccessible(p, "the platform's sign-in link page");
    await screenshot(p, '03-platform-link-page');
    await p.getByRole('button', { name: 'Sign in' }).click();
    await p.waitForLoadState();
    await screenshot(p, '03b-platform-link-page-after-submit');
    await expect(p).toHaveURL(`${server.url}/`, { timeout: 5_000 });
    await expect(p.getByRole('heading', { level: 1, name: 'Environments' })).toBeVisible();
  } finally {
    await ctx.close();
  }
});

test('signs in with the first-run link and lands on an empty dashboard', async () => {
  await page.goto(`${server.url}/`);
  await expect(page).toHaveURL(/\/sign-in$/);
  await page.getByLabel('Sign-in link or token').fill(server.firstRunLink);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();

  await expect(page).toHaveURL(`${server.url}/`);
  await expect(page.getByRole('heading', { level: 1, name: 'Environments' })).toBeVisible();
  await expect(page.getByText('No environments yet.')).toBeVisible();
  await expect(page.getByText('admin (IT admin)')).toBeVisible();
  await expect(page.getByText('Live alerts on')).toBeVisible();
  // The session is the HttpOnly cookies set by the token exchange; no token is kept where script can read it.
  expect(await page.evaluate(() => document.cookie)).toBe('');
  expect((await context.cookies()).map((c) => [c.name, c.httpOnly])).toEqual(
    expect.arrayContaining([
      ['westtek_access', true],
      ['westtek_refresh', true],
    ]),
  );
  await expectAccessible(page, 'empty dashboard');
  await screenshot(page, '04-dashboard-empty');
});

test('creates an environment with no extra packages and watches it build until ready', async () => {
  await page.getByRole('button', { name: 'New environment' }).click();
  const form = page.getByRole('form', { name: 'New environment' });
  // Mistakes are caught before anything is sent.
  await form.getByLabel('Name', { exact: true }).fill('not ok!');
  await form.getByLabel('Packages').fill('numpy[all]');
  await form.getByRole('button', { name: 'Create environment' }).click();
  await expect(form.getByText('Use letters, digits, “-”, “_” and “.” only')).toBeVisible();
  await expect(form.getByText('no extras, URLs or paths')).toBeVisible();
  await expect(form.getByLabel('Name', { exact: true })).toBeFocused();
  await expectAccessible(page, 'create form with errors');
  await screenshot(page, '05-create-validation');

  await form.getByLabel('Name', { exact: true }).fill(ENV_NAME);
  await form.getByLabel('Packages').fill('');
  await form.getByLabel('Experiment id').fill('EXP-42');
  await form.getByRole('button', { name: 'Create environment' }).click();
  await expect(page.getByRole('heading', { name: `Building “${ENV_NAME}”` })).toBeVisible();
  const bar = page.getByRole('progressbar', { name: 'Building environment' });
  await expect(bar).toBeVisible();
  // The new environment is listed at once, still building.
  await expect(page.getByRole('row').filter({ hasText: ENV_NAME }).getByText('Building')).toBeVisible();
  await expectAccessible(page, 'dashboard while building');
  await screenshot(page, '06-building');

  await expect(page.getByText('Building environment: done.')).toBeVisible({ timeout: 8 * 60_000 });
  await expect(bar).toHaveAttribute('aria-valuenow', '100');
  await expect(page.getByRole('row').filter({ hasText: ENV_NAME }).getByText('Ready')).toBeVisible();
  await screenshot(page, '07-built');

  await page.getByRole('link', { name: 'Open the environment' }).click();
  await expect(page.getByRole('heading', { level: 1, name: ENV_NAME })).toBeVisible();
  environmentId = /\/environments\/([^/?#]+)/.exec(page.url())![1]!;
  const overview = page.getByRole('region', { name: 'Overview' });
  await expect(overview.getByText('Ready')).toBeVisible();
  await expect(overview.getByText('EXP-42')).toBeVisible();
  await expect(page.getByText('No snapshots yet.')).toBeVisible();
  await expect(page.getByText('Not watched for drift yet.')).toBeVisible();
  await expectAccessible(page, 'environment page');
  await screenshot(page, '08-environment');
});

test('launches JupyterLab and opens it through the gateway in a new tab', async () => {
  await page.getByRole('button', { name: 'Launch Jupyter' }).click();
  const open = page.getByRole('link', { name: /Open JupyterLab/ });
  await expect(open).toBeVisible({ timeout: 90_000 });
  await expect(open).toHaveAttribute('target', '_blank');
  await expectAccessible(page, 'environment page with Jupyter running');
  await screenshot(page, '09-jupyter-running');

  const [lab] = await Promise.all([context.waitForEvent('page'), open.click()]);
  await lab.waitForLoadState('domcontentloaded');
  expect(lab.url()).toContain(`/jupyter/${environmentId}/`);
  // JupyterLab's launcher renders once its JavaScript and the kernel specs have loaded through the gateway.
  await expect(lab.locator('.jp-LauncherCard').first()).toBeVisible({ timeout: 90_000 });
  await screenshot(lab, '10-jupyterlab');
  await lab.close();

  await page.getByRole('button', { name: 'Stop Jupyter' }).click();
  await expect(page.getByRole('button', { name: 'Launch Jupyter' })).toBeVisible({ timeout: 30_000 });
});

test('takes a snapshot and watches its progress complete', async () => {
  await page.getByLabel('Notes for a new snapshot (optional)').fill('baseline from the e2e test');
  await page.getByRole('button', { name: 'Take snapshot' }).click();
  const bar = page.getByRole('progressbar', { name: 'Taking snapshot' });
  await expect(bar).toBeVisible();
  await screenshot(page, '11-snapshot-progress');

  await expect(page.getByText('Taking snapshot: done.')).toBeVisible({ timeout: 5 * 60_000 });
  await expect(bar).toHaveAttribute('aria-valuenow', '100');
  const snapshots = page.getByRole('table', { name: 'Snapshots, newest first' });
  const row = snapshots.getByRole('row').filter({ hasText: 'baseline from the e2e test' });
  await expect(row.getByText('Complete')).toBeVisible();
  // The snapshot is the drift baseline now.
  await expect(page.getByText(/Compared with snapshot/)).toBeVisible();
  await expect(page.getByText('Nothing differs from the baseline.')).toBeVisible();
  await expectAccessible(page, 'environment page with a snapshot');
  await screenshot(page, '12-snapshot-done');
});

test('shows a drift alert live, without reloading, when a notebook appears', async () => {
  await expect(page.getByText('Watched live.')).toBeVisible({ timeout: 30_000 });
  const notebook = {
    cells: [{ cell_type: 'code', source: ['import json\n'], metadata: {}, outputs: [], execution_count: null }],
    metadata: {},
    nbformat: 4,
    nbformat_minor: 5,
  };
  writeFileSync(join(server.dataDir, 'envs', environmentId, 'home', 'drift-probe.ipynb'), JSON.stringify(notebook));

  const toast = page.getByRole('status').filter({ hasText: 'Notebooks or data changed' });
  await expect(toast).toBeVisible({ timeout: 60_000 });
  await expect(toast).toContainText('drift-probe.ipynb');
  // The panel's event list and findings update in place too.
  const drift = page.getByRole('region', { name: 'Drift' });
  await expect(drift.getByRole('list', { name: 'Drift events, newest first' }).getByText('Info')).toBeVisible();
  await expect(drift.getByText('drift-probe.ipynb').first()).toBeVisible();
  await expectAccessible(page, 'environment page with a drift alert');
  await screenshot(page, '13-drift-alert');

  await toast.getByRole('button', { name: 'Dismiss' }).click();
  await page.getByRole('link', { name: '← All environments' }).click();
  await expect(page.getByRole('region', { name: 'Drift alerts' }).getByText(ENV_NAME)).toBeVisible();
  await expectAccessible(page, 'dashboard with an environment');
  await screenshot(page, '14-dashboard');
});

/** Dismisses the live alert toasts, so screenshots show the page under them. */
async function dismissToasts() {
  const dismiss = page.getByRole('button', { name: 'Dismiss' });
  while ((await dismiss.count()) > 0) await dismiss.first().click();
}

test('accepts drift, rolls a change back and pins the baseline, each after asking', async () => {
  await page.goto(`${server.url}/environments/${environmentId}`);
  const drift = page.getByRole('region', { name: 'Drift' });
  // The notebook from the previous test is still a finding.
  await expect(drift.getByRole('table').getByRole('cell', { name: 'home/drift-probe.ipynb' }).first()).toBeVisible();
  await expect(drift.getByTestId('drift-timeline')).toBeVisible();
  await expect(drift.getByRole('img', { name: /Drift events by severity over time/ })).toHaveAccessibleName(/[1-9]\d* info/);

  // Accept: asks first, then snapshots the present state as the new baseline.
  await drift.getByRole('button', { name: 'Accept changes' }).click();
  const acceptDialog = page.getByRole('dialog', { name: 'Accept the changes?' });
  await expect(acceptDialog).toBeVisible();
  await expect(acceptDialog.getByRole('button', { name: 'Cancel' })).toBeFocused();
  await expectAccessible(page, 'accept drift confirmation');
  await screenshot(page, '15-drift-accept-confirm');
  await acceptDialog.getByRole('button', { name: 'Accept and snapshot' }).click();
  await expect(acceptDialog).toBeHidden();
  await expect(drift.getByText('Accepting changes: done.')).toBeVisible({ timeout: 5 * 60_000 });
  await expect(drift.getByText('Nothing differs from the baseline.')).toBeVisible({ timeout: 60_000 });
  await expect(drift.getByRole('button', { name: 'Roll back to baseline' })).toBeDisabled();

  // A new change, then roll it back: the file is gone again.
  const probe = join(server.dataDir, 'envs', environmentId, 'home', 'rollback-probe.ipynb');
  writeFileSync(probe, JSON.stringify({ cells: [], metadata: {}, nbformat: 4, nbformat_minor: 5 }));
  await expect(drift.getByRole('table').getByRole('cell', { name: 'home/rollback-probe.ipynb' }).first()).toBeVisible({ timeout: 60_000 });
  await drift.getByRole('button', { name: 'Roll back to baseline' }).click();
  const rollbackDialog = page.getByRole('dialog', { name: 'Roll back to the baseline?' });
  await expect(rollbackDialog).toContainText('The present state is snapshotted first');
  await rollbackDialog.getByRole('button', { name: 'Roll back', exact: true }).click();
  await expect(drift.getByText('Rolling back: done.')).toBeVisible({ timeout: 5 * 60_000 });
  await expect(drift.getByText('Nothing differs from the baseline.')).toBeVisible({ timeout: 60_000 });
  expect(existsSync(probe)).toBe(false);

  // Pin the baseline, then unpin it.
  await drift.getByRole('button', { name: 'Pin baseline' }).click();
  await page.getByRole('dialog', { name: 'Pin the baseline?' }).getByRole('button', { name: 'Pin', exact: true }).click();
  await expect(drift.getByText(/\(pinned baseline\)/)).toBeVisible();
  await expectAccessible(page, 'environment page after accept, rollback and pin');
  await dismissToasts();
  await screenshot(page, '16-drift-after-rollback-and-pin');
  await drift.getByRole('button', { name: 'Unpin baseline' }).click();
  await page.getByRole('dialog', { name: 'Unpin the baseline?' }).getByRole('button', { name: 'Unpin', exact: true }).click();
  await expect(drift.getByText(/\(the latest snapshot\)/)).toBeVisible();
});

test('compares two snapshots and runs a restore drill', async () => {
  const snapshots = page.getByRole('region', { name: 'Snapshots' });
  const from = snapshots.getByLabel('From (older)');
  const baseline = await from.locator('option', { hasText: 'baseline from the e2e test' }).getAttribute('value');
  expect(baseline).toBeTruthy();
  await from.selectOption(baseline ?? '');
  await snapshots.getByRole('button', { name: 'Compare' }).click();
  const comparison = snapshots.getByRole('group', { name: 'Snapshot comparison' });
  await expect(comparison).toBeVisible({ timeout: 60_000 });
  // From the first snapshot to the newest (the one the rollback took of the state it undid): both notebooks were added.
  const notebooks = comparison.getByRole('table', { name: /Notebooks, data and configuration/ });
  await expect(notebooks.getByRole('row').filter({ hasText: 'home/drift-probe.ipynb' })).toContainText('Notebook added');
  await expect(comparison.getByText('No package changes.')).toBeVisible();
  const files = comparison.getByRole('table', { name: /File changes/ });
  await expect(files.getByRole('row').filter({ hasText: 'drift-probe.ipynb' }).first()).toContainText('Added');
  await expect(notebooks.getByRole('row').filter({ hasText: 'home/rollback-probe.ipynb' })).toContainText('Notebook added');
  await expectAccessible(page, 'snapshot comparison');
  await dismissToasts();
  await screenshot(page, '17-snapshot-diff');

  const row = snapshots.getByRole('table', { name: 'Snapshots, newest first' }).getByRole('row').filter({ hasText: 'baseline from the e2e test' });
  await row.getByRole('button', { name: /^Details/ }).click();
  const details = snapshots.getByRole('region', { name: /^Snapshot [0-9a-f]{8}/ });
  await expect(details).toContainText('baseline from the e2e test');
  await expect(details.getByText('This snapshot has not been drilled yet.')).toBeVisible();
  await details.getByRole('button', { name: 'Run restore drill' }).click();
  await expect(details.getByText('Restore drill: done.')).toBeVisible({ timeout: 5 * 60_000 });
  const result = details.getByTestId('drill-result');
  await expect(result).toContainText('The last drill passed', { timeout: 30_000 });
  await expect(row.getByText('Drill passed')).toBeVisible();
  await expectAccessible(page, 'snapshot details with a drill result');
  await dismissToasts();
  await screenshot(page, '18-snapshot-drill');
});

test('the Drift Analyzer answers in the chat panel, with citations to follow', async () => {
  await page.getByRole('button', { name: 'Ask an agent' }).click();
  const panel = page.getByRole('complementary', { name: 'Ask an agent' });
  await expect(panel.getByRole('radio', { name: 'Drift Analyzer' })).toBeChecked();
  await expect(panel.getByLabel('Your question')).toBeFocused();
  await panel.getByLabel('Your question').fill('What changed since the baseline?');
  await panel.getByLabel('Your question').press('Enter');
  const answer = panel.getByTestId('agent-answer').last();
  const footnote = answer.getByRole('button', { name: /^Source 1: / });
  await expect(footnote).toBeVisible({ timeout: 60_000 });
  await expect(answer).toContainText(ENV_NAME);
  await expect(panel.getByText('Follow-up questions keep the context.')).toBeVisible();
  await footnote.click();
  const note = answer.locator('[data-footnote="1"]');
  await expect(note).toBeFocused();
  // A snapshot or configuration source: its title and id are shown.
  await expect(note).toContainText(/Snapshot|Configuration|Drift event/);
  await expect(note).toContainText(/[0-9a-f]{8}-[0-9a-f]{4}-/);
  await expectAccessible(page, 'environment page with the agent chat');
  await dismissToasts();
  await screenshot(page, '19-agent-chat');

  // The Knowledge Transfer agent: a cited answer whose source opens with the cited passage highlighted.
  await panel.getByRole('radio', { name: 'Knowledge Transfer' }).check();
  await panel.getByLabel('Your question').fill('How do I get started with this environment?');
  await panel.getByRole('button', { name: 'Send' }).click();
  const second = panel.getByTestId('agent-answer').last();
  await expect(second).toContainText('To get started:', { timeout: 60_000 });
  await expect(second).toContainText(`Launch Jupyter for ${ENV_NAME}`);
  const cite = second.getByRole('button', { name: /^Source 1: Summary of / }).first();
  await cite.click();
  const drawer = page.getByRole('dialog', { name: `Summary of ${ENV_NAME}` });
  await expect(drawer).toBeVisible();
  await expect(drawer.getByText(`environment-docs/`, { exact: false }).first()).toBeVisible();
  const mark = drawer.locator('mark');
  await expect(mark).toBeVisible();
  await expect(mark).not.toHaveText('');
  await expectAccessible(page, 'a cited knowledge document');
  await screenshot(page, '19b-knowledge-citation');
  await page.keyboard.press('Escape');
  await expect(drawer).toBeHidden();
  await panel.getByRole('button', { name: 'Close', exact: true }).click();
  await expect(panel).toBeHidden();
});

test('an IT admin sees every lab, storage over time and the verified audit log', async () => {
  execFileSync(server.bin, ['admin', 'lab', 'create', 'e2e-second', '--display-name', 'Second lab', '--max-environments', '5'], {
    env: { ...process.env, WESTTEK_DATA_DIR: server.dataDir },
  });
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'IT admin' }).click();
  await expect(page).toHaveURL(`${server.url}/admin`);
  await expect(page.getByRole('heading', { level: 1, name: 'IT admin' })).toBeVisible();

  const labs = page.getByRole('table', { name: 'Labs at a glance' });
  const mine = labs.getByRole('row').filter({ has: page.getByRole('rowheader', { name: /my-lab/ }) });
  // The e2e environment; accept and rollback made snapshots.
  await expect(mine).toContainText('1 of 50');
  await expect(mine).toContainText('1 stable, 0 minor drift, 0 critical drift');
  const second = labs.getByRole('row').filter({ has: page.getByRole('rowheader', { name: /Second lab/ }) });
  await expect(second).toContainText('0 of 5');
  await expect(second).toContainText('0 B (no limit)');

  const chart = page.getByTestId('storage-chart');
  await expect(chart).toHaveAccessibleName(/my-lab: .* stored by [3-9] snapshots/);
  expect(await chart.locator('circle').count()).toBeGreaterThanOrEqual(3);

  const verify = page.getByTestId('audit-verify');
  await expect(verify).toContainText('Audit chain verified');
  await expect(verify).toContainText(/All \d+ entries are intact/);
  const log = page.getByRole('table', { name: 'Audit entries, newest first' });
  await expect(log.getByText('snapshot.drill').first()).toBeVisible();

  await page.getByLabel('Action', { exact: true }).fill('lab.create');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await expect(page.getByText(/^Entries 1–\d+ of \d+$/)).toBeVisible();
  await expect(log.getByRole('row').nth(1)).toContainText('lab.create');
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export' }).click()]);
  expect(download.suggestedFilename()).toBe('westtek-audit.csv');
  await expectAccessible(page, 'IT-admin dashboard');
  await screenshot(page, '21-admin-dashboard');
});

/** A `yyyy-mm-dd` date `days` from today, for date inputs. */
function dateFromNow(days: number): string {
  const d = new Date();
  d.setDate(d.getDate() + days);
  const pad = (n: number) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

test('the knowledge transfer page shows the summary and checklist, syncs, and downloads the package', async () => {
  await page.goto(`${server.url}/environments/${environmentId}`);
  await page.getByRole('link', { name: 'Knowledge transfer', exact: true }).click();
  await expect(page).toHaveURL(`${server.url}/environments/${environmentId}/knowledge`);
  await expect(page.getByRole('heading', { level: 1, name: `Knowledge transfer: ${ENV_NAME}` })).toBeVisible();
  // The summary Markdown is rendered as headings and lists, not shown raw.
  const summary = page.getByRole('region', { name: 'Generated summary' });
  await expect(summary.getByRole('heading', { name: `Environment summary: ${ENV_NAME}` })).toBeVisible({ timeout: 60_000 });
  await expect(summary.getByRole('heading', { name: 'Notebooks (run in this order)' })).toBeVisible();
  await expect(summary).not.toContainText('## ');
  await expect(page.getByRole('list', { name: 'Notebooks in run order' })).toContainText('drift-probe.ipynb');
  const checklist = page.getByRole('list', { name: 'Checklist preview' });
  await expect(checklist).toContainText(`Launch Jupyter for ${ENV_NAME}`);
  await expect(page.getByText('Not handed over yet.')).toBeVisible();

  await page.getByRole('button', { name: 'Sync now' }).click();
  const synced = page.getByRole('status').filter({ hasText: 'Knowledge synced' });
  await expect(synced).toBeVisible({ timeout: 60_000 });
  await expect(synced).toContainText(/\d+ documents? written/);

  const [download] = await Promise.all([
    page.waitForEvent('download'),
    page.getByRole('button', { name: 'Download package (.zip)' }).click(),
  ]);
  expect(download.suggestedFilename()).toBe(`transfer-${ENV_NAME}.zip`);
  expect(readFileSync(await download.path()).subarray(0, 2).toString('latin1')).toBe('PK');

  // A checklist step's source opens in the document drawer.
  await checklist.getByRole('button', { name: /^Open source of .Launch Jupyter/ }).click();
  const drawer = page.getByRole('dialog');
  await expect(drawer.getByRole('region', { name: 'Document text' })).toContainText(`Environment summary: ${ENV_NAME}`);
  await expectAccessible(page, 'a checklist source in the drawer');
  await page.keyboard.press('Escape');
  await expect(drawer).toBeHidden();
  await expectAccessible(page, 'knowledge transfer page');
  await dismissToasts();
  await screenshot(page, '22-knowledge-transfer');
});

test('shares the environment with another lab, sees it in "Shares given", revokes it, and publishes a template', async () => {
  await page.goto(`${server.url}/environments/${environmentId}`);
  await page.getByRole('button', { name: /^Share…/ }).click();
  const dialog = page.getByRole('dialog', { name: `Share “${ENV_NAME}”` });
  await expect(dialog.getByLabel('Lab to share with')).toBeFocused();
  // Mistakes are caught before anything is sent.
  await dialog.getByRole('button', { name: 'Share', exact: true }).click();
  await expect(dialog.getByText('Name the lab to share with')).toBeVisible();
  await expect(dialog.getByLabel('Lab to share with')).toBeFocused();
  await dialog.getByLabel('Lab to share with').fill('e2e-second');
  await dialog.getByRole('radio', { name: /Read and clone/ }).check();
  await dialog.getByLabel('Expires (optional)').fill(dateFromNow(7));
  await expectAccessible(page, 'share dialog');
  await screenshot(page, '23-share-dialog');
  await dialog.getByRole('button', { name: 'Share', exact: true }).click();
  await expect(dialog.getByRole('status')).toContainText(/Shared with .+: read and clone, until /);
  await dialog.getByRole('button', { name: 'Done' }).click();
  await expect(dialog).toBeHidden();

  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Collaboration' }).click();
  await expect(page.getByRole('heading', { level: 1, name: 'Collaboration' })).toBeVisible();
  const given = page.getByRole('list', { name: 'Shares given' });
  const share = given.getByRole('listitem').filter({ hasText: ENV_NAME });
  await expect(share).toContainText('Read and clone');
  await expect(share).toContainText(/Expires in [78] days/);
  await expect(page.getByText('Nothing is shared with your lab.')).toBeVisible();
  await expectAccessible(page, 'collaboration hub with a share');
  await dismissToasts();
  await screenshot(page, '24-collaboration-shares');

  await share.getByRole('button', { name: /^Revoke/ }).click();
  const confirm = page.getByRole('dialog', { name: 'Revoke this share?' });
  await expect(confirm.getByRole('button', { name: 'Cancel' })).toBeFocused();
  await confirm.getByRole('button', { name: 'Revoke', exact: true }).click();
  await expect(confirm).toBeHidden();
  await expect(share).toContainText('Revoked');
  await expect(share.getByRole('button', { name: /^Revoke/ })).toHaveCount(0);

  // Publish the baseline snapshot as a template from its details.
  await page.goto(`${server.url}/environments/${environmentId}`);
  const snapshots = page.getByRole('region', { name: 'Snapshots' });
  const row = snapshots.getByRole('table', { name: 'Snapshots, newest first' }).getByRole('row').filter({ hasText: 'baseline from the e2e test' });
  await row.getByRole('button', { name: /^Details/ }).click();
  await snapshots.getByRole('button', { name: 'Publish as template…' }).click();
  const publish = page.getByRole('dialog', { name: 'Publish as template' });
  await publish.getByLabel('Template name').fill('e2e-template');
  await publish.getByLabel('Description (optional)').fill('The e2e baseline, for new analyses.');
  await publish.getByRole('button', { name: 'Publish', exact: true }).click();
  await expect(publish.getByRole('status')).toContainText('Published “e2e-template”');
  await publish.getByRole('link', { name: 'See your templates' }).click();
  await expect(page).toHaveURL(`${server.url}/collaboration`);
  const template = page.getByRole('list', { name: 'Templates' }).getByRole('listitem').filter({ hasText: 'e2e-template' });
  await expect(template).toContainText('The e2e baseline, for new analyses.');
  await expect(template).toContainText('Your lab’s');
  await expect(template.getByRole('button', { name: /^Clone…/ })).toBeVisible();
  await expectAccessible(page, 'collaboration hub with a template');
  await dismissToasts();
  await screenshot(page, '25-collaboration-templates');
});

test('hands the environment over to a new researcher, who ticks a step of their onboarding checklist', async ({ browser }) => {
  const NEWCOMER = 'e2e-newcomer';
  execFileSync(server.bin, ['admin', 'user', 'create', NEWCOMER, '--lab', 'my-lab', '--role', 'researcher', '--password-stdin'], {
    env: { ...process.env, WESTTEK_DATA_DIR: server.dataDir },
    input: 'e2e-newcomer-password-1234\n',
  });
  await page.goto(`${server.url}/environments/${environmentId}/knowledge`);
  const form = page.getByRole('form', { name: 'Hand over' });
  await form.getByRole('button', { name: 'Hand over…' }).click();
  await expect(form.getByText('Pick the researcher who takes the environment over.')).toBeVisible();
  await form.getByLabel('New researcher', { exact: true }).selectOption({ label: NEWCOMER });
  await expect(form.getByLabel('Previous owner may read until')).toHaveValue(dateFromNow(30));
  await form.getByLabel('Note for the new researcher (optional)').fill('Run the notebooks in order.');
  await form.getByRole('button', { name: 'Hand over…' }).click();
  const confirm = page.getByRole('dialog', { name: `Hand over “${ENV_NAME}”?` });
  await expect(confirm).toContainText(new RegExp(`Ownership of ${ENV_NAME} moves from .*admin.* to .*${NEWCOMER}.* now\\.`));
  await expect(confirm).toContainText('keeps read-only access until');
  await expectAccessible(page, 'handover confirmation');
  await screenshot(page, '26-handover-confirm');
  await confirm.getByRole('button', { name: 'Hand over', exact: true }).click();
  await expect(confirm).toBeHidden({ timeout: 60_000 });
  const card = page.getByRole('article', { name: new RegExp(`^Handover from you to .*${NEWCOMER}`) });
  await expect(card).toContainText('Run the notebooks in order.');
  await expect(card.getByRole('progressbar')).toHaveAccessibleName(new RegExp(`Onboarding for ${NEWCOMER}: 0 of \\d+ done`));

  // The new researcher signs in in a browser of their own and finds the checklist.
  const ctx = await browser.newContext();
  const p = await ctx.newPage();
  try {
    await p.goto(server.signInLink(NEWCOMER));
    await p.getByRole('button', { name: 'Sign in' }).click();
    await expect(p.getByRole('heading', { level: 1, name: 'Environments' })).toBeVisible();
    const open = p.getByRole('region', { name: /Onboarding: 1 environment handed over to you/ });
    await expect(open).toContainText(ENV_NAME);
    await open.getByRole('link', { name: 'Open your checklists' }).click();
    await expect(p.getByRole('heading', { level: 1, name: 'Onboarding' })).toBeVisible();
    const mine = p.getByRole('article', { name: /^Handover from .*admin.* to you$/ });
    await expect(mine.getByRole('link', { name: ENV_NAME })).toBeVisible();
    const step = mine.getByRole('checkbox', { name: new RegExp(`Launch Jupyter for ${ENV_NAME}`) });
    await expect(step).toBeEnabled();
    await step.check();
    const bar = mine.getByRole('progressbar');
    await expect(bar).toHaveAccessibleName(/: 1 of \d+ done/);
    // Saved: still ticked after a reload.
    await p.reload();
    await expect(p.getByRole('article', { name: /^Handover from .*admin.* to you$/ }).getByRole('checkbox', { name: new RegExp(`Launch Jupyter for ${ENV_NAME}`) })).toBeChecked();
    await expectAccessible(p, 'onboarding view of the new researcher');
    await screenshot(p, '27-onboarding');
  } finally {
    await ctx.close();
  }
  // The previous owner's page shows the progress too.
  await page.reload();
  await expect(page.getByRole('article', { name: new RegExp(`^Handover from you to .*${NEWCOMER}`) }).getByRole('progressbar')).toHaveAccessibleName(/: 1 of \d+ done/);
});
