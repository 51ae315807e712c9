// Runs inside the VM of e2e-guest.test.ts: opens the control port by name,
// says GUEST_READY_LINE on the console, and serves the host test's commands
// (guest-commands.ts) until the host closes the port's socket; then exits so
// that the VM powers off.
import { findPortByName } from "../../../guest-agent/port/sysfs-ports.js";
import { openCharDevice } from "../../../src/link/transport/chardev.js";
import { CONTROL_PORT_NAME, GUEST_READY_LINE, serveControl } from "./control-channel.js";
import { guestCommands } from "./guest-commands.js";

const port = await findPortByName("/sys", "/dev", CONTROL_PORT_NAME);
if (!port) {
  console.error(`guest-driver: no virtio-serial port named ${CONTROL_PORT_NAME} under /sys/class/virtio-ports; the host test must give the VM one`);
  process.exit(1);
}
const stream = await openCharDevice(port.device);
serveControl({ input: stream, output: stream }, guestCommands());
// The host connects before it waits for this line, so its first hangup can only mean it is done.
let seenHost = false;
stream.on("data", () => { seenHost = true; });
stream.on("hangup", () => {
  if (!seenHost) return;
  console.log("guest-driver: the host closed the control port; exiting");
  process.exit(0);
});
process.stdout.write(`\n${GUEST_READY_LINE}\n`);
