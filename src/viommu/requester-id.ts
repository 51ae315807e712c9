// PCI requester ids as operators write them ("bus:dev.fn", hex, as lspci
// prints them) and as VT-d records carry them: bus << 8 | dev << 3 | fn.
// No PCI segment: a requester id does not include one.

const BDF = /^([0-9a-f]{2}):([0-9a-f]{2})\.([0-7])$/i;

/** The requester id of "bb:dd.f", or null when the text is not one (device numbers stop at 0x1f). */
export function parseRequesterId(text: string): number | null {
  const m = BDF.exec(text);
  if (m === null) return null;
  const bus = parseInt(m[1] as string, 16);
  const dev = parseInt(m[2] as string, 16);
  const fn = parseInt(m[3] as string, 16);
  if (dev > 0x1f) return null;
  return (bus << 8) | (dev << 3) | fn;
}

export function formatRequesterId(rid: number): string {
  const hex = (n: number): string => n.toString(16).padStart(2, "0");
  return `${hex(rid >> 8)}:${hex((rid >> 3) & 0x1f)}.${rid & 0x7}`;
}
