// The agent's name and version as it tells the relay in its Welcome.
export const AGENT_VERSION = "0.1.0";
export const AGENT_SOFTWARE = `iopf-agent ${AGENT_VERSION}`;
