// What a failed end-to-end test prints about a VM: the last lines of its
// console log, and where the whole log is.
import { existsSync, readFileSync } from "node:fs";

export function consoleTail(label: string, path: string, lines = 60): string {
  if (!existsSync(path)) return `${label}: no console log at ${path} (the VM never started?)`;
  const tail = readFileSync(path, "utf8").split("\n").slice(-lines).join("\n");
  return `${label}: last ${lines} lines of ${path}:\n${tail}`;
}
