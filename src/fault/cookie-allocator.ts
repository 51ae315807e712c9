// Cookies as the kernel hands them out: the lowest free one, starting at 1,
// reused once answered (the kernel allocates them from an xarray).
export class CookieAllocator {
  private readonly free: number[] = [];
  private next = 1;
  private readonly live = new Set<number>();

  allocate(): number {
    const cookie = this.free.length > 0 ? this.popLowest() : this.next++;
    this.live.add(cookie);
    return cookie;
  }

  /** Frees a live cookie; false when it was not live (the kernel's EINVAL). */
  release(cookie: number): boolean {
    if (!this.live.delete(cookie)) return false;
    this.pushFree(cookie);
    return true;
  }

  isLive(cookie: number): boolean {
    return this.live.has(cookie);
  }

  get outstanding(): number {
    return this.live.size;
  }

  liveCookies(): number[] {
    return [...this.live];
  }

  // A binary min-heap of free cookies.
  private pushFree(c: number): void {
    const h = this.free;
    h.push(c);
    for (let i = h.length - 1; i > 0; ) {
      const p = (i - 1) >> 1;
      if (h[p]! <= h[i]!) break;
      [h[p], h[i]] = [h[i]!, h[p]!];
      i = p;
    }
  }

  private popLowest(): number {
    const h = this.free;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      for (let i = 0; ; ) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && h[l]! < h[m]!) m = l;
        if (r < h.length && h[r]! < h[m]!) m = r;
        if (m === i) break;
        [h[m], h[i]] = [h[i]!, h[m]!];
        i = m;
      }
    }
    return top;
  }
}
