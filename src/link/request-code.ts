// Request codes of the guest link: the first u32 of every frame header.
// Codes stay below 0xFF so a frame's first byte is never 0xFF, the first
// byte of every sync marker (see sync-marker.ts).

export const RequestCode = {
  /** Host offers version, features, limits, endpoints; the reply carries the guest's Welcome. */
  HELLO: 1,
  /** Host to guest: a batch of page request groups. */
  PAGE_REQUESTS: 2,
  /** Guest to host: a batch of answers, by tag. */
  PAGE_RESPONSES: 3,
  /** Guest to host: the credit window (groups the guest will hold). */
  CREDIT: 4,
  /** Host to guest: tags answered by the host itself; the guest must not answer them. */
  PAGE_CANCELS: 5,
  /** Either way: liveness; with NEED_REPLY the peer echoes it. */
  HEARTBEAT: 6,
  /** Either way: a protocol error; the session ends. */
  ERROR: 7,
  /** Either way: an orderly end of the session. */
  GOODBYE: 8,
} as const;

export type RequestCode = (typeof RequestCode)[keyof typeof RequestCode];

const names = new Map<number, string>(Object.entries(RequestCode).map(([name, code]) => [code, name]));

export function isRequestCode(code: number): code is RequestCode {
  return names.has(code);
}

export function requestCodeName(code: number): string {
  return names.get(code) ?? `UNKNOWN(${code})`;
}
