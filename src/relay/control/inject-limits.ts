// What one POST /api/inject may ask for, declared once: the control server
// refuses more, and iopfctl refuses it before asking.

/** Groups one request raises at most: a typo must not queue a million faults. */
export const MAX_INJECT = 100_000;

/** Pages (fault records) of one injected group at most. */
export const MAX_INJECT_PAGES = 256;
