/// <reference types="vitest/config" />
import tailwindcss from '@tailwindcss/vite';
import react from '@vitejs/plugin-react';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

// `npm run dev` proxies the API and the Jupyter gateway to a running
// `westtek up` (WESTTEK_URL, default http://127.0.0.1:8080). Origin is
// rewritten to the target because the platform only accepts cookie-carried
// changes that come from its own origin.
const target = process.env.WESTTEK_URL ?? 'http://127.0.0.1:8080';
const proxy = {
  target,
  changeOrigin: true,
  ws: true,
  headers: { origin: target },
};

export default defineConfig({
  plugins: [react(), tailwindcss()],
  resolve: {
    alias: { '@': fileURLToPath(new URL('./src', import.meta.url)) },
  },
  server: {
    proxy: { '/api': proxy, '/jupyter': proxy },
  },
  build: {
    manifest: true,
    sourcemap: false,
  },
  test: {
    environment: 'jsdom',
    setupFiles: ['./src/testing/setup.ts'],
    include: ['src/**/*.test.{ts,tsx}'],
    css: false,
    restoreMocks: true,
    // A component test renders and pages through jsdom; on a loaded 2-core
    // CI machine one took 5.5 s (the default limit is 5 s). Slowness is not
    // what these tests check.
    testTimeout: 30_000,
  },
});
