import type { NextConfig } from "next";

// A static export: `vidgate serve` serves web/out at `/`, and the page asks the server for the
// API base URL and client key at run time, so one build serves any deployment.
const config: NextConfig = {
  output: "export",
  trailingSlash: true,
  images: { unoptimized: true },
  reactStrictMode: true,
};

export default config;
