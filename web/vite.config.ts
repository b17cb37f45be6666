import { fileURLToPath } from 'node:url';
import react from '@vitejs/plugin-react';
import { defineConfig } from 'vite';

// Paths from this file, not the working directory: `vite build --config web/vite.config.ts` runs from the repo root.
const here = (p: string) => fileURLToPath(new URL(p, import.meta.url));

export default defineConfig({
  root: here('.'),
  base: '/',
  plugins: [react()],
  publicDir: false,
  build: {
    outDir: here('../dist/web'),
    emptyOutDir: true,
    assetsDir: 'assets',
    target: 'es2022',
  },
  server: {
    host: '127.0.0.1',
    // `vite --config web/vite.config.ts` against a running haishin (`npm start`) while editing the console.
    proxy: { '/api': 'http://127.0.0.1:8080' },
  },
});
