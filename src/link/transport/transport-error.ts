// A transport could not listen where it was asked to, for a reason in its
// surroundings (a path, a port, another process): the message is one line
// that says where, what went wrong and what to do. Whoever started the
// transport decides what that means: the relay's start-up ends with it, a
// reconnecting peer tries again later.
import { statSync } from "node:fs";
import { dirname } from "node:path";

export class TransportError extends Error {
  override readonly name = "TransportError";
}

/** Where a listener binds, for the words of its errors. */
export type ListenPlace = { kind: "unix"; path: string } | { kind: "tcp"; host: string; port: number };

/** Why bind() failed and what to do, in words; the errno's own text when nothing better is known. */
export function listenProblem(place: ListenPlace, err: NodeJS.ErrnoException): string {
  if (place.kind === "unix") return unixProblem(place.path, err);
  switch (err.code) {
    case "EADDRINUSE":
      return `the port is in use by another process (ss -ltnp 'sport = :${place.port}' shows which); stop it or choose another port`;
    case "EACCES":
      return `permission denied: ports below 1024 need root or CAP_NET_BIND_SERVICE; choose a port above 1023`;
    case "EADDRNOTAVAIL":
      return `no interface of this machine has the address ${place.host}; use 127.0.0.1 or ::1`;
    default:
      return `${err.message}; check the address`;
  }
}

function unixProblem(path: string, err: NodeJS.ErrnoException): string {
  if (err.code === "EADDRINUSE") return "another process bound this path meanwhile; stop it or choose another path";
  if (err.code !== "EACCES" && err.code !== "ENOENT") return `${err.message}; check the path`;
  // libuv reports a missing directory as EACCES: look at the directory to tell which.
  const dir = dirname(path);
  let isDirectory: boolean;
  try {
    isDirectory = statSync(dir).isDirectory();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return `the directory ${dir} does not exist; create it (install -d -m 0750 ${dir}) or choose another path`;
    if (code === "ENOTDIR") return `${dir} is not a directory (a part of it is a file); choose another path`;
    return `cannot look at the directory ${dir}: ${(e as Error).message}; choose another path`;
  }
  if (!isDirectory) return `${dir} is not a directory; choose another path`;
  return `permission denied creating a socket in ${dir}; run as a user who may write there, or choose another path`;
}
