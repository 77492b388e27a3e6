// Words of the task page.
export const en = {};

export const zh: typeof en = {};
