/*
 * The benchmark's baseline: the least a userspace responder can do. It
 * answers each fault group on its own fault fd (inherited as fd 3) with no
 * guest hop, so any relay measured against it shows only its own cost.
 *
 *   baseline-responder [delay_us]
 *
 * Unlike the emulator's responder.c it waits with poll(), as it must on a
 * real iommufd fault fd, whose read() returns 0 when the queue is empty
 * instead of blocking. With delay_us it answers each group that long after
 * reading it (INVALID, as a deadline would): the floor for how late a timed
 * answer can land. It exits when stdin closes, or at EOF on a socket.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define FAULT_FD 3
#define REC_SIZE 40
#define LAST_PAGE 2u
#define CHUNK (64 * 1024 / REC_SIZE * REC_SIZE)
#define CODE_SUCCESS 0u
#define CODE_INVALID 1u

struct timed {
	uint64_t due;
	uint32_t cookie;
};

/* Groups waiting for their delay, in reading order (all share one delay, so due times ascend). */
static struct timed *waiting;
static size_t w_head, w_len, w_cap;

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void write_all(const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(FAULT_FD, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd pfd = { .fd = FAULT_FD, .events = POLLOUT };
			poll(&pfd, 1, -1);
			continue;
		}
		if (n <= 0) {
			fprintf(stderr, "baseline-responder: writing answers to fd 3 failed: %s\n", strerror(errno));
			exit(1);
		}
		p += n;
		len -= (size_t)n;
	}
}

static void push_waiting(uint32_t cookie, uint64_t due)
{
	if (w_len == w_cap) {
		size_t n = w_cap ? w_cap * 2 : 4096;
		struct timed *q = malloc(n * sizeof *q);
		if (!q) {
			fprintf(stderr, "baseline-responder: out of memory holding %zu groups\n", w_len);
			exit(2);
		}
		for (size_t i = 0; i < w_len; i++)
			q[i] = waiting[(w_head + i) % w_cap];
		free(waiting);
		waiting = q;
		w_head = 0;
		w_cap = n;
	}
	waiting[(w_head + w_len) % w_cap] = (struct timed){ due, cookie };
	w_len++;
}

static uint8_t out[(CHUNK / REC_SIZE + 1) * 8];

/* Answers every waiting group that is due, in writes of at most one buffer. */
static void answer_due(uint64_t t)
{
	size_t o = 0;
	while (w_len > 0 && waiting[w_head].due <= t) {
		uint32_t code = CODE_INVALID;
		memcpy(out + o, &waiting[w_head].cookie, 4);
		memcpy(out + o + 4, &code, 4);
		o += 8;
		w_head = (w_head + 1) % w_cap;
		w_len--;
		if (o == sizeof out) {
			write_all(out, o);
			o = 0;
		}
	}
	write_all(out, o);
}

int main(int argc, char **argv)
{
	uint64_t delay_ns = argc > 1 ? strtoull(argv[1], NULL, 10) * 1000ull : 0;
	static uint8_t in[CHUNK + REC_SIZE];
	size_t carry = 0;
	for (;;) {
		int timeout = -1;
		if (w_len > 0) {
			uint64_t t = now_ns(), due = waiting[w_head].due;
			/* Round up: waking early would only spin. */
			timeout = due > t ? (int)((due - t + 999999) / 1000000) : 0;
		}
		struct pollfd pfd[2] = { { .fd = FAULT_FD, .events = POLLIN }, { .fd = 0, .events = POLLIN } };
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR) {
			perror("baseline-responder: poll");
			return 2;
		}
		if (pfd[1].revents & (POLLIN | POLLHUP))
			return 0;
		if (pfd[0].revents & (POLLIN | POLLHUP)) {
			ssize_t n = read(FAULT_FD, in + carry, CHUNK);
			if (n == 0 && (pfd[0].revents & POLLHUP))
				return 0;
			if (n < 0 && errno != EINTR && errno != EAGAIN) {
				fprintf(stderr, "baseline-responder: reading fd 3 failed: %s\n", strerror(errno));
				return 1;
			}
			if (n > 0) {
				size_t total = carry + (size_t)n, whole = total - total % REC_SIZE, o = 0;
				uint64_t due = now_ns() + delay_ns;
				for (size_t p = 0; p < whole; p += REC_SIZE) {
					uint32_t flags, cookie, code = CODE_SUCCESS;
					memcpy(&flags, in + p, 4);
					memcpy(&cookie, in + p + 36, 4);
					if (!(flags & LAST_PAGE))
						continue;
					if (delay_ns) {
						push_waiting(cookie, due);
					} else {
						memcpy(out + o, &cookie, 4);
						memcpy(out + o + 4, &code, 4);
						o += 8;
					}
				}
				carry = total - whole;
				memmove(in, in + whole, carry);
				write_all(out, o);
			}
		}
		if (w_len > 0)
			answer_due(now_ns());
	}
}
