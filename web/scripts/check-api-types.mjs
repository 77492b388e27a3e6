// Fails when src/lib/api/schema.d.ts is not what openapi.json generates (run `make web-client`).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";

const dir = mkdtempSync(path.join(tmpdir(), "vidgate-api-"));
try {
  const fresh = path.join(dir, "schema.d.ts");
  execFileSync("npx", ["openapi-typescript", "openapi.json", "-o", fresh], { stdio: "ignore" });
  if (readFileSync(fresh, "utf8") !== readFileSync("src/lib/api/schema.d.ts", "utf8")) {
    console.error("src/lib/api/schema.d.ts is stale: run `make web-client` and commit the result");
    process.exit(1);
  }
  console.log("API types match openapi.json");
} finally {
  rmSync(dir, { recursive: true, force: true });
}
