// A log line that can fire once per fault group, per connection or per
// session change, and so at the pace of whatever a guest or peer does: it is
// written at most once per window per key. The first occurrence is written
// at once; the rest of its window as one line with their count and the last
// one's fields. (100k groups a vIOMMU model cannot show wrote 35k lines in
// seconds before; a flapping agent wrote 20 MB/s of session changes.)
export class RateLimitedLog {
  private readonly windows = new Map<string, { repeated: number; last: object }>();

  constructor(
    private readonly write: (msg: string, fields: object) => void,
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
    this.write(this.msg, fields);
    this.windows.set(key, { repeated: 0, last: fields });
    // Unref'd: a pending summary never keeps the relay alive.
    setTimeout(() => this.close(key), this.windowMs).unref();
  }

  private close(key: string): void {
    const w = this.windows.get(key);
    this.windows.delete(key);
    if (w && w.repeated > 0) this.write(this.msg, { ...w.last, repeated: w.repeated, withinMs: this.windowMs });
  }
}
