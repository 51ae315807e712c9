/*
 * The kernel emulator: keeps the contract of an iommufd fault fd
 * (drivers/iommu/iommufd/fault.c, Linux 6.12) so the relay can be tested and
 * benchmarked without the kernel. Two front ends share one model:
 *
 * - stream (default): the relay's end of an AF_UNIX stream socket, inherited
 *   as fd 3 (the emulator's end) and fd 4 (a copy of the relay's end, used
 *   only to ask how many bytes the relay has not read yet, FIONREAD). Fast,
 *   for benchmarks and most tests. Cookies are given when a group is
 *   written into the socket, not when the relay reads it; an answer for a
 *   group the relay has not read yet is refused ("unread-cookie"), as the
 *   kernel refuses a cookie it has not given. A stream reader may see a
 *   group split across reads.
 * - kernel-exact (--fuse DIR): a FUSE file DIR/fault that behaves like the
 *   fault fd itself: read() hands out whole groups only, giving cookies at
 *   that moment (lowest free, from 1: the kernel's XA_FLAGS_ALLOC1 xarray),
 *   fails with EINVAL when the first waiting group does not fit and returns
 *   0 when none waits; write() takes 8-byte answers in order and stops at
 *   the first unknown cookie or bad code, returning the bytes before it or
 *   EINVAL; poll() says POLLIN while groups wait. For crash tests and groups
 *   larger than one read.
 *
 * Both: 40-byte struct iommu_hwpt_pgfault records, LAST_PAGE on a group's
 * last; a detach answers INVALID for the device's groups, read or not, so a
 * later answer for one of them is an unknown cookie. Every answer the kernel
 * would refuse is recorded as a violation (kinds unknown-cookie,
 * repeated-cookie, unread-cookie, bad-code, partial-answer), and at quit
 * every group read and never answered (unanswered-group). It also records
 * each answer's latency (delivery to answer) in a log-linear histogram, and
 * keeps the slowest answers with their delivery times, so that a benchmark
 * can put each outlier beside what the answering processes did meanwhile.
 *
 * Control: one command per line on stdin, "<id> <verb> key=value...", one
 * JSON line per command on stdout carrying the same id:
 *   raise dev= pasid= grpid= perm= addr= records= [count=]
 *   load devices= records= rate=(groups/s, 0 = as fast as answered)
 *        duration_ms= max_outstanding= [dev_base=] [pasid=]   (replies at its end)
 *   stats | detach dev= | quit (final stats, then exit; EOF on stdin too)
 *   slowest   (the slowest answers so far: delivery time on CLOCK_MONOTONIC and latency, in ns)
 *
 * It must never be the bottleneck: one poll() loop, stream deliveries
 * batched into 64 KiB writes, answers read 64 KiB at a time, one clock read
 * per batch.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fuse.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SOCK_FD 3
#define PEER_FD 4
#define REC_SIZE 40
#define RESP_SIZE 8
#define FLAG_PASID_VALID 1u
#define FLAG_LAST_PAGE 2u
#define IO_CHUNK (64 * 1024)
#define MAX_VIOLATIONS_KEPT 100
#define PARTIAL_GRACE_NS 50000000ull /* a partial answer left this long is a violation */
#define HIST_BUCKETS (32 + 59 * 32)
#define SLOWEST_KEPT 4096
/* FUSE: one request holds at most this much data each way (max_pages 256). */
#define FUSE_IO_MAX (1024 * 1024)
#define FUSE_ROOT 1
#define FUSE_FILE 2
/* A stream group must fit the stream's write buffer; a FUSE group one FUSE read. */
#define MAX_STREAM_RECORDS (IO_CHUNK / REC_SIZE)
#define MAX_FUSE_RECORDS (FUSE_IO_MAX / REC_SIZE)

enum cookie_state { C_NEVER = 0, C_OUTSTANDING, C_ANSWERED, C_AUTO };

struct group {
	uint32_t dev, pasid, grpid, perm, nrec;
	uint64_t addr;
};

static int fuse_mode;
static int fuse_fd = -1;
static const char *fuse_dir;

/* Per cookie, indexed by cookie value. */
static uint8_t *c_state;
static uint32_t *c_dev;
static uint64_t *c_time;
static uint64_t *c_end; /* stream: offset just past the group's last byte */
static size_t c_cap;
static uint32_t c_next = 1; /* lowest never-assigned cookie */
static uint32_t *freeheap;  /* min-heap of freed cookies below c_next */
static size_t free_len, free_cap;

/* Raised groups waiting for delivery (FIFO): the kernel's list of unread groups. */
static struct group *queue;
static size_t q_head, q_len, q_cap;

/* Stream front end. */
static uint8_t outbuf[IO_CHUNK * 2];
static size_t out_off, out_len;
static uint64_t stream_placed;  /* bytes ever put in outbuf */
static uint64_t stream_written; /* bytes ever written into the socket */
static uint64_t stream_consumed; /* bytes the relay is known to have read */
static uint8_t inbuf[IO_CHUNK + RESP_SIZE];
static size_t in_carry;
static uint64_t carry_since;
static int peer_closed;

/* FUSE front end. */
static uint8_t *fuse_buf;
static uint64_t poll_kh;
static int poll_armed;

static uint64_t delivered_groups, delivered_records, answered_ok, answered_invalid, auto_answered, outstanding;
static uint64_t violation_count;
static char *violations[MAX_VIOLATIONS_KEPT];
static uint64_t hist[HIST_BUCKETS], lat_count, lat_max;
/* The slowest answers, a min-heap by latency: the root is the first to give way to a slower one. */
static struct slow { uint64_t lat, at; } slowest[SLOWEST_KEPT];
static size_t slowest_len;

static struct {
	int active;
	long id;
	uint32_t devices, records, dev_base, pasid;
	uint64_t rate, max_outstanding, start, end, generated, seq;
} load;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);
	if (!q) {
		fprintf(stderr, "kernel-emulator: out of memory (%zu bytes)\n", n);
		exit(2);
	}
	return q;
}

/* Every violation is counted by kind, beyond the ones kept whole. */
static const char *const violation_kinds[] = { "unknown-cookie", "repeated-cookie", "unread-cookie", "bad-code", "partial-answer", "unanswered-group" };
#define VIOLATION_KINDS (sizeof violation_kinds / sizeof violation_kinds[0])
static uint64_t violations_by_kind[VIOLATION_KINDS];

static void violation(const char *fmt, ...)
{
	violation_count++;
	for (size_t k = 0; k < VIOLATION_KINDS; k++) {
		char key[40];
		snprintf(key, sizeof key, "\"kind\":\"%s\"", violation_kinds[k]);
		if (strstr(fmt, key)) {
			violations_by_kind[k]++;
			break;
		}
	}
	if (violation_count > MAX_VIOLATIONS_KEPT)
		return;
	char buf[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	violations[violation_count - 1] = strdup(buf);
}

/* ---- cookies: lowest free first ---- */

static void heap_push(uint32_t v)
{
	if (free_len == free_cap) {
		free_cap = free_cap ? free_cap * 2 : 1024;
		freeheap = xrealloc(freeheap, free_cap * sizeof *freeheap);
	}
	size_t i = free_len++;
	while (i > 0 && freeheap[(i - 1) / 2] > v) {
		freeheap[i] = freeheap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	freeheap[i] = v;
}

static uint32_t heap_pop(void)
{
	uint32_t top = freeheap[0], last = freeheap[--free_len];
	size_t i = 0;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= free_len)
			break;
		if (c + 1 < free_len && freeheap[c + 1] < freeheap[c])
			c++;
		if (freeheap[c] >= last)
			break;
		freeheap[i] = freeheap[c];
		i = c;
	}
	if (free_len > 0)
		freeheap[i] = last;
	return top;
}

static uint32_t cookie_alloc(void)
{
	if (free_len > 0)
		return heap_pop();
	uint32_t c = c_next++;
	if (c >= c_cap) {
		size_t n = c_cap ? c_cap * 2 : 4096;
		c_state = xrealloc(c_state, n);
		c_dev = xrealloc(c_dev, n * sizeof *c_dev);
		c_time = xrealloc(c_time, n * sizeof *c_time);
		c_end = xrealloc(c_end, n * sizeof *c_end);
		memset(c_state + c_cap, C_NEVER, n - c_cap);
		c_cap = n;
	}
	return c;
}

/* ---- latency histogram: 32 linear buckets, then 32 per power of two (~3%) ---- */

static unsigned hist_index(uint64_t v)
{
	if (v < 32)
		return (unsigned)v;
	unsigned e = 63 - (unsigned)__builtin_clzll(v);
	return 32 + (e - 5) * 32 + (unsigned)((v >> (e - 5)) & 31);
}

static uint64_t hist_value(unsigned idx)
{
	if (idx < 32)
		return idx;
	unsigned e = (idx - 32) / 32 + 5, sub = (idx - 32) % 32;
	uint64_t width = 1ull << (e - 5);
	return ((32ull + sub) << (e - 5)) + width / 2;
}

static uint64_t percentile(double p)
{
	if (lat_count == 0)
		return 0;
	uint64_t rank = (uint64_t)(p * (double)lat_count);
	if (rank >= lat_count)
		rank = lat_count - 1;
	uint64_t seen = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		seen += hist[i];
		if (seen > rank)
			return hist_value(i) < lat_max ? hist_value(i) : lat_max;
	}
	return lat_max;
}

/* ---- the list of groups waiting to be read ---- */

static void enqueue(const struct group *g)
{
	if (q_len == q_cap) {
		size_t n = q_cap ? q_cap * 2 : 1024;
		struct group *nq = xrealloc(NULL, n * sizeof *nq);
		for (size_t i = 0; i < q_len; i++)
			nq[i] = queue[(q_head + i) % q_cap];
		free(queue);
		queue = nq;
		q_head = 0;
		q_cap = n;
	}
	queue[(q_head + q_len) % q_cap] = *g;
	q_len++;
}

static struct group *queue_front(void) { return q_len ? &queue[q_head] : NULL; }

static void queue_pop(void)
{
	q_head = (q_head + 1) % q_cap;
	q_len--;
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Writes one group's records at out with a fresh cookie: the moment the kernel would hand the group to a reader. */
static void deliver(const struct group *g, uint8_t *out, uint64_t t)
{
	uint32_t cookie = cookie_alloc();
	c_state[cookie] = C_OUTSTANDING;
	c_dev[cookie] = g->dev;
	c_time[cookie] = t;
	for (uint32_t i = 0; i < g->nrec; i++) {
		uint8_t *r = out + (size_t)i * REC_SIZE;
		uint32_t flags = (g->pasid ? FLAG_PASID_VALID : 0) | (i + 1 == g->nrec ? FLAG_LAST_PAGE : 0);
		uint64_t addr = g->addr + (uint64_t)i * 4096;
		memset(r, 0, REC_SIZE);
		put_u32(r + 0, flags);
		put_u32(r + 4, g->dev);
		put_u32(r + 8, g->pasid);
		put_u32(r + 12, g->grpid);
		put_u32(r + 16, g->perm);
		memcpy(r + 24, &addr, 8);
		put_u32(r + 36, cookie);
	}
	c_end[cookie] = stream_placed + (uint64_t)g->nrec * REC_SIZE;
	delivered_groups++;
	delivered_records += g->nrec;
	outstanding++;
}

/* How many load groups may be generated now. */
static uint64_t load_allowance(uint64_t t)
{
	if (!load.active || t >= load.end)
		return 0;
	uint64_t inflight = outstanding + q_len;
	if (inflight >= load.max_outstanding)
		return 0;
	uint64_t cap = load.max_outstanding - inflight;
	if (load.rate == 0)
		return cap;
	uint64_t due = (uint64_t)((double)load.rate * (double)(t - load.start) / 1e9);
	uint64_t want = due > load.generated ? due - load.generated : 0;
	return want < cap ? want : cap;
}

/* Moves the groups the load may generate now into the list. */
static int generate_load(uint64_t t)
{
	uint64_t allow = load_allowance(t);
	for (uint64_t i = 0; i < allow; i++) {
		uint64_t s = load.seq++;
		struct group g = {
			.dev = load.dev_base + (uint32_t)(s % load.devices),
			.pasid = load.pasid,
			.grpid = (uint32_t)((s / load.devices) % 512),
			.perm = 3,
			.nrec = load.records,
			.addr = (s * load.records) << 12,
		};
		enqueue(&g);
		load.generated++;
	}
	return allow > 0;
}

/* ---- answers ---- */

/* The relay has read the stream up to here (it can have read no more than was written). */
static uint64_t stream_read_up_to(void)
{
	int unread = 0;
	if (ioctl(PEER_FD, FIONREAD, &unread) == 0 && unread >= 0 && (uint64_t)unread <= stream_written)
		stream_consumed = stream_written - (uint64_t)unread;
	return stream_consumed;
}

static void keep_if_slow(uint64_t lat, uint64_t at)
{
	size_t i;
	if (slowest_len < SLOWEST_KEPT) {
		i = slowest_len++;
		while (i > 0 && slowest[(i - 1) / 2].lat > lat) {
			slowest[i] = slowest[(i - 1) / 2];
			i = (i - 1) / 2;
		}
		slowest[i] = (struct slow){ lat, at };
		return;
	}
	if (lat <= slowest[0].lat)
		return;
	i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		uint64_t mlat = lat;
		if (l < SLOWEST_KEPT && slowest[l].lat < mlat)
			m = l, mlat = slowest[l].lat;
		if (r < SLOWEST_KEPT && slowest[r].lat < mlat)
			m = r;
		if (m == i)
			break;
		slowest[i] = slowest[m];
		i = m;
	}
	slowest[i] = (struct slow){ lat, at };
}

/* One answer; returns 0 when the kernel would take it, -1 when it would fail the write with EINVAL. */
static int answer(uint32_t cookie, uint32_t code, uint64_t t)
{
	if (code != 0 && code != 1) {
		violation("{\"kind\":\"bad-code\",\"cookie\":%u,\"code\":%u}", cookie, code);
		return -1;
	}
	uint8_t st = cookie < c_cap ? c_state[cookie] : C_NEVER;
	if (st == C_NEVER || st == C_AUTO) {
		violation("{\"kind\":\"unknown-cookie\",\"cookie\":%u,\"code\":%u%s}", cookie, code,
			  st == C_AUTO ? ",\"detail\":\"answered by detach\"" : "");
		return -1;
	}
	if (st == C_ANSWERED) {
		violation("{\"kind\":\"repeated-cookie\",\"cookie\":%u,\"code\":%u}", cookie, code);
		return -1;
	}
	if (!fuse_mode && c_end[cookie] > stream_consumed && c_end[cookie] > stream_read_up_to()) {
		violation("{\"kind\":\"unread-cookie\",\"cookie\":%u,\"code\":%u}", cookie, code);
		return -1;
	}
	uint64_t lat = t - c_time[cookie];
	hist[hist_index(lat)]++;
	keep_if_slow(lat, c_time[cookie]);
	lat_count++;
	if (lat > lat_max)
		lat_max = lat;
	if (code == 0)
		answered_ok++;
	else
		answered_invalid++;
	c_state[cookie] = C_ANSWERED;
	outstanding--;
	heap_push(cookie);
	return 0;
}

/* ---- the stream front end ---- */

static int room_for(uint32_t nrec) { return out_len + (size_t)nrec * REC_SIZE <= sizeof outbuf; }

/* Fills the out buffer from the list (the load first generates into it) and writes what the socket takes. */
static void stream_out(void)
{
	if (peer_closed)
		return;
	for (;;) {
		if (out_off == out_len) {
			out_off = out_len = 0;
			uint64_t t = now_ns();
			generate_load(t);
			struct group *g;
			while ((g = queue_front()) && room_for(g->nrec) && out_len < IO_CHUNK) {
				deliver(g, outbuf + out_len, t);
				out_len += (size_t)g->nrec * REC_SIZE;
				stream_placed += (uint64_t)g->nrec * REC_SIZE;
				queue_pop();
			}
			if (out_len == 0)
				return;
		}
		ssize_t n = write(SOCK_FD, outbuf + out_off, out_len - out_off);
		if (n > 0) {
			out_off += (size_t)n;
			stream_written += (uint64_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		peer_closed = 1;
		return;
	}
}

/* Reads every answer available; returns after EAGAIN or EOF. */
static void stream_in(void)
{
	for (;;) {
		ssize_t n = read(SOCK_FD, inbuf + in_carry, IO_CHUNK);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK))
				peer_closed = 1;
			return;
		}
		uint64_t t = now_ns();
		size_t total = in_carry + (size_t)n, whole = total - total % RESP_SIZE;
		for (size_t p = 0; p < whole; p += RESP_SIZE) {
			uint32_t cookie, code;
			memcpy(&cookie, inbuf + p, 4);
			memcpy(&code, inbuf + p + 4, 4);
			answer(cookie, code, t);
		}
		in_carry = total - whole;
		if (in_carry) {
			memmove(inbuf, inbuf + whole, in_carry);
			carry_since = t;
		}
	}
}

/* A partial answer that stayed partial past the grace period: drop it, as the kernel fails such a write with ESPIPE. */
static void check_partial(uint64_t t)
{
	if (in_carry && t - carry_since >= PARTIAL_GRACE_NS) {
		violation("{\"kind\":\"partial-answer\",\"bytes\":%zu}", in_carry);
		in_carry = 0;
	}
}

/* ---- the FUSE front end: DIR/fault behaves as the fault fd ---- */

static void fuse_send(uint64_t unique, int error, const void *body, size_t len)
{
	struct fuse_out_header h = { .len = (uint32_t)(sizeof h + len), .error = error, .unique = unique };
	uint8_t msg[sizeof h + 256];
	const uint8_t *out = msg;
	uint8_t *big = NULL;
	if (sizeof h + len > sizeof msg)
		out = big = xrealloc(NULL, sizeof h + len);
	memcpy((uint8_t *)out, &h, sizeof h);
	if (len)
		memcpy((uint8_t *)out + sizeof h, body, len);
	/* ENOENT: the request was interrupted (its reader died); the kernel dropped it. */
	while (write(fuse_fd, out, sizeof h + len) < 0 && errno == EINTR)
		;
	free(big);
}

static void fuse_attr_of(uint64_t node, struct fuse_attr *a)
{
	memset(a, 0, sizeof *a);
	a->ino = node;
	a->mode = node == FUSE_ROOT ? S_IFDIR | 0700 : S_IFREG | 0600;
	a->nlink = node == FUSE_ROOT ? 2 : 1;
	a->blksize = 4096;
}

/* read(): whole groups only, cookies given now; EINVAL when the first does not fit, 0 when none waits. */
static void fuse_read(uint64_t unique, const struct fuse_read_in *in)
{
	if (in->size % REC_SIZE) {
		fuse_send(unique, -ESPIPE, NULL, 0);
		return;
	}
	static uint8_t out[FUSE_IO_MAX];
	size_t done = 0, room = in->size < sizeof out ? in->size : sizeof out;
	uint64_t t = now_ns();
	struct group *g;
	while ((g = queue_front())) {
		size_t bytes = (size_t)g->nrec * REC_SIZE;
		if (bytes > room - done) {
			if (done == 0) {
				fuse_send(unique, -EINVAL, NULL, 0);
				return;
			}
			break;
		}
		deliver(g, out + done, t);
		done += bytes;
		queue_pop();
	}
	fuse_send(unique, 0, out, done);
}

/* write(): answers in order, stopping at the first the kernel refuses. */
static void fuse_write(uint64_t unique, const struct fuse_write_in *in, const uint8_t *data)
{
	if (in->size % RESP_SIZE) {
		fuse_send(unique, -ESPIPE, NULL, 0);
		return;
	}
	uint64_t t = now_ns();
	uint32_t done = 0;
	while (done < in->size) {
		uint32_t cookie, code;
		memcpy(&cookie, data + done, 4);
		memcpy(&code, data + done + 4, 4);
		if (answer(cookie, code, t) < 0)
			break;
		done += RESP_SIZE;
	}
	if (done == 0) {
		fuse_send(unique, -EINVAL, NULL, 0);
		return;
	}
	struct fuse_write_out out = { .size = done };
	fuse_send(unique, 0, &out, sizeof out);
}

/* Wakes a poll() waiting for groups. */
static void fuse_wake_pollers(void)
{
	if (!poll_armed || q_len == 0)
		return;
	poll_armed = 0;
	struct fuse_notify_poll_wakeup_out w = { .kh = poll_kh };
	fuse_send(0, FUSE_NOTIFY_POLL, &w, sizeof w);
}

static void fuse_request(const uint8_t *req, size_t len)
{
	const struct fuse_in_header *h = (const void *)req;
	const uint8_t *arg = req + sizeof *h;
	if (len < sizeof *h)
		return;
	switch (h->opcode) {
	case FUSE_INIT: {
		const struct fuse_init_in *in = (const void *)arg;
		struct fuse_init_out out = { .major = FUSE_KERNEL_VERSION,
					     .minor = in->minor < FUSE_KERNEL_MINOR_VERSION ? in->minor : FUSE_KERNEL_MINOR_VERSION,
					     .flags = FUSE_MAX_PAGES,
					     .max_write = FUSE_IO_MAX,
					     .max_pages = FUSE_IO_MAX / 4096,
					     .max_background = 16,
					     .congestion_threshold = 12,
					     .time_gran = 1 };
		fuse_send(h->unique, 0, &out, sizeof out);
		return;
	}
	case FUSE_LOOKUP: {
		if (h->nodeid != FUSE_ROOT || strcmp((const char *)arg, "fault") != 0) {
			fuse_send(h->unique, -ENOENT, NULL, 0);
			return;
		}
		struct fuse_entry_out out = { .nodeid = FUSE_FILE, .entry_valid = 3600, .attr_valid = 3600 };
		fuse_attr_of(FUSE_FILE, &out.attr);
		fuse_send(h->unique, 0, &out, sizeof out);
		return;
	}
	case FUSE_GETATTR: {
		struct fuse_attr_out out = { .attr_valid = 3600 };
		fuse_attr_of(h->nodeid, &out.attr);
		fuse_send(h->unique, 0, &out, sizeof out);
		return;
	}
	case FUSE_OPEN: {
		/* No page cache, no offsets: every read() and write() reaches us with its own byte count. */
		struct fuse_open_out out = { .fh = 1, .open_flags = FOPEN_DIRECT_IO | FOPEN_NONSEEKABLE | FOPEN_STREAM };
		fuse_send(h->unique, 0, &out, sizeof out);
		return;
	}
	case FUSE_OPENDIR: {
		struct fuse_open_out out = { .fh = 2 };
		fuse_send(h->unique, 0, &out, sizeof out);
		return;
	}
	case FUSE_READ:
		fuse_read(h->unique, (const void *)arg);
		return;
	case FUSE_WRITE:
		fuse_write(h->unique, (const void *)arg, arg + sizeof(struct fuse_write_in));
		return;
	case FUSE_POLL: {
		const struct fuse_poll_in *in = (const void *)arg;
		if (in->flags & FUSE_POLL_SCHEDULE_NOTIFY) {
			poll_kh = in->kh;
			poll_armed = 1;
		}
		struct fuse_poll_out out = { .revents = POLLOUT | (q_len ? POLLIN : 0) };
		fuse_send(h->unique, 0, &out, sizeof out);
		return;
	}
	case FUSE_READDIR:
		fuse_send(h->unique, 0, NULL, 0);
		return;
	case FUSE_FLUSH:
	case FUSE_RELEASE:
	case FUSE_RELEASEDIR:
	case FUSE_DESTROY:
		fuse_send(h->unique, 0, NULL, 0);
		return;
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
	case FUSE_INTERRUPT:
		return; /* no reply */
	default:
		fuse_send(h->unique, -ENOSYS, NULL, 0);
		return;
	}
}

/* Serves every request waiting on /dev/fuse; false once the file system is gone. */
static int fuse_serve(void)
{
	for (;;) {
		ssize_t n = read(fuse_fd, fuse_buf, FUSE_IO_MAX + 4096);
		if (n < 0 && (errno == EINTR || errno == ENOENT))
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		if (n <= 0)
			return 0; /* ENODEV: unmounted */
		fuse_request(fuse_buf, (size_t)n);
	}
}

static void fuse_mount(const char *dir)
{
	fuse_fd = open("/dev/fuse", O_RDWR | O_CLOEXEC | O_NONBLOCK);
	if (fuse_fd < 0) {
		fprintf(stderr, "kernel-emulator: cannot open /dev/fuse for the kernel-exact mode: %s (it needs root and the fuse module)\n", strerror(errno));
		exit(2);
	}
	char opts[128];
	snprintf(opts, sizeof opts, "fd=%d,rootmode=40000,user_id=%u,group_id=%u", fuse_fd, getuid(), getgid());
	if (mount("iopf-kernel-emulator", dir, "fuse.iopf-kernel-emulator", MS_NOSUID | MS_NODEV, opts) < 0) {
		fprintf(stderr, "kernel-emulator: cannot mount a FUSE file system on %s: %s\n", dir, strerror(errno));
		exit(2);
	}
	fuse_dir = dir;
	fuse_buf = xrealloc(NULL, FUSE_IO_MAX + 4096);
}

static void fuse_unmount(void)
{
	if (fuse_dir)
		umount2(fuse_dir, MNT_DETACH);
}

/* ---- control ---- */

static char *reply;
static size_t reply_len, reply_cap;

static void out(const char *fmt, ...)
{
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(reply + reply_len, reply_cap - reply_len, fmt, ap);
		va_end(ap);
		if (n >= 0 && reply_len + (size_t)n < reply_cap) {
			reply_len += (size_t)n;
			return;
		}
		reply_cap = reply_cap * 2 + (size_t)n + 256;
		reply = xrealloc(reply, reply_cap);
	}
}

static void send_reply(void)
{
	out("\n");
	size_t off = 0;
	while (off < reply_len) {
		ssize_t n = write(1, reply + off, reply_len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fuse_unmount();
			exit(3); /* the controller is gone */
		}
		off += (size_t)n;
	}
	reply_len = 0;
}

static void stats(long id, int final)
{
	if (final) {
		/* Stream: a group still in the socket was never read; the kernel would keep it for the next reader. */
		uint64_t read_up_to = fuse_mode ? 0 : stream_read_up_to();
		for (uint32_t c = 1; c < c_next; c++)
			if (c_state[c] == C_OUTSTANDING && (fuse_mode || c_end[c] <= read_up_to))
				violation("{\"kind\":\"unanswered-group\",\"cookie\":%u,\"dev\":%u}", c, c_dev[c]);
	}
	out("{\"id\":%ld,\"ok\":true,\"delivered_groups\":%" PRIu64 ",\"delivered_records\":%" PRIu64
	    ",\"answered_success\":%" PRIu64 ",\"answered_invalid\":%" PRIu64 ",\"auto_answered\":%" PRIu64
	    ",\"outstanding\":%" PRIu64 ",\"queued\":%zu,\"max_cookie\":%u,\"peer_closed\":%s"
	    ",\"latency_ns\":{\"count\":%" PRIu64 ",\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "}"
	    ",\"violation_count\":%" PRIu64,
	    id, delivered_groups, delivered_records, answered_ok, answered_invalid, auto_answered, outstanding,
	    q_len, c_next - 1, peer_closed ? "true" : "false", lat_count, percentile(0.5), percentile(0.99),
	    percentile(0.999), lat_max, violation_count);
	out(",\"violation_kinds\":{");
	for (size_t k = 0; k < VIOLATION_KINDS; k++)
		out("%s\"%s\":%" PRIu64, k ? "," : "", violation_kinds[k], violations_by_kind[k]);
	out("},\"violations\":[");
	uint64_t kept = violation_count < MAX_VIOLATIONS_KEPT ? violation_count : MAX_VIOLATIONS_KEPT;
	for (uint64_t i = 0; i < kept; i++)
		out("%s%s", i ? "," : "", violations[i]);
	out("]}");
	send_reply();
}

static void report_slowest(long id)
{
	out("{\"id\":%ld,\"ok\":true,\"slowest\":[", id);
	for (size_t i = 0; i < slowest_len; i++)
		out("%s[%" PRIu64 ",%" PRIu64 "]", i ? "," : "", slowest[i].at, slowest[i].lat);
	out("]}");
	send_reply();
}

/* The kernel answers INVALID for a detached device's groups, read or not, and forgets them. */
static void detach(long id, uint32_t dev)
{
	uint64_t answered = 0, dropped = 0;
	for (uint32_t c = 1; c < c_next; c++) {
		if (c_state[c] == C_OUTSTANDING && c_dev[c] == dev) {
			c_state[c] = C_AUTO;
			outstanding--;
			auto_answered++;
			answered++;
			heap_push(c);
		}
	}
	size_t kept = 0;
	for (size_t i = 0; i < q_len; i++) {
		struct group g = queue[(q_head + i) % q_cap];
		if (g.dev == dev)
			dropped++;
		else
			queue[(q_head + kept++) % q_cap] = g;
	}
	q_len = kept;
	auto_answered += dropped;
	out("{\"id\":%ld,\"ok\":true,\"answered\":%" PRIu64 ",\"dropped\":%" PRIu64 "}", id, answered, dropped);
	send_reply();
}

static int arg(const char *line, const char *key, uint64_t *v)
{
	size_t kl = strlen(key);
	for (const char *p = line; (p = strstr(p, key)) != NULL; p += kl) {
		if ((p == line || p[-1] == ' ') && p[kl] == '=') {
			*v = strtoull(p + kl + 1, NULL, 0);
			return 1;
		}
	}
	return 0;
}

static void fail(long id, const char *msg)
{
	out("{\"id\":%ld,\"ok\":false,\"error\":\"%s\"}", id, msg);
	send_reply();
}

static uint64_t max_group_records(void) { return fuse_mode ? MAX_FUSE_RECORDS : MAX_STREAM_RECORDS; }

static void command(char *line)
{
	char *end;
	long id = strtol(line, &end, 10);
	if (end == line) {
		fail(-1, "expected '<id> <verb> key=value...'");
		return;
	}
	while (*end == ' ')
		end++;
	char *verb = end;
	size_t vl = strcspn(verb, " ");
	char *args = verb + vl;
	uint64_t dev = 0, pasid = 0, grpid = 0, perm = 0, addr = 0, records = 1, count = 1;
	char msg[96];
	if (!fuse_mode)
		stream_in(); /* answers already sent count before anything is reported or changed */
	if (vl == 5 && !strncmp(verb, "raise", 5)) {
		if (!arg(args, "dev", &dev)) {
			fail(id, "raise needs dev=");
			return;
		}
		arg(args, "pasid", &pasid);
		arg(args, "grpid", &grpid);
		arg(args, "perm", &perm);
		arg(args, "addr", &addr);
		arg(args, "records", &records);
		arg(args, "count", &count);
		if (records < 1 || records > max_group_records()) {
			snprintf(msg, sizeof msg, "records must be 1..%" PRIu64, max_group_records());
			fail(id, msg);
			return;
		}
		for (uint64_t i = 0; i < count; i++) {
			struct group g = { (uint32_t)dev, (uint32_t)pasid, (uint32_t)(grpid + i), (uint32_t)perm,
					   (uint32_t)records, addr + i * records * 4096 };
			enqueue(&g);
		}
		out("{\"id\":%ld,\"ok\":true,\"queued\":%" PRIu64 "}", id, count);
		send_reply();
	} else if (vl == 4 && !strncmp(verb, "load", 4)) {
		uint64_t devices = 1, rate = 0, duration = 1000, maxo = 1024, base = 1, lp = 1;
		arg(args, "devices", &devices);
		arg(args, "records", &records);
		arg(args, "rate", &rate);
		arg(args, "duration_ms", &duration);
		arg(args, "max_outstanding", &maxo);
		arg(args, "dev_base", &base);
		arg(args, "pasid", &lp);
		if (load.active) {
			fail(id, "a load is already running");
			return;
		}
		if (devices < 1 || records < 1 || records > max_group_records() || maxo < 1) {
			snprintf(msg, sizeof msg, "load needs devices>=1, records 1..%" PRIu64 ", max_outstanding>=1", max_group_records());
			fail(id, msg);
			return;
		}
		load.active = 1;
		load.id = id;
		load.devices = (uint32_t)devices;
		load.records = (uint32_t)records;
		load.rate = rate;
		load.max_outstanding = maxo;
		load.dev_base = (uint32_t)base;
		load.pasid = (uint32_t)lp;
		load.generated = 0;
		load.start = now_ns();
		load.end = load.start + duration * 1000000ull;
	} else if (vl == 5 && !strncmp(verb, "stats", 5)) {
		stats(id, 0);
	} else if (vl == 7 && !strncmp(verb, "slowest", 7)) {
		report_slowest(id);
	} else if (vl == 6 && !strncmp(verb, "detach", 6)) {
		if (!arg(args, "dev", &dev)) {
			fail(id, "detach needs dev=");
			return;
		}
		detach(id, (uint32_t)dev);
	} else if (vl == 4 && !strncmp(verb, "quit", 4)) {
		stats(id, 1);
		fuse_unmount();
		exit(0);
	} else {
		fail(id, "unknown verb; expected raise, load, stats, slowest, detach or quit");
	}
}

static void finish_load(uint64_t t)
{
	if (!load.active || t < load.end)
		return;
	load.active = 0;
	out("{\"id\":%ld,\"ok\":true,\"generated\":%" PRIu64 ",\"elapsed_ns\":%" PRIu64 "}", load.id, load.generated,
	    t - load.start);
	send_reply();
}

static void stream_setup(void)
{
	if (fcntl(SOCK_FD, F_SETFL, fcntl(SOCK_FD, F_GETFL) | O_NONBLOCK) < 0) {
		fprintf(stderr, "kernel-emulator: fd 3 must be the emulator's end of a socketpair: %s\n", strerror(errno));
		exit(2);
	}
	int unread;
	if (ioctl(PEER_FD, FIONREAD, &unread) < 0) {
		fprintf(stderr, "kernel-emulator: fd 4 must be a copy of the relay's end of the socketpair: %s\n", strerror(errno));
		exit(2);
	}
	int sz = 4 << 20;
	setsockopt(SOCK_FD, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	setsockopt(SOCK_FD, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 3 && !strcmp(argv[1], "--fuse")) {
		fuse_mode = 1;
		fuse_mount(argv[2]);
	} else if (argc == 1) {
		stream_setup();
	} else {
		fprintf(stderr, "usage: kernel-emulator [--fuse DIR]\n");
		return 2;
	}

	static char line[4096];
	size_t line_len = 0;
	for (;;) {
		uint64_t t = now_ns();
		int timeout = -1;
		if (load.active) {
			uint64_t left = load.end > t ? load.end - t : 0;
			timeout = (int)((left + 999999) / 1000000);
			if (load.rate && timeout > 1)
				timeout = 1;
		}
		if (in_carry) {
			uint64_t due = carry_since + PARTIAL_GRACE_NS;
			int ms = due > t ? (int)((due - t) / 1000000) + 1 : 0;
			if (timeout < 0 || ms < timeout)
				timeout = ms;
		}
		struct pollfd pfd[2] = { { .fd = 0, .events = POLLIN } };
		if (fuse_mode)
			pfd[1] = (struct pollfd){ .fd = fuse_fd, .events = POLLIN };
		else
			pfd[1] = (struct pollfd){ .fd = SOCK_FD, .events = peer_closed ? 0 : (short)(POLLIN | (out_off < out_len ? POLLOUT : 0)) };
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
			perror("kernel-emulator: poll");
			return 2;
		}
		t = now_ns();
		if (fuse_mode) {
			if (pfd[1].revents && !fuse_serve()) {
				fprintf(stderr, "kernel-emulator: the FUSE file system on %s went away\n", fuse_dir);
				return 2;
			}
			generate_load(t);
			fuse_wake_pollers();
		} else {
			if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))
				stream_in();
			check_partial(t);
			stream_out();
		}
		finish_load(t);
		if (pfd[0].revents & (POLLIN | POLLHUP)) {
			ssize_t n = read(0, line + line_len, sizeof line - 1 - line_len);
			if (n == 0) {
				stats(-1, 1);
				fuse_unmount();
				return 0;
			}
			if (n > 0) {
				line_len += (size_t)n;
				char *nl;
				while ((nl = memchr(line, '\n', line_len)) != NULL) {
					*nl = 0;
					command(line);
					size_t used = (size_t)(nl + 1 - line);
					memmove(line, nl + 1, line_len - used);
					line_len -= used;
				}
				if (line_len == sizeof line - 1)
					line_len = 0; /* an overlong line: drop it */
			}
			if (fuse_mode)
				fuse_wake_pollers();
			else
				stream_out();
		}
	}
}
