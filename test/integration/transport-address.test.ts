import test from "ava";
import { formatAddress, parseAddress, type TransportAddress } from "../../src/link/transport/address.js";
import { listen } from "../../src/link/transport/connect.js";

const good: Array<[string, TransportAddress]> = [
  ["unix:/run/iopf.sock", { kind: "unix", path: "/run/iopf.sock" }],
  ["tcp:127.0.0.1:7000", { kind: "tcp", host: "127.0.0.1", port: 7000 }],
  ["tcp:localhost:0", { kind: "tcp", host: "localhost", port: 0 }],
  ["tcp:[::1]:7000", { kind: "tcp", host: "::1", port: 7000 }],
  ["ws://127.0.0.1:7000/link", { kind: "ws", host: "127.0.0.1", port: 7000, path: "/link" }],
  ["ws://[::1]:7000/", { kind: "ws", host: "::1", port: 7000, path: "/" }],
  ["chardev:/dev/vport0p1", { kind: "chardev", path: "/dev/vport0p1" }],
];

for (const [text, address] of good) {
  test(`parses ${text}`, (t) => {
    t.deepEqual(parseAddress(text), address);
    t.deepEqual(parseAddress(formatAddress(address)), address, "formatAddress round-trips");
  });
}

const bad: Array<[string, RegExp]> = [
  ["/run/iopf.sock", /no transport prefix/],
  ["udp:1.2.3.4:5", /unknown transport "udp"/],
  ["unix:", /expected a path after unix:/],
  ["chardev:", /expected a path after chardev:/],
  ["tcp:127.0.0.1", /expected HOST:PORT/],
  ["tcp:127.0.0.1:70000", /port "70000" is not a number from 0 to 65535/],
  ["tcp:127.0.0.1:http", /port "http"/],
  ["tcp:::1:7000", /IPv6 host goes in brackets/],
  ["ws://127.0.0.1:7000/link?x=1", /host, a port and a path only/],
  ["ws://", /not a valid ws:\/\/ URL/],
  ["wss://127.0.0.1:7000/link", /wss:\/\/ \(TLS\) is not supported/],
];

for (const [text, why] of bad) {
  test(`rejects ${JSON.stringify(text)}, naming it and the accepted forms`, (t) => {
    const err = t.throws(() => parseAddress(text));
    t.regex(err?.message ?? "", why);
    t.true(err?.message.includes(`"${text}"`), "names the bad input");
    t.regex(err?.message ?? "", /Accepted forms: unix:.*tcp:.*ws:\/\/.*chardev:/);
  });
}

test("listen() on a character device says to connect() instead", async (t) => {
  await t.throwsAsync(listen("chardev:/dev/vport0p1"), { message: /opened, not listened on; use connect\(\)/ });
});
