// Live task updates from GET /api/tasks/{id}/events. EventSource cannot send X-API-Key, so the
// stream is read with fetch; it reconnects until the task has finished or the caller stops.
import { loadConfig, apiOrigin } from "../config";
import { authHeaders, refreshTokens, type Schemas } from "./client";
import { tokens } from "../tokens";

export type TaskView = Schemas["TaskView"];

/** A task read by id. The app always sends the user's token, so the answer is the owner's full
 * view; only a client key alone gets one without its owner, money and inputs. */
export function ownerView(task: Schemas["TaskByIdView"]): TaskView {
  if (task.user_id === null) throw new Error("task read without the user's token");
  return task as TaskView;
}

const FINISHED = new Set(["SUCCEEDED", "FAILED", "TIMEOUT", "CANCELED"]);

export function isFinished(status: string): boolean {
  return FINISHED.has(status);
}

/** Call `onTask` with each new state of the task; returns a function that stops following. */
export function followTask(taskId: string, onTask: (task: TaskView) => void): () => void {
  const controller = new AbortController();
  let delay = 1000;
  let renewed = false;

  const run = async () => {
    const config = await loadConfig();
    while (!controller.signal.aborted) {
      try {
        const response = await fetch(
          `${apiOrigin(config)}/api/tasks/${encodeURIComponent(taskId)}/events`,
          { headers: { ...authHeaders(config), Accept: "text/event-stream" }, signal: controller.signal },
        );
        if (response.status === 404) return;
        if (response.status === 401 && tokens.access()) {
          // The access token expired while following: renew it (a refusal signs out and ends
          // this; a passing failure waits and tries again like any other).
          const outcome = await refreshTokens(config);
          if (outcome.kind === "refused") return;
          if (outcome.kind === "refreshed" && !renewed) {
            renewed = true; // at once, but only once in a row
            continue;
          }
        }
        if (!response.ok || !response.body) throw new Error(`HTTP ${response.status}`);
        delay = 1000;
        renewed = false;
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end: number;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block
              .split("\n")
              .filter((line) => line.startsWith("data:"))
              .map((line) => line.slice(5).trimStart())
              .join("\n");
            if (!data) continue;
            const task = JSON.parse(data) as TaskView;
            onTask(task);
            if (isFinished(task.status)) return;
          }
        }
      } catch {
        if (controller.signal.aborted) return;
      }
      await new Promise((resolve) => setTimeout(resolve, delay));
      delay = Math.min(delay * 2, 15000);
    }
  };
  void run();
  return () => controller.abort();
}
