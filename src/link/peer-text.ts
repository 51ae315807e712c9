// Text a peer sent (an agent's software name, an ERROR or GOODBYE message, a
// handoff peer's device name), made safe for a log line or a terminal:
// control characters escaped (so a "\n" cannot forge a log line and an
// escape sequence cannot drive a terminal) and the length bounded.

// C0 and C1 controls, DEL, and the Unicode format characters that reorder or hide text (bidi overrides, zero-width).
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]/g;

function escape(ch: string): string {
  const code = ch.charCodeAt(0);
  return code <= 0xff ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
}

/** At most `max` characters of s, control characters escaped, and how much was cut. */
export function peerText(s: string, max: number): string {
  const cut = s.length > max ? s.slice(0, max) : s;
  const safe = cut.replace(UNSAFE, escape);
  return s.length > max ? `${safe}... (${s.length - max} more characters)` : safe;
}
