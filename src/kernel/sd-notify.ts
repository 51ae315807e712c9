// sd_notify(3) without libsystemd: one datagram to the AF_UNIX socket that
// systemd names in $NOTIFY_SOCKET, for a Type=notify unit's readiness. Node's
// dgram has no AF_UNIX, so the socket and sendto() go through libc.
// $NOTIFY_SOCKET is a file system path, or "@name" for the abstract
// namespace (the '@' stands for the leading NUL byte of the address).
import { SyscallError } from "./errno.js";
import { close, MSG_NOSIGNAL, sendto, unixDatagramSocket } from "./libc.js";

const AF_UNIX = 1;
/** sockaddr_un: sa_family_t (2 bytes), then sun_path[108]. */
const SUN_PATH_OFFSET = 2;
const SUN_PATH_BYTES = 108;

/** The sockaddr_un for a $NOTIFY_SOCKET value, exactly as long as the address needs. */
export function notifySocketAddress(value: string): Buffer {
  const abstract = value.startsWith("@");
  if (!abstract && !value.startsWith("/")) {
    throw new Error(`NOTIFY_SOCKET="${value.slice(0, 120)}": expected an absolute path or @name (an abstract socket); this program sends only to AF_UNIX sockets`);
  }
  const name = Buffer.from(abstract ? value.slice(1) : value);
  // An abstract name is its bytes after the NUL, no terminator; a path ends with one.
  const pathBytes = abstract ? 1 + name.length : name.length + 1;
  if (pathBytes > SUN_PATH_BYTES) throw new Error(`NOTIFY_SOCKET is ${pathBytes} bytes as a socket address; at most ${SUN_PATH_BYTES} fit`);
  const addr = Buffer.alloc(SUN_PATH_OFFSET + pathBytes);
  addr.writeUInt16LE(AF_UNIX, 0);
  name.copy(addr, SUN_PATH_OFFSET + (abstract ? 1 : 0));
  return addr;
}

/**
 * Sends state (e.g. "READY=1") to $NOTIFY_SOCKET. Returns false when the
 * variable is unset (not started by systemd as Type=notify); throws when the
 * send fails.
 */
export function sdNotify(state: string, env: NodeJS.ProcessEnv = process.env): boolean {
  const target = env.NOTIFY_SOCKET;
  if (target === undefined || target === "") return false;
  const addr = notifySocketAddress(target);
  const msg = Buffer.from(state);
  const fd = unixDatagramSocket();
  try {
    const sent = sendto(fd, msg, msg.length, MSG_NOSIGNAL, addr);
    if (sent < 0) throw new SyscallError("sendto", -sent, `sending "${state.split("\n")[0]}" to NOTIFY_SOCKET=${target}`, "the service manager's notify socket is gone, or this user may not write to it");
    return true;
  } finally {
    close(fd);
  }
}
