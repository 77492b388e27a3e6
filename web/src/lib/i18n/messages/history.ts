// Words of the history page.
export const en = {};

export const zh: typeof en = {};
