// The package version, for the Hello's software field and --version.
import { readFileSync } from "node:fs";

const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };

export const VERSION: string = pkg.version;
export const SOFTWARE = `iopf-relay ${VERSION}`;
