import { defineConfig } from '@playwright/test';

/**
 * End-to-end tests against a real `westtek up` (started by e2e/global-setup.ts
 * on a temp data dir and a free port, serving the built portal from dist/),
 * driven through Debian's Chromium. No browser is ever downloaded:
 * playwright-core only, with an explicit executable.
 */
export default defineConfig({
  testDir: './e2e',
  globalSetup: './e2e/global-setup.ts',
  fullyParallel: false,
  workers: 1,
  retries: 0,
  // Building a real environment with uv takes minutes on a cold cache.
  timeout: 10 * 60_000,
  expect: { timeout: 15_000 },
  reporter: [['list']],
  outputDir: './test-results',
  use: {
    browserName: 'chromium',
    headless: true,
    viewport: { width: 1440, height: 900 },
    launchOptions: { executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' },
    trace: 'retain-on-failure',
    screenshot: 'off',
  },
});
