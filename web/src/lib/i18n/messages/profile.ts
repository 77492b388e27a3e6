// Words of the profile page.
export const en = {};

export const zh: typeof en = {};
