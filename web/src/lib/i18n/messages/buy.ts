// Words of the buy page.
export const en = {};

export const zh: typeof en = {};
