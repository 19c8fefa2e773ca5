import { defineConfig } from 'vite'

// Built into dist/ by `npm run build`; the API serves it at /dashboard
// (packages/api/src/dashboard). JSX through esbuild alone: no Babel.
export default defineConfig({
  base: '/dashboard/',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The CSP allows no inline script or style: keep every asset a file.
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
    target: 'es2022',
  },
})
