// Problems found in the device map section of the relay's config. Each one
// names the key path, what was expected and what came, so the operator can
// fix the file without reading code. All problems are gathered, not just the
// first, so one edit can fix them all.

export interface ConfigProblem {
  /** Key path such as `devices[2].requesterId`. */
  path: string;
  /** `expected ..., got ...`, sometimes followed by what to do. */
  message: string;
}

export class DeviceMapConfigError extends Error {
  override readonly name = "DeviceMapConfigError";

  constructor(readonly problems: readonly ConfigProblem[]) {
    const noun = problems.length === 1 ? "problem" : "problems";
    super(`device map: ${problems.length} ${noun} in the "viommu"/"devices" config:\n` +
      problems.map((p) => `  ${p.path}: ${p.message}`).join("\n"));
  }
}

/** A config value as the message shows it: JSON for scalars, the kind for the rest. */
export function describe(value: unknown): string {
  if (value === undefined) return "nothing";
  if (value === null) return "null";
  if (Array.isArray(value)) return "an array";
  if (typeof value === "object") return "an object";
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return JSON.stringify(value) ?? String(value);
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
