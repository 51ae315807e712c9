// A warning that can fire once per fault group, logged at most twice a
// second per key: a device that keeps sending groups the vIOMMU model
// cannot show must not flood the log (100k such groups wrote 35k lines in
// seconds). The first occurrence is logged at once; the rest of its window
// as one line with their count and the last one's fields.
export class RepeatedWarning {
  private readonly windows = new Map<string, { repeated: number; last: object }>();

  constructor(
    private readonly warn: (msg: string, fields: object) => void,
    private readonly msg: string,
    private readonly windowMs = 1000,
  ) {}

  report(key: string, fields: object): void {
    const open = this.windows.get(key);
    if (open) {
      open.repeated++;
      open.last = fields;
      return;
    }
    this.warn(this.msg, fields);
    this.windows.set(key, { repeated: 0, last: fields });
    // Unref'd: a pending summary never keeps the relay alive.
    setTimeout(() => this.close(key), this.windowMs).unref();
  }

  private close(key: string): void {
    const w = this.windows.get(key);
    this.windows.delete(key);
    if (w && w.repeated > 0) this.warn(this.msg, { ...w.last, repeated: w.repeated, withinMs: this.windowMs });
  }
}
