// The agent's name and version as it tells the relay in its Welcome: the
// package's version, built into the bundle (the guest has no package.json).
import pkg from "../package.json" with { type: "json" };

export const AGENT_VERSION: string = pkg.version;
export const AGENT_SOFTWARE = `iopf-agent ${AGENT_VERSION}`;
