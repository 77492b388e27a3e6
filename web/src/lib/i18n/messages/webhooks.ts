// Words of the webhooks page.
export const en = {};

export const zh: typeof en = {};
