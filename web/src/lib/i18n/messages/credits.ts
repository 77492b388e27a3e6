// Words of the credits page.
export const en = {};

export const zh: typeof en = {};
