import type { NextConfig } from "next";

// A static export: `vidgate serve` serves web/out at `/`, and the page asks the server for the
// API base URL and client key at run time, so one build serves any deployment.
// `npm run dev` (hot reload on :3000) forwards the server's paths to a running vidgate.
const VIDGATE_URL = process.env.VIDGATE_URL ?? "http://127.0.0.1:8000";
const devProxy =
  process.env.NODE_ENV === "development"
    ? {
        rewrites: async () =>
          ["api", "media", "_emulator"].map((prefix) => ({
            source: `/${prefix}/:path*`,
            destination: `${VIDGATE_URL}/${prefix}/:path*`,
          })),
      }
    : {};

const config: NextConfig = {
  output: "export",
  trailingSlash: true,
  images: { unoptimized: true },
  reactStrictMode: true,
  ...devProxy,
};

export default config;
