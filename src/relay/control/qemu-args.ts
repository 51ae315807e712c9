// `iopf-relay print-qemu-args`: the QEMU arguments that give a VM the port
// its agent looks for. The relay listens on a Unix socket (--socket-path);
// QEMU's socket chardev is the client and reconnects, so either side can be
// restarted alone. QEMU before 9.2 takes reconnect=SECONDS; 9.2 deprecated
// it for reconnect-ms=MILLISECONDS.
import { execFileSync } from "node:child_process";
import { parseFlags, UsageError } from "../cli-options.js";

export const PORT_NAME = "org.iopf-relay.0";

export interface QemuArgsOptions {
  socketPath: string;
  /** "MAJOR.MINOR": chooses reconnect= (before 9.2) or reconnect-ms=. */
  qemuVersion: string;
  /** How soon QEMU tries the relay's socket again; rounded up to whole seconds before 9.2. */
  reconnectMs: number;
  /** Prefix of the QEMU object ids, unique within the VM. */
  id: string;
  format: "shell" | "json" | "libvirt";
}

export const QEMU_ARGS_USAGE = `usage: iopf-relay print-qemu-args (--vm NAME | --socket-path PATH) [options]

Prints the QEMU arguments for a VM's iopf-relay port: a virtio-serial-pci
controller, a socket chardev that connects to the relay (and reconnects),
and a virtserialport named ${PORT_NAME}.

  --vm NAME             the VM; the socket is /run/iopf-relay/NAME.sock (as the systemd unit makes it)
  --socket-path PATH    the relay's --socket-path
  --qemu-version X.Y    the QEMU that runs the VM (default: asks qemu-system-x86_64 --version; 7.2 if there is none)
  --reconnect-ms N      how soon QEMU tries again after losing the relay (default 1000)
  --id PREFIX           prefix of the QEMU ids (default iopf)
  --format F            shell (one line, quoted), json (an argv array) or libvirt (a <channel> element)`;

function versionAtLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split(".").map(Number);
  return a > major || (a === major && b >= minor);
}

function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/'/g, "&apos;").replace(/"/g, "&quot;");
}

export function qemuArgv(o: QemuArgsOptions): string[] {
  // QEMU's option parser splits on commas; a comma in a value is written twice.
  const path = o.socketPath.replace(/,/g, ",,");
  const reconnect = versionAtLeast(o.qemuVersion, 9, 2) ? `reconnect-ms=${o.reconnectMs}` : `reconnect=${Math.max(1, Math.ceil(o.reconnectMs / 1000))}`;
  return [
    "-device", `virtio-serial-pci,id=${o.id}-serial`,
    "-chardev", `socket,id=${o.id}-chr,path=${path},${reconnect}`,
    "-device", `virtserialport,bus=${o.id}-serial.0,chardev=${o.id}-chr,name=${PORT_NAME}`,
  ];
}

export function printQemuArgs(o: QemuArgsOptions): string {
  if (o.format === "json") return JSON.stringify(qemuArgv(o)) + "\n";
  if (o.format === "shell") return qemuArgv(o).map(shellQuote).join(" ") + "\n";
  // libvirt's <reconnect timeout> is in seconds; it adds the controller itself.
  return [
    "<channel type='unix'>",
    `  <source mode='connect' path='${xmlEscape(o.socketPath)}'>`,
    `    <reconnect enabled='yes' timeout='${Math.max(1, Math.ceil(o.reconnectMs / 1000))}'/>`,
    "  </source>",
    `  <target type='virtio' name='${PORT_NAME}'/>`,
    "</channel>",
    "",
  ].join("\n");
}

function installedQemuVersion(): string | null {
  try {
    const out = execFileSync("qemu-system-x86_64", ["--version"], { encoding: "utf8", timeout: 2000, stdio: ["ignore", "pipe", "ignore"] });
    return /version (\d+\.\d+)/.exec(out)?.[1] ?? null;
  } catch {
    return null;
  }
}

/** Parses the subcommand's own arguments (after "print-qemu-args"); "help" when asked for it. */
export function parseQemuArgsCli(argv: string[]): QemuArgsOptions | "help" {
  const values = parseFlags(argv, {
    vm: { type: "string" }, "socket-path": { type: "string" }, "qemu-version": { type: "string" },
    "reconnect-ms": { type: "string" }, id: { type: "string" }, format: { type: "string" }, help: { type: "boolean", short: "h" },
  }, "print-qemu-args: ");
  if (values.help) return "help";
  if ((values.vm === undefined) === (values["socket-path"] === undefined)) {
    throw new UsageError("print-qemu-args: expected exactly one of --vm NAME or --socket-path PATH");
  }
  if (values.vm !== undefined && !/^[\w.-]{1,64}$/.test(values.vm)) throw new UsageError(`print-qemu-args: --vm: expected a VM name of letters, digits, "_", "." and "-", got "${values.vm}"`);
  const version = values["qemu-version"] ?? installedQemuVersion() ?? "7.2";
  if (!/^\d+\.\d+/.test(version)) throw new UsageError(`print-qemu-args: --qemu-version: expected MAJOR.MINOR like 7.2 or 9.2, got "${version}"`);
  const ms = values["reconnect-ms"] ?? "1000";
  if (!/^\d+$/.test(ms) || Number(ms) < 1) throw new UsageError(`print-qemu-args: --reconnect-ms: expected a positive integer, got "${ms}"`);
  const format = values.format ?? "shell";
  if (format !== "shell" && format !== "json" && format !== "libvirt") throw new UsageError(`print-qemu-args: --format: expected shell, json or libvirt, got "${format}"`);
  const id = values.id ?? "iopf";
  if (!/^[A-Za-z][\w-]*$/.test(id)) throw new UsageError(`print-qemu-args: --id: expected a QEMU id (a letter, then letters, digits, "_" or "-"), got "${id}"`);
  return {
    socketPath: values["socket-path"] ?? `/run/iopf-relay/${values.vm}.sock`,
    qemuVersion: version, reconnectMs: Number(ms), id, format,
  };
}
