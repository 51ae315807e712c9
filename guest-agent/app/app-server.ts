// The app socket: a Unix socket, mode 0600, where guest programs register
// the PASIDs they answer for (mode "app") or whose memory procmem faults in
// (mode "procmem"). Only the agent's own user can connect, which is also
// why a registered pid is taken on trust: Node cannot read SO_PEERCRED.
import type { StreamListener } from "../../src/link/transport/byte-stream.js";
import { UnixListener } from "../../src/link/transport/unix.js";
import { ProcessTable } from "../handlers/procmem/process-table.js";
import { Logger } from "../log.js";
import { AppConnection } from "./app-connection.js";
import { Registry } from "./registry.js";

export class AppServer {
  private readonly connections = new Set<AppConnection>();

  private constructor(
    private readonly listener: StreamListener,
    registry: Registry,
    processes: ProcessTable,
    log: Logger,
  ) {
    listener.on("error", (err) => log.error("app socket failed; guest programs can no longer register", { socket: listener.description, err }));
    listener.on("connection", (stream) => {
      const conn = new AppConnection(
        stream,
        {
          register: (reg) => {
            const refused = registry.add(reg);
            if (refused === null && reg.pid !== null) processes.bind(reg.pid);
            return refused;
          },
          closed: (c) => {
            this.connections.delete(c);
            for (const reg of registry.removeClient(c)) {
              if (reg.pid !== null) processes.forget(reg.pid, "its registration ended", true);
              log.info("app: registration ended with its connection", { pasid: reg.pasid, endpoint: reg.endpoint, mode: reg.mode });
            }
          },
        },
        log,
      );
      this.connections.add(conn);
    });
  }

  static async start(path: string, registry: Registry, processes: ProcessTable, log: Logger): Promise<AppServer> {
    const listener = await UnixListener.listen(path);
    log.info("app socket listening", { socket: path });
    return new AppServer(listener, registry, processes, log);
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.close();
    await this.listener.close();
  }
}
