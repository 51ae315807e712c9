// Binds the control server's HTTP server to its address. A Unix socket is
// created 0600 in the bind itself (umask 0177 around listen(), which binds
// synchronously), and a socket file left by a relay that died is replaced,
// while a live one or a non-socket file is refused. The guest link's Unix
// listener (src/link/transport/unix.ts) does the same for its own socket.
import { lstat, unlink } from "node:fs/promises";
import { createConnection, type Server } from "node:net";
import { ControlAddress, formatControlAddress } from "./control-address.js";

function someoneListens(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const probe = createConnection({ path });
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", () => resolve(false));
  });
}

async function removeStaleSocket(path: string): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return;
    throw err;
  }
  if (!isSocket) throw new Error(`control socket unix:${path}: the path exists and is not a socket; refusing to replace it. Remove it or choose another path.`);
  if (await someoneListens(path)) throw new Error(`control socket unix:${path}: another process serves this socket (another relay?); stop it or give this relay its own --control path.`);
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw err;
  });
}

export async function listenOn(server: Server, address: ControlAddress): Promise<string> {
  if (address.kind === "unix") await removeStaleSocket(address.path);
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const hint = err.code === "EADDRINUSE" ? "another process uses this port: choose another with --control tcp:127.0.0.1:PORT"
        : err.code === "ENOENT" || err.code === "EACCES" ? "is the directory there and writable?" : "check the address";
      reject(new Error(`control server: cannot listen on ${formatControlAddress(address)}: ${err.message}; ${hint}`, { cause: err }));
    });
    server.once("listening", () => {
      server.removeAllListeners("error");
      resolve();
    });
    if (address.kind === "tcp") {
      server.listen({ host: address.host, port: address.port });
      return;
    }
    const previous = process.umask(0o177);
    try {
      server.listen({ path: address.path });
    } finally {
      process.umask(previous);
    }
  });
  const bound = server.address();
  // Port 0 asks the system for a free port: report the one it gave.
  return address.kind === "tcp" && bound !== null && typeof bound === "object" ? formatControlAddress({ ...address, port: bound.port }) : formatControlAddress(address);
}
