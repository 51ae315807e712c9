/*
 * The kernel emulator: keeps the byte-level contract of an iommufd fault fd
 * on its end of an AF_UNIX stream socket inherited as fd 3, so the relay can
 * be tested and benchmarked without the kernel.
 *
 * Contract kept (drivers/iommu/iommufd/fault.c, Linux 6.12):
 * - it writes 40-byte struct iommu_hwpt_pgfault records, whole groups of one
 *   or more records with LAST_PAGE on the last; a stream reader may see a
 *   group split across reads (the relay assembles groups);
 * - cookies are assigned at delivery, from 1, lowest free first, and freed
 *   when answered (the kernel's XA_FLAGS_ALLOC1 xarray);
 * - it reads 8-byte struct iommu_hwpt_page_response answers; where the kernel
 *   would fail a write (unknown or repeated cookie, a code other than 0/1, a
 *   byte count not a multiple of 8) it records a violation instead, because
 *   a socket write cannot fail that way; a bad code leaves the group waiting,
 *   as in the kernel;
 * - detaching a device answers INVALID for its waiting groups, so a later
 *   answer for one of them is an unknown cookie (the kernel's EINVAL).
 * It also records each answer's latency (delivery to answer) in a log-linear
 * histogram, and at quit every group never answered.
 *
 * Control: one command per line on stdin, "<id> <verb> key=value...", one
 * JSON line per command on stdout carrying the same id:
 *   raise dev= pasid= grpid= perm= addr= records= [count=]
 *   load devices= records= rate=(groups/s, 0 = as fast as answered)
 *        duration_ms= max_outstanding= [dev_base=] [pasid=]   (replies at its end)
 *   stats | detach dev= | quit (final stats, then exit; EOF on stdin too)
 *
 * It must never be the bottleneck: one poll() loop, deliveries batched into
 * 64 KiB writes, answers read 64 KiB at a time, one clock read per batch.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SOCK_FD 3
#define REC_SIZE 40
#define RESP_SIZE 8
#define FLAG_PASID_VALID 1u
#define FLAG_LAST_PAGE 2u
#define IO_CHUNK (64 * 1024)
#define MAX_VIOLATIONS_KEPT 100
#define PARTIAL_GRACE_NS 50000000ull /* a partial answer left this long is a violation */
#define HIST_BUCKETS (32 + 59 * 32)

enum cookie_state { C_NEVER = 0, C_OUTSTANDING, C_ANSWERED, C_AUTO };

struct group {
	uint32_t dev, pasid, grpid, perm, nrec;
	uint64_t addr;
};

/* Per cookie, indexed by cookie value. */
static uint8_t *c_state;
static uint32_t *c_dev;
static uint64_t *c_time;
static size_t c_cap;
static uint32_t c_next = 1; /* lowest never-assigned cookie */
static uint32_t *freeheap;  /* min-heap of freed cookies below c_next */
static size_t free_len, free_cap;

/* Raised groups waiting for delivery (FIFO). */
static struct group *queue;
static size_t q_head, q_len, q_cap;

static uint8_t outbuf[IO_CHUNK * 2];
static size_t out_off, out_len;
static uint8_t inbuf[IO_CHUNK + RESP_SIZE];
static size_t in_carry;
static uint64_t carry_since;
static int peer_closed;

static uint64_t delivered_groups, delivered_records, answered_ok, answered_invalid, auto_answered, outstanding;
static uint64_t violation_count;
static char *violations[MAX_VIOLATIONS_KEPT];
static uint64_t hist[HIST_BUCKETS], lat_count, lat_max;

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

static void violation(const char *fmt, ...)
{
	violation_count++;
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

/* ---- delivery ---- */

static uint64_t queued_groups(void) { return q_len; }

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

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }

/* Appends one group's records with a fresh cookie; the caller checked room. */
static void deliver(const struct group *g, uint64_t t)
{
	uint32_t cookie = cookie_alloc();
	c_state[cookie] = C_OUTSTANDING;
	c_dev[cookie] = g->dev;
	c_time[cookie] = t;
	for (uint32_t i = 0; i < g->nrec; i++) {
		uint8_t *r = outbuf + out_len;
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
		out_len += REC_SIZE;
	}
	delivered_groups++;
	delivered_records += g->nrec;
	outstanding++;
}

static int room_for(uint32_t nrec) { return out_len + (size_t)nrec * REC_SIZE <= sizeof outbuf; }

/* How many load groups may be generated now. */
static uint64_t load_allowance(uint64_t t)
{
	if (!load.active || t >= load.end)
		return 0;
	uint64_t inflight = outstanding + queued_groups();
	if (inflight >= load.max_outstanding)
		return 0;
	uint64_t cap = load.max_outstanding - inflight;
	if (load.rate == 0)
		return cap;
	uint64_t due = (uint64_t)((double)load.rate * (double)(t - load.start) / 1e9);
	uint64_t want = due > load.generated ? due - load.generated : 0;
	return want < cap ? want : cap;
}

/* Fills the out buffer (queued groups first, then load) and writes what the socket takes. */
static void pump_out(void)
{
	if (peer_closed)
		return;
	for (;;) {
		if (out_off == out_len) {
			out_off = out_len = 0;
			uint64_t t = now_ns();
			while (q_len > 0 && room_for(queue[q_head].nrec) && out_len < IO_CHUNK) {
				deliver(&queue[q_head], t);
				q_head = (q_head + 1) % q_cap;
				q_len--;
			}
			uint64_t allow = load_allowance(t);
			while (allow > 0 && room_for(load.records) && out_len < IO_CHUNK) {
				uint64_t s = load.seq++;
				struct group g = {
					.dev = load.dev_base + (uint32_t)(s % load.devices),
					.pasid = load.pasid,
					.grpid = (uint32_t)((s / load.devices) % 512),
					.perm = 3,
					.nrec = load.records,
					.addr = (s * load.records) << 12,
				};
				deliver(&g, t);
				load.generated++;
				allow--;
			}
			if (out_len == 0)
				return;
		}
		ssize_t n = write(SOCK_FD, outbuf + out_off, out_len - out_off);
		if (n > 0) {
			out_off += (size_t)n;
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

/* ---- answers ---- */

static void answer(uint32_t cookie, uint32_t code, uint64_t t)
{
	if (code != 0 && code != 1) {
		violation("{\"kind\":\"bad-code\",\"cookie\":%u,\"code\":%u}", cookie, code);
		return;
	}
	uint8_t st = cookie < c_cap ? c_state[cookie] : C_NEVER;
	if (st == C_NEVER || st == C_AUTO) {
		violation("{\"kind\":\"unknown-cookie\",\"cookie\":%u,\"code\":%u%s}", cookie, code,
			  st == C_AUTO ? ",\"detail\":\"answered by detach\"" : "");
		return;
	}
	if (st == C_ANSWERED) {
		violation("{\"kind\":\"repeated-cookie\",\"cookie\":%u,\"code\":%u}", cookie, code);
		return;
	}
	uint64_t lat = t - c_time[cookie];
	hist[hist_index(lat)]++;
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
}

/* Reads every answer available; returns after EAGAIN or EOF. */
static void pump_in(void)
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
		if (n <= 0)
			exit(3); /* the controller is gone */
		off += (size_t)n;
	}
	reply_len = 0;
}

static void stats(long id, int final)
{
	if (final) {
		for (uint32_t c = 1; c < c_next; c++)
			if (c_state[c] == C_OUTSTANDING)
				violation("{\"kind\":\"unanswered-group\",\"cookie\":%u,\"dev\":%u}", c, c_dev[c]);
	}
	out("{\"id\":%ld,\"ok\":true,\"delivered_groups\":%" PRIu64 ",\"delivered_records\":%" PRIu64
	    ",\"answered_success\":%" PRIu64 ",\"answered_invalid\":%" PRIu64 ",\"auto_answered\":%" PRIu64
	    ",\"outstanding\":%" PRIu64 ",\"queued\":%" PRIu64 ",\"max_cookie\":%u,\"peer_closed\":%s"
	    ",\"latency_ns\":{\"count\":%" PRIu64 ",\"p50\":%" PRIu64 ",\"p99\":%" PRIu64 ",\"p999\":%" PRIu64 ",\"max\":%" PRIu64 "}"
	    ",\"violation_count\":%" PRIu64 ",\"violations\":[",
	    id, delivered_groups, delivered_records, answered_ok, answered_invalid, auto_answered, outstanding,
	    queued_groups(), c_next - 1, peer_closed ? "true" : "false", lat_count, percentile(0.5), percentile(0.99),
	    percentile(0.999), lat_max, violation_count);
	uint64_t kept = violation_count < MAX_VIOLATIONS_KEPT ? violation_count : MAX_VIOLATIONS_KEPT;
	for (uint64_t i = 0; i < kept; i++)
		out("%s%s", i ? "," : "", violations[i]);
	out("]}");
	send_reply();
}

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
	pump_in(); /* answers already sent count before anything is reported or changed */
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
		if (records < 1 || records * REC_SIZE > IO_CHUNK) {
			fail(id, "records must be 1..1638");
			return;
		}
		for (uint64_t i = 0; i < count; i++) {
			struct group g = { (uint32_t)dev, (uint32_t)pasid, (uint32_t)(grpid + i), (uint32_t)perm,
					   (uint32_t)records, addr + i * records * 4096 };
			enqueue(&g);
		}
		out("{\"id\":%ld,\"ok\":true,\"queued\":%" PRIu64 "}", id, count);
		send_reply();
		pump_out();
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
		if (devices < 1 || records < 1 || records * REC_SIZE > IO_CHUNK || maxo < 1) {
			fail(id, "load needs devices>=1, records 1..1638, max_outstanding>=1");
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
		pump_out();
	} else if (vl == 5 && !strncmp(verb, "stats", 5)) {
		stats(id, 0);
	} else if (vl == 6 && !strncmp(verb, "detach", 6)) {
		if (!arg(args, "dev", &dev)) {
			fail(id, "detach needs dev=");
			return;
		}
		detach(id, (uint32_t)dev);
	} else if (vl == 4 && !strncmp(verb, "quit", 4)) {
		stats(id, 1);
		exit(0);
	} else {
		fail(id, "unknown verb; expected raise, load, stats, detach or quit");
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

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	if (fcntl(SOCK_FD, F_SETFL, fcntl(SOCK_FD, F_GETFL) | O_NONBLOCK) < 0) {
		fprintf(stderr, "kernel-emulator: fd 3 must be the emulator's end of a socketpair: %s\n", strerror(errno));
		return 2;
	}
	int sz = 4 << 20;
	setsockopt(SOCK_FD, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	setsockopt(SOCK_FD, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);

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
		struct pollfd pfd[2] = {
			{ .fd = 0, .events = POLLIN },
			{ .fd = SOCK_FD, .events = peer_closed ? 0 : (short)(POLLIN | (out_off < out_len ? POLLOUT : 0)) },
		};
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
			perror("kernel-emulator: poll");
			return 2;
		}
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR))
			pump_in();
		t = now_ns();
		check_partial(t);
		pump_out();
		finish_load(t);
		if (pfd[0].revents & (POLLIN | POLLHUP)) {
			ssize_t n = read(0, line + line_len, sizeof line - 1 - line_len);
			if (n == 0) {
				stats(-1, 1);
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
		}
	}
}
