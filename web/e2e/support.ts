import AxeBuilder from '@axe-core/playwright';
import { expect, test, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const server = {
  get url() {
    return process.env.WESTTEK_E2E_URL!;
  },
  get firstRunLink() {
    return process.env.WESTTEK_E2E_SIGN_IN_URL!;
  },
  get dataDir() {
    return process.env.WESTTEK_E2E_DATA_DIR!;
  },
  /** The westtek binary under test, for `westtek admin …`. */
  get bin() {
    return process.env.WESTTEK_E2E_BIN!;
  },
  /** A fresh one-time sign-in link for a user (`westtek admin user sign-in-link`). */
  signInLink(user = 'admin'): string {
    const out = execFileSync(process.env.WESTTEK_E2E_BIN!, ['admin', 'user', 'sign-in-link', user, '--public-url', this.url], {
      env: { ...process.env, WESTTEK_DATA_DIR: this.dataDir },
    });
    return out.toString().trim();
  },
};

const shots = resolve(import.meta.dirname, 'screenshots');

/** Saves a full-page screenshot as e2e/screenshots/<name>.png and attaches it to the report. */
export async function screenshot(page: Page, name: string) {
  mkdirSync(shots, { recursive: true });
  const path = join(shots, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  await test.info().attach(name, { path, contentType: 'image/png' });
}

/**
 * Runs axe-core (WCAG 2.1 A/AA) on the page: fails on serious or critical
 * violations, and prints the lesser ones so they are seen.
 */
export async function expectAccessible(page: Page, what: string) {
  const result = await new AxeBuilder({ page }).withTags(['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']).analyze();
  const describe = (v: (typeof result.violations)[number]) =>
    `${v.impact ?? '?'} ${v.id}: ${v.help} (${v.nodes.length}×: ${v.nodes
      .slice(0, 3)
      .map((n) => n.target.join(' '))
      .join(' | ')})`;
  const blocking = result.violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  const minor = result.violations.filter((v) => !blocking.includes(v));
  if (minor.length) console.log(`axe on ${what}, not blocking:\n  ${minor.map(describe).join('\n  ')}`);
  expect(blocking.map(describe), `axe: serious/critical violations on ${what}`).toEqual([]);
}
