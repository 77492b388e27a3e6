// Words of the auth page.
export const en = {};

export const zh: typeof en = {};
