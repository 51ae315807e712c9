// docs/protocol.md as tests read it: a section's text, its table rows, its
// blocks of hex bytes. Tests that check the spec against the code use these,
// so that the document cannot drift from what the code does.
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const PATH = fileURLToPath(new URL("../../../docs/protocol.md", import.meta.url));

/** The text of section `## n.`, up to the next section. */
export function protocolSection(n: number): string {
  const text = readFileSync(PATH, "utf8");
  const start = text.indexOf(`\n## ${n}. `);
  if (start < 0) throw new Error(`docs/protocol.md has no section "## ${n}."`);
  const end = text.indexOf("\n## ", start + 1);
  return text.slice(start, end < 0 ? undefined : end);
}

/** The cells of every table row in text whose first cell is a number, as [number, ...other cells]. */
export function numberedRows(text: string): [number, ...string[]][] {
  const rows: [number, ...string[]][] = [];
  for (const line of text.split("\n")) {
    const cells = line.trim().replace(/^\|/, "").replace(/\|$/, "").split("|").map((c) => c.trim());
    if (!line.trim().startsWith("|") || !/^\d+$/.test(cells[0] ?? "")) continue;
    rows.push([Number(cells[0]), ...cells.slice(1)]);
  }
  return rows;
}

/**
 * The bytes of each fenced code block in text, in order. On each line the
 * leading two-digit hex tokens are bytes; the first other token starts a
 * comment that runs to the end of the line.
 */
export function hexBlocks(text: string): Buffer[] {
  const blocks: Buffer[] = [];
  const fences = text.split(/^\s*```.*$/m);
  // Odd pieces are inside a fence.
  for (let i = 1; i < fences.length; i += 2) {
    const bytes: number[] = [];
    for (const line of fences[i]!.split("\n")) {
      for (const token of line.trim().split(/\s+/)) {
        if (!/^[0-9a-f]{2}$/.test(token)) break;
        bytes.push(parseInt(token, 16));
      }
    }
    blocks.push(Buffer.from(bytes));
  }
  return blocks;
}
