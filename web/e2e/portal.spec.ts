/**
 * The portal against a real platform: sign-in, an environment built for real
 * with uv, JupyterLab through the gateway, a snapshot, and a live drift alert.
 * The tests after sign-in share one signed-in browser context, in order.
 */
import { expect, test, type BrowserContext, type Page } from '@playwright/test';
import { writeFileSync } from 'node:fs';
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
