/**
 * The web app's build: plain Vite (it transforms TSX itself; tsconfig says `jsx: react-jsx`), served by the
 * gateway under /app/, so every asset URL is built against that base. `npm run app:dev` proxies the gateway's
 * API to a running gateway (default the demo's, 127.0.0.1:8787) for work on the pages with hot reload.
 */
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const root = fileURLToPath(new URL(".", import.meta.url));
const gateway = process.env.TOLLGATE_GATEWAY_URL ?? "http://127.0.0.1:8787";

export default defineConfig({
  root,
  base: "/app/",
  // No public/ folder: config.json comes from the gateway that serves the app.
  publicDir: false,
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: true,
    // viem and chart.js make one chunk of about 600 kB before gzip; splitting it buys nothing for an app served from the gateway.
    chunkSizeWarningLimit: 1500,
  },
  server: {
    proxy: { "/v1": gateway, "/app/config.json": gateway },
  },
});
