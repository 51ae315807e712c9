// A Unix socket file that only its owner (and, when asked, its group) can
// use, and that a listener which died leaves behind: shared by the guest link's listener and the relay's
// control server.
import { lstat, unlink } from "node:fs/promises";
import { createConnection, type Server } from "node:net";
import { TransportError } from "./transport-error.js";

/** Resolves true if something accepts a stream connection on path, false on ECONNREFUSED. */
function someoneListens(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const probe = createConnection({ path });
    probe.once("connect", () => {
      probe.destroy();
      resolve(true);
    });
    probe.once("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ECONNREFUSED") resolve(false);
      else reject(new TransportError(`unix:${path}: cannot tell whether the existing socket is in use: ${err.message}; remove it if no process serves it, or choose another path`, { cause: err }));
    });
  });
}

/**
 * Removes a socket file left by a listener that died, and refuses to touch
 * anything else: a live socket (another relay is serving it) or a file that
 * is not a socket at all. `listens` probes it (a stream connection unless
 * the socket is of another type).
 */
export async function removeStaleSocket(path: string, listens: (path: string) => Promise<boolean> = someoneListens): Promise<void> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // A missing directory is found and told by the bind that follows.
    if (code === "ENOENT") return;
    if (code === "ENOTDIR") throw new TransportError(`unix:${path}: a part of the path is a file, not a directory; choose another path`);
    throw new TransportError(`unix:${path}: cannot look at the path: ${(err as Error).message}; choose another path`, { cause: err });
  }
  if (!isSocket) {
    throw new TransportError(`unix:${path}: the path exists and is not a socket; refusing to replace it. Remove it or choose another path.`);
  }
  if (await listens(path)) {
    throw new TransportError(`unix:${path}: another process is listening on this socket (another relay for this VM?); stop it or choose another path.`);
  }
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== "ENOENT") throw new TransportError(`unix:${path}: cannot remove the socket file a dead process left: ${err.message}; remove it yourself or choose another path`, { cause: err });
  });
}

/** The modes a socket file may be given: the owner's rw always, the group's at most; never others'. */
export const OWNER_ONLY = 0o600;
export const OWNER_AND_GROUP = 0o660;

/**
 * Binds with a umask that leaves exactly `mode` (0600 by default, 0660 to
 * let the group connect), so the socket file has that mode from the bind()
 * itself. A chmod after listen() would leave a window in which the kernel
 * already queues connections made through the wider default mode, and Node
 * binds and listens in one call, so there is no point between them to chmod.
 * The umask is process-wide, but bind and listen run synchronously inside
 * server.listen(), so it is restored before any other JavaScript runs; a
 * file another thread creates in that instant can only come out stricter.
 * (process.umask(mask) is unavailable in worker threads: listen from the
 * main thread.)
 */
export function listenPrivately(server: Server, path: string, mode = OWNER_ONLY): void {
  if ((mode & ~OWNER_AND_GROUP) !== 0 || (mode & OWNER_ONLY) !== OWNER_ONLY) {
    throw new Error(`unix:${path}: socket mode 0${mode.toString(8)}: expected 0600 or 0660 (owner read-write, the group's at most)`);
  }
  const previous = process.umask(0o777 & ~mode);
  try {
    server.listen({ path });
  } finally {
    process.umask(previous);
  }
}
