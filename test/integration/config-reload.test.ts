// SIGHUP: the relay reads its device map from --config again. A device the
// file adds is served, one it drops has its held groups answered INVALID
// (as at a detach), and a file with problems changes nothing.
import test from "ava";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pb } from "../../src/link/messages.js";
import { reconnectingAgent } from "../support/reconnecting-agent.js";
import { inject, startRelay, status, until, waitStatus } from "./control-harness.js";

test("SIGHUP rereads the device map: added devices served, dropped ones answered, a bad file refused", async (t) => {
  const relay = await startRelay(t, { source: "synthetic", config: { viommu: "virtio-iommu", devices: [{ devId: 1, endpointId: 8, deadlineMs: 60_000 }] } });
  const file = join(relay.dir, "relay.json");
  // The agent holds endpoint 8's groups (device 1) and answers the others.
  const agent = reconnectingAgent(relay.socketPath, 0, (r) => (r.endpoint === 8 ? null : pb.ResponseCode.RESPONSE_SUCCESS));
  t.teardown(() => agent.stop());
  await waitStatus(relay.control, (s) => s.session.state === "up", "the agent's session");
  await inject(relay.control, { dev: 2, pasid: 1, addr: 0x10000, count: 1 });
  await waitStatus(relay.control, (s) => (s.counters.answers["unknown-device"]?.invalid ?? 0) === 1, "device 2 unknown at first");
  await inject(relay.control, { dev: 1, pasid: 1, addr: 0x10000, count: 3 });
  await waitStatus(relay.control, (s) => s.inFlight === 3, "device 1's groups held by the agent");

  writeFileSync(file, JSON.stringify({ viommu: "virtio-iommu", devices: [{ devId: 2, endpointId: 9 }] }));
  relay.child.kill("SIGHUP");
  await waitStatus(relay.control, (s) => (s.counters.answers["device-removed"]?.invalid ?? 0) === 3, "device 1 dropped by the file: its groups answered");
  const s = await status(relay.control);
  t.deepEqual(s.devices.filter((d) => d.endpoint !== -1).map((d) => [d.devId, d.endpoint]), [[2, 9]], "the status shows the map in force");
  await inject(relay.control, { dev: 2, pasid: 1, addr: 0x10000, count: 2 });
  await waitStatus(relay.control, (x) => (x.counters.answers["guest"]?.success ?? 0) === 2, "device 2 served now");

  writeFileSync(file, JSON.stringify({ viommu: "virtio-iommu", devices: [{ devId: "two", endpointId: 9 }] }));
  relay.child.kill("SIGHUP");
  await until(() => /"level":"error".*"msg":"the config was not reloaded; the device map in force is kept".*devices\[0\]\.devId/.test(relay.stderr()), 10_000, "the refusal, naming the problem");
  await inject(relay.control, { dev: 2, pasid: 1, addr: 0x10000, count: 1 });
  await waitStatus(relay.control, (x) => (x.counters.answers["guest"]?.success ?? 0) === 3, "device 2 still served");
});
