// The protobufjs runtime the generated code imports (pbjs --dependency).
// 64-bit fields decode as plain numbers, not Long objects: a Long per page
// address would allocate on the hot path. Every 4 KiB-aligned u64 and every
// u64 below 2^53 is exact as a double; the raw record keeps the exact bits.
import protobuf from "protobufjs/minimal.js";

protobuf.util.Long = undefined as unknown as typeof protobuf.util.Long;
protobuf.configure();

export default protobuf;
