// Words of the history page.
export const en = {
  "history.title": "History",
  "history.filter": "Status",
  "history.filter.all": "All statuses",
  "history.total": "{n} tasks",
  "history.total.one": "1 task",
  "history.empty": "You have no tasks yet.",
  "history.emptyFiltered": "No tasks with this status.",
  "history.create": "Create a video",
};

export const zh: typeof en = {
  "history.title": "任务记录",
  "history.filter": "状态",
  "history.filter.all": "全部状态",
  "history.total": "共 {n} 个任务",
  "history.total.one": "共 1 个任务",
  "history.empty": "你还没有任务。",
  "history.emptyFiltered": "没有该状态的任务。",
  "history.create": "生成视频",
};
