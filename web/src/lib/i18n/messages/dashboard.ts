// Words of the dashboard page.
export const en = {};

export const zh: typeof en = {};
