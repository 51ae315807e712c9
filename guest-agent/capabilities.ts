// What the agent answers a Hello with, from its config: every feature but
// raw records unless asked for (no built-in handler reads them), and its own
// max_in_flight.
import { ALL_FEATURES, Capabilities, Feature, OUR_CAPABILITIES } from "../src/link/negotiation.js";
import type { AgentConfig } from "./config.js";

export function agentCapabilities(config: Pick<AgentConfig, "maxInFlight" | "rawRecords">): Capabilities {
  return {
    ...OUR_CAPABILITIES,
    features: config.rawRecords ? ALL_FEATURES : ALL_FEATURES & ~Feature.RAW_RECORDS,
    limits: { ...OUR_CAPABILITIES.limits, maxInFlight: config.maxInFlight },
  };
}
