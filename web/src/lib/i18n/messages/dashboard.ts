// Words of the dashboard page.
export const en = {
  "dashboard.title": "Dashboard",
  "dashboard.greeting": "Hello, {name}.",
  "dashboard.balance.heading": "Your credits",
  "dashboard.balance.hint": "All the credits in your account.",
  "dashboard.reserved.hint": "Held for videos still being made; per-second videos are charged for their real length when they finish.",
  "dashboard.available.hint": "What you can spend on new videos now.",
  "dashboard.create": "Create a video",
  "dashboard.buy": "Buy credits",
  "dashboard.recent": "Recent tasks",
  "dashboard.all": "See all tasks",
  "dashboard.empty": "You have not made any videos yet.",
  "dashboard.emptyAction": "Make your first one",
};

export const zh: typeof en = {
  "dashboard.title": "概览",
  "dashboard.greeting": "你好，{name}。",
  "dashboard.balance.heading": "我的积分",
  "dashboard.balance.hint": "账户中的全部积分。",
  "dashboard.reserved.hint": "为仍在生成的视频冻结的积分；按秒计费的视频会在完成后按实际时长扣费。",
  "dashboard.available.hint": "现在可用于生成新视频的积分。",
  "dashboard.create": "生成视频",
  "dashboard.buy": "充值积分",
  "dashboard.recent": "最近的任务",
  "dashboard.all": "查看全部任务",
  "dashboard.empty": "你还没有生成过视频。",
  "dashboard.emptyAction": "生成第一个视频",
};
