// Words of the keys page.
export const en = {};

export const zh: typeof en = {};
