// The start-up checks that turn an errno into the operator's words.
import test from "ava";
import { checkIommuDevice, StartupError } from "../../src/relay/startup-error.js";
import { listenProblem } from "../../src/link/transport/transport-error.js";

test("--iommufd: a missing device says what the kernel lacks and what to do instead", (t) => {
  const err = t.throws(() => checkIommuDevice("/nonexistent/iommu"), { instanceOf: StartupError });
  t.regex(err!.message, /^--iommufd: \/nonexistent\/iommu does not exist: this kernel has no iommufd \(it needs CONFIG_IOMMUFD.*\); .*--source emulator$/);
});

test("a unix listen refused as EACCES is told apart: missing directory, file in the path, or permission", (t) => {
  const eacces = Object.assign(new Error("listen EACCES"), { code: "EACCES" });
  t.regex(listenProblem({ kind: "unix", path: "/nonexistent/dir/x.sock" }, eacces), /^the directory \/nonexistent\/dir does not exist; create it/);
  t.regex(listenProblem({ kind: "unix", path: "/etc/passwd/x.sock" }, eacces), /^\/etc\/passwd is not a directory/);
  t.regex(listenProblem({ kind: "unix", path: "/tmp/x.sock" }, eacces), /^permission denied creating a socket in \/tmp; run as a user who may write there/);
});

test("tcp listen problems name the cause and the way out", (t) => {
  const place = { kind: "tcp", host: "127.0.0.1", port: 80 } as const;
  t.regex(listenProblem(place, Object.assign(new Error("x"), { code: "EADDRINUSE" })), /in use by another process \(ss -ltnp 'sport = :80' shows which\); stop it or choose another port/);
  t.regex(listenProblem(place, Object.assign(new Error("x"), { code: "EACCES" })), /ports below 1024 need root or CAP_NET_BIND_SERVICE/);
});
