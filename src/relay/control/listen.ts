// Binds the control server's HTTP server to its address. A Unix socket is
// created 0600 in the bind itself (umask 0177 around listen(), which binds
// synchronously), and a socket file left by a relay that died is replaced,
// while a live one or a non-socket file is refused, as for the guest link's
// socket (src/link/transport/unix-socket-file.ts).
import type { Server } from "node:net";
import { listenProblem, TransportError } from "../../link/transport/transport-error.js";
import { listenPrivately, removeStaleSocket } from "../../link/transport/unix-socket-file.js";
import { StartupError } from "../startup-error.js";
import { ControlAddress, formatControlAddress } from "./control-address.js";

export async function listenOn(server: Server, address: ControlAddress): Promise<string> {
  if (address.kind === "unix") {
    await removeStaleSocket(address.path).catch((err: Error) => {
      throw err instanceof TransportError ? new StartupError(`control server: ${err.message}`, { cause: err }) : err;
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) => {
      const more = address.kind === "tcp" && err.code === "EADDRINUSE" ? " with --control tcp:127.0.0.1:PORT" : "";
      reject(new StartupError(`control server: ${formatControlAddress(address)}: cannot listen: ${listenProblem(address, err)}${more}`, { cause: err }));
    });
    server.once("listening", () => {
      server.removeAllListeners("error");
      resolve();
    });
    if (address.kind === "tcp") {
      server.listen({ host: address.host, port: address.port });
      return;
    }
    listenPrivately(server, address.path);
  });
  const bound = server.address();
  // Port 0 asks the system for a free port: report the one it gave.
  return address.kind === "tcp" && bound !== null && typeof bound === "object" ? formatControlAddress({ ...address, port: bound.port }) : formatControlAddress(address);
}
