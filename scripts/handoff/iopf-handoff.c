/*
 * iopf-handoff: the reference client of iopf-relay's handoff protocol,
 * version 1 (docs/handoff.md). One file, libc only: a VMM developer can copy
 * its functions, and a script or a manager (root) can run it as it is.
 *
 *   iopf-handoff --socket PATH [--timeout S] attach [--fd N] --fault-id ID --devices JSON
 *                [--viommu MODEL] [--emulator] [--vmm-pid PID]
 *   iopf-handoff --socket PATH [--timeout S] detach --fault-id ID [--dev ID]...
 *   iopf-handoff --socket PATH [--timeout S] --json TEXT [--fd N]...
 *
 * It sends one request (one SOCK_SEQPACKET datagram, the fds as one
 * SCM_RIGHTS control message), waits for the one reply (at most S seconds,
 * 30 by default), prints the reply on stdout and exits 0 when the reply
 * says "ok": true, 1 when the relay refused (its error on stderr, one line),
 * could not be reached or did not reply in time, and 2 for a usage error
 * (nothing is sent).
 *
 * The relay ties what it is handed to the life of one VMM process
 * (docs/handoff.md, section 3): the peer that connects, unless the peer is a
 * manager (root), which names the VMM with --vmm-pid. A VMM that is not root
 * therefore sends its requests from its own process (the functions below
 * are written to be copied): run as a child of the VMM under the VMM's uid,
 * this program would be the process the queue is tied to, and its exit
 * would end the handoff.
 *
 * Build: gcc -O2 -Wall -Wextra -std=gnu11 -o iopf-handoff iopf-handoff.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* docs/handoff.md, section 4. */
#define HANDOFF_VERSION 1
#define MAX_MESSAGE 65536
#define MAX_REPLY 4096
#define MAX_FDS 16

/* How long to wait for a reply (docs/handoff.md, section 4.2): far above what a detach takes. */
#define DEFAULT_TIMEOUT_S 30
#define MAX_TIMEOUT_S 86400

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2 };

/* How much of a peer's text reaches the terminal in one error line. */
#define MAX_SHOWN 512
/* Deeper replies are refused rather than parsed (the parser recurses). */
#define MAX_DEPTH 32

static const char USAGE[] =
	"usage: iopf-handoff --socket PATH [--timeout S] attach [--fd N] --fault-id ID --devices JSON\n"
	"                    [--viommu MODEL] [--emulator] [--vmm-pid PID]\n"
	"       iopf-handoff --socket PATH [--timeout S] detach --fault-id ID [--dev ID]...\n"
	"       iopf-handoff --socket PATH [--timeout S] --json TEXT [--fd N]...\n"
	"       iopf-handoff --help\n"
	"\n"
	"Hands an iommufd fault queue to iopf-relay, or takes it back, over its\n"
	"handoff socket (iopf-relay --handoff unix:PATH); docs/handoff.md.\n"
	"\n"
	"  attach    sends fd N (open in this process: inherited from the caller)\n"
	"            as the fault queue whose fault object id is ID, with the\n"
	"            devices whose HWPTs use it: JSON is an array of device objects,\n"
	"            e.g. '[{\"devId\":3,\"endpointId\":8,\"name\":\"nic0\"}]'.\n"
	"            Without --fd it adds the devices to queue ID, attached before.\n"
	"            --viommu names the guest's vIOMMU model; --emulator sends the\n"
	"            kernel emulator's fd instead of a fault fd (tests only).\n"
	"            --vmm-pid names the VMM process the queue belongs to, when a\n"
	"            manager (root) hands it over for the VMM.\n"
	"  detach    asks the relay to answer and let go of the devices named by\n"
	"            --dev, or of the whole queue without --dev. Detach them from\n"
	"            their HWPT (or destroy the fault object) only after this\n"
	"            command succeeded.\n"
	"  --json    sends TEXT as the request exactly as given, with the fds N in\n"
	"            the order given (for testing a relay).\n"
	"  --timeout waits at most S seconds for the reply (default 30).\n"
	"\n"
	"Prints the relay's reply on stdout. Exit status: 0 the reply says ok,\n"
	"1 the relay refused (its error on stderr), could not be reached or did\n"
	"not reply in time, 2 a usage error (nothing was sent).\n";

/* ---- messages to the user ------------------------------------------------ */

static void usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void usage_error(const char *fmt, ...)
{
	va_list ap;
	fputs("iopf-handoff: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (iopf-handoff --help)\n", stderr);
	exit(EXIT_USAGE);
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fail(const char *fmt, ...)
{
	va_list ap;
	fputs("iopf-handoff: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(EXIT_REFUSED);
}

static size_t utf8_len(const unsigned char *p, const unsigned char *end);

/*
 * Text that came from the relay, made safe for a terminal line: C0 controls,
 * DEL, C1 controls (U+0080..U+009F) and bytes that are not UTF-8 become '?',
 * and at most MAX_SHOWN bytes are kept, cut on a character boundary.
 */
static void shown(const char *s, size_t n, char out[MAX_SHOWN + 4])
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, o = 0;
	while (i < n) {
		size_t len = utf8_len(p + i, p + n);
		if (o + (len ? len : 1) > MAX_SHOWN) {
			memcpy(out + o, "...", 3);
			o += 3;
			break;
		}
		if (len == 0 || p[i] < 0x20 || p[i] == 0x7f || (p[i] == 0xc2 && p[i + 1] < 0xa0)) {
			out[o++] = '?';
			i += len ? len : 1;
		} else {
			memcpy(out + o, s + i, len);
			o += len;
			i += len;
		}
	}
	out[o] = '\0';
}

/* ---- building the request ------------------------------------------------ */

struct buf {
	char *p;
	size_t len, cap;
};

static void buf_add(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 256;
		while (b->len + n + 1 > cap)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			fail("out of memory building the request");
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void buf_str(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

static void buf_addf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_addf(struct buf *b, const char *fmt, ...)
{
	char tmp[64];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	buf_add(b, tmp, (size_t)n);
}

/* A JSON string literal of s: quotes, backslashes and control characters escaped. */
static void buf_json_string(struct buf *b, const char *s)
{
	buf_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			buf_add(b, "\\", 1);
			buf_add(b, s, 1);
		} else if (c < 0x20 || c == 0x7f) {
			buf_addf(b, "\\u%04x", c);
		} else {
			buf_add(b, s, 1);
		}
	}
	buf_add(b, "\"", 1);
}

/* ---- a JSON parser, enough to check a value and find an object's members -- */

struct json {
	const char *p, *end;
};

static void j_ws(struct json *j)
{
	while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
		j->p++;
}

static bool j_lit(struct json *j, const char *lit)
{
	size_t n = strlen(lit);
	if ((size_t)(j->end - j->p) < n || memcmp(j->p, lit, n) != 0)
		return false;
	j->p += n;
	return true;
}

static bool j_digits(struct json *j)
{
	const char *start = j->p;
	while (j->p < j->end && *j->p >= '0' && *j->p <= '9')
		j->p++;
	return j->p > start;
}

static bool j_number(struct json *j)
{
	if (j->p < j->end && *j->p == '-')
		j->p++;
	if (j->p < j->end && *j->p == '0')
		j->p++;
	else if (!j_digits(j))
		return false;
	if (j->p < j->end && *j->p == '.') {
		j->p++;
		if (!j_digits(j))
			return false;
	}
	if (j->p < j->end && (*j->p == 'e' || *j->p == 'E')) {
		j->p++;
		if (j->p < j->end && (*j->p == '+' || *j->p == '-'))
			j->p++;
		if (!j_digits(j))
			return false;
	}
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Four hex digits after "\u"; -1 if they are not. */
static long j_hex4(const char *p, const char *end)
{
	if (end - p < 4)
		return -1;
	long v = 0;
	for (int i = 0; i < 4; i++) {
		int h = hexval(p[i]);
		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	return v;
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629), 0 if there is none. */
static size_t utf8_len(const unsigned char *p, const unsigned char *end)
{
	unsigned char c = p[0];
	size_t n;
	unsigned char lo = 0x80, hi = 0xbf;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		n = 2;
	else if (c >= 0xe0 && c <= 0xef) {
		n = 3;
		if (c == 0xe0)
			lo = 0xa0;
		if (c == 0xed)
			hi = 0x9f;
	} else if (c >= 0xf0 && c <= 0xf4) {
		n = 4;
		if (c == 0xf0)
			lo = 0x90;
		if (c == 0xf4)
			hi = 0x8f;
	} else
		return 0;
	if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < n; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return n;
}

/* A string: on success *s and *n span its raw contents between the quotes. */
static bool j_string(struct json *j, const char **s, size_t *n)
{
	if (j->p >= j->end || *j->p != '"')
		return false;
	const char *start = ++j->p;
	while (j->p < j->end && *j->p != '"') {
		unsigned char c = (unsigned char)*j->p;
		if (c < 0x20)
			return false;
		if (c == '\\') {
			if (++j->p >= j->end)
				return false;
			if (*j->p == 'u') {
				if (j_hex4(j->p + 1, j->end) < 0)
					return false;
				j->p += 5;
			} else if (*j->p && strchr("\"\\/bfnrt", *j->p)) {
				j->p++;
			} else {
				return false;
			}
			continue;
		}
		size_t len = utf8_len((const unsigned char *)j->p, (const unsigned char *)j->end);
		if (len == 0)
			return false;
		j->p += len;
	}
	if (j->p >= j->end)
		return false;
	*s = start;
	*n = (size_t)(j->p - start);
	j->p++;
	return true;
}

/* A member of the top-level object, as raw spans of the text. */
struct member {
	const char *key, *value;
	size_t key_len, value_len;
};

struct members {
	struct member m[16];
	size_t count;
};

static bool j_value(struct json *j, int depth, struct members *top);

static bool j_object(struct json *j, int depth, struct members *top)
{
	j->p++;
	j_ws(j);
	if (j->p < j->end && *j->p == '}') {
		j->p++;
		return true;
	}
	for (;;) {
		struct member m;
		j_ws(j);
		if (!j_string(j, &m.key, &m.key_len))
			return false;
		j_ws(j);
		if (j->p >= j->end || *j->p != ':')
			return false;
		j->p++;
		j_ws(j);
		m.value = j->p;
		if (!j_value(j, depth + 1, NULL))
			return false;
		m.value_len = (size_t)(j->p - m.value);
		/* Members past the table's size are checked but not kept; the keys read from a reply come first. */
		if (top && top->count < sizeof top->m / sizeof top->m[0])
			top->m[top->count++] = m;
		j_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == '}') {
			j->p++;
			return true;
		}
		return false;
	}
}

static bool j_array(struct json *j, int depth)
{
	j->p++;
	j_ws(j);
	if (j->p < j->end && *j->p == ']') {
		j->p++;
		return true;
	}
	for (;;) {
		j_ws(j);
		if (!j_value(j, depth + 1, NULL))
			return false;
		j_ws(j);
		if (j->p < j->end && *j->p == ',') {
			j->p++;
			continue;
		}
		if (j->p < j->end && *j->p == ']') {
			j->p++;
			return true;
		}
		return false;
	}
}

/* One JSON value at j->p; top, if given, receives the members of an object. */
static bool j_value(struct json *j, int depth, struct members *top)
{
	const char *s;
	size_t n;
	if (depth > MAX_DEPTH || j->p >= j->end)
		return false;
	switch (*j->p) {
	case '{':
		return j_object(j, depth, top);
	case '[':
		return j_array(j, depth);
	case '"':
		return j_string(j, &s, &n);
	case 't':
		return j_lit(j, "true");
	case 'f':
		return j_lit(j, "false");
	case 'n':
		return j_lit(j, "null");
	default:
		return j_number(j);
	}
}

/* The whole text is exactly one JSON value whose first character is `kind`. */
static bool json_is(const char *text, size_t len, char kind, struct members *top)
{
	struct json j = { text, text + len };
	j_ws(&j);
	if (j.p >= j.end || *j.p != kind || !j_value(&j, 0, top))
		return false;
	j_ws(&j);
	return j.p == j.end;
}

/*
 * The contents of a checked JSON string decoded to UTF-8 into out (at most
 * cap - 1 bytes, NUL-terminated, cut on a character boundary).
 */
static size_t json_unescape(const char *s, size_t n, char *out, size_t cap)
{
	const char *end = s + n;
	size_t o = 0;
	while (s < end) {
		char enc[4];
		size_t len = 1;
		if (*s != '\\') {
			len = utf8_len((const unsigned char *)s, (const unsigned char *)end);
			memcpy(enc, s, len);
			s += len;
		} else if (s[1] != 'u') {
			const char *from = "\"\\/bfnrt", *to = "\"\\/\b\f\n\r\t";
			enc[0] = to[strchr(from, s[1]) - from];
			s += 2;
		} else {
			long cp = j_hex4(s + 2, end);
			s += 6;
			if (cp >= 0xd800 && cp <= 0xdbff && end - s >= 6 && s[0] == '\\' && s[1] == 'u') {
				long lo = j_hex4(s + 2, end);
				if (lo >= 0xdc00 && lo <= 0xdfff) {
					cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
					s += 6;
				}
			}
			if (cp >= 0xd800 && cp <= 0xdfff)
				cp = 0xfffd; /* a lone surrogate */
			if (cp < 0x80) {
				enc[0] = (char)cp;
			} else if (cp < 0x800) {
				enc[0] = (char)(0xc0 | cp >> 6);
				enc[1] = (char)(0x80 | (cp & 0x3f));
				len = 2;
			} else if (cp < 0x10000) {
				enc[0] = (char)(0xe0 | cp >> 12);
				enc[1] = (char)(0x80 | (cp >> 6 & 0x3f));
				enc[2] = (char)(0x80 | (cp & 0x3f));
				len = 3;
			} else {
				enc[0] = (char)(0xf0 | cp >> 18);
				enc[1] = (char)(0x80 | (cp >> 12 & 0x3f));
				enc[2] = (char)(0x80 | (cp >> 6 & 0x3f));
				enc[3] = (char)(0x80 | (cp & 0x3f));
				len = 4;
			}
		}
		if (o + len >= cap)
			break;
		memcpy(out + o, enc, len);
		o += len;
	}
	out[o] = '\0';
	return o;
}

/* The member named key of a parsed top-level object, or NULL. */
static const struct member *member(const struct members *top, const char *key)
{
	for (size_t i = 0; i < top->count; i++) {
		char name[64];
		json_unescape(top->m[i].key, top->m[i].key_len, name, sizeof name);
		if (strcmp(name, key) == 0)
			return &top->m[i];
	}
	return NULL;
}

static bool member_is(const struct member *m, const char *raw)
{
	return m && m->value_len == strlen(raw) && memcmp(m->value, raw, m->value_len) == 0;
}

/* ---- arguments ----------------------------------------------------------- */

static uint32_t parse_u32(const char *opt, const char *s)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (*s < '0' || *s > '9' || *end || errno || v > UINT32_MAX)
		usage_error("%s expects a decimal number from 0 to %u, got \"%.64s\"", opt, UINT32_MAX, s);
	return (uint32_t)v;
}

static int parse_fd(const char *s)
{
	uint32_t v = parse_u32("--fd", s);
	if (v > INT_MAX || fcntl((int)v, F_GETFD) < 0)
		usage_error("--fd %s is not an open file descriptor of this process; "
			    "start iopf-handoff with the fault fd inherited at that number", s);
	return (int)v;
}

struct args {
	const char *socket, *command, *devices, *viommu, *json;
	bool emulator, have_fault_id;
	uint32_t fault_id, vmm_pid, timeout_s;
	int fds[MAX_FDS];
	size_t nfds;
	uint32_t *devs;
	size_t ndevs;
};

static const char *value_of(int argc, char **argv, int *i)
{
	if (*i + 1 >= argc)
		usage_error("%s needs a value", argv[*i]);
	return argv[++*i];
}

static void parse_args(int argc, char **argv, struct args *a)
{
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
			fputs(USAGE, stdout);
			exit(EXIT_OK);
		} else if (strcmp(arg, "--socket") == 0) {
			a->socket = value_of(argc, argv, &i);
		} else if (strcmp(arg, "--fd") == 0) {
			const char *v = value_of(argc, argv, &i);
			if (a->nfds == MAX_FDS)
				usage_error("at most %d --fd per request", MAX_FDS);
			a->fds[a->nfds++] = parse_fd(v);
		} else if (strcmp(arg, "--fault-id") == 0) {
			a->fault_id = parse_u32(arg, value_of(argc, argv, &i));
			a->have_fault_id = true;
		} else if (strcmp(arg, "--devices") == 0) {
			a->devices = value_of(argc, argv, &i);
		} else if (strcmp(arg, "--viommu") == 0) {
			a->viommu = value_of(argc, argv, &i);
		} else if (strcmp(arg, "--vmm-pid") == 0) {
			a->vmm_pid = parse_u32(arg, value_of(argc, argv, &i));
			if (a->vmm_pid == 0 || a->vmm_pid > INT_MAX)
				usage_error("--vmm-pid expects the VMM's process id, got %u", a->vmm_pid);
		} else if (strcmp(arg, "--timeout") == 0) {
			const char *v = value_of(argc, argv, &i);
			char *end;
			errno = 0;
			unsigned long t = strtoul(v, &end, 10);
			if (*v < '0' || *v > '9' || *end || errno || t < 1 || t > MAX_TIMEOUT_S)
				usage_error("--timeout expects whole seconds from 1 to %d, got \"%.64s\"", MAX_TIMEOUT_S, v);
			a->timeout_s = (uint32_t)t;
		} else if (strcmp(arg, "--emulator") == 0) {
			a->emulator = true;
		} else if (strcmp(arg, "--dev") == 0) {
			uint32_t dev = parse_u32(arg, value_of(argc, argv, &i));
			uint32_t *devs = realloc(a->devs, (a->ndevs + 1) * sizeof *devs);
			if (!devs)
				fail("out of memory reading the arguments");
			a->devs = devs;
			a->devs[a->ndevs++] = dev;
		} else if (strcmp(arg, "--json") == 0) {
			a->json = value_of(argc, argv, &i);
		} else if ((strcmp(arg, "attach") == 0 || strcmp(arg, "detach") == 0) && !a->command) {
			a->command = arg;
		} else {
			usage_error("unexpected argument \"%.64s\"", arg);
		}
	}

	if (!a->socket)
		usage_error("--socket PATH is required: the relay's handoff socket");
	if (strlen(a->socket) >= sizeof(((struct sockaddr_un *)0)->sun_path))
		usage_error("--socket PATH is %zu bytes long; a Unix socket path has at most %zu",
			    strlen(a->socket), sizeof(((struct sockaddr_un *)0)->sun_path) - 1);
	if (a->json) {
		if (a->command)
			usage_error("--json replaces the %s command: give one or the other", a->command);
		if (a->have_fault_id || a->devices || a->viommu || a->emulator || a->ndevs || a->vmm_pid)
			usage_error("--json takes only --socket, --timeout and --fd: the request is the JSON text as given");
		return;
	}
	if (!a->command)
		usage_error("expected a command, attach or detach, or --json TEXT");
	if (!a->have_fault_id)
		usage_error("%s needs --fault-id ID: the fault object's id in the VMM's iommufd", a->command);
	if (strcmp(a->command, "attach") == 0) {
		if (a->nfds > 1)
			usage_error("attach sends one fault fd: give --fd N once (got %zu)", a->nfds);
		if (a->emulator && a->nfds == 0)
			usage_error("--emulator describes the fd sent: it needs --fd N");
		if (!a->devices)
			usage_error("attach needs --devices JSON: an array of the devices whose HWPTs use this fault queue");
		if (!json_is(a->devices, strlen(a->devices), '[', NULL))
			usage_error("--devices expects one JSON array of device objects, e.g. "
				    "'[{\"devId\":3,\"endpointId\":8}]'; got text that is not one JSON array");
		if (a->ndevs)
			usage_error("--dev belongs to detach; attach takes its devices in --devices");
	} else {
		if (a->nfds || a->devices || a->viommu || a->emulator || a->vmm_pid)
			usage_error("detach takes only --fault-id and --dev: no fds, devices, vIOMMU, emulator or VMM pid");
	}
}

/* The request for the attach or detach command. */
static void build_request(const struct args *a, struct buf *req)
{
	buf_addf(req, "{\"v\":%d,\"op\":\"%s\"", HANDOFF_VERSION, a->command);
	if (strcmp(a->command, "attach") == 0) {
		if (a->vmm_pid)
			buf_addf(req, ",\"vmmPid\":%u", a->vmm_pid);
		buf_str(req, ",\"queues\":[{");
		/* The one fd sent is index 0 of the message's SCM_RIGHTS fds; none adds devices to an attached queue. */
		if (a->nfds)
			buf_str(req, "\"fd\":0,");
		buf_addf(req, "\"faultId\":%u", a->fault_id);
		if (a->viommu) {
			buf_str(req, ",\"viommu\":");
			buf_json_string(req, a->viommu);
		}
		if (a->emulator)
			buf_str(req, ",\"emulator\":true");
		buf_str(req, ",\"devices\":");
		/* Checked above to be one JSON array; sent without its surrounding whitespace. */
		struct json j = { a->devices, a->devices + strlen(a->devices) };
		j_ws(&j);
		const char *start = j.p;
		j_value(&j, 0, NULL);
		buf_add(req, start, (size_t)(j.p - start));
		buf_str(req, "}]}");
	} else {
		buf_addf(req, ",\"faultId\":%u", a->fault_id);
		if (a->ndevs) {
			buf_str(req, ",\"devIds\":[");
			for (size_t i = 0; i < a->ndevs; i++)
				buf_addf(req, "%s%u", i ? "," : "", a->devs[i]);
			buf_str(req, "]");
		}
		buf_str(req, "}");
	}
	if (req->len > MAX_MESSAGE)
		usage_error("the request is %zu bytes; the protocol allows at most %d: hand the devices over in several attach requests",
			    req->len, MAX_MESSAGE);
}

/* ---- the socket ---------------------------------------------------------- */

static int connect_relay(const char *path)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	strcpy(addr.sun_path, path);
	int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (s < 0)
		fail("cannot make a Unix SOCK_SEQPACKET socket: %s", strerror(errno));
	int r;
	do
		r = connect(s, (struct sockaddr *)&addr, sizeof addr);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return s;
	switch (errno) {
	case ENOENT:
		fail("no socket at %s: start iopf-relay with --handoff unix:%s, or give its path", path, path);
	case ECONNREFUSED:
		fail("nobody listens on %s (a socket file left by a relay that exited?): is iopf-relay running?", path);
	case EACCES:
	case EPERM:
		fail("permission denied connecting to %s: run as the relay's user or in its --handoff-group", path);
	case EPROTOTYPE:
		fail("%s is not a SOCK_SEQPACKET socket: is it the relay's --handoff socket (not its --socket-path)?", path);
	default:
		fail("cannot connect to %s: %s", path, strerror(errno));
	}
}

static void send_request(int s, const char *text, size_t len, const int *fds, size_t nfds)
{
	struct iovec iov = { (void *)text, len };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int) * MAX_FDS)];
	} control;
	memset(&control, 0, sizeof control);
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	if (nfds) {
		m.msg_control = control.buf;
		m.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		struct cmsghdr *cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
	}
	ssize_t n;
	do
		/* MSG_NOSIGNAL: a relay that closed the connection is an error to report, not a SIGPIPE. */
		n = sendmsg(s, &m, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		fail("sending the request (%zu bytes, %zu fds) failed: %s", len, nfds, strerror(errno));
}

/* Milliseconds left until deadline (CLOCK_MONOTONIC), 0 once it passed. */
static int ms_left(const struct timespec *deadline)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (long long)(deadline->tv_sec - now.tv_sec) * 1000 + (deadline->tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (int)ms : 0;
}

/* Waits at most timeout_s seconds for the one reply; returns its length in reply[]. */
static size_t receive_reply(int s, char *reply, size_t cap, uint32_t timeout_s)
{
	struct timespec deadline;
	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += timeout_s;
	struct pollfd p = { .fd = s, .events = POLLIN };
	int r;
	do
		r = poll(&p, 1, ms_left(&deadline));
	while (r < 0 && errno == EINTR);
	if (r < 0)
		fail("waiting for the relay's reply failed: %s", strerror(errno));
	if (r == 0)
		fail("no reply from the relay within %u s: it may still carry the request out; see its log "
		     "(after a detach, docs/handoff.md section 4.2 says what a VMM does now)", timeout_s);
	struct iovec iov = { reply, cap };
	/* No control buffer: the reply carries no fds, and any sent anyway are closed by the kernel. */
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1 };
	ssize_t n;
	do
		n = recvmsg(s, &m, 0);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		fail("waiting for the relay's reply failed: %s", strerror(errno));
	if (n == 0)
		fail("the relay closed the connection without a reply: see its log for why");
	if (m.msg_flags & MSG_TRUNC)
		fail("the relay's reply is over %zu bytes: not a handoff version %d reply", cap, HANDOFF_VERSION);
	return (size_t)n;
}

/* ---- the reply ----------------------------------------------------------- */

/* Prints the reply and returns the exit status it means. */
static int judge_reply(const char *reply, size_t len, const char *op)
{
	char text[MAX_SHOWN + 4];
	struct members top = { .count = 0 };
	if (!json_is(reply, len, '{', &top)) {
		shown(reply, len, text);
		fail("the relay's reply is not a JSON object: %s", text);
	}
	const struct member *ok = member(&top, "ok");
	if (!member_is(ok, "true") && !member_is(ok, "false")) {
		shown(reply, len, text);
		fail("the relay's reply has no \"ok\": true or false: %s", text);
	}
	if (op) {
		char want[32];
		snprintf(want, sizeof want, "\"%s\"", op);
		if (!member_is(member(&top, "op"), want)) {
			shown(reply, len, text);
			fail("the relay's reply is not for %s: %s", op, text);
		}
	}

	/* The reply on stdout as it came, made safe for a terminal. */
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)reply[i];
		bool c1 = c == 0xc2 && i + 1 < len && (unsigned char)reply[i + 1] < 0xa0;
		putchar(c < 0x20 || c == 0x7f ? ' ' : c1 ? '?' : c);
		if (c1)
			i++;
	}
	putchar('\n');
	fflush(stdout);
	if (member_is(ok, "true"))
		return EXIT_OK;

	const struct member *err = member(&top, "error");
	if (err && err->value_len >= 2 && err->value[0] == '"') {
		char decoded[MAX_SHOWN * 4];
		size_t n = json_unescape(err->value + 1, err->value_len - 2, decoded, sizeof decoded);
		shown(decoded, n, text);
	} else {
		strcpy(text, "(the reply gives no error)");
	}
	fprintf(stderr, "iopf-handoff: the relay refused %s: %s\n", op ? op : "the request", text);
	return EXIT_REFUSED;
}

int main(int argc, char **argv)
{
	struct args a = { 0 };
	struct buf req = { 0 };
	parse_args(argc, argv, &a);

	const char *text;
	size_t len;
	if (a.json) {
		text = a.json;
		len = strlen(a.json);
	} else {
		build_request(&a, &req);
		text = req.p;
		len = req.len;
	}

	int s = connect_relay(a.socket);
	send_request(s, text, len, a.fds, a.nfds);
	static char reply[MAX_REPLY];
	size_t n = receive_reply(s, reply, sizeof reply, a.timeout_s ? a.timeout_s : DEFAULT_TIMEOUT_S);
	close(s);
	return judge_reply(reply, n, a.json ? NULL : a.command);
}
