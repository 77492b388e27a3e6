"use client";
// Follow every unfinished task of a list over SSE, one stream each, started and stopped as tasks
// appear in the list or finish.
import { useEffect, useRef } from "react";

import { followTask, isFinished, type TaskView } from "@/lib/api/events";

export function useFollowTasks(tasks: TaskView[] | null, onTask: (task: TaskView) => void): void {
  const onTaskRef = useRef(onTask);
  useEffect(() => {
    onTaskRef.current = onTask;
  });
  const followers = useRef(new Map<string, () => void>());
  const open = (tasks ?? [])
    .filter((task) => !isFinished(task.status))
    .map((task) => task.task_id)
    .sort()
    .join(",");

  useEffect(() => {
    const wanted = new Set(open ? open.split(",") : []);
    for (const [id, stop] of followers.current) {
      if (!wanted.has(id)) {
        stop();
        followers.current.delete(id);
      }
    }
    for (const id of wanted) {
      if (!followers.current.has(id)) {
        followers.current.set(
          id,
          followTask(id, (task) => onTaskRef.current(task)),
        );
      }
    }
  }, [open]);

  useEffect(() => {
    const current = followers.current;
    return () => {
      current.forEach((stop) => stop());
      current.clear();
    };
  }, []);
}

/** The list with `task` put in place of its older self. */
export function replaceTask(tasks: TaskView[] | null, task: TaskView): TaskView[] | null {
  return tasks ? tasks.map((old) => (old.task_id === task.task_id ? task : old)) : tasks;
}
