// Words of the create page.
export const en = {};

export const zh: typeof en = {};
